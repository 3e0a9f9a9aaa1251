import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeRunCommand, runStream, SqliteEventStore, type RunCommand, type StoredEvent } from '@capulator/events';
import { InProcessExecutor, QueueFull } from './in-process.executor';
import { OrphanRecovery } from './orphans';
import type { RunFn, RunRequest } from './run-executor';

const policy = { name: 'p', version: 1, hash: 'sha256:00' };
const request = (runId: string): RunRequest => ({ runId, image: 'i', command: [], env: [], policy, learn: false, mounts: [] });
const at = () => new Date().toISOString();
const sets = { bounding: [], permitted: [], effective: [], inheritable: [], ambient: [] };
const start = (): RunCommand => ({ type: 'StartRun', at: at(), imageDigest: 'sha256:00', user: { uid: 0, gid: 0 }, granted: sets, provenance: {}, policy, pid: 1 });
const exited = (exitCode = 0): RunCommand => ({ type: 'ExitRun', at: at(), exit: { exitCode, signal: null, counts: { allow: 0, deny: 0, emulate: 0 }, lostEvents: 0, durationMs: 1 } });
/** What RunsService does before it hands a run to the executor: RunRequested through the decider. */
async function submit(ex: InProcessExecutor, store: SqliteEventStore, runId: string): Promise<void> {
  await executeRunCommand(store, runId, { type: 'RequestRun', at: at(), request: request(runId) });
  await ex.submit(request(runId));
}

async function types(store: SqliteEventStore, runId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of store.readStream(runStream(runId))) out.push(e.type);
  return out;
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('InProcessExecutor', () => {
  let dir: string;
  let store: SqliteEventStore;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-exec-'));
    store = SqliteEventStore.open(join(dir, 'events.db'));
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('when more runs are submitted than it may execute at once', () => {
    it('runs at most `concurrency` at a time, in order, and reports what it appended', async () => {
      const gates = new Map<string, () => void>();
      let active = 0;
      let peak = 0;
      const started: string[] = [];
      const run: RunFn = async function* (req) {
        active++;
        peak = Math.max(peak, active);
        started.push(req.runId);
        await new Promise<void>((r) => gates.set(req.runId, r));
        active--;
        yield start();
        yield exited();
      };
      const appended: StoredEvent[] = [];
      const ex = new InProcessExecutor(store, run, { concurrency: 2, maxQueued: 10, onAppended: (e) => appended.push(...e) });
      for (const id of ['c1', 'c2', 'c3', 'c4']) await submit(ex, store, id);
      await until('two running', () => gates.size === 2);
      assert.deepEqual(ex.stats, { queued: 2, running: 2 });
      gates.get('c1')!();
      await until('third started', () => started.length === 3);
      assert.deepEqual(started, ['c1', 'c2', 'c3']);
      for (const id of ['c2', 'c3']) gates.get(id)!();
      await until('fourth started', () => gates.has('c4'));
      gates.get('c4')!();
      await until('all ended', () => ex.stats.running === 0 && ex.stats.queued === 0);
      assert.equal(peak, 2);
      assert.deepEqual(await types(store, 'c4'), ['RunRequested', 'RunStarted', 'RunExited']);
      assert.deepEqual([...new Set(appended.map((e) => (e.payload as { runId: string }).runId))].sort(), ['c1', 'c2', 'c3', 'c4']);
      await ex.close();
    });

    it('refuses a submission beyond maxQueued', async () => {
      const never: RunFn = async function* () {
        await new Promise(() => undefined);
      };
      const ex = new InProcessExecutor(store, never, { concurrency: 1, maxQueued: 1 });
      await submit(ex, store, 'q1');
      await until('q1 running', () => ex.stats.running === 1);
      await submit(ex, store, 'q2');
      await assert.rejects(submit(ex, store, 'q3'), QueueFull);
      assert.equal(await ex.stop('q2'), true);
      assert.deepEqual(await types(store, 'q2'), ['RunRequested', 'RunFailed']);
    });
  });

  describe('when a run is stopped or its runner misbehaves', () => {
    it('aborts a running run through its signal', async () => {
      const run: RunFn = async function* (req, { signal }) {
        yield start();
        if (!signal.aborted) await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
        yield exited(137);
      };
      const ex = new InProcessExecutor(store, run, { concurrency: 1, maxQueued: 10 });
      await submit(ex, store, 's1');
      await until('s1 running', () => ex.stats.running === 1);
      assert.equal(await ex.stop('s1'), true);
      await until('s1 ended', async () => (await types(store, 's1')).includes('RunExited'));
      assert.equal(await ex.stop('s1'), false);
      await ex.close();
    });

    it('records RunFailed when the runner throws or ends without a terminal event', async () => {
      const run: RunFn = async function* (req) {
        if (req.runId === 'boom') throw new Error('runner exploded');
        yield start();
      };
      const ex = new InProcessExecutor(store, run, { concurrency: 2, maxQueued: 10 });
      await submit(ex, store, 'boom');
      await submit(ex, store, 'silent');
      await until('both failed', async () => (await types(store, 'boom')).includes('RunFailed') && (await types(store, 'silent')).includes('RunFailed'));
      assert.deepEqual(await types(store, 'boom'), ['RunRequested', 'RunFailed']);
      const out: StoredEvent[] = [];
      for await (const e of store.readStream(runStream('silent'))) out.push(e);
      assert.deepEqual(out.map((e) => e.type), ['RunRequested', 'RunStarted', 'RunFailed']);
      assert.match((out[2].payload as { reason: string }).reason, /without an outcome/);
      await ex.close();
    });

    it('a run whose agent died ends with one RunFailed keeping stage and reason; a later ExitRun is refused, not appended', async () => {
      const run: RunFn = async function* () {
        yield start();
        yield { type: 'FailRun', at: at(), stage: 'agent', reason: 'the agent died while the container ran' };
        yield exited(); // a runner that still reports an exit: the decider refuses it
      };
      const errors: unknown[] = [];
      const ex = new InProcessExecutor(store, run, { concurrency: 1, maxQueued: 10, onError: (_id, e) => errors.push(e) });
      await submit(ex, store, 'died');
      await until('died ended', () => ex.stats.running === 0 && ex.stats.queued === 0);
      const out: StoredEvent[] = [];
      for await (const e of store.readStream(runStream('died'))) out.push(e);
      assert.deepEqual(out.map((e) => e.type), ['RunRequested', 'RunStarted', 'RunFailed']);
      assert.deepEqual([(out[2].payload as { stage: string }).stage, (out[2].payload as { reason: string }).reason], ['agent', 'the agent died while the container ran']);
      assert.equal(errors.length, 1);
      await ex.close();
    });
  });

  describe('as the ledger of orphaned requests (a server killed with runs queued)', () => {
    it('settles a requested run it does not hold, never one it holds queued or running, nor one a runtime has a run directory for', async () => {
      const gate: Array<() => void> = [];
      const run: RunFn = async function* () {
        await new Promise<void>((r) => gate.push(r));
        yield start();
        yield exited();
      };
      const runsDir = join(dir, 'runs');
      mkdirSync(join(runsDir, 'o-cli'), { recursive: true });
      const ex = new InProcessExecutor(store, run, { concurrency: 1, maxQueued: 10, runsDir });
      await submit(ex, store, 'o-running');
      await submit(ex, store, 'o-queued');
      // requested by a server that died (nothing holds it), and by a `capulator run` that made its directory
      for (const id of ['o-lost', 'o-cli']) await executeRunCommand(store, id, { type: 'RequestRun', at: at(), request: request(id) });
      await until('one running', () => gate.length === 1);
      const recovery = new OrphanRecovery(store, ex, () => ['o-running', 'o-queued', 'o-lost', 'o-cli'], () => undefined);
      await recovery.sweep();
      assert.equal(recovery.recovered, 1);
      assert.deepEqual(await types(store, 'o-lost'), ['RunRequested', 'RunFailed']);
      for await (const e of store.readStream(runStream('o-lost'))) if (e.type === 'RunFailed') assert.equal((e.payload as { reason: string }).reason, ex.orphanReason);
      for (const id of ['o-running', 'o-queued', 'o-cli']) assert.deepEqual(await types(store, id), ['RunRequested'], id);
      gate[0]();
      await until('second running', () => gate.length === 2);
      gate[1]();
      await until('all ended', () => ex.stats.running === 0 && ex.stats.queued === 0);
      assert.deepEqual(await types(store, 'o-queued'), ['RunRequested', 'RunStarted', 'RunExited']);
      await ex.close();
    });
  });
});
