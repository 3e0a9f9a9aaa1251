import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectKafkaEventStore, executeRunCommand, runStream, type KafkaEventStore, type StoredEvent } from '@capulator/events';
import { startTestBroker, type TestBroker } from '../../../libs/events/src/testing/kafka-broker';
import { KafkaRunExecutor } from '../../gateway/src/bus/kafka-run.executor';
import { startRuntime, type RuntimeApp } from './main';
import type { RunOrder, WorkerRunFn } from './worker/commands';

/**
 * The runtime app against a real broker: a claimed run goes through the CommandBus
 * (ExecuteRunCommand) and the lifecycle events the worker appends come back on the EventBus
 * (RunLifecycleLogger logs each, with its position). The RunFn is a stand-in for runc.
 */
const policy = { name: 'p', version: 1, hash: 'sha256:00' };
const sets = { bounding: ['CAP_NET_RAW'], permitted: ['CAP_NET_RAW'], effective: ['CAP_NET_RAW'], inheritable: [], ambient: [] };
const fake: WorkerRunFn = async function* () {
  const at = new Date().toISOString();
  yield { type: 'StartRun', at, imageDigest: 'sha256:1', user: { uid: 0, gid: 0 }, granted: sets, provenance: { CAP_NET_RAW: ['ping-raw'] }, policy, pid: 1 };
  yield { type: 'FailRun', at, stage: 'agent', reason: 'the agent died while the container ran' };
};

describe('the runtime app (apps/runtime/src/main.ts)', () => {
  let broker: TestBroker;
  let store: KafkaEventStore;
  let rt: RuntimeApp;
  const logs: Array<Record<string, unknown>> = [];
  before(async () => {
    broker = await startTestBroker();
    store = await connectKafkaEventStore({ brokers: broker.brokers });
    rt = await startRuntime({ bus: { brokers: broker.brokers }, store, home: '/nonexistent', concurrency: 1, log: (r) => logs.push(r), run: fake });
  });
  after(async () => {
    await rt?.close();
    await store?.close();
    await broker?.stop();
  });

  it('executes a run through the CommandBus and publishes its lifecycle on the EventBus; one terminal event', async () => {
    const order: RunOrder = { runId: 'app-1', image: 'img', command: ['true'], env: [], policy, learn: false, mounts: [] };
    await executeRunCommand(store, order.runId, { type: 'RequestRun', at: new Date().toISOString(), request: order });
    const exec = await KafkaRunExecutor.connect({ brokers: broker.brokers });
    try {
      await exec.submit(order);
      const deadline = Date.now() + 60_000;
      let events: StoredEvent[] = [];
      while (!events.some((e) => e.type === 'RunFailed')) {
        if (Date.now() > deadline) throw new Error('timed out waiting for RunFailed');
        await new Promise((r) => setTimeout(r, 100));
        events = [];
        for await (const e of store.readStream(runStream(order.runId))) events.push(e);
      }
      assert.deepEqual(events.map((e) => e.type), ['RunRequested', 'RunClaimed', 'RunStarted', 'RunFailed']);
      const failedAt = events[3].position;
      const seen = () => logs.filter((l) => l.runId === order.runId).map((l) => l.msg);
      for (let i = 0; i < 50 && !seen().includes('run failed'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(seen(), ['run claimed', 'run started', 'run failed']);
      const failed = logs.find((l) => l.msg === 'run failed')!;
      assert.deepEqual([failed.stage, failed.reason, failed.position], ['agent', 'the agent died while the container ran', failedAt]);
    } finally {
      await exec.close();
    }
  });
});
