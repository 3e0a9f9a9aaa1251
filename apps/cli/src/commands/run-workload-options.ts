import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import {
  DEFAULT_PIDS_LIMIT,
  defaultWorkload,
  NETWORK_MODES,
  parseCpus,
  parseEnvFile,
  parseHostname,
  parseMemory,
  parseMemorySwap,
  parsePidsLimit,
  parsePublish,
  parseTmpfs,
  parseUlimit,
  parseUserSpec,
  parseWorkdir,
  type NetworkMode,
  type WorkloadOptions,
} from '../../../runtime/src/run';
import { CliError } from '../cli-error';

/** The docker/podman-style flags of `capulator run` (network, limits, user, …), as commander leaves them. */
export interface WorkloadFlags {
  network?: string;
  publish: string[];
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  pidsLimit?: string;
  ulimit: string[];
  user?: string;
  workdir?: string;
  readOnly?: boolean;
  tmpfs: string[];
  hostname?: string;
  envFile: string[];
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function addWorkloadOptions(cmd: Command): Command {
  return cmd
    .option('--network <mode>', `none (default: loopback only), bridge (CNI bridge capulator0, NAT out), host`)
    .option('-p, --publish <[ip:]hostPort:port[/udp]>', 'publish a container port on the host (implies --network bridge; repeatable)', collect, [])
    .option('--memory <bytes>', 'memory limit, e.g. 256m (an OOM kill is recorded as oom)')
    .option('--memory-swap <bytes>', 'memory + swap limit (-1: unlimited swap; default: twice --memory)')
    .option('--cpus <n>', 'CPU limit (fractional), e.g. 0.5')
    .option('--pids-limit <n>', `processes + threads limit (default ${DEFAULT_PIDS_LIMIT}; -1: none)`)
    .option('--ulimit <name=soft[:hard]>', 'rlimit, e.g. nofile=4096 or core=0 (repeatable)', collect, [])
    .option('-u, --user <uid[:gid]|name[:group]>', "user to run as (names from the image's /etc/passwd, /etc/group)")
    .option('-w, --workdir <dir>', 'working directory in the container')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--tmpfs <path[:opts]>', 'tmpfs at PATH (default options noexec,nosuid,nodev; repeatable)', collect, [])
    .option('--hostname <name>', 'host name in the container (default: the run id)')
    .option('--env-file <file>', 'environment from FILE (K=V lines; repeatable; -e wins)', collect, [])
    .option('-i, --interactive', "keep stdin attached (without it the container's stdin is /dev/null)")
    .option('-t, --tty', "allocate a pseudo-terminal (runc's; window size and ^C behave as with docker)")
    .option('--rm', 'accepted for docker compatibility: capulator never keeps a container after it exits');
}

/** commander's options object holds every option of `run`: these are the workload flags */
const WORKLOAD_KEYS: (keyof WorkloadFlags)[] = [
  'network', 'publish', 'memory', 'memorySwap', 'cpus', 'pidsLimit', 'ulimit', 'user', 'workdir', 'readOnly', 'tmpfs', 'hostname', 'envFile', 'interactive', 'tty',
];

/** The workload flags that were given (for the --server check and the RunRequested record). */
export function givenWorkloadFlags(f: WorkloadFlags): string[] {
  const out: string[] = [];
  for (const k of WORKLOAD_KEYS) {
    const v = f[k];
    if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) continue;
    out.push('--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()));
  }
  return out;
}

/** WorkloadOptions from the flags; bad input is a CliError (exit 2) naming the flag. */
export function workloadFrom(f: WorkloadFlags & { keep?: boolean }, cwd: string): { workload: WorkloadOptions; env: string[] } {
  try {
    const w = defaultWorkload();
    if (f.rm && f.keep) throw new Error('--rm and --keep conflict (--keep keeps the run directory)');
    w.publish = f.publish.map(parsePublish);
    if (f.network !== undefined) {
      if (!NETWORK_MODES.includes(f.network as NetworkMode)) throw new Error(`--network ${f.network}: want one of ${NETWORK_MODES.join(', ')}`);
      w.network = f.network as NetworkMode;
    } else if (w.publish.length > 0) w.network = 'bridge';
    if (w.publish.length > 0 && w.network !== 'bridge') throw new Error(`-p needs --network bridge (not ${w.network})`);
    if (f.memory !== undefined) w.memory = parseMemory(f.memory);
    if (f.memorySwap !== undefined) w.memorySwap = parseMemorySwap(f.memorySwap, w.memory);
    if (f.cpus !== undefined) w.cpus = parseCpus(f.cpus);
    if (f.pidsLimit !== undefined) w.pidsLimit = parsePidsLimit(f.pidsLimit);
    w.ulimits = f.ulimit.map(parseUlimit);
    if (f.user !== undefined) w.user = parseUserSpec(f.user);
    if (f.workdir !== undefined) w.workdir = parseWorkdir(f.workdir);
    w.readOnly = !!f.readOnly;
    w.interactive = !!f.interactive;
    w.tty = !!f.tty;
    w.tmpfs = f.tmpfs.map(parseTmpfs);
    if (f.hostname !== undefined) w.hostname = parseHostname(f.hostname);
    const env: string[] = [];
    for (const file of f.envFile) {
      const path = resolvePath(cwd, file);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw new Error(`--env-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      env.push(...parseEnvFile(file, text));
    }
    return { workload: w, env };
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** What differs from the defaults, for RunRequested.workload (undefined when nothing does). */
export function workloadRecord(w: WorkloadOptions): Record<string, unknown> | undefined {
  const d = defaultWorkload();
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) {
    const dv = (d as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(v) !== JSON.stringify(dv)) out[k] = v === Number.POSITIVE_INFINITY ? 'unlimited' : v;
  }
  // rlimits with RLIM_INFINITY: recorded as "unlimited"
  if (out.ulimits) out.ulimits = w.ulimits.map((u) => ({ type: u.type, soft: isFinite(u.soft) ? u.soft : 'unlimited', hard: isFinite(u.hard) ? u.hard : 'unlimited' }));
  return Object.keys(out).length > 0 ? out : undefined;
}
