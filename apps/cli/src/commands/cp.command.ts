import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve as resolvePath } from 'node:path';
import { homePaths, fsErrorText, repoRoot } from '@capulator/host';
import { findArtifact, listArtifacts } from '../../../runtime/src/run/artifacts';
import { runIdProblem } from '../../../runtime/src/run/run-id';
import { agentBinaryPath } from '../../../runtime/src/run/spares';
import { CliError } from '../cli-error';
import { runningContainer } from './exec.command';

/**
 * `capulator cp RUN:NAME DEST`: copies a file a run left (a core dump: `core`) out of
 * $CAPULATOR_HOME/artifacts/RUN/. `capulator cp RUN:/PATH DEST`: a file of a running run's
 * container, as docker cp copies one (read by the agent binary inside the container's root:
 * read-in-root, agent/PROTOCOL.md). DEST may be a directory (the file keeps its name).
 */
export function registerCpCommands(program: Command): void {
  program
    .command('cp')
    .description("copy a run's artifact (its core dump: capulator cp RUN:core .), or a file of a running run (capulator cp RUN:/etc/os-release .), to the host")
    .argument('<run:name>', 'run id and artifact name (capulator cp RUN: lists them), or an absolute path in the running container')
    .argument('[dest]', 'file or directory (default: .)', '.')
    .action(async (src: string, dest: string) => {
      const i = src.indexOf(':');
      if (i <= 0) throw new CliError(`${src}: want RUN:NAME (e.g. RUN:core)`);
      const run = src.slice(0, i);
      const name = src.slice(i + 1);
      const home = homePaths().home;
      if (name === '') {
        const names = listArtifacts(home, run);
        if (names.length === 0) throw new CliError(`run ${run} has no artifacts`);
        process.stdout.write(names.join('\n') + '\n');
        return;
      }
      if (name.startsWith('/')) return copyOut(run, name, dest, src);
      const from = findArtifact(home, run, name);
      if (!from) {
        const names = listArtifacts(home, run);
        throw new CliError(`run ${run} has no artifact ${name}${names.length ? ` (it has: ${names.join(', ')})` : ''}`);
      }
      let to = resolvePath(dest);
      if (existsSync(to) && statSync(to).isDirectory()) to = join(to, basename(from));
      try {
        copyFileSync(from, to);
      } catch (e) {
        throw new CliError(`cp ${src} ${dest}: ${fsErrorText(e)}`, 1);
      }
    });
}

/** A regular file of a running run's container, to DEST (a directory: the file keeps its name), as docker cp copies one. */
async function copyOut(run: string, path: string, dest: string, src: string): Promise<void> {
  const bad = runIdProblem(run);
  if (bad) throw new CliError(bad);
  let state: { init_process_pid?: number; init_process_start?: number };
  try {
    state = JSON.parse(readFileSync(runningContainer(run).state, 'utf8')) as typeof state;
  } catch (e) {
    if (e instanceof CliError) throw new CliError(`${src}: run ${run} is not running (its files went with it; what it left: capulator cp ${run}:)`, 1);
    throw e;
  }
  let to = resolvePath(dest);
  if (existsSync(to) && statSync(to).isDirectory()) to = join(to, basename(path));
  const tmp = `${to}.capulator-cp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (e) {
    throw new CliError(`cp ${src} ${dest}: ${fsErrorText(e)}`, 1);
  }
  const r = await new Promise<{ code: number | null; stderr: string; error?: Error }>((resolve) => {
    const c = spawn(agentBinaryPath(repoRoot(__dirname)), ['read-in-root', String(state.init_process_pid ?? 0), String(state.init_process_start ?? ''), path], { stdio: ['ignore', fd, 'pipe'] });
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    c.on('error', (error) => resolve({ code: null, stderr, error }));
    c.on('close', (code) => resolve({ code, stderr }));
  });
  closeSync(fd);
  if (r.code !== 0) {
    rmSync(tmp, { force: true });
    const why = r.error?.message ?? (r.stderr.trim().split('\n')[0] || `exit ${r.code}`);
    throw new CliError(r.code === 2 && /gone/.test(why) ? `${src}: run ${run} is not running` : `${src}: ${why}`, 1);
  }
  renameSync(tmp, to);
}
