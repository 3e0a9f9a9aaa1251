import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runArgv } from './run-argv';

describe("a run's argv, as docker run makes it", () => {
  const image = { Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'] };

  it('the image: its Entrypoint, then its Cmd; arguments replace the Cmd, after the Entrypoint', () => {
    assert.deepEqual(runArgv(image, {}), ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual(runArgv(image, { args: [] }), ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    assert.deepEqual(runArgv(image, { args: ['nginx', '-T'] }), ['/docker-entrypoint.sh', 'nginx', '-T']);
  });

  it('--entrypoint: replaces the Entrypoint and drops the Cmd; empty, only the arguments run', () => {
    assert.deepEqual(runArgv(image, { entrypoint: ['/bin/sh'] }), ['/bin/sh']);
    assert.deepEqual(runArgv(image, { entrypoint: ['/bin/sh'], args: ['-c', 'id'] }), ['/bin/sh', '-c', 'id']);
    assert.deepEqual(runArgv(image, { entrypoint: [], args: ['/bin/true'] }), ['/bin/true']);
    assert.deepEqual(runArgv(image, { entrypoint: [] }), []);
  });

  it('an image without an Entrypoint (or with null ones, as docker writes them): the Cmd, or the arguments', () => {
    assert.deepEqual(runArgv({ Cmd: ['/bin/sh'] }, {}), ['/bin/sh']);
    assert.deepEqual(runArgv({ Entrypoint: null, Cmd: ['/bin/sh'] }, { args: ['ls', '/'] }), ['ls', '/']);
    assert.deepEqual(runArgv({ Entrypoint: null, Cmd: null }, {}), []);
  });
});
