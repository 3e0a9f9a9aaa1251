import { IOCTL_PRIVILEGES, optionTable, PRCTL_OPTIONS, SIOC, SOL } from '@capulator/abi';

/**
 * The seccomp filter of a capulator container (OCI `linux.seccomp`): everything runs natively
 * except the privileged operations of DESIGN.md, which are sent to the agent (SCMP_ACT_NOTIFY),
 * narrowed by argument filters where the kernel can. runc refuses NOTIFY on `write` and as the
 * default action; fcntl/sendmsg are never trapped (runc#4328, crun#1002).
 */
export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ';
}
export interface SeccompSyscall {
  names: string[];
  action: 'SCMP_ACT_NOTIFY';
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

export function buildSeccompProfile(listenerPath: string, arch: NodeJS.Architecture = process.arch): SeccompProfile {
  const sys: SeccompSyscall[] = [];
  sys.push(notify(['capget', 'capset']));
  for (const v of Object.values(CAP_PRCTL_OPTIONS)) sys.push(notify(['prctl'], [eq(0, v)]));
  sys.push(notify(['socket'], [masked(1, 0xf, 3)])); // SOCK_RAW, any family
  sys.push(notify(['socket'], [eq(0, 17)])); // AF_PACKET
  sys.push(notify(['bind']));
  for (const t of [S_IFCHR, S_IFBLK]) {
    sys.push(notify(['mknodat'], [masked(2, S_IFMT, t)]));
    if (arch === 'x64') sys.push(notify(['mknod'], [masked(1, S_IFMT, t)]));
  }
  sys.push(notify(['setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid']));
  sys.push(notify(arch === 'x64' ? ['chown', 'fchown', 'lchown', 'fchownat'] : ['fchown', 'fchownat']));
  sys.push(notify(['chroot', 'mount', 'umount2', 'pivot_root', 'sethostname', 'setdomainname']));
  sys.push(notify(['settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime', 'reboot']));
  sys.push(notify(['kill'], [{ index: 1, value: 0, op: 'SCMP_CMP_NE' }]));
  sys.push(notify(['tkill'], [{ index: 1, value: 0, op: 'SCMP_CMP_NE' }]));
  sys.push(notify(['tgkill'], [{ index: 2, value: 0, op: 'SCMP_CMP_NE' }]));
  sys.push(notify(['setpriority'], [masked(2, 0x80000000, 0x80000000)])); // negative nice only
  sys.push(notify(['sched_setscheduler'], [masked(1, 0xff, 1)])); // SCHED_FIFO (| SCHED_RESET_ON_FORK)
  sys.push(notify(['sched_setscheduler'], [masked(1, 0xff, 2)])); // SCHED_RR
  sys.push(notify(['setrlimit']));
  sys.push(notify(['prlimit64'], [{ index: 2, value: 0, op: 'SCMP_CMP_NE' }])); // only when setting
  sys.push(notify(['ptrace'], [eq(0, 16)])); // PTRACE_ATTACH
  sys.push(notify(['ptrace'], [eq(0, 0x4206)])); // PTRACE_SEIZE
  sys.push(notify(['init_module', 'finit_module', 'delete_module']));
  for (const [, v] of privilegedIoctls()) sys.push(notify(['ioctl'], [eq(1, v)]));
  for (const [level, option] of SOCKOPTS) {
    const l = SOL[level];
    const o = optionTable(level)?.[option];
    if (l === undefined || o === undefined) throw new Error(`seccomp profile: unknown socket option ${level}/${option}`);
    sys.push(notify(['setsockopt'], [eq(1, l), eq(2, o)]));
  }
  // MRT_* (multicast routing) options 200..211 except MRT_INIT
  for (let o = 201; o <= 211; o++) sys.push(notify(['setsockopt'], [eq(1, 0), eq(2, o)]));
  // execve is trapped only so the agent knows when a thread's program changes (its subject cache).
  sys.push(notify(['execve', 'execveat']));
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath,
    architectures: [arch === 'arm64' ? 'SCMP_ARCH_AARCH64' : 'SCMP_ARCH_X86_64'],
    syscalls: sys,
  };
}
