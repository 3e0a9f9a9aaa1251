import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { homePaths } from '@capulator/host';
import { signalNumber } from '@capulator/abi';
import { artifactsDir } from '../../../runtime/src/run/artifacts';
import { CliError } from '../cli-error';
import { detachedDir, readExit, supervisorAlive, type LogEntry } from '../detached';
import type { RemoteTarget } from './remote-run';
import { runIdProblem } from '../../../runtime/src/run/run-id';
import { parseSince } from '../since';
import { LogPrinter, lastLines, parseTail, type LogChunk } from '../log-lines';

/**
 * `capulator logs|wait|stop|kill|rm RUN` for runs started with `run -d` (logs, wait, rm) and any
 * running container (stop, kill: through runc, as `docker stop` signals the container's init).
 */
const RUNC_ROOT = '/run/capulator/runc';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runId(id: string): string {
  const bad = runIdProblem(id);
  if (bad) throw new CliError(bad);
  return id;
}
const containerRunning = (id: string) => existsSync(join(RUNC_ROOT, `capulator-${id}`, 'state.json'));
function detached(id: string): string {
  const dir = detachedDir(homePaths().home, runId(id));
  if (!existsSync(dir)) throw new CliError(`no detached run ${id} (started with capulator run -d)`);
  return dir;
}

interface ServerFlags {
  server?: string;
  token?: string;
}

/** `--server URL [--token T]`: the run is a server's (run --server); undefined for a local run. */
function serverOf(o: ServerFlags): RemoteTarget | undefined {
  if (!o.server) return undefined;
  const token = o.token ?? process.env.CAPULATOR_TOKEN;
  if (!token) throw new CliError('--server needs --token T (or $CAPULATOR_TOKEN)');
  return { server: o.server, token };
}

function withServer(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'a run of a capulator server (capulator run --server … -d)')
    .option('--token <token>', 'API token for --server (default: $CAPULATOR_TOKEN)');
}

export function registerLogsCommand(program: Command): void {
  withServer(
    program
      .command('logs')
      .description('output of a detached run (capulator run -d), or of a run of a server (--server): stdout to stdout, stderr to stderr')
      .argument('<run>', 'run id')
      .option('-f, --follow', 'keep printing new output until the run ends')
      .option('--since <time>', 'only output since TIME (RFC 3339) or a duration ago (30s, 10m, 2h, 7d)')
      .option('-n, --tail <lines>', 'only the last LINES lines of the output so far (then, with -f, what follows), or all', 'all')
      .option('-t, --timestamps', 'prefix each line with its time'),
  ).action(async (id: string, o: { follow?: boolean; since?: string; tail: string; timestamps?: boolean } & ServerFlags) => {
    const since = o.since ? parseSince(o.since) : undefined;
    let tail: number | undefined;
    try {
      tail = parseTail(o.tail);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const target = serverOf(o);
    if (target) {
      const { remoteLogs } = await import('./remote-run');
      await remoteLogs(target, runId(id), { follow: !!o.follow, since, timestamps: o.timestamps, tail });
      return;
    }
    const dir = detached(id);
    const printer = new LogPrinter(process.stdout, process.stderr, o.timestamps);
    let fd: number | undefined;
    let pos = 0;
    let rest = Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(1 << 20);
    /** what log.jsonl holds past what was read (read from where the last read ended: -f on a long log reads each byte once) */
    const read = (): LogChunk[] => {
      try {
        fd ??= openSync(join(dir, 'log.jsonl'), 'r');
      } catch {
        return [];
      }
      const parts = [rest];
      for (let n; (n = readSync(fd, buf, 0, buf.length, pos)) > 0; pos += n) parts.push(Buffer.from(buf.subarray(0, n)));
      const all = Buffer.concat(parts);
      // whole lines only (a line being written waits for the next read, its bytes undecoded)
      const end = all.lastIndexOf(0x0a) + 1;
      rest = all.subarray(end);
      const chunks: LogChunk[] = [];
      for (const l of all.subarray(0, end).toString('utf8').split('\n')) {
        if (!l) continue;
        let e: LogEntry;
        try {
          e = JSON.parse(l) as LogEntry;
        } catch {
          continue; // a line cut short (the supervisor killed mid-write): the next one starts whole
        }
        if (typeof e.log !== 'string' || (since !== undefined && Date.parse(e.time) < since)) continue;
        chunks.push({ stream: e.stream === 'stderr' ? 'stderr' : 'stdout', time: e.time, text: e.log });
      }
      return chunks;
    };
    const drain = () => {
      for (const c of read()) printer.write(c);
    };
    try {
      const first = read();
      for (const c of tail === undefined ? first : lastLines(first, tail)) printer.write(c);
      if (!o.follow) return;
      while (!readExit(dir) && supervisorAlive(dir)) {
        await sleep(200);
        drain();
      }
      drain();
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  });
}

export function registerWaitCommand(program: Command): void {
  withServer(
    program
      .command('wait')
      .description('wait until detached runs (or runs of a server: --server) end and print their exit statuses, one line each (as docker wait, this command exits 0)')
      .argument('<run...>', 'run ids'),
  ).action(async (ids: string[], o: ServerFlags) => {
    const target = serverOf(o);
    await eachRun(ids, false, async (id) => {
      if (target) {
        const { remoteWait } = await import('./remote-run');
        process.stdout.write(`${await remoteWait(target, runId(id))}\n`);
        return;
      }
      await waitLocal(id);
    });
  });
}

async function waitLocal(id: string): Promise<void> {
  const dir = detached(id);
  let exit = readExit(dir);
  while (!exit) {
    if (!supervisorAlive(dir)) {
      exit = readExit(dir);
      if (!exit) throw new CliError(`run ${id}: its supervisor is gone and left no exit status`, 1);
      break;
    }
    await sleep(200);
    exit = readExit(dir);
  }
  process.stdout.write(`${exit.code ?? 125}\n`);
}

/**
 * Each run in turn (or all at once: `parallel`), as docker's stop, kill, wait and rm take
 * several: one that fails is said in its line and the others are still done; the command then
 * exits with the first failure's status. One run alone fails as a single command does.
 */
async function eachRun(ids: string[], parallel: boolean, one: (id: string) => Promise<void> | void): Promise<void> {
  let failed: CliError | undefined;
  const attempt = async (id: string) => {
    try {
      await one(id);
    } catch (e) {
      if (!(e instanceof CliError) || ids.length === 1) throw e;
      process.stderr.write(`capulator: ${e.message}\n`);
      failed ??= e;
    }
  };
  if (parallel) await Promise.all(ids.map(attempt));
  else for (const id of ids) await attempt(id);
  if (failed) process.exitCode = failed.exitCode;
}

function kill(id: string, sig: string, all = false): boolean {
  const r = spawnSync('runc', ['--root', RUNC_ROOT, 'kill', ...(all ? ['--all'] : []), `capulator-${id}`, sig], { encoding: 'utf8' });
  return r.status === 0;
}

export function registerStopCommand(program: Command): void {
  const cmd = program
    .command('stop')
    .description("stop a running container: SIGTERM to its first process, SIGKILL to all after the grace time (as docker stop); with --server, a run of that server (stopped at once: the server has no grace time)")
    .argument('<run...>', 'run ids (stopped at once, each printed when stopped)')
    .option('-t, --time <seconds>', 'grace time before SIGKILL', '10');
  withServer(cmd).action(async (ids: string[], o: { time: string } & ServerFlags) => {
    ids.forEach(runId);
    if (!/^\d+$/.test(o.time)) throw new CliError(`--time ${o.time}: want whole seconds`);
    const target = serverOf(o);
    if (target && cmd.getOptionValueSource('time') === 'cli') throw new CliError('--time is not supported with --server: the server stops a run at once');
    await eachRun(ids, true, async (id) => {
      if (target) {
        const { remoteStop } = await import('./remote-run');
        await remoteStop(target, id);
        process.stdout.write(`${id}\n`);
        return;
      }
      await stopLocal(id, Number(o.time));
    });
  });
}

async function stopLocal(id: string, graceSeconds: number): Promise<void> {
  if (!containerRunning(id)) throw new CliError(`run ${id} is not running`, 1);
  kill(id, 'TERM');
  const end = Date.now() + graceSeconds * 1000;
  while (containerRunning(id) && Date.now() < end) await sleep(100);
  if (containerRunning(id)) kill(id, 'KILL', true);
  const hardEnd = Date.now() + 10_000;
  while (containerRunning(id) && Date.now() < hardEnd) await sleep(100);
  if (containerRunning(id)) throw new CliError(`run ${id} did not stop`, 1);
  process.stdout.write(`${id}\n`);
}

export function registerKillCommand(program: Command): void {
  program
    .command('kill')
    .description("send a signal to a running container's first process (default SIGKILL, to all of them)")
    .argument('<run...>', 'run ids')
    .option('-s, --signal <sig>', 'signal name or number', 'KILL')
    .action(async (ids: string[], o: { signal: string }) => {
      ids.forEach(runId);
      const name = o.signal.toUpperCase().replace(/^SIG/, '');
      if (/^\d+$/.test(name) ? !(Number(name) >= 1 && Number(name) <= 64) : signalNumber(`SIG${name}`) === undefined) throw new CliError(`--signal ${o.signal}: unknown signal`);
      await eachRun(ids, false, (id) => {
        if (!containerRunning(id)) throw new CliError(`run ${id} is not running`, 1);
        if (!kill(id, name, name === 'KILL' || name === '9')) throw new CliError(`run ${id}: runc kill failed`, 1);
        process.stdout.write(`${id}\n`);
      });
    });
}

export function registerRmCommand(program: Command): void {
  program
    .command('rm')
    .description("remove what an ended run left: a detached run's log and exit status, its artifacts (core dumps); its events stay")
    .argument('<run...>', 'run ids')
    .option('-f, --force', 'kill a run that is still running first (SIGKILL, as docker rm -f)')
    .action(async (ids: string[], o: { force?: boolean }) => {
      const home = homePaths().home;
      ids.forEach(runId);
      await eachRun(ids, false, async (id) => {
        const dir = detachedDir(home, id);
        const arts = artifactsDir(home, id);
        const running = () => containerRunning(id) || (existsSync(dir) && !readExit(dir) && supervisorAlive(dir));
        if (running() && o.force) {
          if (containerRunning(id)) kill(id, 'KILL', true);
          // its end recorded (a detached run's supervisor writes its exit status last)
          const end = Date.now() + 10_000;
          while (running() && Date.now() < end) await sleep(100);
        }
        if (running()) throw new CliError(o.force ? `run ${id} did not stop` : `run ${id} is running; stop it first (or rm -f)`, 1);
        if (!existsSync(dir) && !existsSync(arts)) throw new CliError(`run ${id} left nothing to remove`, 1);
        rmSync(dir, { recursive: true, force: true });
        rmSync(arts, { recursive: true, force: true });
        process.stdout.write(`${id}\n`);
      });
    });
}
