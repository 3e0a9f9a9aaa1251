import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';
import { newHome, removeHomes } from './cluster';

/** `capulator serve --bus`: bad input is one line on stderr and exit 2, before anything connects. */
describe('capulator serve --bus', () => {
  const serve = (args: string[]) => {
    const home = newHome('serve-bus');
    try {
      return spawnSync(process.execPath, [join(repoRoot(__dirname), 'bin', 'capulator'), 'serve', '--http', '127.0.0.1:0', '--grpc', 'off', ...args], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home },
        timeout: 30_000,
      });
    } finally {
      removeHomes([home]);
    }
  };

  describe('when the bus address is not a Kafka URL', () => {
    it('exits 2 with one line naming the flag', () => {
      for (const bus of ['http://127.0.0.1:9092', 'kafka://', 'kafka://host-without-port']) {
        const r = serve(['--bus', bus, '--role', 'gateway']);
        assert.equal(r.status, 2, `${bus}: ${r.stderr}`);
        assert.match(r.stderr, /^capulator: --bus: /);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      }
    });
  });

  describe('when the role is unknown', () => {
    it('exits 2 and names the roles', () => {
      const r = serve(['--bus', 'kafka://127.0.0.1:9', '--role', 'worker']);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^capulator: --role must be gateway, runtime or all\n$/);
    });
  });
});
