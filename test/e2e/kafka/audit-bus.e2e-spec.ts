import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from '@capulator/host';
import { anchorKey, eventFixtures, connectKafkaEventStore, readAnchors, signAnchor, type KafkaEventStore } from '@capulator/events';
import { startTestBroker, type TestBroker } from '../../../libs/events/src/testing/kafka-broker';
import { newHome, removeHomes } from './cluster';

const { decision, runRequested, runExited } = eventFixtures;
const PARTITIONS = 3;
const TOPIC = 'capulator.audit.test';

function capulator(home: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [join(repoRoot(__dirname), 'bin', 'capulator'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_BUS: '', ...env },
    timeout: 60_000,
  });
}

/** Copies every record of `from` into a new topic `to` (same partitions), changing one with `change` (index -1: the partition's last; an edit giving null drops the record). */
async function copyTopic(broker: TestBroker, from: string, to: string, change?: { partition: number; index: number; edit: (record: string) => string | null }): Promise<void> {
  const kafka = new Kafka({ clientId: `copy-${process.pid}`, brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(from);
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: to, numPartitions: PARTITIONS }] });
  const consumer = kafka.consumer({ groupId: `copy-${to}` });
  await consumer.connect();
  await consumer.subscribe({ topic: from, fromBeginning: true });
  const records: Array<{ partition: number; offset: number; value: string }> = [];
  const total = offsets.reduce((n, o) => n + Number(o.high), 0);
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        records.push({ partition, offset: Number(message.offset), value: message.value!.toString('utf8') });
        if (records.length === total) resolve();
      },
    });
  });
  await consumer.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (let p = 0; p < PARTITIONS; p++) {
    const mine = records.filter((r) => r.partition === p).sort((a, b) => a.offset - b.offset);
    const at = change && change.index < 0 ? mine.length + change.index : change?.index;
    const values = mine.map((r, i) => {
      if (!change || change.partition !== p || at !== i) return r.value;
      const edited = change.edit(r.value);
      assert.notEqual(edited, r.value, 'the edit changed the record');
      return edited;
    });
    for (const value of values) if (value !== null) await producer.send({ topic: to, messages: [{ partition: p, value }] });
  }
  await producer.disconnect();
  await admin.deleteGroups([`copy-${to}`]).catch(() => undefined);
  await admin.disconnect();
}

describe('audit on the Kafka log', () => {
  let broker: TestBroker;
  let store: KafkaEventStore;
  const homes: string[] = [];
  let decisions = 0;
  const runs: string[] = [];

  before(async () => {
    broker = await startTestBroker();
    store = await connectKafkaEventStore({ brokers: broker.brokers, topic: TOPIC, partitions: PARTITIONS });
    // runs in every partition, each written in several appends (so later proposals witness earlier ones)
    for (let i = 0; runs.length < 9 || new Set(runs.map((r) => store.partitionOf(`run-${r}`))).size < PARTITIONS; i++) runs.push(`audit-${i}`);
    for (const id of runs) {
      const s = `run-${id}`;
      await store.append(s, 'no-stream', [runRequested(id)]);
      await store.append(s, 1, [decision(id, 1), decision(id, 2, { decision: 'deny' })]);
      await store.append(s, 3, [runExited(id)]);
      decisions += 2;
    }
  });
  after(async () => {
    await store?.close();
    await broker?.stop();
    removeHomes(homes);
  });

  it('verify checks every partition, and a changed event in any partition fails it', async () => {
    const home = newHome('audit-bus');
    homes.push(home);
    const ok = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${TOPIC}`]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^ok: ${runs.length * 4} events in ${PARTITIONS} partitions of ${TOPIC}`, 'm'));
    assert.equal(ok.stdout.match(/^partition \d+: /gm)?.length, PARTITIONS);
    assert.ok(!existsSync(join(home, 'events.db')), 'verify on Kafka must not create an events.db');
    // an unchanged copy verifies too (the check is of the records, not of this topic's name)
    await copyTopic(broker, TOPIC, `${TOPIC}.copy`);
    assert.equal(capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${TOPIC}.copy`]).status, 0);
    for (let p = 0; p < PARTITIONS; p++) {
      // the first proposal of partition p: a RunRequested, its image changed
      await copyTopic(broker, TOPIC, `${TOPIC}.changed${p}`, { partition: p, index: 0, edit: (v) => v.replace(/"image":"[^"]*"/, '"image":"evil:1"') });
      const r = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${TOPIC}.changed${p}`]);
      assert.equal(r.status, 1, `partition ${p}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^capulator: verify failed in partition ${p}: position ${p + 1}: a later proposal`), r.stderr);
    }
    // a recorded head that the log no longer has (truncation of a partition's tail) fails too
    const heads = await store.heads();
    const fake = heads.map((h) => `${h.partition}:${h.position + PARTITIONS}:${'a'.repeat(64)}`).join(',');
    const t = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${TOPIC}`, '--expect-head', fake]);
    assert.equal(t.status, 1, t.stdout);
    assert.match(t.stderr, /truncated/);
  });

  it('log, rebuild and replay read the Kafka log named by --bus or CAPULATOR_BUS', () => {
    const home = newHome('audit-bus');
    homes.push(home);
    const log = capulator(home, ['audit', 'log', '--json'], { CAPULATOR_BUS: `${broker.url}/${TOPIC}` });
    assert.equal(log.status, 0, log.stderr);
    const rows = log.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(rows.length, decisions);
    assert.deepEqual(rows.map((r) => r.position), rows.map((r) => r.position).sort((a, b) => a - b), 'position order');
    assert.equal(new Set(rows.map((r) => r.runId)).size, runs.length);
    const rebuilt = capulator(home, ['audit', 'rebuild', '--json', '--bus', `${broker.url}/${TOPIC}`]);
    assert.equal(rebuilt.status, 0, rebuilt.stderr);
    assert.deepEqual({ ...JSON.parse(rebuilt.stdout), ms: 0 }, { events: runs.length * 4, ms: 0, runs: runs.length, decisions, policies: 0, images: 0 });
    const replay = capulator(home, ['audit', 'replay', '--json', '--policy', join(repoRoot(__dirname), 'examples', 'policies', 'deny-all.yaml'), '--bus', `${broker.url}/${TOPIC}`]);
    const summary = JSON.parse(replay.stdout.trim().split('\n').pop()!);
    assert.equal(summary.kind, 'summary');
    assert.equal(summary.decisions, decisions);
    const ps = capulator(home, ['ps', '-a', '--json', '--bus', `${broker.url}/${TOPIC}`]);
    assert.equal(ps.status, 0, ps.stderr);
    const listed = JSON.parse(ps.stdout) as Array<{ id: string; status: string; decisions: { allow: number; deny: number } }>;
    assert.deepEqual(listed.map((r) => r.id).sort(), runs.slice().sort());
    assert.ok(listed.every((r) => r.status === 'exited' && r.decisions.allow === 1 && r.decisions.deny === 1), ps.stdout);
    const one = capulator(home, ['inspect', runs[0], '--json'], { CAPULATOR_BUS: `${broker.url}/${TOPIC}` });
    assert.equal(one.status, 0, one.stderr);
    assert.equal(JSON.parse(one.stdout).id, runs[0]);
    assert.ok(!existsSync(join(home, 'events.db')));
  });

  it('log --follow prints the decisions appended after it started, filtered, in every partition, until SIGINT', async () => {
    const home = newHome('audit-bus');
    homes.push(home);
    const child = spawn(process.execPath, [join(repoRoot(__dirname), 'bin', 'capulator'), 'audit', 'log', '--follow', '--json', '--decision', 'deny', '--bus', `${broker.url}/${TOPIC}`], {
      env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_BUS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const rows = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { position: number; runId: string; seq: number; decision: string });
    const waitRows = async (n: number) => {
      for (const deadline = Date.now() + 60_000; rows().length < n; await new Promise((r) => setTimeout(r, 100))) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`audit log --follow: ${rows().length} of ${n} rows; stderr: ${err}`);
      }
    };
    try {
      // what is in the log: one deny per run (the allows are filtered out)
      await waitRows(runs.length);
      assert.equal(rows().length, runs.length);
      // then, in every partition: an allow (filtered out) and a deny per run, appended while it follows
      // (each run's stream holds 4 events: requested, two decisions, exited)
      for (const id of runs) await store.append(`run-${id}`, 4, [decision(id, 10, { decision: 'allow' }), decision(id, 11, { decision: 'deny' })]);
      decisions += runs.length * 2;
      await waitRows(runs.length * 2);
      const live = rows().slice(runs.length);
      assert.deepEqual(live.map((r) => r.runId).sort(), runs.slice().sort(), 'one new deny of each run, none twice');
      assert.ok(live.every((r) => r.decision === 'deny' && r.seq === 11), JSON.stringify(live));
      assert.equal(new Set(rows().map((r) => r.position)).size, rows().length, 'no position printed twice');
      assert.equal(new Set(live.map((r) => (r.position - 1) % PARTITIONS)).size, PARTITIONS, 'the new decisions came from every partition');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, err);
    assert.equal(err, '');
  });

  it('anchor signs each partition head; verify then finds a partition cut short or its newest event changed', async () => {
    const home = newHome('audit-bus');
    homes.push(home);
    const anchored = capulator(home, ['audit', 'anchor', '--bus', `${broker.url}/${TOPIC}`]);
    assert.equal(anchored.status, 0, anchored.stderr);
    const lines = anchored.stdout.split('\n').filter((l) => l.startsWith('anchored: '));
    assert.equal(lines.length, PARTITIONS, anchored.stdout);
    for (const l of lines) assert.match(l, new RegExp(`^anchored: kafka:${TOPIC.replace(/\./g, '\\.')} partition \\d position \\d+ hash [0-9a-f]{64} at \\S+$`));
    const ok = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${TOPIC}`]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`agrees with ${PARTITIONS} anchor\\(s\\)`));
    assert.match(capulator(home, ['audit', 'anchor', '--bus', `${broker.url}/${TOPIC}`]).stdout, /\(already anchored\)/);
    // copies of the log, one cut short and one with its newest event of a partition changed, checked against
    // these heads as anchored for the copy (signed with the same key, as if anchored before the damage)
    const key = anchorKey(join(home, 'keys', 'anchor.key'), false)!;
    const heads = readAnchors(join(home, 'anchors.jsonl'), key).anchors.filter((a) => a.log === `kafka:${TOPIC}`);
    assert.equal(heads.length, PARTITIONS);
    const damaged: Array<[string, (r: string) => string | null, RegExp]> = [
      [`${TOPIC}.cut`, () => null, /^capulator: verify failed in partition 1: truncated: the recorded head \d+ is beyond the partition's head \d+/],
      [`${TOPIC}.newest`, (r) => r.replace(/\}(\s*)$/, '} $1'), /^capulator: verify failed in partition 1: position \d+: hash differs from the recorded head \(the log was changed\)/],
    ];
    for (const [topic, edit, why] of damaged) {
      await copyTopic(broker, TOPIC, topic, { partition: 1, index: -1, edit });
      const file = join(home, `${topic}.anchors`);
      writeFileSync(file, heads.map((h) => JSON.stringify(signAnchor(key, h, h.at, `kafka:${topic}`)) + '\n').join(''));
      const r = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${topic}`, '--anchors', file]);
      assert.equal(r.status, 1, `${topic}: ${r.stdout}`);
      assert.match(r.stderr, why, r.stderr);
      // without the anchors the copy passes: no later proposal witnesses a partition's newest record
      const unanchored = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${topic}`]);
      assert.equal(unanchored.status, 0, `${topic} without anchors: ${unanchored.stderr}`);
    }
    // an anchor of another log (the home's SQLite store, another topic) is not applied to this one
    const other = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/${TOPIC}.copy`]);
    assert.equal(other.status, 0, other.stderr);
    assert.match(other.stdout, /no anchors yet/);
  });

  it('a home with no log and no bus is refused, not given an empty log', () => {
    const home = newHome('audit-bus');
    homes.push(home);
    for (const cmd of [['audit', 'verify'], ['audit', 'log']]) {
      const r = capulator(home, cmd);
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, /^capulator: no event log at .*events\.db .*--bus kafka:\/\//);
      assert.ok(!existsSync(join(home, 'events.db')));
    }
    const missing = capulator(home, ['audit', 'verify', '--bus', `${broker.url}/no.such.topic`]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no event log on .*topic no\.such\.topic does not exist/);
  });
});
