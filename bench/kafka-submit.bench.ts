/**
 * Submissions per second and latency: two gateways on Kafka vs the embedded default, same run.
 *   node dist/bench/kafka-submit.bench.js [--duration 30] [--warmup 10] [--connections 32] [--brokers H:P]
 * Every target is real `capulator serve` processes on loopback, loaded with autocannon
 * (POST /v1/runs, token auth, an image that does not exist so each run fails at its image stage
 * right away: what is measured is submission, which never waits for a run):
 *   embedded: `capulator serve` (SQLite store, in-process runtime), all connections on it.
 *   kafka:    `capulator serve --bus … --role gateway` × 2 + `--role runtime` × 1, one broker;
 *             half the connections on each gateway, at the same time; req/s summed.
 * A 202 on Kafka means RunRequested is in the log (folded back) and the command is acked by the broker.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBroker } from '../libs/events/src/testing/kafka-broker';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<{
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
}>;

const USAGE = `usage: node dist/bench/kafka-submit.bench.js [--duration S] [--warmup S] [--connections C] [--rate R] [--partitions P] [--brokers H:P]
  POST /v1/runs against the embedded server and against 2 gateways + 1 worker on Kafka, same run,
  same limits (the default queue bound of both, 10000 waiting runs). Prints accepted (202) and
  refused (503, Retry-After) per second separately, latency percentiles, and other errors.
  --duration S     seconds per target after the warm-up (default 30: over 10 s the embedded
                   server is still filling its queue of 10,000 runs, which it cannot sustain)
  --warmup S       seconds of load before each measured one (default 10: a fresh broker and
                   fresh Node processes are still compiling their hot code for the first seconds)
  --connections C  concurrent connections per target, split over the Kafka gateways (default 32)
  --rate R         offer R requests/s per target (split over the Kafka gateways) instead of as
                   many as the connections take: latency at a given load rather than at
                   saturation (e.g. the embedded server's sustained accepted/s)
  --partitions P   partitions of the Kafka topics (default 4 events, 8 commands)
  --brokers H:P    use this broker instead of starting one (infra/kafka/kafka.sh)`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const cli = join(__dirname, '..', '..', 'bin', 'capulator');

function capulator(home: string, args: string[]): string {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
  if (r.status !== 0) throw new Error(`capulator ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function serve(home: string, args: string[], pattern: RegExp): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [cli, 'serve', '--http', '127.0.0.1:0', '--grpc', 'off', '--log-level', 'error', ...args], {
    env: { ...process.env, CAPULATOR_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  const deadline = Date.now() + 120_000;
  let m: RegExpExecArray | null;
  while (!(m = pattern.exec(out))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve ${args.join(' ')} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url: m[1] };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

interface Result {
  /** 202 per second */
  accepted: number;
  /** 503 per second */
  refused: number;
  p50: number;
  p99: number;
  total: number;
  /** anything else: other statuses, socket errors, timeouts */
  bad: number;
}

async function load(url: string, token: string, duration: number, connections: number, rate = 0): Promise<Result> {
  const opts = {
    ...(rate > 0 ? { overallRate: rate } : {}),
    url: `${url}/v1/runs`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ image: 'bench-missing:1', command: ['/bin/true'] }),
    connections,
    pipelining: 1,
    duration,
  };
  const r = await autocannon(opts);
  const n = (code: string) => r.statusCodeStats?.[code]?.count ?? 0;
  const accepted = n('202');
  const refused = n('503');
  return { accepted: accepted / duration, refused: refused / duration, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, bad: r.requests.total - accepted - refused + r.errors + r.timeouts };
}

function print(name: string, r: Result): void {
  console.log(
    `${name.padEnd(40)} ${r.accepted.toFixed(0).padStart(9)}  ${r.refused.toFixed(0).padStart(8)}  ${String(r.p50).padStart(6)}  ${String(r.p99).padStart(6)}  ${String(r.total).padStart(7)}  ${String(r.bad).padStart(6)}`,
  );
}

async function main(): Promise<void> {
  const duration = arg('duration', 30);
  const warmup = arg('warmup', 10);
  const connections = arg('connections', 32);
  const partitions = arg('partitions', 0);
  const rate = arg('rate', 0);
  if (!(Number.isFinite(rate) && rate >= 0)) throw new Error('--rate must be a number of requests per second');
  const bi = process.argv.indexOf('--brokers');
  const broker = bi >= 0 ? null : await startTestBroker();
  const bus = bi >= 0 ? `kafka://${process.argv[bi + 1]}` : broker!.url;
  const homes = [0, 1, 2, 3].map((i) => mkdtempSync(join(tmpdir(), `capulator-bench-ks${i}-`)));
  const token = capulator(homes[0], ['token', 'create', '--name', 'bench', '--scopes', '*']).trim().split('\n').pop()!.trim();
  for (const h of homes.slice(1)) copyFileSync(join(homes[0], 'tokens.json'), join(h, 'tokens.json'));
  const rows: Array<[string, Result]> = [];
  const pflag = partitions > 0 ? ['--partitions', String(partitions)] : [];
  try {
    // embedded default
    {
      const gw = await serve(homes[0], [], /capulator serving http (\S+)/);
      await load(gw.url, token, warmup, connections, rate); // warm-up
      rows.push([`embedded: 1 gateway, ${connections} conns`, await load(gw.url, token, duration, connections, rate)]);
      await stop(gw.child);
    }
    // Kafka: two gateways, one runtime worker
    {
      const [a, b, w] = await Promise.all([
        serve(homes[1], ['--bus', bus, '--role', 'gateway', ...pflag], /capulator serving http (\S+)/),
        serve(homes[2], ['--bus', bus, '--role', 'gateway', ...pflag], /capulator serving http (\S+)/),
        serve(homes[3], ['--bus', bus, '--role', 'runtime', ...pflag], /capulator runtime worker (\S+) on/),
      ]);
      const half = Math.max(1, Math.floor(connections / 2));
      const r2 = rate / 2;
      await Promise.all([load(a.url, token, warmup, half, r2), load(b.url, token, warmup, half, r2)]); // warm-up
      const [ra, rb] = await Promise.all([load(a.url, token, duration, half, r2), load(b.url, token, duration, half, r2)]);
      rows.push([`kafka: gateway A, ${half} conns`, ra]);
      rows.push([`kafka: gateway B, ${half} conns`, rb]);
      rows.push([
        `kafka: A + B together`,
        { accepted: ra.accepted + rb.accepted, refused: ra.refused + rb.refused, p50: Math.max(ra.p50, rb.p50), p99: Math.max(ra.p99, rb.p99), total: ra.total + rb.total, bad: ra.bad + rb.bad },
      ]);
      await Promise.all([stop(a.child), stop(b.child), stop(w.child)]);
    }
  } finally {
    await broker?.stop();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  }
  console.log(`\nPOST /v1/runs on loopback, ${duration} s per target after a ${warmup} s warm-up, ${rate > 0 ? `${rate} requests/s offered per target` : 'as fast as the connections go'}, node ${process.version}`);
  console.log('target                                   accepted/s  refused/s  p50 ms  p99 ms    total  errors');
  for (const [n, r] of rows) print(n, r);
  console.log('(latency over all answers; p50/p99 of "A + B together": the worse of the two gateways)');
  const emb = rows[0][1];
  const kaf = rows[rows.length - 1][1];
  console.log(`kafka accepted/s vs embedded: ${((kaf.accepted / Math.max(emb.accepted, 1e-9)) * 100).toFixed(0)}% (target >= 100%); kafka p99 ${kaf.p99} ms (target <= 50 ms)`);
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
