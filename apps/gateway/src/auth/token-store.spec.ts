import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToken, TokenError, TokenStore } from './token-store';
import { authenticate } from './auth.guard';
import { Forbidden, Unauthenticated } from '../errors/domain.error';

describe('TokenStore', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-tokens-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('when a token is created', () => {
    it('verifies it to its principal and stores only the hash', () => {
      const store = new TokenStore(join(dir, 'a.json'));
      const { token, record } = store.create('ci', ['runs:read', 'runs:read', 'audit:read']);
      assert.match(token, /^cap_[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(record.scopes, ['runs:read', 'audit:read']);
      assert.deepEqual(store.verify(token), { name: 'ci', scopes: ['runs:read', 'audit:read'] });
      assert.equal(store.verify(token + 'x'), undefined);
      assert.equal(store.verify(''), undefined);
      const text = readFileSync(join(dir, 'a.json'), 'utf8');
      assert.ok(text.includes(hashToken(token)));
      assert.ok(!text.includes(token));
    });

    it('refuses bad names, unknown scopes, no scopes and duplicates', () => {
      const store = new TokenStore(join(dir, 'b.json'));
      store.create('one', ['*']);
      for (const [name, scopes] of [['one', ['*']], ['bad name', ['*']], ['x', []], ['y', ['runs:delete']]] as const) {
        assert.throws(() => store.create(name, [...scopes]), TokenError);
      }
    });
  });

  describe('when a token is revoked', () => {
    it('no longer verifies, also through another instance reading the same file', () => {
      const file = join(dir, 'c.json');
      const a = new TokenStore(file);
      const b = new TokenStore(file);
      const { token } = a.create('tmp', ['runs:write']);
      assert.ok(b.verify(token));
      assert.equal(a.revoke('tmp'), true);
      assert.equal(b.verify(token), undefined);
      assert.equal(a.revoke('tmp'), false);
    });
  });

  describe('authenticate', () => {
    it('needs a Bearer header, a known token and the scope', () => {
      const store = new TokenStore(join(dir, 'd.json'));
      const { token } = store.create('r', ['runs:read']);
      const star = store.create('s', ['*']).token;
      assert.throws(() => authenticate(store, undefined, 'runs:read'), Unauthenticated);
      assert.throws(() => authenticate(store, token, 'runs:read'), Unauthenticated);
      assert.throws(() => authenticate(store, `Bearer ${token}`, 'runs:write'), Forbidden);
      assert.equal(authenticate(store, `bearer ${token}`, 'runs:read').name, 'r');
      assert.equal(authenticate(store, `Bearer ${star}`, 'images:write').name, 's');
    });
  });
});
