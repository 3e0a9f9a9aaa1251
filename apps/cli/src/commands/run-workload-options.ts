import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import {
  DEFAULT_PIDS_LIMIT,
  parseEnvFile,
  parseWorkload,
  workloadRecord,
  type WorkloadOptions,
} from '../../../runtime/src/run';
import { CliError } from '../cli-error';
import { fsErrorText } from '@capulator/host';

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

/** An environment variable's name, as `-e` takes it. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether some `-e` flag names a variable whose value is to come from this process's environment. */
export function envFromHost(flags: readonly string[]): boolean {
  return flags.some((e) => ENV_NAME.test(e));
}

/**
 * `-e K=V` and, as docker does, `-e K`: K with this process's value, left out when it has none.
 * A name that is not one (empty, or with characters other than letters, digits and _) is bad input.
 */
export function envFromFlags(flags: readonly string[], host: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const e of flags) {
    const eq = e.indexOf('=');
    const name = eq < 0 ? e : e.slice(0, eq);
    if (!ENV_NAME.test(name)) throw new CliError(`--env ${e}: want K=V, or K for this shell's value of K`);
    if (eq >= 0) out.push(e);
    else if (host[name] !== undefined) out.push(`${name}=${host[name]}`);
  }
  return out;
}

export function addWorkloadOptions(cmd: Command): Command {
  return cmd
    .option('--network <mode>', `none (default: loopback only), bridge (CNI bridge capulator0, NAT out), host`)
    .option('-p, --publish <[ip:]hostPort:port[/udp]>', 'publish a container port on the host (implies --network bridge; repeatable)', collect, [])
    .option('-m, --memory <bytes>', 'memory limit, e.g. 256m (an OOM kill is recorded as oom)')
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

/** WorkloadOptions from the flags; bad input is a CliError (exit 2) naming the flag. */
export function workloadFrom(f: WorkloadFlags & { keep?: boolean }, cwd: string): { workload: WorkloadOptions; env: string[] } {
  try {
    if (f.rm && f.keep) throw new Error('--rm and --keep conflict (--keep keeps the run directory)');
    const w = parseWorkload(f);
    const env: string[] = [];
    for (const file of f.envFile) {
      const path = resolvePath(cwd, file);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw new Error(`--env-file ${file}: ${fsErrorText(e)}`);
      }
      env.push(...parseEnvFile(file, text));
    }
    return { workload: w, env };
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

export { workloadRecord };

/** The workload flags as POST /v1/runs takes them (`workload`), omitting what was not given. */
export function serverWorkload(f: WorkloadFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['network', 'memory', 'memorySwap', 'cpus', 'pidsLimit', 'user', 'workdir', 'hostname'] as const) if (f[k] !== undefined) out[k] = f[k];
  for (const k of ['publish', 'ulimit', 'tmpfs'] as const) if (f[k].length > 0) out[k] = f[k];
  if (f.readOnly) out.readOnly = true;
  if (f.interactive) out.interactive = true;
  if (f.tty) out.tty = true;
  return out;
}
