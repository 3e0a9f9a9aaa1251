import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OffsetTracker } from './offset-tracker';

describe('OffsetTracker', () => {
  describe('when commands finish out of order', () => {
    it('commits only up to the first unfinished offset', () => {
      const t = new OffsetTracker();
      for (const o of [10n, 11n, 12n]) t.add(o);
      t.done(11n);
      assert.equal(t.commitPoint(), null);
      t.done(10n);
      assert.equal(t.commitPoint(), 12n);
      assert.equal(t.commitPoint(), null);
      t.done(12n);
      assert.equal(t.commitPoint(), 13n);
      assert.equal(t.pending, 0);
    });
  });

  describe('when an offset is delivered twice', () => {
    it('tracks it once', () => {
      const t = new OffsetTracker();
      t.add(5n);
      t.add(5n);
      t.add(4n);
      assert.equal(t.pending, 1);
      t.done(5n);
      assert.equal(t.commitPoint(), 6n);
    });
  });
});
