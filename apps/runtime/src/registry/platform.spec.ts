import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostPlatform, parsePlatform, selectPlatform } from './platform';
import { parseManifest } from './manifest';
import { RegistryError } from './registry.errors';

const entry = (architecture: string, variant?: string) => ({ digest: `${architecture}${variant ?? ''}`, platform: { os: 'linux', architecture, variant } });

describe('platforms', () => {
  it('maps the Node arch to the OCI name', () => {
    assert.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
    assert.equal(hostPlatform('arm64').architecture, 'arm64');
  });
  it('parses --platform values with aliases', () => {
    assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64', variant: undefined });
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.throws(() => parsePlatform('amd64'), (e: unknown) => e instanceof RegistryError && e.code === 'BAD_PLATFORM');
  });
  describe('when selecting from an index', () => {
    const idx = [entry('arm', 'v6'), entry('arm', 'v7'), entry('arm64', 'v8'), entry('amd64'), entry('s390x')];
    it('picks the host build', () => assert.equal(selectPlatform(idx, { os: 'linux', architecture: 'amd64' })?.digest, 'amd64'));
    it('honours the variant', () => assert.equal(selectPlatform(idx, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, 'armv7'));
    it('treats arm64 with and without v8 alike', () => {
      assert.equal(selectPlatform([entry('arm64')], { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest, 'arm64');
    });
    it('finds nothing for a missing ISA', () => assert.equal(selectPlatform([entry('arm64')], { os: 'linux', architecture: 'amd64' }), undefined));
  });
});

describe('parseManifest', () => {
  const d = (c: string) => 'sha256:' + c.repeat(64);
  it('recognises an index and an image manifest', () => {
    const idx = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'x', digest: d('a'), size: 1 }] })), '', 'x');
    assert.equal(idx.kind, 'index');
    const man = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'c', digest: d('b'), size: 2 }, layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('c'), size: 3 }] })), 'application/vnd.docker.distribution.manifest.v2+json', 'x');
    assert.equal(man.kind, 'image');
  });
  it('refuses schema 1 and non-layer blobs', () => {
    assert.throws(() => parseManifest(Buffer.from('{}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'x'), (e: unknown) => e instanceof RegistryError && e.code === 'UNSUPPORTED_MEDIA_TYPE');
    const helm = { schemaVersion: 2, config: { mediaType: 'c', digest: d('b'), size: 2 }, layers: [{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: d('c'), size: 3 }] };
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify(helm)), 'application/vnd.oci.image.manifest.v1+json', 'x'), (e: unknown) => e instanceof RegistryError && e.code === 'UNSUPPORTED_MEDIA_TYPE');
  });
  it('refuses a descriptor with a bad digest', () => {
    const bad = { schemaVersion: 2, config: { mediaType: 'c', digest: 'md5:00', size: 2 }, layers: [] };
    assert.throws(() => parseManifest(Buffer.from(JSON.stringify(bad)), 'application/vnd.oci.image.manifest.v1+json', 'x'), (e: unknown) => e instanceof RegistryError && e.code === 'BAD_MANIFEST');
  });
});
