import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from './sqlite-event-store';
import { EVENTS_PER_TRANSACTION } from '../testing/append-loop';

describe('SqliteEventStore', () => {
  describe('when the appending process is killed with SIGKILL during a burst', () => {
    it('reopens consistent: whole transactions only, the chain verifies, appends continue', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'capulator-crash-'));
      const path = join(dir, 'events.db');
      const watcher = SqliteEventStore.open(path);
      try {
        for (let round = 0; round < 3; round++) {
          const child = spawn(process.execPath, [join(__dirname, '..', 'testing', 'append-loop.js'), path, `r${round}`], { stdio: ['ignore', 'pipe', 'inherit'] });
          const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
          const target = (await watcher.headPosition()) + 20 * EVENTS_PER_TRANSACTION;
          const deadline = Date.now() + 20_000;
          while ((await watcher.headPosition()) < target) {
            if (Date.now() > deadline) throw new Error('the child did not append');
            await new Promise((r) => setTimeout(r, 5));
          }
          child.kill('SIGKILL');
          assert.equal(await exited, 'SIGKILL');
        }
        await watcher.close();
        const store = SqliteEventStore.open(path);
        try {
          const head = store.head();
          assert.ok(head.position >= 60 * EVENTS_PER_TRANSACTION);
          assert.equal(head.position % EVENTS_PER_TRANSACTION, 0, 'a partial transaction is visible');
          const v = store.verify();
          assert.equal(v.ok, true, v.problem?.message);
          assert.equal(v.checked, head.position);
          assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
          const versions = store.db.prepare("SELECT stream_id, version FROM streams WHERE stream_id LIKE 'run-r0-%' ORDER BY stream_id").raw().all() as [string, number][];
          assert.equal(versions[0][1] / 20, versions[1][1] / 17, 'the two streams of one transaction diverged');
          await store.append('run-after', 'no-stream', [
            { type: 'RunFailed', at: '2026-01-01T00:00:00.000Z', payload: { runId: 'after', reason: 'test', stage: 'start' } },
          ]);
          assert.equal(store.verify().ok, true);
        } finally {
          await store.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
