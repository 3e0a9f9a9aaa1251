import type { LogLevel } from '@nestjs/common';
import type { EventStore } from '@capulator/events';
import type { RunExecutor, RunFn } from './runs/run-executor';
import type { ImageCatalog } from './images/image-catalog';
import type { Replayer } from './replays/replayer';
import type { PolicyEngine } from './policies/policy-engine';

export interface HostPort {
  host: string;
  port: number;
}

/** Everything the gateway is started with; `capulator serve` and the e2e tests build one. */
export interface GatewayOptions {
  /** $CAPULATOR_HOME: events.db, tokens.json, images/, runs/, tmp/ */
  home: string;
  http: HostPort;
  /** false: no gRPC server */
  grpc: HostPort | false;
  /** bytes; default 1 MiB */
  jsonLimit: number;
  yamlLimit: number;
  /** bytes; default 8 GiB */
  imageUploadLimit: number;
  logLevel: LogLevel | 'silent';
  /** in-process executor */
  concurrency: number;
  maxQueued: number;
  /** a what-if replay running longer is cancelled (503); default 10 minutes */
  replayTimeoutMs?: number;
  /**
   * Directories bind-mount sources may come from (`capulator serve --allow-mount DIR`, realpath'd);
   * none by default, and never $CAPULATOR_HOME or anything above it.
   */
  allowMounts?: string[];
  /**
   * `host:port` at which workers on the bus reach this gateway's HTTP port, to fetch the images it
   * got from archives (GET /v2/…); default: the address it listens on (the host name when that is
   * a wildcard). `capulator serve --advertise`.
   */
  advertise?: string;
  /** adapters; defaults are the embedded ones (SQLite store, in-process runtime, libs) */
  store?: EventStore;
  executor?: RunExecutor;
  runFn?: RunFn;
  images?: ImageCatalog;
  replayer?: Replayer;
  policyEngine?: PolicyEngine;
}

/** Runs that may wait (not yet started) before submissions are refused with 503 + Retry-After: embedded and bus alike. */
export const DEFAULT_MAX_QUEUED = 10000;

export function gatewayOptions(partial: Partial<GatewayOptions> & { home: string }): GatewayOptions {
  return {
    http: { host: '127.0.0.1', port: 8420 },
    grpc: { host: '127.0.0.1', port: 8421 },
    jsonLimit: 1024 * 1024,
    yamlLimit: 1024 * 1024,
    imageUploadLimit: 8 * 1024 * 1024 * 1024,
    logLevel: 'log',
    concurrency: 4,
    maxQueued: DEFAULT_MAX_QUEUED,
    ...partial,
  };
}

/** "HOST:PORT", "[v6]:PORT" or ":PORT". */
export function parseHostPort(text: string, fallbackHost = '127.0.0.1'): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):([0-9]{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1] ?? (m[2] || fallbackHost), port };
}
