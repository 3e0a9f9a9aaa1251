import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectKafkaEventStore, runStream, type KafkaEventStore, type StoredEvent } from '@capulator/events';
import type { TestBroker } from '../../../libs/events/src/testing/kafka-broker';
import { fixtureImages } from '../../fixtures/images';
import { policyYaml, reapContainers, TestCluster, until, type BusProcess } from './cluster';

const POLICY = policyYaml('faults', { action: 'deny', audit: 'all' });

/**
 * Broker faults during a burst of submissions (one gateway, one runtime worker, separate
 * processes, real runs): the broker SIGSTOPped, then SIGKILLed and restarted. Every 202 runs
 * exactly once, every 503 never runs and ends `failed` (no phantom `queued`), refusals come
 * within a couple of seconds with Retry-After, and no process exits.
 */
describe('Kafka bus: broker faults keep the submission contract', () => {
  const cluster = new TestCluster();
  let broker: TestBroker;
  let gw: BusProcess;
  let worker: BusProcess;
  let store: KafkaEventStore | undefined;
  let token: string;
  const accepted: string[] = [];
  const refused: Array<{ ms: number; retryAfter: string | null }> = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(gw.url! + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': typeof body === 'string' ? 'application/yaml' : 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
  };
  /** Submits `n` runs, 4 at a time, for as long as the fault lasts; records each answer. */
  const burst = async (n: number) => {
    const one = async () => {
      const t0 = Date.now();
      const r = await api('POST', '/v1/runs', { image: 'bb:1', command: ['true'], policy: 'faults' });
      if (r.status === 202) accepted.push(r.body.id);
      else {
        assert.equal(r.status, 503, JSON.stringify(r.body));
        refused.push({ ms: Date.now() - t0, retryAfter: r.retryAfter });
      }
    };
    for (let i = 0; i < n; i += 4) await Promise.all([one(), one(), one(), one()]);
  };
  const readyz = async () => (await fetch(gw.url! + '/readyz')).status;
  const metric = async (name: string) => {
    const text = (await api('GET', '/metrics')).body as string;
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };

  before(async () => {
    ({ broker, token } = await cluster.start());
    const wh = cluster.workerHome(fixtureImages().busyboxPing.dockerArchive, 'bb:1');
    [gw, worker] = await Promise.all([cluster.serve('gateway', cluster.gatewayHomes[0]), cluster.serve('runtime', wh, ['--concurrency', '2'])]);
    const p = await api('POST', '/v1/policies', POLICY);
    assert.equal(p.status, 201, JSON.stringify(p.body));
  });

  after(async () => {
    const t0 = Date.now();
    await cluster.stop({
      afterProcesses: async () => {
        console.log(`stopped in ${Date.now() - t0} ms; worker: ${worker?.output().split('\n').filter((l) => /shutdown|stopped/.test(l)).join(' | ')}; gateway: ${gw?.output().split('\n').filter((l) => /shutdown|stopped/.test(l)).join(' | ')}`);
        await store?.close();
        reapContainers(accepted);
      },
    });
  });

  it('SIGSTOP for 60 s, then SIGKILL for 10 s: 202 runs exactly once, 503 never runs, nobody exits', async () => {
    await burst(8); // healthy
    assert.equal(await readyz(), 200);
    broker.signal('SIGSTOP');
    const stopped = Date.now();
    try {
      while (Date.now() - stopped < 60_000) await burst(4);
      assert.equal(await readyz(), 503, 'readyz while the broker is paused');
    } finally {
      broker.signal('SIGCONT');
    }
    await burst(4);
    broker.signal('SIGKILL');
    const killed = Date.now();
    while (Date.now() - killed < 10_000) await burst(4);
    await broker.restart();
    await until('the gateway sees the broker again', async () => ((await readyz()) === 200 ? true : undefined), 120_000);
    await burst(8);
    assert.ok(refused.length > 0, 'the outage refused submissions');
    assert.ok(accepted.length > 0);
    // refusals are quick and say when to retry
    const ms = refused.map((r) => r.ms).sort((a, b) => a - b);
    console.log(`refusals during the outage: ${ms.length}, median ${ms[ms.length >> 1]} ms, slowest ${ms[ms.length - 1]} ms`);
    for (const r of refused) {
      assert.equal(r.retryAfter, '1');
      assert.ok(r.ms < 4_000, `a refusal took ${r.ms} ms`);
    }
    // every accepted run ran exactly once; every refused one never started and is not left queued
    store = await connectKafkaEventStore({ brokers: broker.brokers });
    const streams = async (ids: string[]) => Promise.all(ids.map(async (id) => {
      const evs: StoredEvent[] = [];
      for await (const e of store!.readStream(runStream(id))) evs.push(e);
      return evs;
    }));
    const open = async () => (await streams(accepted)).map((evs, i) => ({ id: accepted[i], types: evs.map((e) => e.type) })).filter((r) => !r.types.some((t) => t === 'RunExited' || t === 'RunFailed'));
    try {
      await until('every accepted run ended', async () => ((await open()).length === 0 ? true : undefined), 180_000);
    } catch (e) {
      // which runs, what they recorded, and what the worker said of them
      const left = await open();
      const said = (id: string) => worker.output().split('\n').filter((l) => l.includes(id)).slice(-8).join('\n');
      throw new Error(`${(e as Error).message}: ${left.length} of ${accepted.length} runs open\n${left.map((r) => `run ${r.id}: ${r.types.join(',') || '(no events)'}\n${said(r.id)}`).join('\n')}\nworker warnings:\n${worker.output().split('\n').filter((l) => /"level":"(warn|error)"/.test(l)).slice(-30).join('\n')}`);
    }
    for (const [i, evs] of (await streams(accepted)).entries()) {
      const types = evs.map((e) => (e.type === 'RunFailed' ? `RunFailed(${(e.payload as { reason: string }).reason})` : e.type));
      const why = () => `run ${accepted[i]}: ${types.join(',')}\nworker: ${worker.output().split('\n').filter((l) => l.includes(accepted[i]) || /"level":"(warn|error)"/.test(l)).slice(0, 20).join('\n')}`;
      assert.equal(types.filter((t) => t === 'RunStarted').length, 1, why());
      assert.equal(types.filter((t) => t === 'RunExited').length, 1, why());
    }
    const list = async () => ((await api('GET', '/v1/runs?limit=1000')).body as { runs: Array<{ id: string; status: string }> }).runs;
    const view = await list();
    const acceptedSet = new Set(accepted);
    // a refused submission whose RunRequested reached the log anyway is recorded failed, never left queued
    const refusedInLog = async () => (await list()).filter((r) => !acceptedSet.has(r.id));
    await until('refused runs settled', async () => ((await refusedInLog()).every((r) => r.status === 'failed') ? true : undefined), 60_000);
    const refusedRuns = await refusedInLog();
    for (const r of refusedRuns) assert.equal(r.status, 'failed', `refused run ${r.id} is ${r.status}`);
    for (const [i, evs] of (await streams(refusedRuns.map((r) => r.id))).entries()) {
      assert.ok(!evs.some((e) => e.type === 'RunStarted'), `refused run ${refusedRuns[i].id} started: ${evs.map((e) => e.type).join(',')}`);
    }
    assert.ok(view.length >= accepted.length);
    assert.equal(await metric('capulator_runs_refused_total'), refused.length);
    assert.ok((await metric('capulator_kafka_outages_total')) >= 1);
    // no process exited
    assert.equal(gw.child.exitCode, null);
    assert.equal(worker.child.exitCode, null);
    assert.match(gw.output(), /"msg":"Kafka broker unreachable"/);
    assert.match(gw.output(), /"msg":"Kafka broker reachable again"/);
  });
});
