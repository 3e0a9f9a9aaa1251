import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startGateway, type RunningGateway } from '../../../apps/gateway/src/gateway.app';
import type { GatewayOptions } from '../../../apps/gateway/src/gateway.options';
import { TokenStore } from '../../../apps/gateway/src/auth/token-store';
import { loadCapulatorService } from '../../../apps/gateway/src/grpc/proto';

export interface TestGateway {
  gw: RunningGateway;
  home: string;
  url: string;
  /** a token with scope `*` */
  admin: string;
  /** creates a token with exactly these scopes */
  token(...scopes: string[]): string;
  close(): Promise<void>;
}

let n = 0;

/** Boots the real gateway on ephemeral ports with a fresh CAPULATOR_HOME. */
export async function bootGateway(opts: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  const home = mkdtempSync(join(tmpdir(), 'capulator-gw-'));
  const tokens = new TokenStore(join(home, 'tokens.json'));
  const token = (...scopes: string[]) => tokens.create(`t${++n}`, scopes).token;
  const admin = token('*');
  const gw = await startGateway({ home, http: { host: '127.0.0.1', port: 0 }, grpc: { host: '127.0.0.1', port: 0 }, logLevel: 'silent', ...opts });
  return {
    gw,
    home,
    url: gw.httpUrl,
    admin,
    token,
    close: async () => {
      await gw.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a value other than undefined, or fails after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface SseEvent {
  id: string;
  event: string;
  data: { position: number; type: string; payload: Record<string, unknown> };
}

/** Reads a whole SSE response (the gateway ends the stream after RunExited/RunFailed). */
export function parseSseText(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split(/\n\n/)) {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, '');
    }
    if (fields.data) out.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
  }
  return out;
}

export type GrpcClient = grpc.Client & Record<string, any>;

export function grpcClient(address: string): GrpcClient {
  const Service = loadCapulatorService();
  return new Service(address, grpc.credentials.createInsecure()) as GrpcClient;
}

export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/** A unary call as a promise; rejects with the ServiceError. */
export function call<T = any>(client: GrpcClient, method: string, req: unknown, md: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) => client[method](req, md, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))));
}

export { fixtureImages } from '../../fixtures/images';

export const DENY_ALL = `apiVersion: capulator/v1
kind: Policy
metadata: { name: deny-all }
defaults: { action: deny, audit: all }
rules: []
`;

export const PING_POLICY = `apiVersion: capulator/v1
kind: Policy
metadata: { name: ping, description: raw ICMP only }
defaults: { action: deny, audit: all }
rules:
  - id: ping-raw
    privileges: [PRIV_NETINET_RAW]
    action: allow
`;
