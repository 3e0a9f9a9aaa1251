/**
 * Fold capacity of the partitioned Kafka log: 1, 2 and 4 partitions × 1, 2 and 4 processes.
 *   node dist/bench/kafka-scale.bench.js [--events N] [--batch B] [--brokers H:P]
 * For each partition count a topic is filled with N decision events (append proposals of B events,
 * streams spread over the partitions as the store spreads them). Then K processes each open the
 * log lazily (as runtime workers do) and fold only their share of the partitions (partition p
 * goes to process p mod K): parse every proposal, check expected versions, number and hash-chain
 * every event. Printed: the wall time of the slowest process's fold and the aggregate events/s —
 * the curve of how fold capacity grows with partitions and processes. On a machine with C cores,
 * more than C processes cannot fold faster than C.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import { connectKafkaEventStore, encodeProposal, eventFixtures, partitionOfStream } from '@capulator/events';
import { startTestBroker } from '../libs/events/src/testing/kafka-broker';

const USAGE = `usage: node dist/bench/kafka-scale.bench.js [--events N] [--batch B] [--brokers H:P]
  Fold capacity with 1, 2, 4 partitions × 1, 2, 4 processes (each folds partitions p mod K).
  --events N     decision events per topic (default 100000)
  --batch B      events per append proposal (default 100)
  --brokers H:P  use this broker instead of starting one (infra/kafka/kafka.sh)`;
const argv = process.argv;
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
function arg(name: string, def: string): string {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
}

/** A child: folds partitions p ≡ index (mod of) of the topic, prints {events, ms}. */
async function child(): Promise<void> {
  const brokers = arg('--brokers', '').split(',');
  const topic = arg('--topic', '');
  const index = Number(arg('--index', '0'));
  const of = Number(arg('--of', '1'));
  const store = await connectKafkaEventStore({ brokers, topic, lazy: true });
  const mine = Array.from({ length: store.partitions }, (_, p) => p).filter((p) => p % of === index);
  const t0 = performance.now();
  let events = 0;
  for (const p of mine) events += (await store.partitionEvents(p)).length;
  const ms = performance.now() - t0;
  process.stdout.write(JSON.stringify({ events, ms }) + '\n');
  await store.close();
}

async function fill(kafka: Kafka, topic: string, partitions: number, n: number, batch: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: -1 }] });
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const streams = Array.from({ length: 64 }, () => `run-${randomUUID()}`);
  let seq = 0;
  let messages: Array<{ value: string; partition: number }> = [];
  let bytes = 0;
  for (let done = 0, k = 0; done < n; done += batch, k++) {
    const s = streams[k % streams.length];
    const events = Array.from({ length: Math.min(batch, n - done) }, () => eventFixtures.decision(s.slice(4), ++seq));
    const value = encodeProposal({ id: `fill:${k}`, requests: [{ streamId: s, expectedVersion: 'any', events }] });
    messages.push({ value, partition: partitionOfStream(s, partitions) });
    bytes += value.length;
    // one produce request stays under the broker's message.max.bytes (1 MiB) even when every
    // proposal goes to one partition (one record batch)
    if (bytes >= 512 * 1024) {
      bytes = 0;
      await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages });
      messages = [];
    }
  }
  if (messages.length) await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages });
  await producer.disconnect();
}

function runChild(brokers: string[], topic: string, index: number, of: number): Promise<{ events: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [__filename, '--child', '--brokers', brokers.join(','), '--topic', topic, '--index', String(index), '--of', String(of)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`fold process exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const n = Number(arg('--events', '100000'));
  const batch = Number(arg('--batch', '100'));
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(batch) || batch < 1) {
    process.stderr.write(`kafka-scale: --events and --batch must be positive integers\n${USAGE}\n`);
    process.exit(2);
  }
  const bi = argv.indexOf('--brokers');
  const broker = bi >= 0 ? null : await startTestBroker();
  const brokers = bi >= 0 ? argv[bi + 1].split(',') : broker!.brokers;
  const kafka = new Kafka({ clientId: 'bench-scale', brokers, logLevel: logLevel.NOTHING });
  process.stdout.write(`kafka-scale: ${n} decision events per topic, ${batch} per proposal; ${cpus().length} CPUs; node ${process.version}\n`);
  process.stdout.write('partitions  processes   slowest fold ms   events/s (aggregate)   vs 1×1\n');
  let base = 0;
  try {
    for (const partitions of [1, 2, 4]) {
      const topic = `bench.scale.${partitions}.${randomUUID()}`;
      await fill(kafka, topic, partitions, n, batch);
      for (const procs of [1, 2, 4]) {
        const results = await Promise.all(Array.from({ length: procs }, (_, i) => runChild(brokers, topic, i, procs)));
        const events = results.reduce((s, r) => s + r.events, 0);
        const ms = Math.max(...results.map((r) => r.ms));
        const rate = (events / ms) * 1000;
        if (!base) base = rate;
        if (events !== n) process.stdout.write(`  MISMATCH: ${events} folded != ${n}\n`);
        process.stdout.write(`${String(partitions).padStart(10)}  ${String(procs).padStart(9)}   ${ms.toFixed(0).padStart(15)}   ${Math.round(rate).toLocaleString('en-US').padStart(20)}   ${(rate / base).toFixed(2).padStart(6)}×\n`);
      }
    }
  } finally {
    await broker?.stop();
  }
}

if (argv.includes('--child')) {
  child().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
} else {
  main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
}
