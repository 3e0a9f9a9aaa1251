import * as http from 'node:http';
import * as https from 'node:https';
import { RegistryError } from './registry.errors';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Socket idle timeout: no bytes for this long fails the request (ms). */
  timeoutMs: number;
  /** Accept any TLS certificate (only for --insecure-registry hosts). */
  insecureTls?: boolean;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  httpsInsecure: new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false }),
};

/** Network error codes worth retrying (the connection broke, not the request). */
const TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET', 'ENOTFOUND_TEMP']);

export function isTransientError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException & { transient?: boolean };
  if (e?.transient) return true;
  if (e instanceof RegistryError) return e.code === 'NETWORK' || (e.code === 'HTTP_ERROR' && (e.status ?? 0) >= 500) || (e.status === 429);
  return TRANSIENT.has(e?.code ?? '') || /socket hang up|aborted|premature close/i.test(e?.message ?? '');
}

/** One HTTP request; resolves when the response headers arrive (the body is left to the caller). */
export function httpRequest(url: URL, opts: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const isHttps = url.protocol === 'https:';
    const mod = isHttps ? https : http;
    const agent = isHttps ? (opts.insecureTls ? agents.httpsInsecure : agents.https) : agents.http;
    const req = mod.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent }, (res) => {
      // Idle timeout keeps applying while the body streams.
      res.socket?.setTimeout(opts.timeoutMs);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
    });
    req.setTimeout(opts.timeoutMs, () => {
      const err = Object.assign(new Error(`no response from ${url.host} within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' });
      req.destroy(err);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads a whole (small) response body, at most `limit` bytes. */
export async function readBody(res: HttpResponse, limit = 8 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += (chunk as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw new RegistryError('BAD_MANIFEST', `response from ${res.url.host} larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Discards a response body so the socket can be reused. */
export function drain(res: HttpResponse): void {
  res.body.resume();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
