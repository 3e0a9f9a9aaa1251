import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventFixtures as fx, RunWriter, SqliteEventStore, initialRunState } from '@capulator/events';

/** `capulator ps`, `inspect` and `audit log` against a store another process is writing to. */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');
const eventsLib = join(repo, 'dist/libs/events/src');

let home: string;
const cap = (args: string[]) => spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });

async function record(store: SqliteEventStore, id: string, end: 'exit' | 'agent' | 'open'): Promise<void> {
  const w = RunWriter.forStore(store, initialRunState(id));
  w.submit({ type: 'RequestRun', at: fx.isoAt(0), request: fx.runRequested(id).payload });
  w.submit({ type: 'StartRun', at: fx.isoAt(10), imageDigest: 'sha256:d', user: { uid: 0, gid: 0 }, granted: fx.caps(['CAP_NET_RAW']), provenance: { CAP_NET_RAW: ['ping-raw'] }, policy: fx.TEST_POLICY, pid: 7 });
  w.submit({ type: 'RecordDecisions', events: [fx.decision(id, 1), fx.decision(id, 2, { decision: 'deny', errno: 1 })] });
  const end0 = { exitCode: 137, signal: 'SIGKILL', counts: { allow: 1, deny: 1, emulate: 0 }, lostEvents: 3, durationMs: 2500 };
  if (end === 'exit') w.submit({ type: 'ExitRun', at: fx.isoAt(2510), exit: { ...end0, exitCode: 0, signal: null, lostEvents: 0 } });
  if (end === 'agent') w.submit({ type: 'FailRun', at: fx.isoAt(2510), stage: 'agent', reason: 'the agent died while the container ran', end: { ...end0, lostReason: 'agent died' } });
  await w.drain();
  assert.equal(w.failed, undefined);
}

describe('capulator ps / inspect', () => {
  let writer: ChildProcess | undefined;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'capulator-ps-'));
    const store = SqliteEventStore.open(join(home, 'events.db'));
    await record(store, 'ps-done', 'exit');
    await record(store, 'ps-died', 'agent');
    await record(store, 'ps-live', 'open');
    await store.close();
  });
  after(() => {
    writer?.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });

  it('ps lists the running runs; -a all, with exit, signal, failure stage and reason, decisions and lost events', () => {
    const live = cap(['ps', '--json']);
    assert.equal(live.status, 0, live.stderr);
    assert.deepEqual(JSON.parse(live.stdout).map((r: { id: string }) => r.id), ['ps-live']);
    const all = cap(['ps', '-a', '--json']);
    const byId = new Map((JSON.parse(all.stdout) as Array<Record<string, any>>).map((r) => [r.id, r]));
    assert.deepEqual([...byId.keys()].sort(), ['ps-died', 'ps-done', 'ps-live']);
    const died = byId.get('ps-died')!;
    assert.equal(died.status, 'failed');
    assert.deepEqual(died.failure, { stage: 'agent', reason: 'the agent died while the container ran' });
    assert.deepEqual([died.exitCode, died.signal, died.lostEvents, died.policy], [137, 'SIGKILL', 3, 'test@1']);
    assert.deepEqual(died.decisions, { allow: 1, deny: 1, emulate: 0 });
    assert.equal(byId.get('ps-done')!.status, 'exited');
    const table = cap(['ps', '-a']);
    assert.match(table.stdout, /^RUN ID +IMAGE +POLICY +STATUS +EXIT +SIGNAL +FAILED/);
    assert.match(table.stdout, /ps-died .*failed +137 +SIGKILL +agent: the agent died while the container ran +1 +1 +0 +3 /);
  });

  it('ps -q prints the ids only, newest first; -n N keeps the newest N; a bad N is one line and exit 2', () => {
    const ids = (JSON.parse(cap(['ps', '-a', '--json']).stdout) as Array<{ id: string }>).map((r) => r.id);
    const q = cap(['ps', '-aq']);
    assert.equal(q.status, 0, q.stderr);
    assert.equal(q.stdout, ids.map((id) => `${id}\n`).join(''));
    assert.equal(cap(['ps', '-a', '-q', '-n', '2']).stdout, ids.slice(0, 2).map((id) => `${id}\n`).join(''));
    assert.equal(cap(['ps', '-q']).stdout, 'ps-live\n');
    const bad = cap(['ps', '--last', '0']);
    assert.deepEqual([bad.status, bad.stderr], [2, 'capulator: --last 0: want a positive whole number\n']);
  });

  it('inspect shows the granted sets with the granting rule; an unknown run is exit 2', () => {
    const r = cap(['inspect', 'ps-died']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Failed: +agent: the agent died while the container ran/);
    assert.match(r.stdout, /permitted: +CAP_NET_RAW/);
    assert.match(r.stdout, /CAP_NET_RAW +ping-raw/);
    const j = JSON.parse(cap(['inspect', 'ps-died', '--json']).stdout);
    assert.deepEqual(j.grantedBy, { CAP_NET_RAW: ['ping-raw'] });
    const none = cap(['inspect', 'nope']);
    assert.deepEqual([none.status, none.stderr], [2, 'capulator: no such run: nope\n']);
  });

  it('ps, inspect, audit log and audit verify work while another process records a run (no "database is locked", no false truncation)', async () => {
    // a second process appending decisions to ps-live, commit after commit, as a recording run does
    writer = spawn(process.execPath, ['-e', `
      const { SqliteEventStore, eventFixtures: fx } = require(${JSON.stringify(eventsLib)});
      const s = SqliteEventStore.open(process.argv[1]);
      let seq = 2, v = s.db.prepare("SELECT version FROM streams WHERE stream_id = 'run-ps-live'").pluck().get();
      process.stdout.write('appending\\n');
      setInterval(() => { const evs = []; for (let i = 0; i < 10; i++) evs.push(fx.decision('ps-live', ++seq));
        v = s.appendSync([{ streamId: 'run-ps-live', expectedVersion: v, events: evs }])[0].pop().streamVersion; }, 5);`, join(home, 'events.db')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => writer!.stdout!.once('data', () => resolve()));
    const counts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ps = cap(['ps', '--json']);
      assert.equal(ps.status, 0, ps.stderr);
      const [live] = JSON.parse(ps.stdout);
      counts.push(live.decisions.allow);
      const log = cap(['audit', 'log', '--run', 'ps-live', '--decision', 'deny', '--json']);
      assert.equal(log.status, 0, log.stderr);
      assert.equal(JSON.parse(log.stdout.trim()).seq, 2);
      const ins = cap(['inspect', 'ps-live', '--json']);
      assert.equal(ins.status, 0, ins.stderr);
      const v = cap(['audit', 'verify']);
      assert.equal(v.status, 0, v.stderr);
    }
    // the writer went on meanwhile, and ps saw it
    assert.ok(counts[counts.length - 1] > counts[0], String(counts));
    writer.kill('SIGKILL');
  });
});
