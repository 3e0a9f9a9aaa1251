/**
 * The API client. The bearer token lives in sessionStorage (this tab only, gone when it closes)
 * and goes in the Authorization header of every request — never in a URL, so it is not in
 * server logs, history or referrers. Server-Sent Events are read with fetch + a stream reader
 * (EventSource cannot send headers), resuming with Last-Event-ID when the connection drops.
 */
const KEY = 'capulator.token';

export function token(): string | null {
  return sessionStorage.getItem(KEY);
}
export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

let onUnauthenticated: () => void = () => {};
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

export async function api<T = any>(path: string, init: RequestInit & { yaml?: string; json?: unknown; tokenOverride?: string } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const t = init.tokenOverride ?? token();
  if (t) headers.set('Authorization', `Bearer ${t}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(init.json);
  } else if (init.yaml !== undefined) {
    headers.set('Content-Type', 'application/yaml');
    body = init.yaml;
  }
  const res = await fetch(path, { ...init, headers, body, credentials: 'omit', cache: 'no-store' });
  const text = await res.text();
  let data: any;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const e = data?.error ?? {};
    if (res.status === 401 && !init.tokenOverride) onUnauthenticated();
    throw new ApiError(res.status, e.code ?? String(res.status), e.message ?? `${res.status} ${res.statusText}`, e.details);
  }
  return data as T;
}

export interface SseMessage {
  id?: string;
  event: string;
  data: any;
}

/**
 * Follows an SSE route until `signal` aborts or the server ends the stream (`onEnd`). A dropped
 * connection is retried after a second, from the last id seen.
 */
export function sse(path: string, onMessage: (m: SseMessage) => void, signal: AbortSignal, opts: { onEnd?: () => void; onOpen?: () => void; onRefused?: (status: number) => void } = {}): void {
  let lastId: string | undefined;
  const run = async (): Promise<void> => {
    for (;;) {
      if (signal.aborted) return;
      try {
        const headers: Record<string, string> = { Authorization: `Bearer ${token() ?? ''}`, Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const res = await fetch(path, { headers, signal, credentials: 'omit', cache: 'no-store' });
        if (res.status === 401) {
          onUnauthenticated();
          return;
        }
        // a route that refuses (404: nothing kept for it) is not retried
        if (res.status >= 400 && res.status < 500 && opts.onRefused) {
          opts.onRefused(res.status);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`${res.status}`);
        opts.onOpen?.();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          // blocks are cut from an index, the buffer sliced once a chunk (a large chunk stays linear)
          let at = 0;
          let i: number;
          while ((i = buf.indexOf('\n\n', at)) >= 0) {
            if (signal.aborted) return;
            const block = buf.slice(at, i);
            at = i + 2;
            const m: SseMessage = { event: 'message', data: undefined };
            let data = '';
            for (const line of block.split('\n')) {
              const c = line.indexOf(':');
              if (c <= 0) continue;
              const f = line.slice(0, c);
              const v = line.slice(c + 1).replace(/^ /, '');
              if (f === 'id') m.id = v;
              else if (f === 'event') m.event = v;
              else if (f === 'data') data += (data ? '\n' : '') + v;
            }
            if (!data) continue;
            try {
              m.data = JSON.parse(data);
            } catch {
              m.data = data;
            }
            if (m.id) lastId = m.id;
            onMessage(m);
          }
          buf = buf.slice(at);
        }
        if (opts.onEnd) {
          opts.onEnd();
          return;
        }
        // a stream that should not end (the live runs list): reconnect
        await new Promise((r) => setTimeout(r, 1000));
      } catch (err) {
        if (signal.aborted) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  void run();
}
