import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { connectKafkaEventStore, runStream, type KafkaEventStore, type NewEvent, type StoredEvent } from '@capulator/events';
import { startTestBroker, type TestBroker } from '../../../../libs/events/src/testing/kafka-broker';
import { KafkaRunExecutor } from '../../../gateway/src/bus/kafka-run.executor';
import { RuntimeWorker } from './runtime-worker';
import type { RunOrder, WorkerRunFn } from './commands';

/**
 * The worker against a real Kafka broker. The RunFn here is a stand-in for the runner (runc is
 * exercised by test/e2e/kafka): it records which worker executed which run.
 */
let broker: TestBroker;
let suite = 0;
before(async () => {
  broker = await startTestBroker();
});
after(async () => broker?.stop());

const policy = { name: 'p', version: 1, hash: 'sha256:00' };
const order = (runId: string, command: string[] = ['true']): RunOrder => ({ runId, image: 'img', command, env: [], policy, learn: false, mounts: [] });

function fakeRun(executed: Map<string, string[]>, name: string, holdMs = 0): WorkerRunFn {
  return async function* (req, { signal }) {
    executed.set(req.runId, [...(executed.get(req.runId) ?? []), name]);
    const at = new Date().toISOString();
    yield { type: 'StartRun', at, imageDigest: 'sha256:1', user: { uid: 0, gid: 0 }, granted: { bounding: [], permitted: [], effective: [], inheritable: [], ambient: [] }, provenance: {}, policy, pid: 1 };
    if (holdMs > 0 || req.command[0] === 'sleep') {
      const ms = req.command[0] === 'sleep' ? Number(req.command[1]) : holdMs;
      await new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
    yield { type: 'ExitRun', at: new Date().toISOString(), exit: { exitCode: signal.aborted ? null : 0, signal: signal.aborted ? 'SIGKILL' : null, counts: { allow: 0, deny: 0, emulate: 0 }, lostEvents: 0, durationMs: 1 } };
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function streamOf(store: KafkaEventStore, runId: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  for await (const e of store.readStream(runStream(runId))) out.push(e);
  return out;
}

/** A fresh topic set per test, so tests do not see each other's commands. */
function topics() {
  const n = `${process.pid}.${++suite}`;
  return { topic: `capulator.commands.t${n}`, dlqTopic: `capulator.commands.t${n}.dlq`, groupId: `capulator-runtime-t${n}`, events: `capulator.events.t${n}` };
}

async function request(store: KafkaEventStore, exec: KafkaRunExecutor, o: RunOrder): Promise<void> {
  const requested: NewEvent = { type: 'RunRequested', at: new Date().toISOString(), payload: { ...o } };
  await store.append(runStream(o.runId), 'no-stream', [requested]);
  await exec.submit(o);
}

describe('RuntimeWorker', () => {
  describe('when two workers share the command topic', () => {
    it('executes every run exactly once and records its outcome', async () => {
      const t = topics();
      const store = await connectKafkaEventStore({ brokers: broker.brokers, topic: t.events });
      const executed = new Map<string, string[]>();
      const common = { brokers: broker.brokers, store, topic: t.topic, dlqTopic: t.dlqTopic, groupId: t.groupId, partitions: 4, sessionTimeoutMs: 6000 };
      const w1 = await RuntimeWorker.start({ ...common, run: fakeRun(executed, 'w1', 20), concurrency: 2 });
      const w2 = await RuntimeWorker.start({ ...common, run: fakeRun(executed, 'w2', 20), concurrency: 2 });
      const exec = await KafkaRunExecutor.connect({ brokers: broker.brokers, topic: t.topic, partitions: 4 });
      try {
        const ids = Array.from({ length: 30 }, () => randomUUID());
        await Promise.all(ids.map((id) => request(store, exec, order(id))));
        for (const id of ids) {
          const s = await until(`run ${id} exited`, async () => {
            const evs = await streamOf(store, id);
            return evs.some((e) => e.type === 'RunExited') ? evs : undefined;
          });
          assert.deepEqual(s.map((e) => e.type), ['RunRequested', 'RunClaimed', 'RunStarted', 'RunExited']);
          assert.equal(executed.get(id)?.length, 1, `run ${id} executed by ${executed.get(id)}`);
        }
        assert.equal(w1.counters.executed + w2.counters.executed, ids.length);
      } finally {
        await exec.close();
        await w1.close();
        await w2.close();
        await store.close();
      }
    });
  });

  describe('when a worker joins while runs are in flight (a rebalance moves partitions)', () => {
    it('neither runs them again nor declares the live worker lost', async () => {
      const t = topics();
      const store = await connectKafkaEventStore({ brokers: broker.brokers, topic: t.events });
      const executed = new Map<string, string[]>();
      const common = { brokers: broker.brokers, store, topic: t.topic, dlqTopic: t.dlqTopic, groupId: t.groupId, partitions: 2, sessionTimeoutMs: 6000 };
      const w1 = await RuntimeWorker.start({ ...common, run: fakeRun(executed, 'w1'), concurrency: 4 });
      const exec = await KafkaRunExecutor.connect({ brokers: broker.brokers, topic: t.topic, partitions: 2 });
      let w2: RuntimeWorker | undefined;
      try {
        const ids = Array.from({ length: 4 }, () => randomUUID());
        for (const id of ids) await request(store, exec, order(id, ['sleep', '4000']));
        await until('w1 running all four', async () => {
          for (const id of ids) if (!(await streamOf(store, id)).some((e) => e.type === 'RunStarted')) return undefined;
          return true;
        });
        const w2log: Array<Record<string, unknown>> = [];
        w2 = await RuntimeWorker.start({ ...common, run: fakeRun(executed, 'w2'), concurrency: 4, log: (r) => w2log.push(r) });
        // the newcomer takes a partition from under the running worker
        await until('w2 assigned a partition', () => (w2log.some((r) => r.msg === 'assigned partitions' && (r.partitions as number[]).length > 0) ? true : undefined));
        for (const id of ids) {
          const s = await until(`run ${id} ended`, async () => {
            const evs = await streamOf(store, id);
            return evs.some((e) => e.type === 'RunExited' || e.type === 'RunFailed') ? evs : undefined;
          });
          assert.deepEqual(s.map((e) => e.type), ['RunRequested', 'RunClaimed', 'RunStarted', 'RunExited'], `run ${id}`);
          assert.deepEqual(executed.get(id), ['w1']);
        }
        assert.equal(w2.counters.lost, 0);
      } finally {
        await exec.close();
        await w2?.close();
        await w1.close();
        await store.close();
      }
    });
  });

  describe('when a run was claimed by a worker that is gone', () => {
    it('records RunFailed (worker lost) instead of executing it', async () => {
      const t = topics();
      const store = await connectKafkaEventStore({ brokers: broker.brokers, topic: t.events });
      const executed = new Map<string, string[]>();
      const w = await RuntimeWorker.start({ brokers: broker.brokers, store, topic: t.topic, dlqTopic: t.dlqTopic, groupId: t.groupId, partitions: 2, run: fakeRun(executed, 'w') });
      const exec = await KafkaRunExecutor.connect({ brokers: broker.brokers, topic: t.topic, partitions: 2 });
      try {
        const id = randomUUID();
        await store.append(runStream(id), 'no-stream', [{ type: 'RunRequested', at: new Date().toISOString(), payload: order(id) }]);
        await store.append(runStream(id), 1, [{ type: 'RunClaimed', at: new Date().toISOString(), payload: { runId: id, worker: 'capulator-runtime-ghost' } }]);
        await exec.submit(order(id));
        const s = await until('RunFailed', async () => {
          const evs = await streamOf(store, id);
          return evs.some((e) => e.type === 'RunFailed') ? evs : undefined;
        });
        assert.deepEqual(s.map((e) => e.type), ['RunRequested', 'RunClaimed', 'RunFailed']);
        assert.match((s[2].payload as { reason: string }).reason, /worker lost: capulator-runtime-ghost/);
        assert.equal(executed.size, 0);
      } finally {
        await exec.close();
        await w.close();
        await store.close();
      }
    });
  });

  describe('when a queued run is stopped', () => {
    it('fails it without executing it, and stops the running one', async () => {
      const t = topics();
      const store = await connectKafkaEventStore({ brokers: broker.brokers, topic: t.events });
      const executed = new Map<string, string[]>();
      // one partition, one run at a time: the second run waits behind the first
      const w = await RuntimeWorker.start({ brokers: broker.brokers, store, topic: t.topic, dlqTopic: t.dlqTopic, groupId: t.groupId, partitions: 1, concurrency: 1, run: fakeRun(executed, 'w') });
      const exec = await KafkaRunExecutor.connect({ brokers: broker.brokers, topic: t.topic, partitions: 1 });
      try {
        const [a, b] = [randomUUID(), randomUUID()];
        await request(store, exec, order(a, ['sleep', '60000']));
        await request(store, exec, order(b));
        await until('a started', async () => ((await streamOf(store, a)).some((e) => e.type === 'RunStarted') ? true : undefined));
        await exec.stop(b);
        const sb = await until('b failed', async () => {
          const evs = await streamOf(store, b);
          return evs.some((e) => e.type === 'RunFailed') ? evs : undefined;
        });
        assert.deepEqual(sb.map((e) => e.type), ['RunRequested', 'RunFailed']);
        assert.equal((sb[1].payload as { reason: string }).reason, 'stopped before it started');
        await exec.stop(a);
        const sa = await until('a exited', async () => {
          const evs = await streamOf(store, a);
          return evs.some((e) => e.type === 'RunExited') ? evs : undefined;
        });
        assert.equal((sa[sa.length - 1].payload as { signal: string }).signal, 'SIGKILL');
        assert.deepEqual([...executed.keys()], [a]);
      } finally {
        await exec.close();
        await w.close();
        await store.close();
      }
    });
  });

  describe('when a command is poison', () => {
    it('dead-letters garbage at once and an unhandleable run after the bounded retries, and goes on', async () => {
      const t = topics();
      const store = await connectKafkaEventStore({ brokers: broker.brokers, topic: t.events });
      const executed = new Map<string, string[]>();
      const w = await RuntimeWorker.start({ brokers: broker.brokers, store, topic: t.topic, dlqTopic: t.dlqTopic, groupId: t.groupId, partitions: 1, maxAttempts: 3, retryDelayMs: 50, run: fakeRun(executed, 'w') });
      const exec = await KafkaRunExecutor.connect({ brokers: broker.brokers, topic: t.topic, partitions: 1 });
      const kafka = new Kafka({ clientId: 'poison-test', brokers: broker.brokers, logLevel: logLevel.NOTHING });
      const producer = kafka.producer();
      const dlq = kafka.consumer({ groupId: `${t.groupId}-dlq-reader` });
      const dead: Array<{ value: string; headers: Record<string, string> }> = [];
      try {
        await producer.connect();
        await producer.send({ topic: t.topic, messages: [{ key: 'x', value: '{not json' }] });
        const orphan = randomUUID(); // a command for a run the store never heard of
        await exec.submit(order(orphan));
        const good = randomUUID();
        await request(store, exec, order(good));
        await dlq.connect();
        await dlq.subscribe({ topic: t.dlqTopic, fromBeginning: true });
        await dlq.run({
          eachMessage: async ({ message }) => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
            dead.push({ value: message.value?.toString() ?? '', headers });
          },
        });
        await until('two dead letters', () => (dead.length >= 2 ? true : undefined));
        assert.equal(dead[0].value, '{not json');
        assert.equal(dead[0].headers['capulator-attempts'], '1');
        assert.match(dead[0].headers['capulator-error'], /not JSON/);
        assert.ok(dead[1].value.includes(orphan));
        assert.equal(dead[1].headers['capulator-attempts'], '3');
        assert.match(dead[1].headers['capulator-error'], /RunRequested is not in the event store/);
        await until('the good run exited', async () => ((await streamOf(store, good)).some((e) => e.type === 'RunExited') ? true : undefined));
        assert.deepEqual([...executed.keys()], [good]);
        assert.equal(w.counters.deadLettered, 2);
      } finally {
        await dlq.disconnect();
        await producer.disconnect();
        await exec.close();
        await w.close();
        await store.close();
      }
    });
  });
});
