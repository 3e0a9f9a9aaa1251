import { capabilityByName, CLONE_NEW_PRIVILEGED, IOCTL_PRIVILEGES, optionTable, PRCTL_OPTIONS, privilegeByName, privilegesOfCapability, SIOC, SOL, TIOCSTI } from '@capulator/abi';
import { parseTable, type CompiledTable, type ParsedTable } from '@capulator/policy';

/**
 * The seccomp filter of a capulator container (OCI `linux.seccomp`): everything runs natively
 * except the privileged operations the policy refines (trapPlan below), which are sent to the
 * agent (SCMP_ACT_NOTIFY), narrowed by argument filters where the kernel can. runc refuses NOTIFY
 * on `write` and as the default action; fcntl/sendmsg are never trapped (runc#4328, crun#1002).
 */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ';
}
export interface SeccompSyscall {
  names: string[];
  action: 'SCMP_ACT_NOTIFY' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
}
export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ALLOW';
  listenerPath: string;
  listenerMetadata?: string;
  architectures: string[];
  flags?: string[];
  syscalls: SeccompSyscall[];
}

const eq = (index: number, value: number): SeccompArg => ({ index, value, op: 'SCMP_CMP_EQ' });
const masked = (index: number, mask: number, value: number): SeccompArg => ({ index, value: mask, valueTwo: value, op: 'SCMP_CMP_MASKED_EQ' });
const notify = (names: string[], args?: SeccompArg[]): SeccompSyscall => (args ? { names, action: 'SCMP_ACT_NOTIFY', args } : { names, action: 'SCMP_ACT_NOTIFY' });

/** prctl options that read or change capability state. */
export const CAP_PRCTL_OPTIONS: Readonly<Record<string, number>> = Object.fromEntries(
  ['PR_GET_KEEPCAPS', 'PR_SET_KEEPCAPS', 'PR_CAPBSET_READ', 'PR_CAPBSET_DROP', 'PR_GET_SECUREBITS', 'PR_SET_SECUREBITS', 'PR_CAP_AMBIENT'].map((n) => [n, PRCTL_OPTIONS[n]]),
);
/** Interface, route, bridge and bond ioctls that need CAP_NET_ADMIN (libs/abi IOCTL_PRIVILEGES). */
export function privilegedIoctls(): Array<[name: string, request: number]> {
  return Object.keys(IOCTL_PRIVILEGES)
    .map((n): [string, number] => [n, SIOC[n]])
    .filter(([, v]) => typeof v === 'number');
}
/** setsockopt (level, option) pairs that can need privilege (libs/abi classify), plus IP_RECVERR/IPV6_RECVERR, which policies commonly emulate. */
export const SOCKOPTS: ReadonlyArray<[level: string, option: string]> = [
  ['SOL_SOCKET', 'SO_PRIORITY'], ['SOL_SOCKET', 'SO_SNDBUFFORCE'], ['SOL_SOCKET', 'SO_RCVBUFFORCE'], ['SOL_SOCKET', 'SO_MARK'], ['SOL_SOCKET', 'SO_DEBUG'],
  ['SOL_IP', 'IP_RECVERR'], ['SOL_IP', 'IP_TRANSPARENT'], ['SOL_IP', 'IP_IPSEC_POLICY'], ['SOL_IP', 'IP_XFRM_POLICY'],
  ['SOL_IPV6', 'IPV6_RECVERR'], ['SOL_IPV6', 'IPV6_TRANSPARENT'], ['SOL_IPV6', 'IPV6_HOPOPTS'], ['SOL_IPV6', 'IPV6_RTHDRDSTOPTS'],
  ['SOL_IPV6', 'IPV6_DSTOPTS'], ['SOL_IPV6', 'IPV6_IPSEC_POLICY'], ['SOL_IPV6', 'IPV6_XFRM_POLICY'], ['SOL_TCP', 'TCP_REPAIR'],
];

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;


const ENOSYS = 38;
const SOCK_RAW = 3;
const SOCK_PACKET = 10;
const AF_KEY = 15;
const AF_PACKET = 17;

function sockopt(level: string, option: string): SeccompSyscall {
  const l = SOL[level];
  const o = optionTable(level)?.[option];
  if (l === undefined || o === undefined) throw new Error(`seccomp profile: unknown socket option ${level}/${option}`);
  return notify(['setsockopt'], [eq(1, l), eq(2, o)]);
}

/**
 * The trapped operations, grouped by the capability whose use they are (the key), as seccomp
 * rules. A group is trapped only when the policy refines that capability (trapPlan). `io_uring`
 * and `record` are not capabilities: the ring (trapped when any held capability is refined) and
 * the capability reads/changes (trapped when the policy records them or refines CAP_SETPCAP).
 */
export function trapGroups(arch: NodeJS.Architecture = process.arch): Record<string, SeccompSyscall[]> {
  const x64 = arch === 'x64';
  const nsBits = Object.values(CLONE_NEW_PRIVILEGED);
  const capOps = [notify(['capget', 'capset']), ...Object.values(CAP_PRCTL_OPTIONS).map((v) => notify(['prctl'], [eq(0, v)]))];
  return {
    record: capOps,
    CAP_NET_RAW: [
      notify(['socket'], [masked(1, 0xf, SOCK_RAW)]), // SOCK_RAW, any family
      notify(['socket'], [masked(1, 0xf, SOCK_PACKET)]), // SOCK_PACKET (AF_INET): a packet socket
      notify(['socket'], [eq(0, AF_PACKET)]),
      ...[['SOL_SOCKET', 'SO_PRIORITY'], ['SOL_SOCKET', 'SO_MARK'], ['SOL_IP', 'IP_TRANSPARENT'], ['SOL_IPV6', 'IPV6_TRANSPARENT'],
        ['SOL_IPV6', 'IPV6_HOPOPTS'], ['SOL_IPV6', 'IPV6_RTHDRDSTOPTS'], ['SOL_IPV6', 'IPV6_DSTOPTS']].map(([l, o]) => sockopt(l, o)),
    ],
    CAP_NET_BIND_SERVICE: [notify(['bind'])],
    CAP_NET_ADMIN: [
      notify(['socket'], [eq(0, AF_KEY)]),
      ...privilegedIoctls().map(([, v]) => notify(['ioctl'], [eq(1, v)])),
      ...[['SOL_SOCKET', 'SO_PRIORITY'], ['SOL_SOCKET', 'SO_MARK'], ['SOL_SOCKET', 'SO_DEBUG'], ['SOL_SOCKET', 'SO_SNDBUFFORCE'],
        ['SOL_SOCKET', 'SO_RCVBUFFORCE'], ['SOL_IP', 'IP_TRANSPARENT'], ['SOL_IP', 'IP_IPSEC_POLICY'], ['SOL_IP', 'IP_XFRM_POLICY'],
        ['SOL_IPV6', 'IPV6_TRANSPARENT'], ['SOL_IPV6', 'IPV6_IPSEC_POLICY'], ['SOL_IPV6', 'IPV6_XFRM_POLICY'], ['SOL_TCP', 'TCP_REPAIR']].map(([l, o]) => sockopt(l, o)),
      // MRT_* (multicast routing) options 200..211 except MRT_INIT
      ...Array.from({ length: 11 }, (_, i) => notify(['setsockopt'], [eq(1, 0), eq(2, 201 + i)])),
    ],
    CAP_SETUID: [notify(['setuid', 'setreuid', 'setresuid', 'setfsuid'])],
    CAP_SETGID: [notify(['setgid', 'setregid', 'setresgid', 'setfsgid', 'setgroups'])],
    CAP_CHOWN: [notify(x64 ? ['chown', 'fchown', 'lchown', 'fchownat'] : ['fchown', 'fchownat'])],
    CAP_MKNOD: [S_IFCHR, S_IFBLK].flatMap((t) => [
      notify(['mknodat'], [masked(2, S_IFMT, t)]),
      ...(x64 ? [notify(['mknod'], [masked(1, S_IFMT, t)])] : []),
    ]),
    CAP_SYS_CHROOT: [notify(['chroot'])],
    CAP_SYS_ADMIN: [
      notify(['mount', 'umount2', 'pivot_root', 'sethostname', 'setdomainname']),
      // the new mount API: every step checks may_mount (open_tree only with OPEN_TREE_CLONE)
      notify(['fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'mount_setattr']),
      notify(['open_tree'], [masked(2, 1, 1)]),
      notify(['setns']),
      // new namespaces (not CLONE_NEWUSER): one rule per flag, the flags are in a register
      ...nsBits.flatMap((b) => [notify(['unshare'], [masked(0, b, b)]), notify(['clone'], [masked(0, b, b)])]),
      // clone3 keeps its flags in memory the agent cannot check safely: ENOSYS makes libc fall back to clone
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      notify(['ioctl'], [eq(1, TIOCSTI)]),
      notify(['swapon', 'swapoff']),
    ],
    CAP_DAC_READ_SEARCH: [notify(['open_by_handle_at'])],
    CAP_SYS_PACCT: [notify(['acct'])],
    CAP_SYSLOG: [notify(['syslog'])],
    CAP_SYS_RAWIO: x64 ? [notify(['iopl'], [{ index: 0, value: 0, op: 'SCMP_CMP_NE' }]), notify(['ioperm'], [{ index: 2, value: 0, op: 'SCMP_CMP_NE' }])] : [],
    CAP_SYS_TIME: [notify(['settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime'])],
    CAP_SYS_BOOT: [notify(['reboot', 'kexec_load', 'kexec_file_load'])],
    CAP_SYS_MODULE: [notify(['init_module', 'finit_module', 'delete_module'])],
    CAP_KILL: [
      notify(['kill'], [{ index: 1, value: 0, op: 'SCMP_CMP_NE' }]),
      notify(['tkill'], [{ index: 1, value: 0, op: 'SCMP_CMP_NE' }]),
      notify(['tgkill'], [{ index: 2, value: 0, op: 'SCMP_CMP_NE' }]),
      notify(['rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'pidfd_send_signal']),
    ],
    CAP_SYS_NICE: [
      notify(['setpriority'], [masked(2, 0x80000000, 0x80000000)]), // negative nice only
      notify(['sched_setscheduler'], [masked(1, 0xff, 1)]), // SCHED_FIFO (| SCHED_RESET_ON_FORK)
      notify(['sched_setscheduler'], [masked(1, 0xff, 2)]), // SCHED_RR
    ],
    CAP_SYS_RESOURCE: [notify(['setrlimit']), notify(['prlimit64'], [{ index: 2, value: 0, op: 'SCMP_CMP_NE' }])],
    CAP_SYS_PTRACE: [
      notify(['ptrace'], [eq(0, 16)]), // PTRACE_ATTACH
      notify(['ptrace'], [eq(0, 0x4206)]), // PTRACE_SEIZE
      notify(['process_vm_readv', 'process_vm_writev', 'pidfd_getfd', 'kcmp']),
    ],
    CAP_SETPCAP: capOps,
    // IP_RECVERR/IPV6_RECVERR need no privilege; trapped when a rule names setsockopt (ping.yaml emulates it)
    setsockopt: [sockopt('SOL_IP', 'IP_RECVERR'), sockopt('SOL_IPV6', 'IPV6_RECVERR')],
    io_uring: [notify(['io_uring_setup', 'io_uring_enter', 'io_uring_register'])],
  };
}

export interface TrapPlan {
  /** Trap groups (trapGroups keys) this container's filter holds. */
  groups: string[];
  /** Capabilities in the container's bounding set that some rule refines (by program, user, syscall or argument), or that the default denies. */
  refined: string[];
  /** Why each group is trapped (for `policy explain` and the run record). */
  reasons: Record<string, string>;
  /** Syscalls a rule names with deny/emulate (or conditions): their entries of every group are trapped. */
  syscalls: string[];
  /** True when nothing needs the agent: no refinement, no emulation, no recording of capget/capset. */
  empty: boolean;
}

function ruleConditional(r: ParsedTable['rules'][number]): boolean {
  return !!(r.uid || r.gid || (r.exe && r.exe.length) || (r.exeExact && r.exeExact.size) || (r.image && r.image.length) || (r.labels && r.labels.length) || r.syscall !== undefined || r.conds.length);
}

/**
 * Which operations this container's filter traps, as a pure function of the compiled policy and
 * the container's bounding set. A capability absent from the bounding set is refused by the
 * kernel itself on every path, with Linux's own errno; one that the first rule able to decide it
 * grants whole and unconditionally (or an `allow` default with no rule about it) is enforced by
 * the kernel too. Only the rest — held, but restricted by program, user, syscall or argument, or
 * denied by a rule — needs the agent, on every syscall that can use it. io_uring is trapped (and
 * refused unless a rule names it) whenever any held capability is refined: its operations (bind,
 * socket, setsockopt, xattrs, …) run inside the kernel, out of seccomp's reach. capget/capset are
 * trapped when the policy records them (`audit: all`, or a rule naming them) or refines CAP_SETPCAP.
 * Rules that name a syscall with `deny`/`emulate` trap that syscall's group. Learn mode traps all.
 */
export function trapPlan(table: ParsedTable, bounding: readonly string[], arch: NodeJS.Architecture = process.arch): TrapPlan {
  const groups = trapGroups(arch);
  const reasons: Record<string, string> = {};
  const refined: string[] = [];
  if (table.learn) {
    for (const g of Object.keys(groups)) reasons[g] = 'learn mode records every operation';
    return { groups: Object.keys(groups), refined: [...bounding], reasons, syscalls: [], empty: false };
  }
  for (const cap of bounding) {
    if (!groups[cap]) continue;
    const c = capabilityByName(cap);
    if (!c) continue;
    const privs = privilegesOfCapability(cap).map((p) => privilegeByName(p)?.number).filter((n): n is number => n !== undefined);
    const mine = new Set(groups[cap].flatMap((e) => e.names).filter((n) => n !== 'capget')); // capget shares an entry with capset; it uses no capability
    // a rule decides a use of `cap` when it covers any privilege of it (or any privilege at all) on a syscall that can use it
    const decides = (r: ParsedTable['rules'][number]) =>
      (r.syscall === undefined || mine.has(r.syscall)) &&
      ((r.privs === null && r.caps === null) || (r.caps?.has(c.number) ?? false) || privs.some((p) => r.privs?.has(p)));
    const first = table.rules.find(decides);
    let why: string | undefined;
    if (!first) {
      if (table.defaults.action !== 'allow') why = `${cap} is held but the default ${table.defaults.action}s it`;
    } else if (first.action !== 'allow') why = `rule ${first.id} ${first.action}s ${cap}`;
    else if (ruleConditional(first)) why = `rule ${first.id} grants ${cap} only to some programs, users, syscalls or arguments`;
    else if (!(first.caps === null && first.privs === null) && !(first.caps?.has(c.number) && privs.every((p) => first.privs?.has(p)))) {
      why = `rule ${first.id} grants only some privileges of ${cap}`;
    }
    if (why) {
      refined.push(cap);
      reasons[cap] = why;
    }
  }
  if (refined.length) reasons.io_uring = `io_uring could use ${refined.join(', ')} beyond seccomp's reach: refused unless a rule names it`;
  const names = new Set<string>();
  for (const r of table.rules) if (r.syscall !== undefined && (r.action !== 'allow' || ruleConditional({ ...r, syscall: undefined }))) names.add(r.syscall);
  for (const r of table.rules) if (r.syscall !== undefined && r.action === 'allow' && r.syscall.startsWith('io_uring')) names.add(r.syscall);
  const known = new Set(Object.values(groups).flatMap((l) => l.flatMap((e) => e.names)));
  const syscalls = [...names].filter((n) => known.has(n)).sort();
  const recordsCaps = table.defaults.audit === 'all' || table.rules.some((r) => r.audit !== 'none' && ['capget', 'capset', 'prctl'].includes(r.syscall ?? ''));
  if (recordsCaps && !reasons.record) reasons.record = 'the policy records capget/capset';
  const list = Object.keys(groups).filter((g) => reasons[g] !== undefined);
  return { groups: list, refined, reasons, syscalls, empty: list.length === 0 && syscalls.length === 0 };
}

/**
 * The container's filter. Without a plan every group is trapped (the pre-issue-15 behaviour,
 * used by tests of the agent itself). execve is trapped whenever anything is, only so the agent
 * knows when a thread's program changes (its subject cache).
 */
export function buildSeccompProfile(listenerPath: string, arch: NodeJS.Architecture = process.arch, plan?: TrapPlan): SeccompProfile {
  const groups = trapGroups(arch);
  const chosen = plan ? plan.groups : Object.keys(groups);
  const sys: SeccompSyscall[] = [];
  const seen = new Set<string>();
  const entries = [
    ...chosen.flatMap((g) => groups[g] ?? []),
    ...Object.values(groups).flatMap((l) => l.filter((e) => e.names.some((n) => plan?.syscalls.includes(n)))),
  ];
  {
    for (const e of entries) {
      const key = JSON.stringify(e);
      if (seen.has(key)) continue;
      seen.add(key);
      sys.push(e);
    }
  }
  sys.push(notify(['execve', 'execveat']));
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath,
    architectures: [arch === 'arm64' ? 'SCMP_ARCH_AARCH64' : 'SCMP_ARCH_X86_64'],
    syscalls: sys,
  };
}

/** trapPlan for a compiled table (the runner's entry point); a table that does not parse traps everything. */
export function seccompPlan(table: Pick<CompiledTable, 'text'>, bounding: readonly string[], arch: NodeJS.Architecture = process.arch): TrapPlan | undefined {
  const parsed = parseTable(table.text).table;
  return parsed ? trapPlan(parsed, bounding, arch) : undefined;
}
