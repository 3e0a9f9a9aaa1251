import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NewEvent, StoredEvent } from '../contracts';
import { StoreUnavailable, WrongExpectedVersion } from '../errors';
import type { ExpectedVersion } from '../store';
import { decision } from '../testing/fixtures';
import { RunWriter, type RunAppend } from './run-writer';
import type { RunState } from './run.decider';

/**
 * One run's stream as a log holds it: an append lands only at its expected version. `lag` delays
 * each attempt's landing, so several are in flight at once, and they land in the order they were
 * made (one producer, one partition).
 */
function fakeLog(lag = 5) {
  const events: StoredEvent[] = [];
  const calls: Array<{ kind: 'try' | 'append'; expected: ExpectedVersion; n: number; unsure?: boolean }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let chain = Promise.resolve();
  /** attempts that are in the log although their caller is told they failed (the answer was lost) */
  const lostAnswers = new Set<number>();
  /** attempts refused before they reach the log (the broker did not take them) */
  const refused = new Set<number>();
  const land = (evs: NewEvent[], expected: ExpectedVersion): StoredEvent[] => {
    const v = expected === 'no-stream' ? 0 : (expected as number);
    if (v !== events.length) throw new WrongExpectedVersion('run-r', expected, events.length);
    const stored = evs.map((e, i) => ({ position: v + i + 1, streamId: 'run-r', streamVersion: v + i + 1, type: e.type, schemaVersion: 2, at: e.at, payload: e.payload, prevHash: '', hash: '' }));
    events.push(...stored);
    return stored;
  };
  const attempt = (kind: 'try' | 'append', evs: NewEvent[], expected: ExpectedVersion, unsure?: boolean): Promise<StoredEvent[]> => {
    const n = calls.push({ kind, expected, n: evs.length, ...(unsure ? { unsure } : {}) });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const done = chain.then(async () => {
      await new Promise((r) => setTimeout(r, lag));
      if (refused.has(n)) throw new StoreUnavailable('not taken');
      const stored = land(evs, expected);
      if (lostAnswers.has(n)) throw new StoreUnavailable('taken, not acknowledged', true);
      return stored;
    });
    chain = done.then(() => undefined, () => undefined);
    return done.finally(() => inFlight--);
  };
  const tryOnce: RunAppend = (evs, expected) => attempt('try', evs, expected);
  // the writer's own append: recognises its events when told they may be in the log already
  const append: RunAppend = async (evs, expected, unsure) => {
    try {
      return await attempt('append', evs, expected, unsure);
    } catch (e) {
      const v = expected === 'no-stream' ? 0 : (expected as number);
      const mine = events.slice(v, v + evs.length);
      if (unsure && e instanceof WrongExpectedVersion && mine.length === evs.length && mine.every((x, i) => x.at === evs[i].at && x.type === evs[i].type)) return mine;
      throw e;
    }
  };
  return { events, calls, tryOnce, append, lostAnswers, refused, maxInFlight: () => maxInFlight };
}

const running: RunState = { runId: 'r', phase: 'running', version: 3, claimant: 'w', failure: null };
const decisions = (n: number) => Array.from({ length: n }, (_, i) => decision('r', i + 1));
const byTen = (b: NewEvent[]) => Array.from({ length: Math.ceil(b.length / 10) }, (_, i) => b.slice(i * 10, i * 10 + 10));

describe('RunWriter', () => {
  describe('with appends pipelined (a Kafka worker)', () => {
    it('keeps up to `depth` appends of one batch in flight, each expecting the versions of those before it', async () => {
      const log = fakeLog();
      // the stream already holds the run's first 3 events
      log.events.push(...Array.from({ length: 3 }, (_, i) => ({ position: i + 1, streamVersion: i + 1 }) as StoredEvent));
      const w = new RunWriter(log.append, running, { split: byTen, pipeline: { depth: 4, tryOnce: log.tryOnce } });
      w.submit({ type: 'RecordDecisions', events: decisions(95) });
      await w.drain();
      assert.equal(w.failed, undefined);
      assert.equal(log.maxInFlight(), 4);
      assert.deepEqual(log.calls.map((c) => [c.kind, c.expected]), [3, 13, 23, 33, 43, 53, 63, 73, 83, 93].map((v) => ['try', v]));
      assert.equal(w.version, 98);
      assert.equal(w.count, 95);
      assert.deepEqual(log.events.slice(3).map((e) => (e.payload as { seq: number }).seq), Array.from({ length: 95 }, (_, i) => i + 1));
    });

    it('after a failed attempt appends it and those after it again, one at a time, and counts each event once', async () => {
      const log = fakeLog();
      log.events.push(...Array.from({ length: 3 }, (_, i) => ({ position: i + 1, streamVersion: i + 1 }) as StoredEvent));
      // the second attempt lands but its answer is lost; the third lands after it (in order); the
      // fourth is never taken by the broker
      log.lostAnswers.add(2);
      log.refused.add(4);
      const w = new RunWriter(log.append, running, { split: byTen, pipeline: { depth: 4, tryOnce: log.tryOnce } });
      w.submit({ type: 'RecordDecisions', events: decisions(60) });
      await w.drain();
      assert.equal(w.failed, undefined);
      assert.deepEqual(
        log.calls.map((c) => [c.kind, c.expected, c.unsure ?? false]),
        [['try', 3, false], ['try', 13, false], ['try', 23, false], ['try', 33, false],
          // the first answer makes room for the fifth attempt (refused: the fourth was not taken)
          ['try', 43, false],
          // from the first failure on, in order, one at a time: each one attempted told it may be
          // in the log already, the one never attempted not
          ['append', 13, true], ['append', 23, true], ['append', 33, true], ['append', 43, true], ['append', 53, false]],
      );
      assert.equal(w.version, 63);
      assert.equal(w.count, 60);
      assert.deepEqual(log.events.slice(3).map((e) => (e.payload as { seq: number }).seq), Array.from({ length: 60 }, (_, i) => i + 1), 'each decision once, in order');
    });

    it('stops at a real conflict (another writer): nothing after it is appended', async () => {
      const log = fakeLog();
      log.events.push(...Array.from({ length: 4 }, (_, i) => ({ position: i + 1, streamVersion: i + 1 }) as StoredEvent)); // one more than the writer knows
      const w = new RunWriter(log.append, running, { split: byTen, pipeline: { depth: 3, tryOnce: log.tryOnce } });
      w.submit({ type: 'RecordDecisions', events: decisions(50) });
      await w.drain();
      assert.ok(w.failed instanceof WrongExpectedVersion);
      assert.equal(log.events.length, 4);
      assert.equal(w.count, 0);
      assert.deepEqual(log.calls.map((c) => c.kind), ['try', 'try', 'try', 'append']);
    });

    it('is refused together with onFailed (a pipelined writer stops at its first failure)', () => {
      const log = fakeLog();
      assert.throws(() => new RunWriter(log.append, running, { pipeline: { depth: 2, tryOnce: log.tryOnce }, onFailed: () => 'continue' }), /no onFailed/);
    });
  });
});
