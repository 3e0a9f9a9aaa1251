/**
 * Decision events appended through the Kafka event store vs kafkajs alone, same broker, same run.
 *   node dist/bench/kafka-append.bench.js [--events N] [--batch B] [--runs R] [--brokers H:P]
 * Without --brokers a broker is started (infra/kafka/kafka.sh, KRaft) and stopped afterwards.
 * Rows (each on a fresh topic):
 *   kafkajs: the same bytes capulator produces (one proposal message per batch), idempotent
 *            producer, acks=all, no capulator code: the floor.
 *   KafkaEventStore.appendBatch: B events per append, resolved when the append has been folded
 *            back (positions, versions, hash chain assigned), i.e. what the runtime waits for.
 * Each with 1 run appending sequentially (one append at a time per run) and R runs at once.
 * Then the same events as a Kafka worker writes a busy run: RunWriter, chunks of B events, with
 * RUN_APPENDS_IN_FLIGHT appends of a run in flight (its expected versions chained), against
 * kafkajs alone with as many sends of a run in flight.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, CompressionTypes, type Admin } from 'kafkajs';
import { connectKafkaEventStore, encodeProposal, eventFixtures, partitionOfStream, RunWriter, TextEvent, type EventStore, type NewEvent } from '@capulator/events';
import { RUN_APPENDS_IN_FLIGHT } from '../apps/runtime/src/worker/runtime-worker';
import { startTestBroker } from '../libs/events/src/testing/kafka-broker';

const USAGE = `usage: node dist/bench/kafka-append.bench.js [--events N] [--batch B] [--runs R] [--partitions P] [--brokers H:P]
  Decision events through KafkaEventStore.appendBatch vs the kafkajs producer alone (same bytes,
  same partitions), 1 run and R runs at once, one append of a run at a time; then as a Kafka worker
  writes a run (RunWriter, appends pipelined) vs kafkajs with as many sends in flight; prints each
  rate and the store's share of its floor.
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


let brokers: string[];
let kafka: Kafka;
let admin: Admin;

/** kafkajs alone: the proposal bytes, one message per batch, `depth` sends of a run in flight. */
async function producerAlone(batches: ReturnType<typeof plan>, total: number, depth: number, how: string): Promise<number> {
  const topic = `bench.raw.${randomUUID()}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: P, replicationFactor: -1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  let bytes = 0;
  let k = 0;
  const payloads = batches.map((bs) => bs.map((b) => Buffer.from(encodeProposal({ id: `bench:${++k}`, requests: [{ streamId: b.streamId, expectedVersion: 'any', events: b.events }] }))));
  const t0 = performance.now();
  await Promise.all(
    payloads.map(async (ps, r) => {
      const send = (value: Buffer) => producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: [{ key: batches[r][0].streamId, value, partition: partitionOfStream(batches[r][0].streamId, P) }] });
      // up to `depth` sends in flight, each answer making room for the next (in order)
      let i = 0;
      const lane = async () => {
        while (i < ps.length) {
          const v = ps[i++];
          bytes += v.length;
          await send(v);
        }
      };
      await Promise.all(Array.from({ length: depth }, lane));
    }),
  );
  const rate = row(`kafkajs producer alone, ${how}`, total, performance.now() - t0, bytes);
  await producer.disconnect();
  return rate;
}

/** The events' JSON bytes ({type, at, payload}), counted before the clock starts: not the store's work. */
const eventBytes = (batches: ReturnType<typeof plan>) =>
  batches.reduce((n, bs) => n + bs.reduce((m, b) => m + b.events.reduce((k, e) => k + JSON.stringify({ type: e.type, at: e.at }).length + 11 + (e.payloadText?.length ?? 0), 0), 0), 0);

async function folded(store: EventStore & { heads(): Promise<Array<{ count: number }>> }, total: number): Promise<void> {
  const count = (await store.heads()).reduce((n, h) => n + h.count, 0);
  if (count !== total) process.stdout.write(`  MISMATCH: ${count} events folded != ${total}\n`);
}

/** KafkaEventStore.appendBatch, one append of a run at a time, resolved when folded back. */
async function storeAppends(batches: ReturnType<typeof plan>, total: number, how: string): Promise<number> {
  const store = await connectKafkaEventStore({ brokers, topic: `bench.store.${randomUUID()}`, partitions: P });
  const bytes = eventBytes(batches);
  const t0 = performance.now();
  await Promise.all(
    batches.map(async (bs) => {
      for (const b of bs) await store.appendBatch([{ streamId: b.streamId, expectedVersion: 'any', events: b.events }]);
    }),
  );
  const rate = row(`KafkaEventStore.appendBatch, ${how}`, total, performance.now() - t0, bytes);
  await folded(store, total);
  await store.close();
  return rate;
}

/** As a Kafka worker writes a busy run: RunWriter, chunks of B events, `depth` appends of a run in flight. */
async function runWriters(batches: ReturnType<typeof plan>, total: number, depth: number, how: string): Promise<number> {
  const store = await connectKafkaEventStore({ brokers, topic: `bench.store.${randomUUID()}`, partitions: P });
  const bytes = eventBytes(batches);
  const t0 = performance.now();
  await Promise.all(
    batches.map(async (bs) => {
      const sid = bs[0].streamId;
      const append = (events: NewEvent[], expected: Parameters<EventStore['append']>[1]) => store.append(sid, expected, events);
      const w = new RunWriter(append, { runId: sid.slice(4), phase: 'running', version: 0, claimant: 'bench', failure: null }, {
        split: (evs) => Array.from({ length: Math.ceil(evs.length / B) }, (_, i) => evs.slice(i * B, i * B + B)),
        pipeline: { depth, tryOnce: append },
      });
      w.submit({ type: 'RecordDecisions', events: bs.flatMap((b) => b.events) as never });
      await w.drain();
      if (w.failed) throw w.failed;
    }),
  );
  const rate = row(`RunWriter (a worker's run), ${how}`, total, performance.now() - t0, bytes);
  await folded(store, total);
  await store.close();
  return rate;
}

async function main() {
  const broker = bi >= 0 ? null : await startTestBroker();
  brokers = bi >= 0 ? process.argv[bi + 1].split(',') : broker!.brokers;
  kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  process.stdout.write(`kafka-append: ${N} decision events, batch ${B}, 1 and ${R} runs, ${P} partitions; broker ${brokers.join(',')} (node ${process.version})\n`);
  try {
    for (const depth of [1, RUN_APPENDS_IN_FLIGHT]) {
      for (const runs of [1, R]) {
        const batches = plan(runs);
        const total = batches.reduce((n, bs) => n + bs.reduce((m, b) => m + b.events.length, 0), 0);
        const how = depth === 1 ? `${runs} run(s)` : `${runs} run(s), ${depth} in flight`;
        const floor = await producerAlone(batches, total, depth, how);
        const rate = depth === 1 ? await storeAppends(batches, total, how) : await runWriters(batches, total, depth, how);
        process.stdout.write(`  store / producer alone: ${((rate / floor) * 100).toFixed(0)}% (target >= 80%)\n`);
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
