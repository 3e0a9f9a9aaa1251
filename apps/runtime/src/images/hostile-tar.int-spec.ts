import { spawnSync } from 'node:child_process';
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, StoreLimits } from './image-store';
import { ImageStoreError } from './image.errors';
import { dockerArchiveOf, sha256hex, tarOf, TarEntrySpec, treeListing } from './testing/archives';

/** The lock file and the staging dir (its mtime changes; its emptiness is checked apart). */
const storeSkip = (r: string) => r === 'lock' || r === 'tmp';

/** Every name anywhere under `dir` containing "evil". */
function evilNames(dir: string): string[] {
  return treeListing(dir).filter((l) => l.split(' ')[3].split('/').some((c) => c.includes('evil'))).map((l) => l.split(' ')[3]);
}

describe('ImageStore (hostile layers)', () => {
  let base: string;
  let outside: string;
  let storeDir: string;
  let store: ImageStore;
  const passwdHash = sha256hex(readFileSync('/etc/passwd'));

  const open = (limits?: Partial<StoreLimits>) => new ImageStore(storeDir, { limits });

  beforeEach(async () => {
    base = mkdtempSync(join(tmpdir(), 'capulator-hostile-'));
    outside = join(base, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'target-file'), 'original\n');
    storeDir = join(base, 'store');
    store = open();
    // the store is not empty: one benign image is already there
    const benign = await tarOf([{ name: 'etc/', type: 'directory' }, { name: 'etc/hostname', data: 'benign\n' }]);
    writeFileSync(join(base, 'benign.tar'), await dockerArchiveOf([benign], { tag: 'benign:1' }));
    await store.importArchive(join(base, 'benign.tar'));
  });

  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  async function archive(layers: TarEntrySpec[][]): Promise<string> {
    const bufs: Buffer[] = [];
    for (const l of layers) bufs.push(await tarOf(l));
    const p = join(base, `crafted-${bufs.length}-${sha256hex(Buffer.concat(bufs)).slice(0, 8)}.tar`);
    writeFileSync(p, await dockerArchiveOf(bufs, { tag: 'evil:latest' }));
    return p;
  }

  /** Imports `layers`, expects refusal by `rule`, and checks nothing changed anywhere. */
  async function expectRefused(layers: TarEntrySpec[][], rule: string, code = 'UNSAFE_LAYER', s = store): Promise<ImageStoreError> {
    const file = await archive(layers);
    const storeBefore = treeListing(storeDir, { mtimes: true, skip: storeSkip });
    const outsideBefore = treeListing(outside, { mtimes: true });
    let caught: ImageStoreError | undefined;
    await assert.rejects(s.importArchive(file), (err: unknown) => {
      assert.ok(err instanceof ImageStoreError, String(err));
      caught = err;
      return true;
    });
    assert.equal(caught!.code, code, caught!.message);
    assert.match(caught!.message, new RegExp(`rule ${rule}\\b`));
    assert.match(caught!.message, /layer \d+\/\d+/, 'the error names the layer');
    assert.deepEqual(treeListing(storeDir, { mtimes: true, skip: storeSkip }), storeBefore, 'the store is unchanged');
    assert.deepEqual(readdirSync(join(storeDir, 'tmp')), [], 'no staging left behind');
    assert.deepEqual(treeListing(outside, { mtimes: true }), outsideBefore, 'nothing was written outside');
    assert.deepEqual(evilNames(base), [], 'no evil file anywhere');
    assert.equal(sha256hex(readFileSync('/etc/passwd')), passwdHash);
    assert.deepEqual(s.list().map((i) => i.refs), [['benign:1']]);
    return caught!;
  }

  describe('when a name climbs out with ..', () => {
    it('refuses the layer', async () => {
      await expectRefused([[{ name: `../../../../../../../../../../..${outside}/evil-dotdot`, data: 'x' }]], 'dot-dot');
    });
  });

  describe('when a name is absolute', () => {
    it('refuses the layer', async () => {
      await expectRefused([[{ name: `${outside}/evil-abs`, data: 'x' }]], 'absolute-path');
    });
  });

  describe('when a symlink points out and a file is written through it', () => {
    it('refuses the layer, even after a good first layer', async () => {
      const good = [{ name: 'good/', type: 'directory' as const }, { name: 'good/file', data: 'fine' }];
      const err = await expectRefused([good, [{ name: 'esc', type: 'symlink', linkname: outside }, { name: 'esc/evil-through-symlink', data: 'x' }]], 'symlink-in-path');
      assert.match(err.message, /layer 2\/2/);
      assert.match(err.message, /esc\/evil-through-symlink/);
    });
  });

  describe('when a hard link targets /etc/passwd outside', () => {
    it('refuses an absolute target', async () => {
      await expectRefused([[{ name: 'evil-pw', type: 'link', linkname: '/etc/passwd' }]], 'hardlink-outside');
    });
    it('refuses a .. target', async () => {
      await expectRefused([[{ name: 'evil-pw', type: 'link', linkname: '../../../../../../../../etc/passwd' }]], 'hardlink-outside');
    });
  });

  describe('when a hard link goes through a symlink', () => {
    it('refuses the layer', async () => {
      await expectRefused([[{ name: 'etcdir', type: 'symlink', linkname: '/etc' }, { name: 'evil-pw', type: 'link', linkname: 'etcdir/passwd' }]], 'hardlink-through-symlink');
    });
  });

  describe('when a hard link targets a symlink that points out', () => {
    it('refuses the layer', async () => {
      await expectRefused([[{ name: 'sl', type: 'symlink', linkname: join(outside, 'target-file') }, { name: 'evil-hl', type: 'link', linkname: 'sl' }]], 'hardlink-to-symlink');
    });
  });

  describe('when a directory is replaced by a symlink mid-archive and then written through', () => {
    it('refuses the layer', async () => {
      await expectRefused([[
        { name: 'y/', type: 'directory' },
        { name: 'y', type: 'symlink', linkname: outside },
        { name: 'y/evil-after-swap', data: 'x' },
      ]], 'symlink-in-path');
    });
  });

  describe('when a symlink is replaced by a directory mid-archive and then written into', () => {
    it('writes inside the layer only', async () => {
      const file = await archive([[
        { name: 'x', type: 'symlink', linkname: outside },
        { name: 'x/', type: 'directory' },
        { name: 'x/inside-after-replace', data: 'x' },
      ]]);
      const outsideBefore = treeListing(outside, { mtimes: true });
      const [img] = await store.importArchive(file);
      assert.deepEqual(treeListing(outside, { mtimes: true }), outsideBefore);
      const x = join(img.layers[0], 'x');
      assert.ok(lstatSync(x).isDirectory());
      assert.equal(readFileSync(join(x, 'inside-after-replace'), 'utf8'), 'x');
    });
  });

  describe('when a layer has too many entries', () => {
    it('refuses it with a limit error', async () => {
      const entries = Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
      await expectRefused([entries], 'too-many-entries', 'LIMIT_EXCEEDED', open({ maxEntries: 5 }));
    });
  });

  describe('when a layer is too large', () => {
    it('refuses it with a limit error', async () => {
      await expectRefused([[{ name: 'big', data: Buffer.alloc(100_000, 1) }]], 'too-large', 'LIMIT_EXCEEDED', open({ maxBytes: 64 * 1024 }));
    });
    it('counts all layers of the import against the total', async () => {
      const layer = (n: string) => [{ name: n, data: Buffer.alloc(40_000, 2) }];
      await expectRefused([layer('a'), layer('b'), layer('c')], 'too-large', 'LIMIT_EXCEEDED', open({ maxBytes: 64 * 1024, maxTotalBytes: 100 * 1024 }));
    });
  });

  describe('when a name is too long', () => {
    it('refuses the layer', async () => {
      await expectRefused([[{ name: 'd/' + 'a'.repeat(300), data: 'x' }]], 'path-too-long');
    });
  });

  describe('when the layer is not a tar', () => {
    it('refuses it', async () => {
      const junk = Buffer.alloc(4096, 0x41);
      const p = join(base, 'junk.tar');
      writeFileSync(p, await dockerArchiveOf([junk]));
      const before = treeListing(storeDir, { skip: (r) => r === 'lock' });
      await assert.rejects(store.importArchive(p), /rule bad-tar/);
      assert.deepEqual(treeListing(storeDir, { skip: (r) => r === 'lock' }), before);
    });
  });

  describe('when a layer holds a sparse file (GNU tar --sparse, in each of its formats)', () => {
    for (const [format, args] of [
      ['GNU type S', ['--format=gnu']],
      ['PAX 0.1', ['--format=posix', '--sparse-version=0.1']],
      ['PAX 1.0', ['--format=posix', '--sparse-version=1.0']],
    ] as const) {
      it(`refuses the layer by rule unsupported-entry (${format})`, async () => {
        const dir = join(base, `sparse-${format.replace(/\W/g, '')}`);
        mkdirSync(dir);
        // a 1 MiB file with one byte of data in the middle: GNU tar stores it sparse
        writeFileSync(join(dir, 'holes'), '');
        assert.equal(spawnSync('truncate', ['-s', '512K', join(dir, 'holes')]).status, 0);
        writeFileSync(join(dir, 'holes'), 'x', { flag: 'a' });
        assert.equal(spawnSync('truncate', ['-s', '1M', join(dir, 'holes')]).status, 0);
        const t = spawnSync('tar', ['-C', dir, '--sparse', ...args, '-cf', '-', 'holes'], { maxBuffer: 1 << 24 });
        assert.equal(t.status, 0, String(t.stderr));
        const file = join(base, `sparse-${format.replace(/\W/g, '')}.tar`);
        writeFileSync(file, await dockerArchiveOf([t.stdout]));
        const before = treeListing(storeDir, { skip: storeSkip });
        await assert.rejects(store.importArchive(file), (e: unknown) => {
          assert.ok(e instanceof ImageStoreError, String(e));
          assert.equal(e.code, 'UNSAFE_LAYER');
          assert.match(e.message, /rule unsupported-entry: .*sparse/);
          return true;
        });
        assert.deepEqual(treeListing(storeDir, { skip: storeSkip }), before, 'the store is unchanged');
      });
    }
  });

  describe('when a layer holds device nodes', () => {
    it('skips them with a warning, except a 0/0 character device, which is a whiteout', async () => {
      const file = await archive([[
        { name: 'dev/', type: 'directory' },
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 },
        { name: 'dev/gone', type: 'character-device', devmajor: 0, devminor: 0 },
      ]]);
      const warnings: string[] = [];
      const [img] = await store.importArchive(file, { onWarning: (w) => warnings.push(w) });
      const dev = join(img.layers[0], 'dev');
      assert.equal(existsSync(join(dev, 'null')), false);
      assert.equal(existsSync(join(dev, 'sda')), false);
      const wh = lstatSync(join(dev, 'gone'));
      assert.ok(wh.isCharacterDevice());
      assert.equal(wh.rdev, 0);
      assert.equal(warnings.length, 2);
      assert.match(warnings.join('\n'), /dev\/null.*character device 1:3 skipped/);
      assert.match(warnings.join('\n'), /dev\/sda.*block device 8:0 skipped/);
    });
  });

  describe('when files carry set-id bits', () => {
    it('keeps them with their owners', async () => {
      const file = await archive([[
        { name: 'bin/', type: 'directory' },
        { name: 'bin/suid', data: 'x', mode: 0o4755, uid: 0, gid: 0 },
        { name: 'bin/sgid', data: 'x', mode: 0o2755, uid: 0, gid: 50 },
        { name: 'tmp/', type: 'directory', mode: 0o1777 },
      ]]);
      const [img] = await store.importArchive(file);
      const suid = lstatSync(join(img.layers[0], 'bin/suid'));
      assert.equal(suid.mode & 0o7777, 0o4755);
      assert.equal(suid.uid, 0);
      const sgid = lstatSync(join(img.layers[0], 'bin/sgid'));
      assert.equal(sgid.mode & 0o7777, 0o2755);
      assert.equal(sgid.gid, 50);
      assert.equal(lstatSync(join(img.layers[0], 'tmp')).mode & 0o7777, 0o1777);
    });
  });
});
