import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { homePaths } from '@capulator/host';
import { CliError } from '../cli-error';
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
  // the same arguments without -d/--detach (options come before the image; `--` ends them)
  const argv = process.argv.slice(2);
  const at = argv.indexOf('run');
  const rest = argv.slice(at + 1);
  const end = rest.indexOf('--');
  const args = rest.filter((a, i) => (end >= 0 && i > end) || (a !== '-d' && a !== '--detach'));
  if (!givenId) args.unshift('--id', id);
  startSupervisor(dir, process.argv[1], args, process.env);
  const state = join('/run/capulator/runc', `capulator-${id}`, 'state.json');
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const exit = readExit(dir);
    if (exit) {
      if (exit.code === 0) break;
      // it ended before we saw it run: show why, as a foreground run would
      for (const l of readLog(dir)) if (l.stream === 'stderr') process.stderr.write(l.log);
      return exit.code ?? 125;
    }
    if (existsSync(state)) break;
    if (Date.now() > deadline || (!supervisorAlive(dir) && existsSync(join(dir, 'supervisor')))) break;
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
