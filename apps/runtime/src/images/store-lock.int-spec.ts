import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { StoreLock } from './store-lock';
import { ImageStoreError } from './image.errors';

describe('StoreLock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('when the lock is free', () => {
    it('holds it (with our pid) during the section and releases it after, also on throw', () => {
      const lock = new StoreLock(join(dir, 'lock'));
      const seen = lock.withLock(() => readFileSync(join(dir, 'lock'), 'utf8'));
      assert.equal(seen, `${process.pid}\n`);
      assert.equal(existsSync(join(dir, 'lock')), false);
      assert.throws(() => lock.withLock(() => { throw new Error('boom'); }), /boom/);
      assert.equal(existsSync(join(dir, 'lock')), false);
    });
  });

  describe('when a live process holds it', () => {
    it('waits, then fails with LOCK_TIMEOUT naming the owner', () => {
      writeFileSync(join(dir, 'lock'), '1\n'); // init is always alive
      const t0 = Date.now();
      assert.throws(() => new StoreLock(join(dir, 'lock'), 150).withLock(() => 0), (e: unknown) => e instanceof ImageStoreError && e.code === 'LOCK_TIMEOUT' && /process 1\b/.test(e.message));
      assert.ok(Date.now() - t0 >= 150);
      assert.equal(readFileSync(join(dir, 'lock'), 'utf8'), '1\n', 'a live owner\'s lock is left alone');
    });
  });

  describe('when the owner died', () => {
    it('takes the stale lock over', () => {
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
      writeFileSync(join(dir, 'lock'), `${dead}\n`);
      assert.equal(new StoreLock(join(dir, 'lock'), 150).withLock(() => 42), 42);
    });
  });
});
