import { describe, it, before, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fixtureImages, FixtureImages } from '../../../../test/fixtures/images';
import { dockerArchiveOf, tarOf } from '../../../runtime/src/images/testing/archives';

const main = join(__dirname, '..', 'main.js');

describe('capulator image', () => {
  let fx: FixtureImages;
  let home: string;
  const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
  const cliAsync = (...args: string[]) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [main, ...args], { env: { ...process.env, CAPULATOR_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stderr }));
  });

  before(() => {
    fx = fixtureImages();
  });
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'capulator-image-cli-'));
  });
  afterEach(() => {
    rmSync(home, { recursive: true, force: true });
  });

  describe('when importing, listing, removing and pruning', () => {
    it('works end to end and records ImageImported', async () => {
      let r = cli('image', 'import', fx.busyboxPing.dockerArchive);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^imported capulator-test/busybox-ping:latest ${fx.busyboxPing.digest} \\(linux/amd64, 1 layer, `));
      r = cli('image', 'import', fx.whiteout.ociTar, '--tag', 'wo:1', '--json');
      assert.equal(r.status, 0, r.stderr);
      const [wo] = JSON.parse(r.stdout);
      assert.deepEqual(wo.refs, ['wo:1']);
      r = cli('image', 'ls', '--json');
      assert.deepEqual(JSON.parse(r.stdout).map((i: { digest: string }) => i.digest).sort(), [fx.busyboxPing.digest, fx.whiteout.digest].sort());
      r = cli('image', 'ls');
      assert.match(r.stdout, /^IMAGE\s+ID\s+PLATFORM\s+LAYERS\s+SIZE\s+IMPORTED\n/);
      assert.match(r.stdout, new RegExp(`wo:1\\s+${fx.whiteout.digest.slice(7, 19)}\\s+linux/amd64\\s+2 `));
      r = cli('image', 'inspect', fx.whiteout.digest.slice(7, 20));
      assert.equal(JSON.parse(r.stdout).layers.length, 2);
      r = cli('image', 'rm', 'wo:1');
      assert.equal(r.stdout, `untagged: wo:1\ndeleted: ${fx.whiteout.digest}\n`);
      r = cli('image', 'prune', '--json');
      assert.deepEqual(JSON.parse(r.stdout).layers, [fx.whiteout.diffIds[1]]);
      // the events
      const { SqliteEventStore } = await import('@capulator/events');
      const store = SqliteEventStore.open(join(home, 'events.db'));
      const types: string[] = [];
      for await (const e of store.readAll()) types.push(`${e.type} ${e.streamId}`);
      await store.close();
      assert.deepEqual(types, [`ImageImported image-${fx.busyboxPing.digest}`, `ImageImported image-${fx.whiteout.digest}`]);
    });
  });

  describe('when a running container uses an image that is removed', () => {
    it('prune keeps its layers (said) until the container is gone, as docker does', () => {
      const bin = join(process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..'), 'bin/capulator');
      const capulator = (...args: string[]) => spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home }, timeout: 60_000 });
      let r = cli('image', 'import', fx.whiteout.ociTar, '--tag', 'wo:1');
      assert.equal(r.status, 0, r.stderr);
      const id = `inuse${process.pid}`;
      r = capulator('run', '-d', '--name', id, 'wo:1', '--', '/bin/sleep', '60');
      assert.equal(r.status, 0, r.stderr);
      try {
        const before = capulator('exec', id, '--', '/bin/ls', '/etc');
        assert.equal(before.status, 0, before.stderr);
        assert.notEqual(before.stdout, '');
        assert.equal(cli('image', 'rm', 'wo:1').status, 0);
        r = cli('image', 'prune', '--json');
        const pruned = JSON.parse(r.stdout) as { layers: string[]; inUse: string[] };
        assert.deepEqual([pruned.layers, pruned.inUse], [[], [...fx.whiteout.diffIds].sort()]);
        assert.match(cli('image', 'prune').stdout, /^kept layer sha256:[0-9a-f]{64} \(a running container uses it\)$/m);
        const after = capulator('exec', id, '--', '/bin/ls', '/etc');
        assert.deepEqual([after.status, after.stdout], [0, before.stdout], 'the container still sees its files');
      } finally {
        capulator('rm', '-f', id);
      }
      r = cli('image', 'prune', '--json');
      assert.deepEqual((JSON.parse(r.stdout) as { layers: string[] }).layers, [...fx.whiteout.diffIds].sort());
    });
  });

  describe('when the input is bad', () => {
    it('prints one line and exits 2', async () => {
      const evil = join(home, 'evil.tar');
      writeFileSync(evil, await dockerArchiveOf([await tarOf([{ name: '../../escape', data: 'x' }])]));
      for (const args of [['image', 'import', evil], ['image', 'import', '/nonexistent'], ['image', 'rm', 'nothing:here'], ['image', 'inspect', 'NOT A REF']]) {
        const r = cli(...args);
        assert.equal(r.status, 2, args.join(' '));
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, /^capulator: /);
      }
      assert.match(cli('image', 'import', evil).stderr, /layer 1\/1 .*entry "\.\.\/\.\.\/escape": rule dot-dot/);
      assert.deepEqual(readdirSync(join(home, 'images', 'layers', 'sha256')), []);
    });
  });

  describe('when two processes import at once', () => {
    it('both succeed', async () => {
      const [a, b] = await Promise.all([cliAsync('image', 'import', fx.whiteout.dockerArchive), cliAsync('image', 'import', fx.busyboxPing.ociTar)]);
      assert.equal(a.status, 0, a.stderr);
      assert.equal(b.status, 0, b.stderr);
      const r = cli('image', 'ls', '--json');
      assert.equal(JSON.parse(r.stdout).length, 2);
    });
  });
});
