/**
 * Submission throughput of the gateway against a bare Nest endpoint, in the same run.
 *
 *   node dist/bench/submit.bench.js [--duration 10] [--connections 32] [--e2e 20]
 *
 * 1. bare:    a Nest app on the same HTTP adapter (platform-express, JSON body parser) whose only
 *             route, POST /v1/runs, answers 202 {id, status} and does nothing else.
 * 2. gateway: the real gateway (token auth, global ValidationPipe, policy lint, RunRequested
 *             appended to the SQLite store, queued on the in-process executor). The image does not
 *             exist, so the runtime fails each run at its image stage right away: what is measured
 *             is submission, which never waits for a run.
 * 3. e2e:     submit `/bin/true` (busybox fixture image, runc + agent) → RunExited seen over SSE;
 *             median and p90 of sequential runs (needs root, runc and the fixture images).
 */
import 'reflect-metadata';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { startGateway } from '../apps/gateway/src/gateway.app';
import { TokenStore } from '../apps/gateway/src/auth/token-store';
import { fixtureImages } from '../test/fixtures/images';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<{
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}>;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

@Controller('v1/runs')
class BareController {
  @Post()
  @HttpCode(202)
  submit(@Body() _body: unknown) {
    return { id: randomUUID(), status: 'queued' };
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
}

async function load(name: string, url: string, headers: Record<string, string>, duration: number, connections: number): Promise<Row> {
  const body = JSON.stringify({ image: 'bench-missing:1', command: ['/bin/true'] });
  const opts = { url: `${url}/v1/runs`, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, connections, pipelining: 1 };
  await autocannon({ ...opts, duration: 2 }); // warm-up
  const r = await autocannon({ ...opts, duration });
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

async function main(): Promise<void> {
  const duration = arg('duration', 10);
  const connections = arg('connections', 32);
  const e2eRuns = arg('e2e', 20);
  const rows: Row[] = [];

  const bare = await NestFactory.create<NestExpressApplication>(BareModule, { logger: false });
  await bare.listen(0, '127.0.0.1');
  const bareUrl = `http://127.0.0.1:${(bare.getHttpServer().address() as AddressInfo).port}`;
  rows.push(await load('bare Nest endpoint (202 only)', bareUrl, {}, duration, connections));
  await bare.close();

  const home = mkdtempSync(join(tmpdir(), 'capulator-bench-'));
  const token = new TokenStore(join(home, 'tokens.json')).create('bench', ['*']).token;
  const gw = await startGateway({ home, http: { host: '127.0.0.1', port: 0 }, grpc: false, logLevel: 'error' }); // the default queue bound, as kafka-submit.bench
  const auth = { authorization: `Bearer ${token}` };
  rows.push(await load('gateway POST /v1/runs', gw.httpUrl, auth, duration, connections));

  console.log(`\nPOST /v1/runs on loopback, ${connections} connections, ${duration} s (after a 2 s warm-up), node ${process.version}`);
  console.log('endpoint                           req/s    p50 ms  p99 ms   total  non-2xx  errors');
  for (const r of rows) {
    console.log(`${r.name.padEnd(33)} ${r.rps.toFixed(0).padStart(6)}  ${String(r.p50).padStart(6)}  ${String(r.p99).padStart(6)}  ${String(r.total).padStart(6)}  ${String(r.non2xx).padStart(7)}  ${String(r.errors).padStart(6)}`);
  }
  console.log(`gateway / bare: ${((rows[1].rps / rows[0].rps) * 100).toFixed(1)} % of the bare endpoint's throughput`);

  if (e2eRuns > 0) {
    try {
      const archive = fixtureImages().busyboxPing.dockerArchive;
      let r = await fetch(`${gw.httpUrl}/v1/images?tag=bench:1`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-tar' }, body: readFileSync(archive) });
      if (r.status !== 201) throw new Error(`image import: ${r.status} ${await r.text()}`);
      const times: number[] = [];
      for (let i = 0; i < e2eRuns + 1; i++) {
        const t0 = process.hrtime.bigint();
        r = await fetch(`${gw.httpUrl}/v1/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ image: 'bench:1', command: ['/bin/true'] }) });
        const { id } = (await r.json()) as { id: string };
        const sse = await fetch(`${gw.httpUrl}/v1/runs/${id}/events`, { headers: auth });
        const text = await sse.text(); // the stream ends after the terminal event
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (!text.includes('event: RunExited')) throw new Error(`run ${id} did not exit: ${text.slice(-300)}`);
        if (i > 0) times.push(ms); // the first run warms caches
      }
      times.sort((a, b) => a - b);
      const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
      console.log(`\nend to end, /bin/true: submit → container exited → RunExited over SSE, ${times.length} sequential runs`);
      console.log(`median ${q(0.5).toFixed(1)} ms  p90 ${q(0.9).toFixed(1)} ms  min ${times[0].toFixed(1)} ms  max ${times[times.length - 1].toFixed(1)} ms`);
    } catch (err) {
      console.log(`\nend to end: skipped (${(err as Error).message})`);
    }
  }
  await gw.close();
  rmSync(home, { recursive: true, force: true });
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
