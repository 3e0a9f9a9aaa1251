import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { homePaths, repoRoot } from '@capulator/host';
import { EXEC_FILE, parseUserSpec, parseWorkdir, resolveUser, RunError } from '../../../runtime/src/run';
import { findCommand } from '../../../runtime/src/run/entrypoint-check';
import { resolveInRootfs } from '../../../runtime/src/run/rootfs-path';
import { CliError } from '../cli-error';
import { afterDashes } from '../argv';
import { runIdProblem } from '../../../runtime/src/run/run-id';
import { envFromFlags } from './run-workload-options';
import { hasControllingTerminal } from '../terminal';
import { agentBinaryPath } from '../../../runtime/src/run/spares';

const ENV = /^[A-Za-z_][A-Za-z0-9_]*(=.*)?$/s;

interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  workdir?: string;
  user?: string;
}

/**
 * `capulator exec RUN -- CMD…`: `runc exec` into a running container. The exec'd process gets the
 * container's process settings (capability sets, noNewPrivileges, rlimits, user unless --user)
 * and runc installs the container's seccomp filter on it, whose notify fd goes to the run's agent:
 * its privilege checks are decided by the same policy and recorded in the same run.
 */
export function registerExecCommands(program: Command): void {
  program
    .command('exec')
    .description("run a command in a running container, under the run's policy and recorded in its run (as docker exec)")
    .argument('<run>', 'run id')
    .argument('<command...>', 'the command and its arguments (after the run id, or after --)')
    .passThroughOptions()
    .option('-i, --interactive', 'pass stdin through (otherwise /dev/null)')
    .option('-t, --tty', 'a pseudo-terminal (window size and ^C as with docker)')
    .option('-e, --env <K=V>', 'an environment variable (repeatable)', (v: string, p: string[]) => [...p, v], [] as string[])
    .option('-w, --workdir <dir>', 'working directory in the container')
    .option('-u, --user <user>', 'UID[:GID] or NAME[:GROUP] of the image')
    .action(async (id: string, command: string[], o: ExecFlags) => {
      process.exitCode = await execCommand(id, afterDashes(command), o);
    });
}

export async function execCommand(id: string, command: string[], o: ExecFlags): Promise<number> {
  const bad = runIdProblem(id);
  if (bad) throw new CliError(bad);
  for (const e of o.env) if (!ENV.test(e)) throw new CliError(`--env ${e}: want NAME=VALUE or NAME`);
  let workdir: string | undefined;
  let user: string | undefined;
  try {
    workdir = o.workdir !== undefined ? parseWorkdir(o.workdir) : undefined;
    user = o.user !== undefined ? parseUserSpec(o.user) : undefined;
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const { dir, runc, containerId, state } = runningContainer(id);
  // the container's root as its first process sees it: its mounts too, and what it changed since
  // the start (a user it added, a program it wrote into a tmpfs), which the run's rootfs does not show
  const seen = containerRoot(state);
  const args = ['exec'];
  if (o.tty) args.push('--tty');
  if (workdir) args.push('--cwd', workdir);
  if (user) {
    try {
      const u = resolveUser(seen ?? join(dir, 'rootfs'), user);
      args.push('--user', `${u.uid}:${u.gid}`);
    } catch (e) {
      throw new CliError(e instanceof RunError ? `--user ${user}: ${e.message}` : (e as Error).message);
    }
  }
  // -t: TERM=xterm unless -e sets it, as docker exec -t
  const env = [...(o.tty && !o.env.some((e) => e === 'TERM' || e.startsWith('TERM=')) ? ['TERM=xterm'] : []), ...envFromFlags(o.env)];
  const missing = seen ? commandProblem(dir, seen, command[0], env, workdir) : undefined;
  if (missing) throw new CliError(missing.message, missing.exit);
  for (const e of env) args.push('--env', e);
  args.push(containerId, ...command);
  // -t with no controlling terminal here (a pipe, cron, CI): runc gets one from the agent
  // binary's pty relay (its output one stream, as a terminal's), as `capulator run -t` does
  const relay = o.tty && !hasControllingTerminal();
  const [cmd, argv] = relay
    ? [agentBinaryPath(repoRoot(__dirname)), ['pty', '24', '80', '--', runc.command, ...runc.args, ...args]]
    : [runc.command, [...runc.args, ...args]];
  const child = spawn(cmd, argv, { stdio: [o.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
  // runc passes signals on to the exec'd process (and ^C reaches it through the terminal or the
  // process group): this process only waits for runc's end
  const ignore = () => undefined;
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  process.on('SIGINT', ignore);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  const r = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  process.off('SIGINT', ignore);
  process.off('SIGTERM', onTerm);
  process.off('SIGHUP', onHup);
  if (r.error) throw new CliError(`cannot start runc: ${r.error.message}`, 125);
  return r.code ?? 128 + 9;
}

/**
 * A run of this home whose container runs: its directory, how `capulator exec` starts runc for it
 * (EXEC_FILE), the container's name and runc's state file. CliError (exit 1) when it does not run.
 */
export function runningContainer(id: string): { dir: string; runc: { command: string; args: string[] }; containerId: string; state: string } {
  const dir = join(homePaths().home, 'runs', id);
  let runc: { command: string; args: string[] };
  try {
    runc = JSON.parse(readFileSync(join(dir, EXEC_FILE), 'utf8')) as { command: string; args: string[] };
  } catch {
    throw new CliError(`run ${id} is not running`, 1);
  }
  const containerId = `capulator-${id}`;
  const state = join(runc.args[runc.args.indexOf('--root') + 1], containerId, 'state.json');
  if (!existsSync(state)) throw new CliError(`run ${id} is not running`, 1);
  return { dir, runc, containerId, state };
}

/** /proc/PID/root of the container's first process (runc's state), or undefined. */
function containerRoot(stateFile: string): string | undefined {
  try {
    const pid = (JSON.parse(readFileSync(stateFile, 'utf8')) as { init_process_pid?: number }).init_process_pid;
    return Number.isInteger(pid) && pid! > 0 && existsSync(`/proc/${pid}/root`) ? `/proc/${pid}/root` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why `cmd` cannot be exec'd in the run's container, found before runc is asked (which would fail
 * with its own log line and 255): not found (127), or not an executable file (126), as a shell
 * says. Looked up as `run` looks in the image, but through the container's own root as its first
 * process sees it (`root`, /proc/PID/root), with PATH from the container's environment and -e.
 * Undefined when found, or when the run's config cannot be read (runc decides).
 */
function commandProblem(dir: string, root: string, cmd: string, flagEnv: string[], workdir: string | undefined): { message: string; exit: number } | undefined {
  let config: { process?: { env?: string[]; cwd?: string } };
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as typeof config;
  } catch {
    return undefined;
  }
  // the container's environment, then -e (a later PATH wins, as runc exec sets it)
  const path = [...(config.process?.env ?? []), ...flagEnv].reverse().find((e) => e.startsWith('PATH='));
  const found = findCommand(root, cmd, path ? [path] : [], workdir ?? config.process?.cwd ?? '/');
  if (!found) return { message: `${cmd}: not found in the container${cmd.includes('/') ? '' : ' (PATH)'}`, exit: 127 };
  const at = resolveInRootfs(root, found);
  try {
    const st = at ? statSync(at) : undefined;
    if (!st?.isFile() || (st.mode & 0o111) === 0) return { message: `${cmd}: not an executable file in the container`, exit: 126 };
  } catch {
    return undefined;
  }
  return undefined;
}
