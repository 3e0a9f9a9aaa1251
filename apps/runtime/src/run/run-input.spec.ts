import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RunInputClosed, RunInputHub, RUN_INPUT_BUFFER_BYTES } from './run-input';

const read = (hub: RunInputHub, id: string): Promise<string> =>
  new Promise((resolve, reject) => {
    let s = '';
    hub.readable(id).setEncoding('latin1').on('data', (c: string) => (s += c)).on('end', () => resolve(s)).on('error', reject);
  });

describe('RunInputHub', () => {
  it('passes what is written, in order, to the reader that comes later, and end() gives it end of file', async () => {
    const hub = new RunInputHub();
    await hub.write('r1', Buffer.from('one\n'));
    await hub.write('r1', Buffer.from('two\n'));
    hub.end('r1');
    assert.equal(await read(hub, 'r1'), 'one\ntwo\n');
    await assert.rejects(hub.write('r1', Buffer.from('late')), /stdin was closed/);
  });

  it('holds a write past the buffer until the reader takes it, and refuses a second one meanwhile', async () => {
    const hub = new RunInputHub();
    const big = Buffer.alloc(RUN_INPUT_BUFFER_BYTES * 3, 'x');
    let done = false;
    const w = hub.write('r2', big).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false, 'taken before anyone read');
    await assert.rejects(hub.write('r2', Buffer.from('y')), /another stdin request/);
    const got = read(hub, 'r2');
    await w;
    hub.end('r2');
    assert.equal((await got).length, big.length);
  });

  it('rejects a write nobody will read once the run is released, and every later one', async () => {
    const hub = new RunInputHub();
    const w = hub.write('r3', Buffer.alloc(RUN_INPUT_BUFFER_BYTES * 2));
    hub.release('r3');
    await assert.rejects(w, RunInputClosed);
    await assert.rejects(hub.write('r3', Buffer.from('x')), /has ended/);
    assert.throws(() => hub.end('r3'), /has ended/);
  });
});
