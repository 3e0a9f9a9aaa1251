import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fixtureImages, FixtureImages } from '../../../../test/fixtures/images';
import { ImageStore } from './image-store';
import { ImageNotFound, ImageStoreError } from './image.errors';
import { dockerArchiveOf, sha256hex, tarOf, treeListing, writeOciLayout } from './testing/archives';

const isRoot = process.getuid?.() === 0;
const hasZstd = spawnSync('zstd', ['--version']).status === 0;

function xattr(path: string, name: string): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())\nexcept OSError: print("<none>")', path, name], { encoding: 'utf8' });
  const v = r.stdout.trim();
  return v === '<none>' ? null : v;
}

describe('ImageStore', () => {
  let fx: FixtureImages;
  let base: string;

  before(() => {
    fx = fixtureImages();
  });
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'capulator-images-'));
  });
  afterEach(() => {
    rmSync(base, { recursive: true, force: true });
  });

  describe('when the same image is imported as docker-archive, OCI dir and OCI tar', () => {
    it('gives the same image digest and identical unpacked trees', async () => {
      const results = [];
      for (const [i, p] of [fx.busyboxPing.dockerArchive, fx.busyboxPing.ociDir, fx.busyboxPing.ociTar].entries()) {
        const store = new ImageStore(join(base, `s${i}`));
        const [img] = await store.importArchive(p);
        results.push({ img, tree: treeListing(img.layers[0], { mtimes: true }) });
      }
      assert.equal(results[0].img.digest, fx.busyboxPing.digest);
      for (const r of results) {
        assert.equal(r.img.digest, fx.busyboxPing.digest);
        assert.deepEqual(r.img.refs, ['capulator-test/busybox-ping:latest']);
        assert.deepEqual(r.img.diffIds, fx.busyboxPing.diffIds);
        assert.deepEqual(r.tree, results[0].tree);
      }
      // and the tree is the one the fixture was packed from (owners, modes, links, contents)
      assert.deepEqual(treeListing(results[0].img.layers[0]), treeListing(fx.rootfs));
      assert.match(results[0].tree.find((l) => / bin\/ping /.test(l))!, /^f 4755 0:0 /, 'ping keeps its setuid bit');
    });

    it('returns image metadata the runner needs', async () => {
      const store = new ImageStore(join(base, 's'));
      const [img] = await store.importArchive(fx.arm64.ociTar);
      assert.deepEqual(img.platform, { os: 'linux', architecture: 'arm64' });
      assert.deepEqual(img.config.Entrypoint, ['/bin/hello-arm64']);
      assert.equal(img.layers.length, 2);
      for (const l of img.layers) assert.ok(lstatSync(l).isDirectory());
      assert.ok(lstatSync(join(img.layers[1], 'bin/hello-arm64')).isFile());
      assert.ok(img.sizeBytes > 1_000_000);
    });
  });

  describe('when resolving references', () => {
    it('accepts a tag, a name, a digest and a unique prefix, and says when none matches', async () => {
      const store = new ImageStore(join(base, 's'));
      await store.importArchive(fx.multiDockerArchive);
      const d = fx.whiteout.digest;
      assert.equal(store.resolve('capulator-test/whiteout:latest').digest, d);
      assert.equal(store.resolve('capulator-test/whiteout').digest, d);
      assert.equal(store.resolve('docker.io/capulator-test/whiteout').digest, d);
      assert.equal(store.resolve(d).digest, d);
      assert.equal(store.resolve(d.slice(7, 19)).digest, d);
      assert.equal(store.resolve(d.slice(0, 19)).digest, d);
      assert.throws(() => store.resolve('capulator-test/nothing'), ImageNotFound);
      assert.throws(() => store.resolve(d.slice(7, 18)), ImageNotFound); // 11 hex digits: not a prefix, not a known tag
      assert.throws(() => store.resolve('sha256:' + '0'.repeat(64)), ImageNotFound);
      assert.throws(() => store.resolve('Bad Ref!'), (e: unknown) => e instanceof ImageStoreError && e.code === 'BAD_REF');
      assert.equal(store.list().length, 2);
    });

    it('moves a tag given with --tag to the newly imported image', async () => {
      const store = new ImageStore(join(base, 's'));
      const [a] = await store.importArchive(fx.busyboxPing.dockerArchive, { tag: 'mine' });
      assert.deepEqual(a.refs, ['mine:latest']);
      const [b] = await store.importArchive(fx.whiteout.dockerArchive, { tag: 'mine:latest' });
      assert.equal(store.resolve('mine').digest, b.digest);
      assert.deepEqual(store.resolve(a.digest).refs, []);
      await assert.rejects(store.importArchive(fx.multiDockerArchive, { tag: 'x' }), /--tag needs an archive with one image/);
    });
  });

  describe('when an archive lists the same image many times', () => {
    it('imports it once, with the union of its tags', async () => {
      const layer = await tarOf([{ name: 'etc/', type: 'directory' }, { name: 'etc/hostname', data: 'x\n' }]);
      const path = join(base, 'dup.tar');
      writeFileSync(path, await dockerArchiveOf([layer], { copies: 5000, repoTags: ['dup/a:1', 'dup/b:2'] }));
      const t0 = performance.now();
      const store = new ImageStore(join(base, 's'));
      const got = await store.importArchive(path);
      const ms = performance.now() - t0;
      assert.equal(got.length, 1);
      assert.deepEqual([...got[0].refs].sort(), ['dup/a:1', 'dup/b:2']);
      assert.equal(store.list().length, 1);
      // one layer hashed once, not 5,000 times (it took 13-35 s when every entry was imported)
      assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
    });
  });

  describe('when a tag in the archive is not a valid reference', () => {
    for (const [tag, rule] of [
      ['../../../etc/x:latest', /path component lowercase letters and digits/],
      ['busybox:-bad', /the tag is 1 to 128 of/],
      ['busybox@sha256:' + '0'.repeat(64), /a digest names an image/],
      [42, /a tag is a string/],
    ] as const) {
      it(`refuses ${JSON.stringify(tag)} with the rule it breaks and imports nothing`, async () => {
        const layer = await tarOf([{ name: 'etc/', type: 'directory' }]);
        const path = join(base, 'badtag.tar');
        writeFileSync(path, await dockerArchiveOf([layer], { repoTags: ['good/one:1', tag] }));
        const store = new ImageStore(join(base, 's'));
        await assert.rejects(store.importArchive(path), (e: unknown) => e instanceof ImageStoreError && e.code === 'BAD_REF' && rule.test(e.message) && e.message.includes(JSON.stringify(tag)));
        assert.equal(store.list().length, 0);
      });
    }
  });

  describe('when a layer has whiteouts', () => {
    it('stores them as overlay whiteouts and an opaque directory', async () => {
      const store = new ImageStore(join(base, 's'));
      const [img] = await store.importArchive(fx.whiteout.ociDir);
      const top = img.layers[1];
      const gone = lstatSync(join(top, 'opt/fixture/gone'));
      assert.ok(gone.isCharacterDevice());
      assert.equal(gone.rdev, 0);
      assert.equal(existsSync(join(top, 'opt/fixture/.wh.gone')), false);
      assert.equal(existsSync(join(top, 'opt/opaque/.wh..wh..opq')), false);
      assert.equal(xattr(join(top, 'opt/opaque'), 'trusted.overlay.opaque'), 'y');
      assert.equal(xattr(join(top, 'opt/fixture'), 'trusted.overlay.opaque'), null);
      // the lower layer is untouched
      assert.equal(readFileSync(join(img.layers[0], 'opt/fixture/gone'), 'utf8'), 'deleted by the whiteout layer\n');
    });

    it('hides the deleted file and the opaque directory\'s old contents in an overlay mount', { skip: !isRoot && 'needs root to mount overlayfs' }, async () => {
      const store = new ImageStore(join(base, 's'));
      const [img] = await store.importArchive(fx.whiteout.dockerArchive);
      const [u, w, m] = ['upper', 'work', 'merged'].map((d) => join(base, d));
      for (const d of [u, w, m]) mkdirSync(d);
      const lower = [...img.layers].reverse().join(':');
      const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${u},workdir=${w}`, m], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      try {
        assert.deepEqual(readdirSync(join(m, 'opt/fixture')), ['keep']);
        assert.deepEqual(readdirSync(join(m, 'opt/opaque')), ['new']);
        assert.equal(readFileSync(join(m, 'etc/layer2'), 'utf8'), 'added by layer 2\n');
        assert.ok(existsSync(join(m, 'bin/busybox')));
      } finally {
        spawnSync('umount', [m]);
      }
    });
  });

  describe('when a digest does not match', () => {
    it('refuses a docker-archive layer whose content differs from its diff_id', async () => {
      const good = await tarOf([{ name: 'a', data: 'good' }]);
      const bad = await tarOf([{ name: 'a', data: 'evil' }]);
      const p = join(base, 'mismatch.tar');
      writeFileSync(p, await dockerArchiveOf([bad], { diffIds: ['sha256:' + createHash('sha256').update(good).digest('hex')] }));
      const store = new ImageStore(join(base, 's'));
      const before = treeListing(store.root);
      await assert.rejects(store.importArchive(p), (e: unknown) => e instanceof ImageStoreError && e.code === 'DIGEST_MISMATCH' && /diff_id/.test(e.message));
      assert.deepEqual(treeListing(store.root, { skip: (r) => r === 'lock' }), before);
    });

    it('refuses an OCI layer blob changed after the manifest was written', async () => {
      const dir = join(base, 'oci');
      cpSync(fx.whiteout.ociDir, dir, { recursive: true });
      const blob = join(dir, 'blobs/sha256', fx.whiteout.gzipDigests[1].slice(7));
      const bytes = readFileSync(blob);
      bytes[bytes.length - 5] ^= 0xff;
      writeFileSync(blob, bytes);
      const store = new ImageStore(join(base, 's'));
      await assert.rejects(store.importArchive(dir), (e: unknown) => e instanceof ImageStoreError && e.code === 'DIGEST_MISMATCH' && /layer 2\/2/.test(e.message));
      assert.deepEqual(store.list(), []);
      assert.deepEqual(readdirSync(join(store.root, 'layers/sha256')), []);
    });

    it('refuses a config whose name is not its digest', async () => {
      const dir = join(base, 'oci');
      cpSync(fx.busyboxPing.ociDir, dir, { recursive: true });
      const cfg = join(dir, 'blobs/sha256', fx.busyboxPing.digest.slice(7));
      writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('"amd64"', '"arm64"'));
      await assert.rejects(new ImageStore(join(base, 's')).importArchive(dir), /DIGEST_MISMATCH|hashes to/);
    });
  });

  describe('when a layer is zstd-compressed', () => {
    it('unpacks it with the zstd program and checks both digests', { skip: !hasZstd && 'zstd is not installed' }, async () => {
      const layer = await tarOf([{ name: 'etc/', type: 'directory' }, { name: 'etc/zstd', data: 'from a zstd layer\n' }]);
      const zst = spawnSync('zstd', ['-q', '-c'], { input: layer }).stdout;
      assert.ok(zst.length > 0 && zst.readUInt32LE(0) === 0xfd2fb528);
      const dir = join(base, 'oci-zstd');
      const { configDigest } = writeOciLayout(dir, [{ blob: zst, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', diffId: 'sha256:' + sha256hex(layer) }], { name: 'zstd-test:1' });
      const store = new ImageStore(join(base, 's'));
      const [img] = await store.importArchive(dir);
      assert.equal(img.digest, configDigest);
      assert.deepEqual(img.refs, ['zstd-test:1']);
      assert.equal(readFileSync(join(img.layers[0], 'etc/zstd'), 'utf8'), 'from a zstd layer\n');
    });
  });

  describe('when a registry pull stores layers and then the image', () => {
    it('unpacks with putLayer, checks diff_ids in putImage, and resolves like an import', async () => {
      const store = new ImageStore(join(base, 's'));
      const oci = fx.busyboxPing.ociDir;
      const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8'));
      const manifestBytes = readFileSync(join(oci, 'blobs/sha256', index.manifests[0].digest.slice(7)));
      const manifest = JSON.parse(manifestBytes.toString());
      const configBytes = readFileSync(join(oci, 'blobs/sha256', fx.busyboxPing.digest.slice(7)));
      const gz = fx.busyboxPing.gzipDigests[0];
      assert.equal(store.hasBlob(gz), false);
      assert.throws(() => store.putImage(manifest, configBytes, ['pulled:1']), (e: unknown) => e instanceof ImageStoreError && /not stored/.test(e.message));
      await store.putLayer(gz, join(oci, 'blobs/sha256', gz.slice(7)), 'application/vnd.oci.image.layer.v1.tar+gzip');
      assert.equal(store.hasBlob(gz), true);
      assert.throws(() => store.putImage(manifest, Buffer.concat([configBytes, Buffer.from(' ')]), ['pulled:1']), (e: unknown) => e instanceof ImageStoreError && e.code === 'DIGEST_MISMATCH');
      const img = store.putImage(manifest, configBytes, ['pulled:1']);
      assert.equal(img.digest, fx.busyboxPing.digest);
      assert.equal(store.resolve('pulled:1').digest, fx.busyboxPing.digest);
      const fresh = new ImageStore(join(base, 'ref'));
      const [ref] = await fresh.importArchive(fx.busyboxPing.dockerArchive);
      assert.deepEqual(treeListing(img.layers[0], { mtimes: true }), treeListing(ref.layers[0], { mtimes: true }));
      // a parsed config object is accepted (the pull verified it) and kept in the index only
      const obj = store.putImage(manifest, JSON.parse(configBytes.toString()), ['pulled:2']);
      assert.deepEqual(obj.refs, ['pulled:1', 'pulled:2']);
      assert.deepEqual(readFileSync(join(store.root, 'blobs/sha256', fx.busyboxPing.digest.slice(7))), configBytes);
    });
  });

  describe('when an image comes from an archive', () => {
    it('keeps the archive\'s layer bytes and a manifest naming them, which verify as a registry pull verifies them; prune keeps them while the image is there', async () => {
      for (const [i, archive] of [fx.busyboxPing.dockerArchive, fx.busyboxPing.ociTar].entries()) {
        const store = new ImageStore(join(base, `served${i}`));
        const [img] = await store.importArchive(archive);
        assert.match(img.servedManifest ?? '', /^sha256:[0-9a-f]{64}$/);
        const m = store.servedBlob(img.servedManifest!)!;
        assert.equal(m.manifest, true);
        const bytes = readFileSync(m.path);
        assert.equal('sha256:' + sha256hex(bytes), img.servedManifest);
        const manifest = JSON.parse(bytes.toString()) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number; mediaType: string }> };
        assert.equal(manifest.config.digest, img.digest);
        assert.equal(readFileSync(store.servedBlob(img.digest)!.path).length, manifest.config.size);
        assert.equal(manifest.layers.length, img.diffIds.length);
        for (const [n, l] of manifest.layers.entries()) {
          const blob = readFileSync(store.servedBlob(l.digest)!.path);
          assert.equal('sha256:' + sha256hex(blob), l.digest);
          assert.equal(blob.length, l.size);
          const tar = l.mediaType.endsWith('+gzip') ? (await import('node:zlib')).gunzipSync(blob) : blob;
          assert.equal('sha256:' + sha256hex(tar), img.diffIds[n], `layer ${n + 1} unpacks to its diff_id`);
        }
        assert.equal(store.servedBlob('sha256:' + '0'.repeat(64)), undefined);
        store.prune();
        assert.ok(store.servedBlob(manifest.layers[0].digest), 'kept while the image is there');
        store.remove(img.digest);
        store.prune();
        assert.equal(store.servedBlob(manifest.layers[0].digest), undefined);
        assert.deepEqual(readdirSync(join(base, `served${i}`, 'blobs', 'sha256')), []);
      }
    });
  });

  describe('when removing and pruning', () => {
    it('untags, removes the image, then prunes only unreferenced layers', async () => {
      const store = new ImageStore(join(base, 's'));
      const [bb] = await store.importArchive(fx.busyboxPing.dockerArchive);
      const [wo] = await store.importArchive(fx.whiteout.dockerArchive, { tag: 'extra:1' });
      assert.deepEqual(store.prune().layers, []);
      assert.deepEqual(store.remove('capulator-test/busybox-ping'), { untagged: ['capulator-test/busybox-ping:latest'], deleted: bb.digest });
      // the base layer is still used by the whiteout image
      assert.deepEqual(store.prune().layers, []);
      store.remove(wo.digest);
      const pr = store.prune();
      assert.deepEqual(pr.layers, [...new Set(wo.diffIds)].sort());
      assert.deepEqual(readdirSync(join(store.root, 'layers/sha256')), []);
      assert.deepEqual(readdirSync(join(store.root, 'blobs/sha256')), []);
      assert.throws(() => store.resolve(wo.digest), ImageNotFound);
    });
  });

  describe('when two imports run at once', () => {
    it('keeps the store consistent (two processes and two in-process imports)', async () => {
      const root = join(base, 's');
      new ImageStore(root);
      const script = `const { ImageStore } = require(${JSON.stringify(join(__dirname, 'image-store.js'))});
        new ImageStore(process.argv[1]).importArchive(process.argv[2]).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });`;
      const run = (archive: string) => new Promise<number>((resolve) => {
        const c = spawn(process.execPath, ['-e', script, root, archive], { stdio: ['ignore', 'ignore', 'inherit'] });
        c.on('close', (code) => resolve(code ?? -1));
      });
      const store = new ImageStore(root);
      const [c1, c2, r3, r4] = await Promise.all([
        run(fx.whiteout.dockerArchive), run(fx.arm64.ociTar),
        store.importArchive(fx.busyboxPing.ociDir), store.importArchive(fx.whiteout.ociTar),
      ]);
      assert.equal(c1, 0);
      assert.equal(c2, 0);
      assert.equal(r3[0].digest, fx.busyboxPing.digest);
      assert.equal(r4[0].digest, fx.whiteout.digest);
      const digests = store.list().map((i) => i.digest).sort();
      assert.deepEqual(digests, [fx.busyboxPing.digest, fx.whiteout.digest, fx.arm64.digest].sort());
      const layerDirs = readdirSync(join(root, 'layers/sha256')).sort();
      const want = [...new Set([...fx.busyboxPing.diffIds, ...fx.whiteout.diffIds, ...fx.arm64.diffIds])].map((d) => d.slice(7)).sort();
      assert.deepEqual(layerDirs, want);
      assert.deepEqual(readdirSync(join(root, 'tmp')), []);
      assert.equal(existsSync(join(root, 'lock')), false);
      // the shared base layer is complete
      const fresh = new ImageStore(join(base, 'fresh'));
      const [ref] = await fresh.importArchive(fx.busyboxPing.dockerArchive);
      assert.deepEqual(treeListing(store.resolve(fx.busyboxPing.digest).layers[0], { mtimes: true }), treeListing(ref.layers[0], { mtimes: true }));
    });
  });
});
