import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface BasicCredentials { username: string; password: string }

/** One `WWW-Authenticate` challenge: scheme (lower-cased) and its parameters. */
export interface Challenge { scheme: string; params: Record<string, string> }

/**
 * Parses a `WWW-Authenticate` header value, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
 * Quoted values may contain commas and `\"` escapes. Several challenges in one header are split.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let i = 0;
  let current: Challenge | undefined;
  const skipWs = () => { while (i < text.length && /[\s,]/.test(text[i])) i++; };
  while (i < text.length) {
    skipWs();
    const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)/.exec(text.slice(i));
    if (!m) break;
    const token = m[1];
    i += token.length;
    while (i < text.length && text[i] === ' ') i++;
    if (text[i] === '=') {
      i++;
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          value += text[i++];
        }
        i++;
      } else {
        const v = /^[^,\s]*/.exec(text.slice(i))![0];
        value = v;
        i += v.length;
      }
      if (current) current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** The Docker client config directory: `$DOCKER_CONFIG`, else `~/.docker`. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG && env.DOCKER_CONFIG.trim() !== '' ? env.DOCKER_CONFIG : join(homedir(), '.docker');
}

const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

function normaliseKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

/**
 * Basic credentials for `registry` from a Docker `config.json` (`auths.<host>.auth`, base64
 * `user:password`, or `username`/`password` fields). Keys may carry a scheme and path
 * (`https://host:5000/v1/`); Docker Hub is found under any of its aliases. Credential helpers
 * (`credsStore`, `credHelpers`) are not consulted. A missing or unreadable file means anonymous.
 */
export function credentialsFor(registry: string, configDir = dockerConfigDir()): BasicCredentials | undefined {
  let parsed: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    parsed = JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const auths = parsed?.auths ?? {};
  const want = registry.toLowerCase();
  const wantKeys = HUB_KEYS.includes(want) ? HUB_KEYS.map(normaliseKey) : [want];
  for (const [key, entry] of Object.entries(auths)) {
    if (!wantKeys.includes(normaliseKey(key)) || !entry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
  }
  return undefined;
}

export function basicHeader(c: BasicCredentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}
