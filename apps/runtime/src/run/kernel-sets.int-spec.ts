import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capabilitySets, compileForContainer, load, type CapabilitySetsResult, type Policy } from '@capulator/policy';
import { fixtureImages } from '../../../../test/fixtures/images';
import { agentBinary } from './agent-process';
import { kernelSetsTool, runcCommand } from './file-caps';
import { buildOciSpec } from './oci-spec';
import { buildSeccompProfile } from './seccomp-profile';
import { Runner, type RunResult } from './runner';

/**
 * The sets the kernel enforces (DESIGN.md decision model, layer 1), tried side by side: the same
 * program under capulator and under plain runc given the sets `policy caps` computes (no seccomp
 * filter, no agent), for uid 0 and uid 1000, and per-program grants as file capabilities.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const RUNC_ROOT = '/run/capulator/runc';
const PING = readFileSync(join(repo, 'examples/policies/ping.yaml'), 'utf8');
const policy = (rules: string) => `
apiVersion: capulator/v1
kind: Policy
metadata: { name: sets }
defaults: { action: deny, audit: all }
rules:
${rules}`;
const LOW_PORTS_1000 = policy(`  - id: low-ports\n    match: { uid: 1000 }\n    privileges: [PRIV_NETINET_RESERVEDPORT]\n    action: allow\n`);
const PING_AND_CHOWN = PING.replace('rules:', 'rules:\n  - id: chown\n    capabilities: [CAP_CHOWN]\n    action: allow');
const SOME = policy(`  - id: some\n    capabilities: [CAP_NET_BIND_SERVICE, CAP_CHOWN, CAP_KILL]\n    action: allow\n`);

function parse(text: string): Policy {
  const l = load(text, 'test.yaml');
  assert.deepEqual(l.errors, [], JSON.stringify(l.errors));
  return l.policy!;
}

let home: string;
let rootfs: string;
let helperDir: string;
let runner: Runner;
let seq = 0;

async function capulator(p: Policy, uid: number, command: string[], keep = false): Promise<{ result: RunResult; caps: CapabilitySetsResult; id: string }> {
  const caps = capabilitySets(p, { uid, gid: uid });
  const id = `ks${process.pid}-${++seq}`;
  const result = await runner.run({
    id,
    image: { ref: 'fixture', layers: [rootfs], config: { User: String(uid) } },
    command,
    mounts: [{ source: helperDir, destination: '/t', readonly: true }],
    table: compileForContainer(p, {}),
    capabilities: caps.sets,
    kernelSets: caps,
    stdio: 'pipe',
    keep,
  });
  return { result, caps, id };
}

/** Plain runc, no seccomp filter and no agent, with `sets` (read-only root: the fixture is shared). */
function plainRunc(sets: CapabilitySetsResult, uid: number, command: string[]): { stdout: string; stderr: string; status: number | null } {
  const id = `ks-plain${process.pid}-${++seq}`;
  const dir = join(home, id);
  mkdirSync(dir);
  const spec = buildOciSpec({
    rootfs,
    args: command,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    cwd: '/',
    uid,
    gid: uid,
    hostname: id,
    capabilities: sets.sets,
    noNewPrivileges: sets.noNewPrivileges,
    seccomp: buildSeccompProfile('/unused'),
    mounts: [{ source: helperDir, destination: '/t', readonly: true }],
  }) as { root: { readonly: boolean }; linux: Record<string, unknown> };
  spec.root.readonly = true;
  delete spec.linux.seccomp;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  const cmd = runcCommand('runc', ['--root', RUNC_ROOT, 'run', '--bundle', dir, `capulator-${id}`], sets, kernelSetsTool(agentBinary(repo)));
  const r = spawnSync(cmd.command, cmd.args, { encoding: 'utf8', timeout: 60_000 });
  rmSync(dir, { recursive: true, force: true });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const lower = (l: string[]) => l.map((c) => c.toLowerCase()).join(',');
/** What `capsh --print` shows for the computed sets (capsh's cap_to_text for these shapes). */
function expectedCapsh(s: CapabilitySetsResult['sets'], securebits: string[], nnp: boolean): Record<string, string> {
  let current: string;
  if (s.permitted.length === 0 && s.inheritable.length === 0) current = '=';
  else if (s.inheritable.length === 0) current = `${lower(s.effective)}=ep`;
  else {
    assert.deepEqual([s.inheritable, s.effective], [s.permitted, s.permitted], 'only e=p=i or i empty are spelled here');
    current = `${lower(s.permitted)}=eip`;
  }
  const bits = (securebits.includes('noroot') ? 1 : 0) | (securebits.includes('noroot_locked') ? 2 : 0);
  return { Current: current, 'Bounding set': lower(s.bounding), 'Ambient set': lower(s.ambient), Securebits: `${bits}/${nnp ? 1 : 0}` };
}
function parseCapsh(out: string): Record<string, string> {
  const line = (k: string) => new RegExp(`^${k}[:]? ?=?(.*)$`, 'm').exec(out)?.[1]?.trim() ?? `(no ${k} line)`;
  const sb = /^Securebits: [0-9a-f]+\/0x([0-9a-f]+)\/\S+ \(no-new-privs=(\d)\)/m.exec(out);
  return {
    Current: /^Current: (.*)$/m.exec(out)?.[1] ?? '(none)',
    'Bounding set': line('Bounding set'),
    'Ambient set': line('Ambient set'),
    Securebits: sb ? `${parseInt(sb[1], 16)}/${sb[2]}` : '(no Securebits line)',
  };
}

describe('sets the kernel enforces (capsh, file capabilities, non-root grants)', () => {
  before(() => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-sets-'));
    helperDir = join(home, 'helper');
    mkdirSync(helperDir);
    const cc = spawnSync('gcc', ['-O2', '-static', '-o', join(helperDir, 'caphelper'), join(repo, 'test/fixtures/run/caphelper.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    runner = new Runner({ home, repo });
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  for (const [name, text] of [['container-wide grants', SOME], ['ping.yaml (a per-program grant)', PING], ['ping.yaml and a container-wide grant', PING_AND_CHOWN], ['a grant to uid 1000', LOW_PORTS_1000]] as const) {
    for (const uid of [0, 1000]) {
      describe(`when capsh --print runs as uid ${uid} under ${name}`, () => {
        it('shows what `policy caps` computes, and what plain runc shows with the same sets', async () => {
          const p = parse(text);
          const { result, caps } = await capulator(p, uid, ['/sbin/capsh', '--print']);
          assert.equal(result.exitCode, 0, result.stderr);
          const got = parseCapsh(result.stdout!);
          assert.deepEqual(got, expectedCapsh(caps.sets, caps.securebits, caps.noNewPrivileges));
          assert.match(result.stdout!, new RegExp(`^uid=${uid}\\(`, 'm'));
          const plain = plainRunc(caps, uid, ['/sbin/capsh', '--print']);
          assert.equal(plain.status, 0, plain.stderr);
          assert.equal(result.stdout, plain.stdout);
        });
      });
    }
  }

  describe('when ping.yaml gives CAP_NET_RAW to ping only', () => {
    it('ping works through its file capability, another program is refused by the kernel, and the image layer is untouched', async () => {
      const before = statSync(join(rootfs, 'bin/ping'));
      const p = parse(PING);
      const script = [
        '/bin/ping -c1 -W2 127.0.0.1 >/dev/null 2>&1; echo ping=$?',
        'busybox ping -c1 -W1 127.0.0.1 >/dev/null 2>/tmp/bb; echo busybox=$?; cat /tmp/bb',
        '/sbin/getcap /bin/ping',
        'ls -l /bin/ping | cut -c1-10',
        'grep CapEff /proc/self/status',
      ].join('; ');
      for (const uid of [0, 1000]) {
        const { result } = await capulator(p, uid, ['/bin/sh', '-c', script]);
        assert.equal(result.exitCode, 0, result.stderr);
        const out = result.stdout!;
        assert.match(out, /^ping=0$/m, `uid ${uid}: ${out}`);
        assert.match(out, /^busybox=1$/m, `uid ${uid}: ${out}`);
        assert.match(out, /permission denied/, `uid ${uid}: ${out}`); // busybox's own message for EPERM from socket()
        assert.match(out, /^\/bin\/ping cap_net_raw=ep$/m);
        assert.match(out, /^-rwxr-xr-x$/m, 'the set-user-ID bit is cleared in the run\'s view');
        assert.match(out, /^CapEff:\s+0+$/m, 'the shell holds nothing');
      }
      // the same sets under plain runc (no seccomp filter, no agent): the kernel alone refuses busybox the same way
      const bb = plainRunc(capabilitySets(p, { uid: 0, gid: 0 }), 0, ['/bin/sh', '-c', 'busybox ping -c1 -W1 127.0.0.1 2>&1 >/dev/null; echo busybox=$?']);
      assert.equal(bb.status, 0, bb.stderr);
      assert.match(bb.stdout, /^busybox=1$/m);
      assert.match(bb.stdout, /permission denied/);
      // without SECBIT_NOROOT, root would get the bounding set (CAP_NET_RAW included) at every execve
      const withoutNoroot = plainRunc({ ...capabilitySets(p, { uid: 0, gid: 0 }), securebits: [] }, 0, ['/bin/sh', '-c', 'busybox ping -c1 -W1 127.0.0.1 2>&1 >/dev/null; echo busybox=$?']);
      assert.match(withoutNoroot.stdout, /^busybox=0$/m, withoutNoroot.stderr);
      const after = statSync(join(rootfs, 'bin/ping'));
      assert.equal(after.mode, before.mode, 'the shared layer keeps its set-user-ID bit');
      assert.equal(after.mode & 0o4000, 0o4000);
      assert.equal(after.ctimeMs, before.ctimeMs, 'the shared layer was not written');
    });
  });

  describe('when a rule grants CAP_NET_BIND_SERVICE to uid 1000', () => {
    it('a non-root program binds port 80, as under plain runc with the same sets; without the ambient set the kernel refuses', async () => {
      const p = parse(LOW_PORTS_1000);
      const { result, caps } = await capulator(p, 1000, ['/t/caphelper', 'bind', '80']);
      assert.equal(result.stdout!.trim(), 'bound 80', result.stderr);
      assert.deepEqual(caps.sets.ambient, ['CAP_NET_BIND_SERVICE']);
      const plain = plainRunc(caps, 1000, ['/t/caphelper', 'bind', '80']);
      assert.equal(plain.stdout.trim(), 'bound 80', plain.stderr);
      // the sets `policy caps` used to claim (permitted/effective, no ambient): the kernel drops them at execve
      const noAmbient = { ...caps, sets: { ...caps.sets, inheritable: [], ambient: [] } };
      const refused = plainRunc(noAmbient, 1000, ['/t/caphelper', 'bind', '80']);
      assert.equal(refused.stdout.trim(), 'bind: errno=13 (Permission denied)');
    });
  });
});
