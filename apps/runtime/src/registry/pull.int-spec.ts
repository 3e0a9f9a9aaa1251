import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullImage, PullProgress } from './pull';
import { clearTokenCache } from './client';
import { RegistryError } from './registry.errors';
import { fixtureImages, FixtureImages } from '../../../../test/fixtures/images';
import {
  addImage, BuiltImage, dockerConfigWith, mergeBlobs, nonLoopbackAddress, skopeoPush, startProxy, startRegistry, tagInLayout, TestRegistry,
} from '../../../../test/fixtures/registry';
import { ImageStore } from '../images';

interface TestStore extends ImageStore { staging: string; close(): void }

/** A real ImageStore in a temp dir, with a staging dir beside it. */
function openTestStore(): TestStore {
  const dir = mkdtempSync(join(tmpdir(), 'capulator-pullstore-'));
  const s = new ImageStore(join(dir, 'images')) as TestStore;
  s.staging = join(dir, 'staging');
  s.close = () => rmSync(dir, { recursive: true, force: true });
  return s;
}

function layerFile(img: { layers: string[] }, rel: string): string | undefined {
  for (const l of [...img.layers].reverse()) if (existsSync(join(l, rel))) return readFileSync(join(l, rel), 'latin1');
  return undefined;
}

const FAST = { backoffMs: 20, timeoutMs: 10_000 };

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RegistryError, `want RegistryError, got ${(err as Error)?.stack}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected a ${code} failure`);
}

function blobGets(requests: string[]): string[] {
  return requests.filter((r) => /^GET \/v2\/.+\/blobs\/sha256:/.test(r));
}

describe('pullImage', () => {
  let fx: FixtureImages;
  let layouts: string;
  let bigImage: BuiltImage;
  before(() => {
    fx = fixtureImages();
    layouts = tmp('capulator-layouts-');
    // A multi-platform index: the busybox-ping (amd64) and arm64 fixture images under one tag.
    const multi = join(layouts, 'multi');
    mergeBlobs(fx.busyboxPing.ociDir, multi);
    mergeBlobs(fx.arm64.ociDir, multi);
    const man = (dir: string) => {
      const d = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests[0];
      return { manifest: { digest: d.digest, size: d.size, mediaType: d.mediaType }, config: d, layers: [], architecture: d.platform?.architecture ?? '' };
    };
    const amd = man(fx.busyboxPing.ociDir);
    amd.architecture = 'amd64';
    const arm = man(fx.arm64.ociDir);
    arm.architecture = 'arm64';
    tagInLayout(multi, 'multi', [amd, arm]);
    tagInLayout(multi, 'armonly', [arm]);
    tagInLayout(multi, 'armindex', [arm, { ...arm, architecture: 's390x' }]);
    // A zstd-layer image built here.
    const z = join(layouts, 'zstd');
    // A 48 MB layer of random bytes: larger than what the kernel buffers, so killing the registry cuts it.
    const big = join(layouts, 'big');
    bigImage = addImage(big, { architecture: 'amd64', compression: 'none', layers: [{ 'data/random.bin': randomBytes(48 << 20) }] });
    tagInLayout(big, 'big', [bigImage]);
    tagInLayout(z, 'zstd', [addImage(z, { architecture: 'amd64', compression: 'zstd', layers: [{ 'etc/zstd-layer': 'compressed with zstd\n' }] })]);
  });
  after(() => rmSync(layouts, { recursive: true, force: true }));

  describe('when the registry allows anonymous pulls', () => {
    let reg: TestRegistry;
    let store: TestStore;
    before(async () => {
      reg = await startRegistry();
      await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${reg.host}/test/busybox-ping:1`);
      await skopeoPush(join(layouts, 'multi'), 'multi', `${reg.host}/test/multi:1`, { all: true });
      await skopeoPush(join(layouts, 'multi'), 'armonly', `${reg.host}/test/armonly:1`);
      await skopeoPush(join(layouts, 'multi'), 'armindex', `${reg.host}/test/armindex:1`, { all: true });
      await skopeoPush(join(layouts, 'zstd'), 'zstd', `${reg.host}/test/zstd:1`);
      await skopeoPush(join(layouts, 'big'), 'big', `${reg.host}/test/big:1`);
    });
    after(async () => {
      await reg.close();
      store?.close();
    });

    it('pulls by tag: the image id is the config digest and the layer is stored verified', async () => {
      store = openTestStore();
      const img = await pullImage(store, `${reg.host}/test/busybox-ping:1`, { stagingDir: store.staging, ...FAST });
      assert.equal(img.digest, fx.busyboxPing.digest);
      assert.deepEqual(img.refs, [`${reg.host}/test/busybox-ping:1`]);
      assert.deepEqual(img.diffIds, fx.busyboxPing.diffIds);
      assert.ok(store.hasBlob(fx.busyboxPing.gzipDigests[0]));
      assert.match(layerFile(img, 'etc/passwd') ?? '', /^root:/);
      assert.equal(store.resolve(`${reg.host}/test/busybox-ping:1`).digest, fx.busyboxPing.digest);
      assert.deepEqual(readdirSync(store.staging).filter((f) => !f.endsWith('.lock')), [], 'staging is left empty');
    });

    it('pulls by digest and fetches no layer already in the store', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const manifestDigest = JSON.parse(readFileSync(join(fx.busyboxPing.ociDir, 'index.json'), 'utf8')).manifests[0].digest as string;
        const s = openTestStore();
        await pullImage(s, `${proxy.host}/test/busybox-ping@${manifestDigest}`, { stagingDir: s.staging, ...FAST });
        assert.equal(s.list()[0].digest, fx.busyboxPing.digest);
        assert.deepEqual(s.list()[0].refs, [], 'a digest pull records no tag');
        const layerGets = blobGets(proxy.requests).filter((r) => r.includes(fx.busyboxPing.gzipDigests[0]));
        assert.equal(layerGets.length, 1);
        const events: PullProgress[] = [];
        await pullImage(s, `${proxy.host}/test/busybox-ping:1`, { stagingDir: s.staging, ...FAST, onProgress: (e) => events.push(e) });
        assert.equal(blobGets(proxy.requests).filter((r) => r.includes(fx.busyboxPing.gzipDigests[0])).length, 1, 'second pull fetched the layer again');
        assert.ok(events.some((e) => e.kind === 'layer' && e.state === 'cached'));
        s.close();
      } finally {
        await proxy.close();
      }
    });

    it('resolves a multi-platform index to the host platform, or to --platform', async () => {
      const s = openTestStore();
      const host = await pullImage(s, `${reg.host}/test/multi:1`, { stagingDir: s.staging, ...FAST, platform: { os: 'linux', architecture: 'amd64' } });
      assert.equal(host.digest, fx.busyboxPing.digest);
      const arm = await pullImage(s, `${reg.host}/test/multi:1`, { stagingDir: s.staging, ...FAST, platform: { os: 'linux', architecture: 'arm64' } });
      assert.equal(arm.digest, fx.arm64.digest);
      s.close();
    });

    it('refuses an image with no build for this ISA and names the platforms it has', async () => {
      const s = openTestStore();
      const amd64 = { os: 'linux', architecture: 'amd64' };
      await rejectsWith(pullImage(s, `${reg.host}/test/armindex:1`, { stagingDir: s.staging, ...FAST, platform: amd64 }), 'NO_MATCHING_PLATFORM', /no build for linux\/amd64; it has linux\/arm64, linux\/s390x/);
      await rejectsWith(pullImage(s, `${reg.host}/test/armonly:1`, { stagingDir: s.staging, ...FAST, platform: amd64 }), 'NO_MATCHING_PLATFORM', /built for linux\/arm64 only/);
      assert.deepEqual(s.list(), []);
      s.close();
    });

    it('unpacks zstd layers (decompressed with the zstd program before the store sees them)', async () => {
      const s = openTestStore();
      const img = await pullImage(s, `${reg.host}/test/zstd:1`, { stagingDir: s.staging, ...FAST });
      assert.equal(img.layers.length, 1);
      assert.equal(layerFile(img, 'etc/zstd-layer'), 'compressed with zstd\n');
      s.close();
    });

    it('says which image is missing', async () => {
      const s = openTestStore();
      await rejectsWith(pullImage(s, `${reg.host}/test/nope:1`, { stagingDir: s.staging, ...FAST }), 'MANIFEST_UNKNOWN');
      s.close();
    });

    it('shares one fetch per blob between two pulls at once', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const s = openTestStore();
        const ref = `${proxy.host}/test/busybox-ping:1`;
        const [a, b] = await Promise.all([pullImage(s, ref, { stagingDir: s.staging, ...FAST }), pullImage(s, ref, { stagingDir: s.staging, ...FAST })]);
        assert.equal(a.digest, b.digest);
        assert.equal(blobGets(proxy.requests).filter((r) => r.includes(fx.busyboxPing.gzipDigests[0])).length, 1);
        assert.equal(s.list().length, 1);
        s.close();
      } finally {
        await proxy.close();
      }
    });

    it('resumes a download cut mid-blob with a Range request', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const s = openTestStore();
        proxy.breakBlobs(2, 1_000_000);
        const retries: PullProgress[] = [];
        const img = await pullImage(s, `${proxy.host}/test/busybox-ping:1`, { stagingDir: s.staging, ...FAST, onProgress: (e) => e.kind === 'retry' && retries.push(e) });
        assert.equal(img.digest, fx.busyboxPing.digest);
        assert.equal(retries.length, 2, 'two cuts, two resumptions');
        assert.equal(blobGets(proxy.requests).filter((r) => r.includes(fx.busyboxPing.gzipDigests[0])).length, 3);
        assert.ok(retries.some((r) => r.kind === 'retry' && r.resumeAt > 0), 'resumed from a non-zero offset');
        assert.deepEqual(img.diffIds, fx.busyboxPing.diffIds, 'the resumed layer unpacked to the right diff_id');
        s.close();
      } finally {
        await proxy.close();
      }
    });

    it('retries 5xx answers with backoff, and gives up after the attempts', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const s = openTestStore();
        proxy.failNext(3, 503);
        const img = await pullImage(s, `${proxy.host}/test/busybox-ping:1`, { stagingDir: s.staging, backoffMs: 20, attempts: 5 });
        assert.equal(img.digest, fx.busyboxPing.digest);
        const s2 = openTestStore();
        proxy.failNext(100, 502);
        await rejectsWith(pullImage(s2, `${proxy.host}/test/busybox-ping:1`, { stagingDir: s2.staging, backoffMs: 5, attempts: 3 }), 'HTTP_ERROR', /502/);
        proxy.failNext(0, 502);
        s.close();
        s2.close();
      } finally {
        await proxy.close();
      }
    });

    it('restarts cleanly when the server ignores the Range request', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const s = openTestStore();
        proxy.ignoreRanges(true);
        proxy.breakBlobs(1, 1_000_000);
        const reasons: string[] = [];
        const img = await pullImage(s, `${proxy.host}/test/busybox-ping:1`, { stagingDir: s.staging, ...FAST, onProgress: (e) => e.kind === 'retry' && reasons.push(e.reason) });
        assert.equal(img.digest, fx.busyboxPing.digest);
        assert.deepEqual(img.diffIds, fx.busyboxPing.diffIds);
        assert.ok(reasons.some((r) => /ignored the range/.test(r)), JSON.stringify(reasons));
        s.close();
      } finally {
        await proxy.close();
      }
    });

    it('times out a stalled download and resumes it', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const s = openTestStore();
        proxy.stallBlobs(1, 1_500_000);
        const retries: PullProgress[] = [];
        const started = Date.now();
        const img = await pullImage(s, `${proxy.host}/test/busybox-ping:1`, { stagingDir: s.staging, backoffMs: 20, timeoutMs: 500, onProgress: (e) => e.kind === 'retry' && retries.push(e) });
        assert.equal(img.digest, fx.busyboxPing.digest);
        assert.ok(retries.some((r) => r.kind === 'retry' && r.resumeAt > 0 && /within 500 ms|timed out|closed/.test(r.reason)), JSON.stringify(retries));
        assert.ok(Date.now() - started < 8000, 'the stall was cut by the timeout, not waited out');
        s.close();
      } finally {
        await proxy.close();
      }
    });

    it('survives the registry being killed mid-pull and restarted', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const s = openTestStore();
        proxy.throttleBlobs(24 << 20);
        let killed = false;
        let restarted: Promise<void> | undefined;
        const retries: PullProgress[] = [];
        let layer = '';
        const img = await pullImage(s, `${proxy.host}/test/big:1`, {
          stagingDir: s.staging, backoffMs: 200, attempts: 8, timeoutMs: 10_000,
          onProgress: (e) => {
            if (e.kind === 'resolved') layer = e.layers[0].digest; // skopeo gzips the plain-tar layer on push
            if (e.kind === 'retry') retries.push(e);
            if (!killed && e.kind === 'layer' && e.state === 'downloading' && e.bytes > 2 << 20) {
              killed = true;
              restarted = reg.stop().then(() => reg.start());
            }
          },
        });
        await restarted;
        assert.ok(killed);
        assert.equal(img.digest, bigImage.config.digest);
        assert.ok(blobGets(proxy.requests).filter((r) => r.includes(layer)).length >= 2, `the layer was fetched again after the kill: ${JSON.stringify(proxy.requests)}`);
        assert.ok(retries.some((r) => r.kind === 'retry' && r.resumeAt > 0), 'the download resumed where it broke');
        assert.ok(s.hasBlob(layer));
        s.close();
      } finally {
        await proxy.close();
      }
    });

    it('shares one fetch per blob between two processes (lock file per blob)', async () => {
      const proxy = await startProxy(reg.host);
      const dir = tmp('capulator-xproc-');
      try {
        proxy.throttleBlobs(2 << 20);
        const script = `
          const { pullImage } = require(${JSON.stringify(join(__dirname, 'pull.js'))});
          const { ImageStore } = require(${JSON.stringify(join(__dirname, '../images/index.js'))});
          const store = new ImageStore(process.argv[1]);
          const states = [];
          pullImage(store, process.argv[2], { stagingDir: process.argv[3], backoffMs: 20,
            onProgress: (e) => { if (e.kind === 'layer') states.push(e.state); } })
            .then((img) => { process.stdout.write(JSON.stringify({ digest: img.digest, states: [...new Set(states)] })); })
            .catch((e) => { process.stderr.write(String(e && e.stack)); process.exit(1); });`;
        const run = () => new Promise<{ digest: string; states: string[] }>((resolve, reject) => {
          const child = spawn(process.execPath, ['-e', script, join(dir, 'images'), `${proxy.host}/test/busybox-ping:1`, join(dir, 'staging')], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child pull failed (${code}): ${err}`))));
        });
        const [a, b] = await Promise.all([run(), run()]);
        assert.equal(a.digest, fx.busyboxPing.digest);
        assert.equal(b.digest, fx.busyboxPing.digest);
        assert.equal(blobGets(proxy.requests).filter((r) => r.includes(fx.busyboxPing.gzipDigests[0])).length, 1, JSON.stringify(proxy.requests));
        const downloaded = [a, b].filter((r) => r.states.includes('downloading'));
        assert.equal(downloaded.length, 1, 'exactly one process downloaded the layer');
        assert.ok([a, b].some((r) => r.states.includes('cached') && !r.states.includes('downloading')), 'the other waited on the lock and found it stored');
      } finally {
        await proxy.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a tampered blob and leaves nothing behind', async () => {
      const path = reg.blobPath(fx.busyboxPing.gzipDigests[0]);
      const original = readFileSync(path);
      const bad = Buffer.from(original);
      bad[bad.length >> 1] ^= 0xff;
      writeFileSync(path, bad);
      try {
        const s = openTestStore();
        await rejectsWith(pullImage(s, `${reg.host}/test/busybox-ping:1`, { stagingDir: s.staging, ...FAST }), 'DIGEST_MISMATCH', /tampered/);
        assert.equal(s.hasBlob(fx.busyboxPing.gzipDigests[0]), false);
        assert.deepEqual(s.list(), []);
        assert.deepEqual(readdirSync(s.staging).filter((f) => !f.endsWith('.lock')), []);
        s.close();
      } finally {
        writeFileSync(path, original);
      }
    });
  });

  describe('when the registry wants basic auth', () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry({ kind: 'basic', user: 'alice', password: 's3cret' });
      await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${reg.host}/test/private:1`, { creds: 'alice:s3cret' });
    });
    after(() => reg.close());

    it('pulls with the credentials from a Docker config.json', async () => {
      const s = openTestStore();
      const cfg = dockerConfigWith(reg.host, 'alice', 's3cret');
      const img = await pullImage(s, `${reg.host}/test/private:1`, { stagingDir: s.staging, ...FAST, dockerConfig: cfg });
      assert.equal(img.digest, fx.busyboxPing.digest);
      rmSync(cfg, { recursive: true });
      s.close();
    });

    it('fails with UNAUTHORIZED without or with wrong credentials', async () => {
      const s = openTestStore();
      const none = tmp('capulator-nocfg-');
      await rejectsWith(pullImage(s, `${reg.host}/test/private:1`, { stagingDir: s.staging, ...FAST, dockerConfig: none }), 'UNAUTHORIZED', /config\.json/);
      const wrong = dockerConfigWith(reg.host, 'alice', 'nope');
      await rejectsWith(pullImage(s, `${reg.host}/test/private:1`, { stagingDir: s.staging, ...FAST, dockerConfig: wrong }), 'UNAUTHORIZED');
      rmSync(none, { recursive: true });
      rmSync(wrong, { recursive: true });
      s.close();
    });
  });

  describe('when the registry wants bearer tokens', () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry({ kind: 'token', user: 'bob', password: 'pw', allowAnonymousPull: false });
      await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${reg.host}/test/tok:1`, { creds: 'bob:pw' });
      clearTokenCache();
    });
    after(() => reg.close());

    it('gets a token for the pull scope with basic credentials and caches it', async () => {
      const s = openTestStore();
      const cfg = dockerConfigWith(reg.host, 'bob', 'pw');
      reg.tokenRequests.length = 0;
      const img = await pullImage(s, `${reg.host}/test/tok:1`, { stagingDir: s.staging, ...FAST, dockerConfig: cfg });
      assert.equal(img.digest, fx.busyboxPing.digest);
      assert.deepEqual(reg.tokenRequests, ['repository:test/tok:pull']);
      const s2 = openTestStore();
      await pullImage(s2, `${reg.host}/test/tok:1`, { stagingDir: s2.staging, ...FAST, dockerConfig: cfg });
      assert.equal(reg.tokenRequests.length, 1, 'the cached token was reused');
      rmSync(cfg, { recursive: true });
      s.close();
      s2.close();
    });

    it('is refused by the token server without credentials', async () => {
      const s = openTestStore();
      const none = tmp('capulator-nocfg-');
      await rejectsWith(pullImage(s, `${reg.host}/test/tok:1`, { stagingDir: s.staging, ...FAST, dockerConfig: none }), 'UNAUTHORIZED', /anonymous/);
      rmSync(none, { recursive: true });
      s.close();
    });
  });

  describe('when the token server allows anonymous pulls', () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry({ kind: 'token', user: 'bob', password: 'pw', allowAnonymousPull: true });
      await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${reg.host}/public/app:1`, { creds: 'bob:pw' });
    });
    after(() => reg.close());

    it('pulls anonymously with a token', async () => {
      const s = openTestStore();
      const none = tmp('capulator-nocfg-');
      const img = await pullImage(s, `${reg.host}/public/app:1`, { stagingDir: s.staging, ...FAST, dockerConfig: none });
      assert.equal(img.digest, fx.busyboxPing.digest);
      assert.ok(reg.tokenRequests.includes('repository:public/app:pull'));
      rmSync(none, { recursive: true });
      s.close();
    });
  });

  describe('when the registry is not on a loopback address', () => {
    const address = nonLoopbackAddress();
    let plain: TestRegistry | undefined;
    let tls: TestRegistry | undefined;
    before(async () => {
      if (!address) return;
      plain = await startRegistry({ kind: 'none' }, { address });
      tls = await startRegistry({ kind: 'none' }, { address, tls: true });
      await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${plain.host}/test/app:1`);
      await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${tls.host}/test/app:1`);
    });
    after(async () => {
      await plain?.close();
      await tls?.close();
    });

    it('refuses plain HTTP and unverified TLS unless the host is named with --insecure-registry', { skip: !address && 'this machine has no non-loopback IPv4 address' }, async () => {
      const s = openTestStore();
      await rejectsWith(pullImage(s, `${plain!.host}/test/app:1`, { stagingDir: s.staging, ...FAST, attempts: 2 }), 'TLS', /--insecure-registry/);
      await rejectsWith(pullImage(s, `${tls!.host}/test/app:1`, { stagingDir: s.staging, ...FAST, attempts: 2 }), 'TLS', /--insecure-registry/);
      assert.deepEqual(s.list(), []);
      const viaHttp = await pullImage(s, `${plain!.host}/test/app:1`, { stagingDir: s.staging, ...FAST, insecureRegistries: [plain!.host] });
      assert.equal(viaHttp.digest, fx.busyboxPing.digest);
      const viaTls = await pullImage(s, `${tls!.host}/test/app:1`, { stagingDir: s.staging, ...FAST, insecureRegistries: [address!] });
      assert.equal(viaTls.digest, fx.busyboxPing.digest);
      s.close();
    });
  });
});
