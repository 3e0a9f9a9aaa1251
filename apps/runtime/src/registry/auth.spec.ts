import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsFor, dockerConfigDir, parseChallenges } from './auth';

describe('parseChallenges', () => {
  describe('when the registry sends a Bearer challenge', () => {
    it('reads realm, service and scope, quoted values with commas included', () => {
      const [c] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
      assert.equal(c.scheme, 'bearer');
      assert.deepEqual(c.params, { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' });
    });
  });
  describe('when several challenges arrive', () => {
    it('returns each with its own parameters', () => {
      const cs = parseChallenges(['Basic realm="r1"', 'Bearer realm="r2",error="invalid_token"']);
      assert.deepEqual(cs.map((c) => [c.scheme, c.params.realm]), [['basic', 'r1'], ['bearer', 'r2']]);
      assert.equal(cs[1].params.error, 'invalid_token');
    });
  });
  it('returns nothing for a missing header', () => {
    assert.deepEqual(parseChallenges(undefined), []);
  });
});

describe('credentialsFor', () => {
  const withConfig = (auths: unknown, fn: (dir: string) => void) => {
    const dir = mkdtempSync(join(tmpdir(), 'capulator-auth-spec-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
      fn(dir);
    } finally {
      rmSync(dir, { recursive: true });
    }
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  describe('when config.json has an entry for the host', () => {
    it('decodes the base64 auth, password colons kept', () => {
      withConfig({ 'reg.lan:5000': { auth: b64('alice:pa:ss') } }, (dir) => {
        assert.deepEqual(credentialsFor('reg.lan:5000', dir), { username: 'alice', password: 'pa:ss' });
      });
    });
    it('matches keys written with a scheme and path', () => {
      withConfig({ 'https://reg.lan:5000/v1/': { auth: b64('bob:pw') } }, (dir) => {
        assert.equal(credentialsFor('reg.lan:5000', dir)?.username, 'bob');
      });
    });
    it('finds Docker Hub under its classic key', () => {
      withConfig({ 'https://index.docker.io/v1/': { auth: b64('hub:pw') } }, (dir) => {
        assert.equal(credentialsFor('docker.io', dir)?.username, 'hub');
      });
    });
  });
  describe('when there is no entry or no file', () => {
    it('means anonymous', () => {
      withConfig({ 'other:5000': { auth: b64('x:y') } }, (dir) => assert.equal(credentialsFor('reg.lan:5000', dir), undefined));
      assert.equal(credentialsFor('reg.lan', '/nonexistent/dir'), undefined);
    });
  });
  it('honours $DOCKER_CONFIG', () => {
    assert.equal(dockerConfigDir({ DOCKER_CONFIG: '/etc/dc' }), '/etc/dc');
    assert.match(dockerConfigDir({}), /\.docker$/);
  });
});
