import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runEventStoreContract } from '../testing/event-store.contract';
import { startTestBroker, type TestBroker } from '../testing/kafka-broker';
import { decision } from '../testing/fixtures';
import { KafkaEventStore } from './kafka-event-store';

let broker: TestBroker;
let topics = 0;
const topicName = () => `capulator.test.${process.pid}.${++topics}`;

before(async () => {
  broker = await startTestBroker();
});
after(async () => {
  await broker?.stop();
});

/** The contract on a log of several partitions (streams spread over them, a chain per partition). */
const PARTITIONS = 3;

runEventStoreContract(`Kafka, ${PARTITIONS} partitions`, async () => {
  const topic = topicName();
  const opened: KafkaEventStore[] = [];
  const open = async () => {
    const s = await KafkaEventStore.connect({ brokers: broker.brokers, topic, partitions: PARTITIONS });
    opened.push(s);
    return s;
  };
  const store = await open();
  return {
    store,
    connect: open,
    dispose: async () => {
      await Promise.all(opened.map((s) => s.close()));
    },
  };
});

describe('KafkaEventStore', () => {
  describe('when a new instance starts on an existing log', () => {
    it('folds the log to the same positions, versions and hash chain', async () => {
      const topic = topicName();
      const a = await KafkaEventStore.connect({ brokers: broker.brokers, topic, partitions: PARTITIONS });
      try {
        for (let i = 1; i <= 20; i++) await a.append(`run-k${i % 5}`, 'any', [decision(`run-k${i % 5}`, i)]);
        assert.ok(new Set([0, 1, 2, 3, 4].map((i) => a.partitionOf(`run-k${i}`))).size > 1, 'the streams span partitions');
        const b = await KafkaEventStore.connect({ brokers: broker.brokers, topic, lazy: true });
        try {
          // lazy: nothing folded until asked; a stream folds only its own partition
          assert.deepEqual(b.foldedPartitions, []);
          const k1 = [];
          for await (const e of b.readStream('run-k1')) k1.push(e);
          assert.equal(k1.length, 4);
          assert.deepEqual(b.foldedPartitions, [b.partitionOf('run-k1')]);
          const ea = [];
          for await (const e of a.readAll()) ea.push(e);
          const eb = [];
          for await (const e of b.readAll()) eb.push(e);
          assert.equal(ea.length, 20);
          assert.equal(b.partitions, PARTITIONS);
          assert.deepEqual(eb, ea);
          assert.equal(await b.headPosition(), Math.max(...ea.map((e) => e.position)));
          assert.deepEqual(a.mismatches, []);
          assert.deepEqual(b.mismatches, []);
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    });
  });

  describe('when its fold consumer stops receiving (kafkajs stops it for good on some errors)', () => {
    it('starts it again from where it was: appends are seen again, nothing is folded twice', async () => {
      const topic = topicName();
      const a = await KafkaEventStore.connect({ brokers: broker.brokers, topic, partitions: PARTITIONS });
      try {
        for (let i = 1; i <= 6; i++) await a.append(`run-c${i % 3}`, 'any', [decision(`run-c${i % 3}`, i)]);
        // the consumer stopped as kafkajs stops it after a crash it will not restart from
        await (a as unknown as { consumer: { stop(): Promise<void> } }).consumer.stop();
        const t0 = Date.now();
        // appends are produced but not seen until the watchdog starts the consumer again
        let ok = false;
        while (!ok && Date.now() - t0 < 60_000) {
          try {
            await a.append('run-c0', 'any', [decision('run-c0', 100)]);
            ok = true;
          } catch (err) {
            assert.equal((err as { code?: string }).code, 'UNAVAILABLE', String(err));
          }
        }
        assert.ok(ok, 'appends are seen again');
        console.log(`consumer started again after ${Date.now() - t0} ms`);
        assert.equal(a.stats.consumerRestarts, 1);
        // each event once, in one chain per partition (an append whose outcome was unknown may be in the log once more, as a later event)
        const all = [];
        for await (const e of a.readAll()) all.push(e);
        assert.equal(new Set(all.map((e) => e.position)).size, all.length);
        assert.deepEqual(a.mismatches, []);
        assert.ok(all.filter((e) => e.streamId !== 'run-c0' || (e.payload as { seq: number }).seq !== 100).length === 6);
        const b = await KafkaEventStore.connect({ brokers: broker.brokers, topic });
        try {
          const eb = [];
          for await (const e of b.readAll()) eb.push(e);
          assert.deepEqual(eb, all);
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    });
  });
});
