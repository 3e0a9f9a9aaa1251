import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventFixtures, ReadModelProjector, resolvePolicy, SqliteEventStore } from '@capulator/events';
const { decision, runExited, runRequested, runStarted } = eventFixtures;

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '..', '..', '..', '..', '..');
const bin = join(repo, 'bin', 'capulator');

const PING = `apiVersion: capulator/v1
kind: Policy
metadata: { name: ping, description: raw ICMP for ping only }
defaults: { action: deny, audit: all }
rules:
  - id: ping-raw
    match: { exe: ["/usr/bin/ping"] }
    privileges: [PRIV_NETINET_RAW]
    action: allow
`;

describe('capulator audit / policy suggest|publish', () => {
  let home: string;
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, CAPULATOR_HOME: home }, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const file = (name: string, text: string) => {
    const p = join(home, name);
    writeFileSync(p, text);
    return p;
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'capulator-audit-'));
    const store = SqliteEventStore.open(join(home, 'events.db'));
    // r1: learn-mode ping + chown + bind 80 + capget; r2: only ping; r3: a web server binding 443.
    await store.append('run-r1', 'no-stream', [
      runRequested('r1', { learn: true }),
      runStarted('r1', ['CAP_NET_RAW', 'CAP_CHOWN', 'CAP_NET_BIND_SERVICE']),
      decision('r1', 1),
      decision('r1', 2, { syscall: 'chown', args: { uid: 1, gid: 1 }, privileges: ['PRIV_VFS_CHOWN'], capability: 'CAP_CHOWN', exe: '/usr/bin/install', ruleId: null }),
      decision('r1', 3, { syscall: 'capget', args: {}, privileges: [], capability: null, ruleId: null }),
      decision('r1', 4, { syscall: 'bind', args: { family: 'AF_INET', port: 80 }, privileges: ['PRIV_NETINET_RESERVEDPORT'], capability: 'CAP_NET_BIND_SERVICE', exe: '/usr/sbin/nginx', ruleId: null }),
      runExited('r1'),
    ]);
    await store.append('run-r2', 'no-stream', [runRequested('r2'), runStarted('r2', ['CAP_NET_RAW']), decision('r2', 1), decision('r2', 2), runExited('r2')]);
    await store.append('run-r3', 'no-stream', [
      runRequested('r3'),
      runStarted('r3', ['CAP_NET_BIND_SERVICE']),
      decision('r3', 1, { syscall: 'bind', args: { family: 'AF_INET', port: 443 }, privileges: ['PRIV_NETINET_RESERVEDPORT'], capability: 'CAP_NET_BIND_SERVICE', exe: '/usr/sbin/caddy', ruleId: 'web' }),
      runExited('r3'),
    ]);
    await store.close();
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('audit log', () => {
    it('filters by run, decision, privilege and exe glob, as JSON lines', () => {
      const r = run('audit', 'log', '--json', '--privilege', 'PRIV_NETINET_RAW', '--exe', '/usr/*/ping');
      assert.equal(r.code, 0, r.err);
      const rows = r.out.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(rows.map((x) => `${x.runId}:${x.seq}`), ['r1:1', 'r2:1', 'r2:2']);
      const t = run('audit', 'log', '--run', 'r3');
      assert.match(t.out, /^POSITION\s+TIME/);
      assert.match(t.out, /\/usr\/sbin\/caddy\s+bind\s+PRIV_NETINET_RESERVEDPORT/);
      assert.equal(run('audit', 'log', '--since', 'yesterday').code, 2);
    });
  });

  describe('audit replay', () => {
    it('exits 1 and names each decision that would now be denied', () => {
      const r = run('audit', 'replay', '--policy', file('ping.yaml', PING));
      assert.equal(r.code, 1, r.err);
      assert.match(r.out, /run r1\s+seq 2\s+\/usr\/bin\/install\s+chown\s+PRIV_VFS_CHOWN\s+allow \(default\) → deny \(default\)\s+WOULD DENY/);
      assert.match(r.out, /run r3\s+seq 1\s+\/usr\/sbin\/caddy.*allow \(web\) → deny \(default\)/);
      assert.match(r.out, /replayed 7 decisions .* 3 allowed before would now be denied/);
    });
    it('exits 0 when nothing allowed would be denied (the same runs under a policy that covers them)', () => {
      const r = run('audit', 'replay', '--policy', file('ping2.yaml', PING), '--run', 'r2', '--json');
      assert.equal(r.code, 0, r.err);
      const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(lines.length, 1);
      assert.equal(lines[0].kind, 'summary');
      assert.equal(lines[0].decisions, 2);
      assert.equal(lines[0].regressions, 0);
    });
    it('exits 2 on bad input', () => {
      assert.equal(run('audit', 'replay', '--policy', join(home, 'nope.yaml')).code, 2);
      assert.equal(run('audit', 'replay', '--policy', file('bad.yaml', 'kind: [')).code, 2);
      assert.equal(run('audit', 'replay', '--policy', join(home, 'ping.yaml'), '--run', 'r1', '--since', '1h').code, 2);
      assert.equal(run('audit', 'replay', '--policy', join(home, 'ping.yaml'), '--run', 'nope').code, 2);
    });
  });

  describe('policy suggest → lint → replay', () => {
    it('suggests a policy that lints clean and replays over its runs with exit 0, and is least privilege for others', () => {
      const s = run('policy', 'suggest', '--run', 'r1', 'r2');
      assert.equal(s.code, 0, s.err);
      assert.match(s.out, /# PRIV_VFS_CHOWN \(CAP_CHOWN\): 1 use via chown by \/usr\/bin\/install/);
      assert.equal((s.out.match(/^ {2}- id:/gm) ?? []).length, 3);
      const p = file('suggested.yaml', s.out);
      const lint = run('policy', 'lint', p);
      assert.equal(lint.code, 0, lint.out + lint.err);
      assert.doesNotMatch(lint.out, /warning/);
      const replay = run('audit', 'replay', '--policy', p, '--run', 'r1', 'r2');
      assert.equal(replay.code, 0, replay.out + replay.err);
      // r3's program (caddy) is not in the suggestion: replaying it fails, so the suggestion is exe-scoped.
      assert.equal(run('audit', 'replay', '--policy', p, '--run', 'r3').code, 1);
    });
  });

  describe('policy publish', () => {
    it('records new versions, skips identical content, and resolves name and name@version', async () => {
      const p = file('ping-pub.yaml', PING);
      assert.match(run('policy', 'publish', p).out, /published ping@1/);
      assert.match(run('policy', 'publish', p).out, /unchanged: ping@1/);
      const p2 = file('ping-pub2.yaml', PING.replace('ping only', 'ping only (v2)'));
      assert.match(run('policy', 'publish', p2).out, /published ping@2/);
      const store = SqliteEventStore.open(join(home, 'events.db'));
      try {
        assert.equal((await resolvePolicy(store, 'ping')).version, 2);
        assert.match((await resolvePolicy(store, 'ping@1')).yaml, /ping only/);
        await assert.rejects(resolvePolicy(store, 'ping@3'), /no version 3/);
      } finally {
        await store.close();
      }
    });
  });

  describe('audit verify and rebuild', () => {
    it('rebuild gives the same read models; verify exits 0, then 1 naming the first bad position after tampering', async () => {
      let store = SqliteEventStore.open(join(home, 'events.db'));
      const before = new ReadModelProjector(store);
      before.catchUp();
      const liveDump = before.dump();
      await store.close();
      assert.equal(run('audit', 'rebuild').code, 0);
      store = SqliteEventStore.open(join(home, 'events.db'));
      assert.deepEqual(new ReadModelProjector(store).dump(), liveDump);
      const ok = run('audit', 'verify');
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /^ok: \d+ events/);
      store.db.exec(`UPDATE commits SET events = replace(events, '"port":443', '"port":444') WHERE stream_id = 'run-r3'`);
      await store.close();
      const bad = run('audit', 'verify');
      assert.equal(bad.code, 1);
      assert.match(bad.err, /verify failed at position 15: hash mismatch/);
    });
  });
});
