import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classify, IOCTL_PRIVILEGES } from '@capulator/abi';
import { compileForContainer, load, lookup, type CompiledTable, type Policy } from '@capulator/policy';
import { agentBinary } from './agent-process';
import { SOCKOPTS } from './seccomp-profile';

/**
 * The agent's C classifier and table lookup against libs/abi classify + libs/policy lookup, on a
 * generated set of requests (agent `eval` mode reads one request per line).
 */
type Val = number | string | boolean | Array<number | string>;
interface Req {
  syscall: string;
  args: Record<string, Val>;
  subject: { uid: number; euid: number; suid: number; gid: number; egid: number; sgid: number };
  exe: string;
}

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');

function cross<T extends Record<string, unknown>>(base: T, key: string, values: unknown[]): T[] {
  return values.map((v) => (v === undefined ? { ...base } : { ...base, [key]: v }));
}

function requests(): Req[] {
  const A: Array<[string, Record<string, Val>]> = [];
  const add = (sc: string, list: Array<Record<string, Val>>) => list.forEach((a) => A.push([sc, a]));
  add('capget', [{}]);
  add('capset', [{ caps: [] }, { caps: ['CAP_NET_RAW'] }, { caps: ['CAP_NET_RAW', 'CAP_SYS_ADMIN'] }, { caps: ['CAP_SETPCAP'] }, { caps: ['CAP_CHOWN'] }]);
  for (const o of ['PR_CAPBSET_READ', 'PR_CAPBSET_DROP', 'PR_GET_SECUREBITS', 'PR_SET_SECUREBITS', 'PR_GET_KEEPCAPS', 'PR_SET_KEEPCAPS']) add('prctl', [{ option_name: o }]);
  add('prctl', [
    { option_name: 'PR_CAP_AMBIENT', ambient_op: 'PR_CAP_AMBIENT_RAISE', cap: 'CAP_NET_RAW' },
    { option_name: 'PR_CAP_AMBIENT', ambient_op: 'PR_CAP_AMBIENT_LOWER', cap: 'CAP_NET_RAW' },
    { option_name: 'PR_CAP_AMBIENT', ambient_op: 'PR_CAP_AMBIENT_CLEAR_ALL' },
  ]);
  for (const family of ['AF_INET', 'AF_INET6', 'AF_PACKET', 'AF_UNIX'])
    for (const type of ['SOCK_RAW', 'SOCK_DGRAM', 'SOCK_STREAM', 'SOCK_PACKET']) add('socket', cross({ family, type } as Record<string, Val>, 'protocol', [0, 1, 58]));
  for (const family of ['AF_INET', 'AF_INET6', 'AF_UNIX']) add('bind', cross({ family } as Record<string, Val>, 'port', [undefined, 0, 22, 80, 443, 1023, 1024, 8080]));
  for (const [level, option] of SOCKOPTS) add('setsockopt', cross({ level, option } as Record<string, Val>, 'value', [undefined, 0, 3, 7]));
  add('setsockopt', [{ level: 'SOL_TCP', option: 'TCP_NODELAY', value: 1 }]);
  for (const sc of ['setuid', 'setfsuid']) add(sc, cross({}, 'uid', [undefined, -1, 0, 33, 1000]));
  for (const sc of ['setgid', 'setfsgid']) add(sc, cross({}, 'gid', [undefined, -1, 0, 33, 1000]));
  for (const [r, e] of [[-1, -1], [0, 0], [1000, 1000], [-1, 33], [1000, -1]]) {
    add('setreuid', [{ ruid: r, euid: e, uids: [r, e].filter((x) => x !== -1) }]);
    add('setregid', [{ rgid: r, egid: e, gids: [r, e].filter((x) => x !== -1) }]);
  }
  for (const ids of [[], [0], [1000], [0, 33], [1000, 1000, 1000]]) {
    add('setresuid', [{ uids: ids }]);
    add('setresgid', [{ gids: ids }]);
  }
  add('setgroups', [{ size: 1 }]);
  for (const sc of ['chown', 'fchown', 'lchown', 'fchownat'])
    for (const uid of [-1, 0, 1000]) add(sc, cross({ uid } as Record<string, Val>, 'gid', [-1, 0, 1000]));
  for (const sc of ['mknod', 'mknodat'])
    for (const mode of [0o020644, 0o060600, 0o010644]) add(sc, cross({ mode, path: '/dev/x' } as Record<string, Val>, 'dev', [undefined, 0, 259]));
  for (const sc of ['chroot', 'mount', 'umount2', 'pivot_root', 'settimeofday', 'reboot', 'init_module', 'finit_module', 'delete_module']) add(sc, [{ path: '/x' }]);
  add('sethostname', [{ hostname: 'a' }, { hostname: 'web1' }]);
  add('setdomainname', [{ hostname: 'example' }]);
  add('clock_settime', [{ clock: 'CLOCK_REALTIME' }]);
  for (const sc of ['adjtimex', 'clock_adjtime']) add(sc, cross({}, 'modes', [undefined, 0, 1, 0x8000, 0xa000]));
  for (const sc of ['kill', 'tkill', 'tgkill'])
    for (const target_pid of [-1, 0, 5]) add(sc, cross({ target_pid, signal: 15 } as Record<string, Val>, 'target_uid', [undefined, 0, 1000]));
  add('kill', [{ target_pid: 5, signal: 9, target_uid: 1000, target_suid: 0 }]);
  add('setpriority', [{ prio: -5 }, { prio: 5 }, { prio: 5, target_uid: 1000, target_euid: 1000 }, { prio: 5, target_uid: 0 }]);
  for (const policy of ['SCHED_FIFO', 'SCHED_RR', 'SCHED_OTHER', 'SCHED_DEADLINE']) add('sched_setscheduler', cross({ policy } as Record<string, Val>, 'target_uid', [undefined, 1000]));
  for (const sc of ['setrlimit', 'prlimit64']) add(sc, cross({ resource: 'RLIMIT_NOFILE' } as Record<string, Val>, 'raises_hard', [undefined, true, false]));
  for (const request of ['PTRACE_ATTACH', 'PTRACE_SEIZE', 'PTRACE_TRACEME', 'PTRACE_PEEKDATA'])
    add('ptrace', cross({ request, target_pid: 5 } as Record<string, Val>, 'target_uid', [undefined, 0, 1000]));
  for (const request of [...Object.keys(IOCTL_PRIVILEGES), 'SIOCGIFFLAGS']) add('ioctl', [{ request }]);
  // issue 15: the paths around the trapped list
  for (const sc of ['rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'pidfd_send_signal'])
    for (const target_pid of [-1, 5]) add(sc, cross({ target_pid, signal: 9 } as Record<string, Val>, 'target_uid', [undefined, 0, 1000]));
  for (const sc of ['fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'mount_setattr']) add(sc, [{ path: '/x' }]);
  add('open_tree', cross({ path: '/x' } as Record<string, Val>, 'flags', [undefined, 0, 1, 0x80001]));
  for (const sc of ['unshare', 'clone']) add(sc, cross({}, 'flags', [undefined, 0, 0x10000000, 0x20000, 0x40000000, 0x10000080]));
  add('setns', [{ nstype: 0 }]);
  for (const sc of ['io_uring_setup', 'io_uring_enter', 'io_uring_register']) add(sc, [{}]);
  for (const sc of ['process_vm_readv', 'process_vm_writev', 'pidfd_getfd', 'kcmp'])
    add(sc, cross({ target_pid: 5 } as Record<string, Val>, 'target_uid', [undefined, 0, 1000]));
  add('ioctl', [{ request: 'TIOCSTI' }]);
  for (const sc of ['swapon', 'swapoff', 'acct', 'open_by_handle_at', 'kexec_load', 'kexec_file_load']) add(sc, [{}]);
  add('iopl', cross({}, 'level_io', [undefined, 0, 3]));
  add('ioperm', cross({}, 'turn_on', [undefined, 0, 1]));
  add('syslog', cross({}, 'action', [undefined, 0, 1, 3, 10, 8]));
  const subjects: Req['subject'][] = [
    { uid: 0, euid: 0, suid: 0, gid: 0, egid: 0, sgid: 0 },
    { uid: 1000, euid: 1000, suid: 1000, gid: 1000, egid: 1000, sgid: 1000 },
    { uid: 1000, euid: 0, suid: 0, gid: 1000, egid: 0, sgid: 0 },
    { uid: 33, euid: 33, suid: 33, gid: 33, egid: 33, sgid: 33 },
  ];
  const out: Req[] = [];
  for (const [syscall, args] of A)
    for (const subject of subjects) for (const exe of ['/bin/ping', '/usr/sbin/nginx', '/bin/sh']) out.push({ syscall, args, subject, exe });
  return out;
}

const enc = (s: string) => encodeURIComponent(s);
function line(r: Req): string {
  const t = [`syscall=${r.syscall}`, `@exe=${enc(r.exe)}`];
  const s = r.subject;
  t.push(`@ruid=${s.uid}`, `@euid=${s.euid}`, `@suid=${s.suid}`, `@rgid=${s.gid}`, `@egid=${s.egid}`, `@sgid=${s.sgid}`);
  for (const [k, v] of Object.entries(r.args)) t.push(`${k}=${Array.isArray(v) ? `[${v.join(',')}]` : enc(String(v))}`);
  return t.join(' ');
}

interface AgentAnswer {
  privileges: string[];
  capability: string | null;
  unprivileged: boolean;
  decision?: string;
  ruleId?: string | null;
  errno?: number;
  return?: number;
}

function runAgent(args: string[], input: string): AgentAnswer[] {
  const r = spawnSync(agentBinary(repo), args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as AgentAnswer);
}

const POLICY = `
apiVersion: capulator/v1
kind: Policy
metadata: { name: differential }
defaults: { action: deny, errno: EPERM, audit: denials }
rules:
  - id: ping-raw
    match: { exe: ["/usr/bin/ping", "/bin/p?ng"] }
    privileges: [PRIV_NETINET_RAW]
    action: allow
  - id: recverr-no-op
    when: { syscall: setsockopt, level: SOL_IP, option: IP_RECVERR }
    action: emulate
    return: 0
  - id: web-ports
    privileges: [PRIV_NETINET_RESERVEDPORT]
    when: { syscall: bind, port: "80,443" }
    action: allow
  - id: other-ports
    privileges: [PRIV_NETINET_RESERVEDPORT]
    action: deny
    errno: EACCES
  - id: nginx-drops
    match: { exe: ["/usr/sbin/nginx"], uid: "0" }
    capabilities: [CAP_SETUID, CAP_SETGID, CAP_CHOWN]
    action: allow
  - id: hostname-emulated
    when: { syscall: sethostname }
    action: emulate
    return: 0
  - id: users-no-kill
    match: { uid: "1000-65535" }
    privileges: [PRIV_SIGNAL_DIFFCRED]
    action: deny
    errno: ESRCH
  - id: setpcap
    capabilities: [CAP_SETPCAP]
    action: allow
  - id: capget-users-denied
    match: { uid: "33" }
    when: { syscall: capget }
    action: deny
    errno: EACCES
`;

function policyOf(text: string): Policy {
  const l = load(text, 'differential.yaml');
  assert.deepEqual(l.errors, []);
  return l.policy!;
}

describe('capulator-agent classifier and table lookup', () => {
  const reqs = requests();
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-diff-'));
  });

  describe('when classifying a generated set of requests', () => {
    it('agrees with libs/abi classify on privileges, capability and unprivileged', () => {
      const answers = runAgent(['classify'], reqs.map(line).join('\n') + '\n');
      assert.equal(answers.length, reqs.length);
      const diffs: string[] = [];
      reqs.forEach((r, i) => {
        const want = classify('x86_64', { syscall: r.syscall, args: r.args as never, subject: r.subject });
        const got = answers[i];
        const w = { privileges: [...want.privileges].sort(), capability: want.capability, unprivileged: want.unprivileged };
        const g = { privileges: [...got.privileges].sort(), capability: got.capability, unprivileged: got.unprivileged };
        if (JSON.stringify(w) !== JSON.stringify(g)) diffs.push(`${line(r)}\n  abi:   ${JSON.stringify(w)}\n  agent: ${JSON.stringify(g)}`);
      });
      assert.equal(diffs.length, 0, `${diffs.length} of ${reqs.length} differ:\n${diffs.slice(0, 15).join('\n')}`);
      assert.ok(answers.filter((a) => a.unprivileged).length > 500 && answers.filter((a) => !a.unprivileged).length > 500);
    });
  });

  for (const learn of [false, true]) {
    describe(`when deciding from a compiled table${learn ? ' in learn mode' : ''}`, () => {
      it('agrees with libs/policy lookup on decision, rule, errno and return', () => {
        const policy: Policy = { ...policyOf(POLICY), learn };
        const table: CompiledTable = compileForContainer(policy, {});
        const path = join(dir, `t-${learn}.table`);
        writeFileSync(path, table.text);
        const answers = runAgent(['eval', path], reqs.map(line).join('\n') + '\n');
        const diffs: string[] = [];
        reqs.forEach((r, i) => {
          const d = lookup(table, { syscall: r.syscall, args: r.args as never, exe: r.exe, uid: r.subject.euid, gid: r.subject.egid, subject: r.subject, arch: 'x86_64' });
          const got = answers[i];
          const w = { decision: d.decision, ruleId: d.ruleId, errno: d.decision === 'deny' ? d.errno : undefined, return: d.decision === 'emulate' ? d.return : undefined };
          const g = { decision: got.decision, ruleId: got.ruleId, errno: got.decision === 'deny' ? got.errno : undefined, return: got.decision === 'emulate' ? got.return : undefined };
          if (JSON.stringify(w) !== JSON.stringify(g)) diffs.push(`${line(r)}\n  policy: ${JSON.stringify(w)}\n  agent:  ${JSON.stringify(g)}`);
        });
        assert.equal(diffs.length, 0, `${diffs.length} of ${reqs.length} differ:\n${diffs.slice(0, 15).join('\n')}`);
        // the generated set exercises every rule and outcome (so agreement is not vacuous)
        const rules = new Set(answers.map((a) => a.ruleId));
        const outcomes = new Set(answers.map((a) => a.decision));
        if (learn) assert.deepEqual([...outcomes], ['allow']);
        else {
          for (const id of ['ping-raw', 'recverr-no-op', 'web-ports', 'other-ports', 'nginx-drops', 'hostname-emulated', 'users-no-kill', 'setpcap', 'capget-users-denied', null]) {
            assert.ok(rules.has(id), `no request decided by ${id}`);
          }
          assert.deepEqual([...outcomes].sort(), ['allow', 'deny', 'emulate']);
        }
      });
    });
  }

  describe('when the table was tampered with', () => {
    it('refuses it (sha256 of the end line)', () => {
      const table = compileForContainer(policyOf(POLICY), {});
      const path = join(dir, 'bad.table');
      writeFileSync(path, table.text.replace('ping-raw', 'pong-raw'));
      const r = spawnSync(agentBinary(repo), ['check-table', path], { encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /hash mismatch/);
      writeFileSync(path, table.text);
      const ok = spawnSync(agentBinary(repo), ['check-table', path], { encoding: 'utf8' });
      assert.equal(ok.stdout.trim(), table.hash);
    });
  });
});
