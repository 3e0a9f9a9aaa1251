import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, runStream, type StoredEvent } from '@capulator/events';
import { readCountFile } from '../../../runtime/src/run';

/**
 * Decisions outlive the runtime (issue 12 part A): SIGKILL of the cold CLI, of the daemon and of
 * the agent while a program makes thousands of trapped calls, and a disk that fills during a
 * run. Real runc, agent, SQLite; a 20 MB tmpfs as the full disk.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');
const RUNC_ROOT = '/run/capulator/runc';
const tag = Math.random().toString(16).slice(2, 8);
const DECISION_TYPES = new Set(['PrivilegeChecked', 'CapabilitiesQueried', 'CapabilitiesChangeRequested']);

let work: string;
let rootfs: string;
let policy: string;

async function stream(home: string, id: string): Promise<StoredEvent[]> {
  const store = SqliteEventStore.open(join(home, 'events.db'));
  const out: StoredEvent[] = [];
  for await (const e of store.readStream(runStream(id))) out.push(e);
  await store.close();
  return out;
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const freeMiB = (path: string) => Number(spawnSync('df', ['--output=avail', '-m', path], { encoding: 'utf8' }).stdout.split('\n')[1]);
const containers = () => spawnSync('runc', ['--root', RUNC_ROOT, 'list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
const mounted = (path: string) => readFileSync('/proc/mounts', 'utf8').includes(path);

function start(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(bin, args, { env: { ...process.env, ...env } });
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, out, done };
}

/** Waits until the agent of run `id` has decided at least `n` calls (its count file). */
const decided = (home: string, id: string, n: number) =>
  until(`${n} decisions of ${id}`, () => {
    const c = readCountFile(join(home, 'runs', id, 'decisions.count'));
    return c !== undefined && c.decided >= n;
  });

/** What recovery must leave: every decision the agent counted is stored once; no container, mount or directory. */
async function assertRecovered(home: string, id: string, stage: string, reason: RegExp): Promise<void> {
  const events = await stream(home, id);
  const decisions = events.filter((e) => DECISION_TYPES.has(e.type));
  const seqs = decisions.map((e) => (e.payload as { seq: number }).seq);
  assert.equal(new Set(seqs).size, seqs.length, 'no decision is stored twice');
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'decisions 1..N in order, no gap');
  const failed = events.find((e) => e.type === 'RunFailed');
  assert.ok(failed, `RunFailed recorded: ${events.map((e) => e.type).join(',')}`);
  assert.equal((failed.payload as { stage: string }).stage, stage);
  assert.match((failed.payload as { reason: string }).reason, reason);
  assert.ok(!events.some((e) => e.type === 'RunExited'), 'one terminal event');
  const end = failed.payload as { lostEvents: number; counts: { allow: number } };
  assert.equal(end.lostEvents, 0, 'received == decided');
  assert.equal(end.counts.allow, decisions.length);
  assert.ok(!containers().includes(`capulator-${id}`), 'no container left');
  assert.ok(!mounted(join(home, 'runs', id)), 'no mount left');
  assert.ok(!existsSync(join(home, 'runs', id)), 'no run directory left');
}

describe('decisions outlive the runtime', () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'capulator-survive-'));
    rootfs = join(work, 'rootfs');
    for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
    const cc = spawnSync('gcc', ['-O2', '-static', '-o', join(rootfs, 'capget-loop'), join(repo, 'test/fixtures/run/capget-loop.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    policy = join(work, 'policy.yaml');
    writeFileSync(
      policy,
      'apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: survive }\ndefaults: { action: deny, audit: all }\nrules:\n  - id: capget\n    when: { syscall: capget }\n    action: allow\n',
    );
  });
  after(() => {
    for (const c of containers()) if (c.includes(`-sv${tag}`)) spawnSync('runc', ['--root', RUNC_ROOT, 'delete', '-f', c]);
    rmSync(work, { recursive: true, force: true });
  });

  describe('when the cold `capulator run` is SIGKILLed mid-run', () => {
    it('the agent stops the container, and the next command stores every decision and closes the run failed', async () => {
      const home = join(work, 'cold');
      const id = `k-sv${tag}`;
      const run = start(['run', '--id', id, '--policy', policy, rootfs, '--', '/capget-loop', '1000000'], { CAPULATOR_HOME: home });
      await decided(home, id, 3000);
      run.child.kill('SIGKILL');
      await run.done;
      // no capulator process is left, yet the container stops: its agent saw its runtime go
      await until('the container stopped', () => !containers().includes(`capulator-${id}`));
      const agent = JSON.parse(readFileSync(join(home, 'runs', id, 'supervisor.json'), 'utf8')).agent as { pid: number };
      await until('the agent exited', () => !existsSync(`/proc/${agent.pid}`));
      const count = readCountFile(join(home, 'runs', id, 'decisions.count'))!;
      assert.equal(count.done, true, 'the agent wrote its trailer');
      const verify = spawnSync(bin, ['audit', 'verify'], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
      assert.equal(verify.status, 0, verify.stderr);
      assert.match(verify.stderr, new RegExp(`recovered run ${id} \\(supervisor died \\(pid ${run.child.pid}\\)\\): ${count.decided} of the agent's ${count.decided} decisions`));
      await assertRecovered(home, id, 'runtime', /^supervisor died \(pid \d+\)$/);
      const decisions = (await stream(home, id)).filter((e) => DECISION_TYPES.has(e.type));
      assert.equal(decisions.length, count.decided);
      // a second command finds nothing to do: recovery is idempotent
      const again = spawnSync(bin, ['audit', 'verify'], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
      assert.equal(again.stderr, '');
    });
  });

  describe('when `capulator serve` is SIGKILLed during a run handed over on its run socket', () => {
    let serve: ChildProcess | undefined;
    after(async () => {
      if (serve && serve.exitCode === null) {
        const exited = new Promise((r) => serve!.once('exit', r));
        serve.kill('SIGTERM');
        await exited;
      }
    });
    it('the client exits 125, the container stops, and the next `serve` recovers the run', async () => {
      const home = join(work, 'daemon');
      mkdirSync(home, { mode: 0o700 });
      const noNode = join(work, 'path');
      mkdirSync(noNode);
      symlinkSync(spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim(), join(noNode, 'runc'));
      const startServe = () => spawn(bin, ['serve', '--http', 'off', '--grpc', 'off', '--log-level', 'silent'], { env: { ...process.env, CAPULATOR_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
      serve = startServe();
      await until('the run socket', () => existsSync(join(home, 'run.sock')));
      const id = `d-sv${tag}`;
      const run = start(['run', '--id', id, '--policy', policy, rootfs, '--', '/capget-loop', '1000000'], { CAPULATOR_HOME: home, PATH: noNode });
      await decided(home, id, 3000);
      serve.kill('SIGKILL');
      const end = await run.done;
      assert.equal(end.code, 125, run.out.stderr);
      assert.match(run.out.stderr, /lost the connection to capulator serve/);
      assert.ok(!containers().includes(`capulator-${id}`), 'the container stopped with its daemon');
      rmSync(join(home, 'run.sock'), { force: true });
      serve = startServe();
      let err = '';
      serve.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
      await until('the run recovered', () => new RegExp(`recovered run ${id} \\(supervisor died`).test(err));
      await assertRecovered(home, id, 'runtime', /^supervisor died \(pid \d+\)$/);
    });
  });

  describe('when the agent is SIGKILLed mid-run', () => {
    it('the run fails (stage agent) with every decision in its spool stored, and what the agent had not written counted as lost', async () => {
      const home = join(work, 'agent');
      const id = `a-sv${tag}`;
      const run = start(['run', '--id', id, '--policy', policy, rootfs, '--', '/capget-loop', '1000000'], { CAPULATOR_HOME: home });
      await decided(home, id, 3000);
      const agent = JSON.parse(readFileSync(join(home, 'runs', id, 'supervisor.json'), 'utf8')).agent as { pid: number };
      process.kill(agent.pid, 'SIGKILL');
      const end = await run.done;
      assert.equal(end.code, 125);
      assert.match(run.out.stderr, new RegExp(`^capulator: run ${id} failed: the agent died while the container ran`, 'm'));
      const events = await stream(home, id);
      const decisions = events.filter((e) => DECISION_TYPES.has(e.type));
      const seqs = decisions.map((e) => (e.payload as { seq: number }).seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'the spool holds a gap-free prefix, all stored');
      assert.ok(decisions.length >= 3000);
      const failed = events.find((e) => e.type === 'RunFailed')!.payload as { stage: string };
      assert.equal(failed.stage, 'agent');
      // the agent's own count (its count file): what it had decided but not yet written is counted
      const exited = events.find((e) => e.type === 'RunFailed')!.payload as { lostEvents: number; lostReason?: string };
      if (exited.lostEvents > 0) assert.match(exited.lostReason ?? '', /not yet in its spool when it died/);
      assert.ok(!containers().includes(`capulator-${id}`));
      assert.ok(!existsSync(join(home, 'runs', id)));
    });
  });

  describe('when the disk fills during a run (a 20 MB filesystem as the home)', () => {
    const homes: string[] = [];
    after(() => {
      for (const h of homes) spawnSync('umount', [h]);
    });
    /** a fresh 20 MB tmpfs as the home */
    const smallHome = (name: string) => {
      const h = join(work, name);
      mkdirSync(h);
      const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', h], { encoding: 'utf8' });
      assert.equal(m.status, 0, m.stderr);
      homes.push(h);
      return h;
    };
    it('exits 125 with one line, stops the container, keeps the store intact, gives clean errors until space is freed, then works', async () => {
      const home = smallHome('small');
      const env = { ...process.env, CAPULATOR_HOME: home };
      const id = `f-sv${tag}`;
      const r = spawnSync(bin, ['run', '--id', id, '--policy', policy, rootfs, '--', '/capget-loop', '1000000'], { encoding: 'utf8', env, timeout: 120_000 });
      assert.equal(r.status, 125, r.stderr);
      assert.equal(r.stderr, `capulator: run ${id} failed: the audit record cannot be written (No space left on device); container stopped\n`);
      assert.ok(!containers().includes(`capulator-${id}`));
      assert.ok(!mounted(join(home, 'runs', id, 'rootfs')), 'the overlay is unmounted');
      // while the disk is full: one clean line, a documented status, no stack trace
      const log = spawnSync(bin, ['audit', 'log', '--run', id], { encoding: 'utf8', env });
      if (log.status !== 0) {
        assert.equal(log.status, 74, log.stderr);
        assert.equal(log.stderr.trim().split('\n').length, 1, log.stderr);
      }
      const again = spawnSync(bin, ['run', '--policy', policy, rootfs, '--', '/capget-loop', '10'], { encoding: 'utf8', env });
      assert.equal(again.status, 125, again.stderr);
      assert.doesNotMatch(again.stderr, /\n\s+at /, 'no stack trace');
      assert.match(again.stderr, /No space left on device/);
      // space freed: the next command finishes the run (failed, stage audit) and everything works
      assert.equal(spawnSync('mount', ['-o', 'remount,size=200m', home]).status, 0);
      const verify = spawnSync(bin, ['audit', 'verify'], { encoding: 'utf8', env });
      assert.equal(verify.status, 0, verify.stderr);
      assert.match(verify.stdout, /^ok: /);
      assert.match(verify.stderr, new RegExp(`recovered run ${id} \\(the audit record cannot be written`));
      assert.ok(!existsSync(join(home, 'runs', id)));
      const events = await stream(home, id);
      const failed = events.find((e) => e.type === 'RunFailed')!.payload as { stage: string };
      assert.equal(failed.stage, 'audit');
      const seqs = events.filter((e) => DECISION_TYPES.has(e.type)).map((e) => (e.payload as { seq: number }).seq);
      assert.equal(new Set(seqs).size, seqs.length, 'no decision stored twice');
      const ok = spawnSync(bin, ['run', '--policy', policy, rootfs, '--', '/capget-loop', '10'], { encoding: 'utf8', env });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout, 'done 10\n');
    });

    it('with --on-audit-failure continue the program runs to its end, the gap is counted, and the run is finished once space is free', async () => {
      const home = smallHome('small2');
      // a first run creates the store, the policy and the anchor key
      assert.equal(spawnSync(bin, ['run', '--policy', policy, rootfs, '--', '/capget-loop', '10'], { env: { ...process.env, CAPULATOR_HOME: home } }).status, 0);
      const env = { ...process.env, CAPULATOR_HOME: home };
      // leave 8 MiB free: the run starts, and its decisions fill the rest
      spawnSync('dd', ['if=/dev/zero', `of=${join(home, 'filler')}`, 'bs=1M', 'count=' + Math.max(0, Math.floor(freeMiB(home)) - 8)]);
      const id = `c-sv${tag}`;
      const r = spawnSync(bin, ['run', '--on-audit-failure', 'continue', '--id', id, '--policy', policy, rootfs, '--', '/capget-loop', '200000'], { encoding: 'utf8', env, timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'done 200000\n');
      assert.match(r.stderr, new RegExp(`^capulator: warning: run ${id}: the audit record cannot be written \\(No space left on device\\); \\d+ events not recorded$`, 'm'));
      rmSync(join(home, 'filler'));
      const verify = spawnSync(bin, ['audit', 'verify'], { encoding: 'utf8', env });
      assert.equal(verify.status, 0, verify.stderr);
      const events = await stream(home, id);
      const end = events.find((e) => e.type === 'RunFailed' || e.type === 'RunExited');
      assert.ok(end, `the run is closed: ${verify.stderr} ${r.stderr} ${events.map((e) => e.type).join(',')}`);
      assert.ok((end.payload as { lostEvents: number }).lostEvents > 0, 'the gap is counted');
      assert.ok(!existsSync(join(home, 'runs', id)));
    });
  });
});
