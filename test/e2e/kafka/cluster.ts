import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';
import { runStream, type EventStore, type StoredEvent } from '@capulator/events';
import { startTestBroker, type TestBroker } from '../../../libs/events/src/testing/kafka-broker';

/** One `capulator serve --bus …` process. */
export interface BusProcess {
  role: 'gateway' | 'runtime';
  home: string;
  child: ChildProcess;
  /** http://host:port (gateways) */
  url?: string;
  /** the worker id (runtime workers) */
  workerId?: string;
  /** everything it printed on stdout so far (JSON log lines) */
  output(): string;
  /** everything it printed on stderr so far (warnings, recovered runs) */
  errors(): string;
  /** SIGTERM and wait for exit */
  stop(): Promise<void>;
  /** SIGKILL now */
  kill(): Promise<void>;
}

const root = () => repoRoot(__dirname);
const cli = () => join(root(), 'bin', 'capulator');

export function capulator(home: string, args: string[]): string {
  const r = spawnSync(process.execPath, [cli(), ...args], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
  if (r.status !== 0) throw new Error(`capulator ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export function newHome(tag: string): string {
  return mkdtempSync(join(tmpdir(), `capulator-${tag}-`));
}

/** Starts `capulator serve --bus URL --role ROLE` and waits until it says it is serving. */
export async function startServe(bus: string, role: 'gateway' | 'runtime', home: string, extra: string[] = [], env: Record<string, string> = {}): Promise<BusProcess> {
  const args = ['--bus', bus, '--role', role, '--http', '127.0.0.1:0', '--grpc', 'off', ...extra];
  const child = spawn(process.execPath, [cli(), 'serve', ...args], { env: { ...process.env, ...env, CAPULATOR_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pattern = role === 'gateway' ? /capulator serving http (\S+)/ : /capulator runtime worker (\S+) on/;
  const deadline = Date.now() + 90_000;
  let m: RegExpExecArray | null = null;
  while (!(m = pattern.exec(out))) {
    if (child.exitCode !== null) throw new Error(`serve --role ${role} exited ${child.exitCode}: ${err || out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`serve --role ${role} did not start: ${err || out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const p: BusProcess = {
    role,
    home,
    child,
    output: () => out,
    errors: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  if (role === 'gateway') p.url = m[1];
  else p.workerId = m[1];
  return p;
}

/** Two gateway homes that accept the same admin token (the tokens file is copied). */
export function gatewayHomes(): { homes: [string, string]; token: string } {
  const a = newHome('gw-a');
  const b = newHome('gw-b');
  const out = capulator(a, ['token', 'create', '--name', 'e2e', '--scopes', '*']).trim().split('\n');
  copyFileSync(join(a, 'tokens.json'), join(b, 'tokens.json'));
  return { homes: [a, b], token: out[out.length - 1].trim() };
}

/** A worker home with the busybox fixture image imported as `tag`. */
export function workerHome(archive: string, tag: string): string {
  const h = newHome('worker');
  capulator(h, ['image', 'import', '--tag', tag, archive]);
  return h;
}

/** A policy with no rules: every privileged call gets `defaults`. */
export function policyYaml(name: string, defaults: { action: 'allow' | 'deny'; audit: 'all' | 'denials' | 'none' }): string {
  return `apiVersion: capulator/v1
kind: Policy
metadata: { name: ${name} }
defaults: { action: ${defaults.action}, audit: ${defaults.audit} }
rules: []
`;
}

/**
 * A broker, two gateway homes and the `capulator serve` processes a spec starts on them. Made
 * before before() runs, so that after() can undo whatever before() got through.
 */
export class TestCluster {
  broker!: TestBroker;
  /** the admin token both gateway homes accept */
  token!: string;
  gatewayHomes!: [string, string];
  /** every home made here, removed by stop() */
  readonly homes: string[] = [];
  private readonly processes: BusProcess[] = [];

  /** Starts the broker, then makes the gateway homes. */
  async start(broker: { secured?: boolean } = {}): Promise<this> {
    this.broker = await startTestBroker(broker);
    const g = gatewayHomes();
    this.homes.push(...g.homes);
    this.gatewayHomes = g.homes;
    this.token = g.token;
    return this;
  }

  /** workerHome(), removed by stop() */
  workerHome(archive: string, tag: string): string {
    const h = workerHome(archive, tag);
    this.homes.push(h);
    return h;
  }

  /** newHome(), removed by stop() */
  newHome(tag: string): string {
    const h = newHome(tag);
    this.homes.push(h);
    return h;
  }

  /** startServe() on this broker, stopped by stop() */
  async serve(role: 'gateway' | 'runtime', home: string, extra: string[] = [], env: Record<string, string> = {}): Promise<BusProcess> {
    const p = await startServe(this.broker.url, role, home, extra, env);
    this.processes.push(p);
    return p;
  }

  /**
   * The processes first (a runtime worker stops its runs as it goes), then `afterProcesses` (the
   * spec's own clients, reapContainers()), the broker, `afterBroker`, and the homes last:
   * removeHomes() unmounts what a killed worker left in them.
   */
  async stop(steps: { afterProcesses?: () => unknown; afterBroker?: () => unknown } = {}): Promise<void> {
    await Promise.allSettled(this.processes.map((p) => p.stop()));
    await steps.afterProcesses?.();
    await this.broker?.stop();
    await steps.afterBroker?.();
    removeHomes(this.homes);
  }
}

/** Removes the homes, first unmounting what a killed worker left mounted in them (run rootfs overlays). */
export function removeHomes(homes: string[]): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
  for (const h of homes) {
    for (const m of mounts.filter((m) => m.startsWith(h + '/')).reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    rmSync(h, { recursive: true, force: true });
  }
}

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Removes containers a killed worker left behind (runc state of runs it held). */
export function reapContainers(runIds: string[]): void {
  for (const id of runIds) spawnSync('runc', ['--root', '/run/capulator/runc', 'delete', '--force', `capulator-${id}`], { stdio: 'ignore' });
}

/** One request to a gateway with a bearer token: a string body goes as YAML, anything else as JSON. */
export async function gatewayApi(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': typeof body === 'string' ? 'application/yaml' : 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

/** Every event of one run's stream, in order. */
export async function runStreamOf(store: EventStore, runId: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of store.readStream(runStream(runId))) out.push(e);
  return out;
}
