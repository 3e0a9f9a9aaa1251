import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DecisionOutcome } from '../contracts';
import { ReadModelProjector } from '../projections/read-models.projector';
import { SqliteEventStore } from '../sqlite/sqlite-event-store';
import { decision, isoAt, runRequested, runStarted } from '../testing/fixtures';
import { whatIf, type DecisionChange, type PolicyUnderTest, type ReplayRequest } from './what-if';

/**
 * whatIf over a real SQLite store and read models. Three kinds of recorded request per run, in
 * rotation: ping's raw socket (allowed by rule ping-raw), a bind to port 80 (allowed by rule web)
 * and a chown (denied by the default). The policies under test are plain functions, so every
 * expected count follows from the rotation.
 */
function record(store: SqliteEventStore, runs: number, perRun: number): void {
  for (let r = 1; r <= runs; r++) {
    const id = `r${r}`;
    store.appendSync([{ streamId: `run-${id}`, expectedVersion: 'no-stream', events: [runRequested(id), runStarted(id, ['CAP_NET_RAW', 'CAP_CHOWN'])] }]);
    const evs = [];
    for (let s = 1; s <= perRun; s++) {
      const k = s % 3;
      evs.push(
        k === 1
          ? decision(id, s)
          : k === 2
            ? decision(id, s, { syscall: 'bind', nr: 49, args: { family: 'AF_INET', port: 80 }, privileges: ['PRIV_NETINET_RESERVEDPORT'], capability: 'CAP_NET_BIND_SERVICE', ruleId: 'web', exe: '/usr/sbin/nginx' })
            : decision(id, s, { syscall: 'chown', nr: 92, args: { uid: 33, gid: 33 }, privileges: ['PRIV_VFS_CHOWN'], capability: 'CAP_CHOWN', decision: 'deny', errno: 1, ruleId: null, answeredBy: 'errno' }),
      );
    }
    store.appendSync([{ streamId: `run-${id}`, expectedVersion: 'any', events: evs }]);
  }
}

function policyOf(decide: (r: ReplayRequest) => { decision: DecisionOutcome; ruleId: string | null }): PolicyUnderTest & { evaluations: number } {
  const p = {
    evaluations: 0,
    evaluate: (r: ReplayRequest) => {
      p.evaluations++;
      return decide(r);
    },
    startCapabilities: () => ['CAP_NET_RAW', 'CAP_CHOWN'],
  };
  return p;
}

/** What was recorded, with ping's rule renamed: same decisions, one rule differs. */
const recordedButRenamed = policyOf((r) =>
  r.syscall === 'socket' ? { decision: 'allow', ruleId: 'raw-sockets' } : r.syscall === 'bind' ? { decision: 'allow', ruleId: 'web' } : { decision: 'deny', ruleId: null },
);
/** Binds are now denied, chown allowed. */
const stricter = policyOf((r) =>
  r.syscall === 'socket' ? { decision: 'allow', ruleId: 'ping-raw' } : r.syscall === 'bind' ? { decision: 'deny', ruleId: null } : { decision: 'allow', ruleId: 'chown-ok' },
);

describe('whatIf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capulator-whatif-'));
  const store = SqliteEventStore.open(join(dir, 'events.db'));
  // 4 runs × 9000 decisions: 12,000 binds change, more than one page of the scan (10,000 rows)
  record(store, 4, 9000);
  new ReadModelProjector(store).catchUp();

  it('counts a different rule with the same decision as ruleOnly, never as a change', () => {
    const changes: DecisionChange[] = [];
    const sum = whatIf(store.db, recordedButRenamed, {}, (c) => c.kind === 'decision' && changes.push(c));
    assert.equal(sum.decisions, 36000);
    assert.equal(sum.changed, 0);
    assert.equal(sum.ruleOnly, 12000);
    assert.equal(changes.length, 0);
    assert.equal(sum.distinctRequests, 3);
  });

  it('hands back every change once, in position order, across pages, with old and new outcomes', () => {
    const changes: DecisionChange[] = [];
    const sum = whatIf(store.db, stricter, {}, (c) => c.kind === 'decision' && changes.push(c));
    assert.equal(sum.decisions, 36000);
    assert.equal(sum.changed, 24000);
    assert.equal(sum.regressions, 12000, 'every bind: allowed before, denied now');
    assert.equal(sum.relaxed, 12000, 'every chown: denied before, allowed now');
    assert.equal(sum.ruleOnly, 0);
    assert.equal(changes.length, 24000);
    for (let i = 1; i < changes.length; i++) assert.ok(changes[i].position > changes[i - 1].position, `position order at ${i}`);
    assert.equal(new Set(changes.map((c) => c.position)).size, 24000);
    const bind = changes.find((c) => c.syscall === 'bind')!;
    assert.deepEqual([bind.old, bind.new, bind.regression, bind.exe], [{ decision: 'allow', ruleId: 'web' }, { decision: 'deny', ruleId: null }, true, '/usr/sbin/nginx']);
    const chown = changes.find((c) => c.syscall === 'chown')!;
    assert.deepEqual([chown.old, chown.new, chown.regression], [{ decision: 'deny', ruleId: null }, { decision: 'allow', ruleId: 'chown-ok' }, false]);
    assert.deepEqual(bind.privileges, ['PRIV_NETINET_RESERVEDPORT']);
  });

  it('replays only the runs and times asked for', () => {
    const changes: DecisionChange[] = [];
    const byRun = whatIf(store.db, stricter, { runIds: ['r2', 'r4'] }, (c) => c.kind === 'decision' && changes.push(c));
    assert.equal(byRun.decisions, 18000);
    assert.equal(byRun.changed, 12000);
    assert.deepEqual([...new Set(changes.map((c) => c.runId))].sort(), ['r2', 'r4']);
    // decision `at` is T0 + seq ms: from seq 6001 on, 3000 per run
    const since = whatIf(store.db, stricter, { since: isoAt(6001) }, () => undefined);
    assert.equal(since.decisions, 4 * 3000);
    assert.equal(since.changed, 4 * 2000);
  });

  it('cleans up', async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
