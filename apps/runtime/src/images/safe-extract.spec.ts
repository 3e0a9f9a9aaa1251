import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve, relative, isAbsolute } from 'node:path';
import fc from 'fast-check';
import { checkEntryName, compressionOf } from './safe-extract';
import { digestPrefix, isDigest, normalizeTag } from './refs';

describe('checkEntryName', () => {
  describe('when a name is ordinary', () => {
    it('splits it, dropping "." components and trailing slashes', () => {
      assert.deepEqual(checkEntryName('./usr/bin/'), { ok: true, parts: ['usr', 'bin'] });
      assert.deepEqual(checkEntryName('a//b/./c'), { ok: true, parts: ['a', 'b', 'c'] });
      assert.deepEqual(checkEntryName('./'), { ok: true, parts: [] });
      assert.deepEqual(checkEntryName('..foo/bar..'), { ok: true, parts: ['..foo', 'bar..'] });
    });
  });

  describe('when a name would leave the layer', () => {
    it('names the rule', () => {
      const rule = (n: string) => {
        const c = checkEntryName(n);
        return c.ok ? 'ok' : c.rule;
      };
      assert.equal(rule('/etc/passwd'), 'absolute-path');
      assert.equal(rule('../x'), 'dot-dot');
      assert.equal(rule('a/../../x'), 'dot-dot');
      assert.equal(rule('a/..'), 'dot-dot');
      assert.equal(rule('a\0b'), 'bad-name');
      assert.equal(rule('x'.repeat(256)), 'path-too-long');
      assert.equal(rule('a/'.repeat(2100)), 'path-too-long');
      assert.equal(rule(Array(300).fill('a').join('/')), 'too-deep');
    });

    it('never accepts a name that resolves outside the target (property)', () => {
      const seg = fc.constantFrom('a', 'b', '.', '..', '', '...', '.wh.x', 'ü');
      fc.assert(fc.property(fc.array(seg, { maxLength: 8 }), fc.boolean(), (segs, abs) => {
        const name = (abs ? '/' : '') + segs.join('/');
        const c = checkEntryName(name);
        if (!c.ok) return true;
        const root = '/target/root';
        const p = resolve(join(root, ...c.parts));
        const rel = relative(root, p);
        return rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel) && !c.parts.includes('..');
      }), { numRuns: 2000 });
    });
  });
});

describe('compressionOf', () => {
  it('recognises gzip and zstd by magic bytes, anything else as plain tar', () => {
    assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
    assert.equal(compressionOf(Buffer.from('usr/')), 'none');
    assert.equal(compressionOf(Buffer.alloc(0)), 'none');
  });
});

describe('image references', () => {
  describe('when normalising tags', () => {
    it('adds :latest and strips Docker Hub prefixes', () => {
      assert.equal(normalizeTag('busybox'), 'busybox:latest');
      assert.equal(normalizeTag('busybox:1.36'), 'busybox:1.36');
      assert.equal(normalizeTag('docker.io/library/busybox:1'), 'busybox:1');
      assert.equal(normalizeTag('docker.io/foo/bar'), 'foo/bar:latest');
      assert.equal(normalizeTag('localhost:5000/team/app'), 'localhost:5000/team/app:latest');
      assert.equal(normalizeTag('localhost:5000/team/app:v2'), 'localhost:5000/team/app:v2');
    });
    it('rejects what is not a name', () => {
      for (const bad of ['', 'Busybox', 'a b', 'x:', 'x@sha256:00', '../x', 'x:-tag']) assert.equal(normalizeTag(bad), undefined, bad);
    });
  });

  describe('when given digests', () => {
    it('tells full digests and prefixes apart', () => {
      const hex = 'a'.repeat(64);
      assert.equal(isDigest(`sha256:${hex}`), true);
      assert.equal(isDigest(hex), false);
      assert.equal(digestPrefix('abcdef012345'), 'abcdef012345');
      assert.equal(digestPrefix('sha256:abcdef012345'), 'abcdef012345');
      assert.equal(digestPrefix('abcdef01234'), undefined);
      assert.equal(digestPrefix('busybox'), undefined);
    });
  });
});
