import { createHash } from 'node:crypto';
import { apiHost, isInsecureHost } from './reference';
import { basicHeader, BasicCredentials, Challenge, parseChallenges } from './auth';
import { drain, httpRequest, HttpResponse, isTransientError, readBody, sleep } from './http';
import { RegistryError } from './registry.errors';

export interface RegistryClientOptions {
  /** Hosts (`host` or `host:port`) where plain HTTP and unverified TLS are allowed. */
  insecureRegistries?: readonly string[];
  credentials?: BasicCredentials;
  /** Idle timeout per request (ms). Default 30 s. */
  timeoutMs?: number;
  /** Attempts for a request that fails with 5xx/429 or a broken connection. Default 5. */
  attempts?: number;
  /** First backoff delay (ms); doubles each attempt. Default 200. */
  backoffMs?: number;
}

export interface FetchOptions {
  accept?: string[];
  range?: number;
  /** Auth scope, e.g. `repository:team/app:pull`. */
  scope: string;
}

interface CachedToken { header: string; expiresAt: number }

/** Bearer tokens shared by all clients in this process, keyed by realm, service, scope and user. */
const tokenCache = new Map<string, CachedToken>();

export function clearTokenCache(): void {
  tokenCache.clear();
}

/**
 * A Distribution API v2 client for one registry: picks https or (for loopback and insecure
 * hosts) http, answers `WWW-Authenticate` challenges (Bearer token flow with per-scope token
 * cache, or Basic), follows redirects, retries transient failures with exponential backoff.
 */
export class RegistryClient {
  private base?: Promise<URL>;
  private readonly scopeAuth = new Map<string, string>();
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  readonly insecure: boolean;

  constructor(readonly registry: string, private readonly opts: RegistryClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.attempts = Math.max(1, opts.attempts ?? 5);
    this.backoffMs = opts.backoffMs ?? 200;
    this.insecure = isInsecureHost(registry, opts.insecureRegistries ?? []);
  }

  /** The API base URL; for insecure hosts, https is tried first and http used if TLS fails (as Docker does). */
  baseUrl(): Promise<URL> {
    this.base ??= this.probeBase();
    return this.base;
  }

  private async probeBase(): Promise<URL> {
    const host = apiHost(this.registry);
    const httpsUrl = new URL(`https://${host}/`);
    if (!this.insecure) return httpsUrl;
    try {
      const res = await this.withRetry(() => httpRequest(new URL('/v2/', httpsUrl), { timeoutMs: this.timeoutMs, insecureTls: true }), 2);
      drain(res);
      return httpsUrl;
    } catch {
      return new URL(`http://${host}/`);
    }
  }

  /** GET with auth, redirects and retries; the caller consumes the body. Throws on any non-2xx. */
  async get(path: string, fo: FetchOptions): Promise<HttpResponse> {
    const base = await this.baseUrl();
    let url = new URL(path, base);
    let authTried = false;
    for (let redirects = 0; ; ) {
      const sameHost = url.host === base.host;
      const headers: Record<string, string> = { 'user-agent': 'capulator' };
      if (fo.accept) headers.accept = fo.accept.join(', ');
      if (fo.range) headers.range = `bytes=${fo.range}-`;
      const auth = sameHost ? this.scopeAuth.get(fo.scope) : undefined;
      if (auth) headers.authorization = auth;
      const res = await this.withRetry(async () => {
        const r = await httpRequest(url, { headers, timeoutMs: this.timeoutMs, insecureTls: this.insecure });
        if (r.status >= 500 || r.status === 429) {
          drain(r);
          throw new RegistryError('HTTP_ERROR', `${url.host} answered ${r.status} for ${url.pathname}`, r.status);
        }
        return r;
      });
      if (res.status === 401 && sameHost && !authTried) {
        authTried = true;
        drain(res);
        await this.authenticate(parseChallenges(res.headers['www-authenticate']), fo.scope);
        continue;
      }
      if (res.status >= 300 && res.status < 400 && res.headers.location) {
        drain(res);
        if (++redirects > 5) throw new RegistryError('HTTP_ERROR', `too many redirects from ${this.registry}`);
        url = new URL(res.headers.location, url);
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res;
      const body = (await readBody(res, 64 << 10).catch(() => Buffer.alloc(0))).toString('utf8');
      throw errorFromResponse(res.status, body, this.registry, path);
    }
  }

  /** Answers challenges: Bearer → fetch a token for `scope`; Basic → send credentials. */
  private async authenticate(challenges: Challenge[], scope: string): Promise<void> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      this.scopeAuth.set(scope, await this.token(bearer, scope));
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.opts.credentials) throw new RegistryError('UNAUTHORIZED', `${this.registry} wants a user name and password: add them to $DOCKER_CONFIG/config.json (auths)`, 401);
      this.scopeAuth.set(scope, basicHeader(this.opts.credentials));
      return;
    }
    throw new RegistryError('UNAUTHORIZED', `${this.registry} refused the request (401) without a usable authentication challenge`, 401);
  }

  private async token(ch: Challenge, scope: string): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError('UNAUTHORIZED', `${this.registry} sent a Bearer challenge without a realm`, 401);
    const wantScope = ch.params.scope ?? scope;
    const user = this.opts.credentials?.username ?? '';
    const key = `${realm}\n${ch.params.service ?? ''}\n${wantScope}\n${user}`;
    const cached = tokenCache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    url.searchParams.set('scope', wantScope);
    const headers: Record<string, string> = { 'user-agent': 'capulator' };
    if (this.opts.credentials) headers.authorization = basicHeader(this.opts.credentials);
    const insecureTls = isInsecureHost(url.host, this.opts.insecureRegistries ?? []);
    const res = await this.withRetry(async () => {
      const r = await httpRequest(url, { headers, timeoutMs: this.timeoutMs, insecureTls });
      if (r.status >= 500) {
        drain(r);
        throw new RegistryError('HTTP_ERROR', `token server ${url.host} answered ${r.status}`, r.status);
      }
      return r;
    });
    const body = await readBody(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError('UNAUTHORIZED', `token server ${url.host} refused ${this.opts.credentials ? `user ${this.opts.credentials.username}` : 'anonymous access'} for ${wantScope} (${res.status})`, res.status);
    }
    if (res.status !== 200) throw new RegistryError('UNAUTHORIZED', `token server ${url.host} answered ${res.status}`, res.status);
    let json: { token?: string; access_token?: string; expires_in?: number };
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new RegistryError('UNAUTHORIZED', `token server ${url.host} sent something that is not JSON`);
    }
    const tok = json.token ?? json.access_token;
    if (!tok) throw new RegistryError('UNAUTHORIZED', `token server ${url.host} sent no token`);
    // Tokens live at least 60 s per the spec; keep a margin.
    const ttl = Math.max(60, json.expires_in ?? 60) * 1000;
    const header = `Bearer ${tok}`;
    tokenCache.set(key, { header, expiresAt: Date.now() + ttl - 10_000 });
    return header;
  }

  async withRetry<T>(fn: () => Promise<T>, attempts = this.attempts): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= attempts || !isTransientError(err)) throw wrapNetwork(err, this.registry);
        await sleep(this.backoffMs * 2 ** (i - 1));
      }
    }
  }

  /** Fetches a manifest (or index), verifying its digest when the registry states one or when asked by digest. */
  async getManifest(repository: string, reference: string, accept: string[]): Promise<{ body: Buffer; mediaType: string; digest: string }> {
    const res = await this.get(`/v2/${repository}/manifests/${reference}`, { accept, scope: pullScope(repository) });
    const body = await readBody(res, 4 << 20);
    const digest = 'sha256:' + createHash('sha256').update(body).digest('hex');
    const stated = headerValue(res.headers['docker-content-digest']);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new RegistryError('DIGEST_MISMATCH', `manifest ${reference} of ${repository} from ${this.registry} has digest ${digest}: refused`);
    }
    if (stated && stated.startsWith('sha256:') && stated !== digest) {
      throw new RegistryError('DIGEST_MISMATCH', `manifest ${repository}:${reference} from ${this.registry} has digest ${digest}, registry said ${stated}: refused`);
    }
    let mediaType = headerValue(res.headers['content-type'])?.split(';')[0].trim() ?? '';
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { mediaType?: string };
      if (parsed.mediaType) mediaType = parsed.mediaType;
    } catch {
      throw new RegistryError('BAD_MANIFEST', `manifest ${repository}:${reference} from ${this.registry} is not JSON`);
    }
    return { body, mediaType, digest };
  }
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function wrapNetwork(err: unknown, registry: string): unknown {
  if (err instanceof RegistryError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EPROTO' || /certificate|SSL|TLS/i.test(e?.message ?? '') || e?.code?.startsWith('ERR_TLS') || e?.code?.includes('CERT')) {
    return new RegistryError('TLS', `TLS with ${registry} failed: ${e.message} (use --insecure-registry ${registry} for a registry without a trusted certificate)`);
  }
  if (e && typeof e.code === 'string') return new RegistryError('NETWORK', `cannot talk to ${registry}: ${e.message}`);
  return err;
}

function errorFromResponse(status: number, body: string, registry: string, path: string): RegistryError {
  let detail = '';
  let code: string | undefined;
  try {
    const j = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    code = j.errors?.[0]?.code;
    detail = j.errors?.map((e) => e.message ?? e.code).join('; ') ?? '';
  } catch {
    detail = body.slice(0, 200).trim();
  }
  const what = `${registry}${path}`;
  if (status === 401) return new RegistryError('UNAUTHORIZED', `${what}: unauthorized${detail ? ` (${detail})` : ''}: check the credentials in $DOCKER_CONFIG/config.json`, status);
  if (status === 403) return new RegistryError('DENIED', `${what}: access denied${detail ? ` (${detail})` : ''}`, status);
  if (status === 404 && (code === 'MANIFEST_UNKNOWN' || path.includes('/manifests/'))) return new RegistryError('MANIFEST_UNKNOWN', `${what}: no such image${detail ? ` (${detail})` : ''}`, status);
  if (status === 404 && (code === 'NAME_UNKNOWN')) return new RegistryError('MANIFEST_UNKNOWN', `${what}: no such repository`, status);
  if (status === 404) return new RegistryError('BLOB_UNKNOWN', `${what}: not found${detail ? ` (${detail})` : ''}`, status);
  return new RegistryError('HTTP_ERROR', `${what}: HTTP ${status}${detail ? ` (${detail})` : ''}`, status);
}
