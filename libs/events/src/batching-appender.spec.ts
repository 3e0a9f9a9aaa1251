import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BatchingAppender } from './batching-appender';
import { StoreUnavailable, WrongExpectedVersion } from './errors';
import { SqliteEventStore } from './sqlite/sqlite-event-store';
import type { AppendRequest, EventStore } from './store';
import { decision, runRequested } from './testing/fixtures';
import { recordBytes } from './contracts';

/** The store with its appends counted (and made to fail while `down`). */
function counted(store: EventStore): { store: EventStore; calls: string[]; down: { on: boolean } } {
  const calls: string[] = [];
  const down = { on: false };
  const wrapped = Object.create(store) as EventStore;
  wrapped.append = async (streamId, expected, events) => {
    calls.push(`append ${streamId}`);
    if (down.on) throw new StoreUnavailable('broker gone', true);
    return store.append(streamId, expected, events);
  };
  wrapped.appendBatch = async (reqs: AppendRequest[]) => {
    calls.push(`batch ${reqs.length}`);
    if (down.on) throw new StoreUnavailable('broker gone', true);
    return store.appendBatch(reqs);
  };
  return { store: wrapped, calls, down };
}

describe('BatchingAppender (group commit, as gateways and runtime workers append)', () => {
  const withStore = async (fn: (s: SqliteEventStore) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'batching-'));
    const s = SqliteEventStore.open(join(dir, 'events.db'));
    try {
      await fn(s);
    } finally {
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('writes appends of several runs asked for in one turn as one batch, and each gets its own events back', () =>
    withStore(async (sqlite) => {
      const c = counted(sqlite);
      const a = new BatchingAppender(c.store);
      const runs = ['r1', 'r2', 'r3', 'r4'];
      const out = await Promise.all(runs.map((r) => a.append({ streamId: `run-${r}`, expectedVersion: 'no-stream', events: [runRequested(r), decision(r, 1)] })));
      assert.deepEqual(c.calls, ['batch 4']);
      out.forEach((stored, i) => assert.deepEqual(stored.map((e) => e.streamId), [`run-${runs[i]}`, `run-${runs[i]}`]));
    }));

  it('keeps a batch under its byte bound (one Kafka record): what does not fit waits for the next, in order', () =>
    withStore(async (sqlite) => {
      const c = counted(sqlite);
      const big = (r: string, n: number) => Array.from({ length: n }, (_, i) => decision(r, i + 1));
      const per = recordBytes(decision('r1', 1));
      // room for about 10 decisions a batch: 6 + 6 do not fit together, the small third request waits behind
      const a = new BatchingAppender(c.store, 256, per * 10 + 5);
      const out = await Promise.all([
        a.append({ streamId: 'run-r1', expectedVersion: 'no-stream', events: big('r1', 6) }),
        a.append({ streamId: 'run-r2', expectedVersion: 'no-stream', events: big('r2', 6) }),
        a.append({ streamId: 'run-r1', expectedVersion: 6, events: [decision('r1', 7)] }),
        a.append({ streamId: 'run-r3', expectedVersion: 'no-stream', events: big('r3', 20) }),
      ]);
      assert.deepEqual(c.calls, ['append run-r1', 'batch 2', 'append run-r3']);
      assert.deepEqual(out.map((s) => s.length), [6, 6, 1, 20], 'a request over the bound alone is still written');
      assert.equal(out[2][0].streamVersion, 7);
    }));

  it('gives a version conflict to the request at fault alone; the others are written', () =>
    withStore(async (sqlite) => {
      await sqlite.append('run-x', 'no-stream', [runRequested('x')]);
      const a = new BatchingAppender(counted(sqlite).store);
      const [ok, bad] = await Promise.allSettled([
        a.append({ streamId: 'run-y', expectedVersion: 'no-stream', events: [runRequested('y')] }),
        a.append({ streamId: 'run-x', expectedVersion: 'no-stream', events: [runRequested('x')] }),
      ]);
      assert.equal(ok.status, 'fulfilled');
      assert.equal(bad.status, 'rejected');
      assert.ok((bad as PromiseRejectedResult).reason instanceof WrongExpectedVersion);
    }));

  it('refuses what waits behind a write that found the log unreachable, unsent, with the code a worker holds on', () =>
    withStore(async (sqlite) => {
      const c = counted(sqlite);
      c.down.on = true;
      const a = new BatchingAppender(c.store);
      const results = await Promise.allSettled([1, 2].map((n) => a.append({ streamId: `run-d${n}`, expectedVersion: 'no-stream', events: [runRequested(`d${n}`)] })));
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.equal(((r as PromiseRejectedResult).reason as { code: string }).code, 'UNAVAILABLE');
      }
    }));
});
