/**
 * Decision events appended through the Kafka event store vs kafkajs alone, same broker, same run.
 *   node dist/bench/kafka-append.bench.js [--events N] [--batch B] [--runs R] [--brokers H:P]
 * Without --brokers a broker is started (infra/kafka/kafka.sh, KRaft) and stopped afterwards.
 * Rows (each on a fresh topic):
 *   kafkajs: the same bytes capulator produces (one proposal message per batch), idempotent
 *            producer, acks=all, no capulator code: the floor.
 *   KafkaEventStore.appendBatch: B events per append, resolved when the append has been folded
 *            back (positions, versions, hash chain assigned), i.e. what the runtime waits for.
 * Each with 1 run appending sequentially (the runtime's per-run order) and R runs at once.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import { connectKafkaEventStore, encodeProposal, eventFixtures, partitionOfStream, TextEvent, type NewEvent } from '@capulator/events';
import { startTestBroker } from '../libs/events/src/testing/kafka-broker';

const USAGE = `usage: node dist/bench/kafka-append.bench.js [--events N] [--batch B] [--runs R] [--partitions P] [--brokers H:P]
  Decision events through KafkaEventStore.appendBatch vs the kafkajs producer alone (same bytes,
  same partitions), 1 run and R runs at once; prints each rate and the store's share of the floor.
  --events N      events per row (default 200000)
  --batch B       events per append (default 500)
  --runs R        concurrent runs in the second pair of rows (default 8)
  --partitions P  partitions of both topics (default 4)
  --brokers H:P   use this broker instead of starting one (infra/kafka/kafka.sh)`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('--events', 200_000);
const B = arg('--batch', 500);
const R = arg('--runs', 8);
const P = arg('--partitions', 4);
for (const [k, v] of [['--events', N], ['--batch', B], ['--runs', R], ['--partitions', P]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`kafka-append: ${k} must be a positive integer\n${USAGE}\n`);
    process.exit(2);
  }
}
const bi = process.argv.indexOf('--brokers');

/** Decision events as the runtime appends them: the agent's payload text, passed on unparsed (TextEvent). */
function decisions(runId: string, from: number, n: number): NewEvent[] {
  const out: NewEvent[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const seq = from + i;
    const e =
      seq % 2
        ? eventFixtures.decision(runId, seq)
        : eventFixtures.decision(runId, seq, { syscall: 'bind', nr: 49, args: { family: 'AF_INET', port: 80 }, privileges: ['PRIV_NETINET_RESERVEDPORT'], capability: 'CAP_NET_BIND_SERVICE', exe: '/usr/sbin/nginx', ruleId: 'web' });
    out[i] = new TextEvent(e.type, e.at, JSON.stringify(e.payload));
  }
  return out;
}

/** The batches of `runs` streams, built before timing (the runtime gets them from the agent). */
function plan(runs: number): Array<Array<{ streamId: string; events: NewEvent[] }>> {
  const per = Math.ceil(N / runs);
  return Array.from({ length: runs }, (_, r) => {
    const out = [];
    for (let done = 0; done < per; done += B) out.push({ streamId: `run-${randomUUID()}`, events: decisions(`r${r}`, done + 1, Math.min(B, per - done)) });
    const sid = `run-bench-${r}-${randomUUID()}`;
    return out.map((b) => ({ ...b, streamId: sid }));
  });
}

function row(label: string, events: number, ms: number, bytes: number): number {
  process.stdout.write(`${label.padEnd(52)} ${String(events).padStart(8)} events ${ms.toFixed(0).padStart(7)} ms ${Math.round((events / ms) * 1000).toLocaleString('en-US').padStart(9)} events/s ${(bytes / ms / 1000).toFixed(1).padStart(6)} MB/s\n`);
  return (events / ms) * 1000;
}

async function main() {
  const broker = bi >= 0 ? null : await startTestBroker();
  const brokers = bi >= 0 ? process.argv[bi + 1].split(',') : broker!.brokers;
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  process.stdout.write(`kafka-append: ${N} decision events, batch ${B}, 1 and ${R} runs, ${P} partitions; broker ${brokers.join(',')} (node ${process.version})\n`);
  try {
    let floor = 1;
    for (const runs of [1, R]) {
      const batches = plan(runs);
      const total = batches.reduce((n, bs) => n + bs.reduce((m, b) => m + b.events.length, 0), 0);
      // kafkajs alone: the proposal bytes, one message per batch
      {
        const topic = `bench.raw.${randomUUID()}`;
        await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: P, replicationFactor: -1 }] });
        const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
        await producer.connect();
        let bytes = 0;
        let k = 0;
        const payloads = batches.map((bs) =>
          bs.map((b) => Buffer.from(encodeProposal({ id: `bench:${++k}`, requests: [{ streamId: b.streamId, expectedVersion: 'any', events: b.events }] }))),
        );
        const t0 = performance.now();
        await Promise.all(
          payloads.map(async (ps, r) => {
            for (const value of ps) {
              bytes += value.length;
              await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: [{ key: batches[r][0].streamId, value, partition: partitionOfStream(batches[r][0].streamId, P) }] });
            }
          }),
        );
        floor = row(`kafkajs producer alone, ${runs} run(s)`, total, performance.now() - t0, bytes);
        await producer.disconnect();
      }
      // capulator's Kafka adapter
      {
        const store = await connectKafkaEventStore({ brokers, topic: `bench.store.${randomUUID()}`, partitions: P });
        // the events' JSON bytes ({type, at, payload}), counted before the clock starts: not the store's work
        const bytes = batches.reduce((n, bs) => n + bs.reduce((m, b) => m + b.events.reduce((k, e) => k + JSON.stringify({ type: e.type, at: e.at }).length + 11 + (e.payloadText?.length ?? 0), 0), 0), 0);
        const t0 = performance.now();
        await Promise.all(
          batches.map(async (bs) => {
            for (const b of bs) {
              await store.appendBatch([{ streamId: b.streamId, expectedVersion: 'any', events: b.events }]);
            }
          }),
        );
        const ms = performance.now() - t0;
        const count = (await store.heads()).reduce((n, h) => n + h.count, 0);
        const rate = row(`KafkaEventStore.appendBatch, ${runs} run(s)`, total, ms, bytes);
        process.stdout.write(`  store / producer alone: ${((rate / floor) * 100).toFixed(0)}% (target >= 80%)\n`);
        if (count !== total) process.stdout.write(`  MISMATCH: ${count} events folded != ${total}\n`);
        await store.close();
      }
    }
  } finally {
    await admin.disconnect();
    await broker?.stop();
  }
}

main().catch((err) => {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
});
