import type { HostPort } from './gateway.options';

/** An address the gateway could not listen on: which flag gave it, the address, and why. */
export class ListenError extends Error {
  constructor(
    readonly flag: 'http' | 'grpc',
    readonly at: HostPort,
    readonly reason: unknown,
  ) {
    const host = at.host.includes(':') ? `[${at.host}]` : at.host;
    const why = reason instanceof Error ? reason.message : String(reason);
    super(`cannot listen on ${host}:${at.port} (--${flag}): ${why}`);
    this.name = 'ListenError';
  }
}
