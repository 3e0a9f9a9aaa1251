import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventFixtures, recordBytes, TextEvent } from '@capulator/events';
import { chunks } from './runtime-worker';

describe('chunks', () => {
  describe('when a batch is larger than one Kafka message may be', () => {
    it('splits it in order into appends under the limit, losing nothing', () => {
      const batch = Array.from({ length: 3000 }, (_, i) => eventFixtures.decision('r', i + 1));
      const size = (es: Array<{ payload: unknown }>) => es.reduce<number>((n, e) => n + JSON.stringify(e.payload).length, 0);
      const parts = chunks(batch, 64 * 1024);
      assert.ok(parts.length > 1);
      for (const p of parts) assert.ok(size(p) <= 64 * 1024);
      assert.deepEqual(parts.flat(), batch);
    });
  });

  describe('when the events are the agent\'s text (TextEvent)', () => {
    it('measures the text as it is, without parsing it', () => {
      const e = eventFixtures.decision('r', 1);
      const t = new TextEvent(e.type, e.at, JSON.stringify(e.payload));
      assert.equal(recordBytes(t), recordBytes(e));
      // a text that is not even JSON is measured, not parsed (the store checks it when appending)
      const odd = new TextEvent('PrivilegeChecked', e.at, '{' + 'x'.repeat(1000));
      assert.deepEqual(chunks([odd, odd, odd], 2100), [[odd, odd], [odd]]);
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
