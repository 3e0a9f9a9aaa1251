import { readFileSync } from 'node:fs';
import { cpus as hostCpus } from 'node:os';
import { DEFAULT_NETWORK, NETWORK_MODES, parsePublish, type NetworkMode, type PortMapping } from './network';

/**
 * What `docker run`/`podman run` users set on a container besides image, command and policy:
 * network, resource limits (runc's linux.resources), rlimits, user, working directory,
 * read-only root, tmpfs mounts, hostname. Parsers throw Error with a one-line reason naming
 * the flag; the CLI turns it into exit 2.
 */
export interface WorkloadOptions {
  network: NetworkMode;
  publish: PortMapping[];
  /** bytes; memory.limit */
  memory?: number;
  /** bytes of memory + swap; -1 = unlimited swap (memory.swap) */
  memorySwap?: number;
  /** CPUs (fractional): cpu.quota / cpu.period */
  cpus?: number;
  /** pids.max; -1 = unlimited */
  pidsLimit: number;
  ulimits: Rlimit[];
  /** UID[:GID] or NAME[:GROUP], resolved in the image's /etc/passwd and /etc/group */
  user?: string;
  workdir?: string;
  readOnly: boolean;
  tmpfs: TmpfsMount[];
  hostname?: string;
  /** -i: the container's stdin is the caller's (otherwise /dev/null) */
  interactive: boolean;
  /** -t: a pty (runc's terminal) */
  tty: boolean;
}

/** The pids limit a container gets without --pids-limit (podman's default): a fork bomb stops there. */
export const DEFAULT_PIDS_LIMIT = 2048;
/** The open-files limit a container gets without --ulimit nofile. */
export const DEFAULT_NOFILE = 1024;
/** CFS period for --cpus (runc's and docker's). */
export const CPU_PERIOD_US = 100_000;

export function defaultWorkload(): WorkloadOptions {
  return { network: DEFAULT_NETWORK, publish: [], pidsLimit: DEFAULT_PIDS_LIMIT, ulimits: [], readOnly: false, tmpfs: [], interactive: false, tty: false };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `512m`, `1g`, `1048576` → bytes (docker's units: b, k, m, g; binary). */
export function parseBytes(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(v.trim());
  if (!m) throw new Error(`${flag} ${v}: want a size such as 256m or 1g`);
  const n = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(n)) throw new Error(`${flag} ${v}: too large`);
  return n;
}

export function parseMemory(v: string): number {
  const n = parseBytes('--memory', v);
  // runc and the kernel refuse less than a few pages; docker's minimum
  if (n < 6 * 1024 * 1024) throw new Error(`--memory ${v}: the minimum is 6m`);
  return n;
}

/** --memory-swap: memory + swap in bytes, or -1 for unlimited swap; needs --memory and must be at least it. */
export function parseMemorySwap(v: string, memory: number | undefined): number {
  if (memory === undefined) throw new Error(`--memory-swap ${v}: needs --memory`);
  if (v.trim() === '-1') return -1;
  const n = parseBytes('--memory-swap', v);
  if (n < memory) throw new Error(`--memory-swap ${v}: must be at least --memory (memory + swap)`);
  return n;
}

export function parseCpus(v: string): number {
  const n = Number(v);
  const max = hostCpus().length;
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n >= 0.01) || n > max) throw new Error(`--cpus ${v}: want a number from 0.01 to ${max} (this host's CPUs)`);
  return n;
}

export function parsePidsLimit(v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new Error(`--pids-limit ${v}: want a number (-1 or 0 for no limit)`);
  const n = Number(v);
  if (n <= 0) {
    if (n !== 0 && n !== -1) throw new Error(`--pids-limit ${v}: want a positive number, or -1 or 0 for no limit`);
    return -1;
  }
  return n;
}

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

const RLIMITS = ['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];
/** /proc/self/limits row names, for the host's hard limits */
const PROC_LIMIT_NAMES: Record<string, string> = {
  as: 'Max address space', core: 'Max core file size', cpu: 'Max cpu time', data: 'Max data size', fsize: 'Max file size', locks: 'Max file locks',
  memlock: 'Max locked memory', msgqueue: 'Max msgqueue size', nice: 'Max nice priority', nofile: 'Max open files', nproc: 'Max processes',
  rss: 'Max resident set', rtprio: 'Max realtime priority', rttime: 'Max realtime timeout', sigpending: 'Max pending signals', stack: 'Max stack size',
};
/** RLIM_INFINITY; ociSpecJson writes it as runc wants it (uint64 max) */
export const RLIM_INFINITY = Number.POSITIVE_INFINITY;

/** This process's hard limit for an rlimit (runc inherits it; raising it needs CAP_SYS_RESOURCE). */
export function hostHardLimit(name: string): number {
  const row = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(PROC_LIMIT_NAMES[name]));
  const hard = row?.slice(26).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? RLIM_INFINITY : Number(hard);
}

/** `--ulimit name=soft[:hard]` (values: numbers, `unlimited` or -1); the hard limit defaults to the soft one. */
export function parseUlimit(v: string): Rlimit {
  const m = /^([a-z]+)=(-1|unlimited|\d+)(?::(-1|unlimited|\d+))?$/.exec(v.trim());
  if (!m) throw new Error(`--ulimit ${v}: want NAME=SOFT[:HARD]`);
  if (!RLIMITS.includes(m[1])) throw new Error(`--ulimit ${v}: unknown limit ${m[1]} (one of ${RLIMITS.join(', ')})`);
  const val = (s: string) => (s === '-1' || s === 'unlimited' ? RLIM_INFINITY : Number(s));
  const soft = val(m[2]);
  const hard = m[3] !== undefined ? val(m[3]) : soft;
  if (!Number.isSafeInteger(soft) && soft !== RLIM_INFINITY) throw new Error(`--ulimit ${v}: too large`);
  if (soft > hard) throw new Error(`--ulimit ${v}: the soft limit is above the hard one`);
  const host = hostHardLimit(m[1]);
  if (hard > host) {
    throw new Error(`--ulimit ${v}: the hard limit is above this host's (${host === RLIM_INFINITY ? 'unlimited' : host}); raising it needs CAP_SYS_RESOURCE`);
  }
  return { type: m[1], soft, hard };
}

/**
 * The rlimits of the container: RLIMIT_NOFILE 1024, RLIMIT_CORE the host's hard limit (cores
 * are kept as run artifacts; `--ulimit core=0` turns them off), and the --ulimit ones over them.
 */
export function rlimits(ulimits: Rlimit[]): { type: string; soft: number; hard: number }[] {
  const core = hostHardLimit('core');
  const byType = new Map<string, Rlimit>([
    ['nofile', { type: 'nofile', soft: DEFAULT_NOFILE, hard: DEFAULT_NOFILE }],
    ['core', { type: 'core', soft: core, hard: core }],
  ]);
  for (const u of ulimits) byType.set(u.type, u);
  return [...byType.values()].map((r) => ({ type: `RLIMIT_${r.type.toUpperCase()}`, soft: r.soft, hard: r.hard }));
}

/** runc's linux.resources for the options. */
export function resources(w: WorkloadOptions): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  if (w.memory !== undefined) {
    // docker's rule: without --memory-swap the container may use as much swap as memory
    const swap = w.memorySwap === undefined ? 2 * w.memory : w.memorySwap;
    r.memory = { limit: w.memory, swap };
  }
  if (w.cpus !== undefined) r.cpu = { quota: Math.round(w.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US };
  if (w.pidsLimit > 0) r.pids = { limit: w.pidsLimit };
  return r;
}

export interface TmpfsMount {
  destination: string;
  options: string[];
}

const TMPFS_OPTION = /^(rw|ro|exec|noexec|suid|nosuid|dev|nodev|(size=\d+[kmg%]?)|(mode=[0-7]{3,4})|(uid=\d+)|(gid=\d+)|(nr_inodes=\d+[kmg]?))$/;

/** `--tmpfs PATH[:opts]` (docker's default options: noexec, nosuid, nodev). */
export function parseTmpfs(v: string): TmpfsMount {
  const i = v.indexOf(':');
  const destination = i < 0 ? v : v.slice(0, i);
  const opts = i < 0 ? [] : v.slice(i + 1).split(',').filter((o) => o !== '');
  if (!destination.startsWith('/') || destination.split('/').includes('..')) throw new Error(`--tmpfs ${v}: the path must be absolute`);
  for (const o of opts) if (!TMPFS_OPTION.test(o)) throw new Error(`--tmpfs ${v}: unknown option ${o}`);
  const has = (a: string, b: string) => opts.includes(a) || opts.includes(b);
  return {
    destination,
    options: [...(has('exec', 'noexec') ? [] : ['noexec']), ...(has('suid', 'nosuid') ? [] : ['nosuid']), ...(has('dev', 'nodev') ? [] : ['nodev']), ...opts],
  };
}

export function parseWorkdir(v: string): string {
  if (!v.startsWith('/') || v.split('/').includes('..')) throw new Error(`--workdir ${v}: must be an absolute path without ..`);
  return v;
}

export function parseHostname(v: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v) || v.length > 64) {
    throw new Error(`--hostname ${v}: not a valid host name (letters, digits, - and ., at most 64 characters)`);
  }
  return v;
}

export function parseUserSpec(v: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/.test(v)) throw new Error(`--user ${v}: want UID[:GID] or NAME[:GROUP]`);
  for (const part of v.split(':')) if (/^\d+$/.test(part) && Number(part) > 4294967294) throw new Error(`--user ${v}: ${part} is out of range`);
  return v;
}

/**
 * `--env-file FILE`: docker's format, one `K=V` a line, `#` comments and blank lines skipped;
 * a bare `K` takes K from this environment (skipped when unset).
 */
export function parseEnvFile(file: string, text: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(=.*)?$/.exec(line.trimStart());
    if (!m) throw new Error(`${file}:${i + 1}: want K=V`);
    if (m[2] !== undefined) out.push(m[1] + m[2]);
    else if (env[m[1]] !== undefined) out.push(`${m[1]}=${env[m[1]]}`);
  });
  return out;
}

/**
 * A workload in the words of `docker run`'s flags: what the CLI's flags, the API's `workload`
 * object and a Kafka command carry. `parseWorkload` is the one parser of all three.
 */
export interface WorkloadSpec {
  network?: string;
  publish?: string[];
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  pidsLimit?: string;
  ulimit?: string[];
  user?: string;
  workdir?: string;
  readOnly?: boolean;
  tmpfs?: string[];
  hostname?: string;
  interactive?: boolean;
  tty?: boolean;
}

/** The WorkloadOptions a spec asks for; throws Error with a one-line reason naming the flag. */
export function parseWorkload(f: WorkloadSpec): WorkloadOptions {
  const w = defaultWorkload();
  w.publish = (f.publish ?? []).map(parsePublish);
  if (f.network !== undefined) {
    if (!NETWORK_MODES.includes(f.network as NetworkMode)) throw new Error(`--network ${f.network}: want one of ${NETWORK_MODES.join(', ')}`);
    w.network = f.network as NetworkMode;
  } else if (w.publish.length > 0) w.network = 'bridge';
  if (w.publish.length > 0 && w.network !== 'bridge') throw new Error(`-p needs --network bridge (not ${w.network})`);
  if (f.memory !== undefined) w.memory = parseMemory(f.memory);
  if (f.memorySwap !== undefined) w.memorySwap = parseMemorySwap(f.memorySwap, w.memory);
  if (f.cpus !== undefined) w.cpus = parseCpus(f.cpus);
  if (f.pidsLimit !== undefined) w.pidsLimit = parsePidsLimit(f.pidsLimit);
  w.ulimits = (f.ulimit ?? []).map(parseUlimit);
  if (f.user !== undefined) w.user = parseUserSpec(f.user);
  if (f.workdir !== undefined) w.workdir = parseWorkdir(f.workdir);
  w.readOnly = !!f.readOnly;
  w.interactive = !!f.interactive;
  w.tty = !!f.tty;
  w.tmpfs = (f.tmpfs ?? []).map(parseTmpfs);
  if (f.hostname !== undefined) w.hostname = parseHostname(f.hostname);
  return w;
}

/** What differs from the defaults, for RunRequested.workload (undefined when nothing does); `unlimited` for RLIM_INFINITY. */
export function workloadRecord(w: WorkloadOptions): Record<string, unknown> | undefined {
  const d = defaultWorkload();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) {
    const dv = (d as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(v) !== JSON.stringify(dv)) out[k] = v === Number.POSITIVE_INFINITY ? 'unlimited' : v;
  }
  if (out.ulimits) out.ulimits = w.ulimits.map((u) => ({ type: u.type, soft: isFinite(u.soft) ? u.soft : 'unlimited', hard: isFinite(u.hard) ? u.hard : 'unlimited' }));
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The WorkloadOptions a RunRequested.workload record stands for (the defaults for what it leaves out). */
export function workloadFromRecord(rec: Record<string, unknown> | undefined): WorkloadOptions {
  const w = defaultWorkload() as unknown as Record<string, unknown>;
  if (!rec) return w as unknown as WorkloadOptions;
  const num = (v: unknown) => (v === 'unlimited' ? RLIM_INFINITY : (v as number));
  for (const [k, v] of Object.entries(rec)) {
    if (!(k in w) && !['memory', 'memorySwap', 'cpus', 'user', 'workdir', 'hostname'].includes(k)) continue;
    w[k] = k === 'ulimits' ? (v as Array<{ type: string; soft: unknown; hard: unknown }>).map((u) => ({ type: u.type, soft: num(u.soft), hard: num(u.hard) })) : v;
  }
  return w as unknown as WorkloadOptions;
}
