import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capabilitySets, compileForContainer, load, type Policy } from '@capulator/policy';
import { fixtureImages } from '../../../../test/fixtures/images';
import type { DecisionPayload } from '@capulator/events';
import { readCountFile, type AgentDecision } from './agent-process';
import { buildOciSpec } from './oci-spec';
import { hostBoundingSet, limitToHost, Runner, type RunResult } from './runner';
import { buildSeccompProfile } from './seccomp-profile';

/** Real runc, real agent, the busybox-ping fixture rootfs (test/fixtures/images). */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const RUNC_ROOT = '/run/capulator/runc';

const PING = readFileSync(join(repo, 'examples/policies/ping.yaml'), 'utf8');
// examples/policies/web.yaml audits denials only; record everything here
const WEB = readFileSync(join(repo, 'examples/policies/web.yaml'), 'utf8').replace('audit: denials', 'audit: all');
const DENY_ALL = `
apiVersion: capulator/v1
kind: Policy
metadata: { name: nothing }
defaults: { action: deny, audit: all }
rules: []
`;
const policy = (rules: string, name = 't') => `
apiVersion: capulator/v1
kind: Policy
metadata: { name: ${name} }
defaults: { action: deny, audit: all }
rules:
${rules}`;
// CAP_NET_RAW is in the container's sets but granted to another program: the agent decides ping's raw socket
const RAW_ELSEWHERE = policy(`  - id: other\n    match: { exe: [/usr/bin/ping] }\n    capabilities: [CAP_NET_RAW]\n    action: allow\n`);

function parse(text: string): Policy {
  const l = load(text, 'test.yaml');
  assert.deepEqual(l.errors, [], JSON.stringify(l.errors));
  return l.policy!;
}

let home: string;
let rootfs: string;
let helperDir: string;
/** An image layer with /opt/{killer,mounter}: the bypass program under names that rules grant capabilities to. */
let toolLayer: string;
let runner: Runner;
let seq = 0;

interface Ran {
  result: RunResult;
  events: DecisionPayload[];
  sets: ReturnType<typeof capabilitySets>['sets'];
}

async function run(
  policyText: string,
  command: string[],
  opts: {
    learn?: boolean;
    onStarted?: (i: { containerId: string; agentPid: number; pid: number; exitWatch?: string }) => void;
    onEvent?: (e: DecisionPayload) => void;
    id?: string;
    user?: string;
    mounts?: Array<{ source: string; destination: string; readonly: boolean }>;
  } = {},
): Promise<Ran> {
  const p = parse(policyText);
  const pol = opts.learn ? { ...p, learn: true } : p;
  const table = compileForContainer(pol, {});
  const uid = opts.user ? Number(opts.user) : 0;
  const caps = capabilitySets(pol, { uid, gid: uid });
  const sets = caps.sets;
  const events: DecisionPayload[] = [];
  const result = await runner.run({
    id: opts.id ?? `t${process.pid}-${++seq}`,
    image: { ref: 'fixture', layers: [rootfs, toolLayer], config: opts.user ? { User: opts.user } : {} },
    command,
    mounts: [{ source: helperDir, destination: '/t', readonly: true }, ...(opts.mounts ?? [])],
    table,
    capabilities: sets,
    kernelSets: caps,
    learn: opts.learn,
    stdio: 'pipe',
    // the agent's decisions; the kernel record's rows are tested in apps/cli/src/commands/kernel-record.int-spec.ts
    onDecision: (d) => {
      if (d.payload.source === 'kernel') return;
      events.push(d.payload);
      opts.onEvent?.(d.payload);
    },
    onStarted: opts.onStarted,
  });
  return { result, events, sets };
}

/** The sets and kernel-side grants a run of policy `p` starts with (as `capulator run` computes them). */
function startOf(p: Policy, uid = 0) {
  const c = capabilitySets(p, { uid, gid: uid });
  return { capabilities: c.sets, kernelSets: c };
}

const of = (events: DecisionPayload[], syscall: string) => events.filter((e) => e.syscall === syscall);

/** Waits (≤ 10 s) until the container's init has exec'd the program (runc's setup is over). */
function waitForExec(pid: number, program: string): void {
  const until = Date.now() + 10000;
  while (Date.now() < until) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`).endsWith(program)) return;
    } catch {
      // not yet
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}

/**
 * The same bundle under plain runc: the fixture rootfs (a private copy), the same mounts and
 * hook, the given capability sets, no seccomp filter and no agent — Linux's own behaviour.
 */
function plainRunc(command: string[], sets: Ran['sets'], opts: { uid?: number } = {}): { stdout: string; stderr: string; status: number | null } {
  const dir = mkdtempSync(join(home, 'plain-'));
  const root = join(dir, 'rootfs');
  const cp = spawnSync('cp', ['-a', rootfs, root]);
  assert.equal(cp.status, 0);
  assert.equal(spawnSync('cp', ['-a', join(toolLayer, 'opt'), root]).status, 0);
  const uid = opts.uid ?? 0;
  const spec = buildOciSpec({
    rootfs: root,
    args: command,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    cwd: '/',
    uid,
    gid: uid,
    hostname: 'plain',
    capabilities: limitToHost(sets, hostBoundingSet()).sets,
    seccomp: buildSeccompProfile('/nonexistent'),
    mounts: [{ source: helperDir, destination: '/t', readonly: true }],
  }) as { linux: Record<string, unknown> };
  delete spec.linux.seccomp;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  const r = spawnSync('runc', ['--root', RUNC_ROOT, 'run', '--bundle', dir, `plain${process.pid}-${++seq}`], { encoding: 'utf8', timeout: 60000 });
  rmSync(dir, { recursive: true, force: true });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}
/** Sets with some capabilities added everywhere: what every program would hold if a per-program grant were container-wide. */
function withCaps(sets: Ran['sets'], caps: string[]): Ran['sets'] {
  const f = (l: string[]) => [...new Set([...l, ...caps])];
  return { bounding: f(sets.bounding), effective: f(sets.effective), permitted: f(sets.permitted), inheritable: sets.inheritable, ambient: sets.ambient };
}
/** Sets without some capabilities: what a program the policy does not grant them to holds. */
function without(sets: Ran['sets'], caps: string[]): Ran['sets'] {
  const f = (l: string[]) => l.filter((c) => !caps.includes(c));
  return { bounding: f(sets.bounding), effective: f(sets.effective), permitted: f(sets.permitted), inheritable: f(sets.inheritable), ambient: f(sets.ambient) };
}

describe('Runner (runc + capulator-agent)', () => {
  before(() => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-run-'));
    helperDir = join(home, 'helper');
    mkdirSync(helperDir);
    const cc = spawnSync('gcc', ['-O2', '-static', '-o', join(helperDir, 'caphelper'), join(repo, 'test/fixtures/run/caphelper.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const bp = spawnSync('gcc', ['-O2', '-Wall', '-static', '-o', join(helperDir, 'bypass'), join(repo, 'test/fixtures/run/bypass.c')], { encoding: 'utf8' });
    assert.equal(bp.status, 0, bp.stderr);
    // the same program under other names, in an image layer, for rules that grant a capability to one program only
    toolLayer = join(home, 'tools');
    mkdirSync(join(toolLayer, 'opt'), { recursive: true });
    for (const n of ['killer', 'mounter']) copyFileSync(join(helperDir, 'bypass'), join(toolLayer, 'opt', n));
    runner = new Runner({ home, repo });
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('when the policy allows PRIV_NETINET_RAW for ping', () => {
    it('ping works and the raw socket, capget and capset are recorded with the rule id', async () => {
      const { result, events } = await run(PING, ['/bin/ping', '-c1', '127.0.0.1']);
      assert.equal(result.status, 'exited', JSON.stringify(result));
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout!, /1 packets transmitted, 1 received/);
      const raw = of(events, 'socket').find((e) => e.args.type === 'SOCK_RAW' && e.args.family === 'AF_INET');
      assert.ok(raw, 'no raw socket event');
      assert.equal(raw.decision, 'allow');
      assert.equal(raw.ruleId, 'ping-raw');
      assert.deepEqual(raw.privileges, ['PRIV_NETINET_RAW']);
      assert.equal(raw.answeredBy, 'continue');
      assert.equal(raw.subject.exe, '/bin/ping');
      assert.ok(of(events, 'capget').length > 0, 'no capget event');
      assert.ok(of(events, 'capset').length > 0, 'no capset event');
      const recverr = of(events, 'setsockopt').find((e) => e.args.option === 'IP_RECVERR');
      assert.equal(recverr?.decision, 'emulate');
      assert.equal(recverr?.answeredBy, 'emulated');
      assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), 'seq must be 1, 2, 3, …');
      assert.equal(result.lostEvents, 0);
    });
  });

  describe('when a tid is reused by another process (clone3 set_tid)', () => {
    // the agent caches a thread's identity per tid; the first process (uid 1000) exits and a
    // second (uid 0) gets its tid: its call must be decided and recorded as uid 0's
    const TIDS = policy(
      `  - id: ids\n    capabilities: [CAP_SETUID, CAP_SETGID, CAP_CHECKPOINT_RESTORE]\n    action: allow\n` +
        `  - id: reads\n    when: { syscall: capget }\n    action: allow\n`,
    );
    for (const watch of ['bpf', 'pidfd'] as const) {
      it(`the second process's call carries its own identity (exit watch: ${watch})`, async () => {
        const saved = process.env.CAPULATOR_AGENT_EXIT_WATCH;
        if (watch === 'pidfd') process.env.CAPULATOR_AGENT_EXIT_WATCH = 'pidfd';
        else delete process.env.CAPULATOR_AGENT_EXIT_WATCH;
        let used: string | undefined;
        try {
          // the helper waits for the first process's host tid, which only its decision tells
          const shared = mkdtempSync(join(home, 'tids-'));
          const { result, events } = await run(TIDS, ['/t/caphelper', 'tidreuse', '/s/host-tid'], {
            mounts: [{ source: shared, destination: '/s', readonly: false }],
            onStarted: (i) => (used = i.exitWatch),
            onEvent: (e) => (e.syscall === 'capget' && e.subject.uid === 1000 ? writeFileSync(join(shared, 'host-tid'), `${e.subject.tid}\n`) : undefined),
          });
          assert.equal(result.exitCode, 0, `${result.stdout}${result.stderr}`);
          const m = /tids (\d+) (\d+)/.exec(result.stdout ?? '');
          assert.ok(m && m[1] === m[2], `the tid was not reused: ${result.stdout}`);
          const calls = of(events, 'capget');
          assert.equal(calls.length, 2, JSON.stringify(calls.map((e) => e.subject)));
          assert.equal(calls[0].subject.tid, calls[1].subject.tid);
          assert.deepEqual(calls.map((e) => e.subject.uid), [1000, 0]);
          assert.equal(used, watch);
        } finally {
          if (saved === undefined) delete process.env.CAPULATOR_AGENT_EXIT_WATCH;
          else process.env.CAPULATOR_AGENT_EXIT_WATCH = saved;
        }
      });
    }
  });

  describe('the decision records the agent writes', () => {
    it('carry the event type, run id, policy version and time, and count as their outcome', async () => {
      const p = parse(PING);
      const table = compileForContainer(p, {});
      const got: AgentDecision[] = [];
      const before = Date.now();
      const id = `rec${process.pid}`;
      const result = await runner.run({
        id,
        image: { ref: 'fixture', layers: [rootfs], config: {} },
        command: ['/bin/ping', '-c1', '127.0.0.1'],
        table,
        policy: { name: 'ping-test', version: 7, hash: table.hash },
        ...startOf(p),
        stdio: 'pipe',
        onDecision: (d) => got.push(d),
      });
      assert.equal(result.exitCode, 0, result.stderr);
      const types = (s: string) => got.filter((d) => d.payload.syscall === s && d.payload.source !== 'kernel').map((d) => d.type);
      assert.ok(types('capget').length > 0 && types('capget').every((t) => t === 'CapabilitiesQueried'));
      assert.ok(types('capset').length > 0 && types('capset').every((t) => t === 'CapabilitiesChangeRequested'));
      assert.deepEqual([...new Set(types('socket'))], ['PrivilegeChecked']);
      for (const d of got) {
        const payload = JSON.parse(d.payloadText) as DecisionPayload;
        assert.equal(payload.runId, id);
        assert.deepEqual(payload.policy, { name: 'ping-test', version: 7, hash: table.hash });
        assert.equal(payload.at, d.at);
        assert.equal(new Date(d.at).toISOString(), d.at);
        assert.ok(Date.parse(d.at) >= before - 1000 && Date.parse(d.at) <= Date.now() + 1000, d.at);
        // the kernel record's rows count as no outcome (they are not the agent's decisions)
        assert.equal(d.count, payload.source === 'kernel' ? null : payload.decision);
      }
      const allowed = got.filter((d) => d.count === 'allow').length;
      assert.equal(result.counts.allow, allowed);
    });
  });

  describe('when the program has a hostile name', () => {
    it('the decision payloads are still valid JSON, with every byte outside printable ASCII escaped', async () => {
      const name = 'we"ird\\ \n\t\u00e9\u0001.bin';
      const dir = mkdtempSync(join(home, 'names-'));
      copyFileSync(join(helperDir, 'caphelper'), join(dir, name));
      chmodSync(join(dir, name), 0o755);
      const p = parse(DENY_ALL);
      const table = compileForContainer(p, {});
      const got: AgentDecision[] = [];
      const result = await runner.run({
        id: `name${process.pid}`,
        image: { ref: 'fixture', layers: [rootfs], config: {} },
        command: [`/n/${name}`, 'capget', '3'],
        mounts: [{ source: dir, destination: '/n', readonly: true }],
        table,
        capabilities: capabilitySets(p, { uid: 0, gid: 0 }).sets,
        stdio: 'pipe',
        onDecision: (d) => got.push(d),
      });
      assert.equal(result.exitCode, 0, result.stderr);
      const capgets = got.filter((d) => d.payload.syscall === 'capget');
      assert.equal(capgets.length, 3);
      // UTF-8 é is two bytes, each written as \u00XX (the agent escapes bytes, not characters)
      const expected = '/n/' + Buffer.from(name, 'utf8').toString('latin1');
      for (const d of capgets) {
        assert.equal((JSON.parse(d.payloadText) as DecisionPayload).subject.exe, expected);
        assert.ok(!/[\u0000-\u001f\u007f-\uffff]/.test(d.payloadText), 'raw control or non-ASCII byte in the line');
      }
    });
  });

  describe('when the policy does not allow it', () => {
    it('ping fails with its own EPERM error: CAP_NET_RAW is not in the sets, so the kernel refuses it and nothing is trapped', async () => {
      const { result, events, sets } = await run(DENY_ALL, ['/bin/ping', '-c1', '127.0.0.1']);
      assert.equal(result.status, 'exited');
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr!, /Operation not permitted/);
      assert.ok(!sets.bounding.includes('CAP_NET_RAW'));
      assert.equal(of(events, 'socket').length, 0, 'a capability absent from the sets needs no trap');
    });
    it('when CAP_NET_RAW is granted to another program, the denial is recorded and the kernel refuses it (ping holds no CAP_NET_RAW)', async () => {
      const { result, events } = await run(RAW_ELSEWHERE, ['/bin/ping', '-c1', '127.0.0.1']);
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr!, /Operation not permitted/);
      const raw = of(events, 'socket').find((e) => e.args.type === 'SOCK_RAW');
      assert.equal(raw?.decision, 'deny');
      assert.equal(raw?.ruleId, null);
      assert.equal(raw?.answeredBy, 'kernel');
    });
    it('when CAP_NET_RAW is held but a rule keeps raw sockets to UDP, the agent refuses ICMP itself with EPERM', async () => {
      const text = policy(`  - id: udp-only\n    privileges: [PRIV_NETINET_RAW]\n    when: { protocol: 17 }\n    action: allow\n  - id: caps\n    capabilities: [CAP_NET_RAW]\n    action: allow\n    when: { syscall: setsockopt }\n`);
      const { result, events } = await run(text, ['/bin/ping', '-c1', '127.0.0.1']);
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr!, /Operation not permitted/);
      const raw = of(events, 'socket').find((e) => e.args.type === 'SOCK_RAW');
      assert.equal(raw?.decision, 'deny');
      assert.equal(raw?.errno, 1);
      assert.equal(raw?.answeredBy, 'errno');
    });
  });

  describe('when capsh --print runs inside', () => {
    it('shows exactly the capability sets computed from the policy', async () => {
      const text = policy(`  - id: some\n    capabilities: [CAP_NET_RAW, CAP_CHOWN, CAP_KILL]\n    action: allow\n`);
      const { result, sets } = await run(text, ['/sbin/capsh', '--print']);
      assert.equal(result.exitCode, 0, result.stderr);
      const names = (l: string[]) => l.map((c) => c.toLowerCase()).sort().join(',');
      const bounding = /^Bounding set =(.*)$/m.exec(result.stdout!)?.[1] ?? '';
      assert.equal(bounding.split(',').sort().join(','), names(sets.bounding));
      assert.deepEqual(names(sets.bounding), 'cap_chown,cap_kill,cap_net_raw');
      const current = /^Current: (.*)$/m.exec(result.stdout!)?.[1] ?? '';
      assert.equal(current, `${names(sets.effective)}=ep`);
    });
  });

  describe('when a rule emulates sethostname', () => {
    it('the call succeeds and the hostname is unchanged', async () => {
      const text = policy(`  - id: hostname-no-op\n    when: { syscall: sethostname }\n    action: emulate\n    return: 0\n`);
      const id = `emu${process.pid}`;
      const { result, events } = await run(text, ['/t/caphelper', 'sethostname', 'changed'], { id });
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout!.trim(), `sethostname=0 errno=0 hostname=${id}`);
      const e = of(events, 'sethostname')[0];
      assert.equal(e.decision, 'emulate');
      assert.equal(e.ruleId, 'hostname-no-op');
      assert.equal(e.args.hostname, 'changed');
    });
  });

  describe('when a rule denies with a named errno', () => {
    it('the call fails with that errno', async () => {
      const text = policy(`  - id: no-chown\n    privileges: [PRIV_VFS_CHOWN]\n    when: { syscall: chown }\n    action: deny\n    errno: EACCES\n  - id: caps\n    capabilities: [CAP_CHOWN]\n    action: allow\n`);
      const { result, events } = await run(text, ['/t/caphelper', 'chown', '/tmp', '1000', '1000']);
      assert.equal(result.stdout!.trim(), 'chown: errno=13 (Permission denied)');
      const e = of(events, 'chown')[0];
      assert.equal(e.ruleId, 'no-chown');
      assert.equal(e.errno, 13);
    });
  });

  describe('when an allow rests on a path the tracee could rewrite', () => {
    it('the agent cannot perform it in the container and refuses with EPERM (PROTOCOL.md)', async () => {
      const text = policy(`  - id: chown-tmp\n    privileges: [PRIV_VFS_CHOWN]\n    when: { path: "/tmp*" }\n    action: allow\n`);
      const { result, events } = await run(text, ['/t/caphelper', 'chown', '/tmp', '1000', '1000']);
      assert.equal(result.stdout!.trim(), 'chown: errno=1 (Operation not permitted)');
      const e = of(events, 'chown')[0];
      assert.equal(e.args.path, '/tmp');
      assert.equal(e.ruleId, 'chown-tmp');
      assert.equal(e.decision, 'allow');
      assert.equal(e.answeredBy, 'errno');
    });
  });

  describe('when running in learn mode', () => {
    it('allows and records everything', async () => {
      const { result, events } = await run(DENY_ALL, ['/bin/ping', '-c1', '127.0.0.1'], { learn: true });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.ok(events.length > 5);
      assert.ok(events.every((e) => e.learn === true && e.decision === 'allow'));
      assert.ok(of(events, 'socket').some((e) => e.args.type === 'SOCK_RAW'));
    });
  });

  describe('when a web policy allows port 80', () => {
    it('the agent performs bind(80) itself with the checked address', async () => {
      const { result, events } = await run(WEB, ['/t/caphelper', 'bind', '80']);
      assert.equal(result.stdout!.trim(), 'bound 80');
      const e = of(events, 'bind')[0];
      assert.equal(e.answeredBy, 'performed');
      assert.equal(e.ruleId, 'web-ports');
      assert.equal(e.args.port, 80);
    });
    it('another reserved port is refused with the rule errno', async () => {
      const { result, events } = await run(WEB, ['/t/caphelper', 'bind', '22']);
      assert.equal(result.stdout!.trim(), 'bind: errno=13 (Permission denied)');
      assert.equal(of(events, 'bind')[0].ruleId, 'no-other-ports');
    });
    it('an unprivileged port is bound by the agent too (the port is tracee memory)', async () => {
      const { result, events } = await run(WEB, ['/t/caphelper', 'bind', '8080']);
      assert.equal(result.stdout!.trim(), 'bound 8080');
      assert.equal(of(events, 'bind')[0].answeredBy, 'performed');
    });
    it("a 24-byte sockaddr_in6 (RFC 2133) is read too: port 22 refused, also for a caller without capabilities, whom the agent's own privilege never helps", async () => {
      const root = await run(WEB, ['/t/caphelper', 'bind6', '22', '24']);
      assert.equal(root.result.stdout!.trim(), 'bind: errno=13 (Permission denied)');
      const e = of(root.events, 'bind')[0];
      assert.deepEqual([e.args.port, e.ruleId, e.decision], [22, 'no-other-ports', 'deny']);
      // uid 1000, CapEff 0: the bind the agent performs is the caller's, judged without CAP_NET_BIND_SERVICE
      const user = await run(WEB, ['/t/caphelper', 'bind6', '22', '24', '1000']);
      assert.equal(user.result.stdout!.trim(), 'bind: errno=13 (Permission denied)');
      assert.equal(plainRunc(['/t/caphelper', 'bind6', '22', '24', '1000'], user.sets).stdout.trim(), 'bind: errno=13 (Permission denied)');
      const high = await run(WEB, ['/t/caphelper', 'bind6', '8080', '24', '1000']);
      assert.equal(high.result.stdout!.trim(), 'bound 8080');
      assert.equal(of(high.events, 'bind')[0].answeredBy, 'performed');
    });
    it("a refused reserved port fails with the kernel's earlier errors first, as plain runc gives them; an address longer than sockaddr_storage is EINVAL", async () => {
      for (const [args, want] of [
        [['22', '16', '192.0.2.1', '2'], 'bind: errno=99 (Cannot assign requested address)'],
        [['22', '16', '0.0.0.0', '10'], 'bind: errno=97 (Address family not supported by protocol)'],
        [['22', '200', '0.0.0.0', '2'], 'bind: errno=22 (Invalid argument)'],
        [['8080', '200', '0.0.0.0', '2'], 'bind: errno=22 (Invalid argument)'],
        [['22', '16', '0.0.0.0', '2'], 'bind: errno=13 (Permission denied)'],
      ] as const) {
        const { result, sets } = await run(WEB, ['/t/caphelper', 'bind4', ...args]);
        assert.equal(result.stdout!.trim(), want, args.join(' '));
        // plain runc holds CAP_NET_BIND_SERVICE (web.yaml refines it), so it binds the last one; the rest fail before the check
        if (want !== 'bind: errno=13 (Permission denied)') assert.equal(plainRunc(['/t/caphelper', 'bind4', ...args], sets).stdout.trim(), want, `plain runc: ${args.join(' ')}`);
      }
    });
    it('a rule refusing an unprivileged port is answered with its errno, never bound (also by a holder of CAP_NET_BIND_SERVICE)', async () => {
      const NO_8080 = WEB.replace('rules:\n', 'rules:\n  - id: no-8080\n    when: { syscall: bind, port: "8080" }\n    action: deny\n');
      assert.notEqual(NO_8080, WEB);
      const { result, events } = await run(NO_8080, ['/t/caphelper', 'bind', '8080']);
      assert.equal(result.stdout!.trim(), 'bind: errno=1 (Operation not permitted)');
      const e = of(events, 'bind')[0];
      assert.deepEqual([e.ruleId, e.decision, e.answeredBy], ['no-8080', 'deny', 'errno']);
    });
    it('without such a rule bind(80) fails as on Linux without CAP_NET_BIND_SERVICE: EACCES', async () => {
      const { result } = await run(DENY_ALL, ['/t/caphelper', 'bind', '80']);
      assert.equal(result.stdout!.trim(), 'bind: errno=13 (Permission denied)');
    });
  });

  describe('when a socket is not raw', () => {
    it('is not trapped: the seccomp argument filter lets AF_INET SOCK_STREAM through with no event', async () => {
      const { result, events } = await run(DENY_ALL, ['/t/caphelper', 'stream']);
      assert.equal(result.stdout!.trim(), 'stream ok');
      assert.equal(of(events, 'socket').length, 0);
    });
  });

  describe('when the agent is killed mid-run', () => {
    it('the run fails and the container is gone', async () => {
      let cid = '';
      const started = Date.now();
      const { result } = await run(PING, ['/t/caphelper', 'sleep', '30'], {
        onStarted: (i) => {
          cid = i.containerId;
          // once the program runs (its execve is trapped too: killing the agent before would make it fail to start)
          waitForExec(i.pid, 'caphelper');
          process.kill(i.agentPid, 'SIGKILL');
        },
      });
      assert.equal(result.status, 'failed');
      assert.equal(result.failure?.stage, 'agent');
      assert.ok(Date.now() - started < 20000, 'the container was not killed');
      const st = spawnSync('runc', ['--root', RUNC_ROOT, 'state', cid], { encoding: 'utf8' });
      assert.notEqual(st.status, 0, 'the container still exists');
    });
  });

  describe('when the runtime stops reading decisions for a while', () => {
    it('the container never waits and nothing is lost: the spool holds what the runtime has not read yet', async () => {
      // a small agent buffer, and a runtime that blocks its event loop on the first decision
      const small = new Runner({ home, repo, agentEventsBuffer: 128 * 1024 });
      const p = parse(DENY_ALL);
      const table = compileForContainer(p, {});
      const got: DecisionPayload[] = [];
      const t0 = Date.now();
      let exitedWhileBlocked = false;
      const result = await small.run({
        id: `gap${process.pid}`,
        image: { ref: 'fixture', layers: [rootfs], config: {} },
        command: ['/t/caphelper', 'capget', '20000'],
        mounts: [{ source: helperDir, destination: '/t', readonly: true }],
        table,
        capabilities: capabilitySets(p, { uid: 0, gid: 0 }).sets,
        stdio: 'pipe',
        onDecision: (d) => {
          if (got.length === 0) {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
            // the container went on while this process did not read
            const count = readCountFile(join(home, 'runs', `gap${process.pid}`, 'decisions.count'));
            exitedWhileBlocked = count !== undefined && count.decided > 1000;
          }
          got.push(d.payload);
        },
      });
      assert.equal(result.status, 'exited', JSON.stringify(result));
      assert.match(result.stdout!, /capget 20000\/20000/);
      assert.ok(exitedWhileBlocked, 'the agent kept deciding while the runtime was blocked');
      assert.equal(result.lostEvents, 0);
      assert.equal(got.length, result.events);
      for (let i = 0; i < got.length; i++) assert.equal(got[i].seq, i + 1);
      assert.ok(Date.now() - t0 < 60000);
    });
  });

  describe('when two runs happen at once', () => {
    it('each has its own agent and events', async () => {
      const [a, b] = await Promise.all([run(PING, ['/bin/ping', '-c1', '127.0.0.1']), run(RAW_ELSEWHERE, ['/bin/ping', '-c1', '127.0.0.1'])]);
      assert.equal(a.result.exitCode, 0);
      assert.notEqual(b.result.exitCode, 0);
      assert.equal(of(a.events, 'socket').find((e) => e.args.type === 'SOCK_RAW')?.decision, 'allow');
      assert.equal(of(b.events, 'socket').find((e) => e.args.type === 'SOCK_RAW')?.decision, 'deny');
    });
  });

  describe('when the program exits or is killed', () => {
    it('passes the exit code through', async () => {
      const { result } = await run(DENY_ALL, ['/bin/sh', '-c', 'exit 7']);
      assert.equal(result.status, 'exited');
      assert.equal(result.exitCode, 7);
    });
    it('reports a signal as 128+N', async () => {
      const { result } = await run(DENY_ALL, ['/t/caphelper', 'sleep', '30'], {
        onStarted: (i) => {
          waitForExec(i.pid, 'caphelper');
          spawnSync('runc', ['--root', RUNC_ROOT, 'kill', i.containerId, 'KILL']);
        },
      });
      assert.equal(result.exitCode, 137);
      assert.equal(result.signal, 'SIGKILL');
    });
  });

  describe('bypasses of a capability the policy refines (issue 15)', () => {
    it('io_uring cannot bind port 22 under web.yaml: the ring is refused and recorded (plain runc binds it)', async () => {
      const { result, events, sets } = await run(WEB, ['/t/bypass', 'uring-bind', '22']);
      assert.equal(result.stdout!.trim(), 'io_uring: errno=1 (Operation not permitted)');
      const e = of(events, 'io_uring_setup')[0];
      assert.equal(e?.decision, 'deny');
      assert.equal(e?.answeredBy, 'errno');
      const plain = plainRunc(['/t/bypass', 'uring-bind', '22'], sets);
      assert.equal(plain.stdout.trim(), 'bound 22 through io_uring', 'without the agent the bypass exists');
    });
    it('under ping.yaml a program other than ping gets no raw socket through io_uring, and no SOCK_PACKET socket', async () => {
      const uring = await run(PING, ['/t/bypass', 'uring-raw']);
      assert.equal(uring.result.stdout!.trim(), 'io_uring: errno=1 (Operation not permitted)');
      assert.equal(of(uring.events, 'io_uring_setup')[0]?.decision, 'deny');
      const packet = await run(PING, ['/t/bypass', 'sock-packet']);
      assert.equal(packet.result.stdout!.trim(), 'socket(SOCK_PACKET): errno=1 (Operation not permitted)');
      const e = of(packet.events, 'socket')[0];
      assert.equal(e?.args.type, 'SOCK_PACKET');
      assert.deepEqual(e?.privileges, ['PRIV_NET_RAW']);
      assert.equal(e?.decision, 'deny');
      assert.equal(plainRunc(['/t/bypass', 'sock-packet'], withCaps(packet.sets, ['CAP_NET_RAW'])).stdout.trim(), 'packet socket', 'held without the policy, the bypass exists');
    });
    const KILL_ONLY = policy(`  - id: kill-tool
    match: { exe: [/opt/killer] }
    capabilities: [CAP_KILL]
    action: allow
  - id: ids
    capabilities: [CAP_SETUID, CAP_SETGID]
    action: allow
`);
    for (const how of ['pidfd-kill', 'sigqueue', 'tgsigqueue'] as const) {
      it(`${how} cannot kill another user's process when CAP_KILL is granted only to /opt/killer`, async () => {
        const { result, events } = await run(KILL_ONLY, ['/t/bypass', 'against', '1000', '/t/bypass', how, '%P', '9']);
        assert.equal(result.stdout!, `${how}: errno=1 (Operation not permitted)\nvictim alive\n`);
        const sc = { 'pidfd-kill': 'pidfd_send_signal', sigqueue: 'rt_sigqueueinfo', tgsigqueue: 'rt_tgsigqueueinfo' }[how];
        const e = of(events, sc)[0];
        assert.equal(e?.decision, 'deny');
        assert.deepEqual(e?.privileges, ['PRIV_SIGNAL_DIFFCRED']);
        assert.equal(e?.args.target_uid, 1000);
      });
    }
    it('the program CAP_KILL is granted to still kills it', async () => {
      const { result, events } = await run(KILL_ONLY, ['/t/bypass', 'against', '1000', '/opt/killer', 'pidfd-kill', '%P', '9']);
      assert.equal(result.stdout!, 'pidfd-kill ok\nvictim killed by signal 9\n');
      assert.equal(of(events, 'pidfd_send_signal')[0]?.ruleId, 'kill-tool');
    });
    const MOUNT_ONLY = policy(`  - id: mount-tool
    match: { exe: [/opt/mounter] }
    capabilities: [CAP_SYS_ADMIN]
    action: allow
`);
    it('the new mount API cannot mount a tmpfs, nor mount_setattr make /proc/sys writable, when CAP_SYS_ADMIN is granted only to /opt/mounter', async () => {
      const fs = await run(MOUNT_ONLY, ['/t/bypass', 'fsmount', '/tmp']);
      assert.equal(fs.result.stdout!.trim(), 'fsopen: errno=1 (Operation not permitted)');
      assert.equal(of(fs.events, 'fsopen')[0]?.decision, 'deny');
      assert.deepEqual(of(fs.events, 'fsopen')[0]?.privileges, ['PRIV_VFS_MOUNT']);
      const rw = await run(MOUNT_ONLY, ['/t/bypass', 'setattr-rw', '/proc/sys']);
      assert.equal(rw.result.stdout!.trim(), 'mount_setattr: errno=1 (Operation not permitted)');
      assert.equal(of(rw.events, 'mount_setattr')[0]?.args.path, '/proc/sys');
      assert.equal(of(rw.events, 'mount_setattr')[0]?.decision, 'deny');
      assert.equal(plainRunc(['/t/bypass', 'setattr-rw', '/proc/sys'], withCaps(rw.sets, ['CAP_SYS_ADMIN'])).stdout.trim(), '/proc/sys is read-write', 'held without the policy, the bypass exists');
    });
    it('the program CAP_SYS_ADMIN is granted to still mounts', async () => {
      const { result, events } = await run(MOUNT_ONLY, ['/opt/mounter', 'fsmount', '/tmp']);
      assert.equal(result.stdout!.trim(), 'tmpfs mounted on /tmp');
      assert.ok(['fsopen', 'fsconfig', 'fsmount', 'move_mount'].every((sc) => of(events, sc)[0]?.ruleId === 'mount-tool'));
    });
  });

  describe("Linux's own behaviour: the same output, errno and exit status as plain runc with the sets the program holds", () => {
    // each capability is held by root but granted for another syscall only, so the agent decides these calls
    const REFINED = policy(`  - id: kill-other-syscall
    when: { syscall: tgkill }
    capabilities: [CAP_KILL]
    action: allow
  - id: nice-other-syscall
    when: { syscall: sched_setscheduler }
    capabilities: [CAP_SYS_NICE]
    action: allow
  - id: chown-other-syscall
    when: { syscall: fchown }
    capabilities: [CAP_CHOWN]
    action: allow
  - id: limits-other-syscall
    when: { syscall: setrlimit }
    capabilities: [CAP_SYS_RESOURCE]
    action: allow
  - id: ids-other-syscall
    when: { syscall: setresuid }
    capabilities: [CAP_SETUID, CAP_SETGID]
    action: allow
`);
    const REFINED_CAPS = ['CAP_KILL', 'CAP_SYS_NICE', 'CAP_CHOWN', 'CAP_SYS_RESOURCE', 'CAP_SETUID', 'CAP_SETGID'];
    const SCRIPT = [
      'nice -n -5 true; echo "nice -5: $?"',
      'nice -n 5 true; echo "nice 5: $?"',
      'kill -9 99999; echo "kill missing: $?"',
      '/t/bypass kill 99999 9; /t/bypass kill 1 99',
      'chown "$(id -u):$(id -g)" /home/user /tmp; echo "chown no-op: $?"',
      'chown 4321 /home/user; echo "chown other: $?"',
      'ulimit -n 512; echo "ulimit down: $? $(ulimit -n)"',
      '/t/bypass rlimit 100 900; /t/bypass rlimit 100 2000',
      'ulimit -n 4096; echo "ulimit up: $? $(ulimit -n)"',
      '/t/bypass setfsuid 4321',
      '/t/bypass nice -3; /t/bypass nice 3',
    ].join('\n');
    for (const who of [{ name: 'root', uid: 0, user: undefined }, { name: 'a non-root user', uid: 1000, user: '1000' }]) {
      it(`as ${who.name}: nice, kill, chown (also the no-op case), ulimit down and up, setfsuid`, async () => {
        const { result, events, sets } = await run(REFINED, ['/bin/sh', '-c', SCRIPT], { user: who.user });
        const plain = plainRunc(['/bin/sh', '-c', SCRIPT], without(sets, REFINED_CAPS), { uid: who.uid });
        assert.equal(result.stdout, plain.stdout);
        assert.equal(result.stderr, plain.stderr);
        assert.equal(result.exitCode, plain.status);
        assert.match(plain.stdout, /nice -5: 1/);
        // the agent decided these calls (the process holds the capabilities, the policy grants them for other syscalls)
        assert.ok(of(events, 'setpriority').some((e) => e.decision === 'deny' && e.errno === 13), JSON.stringify(of(events, 'setpriority')));
        assert.ok(of(events, 'setfsuid').some((e) => e.decision === 'deny' && e.answeredBy === 'emulated'));
        assert.ok(of(events, 'kill').some((e) => e.decision === 'deny' && e.errno === 3), 'ESRCH before EPERM');
        if (who.uid === 0) assert.ok(of(events, 'chown').some((e) => e.decision === 'allow' && e.answeredBy === 'performed'), 'the no-op chown is performed');
      });
    }
    it('a signal storm never makes kill/setuid return EINTR when the kernel enforces CAP_KILL and CAP_SETUID alone (nothing of theirs is trapped)', async () => {
      const text = policy(`  - id: all\n    capabilities: [CAP_KILL, CAP_SETUID]\n    action: allow\n`);
      const { result, events } = await run(text, ['/t/bypass', 'storm', '5000']);
      const m = /signals=(\d+) eintr_kill=(\d+) eintr_setuid=(\d+) other_errors=(\d+)/.exec(result.stdout!);
      assert.ok(m && Number(m[1]) > 100, `the storm did not happen: ${result.stdout}`);
      assert.deepEqual([m[2], m[3], m[4]], ['0', '0', '0'], result.stdout);
      assert.equal(of(events, 'kill').length + of(events, 'setuid').length, 0);
    });
    it("kill of another user's process fails with EPERM, as under plain runc", async () => {
      // CAP_KILL granted to another program; CAP_SETUID to all (the victim becomes uid 1000)
      const text = policy(`  - id: kill-other-syscall\n    when: { syscall: tgkill }\n    capabilities: [CAP_KILL]\n    action: allow\n  - id: ids\n    capabilities: [CAP_SETUID, CAP_SETGID]\n    action: allow\n`);
      const cmd = ['/t/bypass', 'against', '1000', '/bin/kill', '-9', '%P'];
      const { result, sets, events } = await run(text, cmd);
      const plain = plainRunc(cmd, without(sets, ['CAP_KILL']));
      assert.equal(of(events, 'kill')[0]?.decision, 'deny');
      assert.equal(of(events, 'kill')[0]?.errno, 1);
      assert.equal(result.stdout, plain.stdout);
      // the victim's pid number may differ between the two containers; the message and errno may not
      const pidless = (s: string | undefined) => (s ?? '').replace(/pid \d+/g, 'pid N');
      assert.equal(pidless(result.stderr), pidless(plain.stderr));
      assert.match(plain.stderr, /Operation not permitted/);
      assert.equal(result.exitCode, plain.status);
      assert.match(plain.stdout, /victim alive/);
    });
  });

  describe('when the entrypoint cannot run here', () => {
    it('refuses a missing command with one line', async () => {
      await assert.rejects(run(DENY_ALL, ['/bin/nope']), /\/bin\/nope: not found in the image/);
    });
  });
});
