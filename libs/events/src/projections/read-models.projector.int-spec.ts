import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '../sqlite/sqlite-event-store';
import { ReadModelProjector } from './read-models.projector';
import { decision, runExited, runRequested, runStarted } from '../testing/fixtures';
import { decisionLog } from './decision-log.query';

describe('ReadModelProjector', () => {
  async function withStore(fn: (store: SqliteEventStore, path: string) => Promise<void>) {
    const dir = mkdtempSync(join(tmpdir(), 'capulator-proj-'));
    const path = join(dir, 'events.db');
    const store = SqliteEventStore.open(path);
    try {
      await fn(store, path);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  describe('when fed live, page by page, while runs are recorded', () => {
    it('ends in the same state as a rebuild from position 0', async () => {
      await withStore(async (store) => {
        const live = new ReadModelProjector(store, 7);
        for (let r = 1; r <= 6; r++) {
          const id = `r${r}`;
          await store.append(`run-${id}`, 'no-stream', [runRequested(id), runStarted(id, ['CAP_NET_RAW', 'CAP_CHOWN'])]);
          live.catchUp();
          for (let b = 0; b < 3; b++) {
            await store.appendBatch([
              { streamId: `run-${id}`, expectedVersion: 'any', events: Array.from({ length: 5 }, (_, i) => decision(id, b * 5 + i + 1, { decision: i === 4 ? 'deny' : 'allow', exe: i % 2 ? '/bin/chown' : '/usr/bin/ping' })) },
            ]);
            if (b === 1) live.catchUp();
          }
          if (r % 3 === 0) await store.append(`run-${id}`, 'any', [{ type: 'RunFailed', at: '2026-01-01T00:01:00.000Z', payload: { runId: id, reason: 'agent died', stage: 'agent' } }]);
          else await store.append(`run-${id}`, 'any', [runExited(id, { exitCode: r, lostEvents: r === 2 ? 3 : 0 })]);
        }
        await store.append('policy-p', 'no-stream', [{ type: 'PolicyPublished', at: '2026-01-01T00:00:00.000Z', payload: { name: 'p', version: 1, hash: 'sha256:1', yaml: 'x' } }]);
        await store.append('image-sha256:1', 'no-stream', [
          { type: 'ImageImported', at: '2026-01-01T00:00:00.000Z', payload: { digest: 'sha256:1', tags: ['a:1'], layers: [], platform: { os: 'linux', architecture: 'amd64' }, sizeBytes: 1, source: 'x.tar' } },
          { type: 'ImageImported', at: '2026-01-01T00:00:01.000Z', payload: { digest: 'sha256:1', tags: ['b:2'], layers: [], platform: { os: 'linux', architecture: 'amd64' }, sizeBytes: 1, source: 'x.tar' } },
        ]);
        live.catchUp();
        // Applying an old page again is a no-op (idempotent by position).
        const again = Array.from(store.readAllSync(1)).slice(0, 30);
        live.apply(again);
        const liveState = live.dump();

        const rebuilt = new ReadModelProjector(store, 1000);
        rebuilt.rebuild();
        assert.deepEqual(rebuilt.dump(), liveState);

        const r1 = rebuilt.runSummary('r1')!;
        assert.equal(r1.status, 'exited');
        assert.deepEqual(r1.counts, { allow: 12, deny: 3, emulate: 0 });
        assert.equal(rebuilt.runSummary('r3')!.status, 'failed');
        assert.equal(rebuilt.runSummary('r2')!.lostEvents, 3);
        assert.equal(liveState.rm_decisions.length, 6 * 15);
        assert.deepEqual((liveState.rm_images[0] as { tags: string }).tags, '["a:1","b:2"]');
        assert.equal([...decisionLog(store.db, { runId: 'r2', decision: 'deny' })].length, 3);
        assert.equal([...decisionLog(store.db, { exeMatches: (e) => e.startsWith('/bin/'), runId: 'r1' })].length, 6);
      });
    });
  });

  describe('when the decision seqs of a run have a gap', () => {
    it('reports the gap as lost events on the run', async () => {
      await withStore(async (store) => {
        await store.append('run-g', 'no-stream', [runRequested('g'), runStarted('g', []), decision('g', 1), decision('g', 2), decision('g', 6), runExited('g')]);
        const p = new ReadModelProjector(store);
        p.catchUp();
        const s = p.runSummary('g')!;
        assert.equal(s.seqGaps, 3);
        assert.equal(s.lostEvents, 3);
        assert.match(s.lostReason ?? '', /3 decision seq numbers missing/);
      });
    });
  });
});
