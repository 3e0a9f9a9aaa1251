import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Detached runs (`capulator run -d`): a small supervisor process (this file, run by Node on its
 * own, in a session of its own) runs `capulator run …` without -d, and keeps what docker's
 * json-file log driver keeps: one JSON line per piece of output, `{"log","stream","time"}`, in
 * $CAPULATOR_HOME/detached/RUN/log.jsonl, and the exit status in `exit` when the run ended.
 * `capulator logs|wait|stop|kill|rm` read these files (and runc's state for the container).
 */
export function detachedDir(home: string, runId: string): string {
  return join(home, 'detached', runId);
}

/** One line of log.jsonl (the server keeps its runs' output in the same lines: run-output.ts). */
export type { LogEntry } from '../../runtime/src/run/run-output';

export interface DetachedExit {
  code: number | null;
  signal: string | null;
}

export function readExit(dir: string): DetachedExit | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'exit'), 'utf8')) as DetachedExit;
  } catch {
    return undefined;
  }
}

/** Readers never see a file half written: written beside it, then renamed over it. */
function writeWhole(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Whether the supervisor of a detached run still runs (its pid, checked against its start time). */
export function supervisorAlive(dir: string): boolean {
  try {
    const [pid, start] = readFileSync(join(dir, 'supervisor'), 'utf8').trim().split(' ');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === start;
  } catch {
    return false;
  }
}

/** Starts the supervisor for `capulator run ARGS` (ARGS without -d) and returns at once, with the process (to tell one that died at once). */
export function startSupervisor(dir: string, bin: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // `--`: node 20 reads an `--env-file` anywhere on its command line, the run's arguments included
  const child = spawn(process.execPath, ['--', __filename, dir, bin, ...args], { detached: true, stdio: 'ignore', env });
  child.unref();
  return child;
}

/** The supervisor's main: runs the command, logs its output, writes the exit status. */
function supervise(dir: string, bin: string, args: string[]): void {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  writeWhole(join(dir, 'supervisor'), `${process.pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}\n`);
  const fd = openSync(join(dir, 'log.jsonl'), 'a', 0o600);
  const write = (stream: 'stdout' | 'stderr', text: string) => {
    const time = new Date().toISOString();
    // one entry per line; a trailing piece without newline is an entry of its own (docker does the same)
    for (const piece of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) writeSync(fd, JSON.stringify({ log: piece, stream, time }) + '\n');
  };
  process.on('SIGHUP', () => undefined);
  process.on('SIGINT', () => undefined);
  const child = spawn(bin, ['run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (s: string) => write('stdout', s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => write('stderr', s));
  child.on('error', (e) => {
    write('stderr', `capulator: cannot run ${bin}: ${e.message}\n`);
    writeWhole(join(dir, 'exit'), JSON.stringify({ code: 70, signal: null }));
    process.exit(0);
  });
  child.on('close', (code, signal) => {
    closeSync(fd);
    writeWhole(join(dir, 'exit'), JSON.stringify({ code, signal }));
    process.exit(0);
  });
}

if (require.main === module) {
  const [dir, bin, ...args] = process.argv.slice(2);
  if (!dir || !bin || !existsSync(dir)) process.exit(2);
  supervise(dir, bin, args);
}
