import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connectKafkaEventStore, runStream, type KafkaEventStore } from '@capulator/events';
import { fixtureImages } from '../../fixtures/images';
import { gatewayApi, policyYaml, reapContainers, runStreamOf, TestCluster, until, type BusProcess } from './cluster';

const POLICY = policyYaml('orphans', { action: 'deny', audit: 'all' });

/**
 * Orphan recovery on the Kafka bus: a run whose RunRequested reached the event log but whose
 * command never reached the command topic (its gateway died between the two) would stay queued
 * for ever. The gateway records it failed once it has been `requested` for 30 s and the workers
 * have finished every command of its partition; a run that was answered 202 (its command sent)
 * is never touched. The orphan is made here as such a gateway leaves it: a RunRequested appended
 * to the log, with no command.
 */
describe('Kafka bus: a run requested whose command never reached the workers', () => {
  const cluster = new TestCluster();
  let gw: BusProcess;
  let store: KafkaEventStore;
  const runs: string[] = [];

  const api = (method: string, path: string, body?: unknown) => gatewayApi(gw.url!, cluster.token, method, path, body);
  const streamOf = (id: string) => runStreamOf(store, id);

  before(async () => {
    await cluster.start();
    const wh = cluster.workerHome(fixtureImages().busyboxPing.dockerArchive, 'bb:1');
    [gw] = await Promise.all([cluster.serve('gateway', cluster.gatewayHomes[0]), cluster.serve('runtime', wh, ['--concurrency', '1'])]);
    store = await connectKafkaEventStore({ brokers: cluster.broker.brokers });
    assert.equal((await api('POST', '/v1/policies', POLICY)).status, 201);
  });

  after(() =>
    cluster.stop({
      afterProcesses: async () => {
        await store?.close();
        reapContainers(runs);
      },
    }),
  );

  it('is recorded failed (never run), while the runs answered 202 run as usual', async () => {
    // a run submitted as usual: its RunRequested is the model of the orphan's
    const ok = await api('POST', '/v1/runs', { image: 'bb:1', command: ['true'], policy: 'orphans' });
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    runs.push(ok.body.id);
    await until('the submitted run ended', async () => ((await api('GET', `/v1/runs/${ok.body.id}`)).body.status === 'exited' ? true : undefined), 120_000);
    const requested = (await streamOf(ok.body.id))[0];
    assert.equal(requested.type, 'RunRequested');

    // the orphan: its RunRequested in the log, no command (its gateway died before sending it)
    const id = randomUUID();
    runs.push(id);
    const payload = { ...(requested.payload as Record<string, unknown>), runId: id };
    await store.append(runStream(id), 'no-stream', [{ type: 'RunRequested', at: new Date().toISOString(), payload } as never]);
    const t0 = Date.now();
    await until('the gateway sees the orphan queued', async () => ((await api('GET', `/v1/runs/${id}`)).body.status === 'queued' ? true : undefined), 30_000);

    const view = await until(
      'the orphan recorded failed',
      async () => {
        const r = await api('GET', `/v1/runs/${id}`);
        return r.body.status === 'failed' ? r.body : undefined;
      },
      120_000,
    );
    const waited = Date.now() - t0;
    console.log(`orphan recorded failed after ${waited} ms`);
    assert.ok(waited >= 25_000, `not before it has been requested for 30 s (${waited} ms)`);
    assert.match(view.reason, /^orphaned: no command for this run reached the workers/);
    assert.equal(view.stage, 'runtime');
    const types = (await streamOf(id)).map((e) => e.type);
    assert.deepEqual(types, ['RunRequested', 'RunFailed'], 'never claimed, never started');
    const metrics = (await api('GET', '/metrics')).body as string;
    assert.equal(Number(/^capulator_runs_orphaned_total (\S+)$/m.exec(metrics)?.[1]), 1);

    // the run answered 202 kept its one ending, and a new one still runs
    assert.deepEqual((await streamOf(ok.body.id)).filter((e) => e.type === 'RunExited' || e.type === 'RunFailed').map((e) => e.type), ['RunExited']);
    const after = await api('POST', '/v1/runs', { image: 'bb:1', command: ['true'], policy: 'orphans' });
    assert.equal(after.status, 202);
    runs.push(after.body.id);
    await until('a later run ended', async () => ((await api('GET', `/v1/runs/${after.body.id}`)).body.status === 'exited' ? true : undefined), 120_000);
  });
});
