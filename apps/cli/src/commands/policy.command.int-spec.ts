import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureImages } from '../../../../test/fixtures/images';

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'bin', 'capulator'))) dir = join(dir, '..');
  return dir;
}
const ROOT = repoRoot();
const EX = (n: string) => join(ROOT, 'examples', 'policies', n);

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'capulator'), 'policy', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('capulator policy', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-policy-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('when linting valid policies', () => {
    it('exits 0 and says ok for each file', () => {
      const r = cli('lint', EX('ping.yaml'), EX('web.yaml'));
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /ping\.yaml: ok \(2 rules/);
      assert.match(r.out, /web\.yaml: ok \(4 rules/);
    });
  });

  describe('when linting a policy with errors', () => {
    it('exits 1 and prints file:line:col lines', () => {
      const f = join(dir, 'bad.yaml');
      writeFileSync(f, 'apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: bad}\nrules:\n  - id: r\n    privileges: [PRIV_NETINET_RAWW]\n    action: allow\n');
      const r = cli('lint', f);
      assert.equal(r.code, 1);
      assert.equal(r.out.trim(), `${f}:6:18: error: unknown privilege "PRIV_NETINET_RAWW"; did you mean PRIV_NETINET_RAW? [UNKNOWN_PRIVILEGE]`);
      const j = cli('lint', '--json', f);
      assert.equal(j.code, 1);
      const parsed = JSON.parse(j.out);
      assert.equal(parsed[0].valid, false);
      assert.deepEqual(parsed[0].errors[0].location, { file: f, line: 6, col: 18 });
    });
    it('exits 2 when the file cannot be read', () => {
      const r = cli('lint', join(dir, 'missing.yaml'));
      assert.equal(r.code, 2);
      assert.match(r.err, /cannot read .*missing\.yaml: no such file or directory/);
    });
  });

  describe('when evaluating a request', () => {
    it('prints the decision object', () => {
      const r = cli('eval', EX('ping.yaml'), '--request', JSON.stringify({ syscall: 'socket', args: { family: 'AF_INET', type: 'SOCK_RAW', protocol: 1 }, exe: '/usr/bin/ping', uid: 0 }));
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), { decision: 'allow', ruleId: 'ping-raw', privileges: ['PRIV_NETINET_RAW'], capability: 'CAP_NET_RAW', audit: true });
    });
    it('exits 2 on a request that is not JSON, or names an unknown privilege', () => {
      assert.equal(cli('eval', EX('ping.yaml'), '--request', '{nope').code, 2);
      const r = cli('eval', EX('ping.yaml'), '--request', '{"privilege":"PRIV_NETINET_RAWW"}');
      assert.equal(r.code, 2);
      assert.match(r.err, /did you mean PRIV_NETINET_RAW\?/);
    });
  });

  describe('when computing capability sets', () => {
    it('prints the five sets and provenance as JSON', () => {
      const r = cli('caps', EX('web.yaml'), '--uid', '0', '--json');
      assert.equal(r.code, 0, r.err);
      const j = JSON.parse(r.out);
      assert.deepEqual(j.effective, ['CAP_CHOWN', 'CAP_SETGID', 'CAP_SETUID', 'CAP_NET_BIND_SERVICE']);
      assert.deepEqual(j.ambient, []);
      assert.deepEqual(j.provenance.CAP_NET_BIND_SERVICE.map((g: { ruleId: string }) => g.ruleId), ['web-ports']);
    });
    it('gives a non-root container its grants in ambient, and a per-program grant only to that program', () => {
      const web = JSON.parse(cli('caps', EX('web.yaml'), '--uid', '1000', '--json').out);
      assert.deepEqual(web.ambient, web.permitted);
      assert.deepEqual(web.inheritable, web.permitted);
      assert.equal(web.noNewPrivileges, true);
      const ping = JSON.parse(cli('caps', EX('ping.yaml'), '--uid', '0', '--json').out);
      assert.deepEqual([ping.bounding, ping.permitted, ping.ambient, ping.securebits, ping.noNewPrivileges], [['CAP_NET_RAW'], [], [], ['noroot', 'noroot_locked'], false]);
      assert.deepEqual(ping.programs, [{ ruleId: 'ping-raw', exe: ['/usr/bin/ping', '/bin/ping'], capabilities: ['CAP_NET_RAW'], privileges: ['PRIV_NETINET_RAW'] }]);
      const prog = JSON.parse(cli('caps', EX('ping.yaml'), '--uid', '0', '--exe', '/bin/ping', '--json').out);
      assert.deepEqual([prog.permitted, prog.effective, prog.fileCapabilities], [['CAP_NET_RAW'], ['CAP_NET_RAW'], ['CAP_NET_RAW']]);
    });
  });

  describe('when asking which layer enforces each rule', () => {
    it('lint names the layer per rule, in text and as structured JSON', () => {
      const r = cli('lint', EX('ping.yaml'));
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /rule ping-raw \(allow\): kernel \(file capability on \/usr\/bin\/ping, \/bin\/ping\)/);
      assert.match(r.out, /rule recverr-is-a-no-op \(emulate\): agent \(emulate\)/);
      const j = JSON.parse(cli('lint', '--json', EX('web.yaml')).out);
      const webPorts = j[0].enforcement.find((e: { ruleId: string }) => e.ruleId === 'web-ports');
      assert.deepEqual(webPorts.enforcedBy.map((e: { layer: string; detail: string[] }) => [e.layer, e.detail]), [['kernel-sets', []], ['agent-refine', ['port']]]);
      const x = JSON.parse(cli('explain', EX('ping.yaml'), '--json').out);
      assert.equal(x.policy.rules[0].enforcedBy[0].layer, 'kernel-file-capability');
    });
    it('lint --image warns about an exe glob that names no regular file of the image (the fixture has /bin/ping, not /usr/bin/ping)', () => {
      const j = cli('lint', '--json', EX('ping.yaml'), '--image', fixtureImages().rootfs);
      assert.equal(j.code, 0, j.err);
      const w = JSON.parse(j.out)[0].warnings as Array<{ code: string; location: { line: number; col: number }; message: string }>;
      assert.deepEqual(w.map((x) => [x.code, x.location.line, x.location.col]), [['EXE_NOT_IN_IMAGE', 14, 5]]);
      assert.match(w[0].message, /\/usr\/bin\/ping/);
      const bad = cli('lint', EX('ping.yaml'), '--image', join(dir, 'no-such-dir/'));
      assert.equal(bad.code, 2);
    });
  });

  describe('when compiling', () => {
    it('writes the table to -o', () => {
      const out = join(dir, 'ping.captable');
      const r = cli('compile', EX('ping.yaml'), '-o', out);
      assert.equal(r.code, 0, r.err);
      const text = readFileSync(out, 'utf8');
      assert.match(text, /^CAPTABLE 1\npolicy ping /);
      assert.match(text, /\nend [0-9a-f]{64}\n$/);
    });
  });

  describe('when explaining a capability', () => {
    it('names the deciding rules, the decision for the subject and the untrapped riders', () => {
      const r = cli('explain', EX('ping.yaml'), '--cap', 'NET_RAW', '--exe', '/bin/ping', '--uid', '0');
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /PRIV_NETINET_RAW \(CAP_NET_RAW\):\n  rule ping-raw: allow when exe \/usr\/bin\/ping\|\/bin\/ping/);
      assert.match(r.out, /for exe=\/bin\/ping uid=0: allow by rule ping-raw/);
      assert.match(r.out, /untrapped operations that ride along/);
    });
  });

  describe('when asked for the schema', () => {
    it('prints a JSON Schema', () => {
      const r = cli('schema');
      assert.equal(r.code, 0);
      const s = JSON.parse(r.out);
      assert.equal(s.properties.apiVersion.const, 'capulator/v1');
      assert.ok(s.properties.rules.items.properties.when.properties.port);
    });
  });
});
