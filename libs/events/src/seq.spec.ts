import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lostEventsFor, missingSeqs, SeqTracker } from './seq';

describe('missingSeqs', () => {
  describe('when numbers are missing', () => {
    it('returns the missing ranges, including the tail up to the expected last', () => {
      assert.deepEqual(missingSeqs([1, 2, 5, 6, 9], 11), [[3, 4], [7, 8], [10, 11]]);
      assert.deepEqual(missingSeqs([3, 1, 1, 2]), []);
      assert.deepEqual(missingSeqs([], 2), [[1, 2]]);
    });
  });
});

describe('SeqTracker', () => {
  describe('when seqs arrive in order', () => {
    it('reports no loss', () => {
      const t = new SeqTracker();
      for (let i = 1; i <= 100; i++) assert.equal(t.observe(i), 'ok');
      assert.deepEqual(t.missing(100), []);
      assert.deepEqual(lostEventsFor(t, 100), { lostEvents: 0 });
    });
  });
  describe('when seqs skip, arrive late, repeat or stop early', () => {
    it('tracks gaps, fills them, counts duplicates and the lost tail', () => {
      const t = new SeqTracker();
      assert.equal(t.observe(1), 'ok');
      assert.equal(t.observe(5), 'gap');
      assert.equal(t.observe(3), 'late');
      assert.equal(t.observe(3), 'duplicate');
      assert.equal(t.observe(6), 'ok');
      assert.deepEqual(t.missing(8), [[2, 2], [4, 4], [7, 8]]);
      const r = lostEventsFor(t, 8, 'agent ring buffer full');
      assert.equal(r.lostEvents, 4);
      assert.equal(r.lostReason, 'missing decision seq 2,4,7-8; agent ring buffer full');
      assert.equal(t.duplicates, 1);
    });
  });
});
