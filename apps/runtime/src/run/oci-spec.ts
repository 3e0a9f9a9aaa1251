import type { CapabilitySets } from '@capulator/events';
import type { SeccompProfile } from './seccomp-profile';

export interface BindMount {
  source: string;
  destination: string;
  readonly: boolean;
}

export interface OciSpecInput {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  hostname: string;
  capabilities: CapabilitySets;
  /** off only when file capabilities must work (per-program grants); see below */
  noNewPrivileges?: boolean;
  /** absent: no seccomp filter at all (the policy needs none; libs/policy seccompNeed) */
  seccomp?: SeccompProfile;
  mounts: BindMount[];
  terminal?: boolean;
  /** the network namespace: runc's own (loopback only: runc brings `lo` up in it), a path (bridge, set up by CNI) or none (the host's) */
  network?: { mode: 'none' } | { mode: 'path'; path: string } | { mode: 'host' };
  /** process.rlimits (default: RLIMIT_NOFILE 1024); RLIM_INFINITY as Infinity (see ociSpecJson) */
  rlimits?: { type: string; soft: number; hard: number }[];
  /** linux.resources (memory, cpu, pids) */
  resources?: Record<string, unknown>;
  readonlyRoot?: boolean;
  tmpfs?: { destination: string; options: string[] }[];
}

/** config.json text: Infinity (RLIM_INFINITY in rlimits) becomes the uint64 maximum runc reads as unlimited. */
export function ociSpecJson(spec: Record<string, unknown>): string {
  return JSON.stringify(spec, (_k, v: unknown) => (v === Number.POSITIVE_INFINITY ? '\u0000RLIM_INFINITY' : v), 1).replace(/"\\u0000RLIM_INFINITY"/g, '18446744073709551615');
}

/**
 * config.json for runc: pid, mount, uts, ipc and network namespaces; /proc, read-only /sys, a
 * minimal /dev (runc adds null, zero, full, random, urandom, tty and the /dev/fd, stdin/out/err
 * links itself), /dev/pts, /dev/shm; the capability sets the policy computed.
 *
 * noNewPrivileges is on unless the policy grants a capability to programs (libs/policy
 * ProgramGrant): runc then installs the seccomp filter right before exec, so runc's own setup
 * (capset, setgroups, setuid) is not trapped, and set-id or file-capability binaries cannot gain
 * privileges beyond the sets the policy computed. With it off (file capabilities are ignored
 * under no_new_privs), runc installs the filter before its setup (the agent's --runc-setup lets
 * that through), the image's set-id bits are cleared in the run's overlay (file-caps.ts), and
 * runc runs with SECBIT_NOROOT so root gets no capability beyond its ambient set.
 */
export function buildOciSpec(i: OciSpecInput): Record<string, unknown> {
  const caps = i.capabilities;
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: i.terminal ?? false,
      user: { uid: i.uid, gid: i.gid, ...(i.additionalGids?.length ? { additionalGids: i.additionalGids } : {}) },
      args: i.args,
      env: i.env,
      cwd: i.cwd,
      capabilities: {
        bounding: caps.bounding,
        effective: caps.effective,
        inheritable: caps.inheritable,
        permitted: caps.permitted,
        ambient: caps.ambient,
      },
      rlimits: i.rlimits ?? [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: i.noNewPrivileges ?? true,
    },
    root: { path: i.rootfs, readonly: i.readonlyRoot ?? false },
    hostname: i.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      ...i.mounts.map((m) => ({
        destination: m.destination,
        type: 'bind',
        source: m.source,
        options: ['rbind', 'nosuid', 'nodev', m.readonly ? 'ro' : 'rw'],
      })),
      ...(i.tmpfs ?? []).map((t) => ({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: t.options })),
    ],
    linux: {
      namespaces: [
        { type: 'pid' },
        ...(i.network?.mode === 'host' ? [] : [i.network?.mode === 'path' ? { type: 'network', path: i.network.path } : { type: 'network' }]),
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
      ],
      ...(i.resources && Object.keys(i.resources).length > 0 ? { resources: i.resources } : {}),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      ...(i.seccomp ? { seccomp: i.seccomp } : {}),
    },
  };
}
