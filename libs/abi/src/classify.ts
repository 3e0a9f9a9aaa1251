/**
 * Classifier: a trapped syscall and its decoded arguments → the priv(9) privileges it uses.
 *
 * The rules follow the kernel's own checks (Linux 6.1, the version of the headers these tables
 * come from); each branch names the kernel function it mirrors. Argument names are the decoded
 * names fixed in docs/contracts.md (family, type, protocol, port, addr, level, option, uid, gid,
 * uids, gids, mode, path, target_pid, signal, request, resource, option_name, caps). Where the
 * kernel's decision rests on state the syscall's registers do not carry, the classifier takes
 * extra, optional arguments the agent can supply (documented per syscall below and in
 * CLASSIFIER_EXTRA_ARGS); without them it errs on the privileged side and says so in `reason`.
 *
 * Pure: no I/O, no clock, no randomness.
 */
import { capabilityByName, capabilityByNumber } from './capabilities';
import { privilegesOfCapability } from './capmap';
import {
  AF,
  PRCTL_OPTIONS,
  PTRACE_REQUESTS,
  SCHED_POLICIES,
  SIOC,
  SOCK,
  SOL,
  S_IFBLK,
  S_IFCHR,
  S_IFMT,
  canonicalLevel,
  constantName,
  optionTable,
  CLOCKS,
  SOCK_TYPE_MASK,
  IPPROTO,
} from './constants';
import type { Arch } from './syscalls.generated';
import { syscallName } from './syscalls.generated';

export type ArgValue = number | string | boolean | string[] | number[];

export interface Subject {
  uid: number;
  euid: number;
  suid: number;
  gid: number;
  egid: number;
  sgid: number;
  /** Filesystem uid/gid (default: euid/egid). */
  fsuid?: number;
  fsgid?: number;
  /** Supplementary groups. */
  groups?: number[];
}

export interface ClassifyInput {
  /** Syscall name (e.g. "socket"); a number, or a numeric string, is looked up in the arch's table. */
  syscall: string | number;
  args?: Record<string, ArgValue | undefined>;
  subject?: Partial<Subject>;
}

export interface Classification {
  /** The priv(9) privileges the operation uses ([] when it is unprivileged). */
  privileges: string[];
  /** The capability Linux checks (the first of `capabilities`), or null. */
  capability: string | null;
  unprivileged: boolean;
  /** One line, for events and `policy explain`. */
  reason: string;
  /** Every capability any one of which Linux accepts (e.g. IP_TRANSPARENT: CAP_NET_RAW, CAP_NET_ADMIN); for capset, the capabilities being added. */
  capabilities: string[];
  /** The syscall name the classification was made for. */
  syscall: string;
}

/** Optional arguments beyond the contract's decoded names that sharpen a classification. */
export const CLASSIFIER_EXTRA_ARGS: Readonly<Record<string, string>> = Object.freeze({
  dev: 'mknod(at): the device number (char 0:0 is an overlayfs whiteout, which needs no CAP_MKNOD)',
  ruid: 'setreuid: the new real uid (-1: unchanged); likewise euid, and rgid/egid for setregid',
  owner_uid: 'chown family: the file\'s current owner (with owner_gid); without it any change is privileged',
  owner_gid: 'chown family: the file\'s current group',
  value: 'setsockopt: the integer option value (SO_PRIORITY, SO_DEBUG, IP_TRANSPARENT)',
  bound_to_device: 'setsockopt SO_BINDTODEVICE/SO_BINDTOIFINDEX: true when the socket is already bound to a device',
  modes: 'adjtimex/clock_adjtime: the struct timex modes field',
  clock: 'clock_settime/timer_create/timerfd_create: the clock id (number or CLOCK_* name)',
  target_uid: 'kill family, ptrace, setpriority, sched_*: the real uid of the target process',
  target_euid: 'ptrace, setpriority: the effective uid of the target',
  target_suid: 'kill family, ptrace: the saved uid of the target',
  target_gid: 'ptrace: the target\'s real gid (with target_egid, target_sgid)',
  target_dumpable: 'ptrace: false when the target is not dumpable',
  nice: 'setpriority/sched_setattr: the new nice value; current_nice the present one (default 0)',
  inc: 'nice: the increment',
  policy: 'sched_setscheduler/sched_setattr: SCHED_* name or number; priority: the RT priority',
  hard: 'setrlimit/prlimit64: the new hard limit (number, -1 or "RLIM_INFINITY"); current_hard the present one',
  raises_hard: 'setrlimit/prlimit64: true/false when the agent already compared the hard limits',
  cap: 'prctl PR_CAP_AMBIENT: the capability (name or number); ambient_op: the PR_CAP_AMBIENT_* sub-operation',
  cmd: 'reboot: the LINUX_REBOOT_CMD_* command',
  action: 'syslog: the SYSLOG_ACTION_* number',
  level_io: 'iopl: the new I/O privilege level; turn_on for ioperm',
  flags: 'unshare/clone: the CLONE_* flags; open_tree: the OPEN_TREE_* flags',
});

type Args = Record<string, ArgValue | undefined>;
type Handler = (sc: string, a: Args, s: Partial<Subject> | undefined) => Omit<Classification, 'syscall'>;

function privileged(privileges: string[], capability: string, reason: string, capabilities: string[] = [capability]): Omit<Classification, 'syscall'> {
  return { privileges, capability, unprivileged: false, reason, capabilities };
}

function unprivileged(reason: string): Omit<Classification, 'syscall'> {
  return { privileges: [], capability: null, unprivileged: true, reason, capabilities: [] };
}

/** A number from a number, a numeric string ("0x1f", "-1", "755" is decimal) or a boolean. */
function num(a: Args, key: string): number | undefined {
  const v = a[key];
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && /^-?(0x[0-9a-f]+|\d+)$/i.test(v.trim())) return Number(v.trim());
  return undefined;
}

/** A constant name from a name (any case) or a number looked up in `table`. */
function constName(a: Args, key: string, table: Readonly<Record<string, number>>, prefix = ''): string | undefined {
  const v = a[key];
  if (typeof v === 'string' && !/^-?(0x[0-9a-f]+|\d+)$/i.test(v.trim())) {
    const n = v.trim().toUpperCase();
    return prefix && !n.startsWith(prefix) ? prefix + n : n;
  }
  const n = num(a, key);
  return n === undefined ? undefined : constantName(table, n) ?? String(n);
}

function bool(a: Args, key: string): boolean | undefined {
  const v = a[key];
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 1) return true;
  if (v === 'false' || v === 0) return false;
  return undefined;
}

function numList(a: Args, key: string): number[] | undefined {
  const v = a[key];
  if (!Array.isArray(v)) return undefined;
  const out: number[] = [];
  for (const x of v as Array<string | number>) {
    const n = typeof x === 'number' ? x : Number(x);
    if (!Number.isFinite(n)) return undefined;
    out.push(n);
  }
  return out;
}

function strList(a: Args, key: string): string[] | undefined {
  const v = a[key];
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v)) return (v as Array<string | number>).map((x) => String(x));
  return undefined;
}

function hasIds(s: Partial<Subject> | undefined, keys: Array<keyof Subject>): s is Subject {
  return !!s && keys.every((k) => typeof s[k] === 'number');
}

const NO_CHANGE = -1;
const isNoChange = (n: number) => n === NO_CHANGE || n === 0xffffffff;

// ---- capabilities --------------------------------------------------------------------------

function capNames(list: string[]): { known: string[]; unknown: string[] } {
  const known: string[] = [];
  const unknown: string[] = [];
  for (const raw of list) {
    const c = /^\d+$/.test(raw.trim()) ? capabilityByNumber(Number(raw.trim())) : capabilityByName(raw.trim());
    if (c) {
      if (!known.includes(c.name)) known.push(c.name);
    } else unknown.push(raw);
  }
  return { known, unknown };
}

function growth(caps: string[], what: string): Omit<Classification, 'syscall'> {
  const { known, unknown } = capNames(caps);
  if (known.length === 0 && unknown.length === 0) return unprivileged(`${what} adds no capability`);
  const privs: string[] = [];
  for (const c of known) for (const p of privilegesOfCapability(c)) if (!privs.includes(p)) privs.push(p);
  const extra = unknown.length ? `; unknown capabilities ${unknown.join(', ')}` : '';
  return {
    privileges: privs,
    capability: known[0] ?? null,
    unprivileged: false,
    reason: `${what} adds ${known.join(', ') || 'unknown capabilities'}${extra}`,
    capabilities: known,
  };
}

const capget: Handler = () => unprivileged('capget reads capability sets; no privilege is needed');

/** capset: privileged only when it adds capabilities (args.caps: the CAP names being added). */
const capset: Handler = (_sc, a) => {
  const caps = strList(a, 'caps') ?? [];
  if (caps.length === 0) return unprivileged('capset only drops or keeps capabilities');
  return growth(caps, 'capset');
};

/** prctl: the capability prctl()s (kernel/sys.c, security/commoncap.c cap_task_prctl). */
const prctl: Handler = (_sc, a) => {
  const option = constName(a, 'option_name', PRCTL_OPTIONS, 'PR_') ?? constName(a, 'option', PRCTL_OPTIONS, 'PR_');
  switch (option) {
    case 'PR_CAPBSET_READ':
    case 'PR_GET_SECUREBITS':
    case 'PR_GET_KEEPCAPS':
    case 'PR_SET_KEEPCAPS':
      return unprivileged(`${option} needs no privilege`);
    case 'PR_CAPBSET_DROP':
      return privileged(['PRIV_LINUX_SETPCAP'], 'CAP_SETPCAP', 'PR_CAPBSET_DROP needs CAP_SETPCAP (cap_prctl_drop)');
    case 'PR_SET_SECUREBITS':
      return privileged(['PRIV_LINUX_SETPCAP'], 'CAP_SETPCAP', 'PR_SET_SECUREBITS needs CAP_SETPCAP (cap_task_prctl)');
    case 'PR_CAP_AMBIENT': {
      const AMB = { PR_CAP_AMBIENT_IS_SET: 1, PR_CAP_AMBIENT_RAISE: 2, PR_CAP_AMBIENT_LOWER: 3, PR_CAP_AMBIENT_CLEAR_ALL: 4 };
      const op = constName(a, 'ambient_op', AMB, 'PR_CAP_AMBIENT_') ?? constName(a, 'arg2', AMB, 'PR_CAP_AMBIENT_');
      if (op === 'PR_CAP_AMBIENT_RAISE') {
        const caps = strList(a, 'caps') ?? (a.cap !== undefined ? [String(a.cap)] : a.arg3 !== undefined ? [String(a.arg3)] : []);
        if (caps.length === 0) return { privileges: [], capability: null, unprivileged: false, reason: 'PR_CAP_AMBIENT_RAISE of an unknown capability', capabilities: [] };
        const g = growth(caps, 'PR_CAP_AMBIENT_RAISE');
        return { ...g, reason: g.reason + ' to the ambient set (Linux requires it in permitted and inheritable; capulator decides it like capset growth)' };
      }
      if (op === undefined) return unprivileged('PR_CAP_AMBIENT without a sub-operation; only RAISE adds a capability');
      return unprivileged(`PR_CAP_AMBIENT ${op.replace('PR_CAP_AMBIENT_', '')} only reads or lowers the ambient set`);
    }
    default:
      return unprivileged(option ? `${option} is not a capability prctl` : 'prctl option unknown; not a capability prctl');
  }
};

// ---- files ---------------------------------------------------------------------------------

/** mknod(at): vfs_mknod — char/block devices need CAP_MKNOD unless a whiteout (char 0:0). */
const mknod: Handler = (sc, a) => {
  const mode = num(a, 'mode');
  if (mode === undefined) return privileged(['PRIV_VFS_MKNOD_DEV'], 'CAP_MKNOD', `${sc} with an unknown mode may create a device`);
  const type = mode & S_IFMT;
  if (type === S_IFCHR && num(a, 'dev') === 0) return unprivileged(`${sc} of a whiteout (char 0:0) needs no CAP_MKNOD`);
  if (type === S_IFCHR || type === S_IFBLK) {
    return privileged(['PRIV_VFS_MKNOD_DEV'], 'CAP_MKNOD', `${sc} of a ${type === S_IFCHR ? 'character' : 'block'} device needs CAP_MKNOD`);
  }
  return unprivileged(`${sc} of a fifo, socket or regular file needs no privilege`);
};

/** chown family: chown_ok()/chgrp_ok() in fs/attr.c. */
const chown: Handler = (sc, a, s) => {
  const uid = num(a, 'uid');
  const gid = num(a, 'gid');
  const uidNoop = uid === undefined ? false : isNoChange(uid);
  const gidNoop = gid === undefined ? false : isNoChange(gid);
  if (uidNoop && gidNoop) return unprivileged(`${sc}(-1, -1) changes nothing`);
  const owner = num(a, 'owner_uid');
  const ownerGid = num(a, 'owner_gid');
  const fsuid = s?.fsuid ?? s?.euid;
  const fsgid = s?.fsgid ?? s?.egid;
  if (owner !== undefined && fsuid !== undefined && fsuid === owner && uid !== undefined && gid !== undefined) {
    const uidOk = uidNoop || uid === owner;
    const groups = [fsgid, ...(s?.groups ?? [])];
    const gidOk = gidNoop || gid === ownerGid || groups.includes(gid);
    if (uidOk && gidOk) return unprivileged(`${sc} by the file's owner to a group it belongs to needs no privilege`);
  }
  return privileged(['PRIV_VFS_CHOWN'], 'CAP_CHOWN', `${sc} changing ${!uidNoop ? 'the owner' : 'the group'} needs CAP_CHOWN unless the caller owns the file and keeps the owner`);
};

const chroot: Handler = (sc) => privileged(['PRIV_VFS_CHROOT'], 'CAP_SYS_CHROOT', `${sc} needs CAP_SYS_CHROOT`);
const mount: Handler = (sc) => privileged(['PRIV_VFS_MOUNT'], 'CAP_SYS_ADMIN', `${sc} needs CAP_SYS_ADMIN (may_mount)`);
const umount: Handler = (sc) => privileged(['PRIV_VFS_UNMOUNT'], 'CAP_SYS_ADMIN', `${sc} needs CAP_SYS_ADMIN (may_mount)`);
/** fsconfig acts on a context from fsopen/fspick (both may_mount); FSCONFIG_CMD_CREATE/RECONFIGURE check mount_capable again. */
const fsconfig: Handler = (sc) => privileged(['PRIV_VFS_MOUNT'], 'CAP_SYS_ADMIN', `${sc} configures a filesystem context for mounting: CAP_SYS_ADMIN (mount_capable)`);
const OPEN_TREE_CLONE = 1;
/** open_tree: only OPEN_TREE_CLONE makes a detached copy of a mount (may_mount); otherwise it is an O_PATH open. */
const openTree: Handler = (sc, a) => {
  const flags = num(a, 'flags');
  if (flags !== undefined && (flags & OPEN_TREE_CLONE) === 0) return unprivileged(`${sc} without OPEN_TREE_CLONE opens a path (O_PATH); no privilege`);
  return privileged(['PRIV_VFS_MOUNT'], 'CAP_SYS_ADMIN', `${sc}(OPEN_TREE_CLONE) copies a mount tree: CAP_SYS_ADMIN (may_mount)`);
};

// ---- namespaces ----------------------------------------------------------------------------

/** CLONE_NEW* flags other than CLONE_NEWUSER (create_new_namespaces: ns_capable(CAP_SYS_ADMIN)). */
export const CLONE_NEW_PRIVILEGED: Readonly<Record<string, number>> = Object.freeze({
  CLONE_NEWNS: 0x00020000, CLONE_NEWCGROUP: 0x02000000, CLONE_NEWUTS: 0x04000000, CLONE_NEWIPC: 0x08000000,
  CLONE_NEWPID: 0x20000000, CLONE_NEWNET: 0x40000000, CLONE_NEWTIME: 0x00000080,
});
/** unshare/clone: a new namespace other than a user namespace needs CAP_SYS_ADMIN (in the current user namespace). */
const newNamespace: Handler = (sc, a) => {
  const flags = num(a, 'flags');
  if (flags === undefined) return privileged(['PRIV_JAIL_SET'], 'CAP_SYS_ADMIN', `${sc} with unknown flags may create namespaces: CAP_SYS_ADMIN`);
  const ns = Object.entries(CLONE_NEW_PRIVILEGED).filter(([, v]) => (flags & v) !== 0).map(([n]) => n);
  if (ns.length === 0) return unprivileged(`${sc} creates no namespace other than a user namespace`);
  return privileged(['PRIV_JAIL_SET'], 'CAP_SYS_ADMIN', `${sc}(${ns.join('|')}) creates namespaces: CAP_SYS_ADMIN`);
};
/** setns: joining a namespace needs CAP_SYS_ADMIN (CAP_SYS_CHROOT too for a mount namespace). */
const setns: Handler = (sc) => privileged(['PRIV_JAIL_ATTACH'], 'CAP_SYS_ADMIN', `${sc} joins a namespace: CAP_SYS_ADMIN in its owner user namespace`);

// ---- io_uring ------------------------------------------------------------------------------

/**
 * io_uring: the ring performs bind (IORING_OP_BIND), socket (IORING_OP_SOCKET, raw and packet
 * too), setsockopt (IORING_OP_URING_CMD) and more inside the kernel, out of reach of seccomp. The
 * kernel still checks the container's capability sets there, but not the policy's arguments or
 * programs, so capulator treats the ring itself as privileged: it is refused unless a rule allows
 * the syscall by name (the agent never lets a default allow it).
 */
const ioUring: Handler = (sc) => ({
  privileges: [],
  capability: null,
  unprivileged: false,
  reason: `${sc}: io_uring performs bind/socket/setsockopt beyond seccomp's reach; allowed only by a rule naming it`,
  capabilities: [],
});

// ---- credentials ---------------------------------------------------------------------------

type IdKind = 'uid' | 'gid';
const CRED = {
  uid: { cap: 'CAP_SETUID', r: 'uid', e: 'euid', s: 'suid', fs: 'fsuid' },
  gid: { cap: 'CAP_SETGID', r: 'gid', e: 'egid', s: 'sgid', fs: 'fsgid' },
} as const;

function credCheck(sc: string, kind: IdKind, priv: string, targets: number[] | undefined, allowed: (s: Subject) => number[], s: Partial<Subject> | undefined, what: string): Omit<Classification, 'syscall'> {
  const c = CRED[kind];
  if (targets === undefined) return privileged([priv], c.cap, `${sc}: target ${kind}s unknown; assumed to need ${c.cap}`);
  const real = targets.filter((t) => !isNoChange(t));
  if (real.length === 0) return unprivileged(`${sc} changes no ${kind}`);
  if (!hasIds(s, [c.r, c.e, c.s] as Array<keyof Subject>)) {
    return privileged([priv], c.cap, `${sc}: the subject's ${kind}s are unknown; assumed to need ${c.cap}`);
  }
  const ok = allowed(s);
  if (real.every((t) => ok.includes(t))) return unprivileged(`${sc} to ${kind} ${real.join(', ')} the process already holds (${what}) needs no privilege`);
  return privileged([priv], c.cap, `${sc} to ${kind} ${real.filter((t) => !ok.includes(t)).join(', ')} not held (${what}) needs ${c.cap}`);
}

const setuidLike = (kind: IdKind): Handler => (sc, a, s) => {
  // __sys_setuid: without CAP_SETUID the new id must be the real or saved id.
  const c = CRED[kind];
  const t = num(a, kind);
  return credCheck(sc, kind, kind === 'uid' ? 'PRIV_CRED_SETUID' : 'PRIV_CRED_SETGID', t === undefined ? undefined : [t],
    (x) => [x[c.r], x[c.s]], s, `real or saved`);
};

const setreuidLike = (kind: IdKind): Handler => (sc, a, s) => {
  // __sys_setreuid: new real ∈ {real, effective}; new effective ∈ {real, effective, saved}.
  const c = CRED[kind];
  const priv = kind === 'uid' ? 'PRIV_CRED_SETREUID' : 'PRIV_CRED_SETREGID';
  const r = num(a, kind === 'uid' ? 'ruid' : 'rgid');
  const e = num(a, kind === 'uid' ? 'euid' : 'egid');
  if (r !== undefined || e !== undefined) {
    if (!hasIds(s, [c.r, c.e, c.s] as Array<keyof Subject>)) return privileged([priv], c.cap, `${sc}: the subject's ${kind}s are unknown; assumed to need ${c.cap}`);
    const rOk = r === undefined || isNoChange(r) || r === s[c.r] || r === s[c.e];
    const eOk = e === undefined || isNoChange(e) || e === s[c.r] || e === s[c.e] || e === s[c.s];
    if (rOk && eOk) return unprivileged(`${sc} to ${kind}s the process already holds needs no privilege`);
    return privileged([priv], c.cap, `${sc} to a ${kind} the process does not hold needs ${c.cap}`);
  }
  const list = numList(a, kind === 'uid' ? 'uids' : 'gids') ?? (num(a, kind) !== undefined ? [num(a, kind)!] : undefined);
  return credCheck(sc, kind, priv, list, (x) => [x[c.r], x[c.e], x[c.s]], s, 'real, effective or saved');
};

const setresuidLike = (kind: IdKind): Handler => (sc, a, s) => {
  // __sys_setresuid: each new id ∈ {real, effective, saved}.
  const c = CRED[kind];
  const list = numList(a, kind === 'uid' ? 'uids' : 'gids') ?? (num(a, kind) !== undefined ? [num(a, kind)!] : undefined);
  return credCheck(sc, kind, kind === 'uid' ? 'PRIV_CRED_SETRESUID' : 'PRIV_CRED_SETRESGID', list, (x) => [x[c.r], x[c.e], x[c.s]], s, 'real, effective or saved');
};

const setfsuidLike = (kind: IdKind): Handler => (sc, a, s) => {
  // __sys_setfsuid: new fsuid ∈ {real, effective, saved, fs}. FreeBSD has no fs ids: the closest is seteuid.
  const c = CRED[kind];
  const t = num(a, kind);
  return credCheck(sc, kind, kind === 'uid' ? 'PRIV_CRED_SETEUID' : 'PRIV_CRED_SETEGID', t === undefined ? undefined : [t],
    (x) => [x[c.r], x[c.e], x[c.s], x[c.fs] ?? x[c.e]], s, 'real, effective, saved or fs');
};

const setgroups: Handler = (sc) => privileged(['PRIV_CRED_SETGROUPS'], 'CAP_SETGID', `${sc} always needs CAP_SETGID (may_setgroups)`);

// ---- network -------------------------------------------------------------------------------

const INET = new Set(['AF_INET', 'AF_INET6']);

/** socket: af_packet (packet_create), inet_create (SOCK_RAW), pfkey_create. */
const socket: Handler = (sc, a) => {
  const family = constName(a, 'family', AF, 'AF_');
  let type: string | undefined;
  const tnum = num(a, 'type');
  if (tnum !== undefined) type = constantName(SOCK, tnum & SOCK_TYPE_MASK) ?? String(tnum & SOCK_TYPE_MASK);
  else type = constName(a, 'type', SOCK, 'SOCK_');
  const protocol = num(a, 'protocol') ?? (typeof a.protocol === 'string' ? IPPROTO[a.protocol.toUpperCase()] : undefined);
  if (family === 'AF_PACKET') return privileged(['PRIV_NET_RAW'], 'CAP_NET_RAW', 'AF_PACKET sockets need CAP_NET_RAW (packet_create)');
  if (type === 'SOCK_PACKET') return privileged(['PRIV_NET_RAW'], 'CAP_NET_RAW', 'SOCK_PACKET sockets are packet sockets and need CAP_NET_RAW');
  if (family !== undefined && INET.has(family) && type === 'SOCK_RAW') {
    return privileged(['PRIV_NETINET_RAW'], 'CAP_NET_RAW', `raw ${family === 'AF_INET' ? 'IPv4' : 'IPv6'} sockets need CAP_NET_RAW (inet_create)`);
  }
  if (family === 'AF_KEY') return privileged(['PRIV_NETINET_IPSEC'], 'CAP_NET_ADMIN', 'PF_KEY sockets need CAP_NET_ADMIN (pfkey_create)');
  if (family !== undefined && INET.has(family) && type === 'SOCK_DGRAM' && (protocol === 1 || protocol === 58)) {
    return unprivileged('ICMP datagram (ping) sockets are governed by net.ipv4.ping_group_range, not a capability');
  }
  return unprivileged(`socket(${family ?? '?'}, ${type ?? '?'}) needs no privilege`);
};

/** bind: inet_bind/inet6_bind — a port below ip_unprivileged_port_start (1024) needs CAP_NET_BIND_SERVICE. */
const bind: Handler = (sc, a) => {
  const family = constName(a, 'family', AF, 'AF_');
  if (family !== undefined && !INET.has(family)) return unprivileged(`bind on ${family} needs no privilege`);
  const port = num(a, 'port');
  if (port === undefined) return unprivileged('bind without a port needs no privilege');
  if (port === 0) return unprivileged('bind to port 0 picks an ephemeral port; no privilege');
  if (port > 0 && port < 1024) return privileged(['PRIV_NETINET_RESERVEDPORT'], 'CAP_NET_BIND_SERVICE', `bind to reserved port ${port} needs CAP_NET_BIND_SERVICE`);
  return unprivileged(`bind to port ${port} needs no privilege`);
};

const RAW_OR_ADMIN = ['CAP_NET_RAW', 'CAP_NET_ADMIN'];

/** setsockopt: sock_setsockopt (net/core/sock.c), do_ip_setsockopt, do_ipv6_setsockopt, do_tcp_setsockopt. */
const setsockopt: Handler = (sc, a) => {
  const lnum = num(a, 'level');
  const level = lnum !== undefined ? constantName(SOL, lnum) ?? String(lnum) : typeof a.level === 'string' ? canonicalLevel(a.level) : undefined;
  const table = level ? optionTable(level) : undefined;
  const onum = num(a, 'option');
  const option = onum !== undefined ? (table ? constantName(table, onum) : undefined) ?? String(onum) : typeof a.option === 'string' ? a.option.toUpperCase() : undefined;
  const value = num(a, 'value');
  const at = `setsockopt(${level ?? '?'}, ${option ?? '?'})`;
  switch (level) {
    case 'SOL_SOCKET':
      switch (option) {
        case 'SO_MARK':
          return privileged(['PRIV_LINUX_SO_MARK'], 'CAP_NET_RAW', `${at} needs CAP_NET_RAW or CAP_NET_ADMIN`, RAW_OR_ADMIN);
        case 'SO_PRIORITY':
          if (value !== undefined && value >= 0 && value <= 6) return unprivileged(`${at} to ${value} (0..6) needs no privilege`);
          return privileged(['PRIV_LINUX_SO_PRIORITY'], 'CAP_NET_RAW', `${at} ${value === undefined ? 'with an unknown value' : 'to ' + value} outside 0..6 needs CAP_NET_RAW or CAP_NET_ADMIN`, RAW_OR_ADMIN);
        case 'SO_BINDTODEVICE':
        case 'SO_BINDTOIFINDEX':
          if (bool(a, 'bound_to_device') === true) return privileged(['PRIV_LINUX_SO_BINDTODEVICE'], 'CAP_NET_RAW', `${at} on a socket already bound to a device needs CAP_NET_RAW`);
          return unprivileged(`${at} on a socket not yet bound to a device needs no privilege (Linux >= 5.7)`);
        case 'SO_DEBUG':
          if (value === 0) return unprivileged(`${at} to 0 needs no privilege`);
          return privileged(['PRIV_LINUX_SO_DEBUG'], 'CAP_NET_ADMIN', `${at} needs CAP_NET_ADMIN`);
        case 'SO_SNDBUFFORCE':
        case 'SO_RCVBUFFORCE':
          return privileged(['PRIV_LINUX_SOCKBUF_FORCE'], 'CAP_NET_ADMIN', `${at} needs CAP_NET_ADMIN`);
        default:
          return unprivileged(`${at} needs no privilege`);
      }
    case 'SOL_IP':
      if (option === 'IP_TRANSPARENT') {
        if (value === 0) return unprivileged(`${at} to 0 needs no privilege`);
        return privileged(['PRIV_NETINET_BINDANY'], 'CAP_NET_RAW', `${at} needs CAP_NET_RAW or CAP_NET_ADMIN`, RAW_OR_ADMIN);
      }
      if (option === 'IP_IPSEC_POLICY' || option === 'IP_XFRM_POLICY') return privileged(['PRIV_NETINET_IPSEC'], 'CAP_NET_ADMIN', `${at} needs CAP_NET_ADMIN`);
      if (option !== undefined && option.startsWith('MRT_') && option !== 'MRT_INIT') {
        return privileged(['PRIV_NETINET_MROUTE'], 'CAP_NET_ADMIN', `${at} needs CAP_NET_ADMIN unless on the multicast routing socket`);
      }
      return unprivileged(`${at} needs no privilege`);
    case 'SOL_IPV6':
      if (option === 'IPV6_TRANSPARENT') {
        if (value === 0) return unprivileged(`${at} to 0 needs no privilege`);
        return privileged(['PRIV_NETINET_BINDANY'], 'CAP_NET_RAW', `${at} needs CAP_NET_RAW or CAP_NET_ADMIN`, RAW_OR_ADMIN);
      }
      if (option === 'IPV6_HOPOPTS' || option === 'IPV6_RTHDRDSTOPTS' || option === 'IPV6_DSTOPTS') {
        return privileged(['PRIV_NETINET_SETHDROPTS'], 'CAP_NET_RAW', `${at} needs CAP_NET_RAW`);
      }
      if (option === 'IPV6_IPSEC_POLICY' || option === 'IPV6_XFRM_POLICY') return privileged(['PRIV_NETINET_IPSEC'], 'CAP_NET_ADMIN', `${at} needs CAP_NET_ADMIN`);
      return unprivileged(`${at} needs no privilege`);
    case 'SOL_TCP':
      if (option === 'TCP_REPAIR') return privileged(['PRIV_LINUX_TCP_REPAIR'], 'CAP_NET_ADMIN', `${at} needs CAP_NET_ADMIN (tcp_can_repair_sock)`);
      return unprivileged(`${at} needs no privilege`);
    default:
      return unprivileged(`${at} needs no privilege`);
  }
};

/** Interface/route ioctls (dev_ioctl, ip_rt_ioctl, arp_ioctl, br_ioctl, bond): CAP_NET_ADMIN. */
export const IOCTL_PRIVILEGES: Readonly<Record<string, string>> = Object.freeze({
  SIOCSIFFLAGS: 'PRIV_NET_SETIFFLAGS',
  SIOCSIFPFLAGS: 'PRIV_NET_SETIFFLAGS',
  SIOCSIFMTU: 'PRIV_NET_SETIFMTU',
  SIOCSIFNAME: 'PRIV_NET_SETIFNAME',
  SIOCSIFMETRIC: 'PRIV_NET_SETIFMETRIC',
  SIOCSIFHWADDR: 'PRIV_NET_SETLLADDR',
  SIOCSIFHWBROADCAST: 'PRIV_NET_SETLLADDR',
  SIOCSIFADDR: 'PRIV_NET_ADDIFADDR',
  SIOCSIFDSTADDR: 'PRIV_NET_ADDIFADDR',
  SIOCSIFBRDADDR: 'PRIV_NET_ADDIFADDR',
  SIOCSIFNETMASK: 'PRIV_NET_ADDIFADDR',
  SIOCDIFADDR: 'PRIV_NET_DELIFADDR',
  SIOCSIFMAP: 'PRIV_NET_SETIFPHYS',
  SIOCSIFTXQLEN: 'PRIV_NET_HWIOCTL',
  SIOCSMIIREG: 'PRIV_NET_HWIOCTL',
  SIOCSHWTSTAMP: 'PRIV_NET_HWIOCTL',
  SIOCADDMULTI: 'PRIV_NET_ADDMULTI',
  SIOCDELMULTI: 'PRIV_NET_DELMULTI',
  SIOCADDRT: 'PRIV_NET_ROUTE',
  SIOCDELRT: 'PRIV_NET_ROUTE',
  SIOCSARP: 'PRIV_NET_ROUTE',
  SIOCDARP: 'PRIV_NET_ROUTE',
  SIOCSIFBR: 'PRIV_NET_BRIDGE',
  SIOCBRADDBR: 'PRIV_NET_BRIDGE',
  SIOCBRDELBR: 'PRIV_NET_BRIDGE',
  SIOCBRADDIF: 'PRIV_NET_BRIDGE',
  SIOCBRDELIF: 'PRIV_NET_BRIDGE',
  SIOCBONDENSLAVE: 'PRIV_NET_LAGG',
  SIOCBONDRELEASE: 'PRIV_NET_LAGG',
  SIOCBONDSETHWADDR: 'PRIV_NET_LAGG',
  SIOCBONDCHANGEACTIVE: 'PRIV_NET_LAGG',
  SIOCSIFVLAN: 'PRIV_NET_IFCREATE',
});

/** TIOCSTI (drivers/tty/tty_io.c tiocsti): CAP_SYS_ADMIN unless the tty is the caller's controlling tty and dev.tty.legacy_tiocsti=1. */
export const TIOCSTI = 0x5412;
const ioctl: Handler = (sc, a) => {
  if (num(a, 'request') === TIOCSTI || a.request === 'TIOCSTI') return privileged(['PRIV_TTY_STI'], 'CAP_SYS_ADMIN', 'ioctl TIOCSTI injects terminal input: CAP_SYS_ADMIN');
  const request = constName(a, 'request', SIOC);
  if (request && IOCTL_PRIVILEGES[request]) return privileged([IOCTL_PRIVILEGES[request]], 'CAP_NET_ADMIN', `ioctl ${request} needs CAP_NET_ADMIN`);
  return unprivileged(`ioctl ${request ?? '?'} is not a privileged interface request`);
};

// ---- time, reboot, modules ----------------------------------------------------------------

const settimeofday: Handler = (sc) => privileged(['PRIV_SETTIMEOFDAY'], 'CAP_SYS_TIME', `${sc} needs CAP_SYS_TIME`);
const clockSettime: Handler = (sc) => privileged(['PRIV_CLOCK_SETTIME'], 'CAP_SYS_TIME', `${sc} needs CAP_SYS_TIME`);
const ADJ_ADJTIME = 0x8000;
const ADJ_OFFSET_READONLY = 0x2000;

/** adjtimex/clock_adjtime: timekeeping_validate_timex — any mode bit except the read-only forms needs CAP_SYS_TIME. */
const adjtimex: Handler = (sc, a) => {
  const modes = num(a, 'modes');
  if (modes === undefined) return privileged(['PRIV_NTP_ADJTIME'], 'CAP_SYS_TIME', `${sc} with unknown modes may set the clock; needs CAP_SYS_TIME`);
  if (modes & ADJ_ADJTIME) {
    if (modes & ADJ_OFFSET_READONLY) return unprivileged(`${sc}(ADJ_OFFSET_SS_READ) only reads`);
    return privileged(['PRIV_ADJTIME'], 'CAP_SYS_TIME', `${sc}(ADJ_OFFSET_SINGLESHOT) is adjtime(2): needs CAP_SYS_TIME`);
  }
  if (modes === 0) return unprivileged(`${sc} with modes 0 only reads`);
  return privileged(['PRIV_NTP_ADJTIME'], 'CAP_SYS_TIME', `${sc} setting modes 0x${modes.toString(16)} is ntp_adjtime(2): needs CAP_SYS_TIME`);
};

const ALARM_CLOCKS = new Set(['CLOCK_REALTIME_ALARM', 'CLOCK_BOOTTIME_ALARM']);
/** timer_create/timerfd_create on an alarm clock: alarm_clock_get/timerfd_create need CAP_WAKE_ALARM. */
const alarmTimer: Handler = (sc, a) => {
  const clock = constName(a, 'clock', CLOCKS, 'CLOCK_') ?? constName(a, 'clockid', CLOCKS, 'CLOCK_');
  if (clock && ALARM_CLOCKS.has(clock)) return privileged(['PRIV_LINUX_WAKE_ALARM'], 'CAP_WAKE_ALARM', `${sc} on ${clock} needs CAP_WAKE_ALARM`);
  return unprivileged(`${sc} on ${clock ?? 'a non-alarm clock'} needs no privilege`);
};

const reboot: Handler = (sc) => privileged(['PRIV_REBOOT'], 'CAP_SYS_BOOT', `${sc} needs CAP_SYS_BOOT`);
const loadModule: Handler = (sc) => privileged(['PRIV_KLD_LOAD'], 'CAP_SYS_MODULE', `${sc} needs CAP_SYS_MODULE`);
const unloadModule: Handler = (sc) => privileged(['PRIV_KLD_UNLOAD'], 'CAP_SYS_MODULE', `${sc} needs CAP_SYS_MODULE`);
const sethostname: Handler = (sc) => privileged(['PRIV_SYSCTL_WRITE'], 'CAP_SYS_ADMIN', `${sc} needs CAP_SYS_ADMIN (FreeBSD: a kern.hostname/kern.domainname sysctl write)`);
const swapon: Handler = (sc) => privileged(['PRIV_SWAPON'], 'CAP_SYS_ADMIN', `${sc} needs CAP_SYS_ADMIN`);
const swapoff: Handler = (sc) => privileged(['PRIV_SWAPOFF'], 'CAP_SYS_ADMIN', `${sc} needs CAP_SYS_ADMIN`);
const acct: Handler = (sc) => privileged(['PRIV_ACCT'], 'CAP_SYS_PACCT', `${sc} needs CAP_SYS_PACCT`);
/** open_by_handle_at: handle_to_path — opening by file handle bypasses path permissions: CAP_DAC_READ_SEARCH ("shocker"). */
const openByHandle: Handler = (sc) => privileged(['PRIV_VFS_FHOPEN'], 'CAP_DAC_READ_SEARCH', `${sc} opens a file by handle, past every directory permission: CAP_DAC_READ_SEARCH`);
/** kexec_load/kexec_file_load: load a new kernel to boot into: CAP_SYS_BOOT. */
const kexec: Handler = (sc) => privileged(['PRIV_REBOOT'], 'CAP_SYS_BOOT', `${sc} loads a kernel to reboot into: CAP_SYS_BOOT`);
const iopl: Handler = (sc, a) => {
  const level = num(a, 'level_io') ?? num(a, 'turn_on');
  if (level === 0) return unprivileged(`${sc} lowering I/O privilege needs no capability`);
  return privileged(['PRIV_IO'], 'CAP_SYS_RAWIO', `${sc} needs CAP_SYS_RAWIO`);
};
/** syslog(2): check_syslog_permissions — actions other than open/close/read-all/size need CAP_SYSLOG. */
const syslog: Handler = (sc, a) => {
  const action = num(a, 'action') ?? num(a, 'type');
  if (action === 0 || action === 1) return unprivileged(`${sc} open/close needs no privilege`);
  if (action === 3 || action === 10) return privileged(['PRIV_MSGBUF'], 'CAP_SYSLOG', `${sc} reading the log needs CAP_SYSLOG when kernel.dmesg_restrict=1`);
  return privileged(['PRIV_MSGBUF'], 'CAP_SYSLOG', `${sc} action ${action ?? '?'} needs CAP_SYSLOG`);
};

// ---- processes -----------------------------------------------------------------------------

/** kill family: kill_ok_by_cred — sender's real/effective uid must match the target's real/saved uid. */
const kill: Handler = (sc, a, s) => {
  const pid = num(a, 'target_pid');
  if ((sc === 'kill' || sc === 'rt_sigqueueinfo') && pid !== undefined && pid <= 0) {
    return unprivileged(`${sc} to a process group or to all processes: the kernel checks each target and skips those it may not signal`);
  }
  const tuid = num(a, 'target_uid');
  const tsuid = num(a, 'target_suid') ?? tuid;
  if (tuid === undefined) return privileged(['PRIV_SIGNAL_DIFFCRED'], 'CAP_KILL', `${sc}: the target's uid is unknown; assumed to be another user's process`);
  if (!hasIds(s, ['uid', 'euid'])) return privileged(['PRIV_SIGNAL_DIFFCRED'], 'CAP_KILL', `${sc}: the subject's uids are unknown`);
  const mine = [s.uid, s.euid];
  if (mine.includes(tuid) || (tsuid !== undefined && mine.includes(tsuid))) return unprivileged(`${sc} to a process of the same user needs no privilege`);
  return privileged(['PRIV_SIGNAL_DIFFCRED'], 'CAP_KILL', `${sc} to a process of uid ${tuid} needs CAP_KILL`);
};

function otherOwner(a: Args, s: Partial<Subject> | undefined): boolean | undefined {
  const tuid = num(a, 'target_uid');
  const teuid = num(a, 'target_euid') ?? tuid;
  if (tuid === undefined) return undefined;
  if (!hasIds(s, ['euid'])) return undefined;
  return !(tuid === s.euid || teuid === s.euid);
}

/** setpriority/nice: set_one_prio — another owner's process needs CAP_SYS_NICE; lowering nice needs CAP_SYS_NICE (or RLIMIT_NICE). */
const setpriority: Handler = (sc, a, s) => {
  const privs: string[] = [];
  const why: string[] = [];
  if (otherOwner(a, s) === true) {
    privs.push('PRIV_SCHED_DIFFCRED');
    why.push("another user's process");
  }
  const nice = sc === 'nice' ? undefined : num(a, 'nice') ?? num(a, 'priority') ?? num(a, 'prio');
  const inc = sc === 'nice' ? num(a, 'inc') : undefined;
  const current = num(a, 'current_nice') ?? 0;
  if ((nice !== undefined && nice < current) || (inc !== undefined && inc < 0) || (nice === undefined && inc === undefined)) {
    privs.push('PRIV_SCHED_SETPRIORITY');
    why.push(nice === undefined && inc === undefined ? 'an unknown nice value' : 'a lower nice value (higher priority)');
  }
  if (privs.length === 0) return unprivileged(`${sc} raising the nice value of one's own process needs no privilege`);
  return privileged(privs, 'CAP_SYS_NICE', `${sc} to ${why.join(' and ')} needs CAP_SYS_NICE`);
};

const RT_POLICIES = new Set(['SCHED_FIFO', 'SCHED_RR', 'SCHED_DEADLINE']);
/** sched_setscheduler/sched_setparam/sched_setattr: __sched_setscheduler → user_check_sched_setscheduler. */
const schedSet: Handler = (sc, a, s) => {
  const privs: string[] = [];
  const why: string[] = [];
  if (otherOwner(a, s) === true) {
    privs.push('PRIV_SCHED_DIFFCRED');
    why.push("another user's process");
  }
  const policy = constName(a, 'policy', SCHED_POLICIES, 'SCHED_');
  const priority = num(a, 'priority');
  const nice = num(a, 'nice');
  if (policy && RT_POLICIES.has(policy)) {
    privs.push('PRIV_SCHED_SETPOLICY');
    why.push(`${policy} (with RLIMIT_RTPRIO 0)`);
  } else if (sc === 'sched_setparam' && (priority === undefined || priority > 0)) {
    privs.push('PRIV_SCHED_SETPARAM');
    why.push('a real-time priority');
  } else if (policy === undefined && sc !== 'sched_setparam') {
    privs.push('PRIV_SCHED_SETPOLICY');
    why.push('an unknown policy');
  }
  if (nice !== undefined && nice < (num(a, 'current_nice') ?? 0)) {
    privs.push('PRIV_SCHED_SETPRIORITY');
    why.push('a lower nice value');
  }
  if (privs.length === 0) return unprivileged(`${sc} to ${policy ?? 'a normal policy'} needs no privilege`);
  return privileged(privs, 'CAP_SYS_NICE', `${sc} with ${why.join(' and ')} needs CAP_SYS_NICE`);
};

/** sched_setaffinity: check_same_owner — another owner's process needs CAP_SYS_NICE. */
const setaffinity: Handler = (sc, a, s) => {
  const other = otherOwner(a, s);
  const pid = num(a, 'target_pid');
  if (other === false || (other === undefined && pid === 0)) return unprivileged(`${sc} on one's own process needs no privilege`);
  return privileged(['PRIV_SCHED_CPUSET'], 'CAP_SYS_NICE', `${sc} on ${other ? "another user's" : 'a possibly foreign'} process needs CAP_SYS_NICE`);
};

function limit(v: ArgValue | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') {
    const t = v.trim().toUpperCase();
    if (t === 'RLIM_INFINITY' || t === 'INFINITY' || t === 'UNLIMITED' || t === '-1') return 0xffffffffffffffffn;
    if (/^(0X[0-9A-F]+|\d+)$/.test(t)) return BigInt(t.toLowerCase());
    return undefined;
  }
  if (typeof v === 'number') {
    if (v === -1 || v === Infinity) return 0xffffffffffffffffn;
    if (Number.isInteger(v) && v >= 0) return BigInt(v);
  }
  return undefined;
}

/** setrlimit/prlimit64: do_prlimit — raising the hard limit needs CAP_SYS_RESOURCE. */
const setrlimit: Handler = (sc, a) => {
  const resource = typeof a.resource === 'string' ? a.resource.toUpperCase() : a.resource !== undefined ? String(a.resource) : 'a resource';
  if (sc === 'prlimit64' && a.hard === undefined && a.raises_hard === undefined && bool(a, 'sets') === false) {
    return unprivileged(`${sc} that only reads limits needs no privilege`);
  }
  const raises = bool(a, 'raises_hard');
  const hard = limit(a.hard);
  const cur = limit(a.current_hard);
  let r: boolean | undefined = raises;
  if (r === undefined && hard !== undefined && cur !== undefined) r = hard > cur;
  if (r === false) return unprivileged(`${sc} of ${resource} not raising the hard limit needs no privilege`);
  return privileged(['PRIV_PROC_SETRLIMIT'], 'CAP_SYS_RESOURCE',
    r === true ? `${sc} raising the hard ${resource} limit needs CAP_SYS_RESOURCE` : `${sc} of ${resource}: whether the hard limit rises is unknown; assumed to need CAP_SYS_RESOURCE`);
};

/** ptrace: __ptrace_may_access — another user's (or a non-dumpable) process needs CAP_SYS_PTRACE. */
const ptrace: Handler = (sc, a, s) => {
  if (sc === 'ptrace') {
    const req = constName(a, 'request', PTRACE_REQUESTS, 'PTRACE_');
    if (req === 'PTRACE_TRACEME') return unprivileged('PTRACE_TRACEME needs no privilege');
    if (req !== undefined && req !== 'PTRACE_ATTACH' && req !== 'PTRACE_SEIZE') {
      return unprivileged(`${req} acts on an already attached tracee; access was checked at attach`);
    }
  }
  const tuid = num(a, 'target_uid');
  const same = (() => {
    if (tuid === undefined || !hasIds(s, ['uid', 'euid', 'suid', 'gid', 'egid', 'sgid'])) return undefined;
    const teuid = num(a, 'target_euid') ?? tuid;
    const tsuid = num(a, 'target_suid') ?? tuid;
    const tgid = num(a, 'target_gid');
    const tegid = num(a, 'target_egid') ?? tgid;
    const tsgid = num(a, 'target_sgid') ?? tgid;
    const uidOk = [tuid, teuid, tsuid].every((u) => u === s.uid);
    const gidOk = tgid === undefined ? true : [tgid, tegid, tsgid].every((g) => g === s.gid);
    return uidOk && gidOk;
  })();
  if (same === true) {
    if (bool(a, 'target_dumpable') === false) return privileged(['PRIV_DEBUG_DENIED'], 'CAP_SYS_PTRACE', `${sc} of a non-dumpable process needs CAP_SYS_PTRACE`);
    return unprivileged(`${sc} of a process with the same credentials needs no capability (Yama ptrace_scope may still apply)`);
  }
  return privileged(['PRIV_DEBUG_DIFFCRED'], 'CAP_SYS_PTRACE', same === false ? `${sc} of another user's process needs CAP_SYS_PTRACE` : `${sc}: the target's credentials are unknown; assumed to need CAP_SYS_PTRACE`);
};

const HANDLERS: Readonly<Record<string, Handler>> = {
  capget,
  capset,
  prctl,
  mknod,
  mknodat: mknod,
  chown,
  fchown: chown,
  lchown: chown,
  fchownat: chown,
  chown32: chown,
  fchown32: chown,
  lchown32: chown,
  chroot,
  mount,
  pivot_root: mount,
  fsopen: mount,
  fsconfig,
  fsmount: mount,
  fspick: mount,
  move_mount: mount,
  mount_setattr: mount,
  open_tree: openTree,
  unshare: newNamespace,
  clone: newNamespace,
  setns,
  io_uring_setup: ioUring,
  io_uring_enter: ioUring,
  io_uring_register: ioUring,
  umount: umount,
  umount2: umount,
  setuid: setuidLike('uid'),
  setuid32: setuidLike('uid'),
  setgid: setuidLike('gid'),
  setgid32: setuidLike('gid'),
  setreuid: setreuidLike('uid'),
  setreuid32: setreuidLike('uid'),
  setregid: setreuidLike('gid'),
  setregid32: setreuidLike('gid'),
  setresuid: setresuidLike('uid'),
  setresuid32: setresuidLike('uid'),
  setresgid: setresuidLike('gid'),
  setresgid32: setresuidLike('gid'),
  setfsuid: setfsuidLike('uid'),
  setfsuid32: setfsuidLike('uid'),
  setfsgid: setfsuidLike('gid'),
  setfsgid32: setfsuidLike('gid'),
  setgroups,
  setgroups32: setgroups,
  socket,
  bind,
  setsockopt,
  ioctl,
  sethostname,
  setdomainname: sethostname,
  settimeofday,
  clock_settime: clockSettime,
  adjtimex,
  clock_adjtime: adjtimex,
  timer_create: alarmTimer,
  timerfd_create: alarmTimer,
  reboot,
  init_module: loadModule,
  finit_module: loadModule,
  delete_module: unloadModule,
  kill,
  tkill: kill,
  tgkill: kill,
  rt_sigqueueinfo: kill,
  rt_tgsigqueueinfo: kill,
  pidfd_send_signal: kill,
  setpriority,
  nice: setpriority,
  sched_setscheduler: schedSet,
  sched_setparam: schedSet,
  sched_setattr: schedSet,
  sched_setaffinity: setaffinity,
  setrlimit,
  prlimit64: setrlimit,
  ptrace,
  process_vm_readv: ptrace,
  process_vm_writev: ptrace,
  pidfd_getfd: ptrace,
  kcmp: ptrace,
  swapon,
  swapoff,
  acct,
  open_by_handle_at: openByHandle,
  kexec_load: kexec,
  kexec_file_load: kexec,
  iopl,
  ioperm: iopl,
  syslog,
};

/** Syscalls the classifier knows (some privileged only with certain arguments). */
export const CLASSIFIED_SYSCALLS: readonly string[] = Object.freeze(Object.keys(HANDLERS).sort());

/**
 * Classifies one syscall. Unknown syscalls are unprivileged (capulator traps only what it
 * classifies). Never throws on odd arguments: a missing or malformed argument makes the answer
 * conservative (privileged) where the operation can be privileged, with the reason saying why.
 */
export function classify(arch: Arch, input: ClassifyInput): Classification {
  let sc = String(input.syscall);
  if (/^\d+$/.test(sc)) sc = syscallName(arch, Number(sc)) ?? sc;
  const h = Object.prototype.hasOwnProperty.call(HANDLERS, sc) ? HANDLERS[sc] : undefined;
  const args = input.args ?? {};
  const r = h ? h(sc, args, input.subject) : unprivileged(`${sc} is not a privileged operation capulator classifies`);
  return { ...r, syscall: sc };
}
