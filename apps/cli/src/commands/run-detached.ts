import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { homePaths } from '@capulator/host';
import { EXEC_FILE } from '../../../runtime/src/run';
import { CliError } from '../cli-error';
import { withoutDetach } from '../local-run';
import { detachedDir, readExit, startSupervisor, supervisorAlive, type LogEntry } from '../detached';

const START_TIMEOUT_MS = 60_000;

/**
 * `capulator run -d …`: starts a supervisor running the same `capulator run` without -d (through
 * `capulator serve` when one runs), waits until the container runs (or the run ended: then its
 * errors and status are this command's), prints the run id.
 */
export async function runDetached(givenId: string | undefined): Promise<number> {
  const id = givenId ?? randomBytes(6).toString('hex');
  const home = homePaths().home;
  const dir = detachedDir(home, id);
  if (existsSync(dir)) throw new CliError(`run ${id} already exists (${dir}); capulator rm ${id} removes it`);
  // the same arguments without -d/--detach among run's own options (`-itd` is `-it` there; the
  // program's words after the image are its own)
  const argv = process.argv.slice(2);
  const args = withoutDetach(argv.slice(argv.indexOf('run'))).slice(1);
  if (!givenId) args.unshift('--id', id);
  const supervisor = startSupervisor(dir, process.argv[1], args, process.env);
  supervisor.on('error', () => undefined);
  const state = join('/run/capulator/runc', `capulator-${id}`, 'state.json');
  const execFile = join(home, 'runs', id, EXEC_FILE);
  // the container runs once runc wrote its state after this run wrote how to exec into it (a
  // state.json older than that is another container's of the same name, which the run refuses)
  const started = (): boolean => {
    try {
      return statSync(state).mtimeMs >= statSync(execFile).mtimeMs;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    // the supervisor's state is read before its exit file: one that wrote its exit and ended
    // between the two reads is seen by the exit read
    const gone = existsSync(join(dir, 'supervisor')) && !supervisorAlive(dir);
    const exit = readExit(dir);
    if (exit) {
      if (exit.code === 0) break;
      // it ended before we saw it run: show why, as a foreground run would
      for (const l of readLog(dir)) if (l.stream === 'stderr') process.stderr.write(l.log);
      return exit.code ?? 125;
    }
    if (gone) throw new CliError(`run ${id}: its supervisor ended without an exit status (${dir})`, 125);
    // it ended before it could even say it runs (node refused it, say)
    if (!exit && (supervisor.exitCode !== null || supervisor.signalCode !== null) && !existsSync(join(dir, 'supervisor'))) {
      throw new CliError(`run ${id}: its supervisor could not start (${supervisor.signalCode ?? `exit ${supervisor.exitCode}`})`, 125);
    }
    if (started()) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  process.stdout.write(`${id}\n`);
  return 0;
}

function readLog(dir: string): LogEntry[] {
  try {
    return readFileSync(join(dir, 'log.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l) as LogEntry);
  } catch {
    return [];
  }
}
