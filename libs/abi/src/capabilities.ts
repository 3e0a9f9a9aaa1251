/**
 * Linux capabilities (include/uapi/linux/capability.h) and the capget/capset user ABI.
 *
 * Source of the table: libs/abi/reference/linux-caps.tsv (numbers from the kernel header; checked
 * against /usr/include/linux/capability.h by capabilities.int-spec.ts). Summaries are one-line
 * paraphrases of the header comments and capabilities(7).
 */

export interface Capability {
  name: string;
  number: number;
  /** One-line meaning. */
  summary: string;
  /** First Linux version with the capability, per capabilities(7). */
  since: string;
}

/** The five capability sets of a process, as names (CAP_*); the policy computes them, events record them. */
export interface CapabilitySets {
  bounding: string[];
  permitted: string[];
  effective: string[];
  inheritable: string[];
  ambient: string[];
}

export const CAPABILITIES: readonly Capability[] = Object.freeze([
  { name: "CAP_CHOWN", number: 0, since: "2.2", summary: "Change the owner and group of files without restriction (overrides _POSIX_CHOWN_RESTRICTED)." },
  { name: "CAP_DAC_OVERRIDE", number: 1, since: "2.2", summary: "Bypass discretionary read, write and execute checks on files and directories. Execute is granted only if at least one x bit is set. Does not cover what CAP_LINUX_IMMUTABLE protects." },
  { name: "CAP_DAC_READ_SEARCH", number: 2, since: "2.2", summary: "Bypass read checks on files and read/search checks on directories. Also required for open_by_handle_at(2)." },
  { name: "CAP_FOWNER", number: 3, since: "2.2", summary: "Act as the file's owner where an owner match is needed (chmod, utimes, ACLs, setting non-immutable inode flags, O_NOATIME, deleting from sticky directories, linking files one does not own when protected_hardlinks is on). Does not override DAC or MAC checks." },
  { name: "CAP_FSETID", number: 4, since: "2.2", summary: "Keep set-user-ID/set-group-ID bits when a file is modified, and set S_ISGID on a file whose group is not one of the caller's groups." },
  { name: "CAP_KILL", number: 5, since: "2.2", summary: "Send signals to processes of other users (bypass the uid-match check for kill)." },
  { name: "CAP_SETGID", number: 6, since: "2.2", summary: "Change gids arbitrarily (setgid, setegid, setregid, setresgid, setfsgid), set supplementary groups, forge the gid in SCM_CREDENTIALS, and write a user namespace's gid_map." },
  { name: "CAP_SETUID", number: 7, since: "2.2", summary: "Change uids arbitrarily (setuid, seteuid, setreuid, setresuid, setfsuid), forge the uid in SCM_CREDENTIALS (the header comment still says 'forged pids'; capabilities(7) puts pid forging under CAP_SYS_ADMIN), and write a user namespace's uid_map." },
  { name: "CAP_SETPCAP", number: 8, since: "2.2", summary: "Edit capability state: add bounding-set members to one's inheritable set, drop bits from the bounding set (PR_CAPBSET_DROP), and change securebits. (Before file capabilities it meant granting or removing caps of other processes.)" },
  { name: "CAP_LINUX_IMMUTABLE", number: 9, since: "2.2", summary: "Set or clear the immutable and append-only inode flags (FS_IMMUTABLE_FL, FS_APPEND_FL)." },
  { name: "CAP_NET_BIND_SERVICE", number: 10, since: "2.2", summary: "Bind TCP/UDP (and SCTP) sockets to privileged ports, below net.ipv4.ip_unprivileged_port_start (1024 by default); historically also ATM VCIs below 32." },
  { name: "CAP_NET_BROADCAST", number: 11, since: "2.2", summary: "Send broadcasts and listen to multicast. Nominal: the kernel hardly checks it." },
  { name: "CAP_NET_ADMIN", number: 12, since: "2.2", summary: "Network administration: interface configuration, firewall/NAT/accounting, routing tables, SO_DEBUG, setting arbitrary socket owner pid/pgrp, transparent proxy binding (also via NET_RAW), TOS, promiscuous mode, clearing driver statistics, multicast routing, device registers, ATM control sockets." },
  { name: "CAP_NET_RAW", number: 13, since: "2.2", summary: "Use raw and packet sockets (AF_PACKET), and bind to any address for transparent proxying (also via NET_ADMIN)." },
  { name: "CAP_IPC_LOCK", number: 14, since: "2.2", summary: "Lock memory (mlock, mlockall, mmap MAP_LOCKED, SysV SHM_LOCK) beyond RLIMIT_MEMLOCK." },
  { name: "CAP_IPC_OWNER", number: 15, since: "2.2", summary: "Bypass permission checks on System V IPC objects (message queues, semaphores, shared memory)." },
  { name: "CAP_SYS_MODULE", number: 16, since: "2.2", summary: "Load and unload kernel modules, which amounts to unlimited kernel modification." },
  { name: "CAP_SYS_RAWIO", number: 17, since: "2.2", summary: "Raw hardware/memory I/O: ioperm/iopl, /dev/mem, /dev/kmem, /dev/port, MSR access, FIBMAP, raw USB messages through /dev/bus/usb, some raw SCSI and disk commands." },
  { name: "CAP_SYS_CHROOT", number: 18, since: "2.2", summary: "Call chroot(2) (and change mount namespace with setns)." },
  { name: "CAP_SYS_PTRACE", number: 19, since: "2.2", summary: "Trace or inspect any process (ptrace, process_vm_readv/writev, kcmp, reading other processes' /proc data), overriding dumpable and Yama restrictions." },
  { name: "CAP_SYS_PACCT", number: 20, since: "2.2", summary: "Turn process accounting on or off (acct(2))." },
  { name: "CAP_SYS_ADMIN", number: 21, since: "2.2", summary: "Catch-all administration: mount/umount, swapon/swapoff, quotas, sethostname/setdomainname, namespaces (clone/unshare/setns), trusted.* and security.* xattrs, random-device admin, IPC_SET/IPC_RMID and IPC chown on other users' objects, exceeding the file-max and RLIMIT_NPROC limits, TIOCSTI on other ttys, TIOCCONS, serial port setup, block device ioctls, forging the pid in SCM_CREDENTIALS. Also a superset of CAP_BPF and CAP_PERFMON, kept for backward compatibility." },
  { name: "CAP_SYS_BOOT", number: 22, since: "2.2", summary: "Reboot and halt (reboot(2)), and load a new kernel (kexec_load, kexec_file_load)." },
  { name: "CAP_SYS_NICE", number: 23, since: "2.2", summary: "Raise priority / lower nice values, set priority of other users' processes, real-time scheduling policies (SCHED_FIFO, SCHED_RR), CPU affinity of other processes, real-time I/O priority class, migrating pages of other processes." },
  { name: "CAP_SYS_RESOURCE", number: 24, since: "2.2", summary: "Override or raise resource limits: set hard rlimits, bypass disk quota and reserved filesystem space, bypass the message-queue size limits (SysV and POSIX), pipe buffer limits, RTC interrupts above 64 Hz, console/keymap counts, lowering oom_score_adj, and memory reclaim controls." },
  { name: "CAP_SYS_TIME", number: 25, since: "2.2", summary: "Set the system clock (settimeofday, clock_settime, adjtimex) and the real-time clock." },
  { name: "CAP_SYS_TTY_CONFIG", number: 26, since: "2.2", summary: "Configure tty devices (virtual console/keyboard ioctls) and call vhangup(2)." },
  { name: "CAP_MKNOD", number: 27, since: "2.2", summary: "Create character and block special files with mknod(2)." },
  { name: "CAP_LEASE", number: 28, since: "2.4", summary: "Take file leases (fcntl F_SETLEASE) on files one does not own." },
  { name: "CAP_AUDIT_WRITE", number: 29, since: "2.6.11", summary: "Write records to the kernel audit log through a unicast netlink socket." },
  { name: "CAP_AUDIT_CONTROL", number: 30, since: "2.6.11", summary: "Configure auditing: enable/disable it, change filter rules, read status; also set a process's loginuid." },
  { name: "CAP_SETFCAP", number: 31, since: "2.6.24", summary: "Set or remove file capabilities (security.capability xattr); map uid 0 in a child user namespace." },
  { name: "CAP_MAC_OVERRIDE", number: 32, since: "2.6.25", summary: "Override Mandatory Access Control decisions. The base kernel has no MAC; an LSM may honour this capability." },
  { name: "CAP_MAC_ADMIN", number: 33, since: "2.6.25", summary: "Configure or change MAC policy and state (LSM-defined); the base kernel requires nothing." },
  { name: "CAP_SYSLOG", number: 34, since: "2.6.37", summary: "Privileged syslog(2) actions and kernel log access (dmesg_restrict); see kernel pointer values under kptr_restrict." },
  { name: "CAP_WAKE_ALARM", number: 35, since: "3.0", summary: "Set timers that wake the system from suspend (CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM)." },
  { name: "CAP_BLOCK_SUSPEND", number: 36, since: "3.5", summary: "Block system suspend (epoll EPOLLWAKEUP, /proc/sys/wake_lock)." },
  { name: "CAP_AUDIT_READ", number: 37, since: "3.16", summary: "Read the audit log through a multicast netlink socket." },
  { name: "CAP_PERFMON", number: 38, since: "5.8", summary: "Privileged performance monitoring and observability (perf_events, i915_perf and similar); relaxes BPF verifier limits for tracing programs." },
  { name: "CAP_BPF", number: 39, since: "5.8", summary: "Privileged eBPF: all map types, advanced verifier features, loading BTF, reading xlated/JITed program code, bpf_spin_lock. Tracing programs also need CAP_PERFMON; networking programs also need CAP_NET_ADMIN." },
  { name: "CAP_CHECKPOINT_RESTORE", number: 40, since: "5.9", summary: "Checkpoint/restore operations: choose pids in clone3(set_tid), write ns_last_pid, read /proc/PID/map_files." },
]);

/** CAP_LAST_CAP of the kernel headers this table was built from. */
export const CAP_LAST_CAP = 40;

const byName = new Map(CAPABILITIES.map((c) => [c.name, c]));
const byNumber = new Map(CAPABILITIES.map((c) => [c.number, c]));

/** Accepts `CAP_NET_RAW`, case-insensitively, with or without the `CAP_` prefix. */
export function capabilityByName(name: string): Capability | undefined {
  const n = name.toUpperCase();
  return byName.get(n) ?? byName.get('CAP_' + n);
}

export function capabilityByNumber(n: number): Capability | undefined {
  return byNumber.get(n);
}

// ---- capget/capset ---------------------------------------------------------------------------

export const _LINUX_CAPABILITY_VERSION_1 = 0x19980330;
export const _LINUX_CAPABILITY_VERSION_2 = 0x20071026;
export const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
export const _LINUX_CAPABILITY_U32S_1 = 1;
export const _LINUX_CAPABILITY_U32S_2 = 2;
export const _LINUX_CAPABILITY_U32S_3 = 2;

export type CapVersion = 1 | 2 | 3 | typeof _LINUX_CAPABILITY_VERSION_1 | typeof _LINUX_CAPABILITY_VERSION_2 | typeof _LINUX_CAPABILITY_VERSION_3;

export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

export class CapDataError extends Error {
  override readonly name = 'CapDataError';
}

/** Number of `struct __user_cap_data_struct` entries (u32 words per set) for a header version. */
export function capDataWords(version: number): 1 | 2 {
  switch (version) {
    case 1:
    case _LINUX_CAPABILITY_VERSION_1:
      return 1;
    case 2:
    case 3:
    case _LINUX_CAPABILITY_VERSION_2:
    case _LINUX_CAPABILITY_VERSION_3:
      return 2;
    default:
      throw new CapDataError(`unknown capability header version 0x${(version >>> 0).toString(16)}`);
  }
}

/** Header version word (0x19980330, …) for 1|2|3 or an already-full version word. */
export function capVersionWord(version: number): number {
  switch (version) {
    case 1: return _LINUX_CAPABILITY_VERSION_1;
    case 2: return _LINUX_CAPABILITY_VERSION_2;
    case 3: return _LINUX_CAPABILITY_VERSION_3;
    default:
      capDataWords(version);
      return version;
  }
}

const U32 = 0xffffffffn;

/**
 * Encodes `cap_user_data_t` as the kernel lays it out: for u32 word i (caps 32*i … 32*i+31), a
 * struct { effective, permitted, inheritable } of u32s in the tracee's byte order (little-endian
 * by default, as on x86_64 and aarch64). v1 has one struct (caps 0–31; higher bits are refused,
 * where the kernel would silently drop them); v2 and v3 have two.
 */
export function encodeCapData(version: number, sets: CapSets, littleEndian = true): Uint8Array {
  const words = capDataWords(version);
  const limit = words === 1 ? U32 : (1n << 64n) - 1n;
  for (const k of ['effective', 'permitted', 'inheritable'] as const) {
    const v = sets[k];
    if (typeof v !== 'bigint' || v < 0n || v > limit) {
      throw new CapDataError(`${k} set 0x${String(v)} does not fit ${words * 32} bits (version ${version})`);
    }
  }
  const out = new Uint8Array(words * 12);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < words; i++) {
    const shift = BigInt(32 * i);
    dv.setUint32(i * 12 + 0, Number((sets.effective >> shift) & U32), littleEndian);
    dv.setUint32(i * 12 + 4, Number((sets.permitted >> shift) & U32), littleEndian);
    dv.setUint32(i * 12 + 8, Number((sets.inheritable >> shift) & U32), littleEndian);
  }
  return out;
}

/** Decodes `cap_user_data_t`; `bytes` must hold exactly (or at least) the version's words. */
export function decodeCapData(version: number, bytes: Uint8Array, littleEndian = true): CapSets {
  const words = capDataWords(version);
  if (bytes.length < words * 12) {
    throw new CapDataError(`capability data too short: ${bytes.length} bytes, version needs ${words * 12}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, words * 12);
  const sets: CapSets = { effective: 0n, permitted: 0n, inheritable: 0n };
  for (let i = 0; i < words; i++) {
    const shift = BigInt(32 * i);
    sets.effective |= BigInt(dv.getUint32(i * 12 + 0, littleEndian)) << shift;
    sets.permitted |= BigInt(dv.getUint32(i * 12 + 4, littleEndian)) << shift;
    sets.inheritable |= BigInt(dv.getUint32(i * 12 + 8, littleEndian)) << shift;
  }
  return sets;
}

/** Bit mask of the named capabilities; throws on an unknown name. */
export function capsToMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const c = capabilityByName(n);
    if (!c) throw new CapDataError(`unknown capability ${JSON.stringify(n)}`);
    mask |= 1n << BigInt(c.number);
  }
  return mask;
}

/** Names of the capabilities set in `mask`, by number; unknown bits are ignored. */
export function maskToCaps(mask: bigint): string[] {
  const out: string[] = [];
  for (const c of CAPABILITIES) if ((mask >> BigInt(c.number)) & 1n) out.push(c.name);
  return out;
}

/** Bits of `mask` that name no known capability (above CAP_LAST_CAP). */
export function unknownCapBits(mask: bigint): bigint {
  return mask & ~((1n << BigInt(CAP_LAST_CAP + 1)) - 1n);
}
