import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DecisionPayload, EventTypes, StoredEvent } from '@capulator/events';
import { runEvents } from '../../../../test/fixtures/events';
import { runsHere } from '../local-run';
import { LOCAL_RUN_CASES } from '../../../../test/fixtures/local-run-cases';
import { fixtureImages } from '../../../../test/fixtures/images';

/**
 * The kernel record end to end (issue 15 part A): `capulator run` with the tp_btf/cap_capable
 * program scoped to the run's cgroup, the checks in `audit log`, violations, no filter at all.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');

let home: string;
let rootfs: string;
const cap = (args: string[]) => spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home }, timeout: 120_000 });
const id = (s: string) => `kr${process.pid}-${s}`;

const stream = (runId: string): Promise<StoredEvent[]> => runEvents(home, runId);
interface LogRow { position: number; seq: number; exe: string; syscall: string; capability: string | null; decision: string; answeredBy: string; uid: number }
function auditLog(runId: string): LogRow[] {
  const r = cap(['audit', 'log', '--run', runId, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogRow);
}
const kernelRows = (rows: LogRow[]) => rows.filter((r) => r.answeredBy === 'granted' || r.answeredBy === 'refused');
const policyFile = (name: string, body: string) => {
  const f = join(home, `${name}.yaml`);
  writeFileSync(f, `apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: ${name} }\n${body}`);
  return f;
};

describe('the kernel record (tp_btf/cap_capable)', () => {
  let allowAll: string;
  before(() => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-kernel-'));
    allowAll = policyFile('allow-all', 'defaults: { action: allow, audit: all }\nrules: []\n');
    const host = cap(['abi', 'host', '--json']);
    assert.equal(host.status, 0, host.stderr);
    const h = JSON.parse(host.stdout) as { bpf: Record<string, string> };
    assert.equal(h.bpf['tp_btf/cap_capable'], 'ok', `this kernel must load tp_btf/cap_capable: ${host.stdout}`);
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('when a program reads another user\'s 0600 file and adds a link under an allow-all audited policy', () => {
    it('shows the DAC override and the NET_ADMIN check inside the netlink message in audit log, with program and result, and nothing of runc\'s set-up', async () => {
      const runId = id('dac');
      // allow-all, with chown refined by syscall so that the agent decides it too (the trap plan traps only what a rule refines)
      const f = policyFile('allow-all-chown', 'defaults: { action: allow, audit: all }\nrules:\n  - { id: chown, privileges: [PRIV_VFS_CHOWN], when: { syscall: chown }, action: allow }\n');
      const r = cap(['run', '--id', runId, '--policy', f, rootfs, '--', '/bin/sh', '-c',
        'echo secret > /tmp/s; chown 1000:1000 /tmp/s; chmod 600 /tmp/s; cat /tmp/s; ip link add dummy0 type dummy; grep Seccomp: /proc/self/status; true']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^secret$/m);
      const rows = kernelRows(auditLog(runId));
      const dac = rows.find((x) => (x.capability === 'CAP_DAC_OVERRIDE' || x.capability === 'CAP_DAC_READ_SEARCH') && /^open/.test(x.syscall));
      assert.ok(dac, JSON.stringify(rows));
      assert.equal(dac.exe, '/bin/busybox');
      assert.equal(dac.answeredBy, 'granted');
      assert.equal(dac.decision, 'allow');
      const net = rows.find((x) => x.capability === 'CAP_NET_ADMIN');
      assert.ok(net, JSON.stringify(rows));
      assert.equal(net.exe, '/bin/busybox');
      assert.match(net.syscall, /^(sendmsg|sendto|write)$/);
      assert.equal(net.answeredBy, 'granted');
      // runc's own set-up (mount, pivot_root, sethostname… by runc init in the same cgroup) is not the container's
      assert.ok(rows.every((x) => !/runc/.test(x.exe) && !['mount', 'pivot_root', 'umount2', 'sethostname'].includes(x.syscall)), JSON.stringify(rows));
      // one story: the kernel's CAP_CHOWN check of chown carries the agent decision's seq and is shown right after it
      const all = auditLog(runId);
      const agentChown = all.find((x) => x.syscall === 'chown' && x.answeredBy === 'continue')!;
      const kernelChown = rows.find((x) => x.syscall === 'chown' && x.capability === 'CAP_CHOWN');
      assert.ok(agentChown && kernelChown, JSON.stringify(all));
      // the join of a kernel check with the agent decision of the same call is best-effort (thread,
      // syscall, time): when it is made, the seq is the agent's (README: not reliable yet)
      if (kernelChown.seq !== 0) assert.equal(kernelChown.seq, agentChown.seq);
      const events = await stream(runId);
      const started = events.find((e) => e.type === 'RunStarted')!;
      const firstKernel = events.find((e) => e.type === 'PrivilegeChecked' && (e.payload as DecisionPayload).source === 'kernel')!;
      assert.ok(firstKernel.position > started.position);
      assert.deepEqual((started.payload as EventTypes['RunStarted']).mechanisms?.kernelRecord, 'tp_btf');
      // this policy records capget/capset: the filter stays
      assert.equal((started.payload as EventTypes['RunStarted']).mechanisms?.seccomp, 'notify');
      assert.match(r.stdout, /^Seccomp:\s+2$/m);
      assert.equal(firstKernel.schemaVersion, 2);
    });
  });

  describe('when a check is refused by the capability sets', () => {
    it('is recorded with result refused', () => {
      const runId = id('refused');
      const r = cap(['run', '--id', runId, '--policy', allowAll, rootfs, '--', '/bin/sh', '-c',
        'echo x > /tmp/root-only; chmod 600 /tmp/root-only; su user -s /bin/sh -c "cat /tmp/root-only"; echo rc=$?']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /rc=1/);
      assert.match(r.stderr, /Permission denied/);
      const refused = kernelRows(auditLog(runId)).filter((x) => x.answeredBy === 'refused' && x.uid === 1000 && /^open/.test(x.syscall));
      assert.ok(refused.some((x) => x.capability === 'CAP_DAC_OVERRIDE' || x.capability === 'CAP_DAC_READ_SEARCH'), JSON.stringify(refused));
    });
  });

  describe('when the kernel grants a capability the policy denies to that program', () => {
    it('records the violation and stops the container with RunFailed stage policy', async () => {
      const runId = id('violation');
      // per-program grants are file capabilities now (the sets): busybox gets CAP_NET_ADMIN from its
      // file, for every user who runs it; the policy denies it to uid 1000, which the kernel cannot see
      const f = policyFile('busybox-not-user', [
        'defaults: { action: allow, audit: all }',
        'rules:',
        '  - { id: no-net-admin-for-user, match: { uid: "1000" }, capabilities: [CAP_NET_ADMIN], action: deny }',
        '  - { id: net-admin-for-busybox, match: { exe: [/bin/busybox] }, capabilities: [CAP_NET_ADMIN], action: allow }',
        '  - { id: no-net-admin, capabilities: [CAP_NET_ADMIN], action: deny }',
        '',
      ].join('\n'));
      const r = cap(['run', '--id', runId, '--policy', f, rootfs, '--', '/bin/sh', '-c', 'su user -s /bin/sh -c "ip link add dummy0 type dummy"; sleep 20; echo survived']);
      assert.equal(r.status, 125, r.stderr);
      assert.doesNotMatch(r.stdout, /survived/);
      assert.match(r.stderr, /uid 1000\) used CAP_NET_ADMIN.*policy denies it \(no-net-admin-for-user\)/);
      const events = await stream(runId);
      const failed = events.find((e) => e.type === 'RunFailed');
      assert.ok(failed, events.map((e) => e.type).join(','));
      assert.equal((failed.payload as EventTypes['RunFailed']).stage, 'policy');
      const v = events.map((e) => e.payload as DecisionPayload).find((p) => p.source === 'kernel' && p.kernel?.violation);
      assert.ok(v);
      assert.equal(v.capability, 'CAP_NET_ADMIN');
      assert.equal(v.decision, 'deny');
      assert.equal(v.ruleId, 'no-net-admin-for-user');
      assert.equal(v.subject.uid, 1000);
      assert.equal(v.kernel!.result, 'granted');
    });
  });

  describe('when the program races the kernel or floods the record', () => {
    let probes: string;
    let admin: string;
    let denyAll: string;
    before(() => {
      probes = join(home, 'probes');
      mkdirSync(probes);
      const cc = spawnSync('gcc', ['-O2', '-static', '-pthread', '-o', join(probes, 'krec-probe'), join(repo, 'test/fixtures/kernel/krec-probe.c')], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      admin = policyFile('admin-for-all', 'defaults: { action: deny, audit: all }\nrules:\n  - { id: admin, capabilities: [CAP_SYS_ADMIN], action: allow }\n');
      denyAll = policyFile('deny-all-kr', 'defaults: { action: deny, audit: all }\nrules: []\n');
    });
    const probe = (policy: string, args: string[], env: Record<string, string> = {}) =>
      spawnSync(bin, ['run', '--policy', policy, '-v', `${probes}:/t:ro`, rootfs, '--', '/t/krec-probe', ...args], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home, ...env },
        timeout: 120_000,
      });

    it("a namespace made by clone3 is a violation although a thread rewrites clone_args.flags after the kernel copied them (the record never reads the caller's memory)", () => {
      // before: the record re-read the flags from memory, found 0 about half the time and counted the check as a probe
      // (each try caught the race about half the time before: four tries miss it 1 time in 16)
      for (let i = 0; i < 4; i++) {
        const r = probe(denyAll, ['clone3-race']);
        // the kill may come before the program says it saw the new namespace, never after its second
        assert.ok(r.stdout === 'new namespace\n' || r.stdout === '', `try ${i}: ${r.stdout}${r.stderr}`);
        assert.equal(r.status, 125, r.stderr);
        assert.match(r.stderr, /used CAP_SYS_ADMIN in clone3: the kernel granted it, the policy denies it/);
      }
    });

    it('a granted check the ring has no room for stops the run (fail closed: audit); refused ones lost are counted and the run goes on', async () => {
      const small = { CAPULATOR_KERNEL_RECORD_RING_BYTES: '8192' };
      const granted = probe(admin, ['flood', '2000'], small);
      assert.equal(granted.status, 125, granted.stderr);
      assert.doesNotMatch(granted.stdout, /flooded/);
      assert.match(granted.stderr, /the audit record cannot be written \(the kernel record's ring buffer was full: \d+ granted capability check\(s\) not recorded\); container stopped/);
      const runId = /run (\S+) failed/.exec(granted.stderr)![1];
      const failed = (await stream(runId)).find((e) => e.type === 'RunFailed');
      assert.equal((failed?.payload as EventTypes['RunFailed']).stage, 'audit');
      // the same flood refused by the kernel (no CAP_SYS_ADMIN): no privilege used, the gap counted
      const refused = probe(denyAll, ['flood', '300'], small);
      assert.equal(refused.status, 0, refused.stderr);
      assert.equal(refused.stdout, 'flooded\n');
      const ps = cap(['ps', '-a', '--json']);
      const last = (JSON.parse(ps.stdout) as { id: string; lostEvents?: number; status: string }[])[0];
      assert.equal(last.status, 'exited');
      assert.ok((last.lostEvents ?? 0) > 0, ps.stdout);
      // an operator who chose to keep running on audit failure keeps running
      const kept = spawnSync(bin, ['run', '--on-audit-failure', 'continue', '--policy', admin, '-v', `${probes}:/t:ro`, rootfs, '--', '/t/krec-probe', 'flood', '300'], {
        encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home, ...small }, timeout: 120_000,
      });
      assert.deepEqual([kept.status, kept.stdout], [0, 'flooded\n'], kept.stderr);
    });

    it('a ring size that is not a power of two keeps the record from starting, and the run says why', () => {
      const r = probe(denyAll, ['flood', '1'], { CAPULATOR_KERNEL_RECORD_RING_BYTES: '5000' });
      const runId = (JSON.parse(cap(['ps', '-a', '--json']).stdout) as { id: string }[])[0].id;
      const shown = cap(['inspect', runId]);
      assert.match(shown.stdout, /no kernel record \(.*CAPULATOR_KERNEL_RECORD_RING_BYTES=5000: want a power of two from 4096 to 1073741824\)/, r.stderr);
    });
  });

  describe('when the policy needs no argument refinement, no emulation and does not record capget/capset', () => {
    it('installs no seccomp filter at all and still records the checks from the kernel', async () => {
      const runId = id('nofilter');
      const f = policyFile('kernel-only', [
        'defaults: { action: allow, audit: all }',
        'rules:',
        '  - { id: quiet-capget, when: { syscall: capget }, action: allow, audit: none }',
        '  - { id: quiet-capset, when: { syscall: capset }, action: allow, audit: none }',
        '',
      ].join('\n'));
      const r = cap(['run', '--id', runId, '--policy', f, rootfs, '--', '/bin/sh', '-c', 'grep Seccomp: /proc/self/status; hostname kernel-only; hostname']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Seccomp:\s+0$/m);
      assert.match(r.stdout, /^kernel-only$/m);
      const rows = auditLog(runId);
      assert.ok(rows.every((x) => x.answeredBy === 'granted' || x.answeredBy === 'refused'), 'no agent decisions without a filter');
      const host = rows.find((x) => x.syscall === 'sethostname');
      assert.ok(host, JSON.stringify(rows));
      assert.equal(host.capability, 'CAP_SYS_ADMIN');
      assert.equal(host.exe, '/bin/busybox');
      const started = (await stream(runId)).find((e) => e.type === 'RunStarted')!.payload as EventTypes['RunStarted'];
      assert.deepEqual({ k: started.mechanisms?.kernelRecord, s: started.mechanisms?.seccomp }, { k: 'tp_btf', s: 'none' });
      assert.ok(started.pid > 1);
      const inspect = cap(['inspect', runId]);
      assert.equal(inspect.status, 0, inspect.stderr);
      assert.match(inspect.stdout, /^Recorded by:\s+kernel record \(tp_btf\/cap_capable\), no seccomp filter$/m);
    });

    it('keeps a per-program grant (a file capability) working without a filter, and records both sides', () => {
      const runId = id('ping');
      const f = policyFile('ping-kernel-only', [
        'defaults: { action: deny, audit: all }',
        'rules:',
        '  - { id: quiet-capget, when: { syscall: capget }, action: allow, audit: none }',
        '  - { id: quiet-capset, when: { syscall: capset }, action: allow, audit: none }',
        '  - { id: ping-raw, match: { exe: [/bin/ping] }, privileges: [PRIV_NETINET_RAW], action: allow }',
        '',
      ].join('\n'));
      const r = cap(['run', '--id', runId, '--policy', f, rootfs, '--', '/bin/sh', '-c',
        'grep Seccomp: /proc/self/status; /bin/ping -c1 127.0.0.1 >/dev/null && echo ping ok; busybox ping -c1 127.0.0.1 >/dev/null 2>&1; echo busybox rc=$?']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Seccomp:\s+0$/m);
      assert.match(r.stdout, /^ping ok$/m);
      assert.match(r.stdout, /^busybox rc=1$/m);
      const raw = kernelRows(auditLog(runId)).filter((x) => x.capability === 'CAP_NET_RAW' && x.syscall === 'socket');
      assert.ok(raw.some((x) => x.exe === '/bin/ping' && x.answeredBy === 'granted' && x.decision === 'allow'), JSON.stringify(raw));
      assert.ok(raw.some((x) => x.exe === '/bin/busybox' && x.answeredBy === 'refused' && x.decision === 'deny'), JSON.stringify(raw));
    });
  });

  describe('when `capulator run` finds no daemon', () => {
    // the native client starts the kernel record and the agent before it execs Node, and the CLI
    // adopts them: a `node` first in PATH notes what it was handed, wrappers note each started
    function traced(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
      const dir = mkdtempSync(join(home, 'early-'));
      mkdirSync(join(dir, 'bin'));
      const node = spawnSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(
        join(dir, 'bin', 'node'),
        `#!/bin/sh\necho "\${CAPULATOR_EARLY_KERNEL_RECORD:-none} \${CAPULATOR_EARLY_AGENT:-none}" >> ${dir}/node.log\n` +
          `echo "\${NODE_EXTRA_CA_CERTS:-none} \${CAPULATOR_DEFERRED_EXTRA_CA_CERTS:-none}" >> ${dir}/ca.log\nexec ${node} "$@"\n`,
      );
      // (the agent binary is runc's loopback hook too: only its serving starts are noted)
      for (const [name, real] of [['krec', 'capulator-kernel-record'], ['agent', 'capulator-agent']]) {
        writeFileSync(join(dir, name), `#!/bin/sh\n[ "$1" = serve ] && echo $$ >> ${dir}/${name}.log\nexec ${join(repo, 'agent/build', real)} "$@"\n`);
        chmodSync(join(dir, name), 0o755);
      }
      chmodSync(join(dir, 'bin', 'node'), 0o755);
      const r = spawnSync(bin, args, {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, CAPULATOR_KERNEL_RECORD: join(dir, 'krec'), CAPULATOR_AGENT: join(dir, 'agent'), ...extraEnv },
        timeout: 120_000,
      });
      const lines = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').trim().split('\n') : []);
      return { r, node: lines('node.log'), krec: lines('krec.log'), agent: lines('agent.log'), ca: lines('ca.log') };
    }
    const gone = (pid: string) => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z';
      } catch {
        return true;
      }
    };

    it('the kernel record and the agent are started before Node and adopted by the CLI (the only ones started), serve the run, and are gone after it', () => {
      const runId = id('early');
      // a refined capability, so that the agent serves the run too
      const f = policyFile('early', 'defaults: { action: allow, audit: all }\nrules:\n  - { id: chown, privileges: [PRIV_VFS_CHOWN], when: { syscall: chown }, action: allow }\n');
      const { r, node, krec, agent } = traced(['run', '--id', runId, '--policy', f, rootfs, '--', '/bin/sh', '-c', 'chown 1:1 /tmp; ping -c1 127.0.0.1 >/dev/null']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(node.length, 1, node.join('\n'));
      const early = node[0].split(' ').map((v) => v.split(','));
      for (const [[pid, , , , binary], started, name] of [[early[0], krec, 'krec'], [early[1], agent, 'agent']] as const) {
        assert.match(pid, /^\d+$/, node[0]);
        assert.ok(binary.endsWith(`/${name}`), node[0]);
        assert.deepEqual(started, [pid], name);
        assert.ok(gone(pid), `${name} ${pid} outlived the run`);
      }
      const rows = auditLog(runId);
      assert.ok(kernelRows(rows).some((x) => x.capability === 'CAP_NET_RAW' && x.answeredBy === 'granted'), JSON.stringify(rows));
      assert.ok(rows.some((x) => x.syscall === 'chown' && x.answeredBy === 'continue'), JSON.stringify(rows));
    });

    it('the native client and bin/capulator give the same answer to "is this run the CLI\'s own?" (one rule, in C and in JS)', () => {
      const nowhere = join(home, 'no-such-rootfs');
      for (const [argv, local] of LOCAL_RUN_CASES) {
        const t = traced(argv.map((w) => (w === 'IMG' ? nowhere : w)));
        assert.equal(runsHere(argv), local, argv.join(' '));
        assert.equal(t.node[0] !== 'none none', local, `${argv.join(' ')}: the native client ${local ? 'did not start' : 'started'} the spares`);
      }
    });

    it('NODE_EXTRA_CA_CERTS reaches Node deferred (Node would load it before any code), and only for such a run', () => {
      const ca = join(home, 'extra-ca.pem');
      const env = { NODE_EXTRA_CA_CERTS: ca, NODE_OPTIONS: '' };
      const local = traced(['run', rootfs, '--', '/bin/true'], env);
      assert.equal(local.r.status, 0, local.r.stderr);
      assert.deepEqual(local.ca, [`none ${ca}`]);
      // handed to a server, or a CA store NODE_OPTIONS chooses (the deferred trust is Node's default store's): as it is
      for (const [args, e] of [
        [['run', '--server', 'http://127.0.0.1:9', rootfs, '--', '/bin/true'], env],
        [['run', rootfs, '--', '/bin/true'], { ...env, NODE_OPTIONS: '--use-openssl-ca' }],
      ] as const) assert.deepEqual(traced([...args], e).ca, [`${ca} none`], args.join(' '));
      // one the caller set is never passed on
      assert.deepEqual(traced(['run', '--help'], { CAPULATOR_DEFERRED_EXTRA_CA_CERTS: ca }).ca.map((l) => l.split(' ')[1]), ['none']);
    });

    it('they are not started for a run the CLI does not run itself (--server, -d, --help)', () => {
      // (the native client's rule and bin/capulator's are one rule written twice: in C before Node, in JS after)
      for (const args of [['run', '--help'], ['run', '--server', 'http://127.0.0.1:9', rootfs, '--', '/bin/true']]) {
        const t = traced(args);
        assert.deepEqual(t.node, ['none none'], args.join(' '));
        assert.deepEqual([t.krec, t.agent], [[], []], args.join(' '));
      }
      // -d: none for the command itself (the detached run's supervisor runs the run, which starts its own)
      const nowhere = join(home, 'no-such-rootfs');
      for (const args of [['run', '-d', nowhere, '--', '/bin/true'], ['run', '-itd', nowhere, '--', '/bin/true']]) {
        const t = traced(args);
        assert.equal(t.node[0], 'none none', args.join(' '));
      }
    });
  });
});
