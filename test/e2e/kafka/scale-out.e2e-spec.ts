import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';
import { connectKafkaEventStore, runStream, type KafkaEventStore, type StoredEvent } from '@capulator/events';
import { fixtureImages } from '../../fixtures/images';
import { policyYaml, reapContainers, TestCluster, until, type BusProcess } from './cluster';

/**
 * The scaled-out set-up as separate processes: one Kafka broker, two gateways
 * (`capulator serve --bus … --role gateway`) and two runtime workers (`--role runtime`), real
 * runs under runc. Needs root, runc and the fixture images.
 */
const POLICY = policyYaml('scale-out', { action: 'deny', audit: 'all' });

describe('capulator serve --bus kafka (2 gateways, 2 runtime workers, 1 broker)', () => {
  const cluster = new TestCluster();
  let gwA: BusProcess;
  let gwB: BusProcess;
  let w1: BusProcess;
  let w2: BusProcess;
  let store: KafkaEventStore;
  let token: string;
  const reap: string[] = [];

  const api = async (base: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': typeof body === 'string' ? 'application/yaml' : 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
  };
  /** The run's events over SSE (the stream ends after RunExited/RunFailed). */
  const sse = async (base: string, id: string) => {
    const { status, body } = await api(base, 'GET', `/v1/runs/${id}/events`);
    assert.equal(status, 200);
    return (body as string)
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as StoredEvent);
  };
  const streamOf = async (id: string) => {
    const out: StoredEvent[] = [];
    for await (const e of store.readStream(runStream(id))) out.push(e);
    return out;
  };
  const ended = (id: string) =>
    until(`run ${id} ended (seen on gateway B)`, async () => {
      const r = await api(gwB.url!, 'GET', `/v1/runs/${id}`);
      return r.status === 200 && (r.body.status === 'exited' || r.body.status === 'failed') ? r.body : undefined;
    }, 120_000);
  const submit = async (base: string, command: string[]) => {
    const r = await api(base, 'POST', '/v1/runs', { image: 'bb:1', command, policy: 'scale-out' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id as string;
  };
  /** Both gateways' read models and event streams agree with the log, with no gaps or duplicates. */
  const sameEverywhere = async (id: string) => {
    const log = await streamOf(id);
    assert.deepEqual(log.map((e) => e.streamVersion), log.map((_, i) => i + 1), `run ${id}: stream versions`);
    const [a, b] = await Promise.all([sse(gwA.url!, id), sse(gwB.url!, id)]);
    assert.deepEqual(a, b, `run ${id}: events differ between the gateways`);
    assert.deepEqual(a.map((e) => e.position), log.map((e) => e.position), `run ${id}: SSE vs log`);
    assert.deepEqual(a.map((e) => e.hash), log.map((e) => e.hash));
    const [va, vb] = await Promise.all([api(gwA.url!, 'GET', `/v1/runs/${id}`), api(gwB.url!, 'GET', `/v1/runs/${id}`)]);
    assert.deepEqual(va.body, vb.body, `run ${id}: run views differ`);
    return { log, view: va.body };
  };

  before(async () => {
    ({ token } = await cluster.start());
    const fx = fixtureImages();
    const [h1, h2] = [cluster.workerHome(fx.busyboxPing.dockerArchive, 'bb:1'), cluster.workerHome(fx.busyboxPing.dockerArchive, 'bb:1')];
    [gwA, gwB, w1, w2] = await Promise.all([
      cluster.serve('gateway', cluster.gatewayHomes[0]),
      cluster.serve('gateway', cluster.gatewayHomes[1]),
      cluster.serve('runtime', h1, ['--concurrency', '1']),
      cluster.serve('runtime', h2, ['--concurrency', '1']),
    ]);
    store = await connectKafkaEventStore({ brokers: cluster.broker.brokers });
    const p = await api(gwA.url!, 'POST', '/v1/policies', POLICY);
    assert.equal(p.status, 201, JSON.stringify(p.body));
    // the policy reaches gateway B through the log
    await until('policy on B', async () => ((await api(gwB.url!, 'GET', '/v1/policies/scale-out/versions/1')).status === 200 ? true : undefined));
  });

  after(() =>
    cluster.stop({
      afterProcesses: async () => {
        await store?.close();
        reapContainers(reap);
      },
    }),
  );

  describe('when runs are submitted through gateway A', () => {
    it('gateway B shows them exited, with the same events as A and the log', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await submit(gwA.url!, ['/bin/true']));
      for (const id of ids) {
        const run = await ended(id);
        assert.equal(run.status, 'exited', JSON.stringify(run));
        assert.equal(run.exitCode, 0);
        const { log } = await sameEverywhere(id);
        const types = log.map((e) => e.type);
        assert.deepEqual([types[0], types[1], types[2], types[types.length - 1]], ['RunRequested', 'RunClaimed', 'RunStarted', 'RunExited']);
        assert.equal(types.filter((t) => t === 'RunStarted').length, 1);
      }
      // both workers took part (the runs are spread over the command topic's partitions)
      const claimants = new Set<string>();
      for (const id of ids) for (const e of await streamOf(id)) if (e.type === 'RunClaimed') claimants.add((e.payload as { worker: string }).worker);
      assert.ok([...claimants].every((c) => c === w1.workerId || c === w2.workerId), [...claimants].join());
    });
  });

  describe('when a run submitted on gateway A is stopped on gateway B', () => {
    it('StopRun reaches the worker that runs it and the container is killed', async () => {
      const id = await submit(gwA.url!, ['/bin/sleep', '60']);
      await until('running on B', async () => ((await api(gwB.url!, 'GET', `/v1/runs/${id}`)).body.status === 'running' ? true : undefined));
      const t0 = Date.now();
      const del = await api(gwB.url!, 'DELETE', `/v1/runs/${id}`);
      assert.equal(del.status, 202, JSON.stringify(del.body));
      const run = await ended(id);
      assert.ok(Date.now() - t0 < 30_000);
      assert.equal(run.status, 'exited', JSON.stringify(run));
      assert.equal(run.signal, 'SIGKILL');
      await sameEverywhere(id);
    });
  });

  describe('terminals through the bus: a worker relays output, stdin and window sizes', () => {
    /** GET /v1/runs/{id}/logs (the whole output, once it is complete; `stream`: only that one) */
    const logsOf = async (base: string, id: string, stream?: 'stdout' | 'stderr') => {
      const { status, body } = await api(base, 'GET', `/v1/runs/${id}/logs?follow=1`);
      assert.equal(status, 200);
      const lines = (body as string).split('\n');
      let text = '';
      let end = false;
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] === 'event: end') end = true;
        if (!lines[i].startsWith('data:') || end) continue;
        const c = JSON.parse(lines[i].slice(5)) as { text: string; stream: string };
        if (!stream || c.stream === stream) text += c.text;
      }
      assert.ok(end, `run ${id}: the logs stream ended without "end"`);
      return text;
    };

    it('run --server -i: the program reads the client\'s stdin and its output comes back, on both gateways', async () => {
      const input = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join('\n') + '\n';
      const r = spawnSync(process.execPath, [join(repoRoot(__dirname), 'bin', 'capulator'), 'run', '--server', gwA.url!, '--token', token, '-i', 'bb:1', '--', '/bin/sh', '-c', 'read a; read b; echo "$a"; echo "$b"; wc -l; echo end; echo to-stderr >&2'], {
        input,
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: cluster.gatewayHomes[0] },
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'line 0\nline 1\n2998\nend\n');
      assert.match(r.stderr, /^to-stderr$/m);
      const id = /run (\S+) submitted/.exec(r.stderr)?.[1];
      assert.ok(id, r.stderr);
      // gateway B kept the same output from the relay (each stream in order; the two pipes' interleaving is the reader's)
      assert.equal(await logsOf(gwB.url!, id, 'stdout'), 'line 0\nline 1\n2998\nend\n');
      assert.equal(await logsOf(gwB.url!, id, 'stderr'), 'to-stderr\n');
    });

    it('-t: the window size set on gateway B reaches the program\'s terminal, stdin sent on A follows it', async () => {
      const r = await api(gwA.url!, 'POST', '/v1/runs', { image: 'bb:1', command: ['/bin/sh', '-c', 'read x; i=0; while [ "$(stty size)" != "33 99" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; stty size; echo "got $x"'], policy: 'scale-out', workload: { interactive: true, tty: true } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      const id = r.body.id as string;
      await until('the run on B', async () => ((await api(gwB.url!, 'GET', `/v1/runs/${id}`)).status === 200 ? true : undefined));
      // answered once a worker has started the run; the size and the stdin travel apart (as docker's
      // resize and attach do), so the program waits up to 5 s for the size rather than racing it
      const z = await api(gwB.url!, 'POST', `/v1/runs/${id}/resize`, { rows: 33, cols: 99 });
      assert.equal(z.status, 204, JSON.stringify(z.body));
      const w = await fetch(`${gwA.url}/v1/runs/${id}/stdin?eof=1`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' }, body: 'hello\n' });
      assert.equal(w.status, 204, await w.text());
      const run = await ended(id);
      assert.equal(run.status, 'exited', JSON.stringify(run));
      assert.equal(run.exitCode, 0);
      const out = await logsOf(gwA.url!, id);
      assert.match(out, /33 99\r?\n/);
      assert.match(out, /got hello/);
      // stdin after the end: 409, as on a server that runs it
      const late = await fetch(`${gwB.url}/v1/runs/${id}/stdin`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' }, body: 'x' });
      assert.equal(late.status, 409);
    });
  });

  describe('when a runtime worker is SIGKILLed while it holds queued runs', () => {
    it('the other worker takes them over; no run executes twice and no event is lost or duplicated', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await submit(i % 2 ? gwB.url! : gwA.url!, ['/bin/sleep', '2']));
      reap.push(...ids);
      const claimOf = async (id: string) => (await streamOf(id)).find((e) => e.type === 'RunClaimed')?.payload as { worker: string } | undefined;
      await until('a run claimed by worker 1', async () => {
        for (const id of ids) if ((await claimOf(id))?.worker === w1.workerId) return true;
        return undefined;
      });
      await w1.kill();
      // what the dead worker held: its running run (claimed, no outcome) and runs nobody has claimed
      const held: string[] = [];
      const unclaimed: string[] = [];
      for (const id of ids) {
        const s = await streamOf(id);
        const claim = s.find((e) => e.type === 'RunClaimed')?.payload as { worker: string } | undefined;
        const done = s.some((e) => e.type === 'RunExited' || e.type === 'RunFailed');
        if (!claim) unclaimed.push(id);
        else if (claim.worker === w1.workerId && !done) held.push(id);
      }
      assert.ok(unclaimed.length >= 2, `expected queued runs at the kill, got ${unclaimed.length}`);

      for (const id of ids) {
        const run = await ended(id);
        const { log } = await sameEverywhere(id);
        const started = log.filter((e) => e.type === 'RunStarted').length;
        const claims = log.filter((e) => e.type === 'RunClaimed');
        assert.ok(started <= 1, `run ${id} started ${started} times`);
        assert.equal(claims.length, 1, `run ${id} claimed ${claims.length} times`);
        if (held.includes(id)) {
          assert.equal(run.status, 'failed', JSON.stringify(run));
          assert.match(run.reason, /worker lost/);
        } else if (unclaimed.includes(id)) {
          assert.equal(run.status, 'exited', JSON.stringify(run));
          assert.equal((claims[0].payload as { worker: string }).worker, w2.workerId);
          assert.equal(started, 1);
          assert.equal(run.exitCode, 0);
        } else {
          assert.equal(run.status, 'exited', JSON.stringify(run));
        }
      }
      // worker 2 was given every partition once worker 1 was gone
      assert.match(w2.output(), /"msg":"assigned partitions","partitions":\[0,1,2,3,4,5,6,7\]/);
    });
  });
});
