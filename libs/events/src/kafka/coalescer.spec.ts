import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Coalescer } from './coalescer';

describe('Coalescer', () => {
  it('sends one batch at a time; what is pushed meanwhile goes together in the next, in order', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const c = new Coalescer<number>(async (b) => {
      batches.push(b);
      await new Promise<void>((r) => (release = r));
    });
    c.push(1);
    c.push(2);
    c.push(3);
    assert.deepEqual(batches, [[1]]);
    assert.equal(c.busy, true);
    release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [[1], [2, 3]]);
    release();
    await new Promise((r) => setImmediate(r));
    assert.equal(c.busy, false);
  });

  it('takes back an item that still waits, not one being sent; a failed send does not stop the next', async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const c = new Coalescer<string>(async (b) => {
      batches.push(b);
      await new Promise<void>((r) => (release = r));
      throw new Error('broker gone');
    });
    c.push('a');
    c.push('b');
    c.push('c');
    assert.equal(c.remove('a'), false);
    assert.equal(c.remove('b'), true);
    release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(batches, [['a'], ['c']]);
    release();
    await new Promise((r) => setImmediate(r));
    assert.equal(c.busy, false);
  });
});
