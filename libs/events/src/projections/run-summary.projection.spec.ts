import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { evolveRunSummary, type RunSummary } from './run-summary.projection';
import type { NewEvent, StoredEvent } from '../contracts';
import { decision, runExited, runRequested, runStarted } from '../testing/fixtures';

const stored = (e: NewEvent, position: number): StoredEvent => ({ ...e, position, streamId: 'run-x', streamVersion: position, schemaVersion: 1, prevHash: '', hash: '' });

describe('evolveRunSummary', () => {
  describe('when a run goes queued → running → exited', () => {
    it('folds status, timings and counts', () => {
      const evs = [runRequested('x'), runStarted('x', ['CAP_NET_RAW']), decision('x', 1), decision('x', 2, { decision: 'deny' }), decision('x', 3, { decision: 'emulate' }), runExited('x', { exitCode: 3, signal: null })];
      let s: RunSummary | undefined = undefined;
      const statuses: string[] = [];
      evs.forEach((e, i) => {
        s = evolveRunSummary(s, stored(e, i + 1));
        statuses.push(s!.status);
      });
      assert.deepEqual(statuses, ['queued', 'running', 'running', 'running', 'running', 'exited']);
      assert.deepEqual(s!.counts, { allow: 1, deny: 1, emulate: 1 });
      assert.equal(s!.exitCode, 3);
      assert.deepEqual(s!.permitted, ['CAP_NET_RAW']);
    });
  });
  describe('when decisions are recovered after the run was recorded failed elsewhere', () => {
    it('counts them, keeps the failure, and takes RunRecordCompleted\'s loss over the end\'s', () => {
      const failed: NewEvent = { type: 'RunFailed', at: '', payload: { runId: 'x', stage: 'runtime', reason: 'worker lost: w1', lostEvents: 2, lostReason: 'not seen' } };
      const done: NewEvent = { type: 'RunRecordCompleted', at: '', payload: { runId: 'x', recovered: 2, lostEvents: 0 } };
      const evs = [runRequested('x'), runStarted('x', []), decision('x', 1), failed, decision('x', 2), decision('x', 3, { decision: 'deny' }), done];
      let s: RunSummary | undefined = undefined;
      evs.forEach((e, i) => (s = evolveRunSummary(s, stored(e, i + 1))));
      assert.equal(s!.status, 'failed');
      assert.equal(s!.failReason, 'worker lost: w1');
      assert.deepEqual(s!.counts, { allow: 2, deny: 1, emulate: 0 });
      assert.equal(s!.lostEvents, 0);
      assert.equal(s!.lostReason, null);
    });
  });
  describe('when an event is applied twice', () => {
    it('ignores it the second time (idempotent by position)', () => {
      const s1 = evolveRunSummary(undefined, stored(decision('x', 1), 5))!;
      const s2 = evolveRunSummary(s1, stored(decision('x', 1), 5));
      assert.equal(s2, s1);
      assert.equal(s2!.counts.allow, 1);
    });
  });
  describe('when the event belongs to no run', () => {
    it('leaves the state alone', () => {
      const e: StoredEvent = { position: 1, streamId: 'policy-p', streamVersion: 1, type: 'PolicyPublished', schemaVersion: 1, at: '', payload: { name: 'p', version: 1, hash: '', yaml: '' }, prevHash: '', hash: '' };
      assert.equal(evolveRunSummary(undefined, e), undefined);
    });
  });
});
