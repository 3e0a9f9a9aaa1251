import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isInsecureHost, parseReference } from './reference';
import { RegistryError } from './registry.errors';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseReference', () => {
  describe('when the reference names a registry host', () => {
    it('splits host:port, repository and tag', () => {
      const r = parseReference('127.0.0.1:5000/team/app:1.2');
      assert.deepEqual([r.registry, r.repository, r.tag, r.digest, r.reference], ['127.0.0.1:5000', 'team/app', '1.2', undefined, '1.2']);
      assert.equal(r.canonical, '127.0.0.1:5000/team/app:1.2');
    });
    it('treats localhost and dotted names as hosts', () => {
      assert.equal(parseReference('localhost/app').registry, 'localhost');
      assert.equal(parseReference('ghcr.io/o/app').registry, 'ghcr.io');
    });
    it('takes a digest over the tag for the manifest request', () => {
      const r = parseReference(`reg.example:443/app:1@${D}`);
      assert.equal(r.tag, '1');
      assert.equal(r.digest, D);
      assert.equal(r.reference, D);
    });
  });
  describe('when the reference has no host', () => {
    it('means Docker Hub, library/ for one component and :latest by default', () => {
      const r = parseReference('busybox');
      assert.deepEqual([r.registry, r.repository, r.tag], ['docker.io', 'library/busybox', 'latest']);
      assert.equal(parseReference('user/app').repository, 'user/app');
    });
    it('keeps a digest-only reference without a tag', () => {
      const r = parseReference(`busybox@${D}`);
      assert.equal(r.tag, undefined);
      assert.equal(r.reference, D);
    });
  });
  describe('when the reference is malformed', () => {
    for (const bad of ['', 'UPPER/case', 'app@sha256:xyz', 'app:bad/tag:', 'a//b', 'app:-x']) {
      it(`refuses ${JSON.stringify(bad)} with BAD_REFERENCE`, () => {
        assert.throws(() => parseReference(bad), (e: unknown) => e instanceof RegistryError && e.code === 'BAD_REFERENCE');
      });
    }
  });
});

describe('isInsecureHost', () => {
  it('allows loopback and listed hosts only', () => {
    assert.equal(isInsecureHost('127.0.0.1:5000', []), true);
    assert.equal(isInsecureHost('localhost:5000', []), true);
    assert.equal(isInsecureHost('reg.lan:5000', []), false);
    assert.equal(isInsecureHost('reg.lan:5000', ['reg.lan:5000']), true);
    assert.equal(isInsecureHost('reg.lan:5000', ['reg.lan']), true);
    assert.equal(isInsecureHost('reg.lan:5000', ['other:5000']), false);
  });
});
