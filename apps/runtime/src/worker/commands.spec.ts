import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BadCommand, decodeCommand, encodeCommand, type BusCommand } from './commands';

const run = (extra: Record<string, unknown> = {}) => ({
  v: 1,
  kind: 'RunRequested',
  at: '2026-12-07T00:00:00.000Z',
  run: { runId: 'r1', image: 'ep:1', command: [], env: [], mounts: [], learn: false, policy: { name: 'p', version: 1, hash: 'sha256:x' }, ...extra },
});
const decode = (c: unknown) => decodeCommand(Buffer.from(JSON.stringify(c)));

describe('the command envelope on the bus', () => {
  it('carries a run with its args (the command after the entrypoint), and one from before args existed', () => {
    const withArgs = decode(run({ args: ['a', 'b'] })) as Extract<BusCommand, { kind: 'RunRequested' }>;
    assert.deepEqual(withArgs.run.args, ['a', 'b']);
    assert.deepEqual(decodeCommand(encodeCommand(withArgs)), withArgs);
    assert.equal((decode(run({ command: ['/bin/echo', 'x'] })) as Extract<BusCommand, { kind: 'RunRequested' }>).run.args, undefined);
  });

  it('refuses args that are not a list of strings, as a poison message', () => {
    for (const args of ['a b', [1], null]) assert.throws(() => decode(run({ args })), (e: unknown) => e instanceof BadCommand && e.message === 'RunRequested: bad args');
  });
});
