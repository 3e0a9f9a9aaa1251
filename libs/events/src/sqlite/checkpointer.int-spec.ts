import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decision } from '../testing/fixtures';
import { SqliteEventStore } from './sqlite-event-store';

describe("a server's store: WAL checkpoints on a worker thread", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'capulator-checkpointer-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('never checkpoints inside a commit, yet copies the WAL into the database within moments, and closes cleanly', async () => {
    const path = join(dir, 'events.db');
    const store = SqliteEventStore.open(path, { checkpoint: 'background' });
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 0, 'the connection does not checkpoint itself');
    const before = statSync(path).size;
    // ~4 MB of decisions in 200 commits: far past what the connection would have checkpointed inline (1000 pages)
    for (let c = 0; c < 200; c++) {
      await store.append(`run-c${c}`, 'no-stream', Array.from({ length: 40 }, (_, i) => decision(`c${c}`, i + 1, { exe: '/x'.repeat(200) })));
    }
    const deadline = Date.now() + 5_000;
    while (statSync(path).size <= before + (2 << 20) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(statSync(path).size > before + (2 << 20), `the database file took the WAL's pages (${statSync(path).size} bytes)`);
    await store.close();
    // everything is there, chain whole, read by an ordinary connection
    const again = SqliteEventStore.open(path);
    try {
      const v = again.verify();
      assert.equal(v.ok, true, JSON.stringify(v));
      assert.equal(v.checked, 200 * 40);
      assert.equal(again.db.pragma('wal_autocheckpoint', { simple: true }), 1000, 'a store opened without the option checkpoints as SQLite does');
    } finally {
      await again.close();
    }
  });
});
