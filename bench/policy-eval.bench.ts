/**
 * Policy evaluation throughput on one core: `evaluate` (the reference evaluator over the
 * Policy) next to `lookup` (reading the compiled table, as the native agent does), for a
 * realistic 30-rule policy.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/policy-eval.bench.js [seconds-per-case]
 *
 * Two request mixes: privilege requests ({privilege, exe, uid}: what the agent asks after its
 * own classification) and syscall requests ({syscall, args, …}: classified by libs/abi first).
 */
import { compile, evaluate, load, lookup, type DecisionRequest } from '@capulator/policy';

const POLICY = `
apiVersion: capulator/v1
kind: Policy
metadata: {name: bench, description: a realistic 30-rule policy}
defaults: {action: deny, audit: denials}
rules:
  - {id: ping-raw, match: {exe: [/usr/bin/ping, /bin/ping]}, privileges: [PRIV_NETINET_RAW], action: allow}
  - {id: recverr, when: {syscall: setsockopt, level: SOL_IP, option: IP_RECVERR}, action: emulate}
  - {id: web-ports, privileges: [PRIV_NETINET_RESERVEDPORT], when: {syscall: bind, port: "80,443"}, action: allow}
  - {id: ssh-port, match: {exe: /usr/sbin/sshd}, privileges: [PRIV_NETINET_RESERVEDPORT], when: {syscall: bind, port: 22}, action: allow}
  - {id: no-other-ports, privileges: [PRIV_NETINET_RESERVEDPORT], action: deny, errno: EACCES}
  - {id: nginx-drop, match: {exe: /usr/sbin/nginx, uid: 0}, capabilities: [CAP_SETUID, CAP_SETGID], action: allow}
  - {id: su-drop, match: {exe: [/bin/su, /usr/sbin/runuser, /usr/bin/sudo]}, capabilities: [CAP_SETUID, CAP_SETGID], action: allow}
  - {id: setuid-system, when: {syscall: setuid, uid: "1-999,65534"}, capabilities: [CAP_SETUID], action: allow}
  - {id: no-root-again, when: {syscall: setuid, uid: 0}, action: deny}
  - {id: pkg-chown, match: {exe: ["/usr/bin/dpkg", "/usr/bin/rpm", "/sbin/apk"]}, capabilities: [CAP_CHOWN, CAP_FOWNER, CAP_FSETID], action: allow}
  - {id: chown-root, match: {uid: 0}, privileges: [PRIV_VFS_CHOWN], action: allow, audit: all}
  - {id: no-devices, privileges: [PRIV_VFS_MKNOD_DEV], action: deny}
  - {id: chroot-build, match: {exe: "/usr/sbin/chroot"}, privileges: [PRIV_VFS_CHROOT], action: allow}
  - {id: no-mount, privileges: [PRIV_VFS_MOUNT, PRIV_VFS_UNMOUNT], action: deny, errno: EPERM}
  - {id: no-time, capabilities: [CAP_SYS_TIME], action: deny}
  - {id: no-reboot, privileges: [PRIV_REBOOT], action: deny}
  - {id: no-modules, capabilities: [CAP_SYS_MODULE], action: deny}
  - {id: no-ptrace, capabilities: [CAP_SYS_PTRACE], action: deny}
  - {id: kill-own-workers, match: {uid: 0, exe: "/usr/sbin/*"}, privileges: [PRIV_SIGNAL_DIFFCRED], action: allow}
  - {id: nice-db, match: {exe: "/usr/lib/postgresql/*/bin/postgres"}, capabilities: [CAP_SYS_NICE], action: allow}
  - {id: rlimit-db, match: {exe: "/usr/lib/postgresql/*/bin/postgres"}, capabilities: [CAP_SYS_RESOURCE], action: allow}
  - {id: ifup, match: {exe: /sbin/ip}, privileges: [PRIV_NET_SETIF*], action: allow}
  - {id: no-netadmin, capabilities: [CAP_NET_ADMIN], action: deny}
  - {id: capset-raw, when: {syscall: capset}, capabilities: [CAP_NET_RAW], match: {exe: /usr/bin/ping}, action: allow}
  - {id: capset-fake, when: {syscall: capset}, action: emulate}
  - {id: bounding-drop, when: {syscall: prctl, option_name: PR_CAPBSET_DROP}, action: allow}
  - {id: hostname, when: {syscall: sethostname}, action: emulate}
  - {id: packet-no, when: {syscall: socket, family: AF_PACKET}, action: deny, errno: EACCES}
  - {id: sysadmin-no, capabilities: [CAP_SYS_ADMIN], action: deny}
  - {id: audit-write, capabilities: [CAP_AUDIT_WRITE], action: allow, audit: none}
`;

const r = load(POLICY, 'bench.yaml');
if (!r.policy) {
  process.stderr.write(JSON.stringify(r.errors, null, 2) + '\n');
  process.exit(1);
}
const policy = r.policy;
const table = compile(policy);
const exes = ['/usr/bin/ping', '/usr/sbin/nginx', '/bin/sh', '/usr/bin/dpkg', '/usr/lib/postgresql/16/bin/postgres', '/usr/sbin/sshd'];
const privs = ['PRIV_NETINET_RAW', 'PRIV_NETINET_RESERVEDPORT', 'PRIV_CRED_SETUID', 'PRIV_VFS_CHOWN', 'PRIV_VFS_MKNOD_DEV', 'PRIV_VFS_MOUNT', 'PRIV_SIGNAL_DIFFCRED', 'PRIV_SCHED_SETPRIORITY', 'PRIV_NET_SETIFFLAGS', 'PRIV_CLOCK_SETTIME', 'PRIV_AUDIT_SUBMIT'];
const privRequests: DecisionRequest[] = [];
for (let i = 0; i < 1024; i++) privRequests.push({ privilege: privs[(i * 7) % privs.length], exe: exes[(i * 5) % exes.length], uid: [0, 33, 1000][i % 3], gid: 0 });
const syscallRequests: DecisionRequest[] = [];
const sys: Array<[string, Record<string, number | string | string[]>]> = [
  ['socket', { family: 'AF_INET', type: 'SOCK_RAW', protocol: 1 }],
  ['bind', { family: 'AF_INET', port: 80 }],
  ['bind', { family: 'AF_INET', port: 8080 }],
  ['setsockopt', { level: 'SOL_IP', option: 'IP_RECVERR' }],
  ['setuid', { uid: 33 }],
  ['chown', { uid: 33, gid: 33 }],
  ['mknod', { mode: 8192 | 0o600 }],
  ['capset', { caps: ['CAP_NET_RAW'] }],
  ['capget', {}],
  ['prctl', { option_name: 'PR_CAPBSET_DROP' }],
];
for (let i = 0; i < 1024; i++) {
  const [syscall, args] = sys[i % sys.length];
  syscallRequests.push({ syscall, args, exe: exes[(i * 5) % exes.length], uid: [0, 33, 1000][i % 3], gid: 0 });
}

// Both must agree before we time anything.
for (const q of [...privRequests, ...syscallRequests]) {
  if (JSON.stringify(evaluate(policy, q)) !== JSON.stringify(lookup(table, q))) throw new Error('evaluate and lookup disagree on ' + JSON.stringify(q));
}

const seconds = Number(process.argv[2] ?? 1);
/**
 * Rate per second of CPU time (user+system of this process, which runs on one core), so that a
 * busy machine does not distort the figure much; the wall-clock rate is returned too.
 */
function rate(fn: (q: DecisionRequest) => unknown, reqs: DecisionRequest[]): { cpu: number; wall: number } {
  const mask = reqs.length - 1;
  for (let i = 0; i < 200_000; i++) fn(reqs[i & mask]); // warm up
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const budget = seconds * 1e6;
  let sink = 0;
  for (;;) {
    for (let i = 0; i < 10_000; i++) if (fn(reqs[(n + i) & mask])) sink++;
    n += 10_000;
    const c = process.cpuUsage(cpu0);
    if (c.user + c.system >= budget) break;
  }
  const c = process.cpuUsage(cpu0);
  const wallNs = Number(process.hrtime.bigint() - start);
  if (sink < 0) console.log(sink);
  return { cpu: (n / (c.user + c.system)) * 1e6, wall: (n / wallNs) * 1e9 };
}

const fmt = (x: number) => `${(x / 1e6).toFixed(2)} M/s`.padStart(11);
console.log(`policy ${policy.name}: ${policy.rules.length} rules; table ${table.text.length} bytes, ${table.hash.slice(0, 19)}…`);
console.log(`per second of CPU time (wall-clock rate in brackets)`);
console.log(`${'requests'.padEnd(30)}${'evaluate'.padStart(24)}  ${'lookup'.padStart(24)}`);
for (const [label, reqs] of [
  ['privilege (agent-classified)', privRequests],
  ['syscall (classified by abi)', syscallRequests],
] as const) {
  const e = rate((q) => evaluate(policy, q), reqs);
  const l = rate((q) => lookup(table, q), reqs);
  console.log(`${label.padEnd(30)}${fmt(e.cpu)} [${fmt(e.wall)}]  ${fmt(l.cpu)} [${fmt(l.wall)}]`);
}
console.log(`floor: lookup ≥ 2.00 M/s for privilege requests`);

// Pathological patterns: nine stars against a 4 KiB path, and ?*?*… privilege globs. Each decision
// must take well under 1 ms (the matcher is linear in the input; a backtracking one takes minutes).
const evil = load(
  `apiVersion: capulator/v1
kind: Policy
metadata: {name: evil}
rules:
  - {id: stars, match: {exe: "*/*/*/*/*/*/*/*/*/x"}, privileges: [PRIV_NETINET_RAW], action: allow}
  - {id: qstars, match: {exe: "${'?*'.repeat(14)}Q0"}, privileges: [PRIV_NETINET_RAW], action: allow}
  - {id: raw, privileges: ["${'?*'.repeat(6)}RAW"], action: deny}
`,
  'evil.yaml',
);
if (!evil.policy) throw new Error(JSON.stringify(evil.errors));
const evilTable = compile(evil.policy);
const longExe = '/a'.repeat(2048);
const evilReq: DecisionRequest = { privilege: 'PRIV_NETINET_RAW', exe: longExe, uid: 0 };
if (lookup(evilTable, evilReq).ruleId !== 'raw' || evaluate(evil.policy, evilReq).ruleId !== 'raw') throw new Error('pathological policy decided wrongly');
const ev = rate((q) => evaluate(evil.policy!, q), [evilReq]);
const lv = rate((q) => lookup(evilTable, q), [evilReq]);
console.log(`${'9-star glob, 4 KiB exe'.padEnd(30)}${`${(1e6 / ev.cpu).toFixed(1)} µs/decision`.padStart(24)}  ${`${(1e6 / lv.cpu).toFixed(1)} µs/decision`.padStart(24)}`);
console.log(`ceiling: 1000 µs/decision`);
