import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import { repoRoot } from '@capulator/host';

/**
 * The audit console's content security policy: no inline script, nothing from elsewhere. Scripts,
 * styles and fetches come from this origin only; no frames, no forms posting away, no plugins.
 * One exception for styles: CodeMirror writes its theme into a <style> element, which carries the
 * per-response nonce (index.html hands it to the page in a meta tag; it is never used for scripts).
 */
export function consoleCsp(styleNonce: string): string {
  return [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'self' 'nonce-${styleNonce}'`,
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  ].join('; ');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** dist/console (written by scripts/build-console.mjs during `npm run build`). */
export function consoleDir(): string {
  return join(repoRoot(__dirname), 'dist', 'console');
}

/**
 * Serves the console's built assets under /ui. The assets are public (they are the page's code,
 * no data); every datum the page shows comes from the API with the bearer token the user typed.
 * Files are read once and kept in memory, with their gzip variant when the build wrote one.
 */
export function consoleMiddleware(dir = consoleDir()): (req: Request, res: Response, next: NextFunction) => void {
  const files = new Map<string, { type: string; body: Buffer; gz?: Buffer }>();
  const load = (name: string) => {
    const hit = files.get(name);
    if (hit) return hit;
    if (!/^[A-Za-z0-9-]+\.(html|js|css|svg)$/.test(name)) return undefined;
    const p = join(dir, name);
    if (!existsSync(p) || !statSync(p).isFile()) return undefined;
    const f = { type: TYPES[name.slice(name.lastIndexOf('.'))], body: readFileSync(p), ...(existsSync(p + '.gz') ? { gz: readFileSync(p + '.gz') } : {}) };
    files.set(name, f);
    return f;
  };
  return (req, res, next) => {
    if (req.path !== '/ui' && !req.path.startsWith('/ui/')) return next();
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const rest = req.path === '/ui' ? '' : req.path.slice(4);
    const name = rest === '' ? 'index.html' : rest;
    const f = load(name);
    const nonce = randomBytes(16).toString('base64');
    res.setHeader('Content-Security-Policy', consoleCsp(nonce));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    if (!f) {
      if (name === 'index.html') {
        res.status(503).type('text/plain').send('the console is not built: run `npm run build` (scripts/build-console.mjs writes dist/console)\n');
      } else {
        res.status(404).type('text/plain').send('not found\n');
      }
      return;
    }
    res.setHeader('Content-Type', f.type);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Vary', 'Accept-Encoding');
    // index.html carries the style nonce: filled in per response (and sent uncompressed, 0.4 kB)
    const html = name === 'index.html';
    const gz = !html && f.gz && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gz) res.setHeader('Content-Encoding', 'gzip');
    const body = html ? Buffer.from(f.body.toString('utf8').replaceAll('{{CSP_NONCE}}', nonce)) : gz ? f.gz! : f.body;
    res.setHeader('Content-Length', String(body.length));
    res.status(200).end(req.method === 'HEAD' ? undefined : body);
  };
}
