import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventFixtures } from '@capulator/events';
import { chunks } from './runtime-worker';

describe('chunks', () => {
  describe('when a batch is larger than one Kafka message may be', () => {
    it('splits it in order into appends under the limit, losing nothing', () => {
      const batch = Array.from({ length: 3000 }, (_, i) => eventFixtures.decision('r', i + 1));
      const size = (es: unknown[]) => es.reduce<number>((n, e) => n + JSON.stringify(e).length + 1, 0);
      const parts = chunks(batch, 64 * 1024);
      assert.ok(parts.length > 1);
      for (const p of parts) assert.ok(size(p) <= 64 * 1024);
      assert.deepEqual(parts.flat(), batch);
    });
  });

  describe('when one event alone is over the limit', () => {
    it('still appends it (alone)', () => {
      const e = eventFixtures.decision('r', 1);
      assert.deepEqual(chunks([e, e], 10), [[e], [e]]);
      assert.deepEqual(chunks([]), []);
    });
  });
});
