import { Command, CommanderError } from 'commander';
import { join } from 'node:path';
import { capulatorHome } from '@capulator/host';
import { STORAGE_FAILED_EXIT, storageErrorText } from '../../runtime/src/run/audit-failure';
import { orphanedRuns } from '../../runtime/src/run/supervision';
import { CliError } from './cli-error';

const pkg = require('../../../../package.json') as { version: string };

/**
 * `capulator` — the command line. Each command group lives in its own file under
 * commands/ and registers itself here.
 *
 * Exit codes: 0 success; 1 a check failed (lint errors, replay would deny, verify failed);
 * 2 bad usage or bad input; 70 internal error; 74 the event store cannot be read or written (disk
 * full, I/O error: `run` exits 125 instead, as for any failed run). A contained program's exit code is passed
 * through by `capulator run`.
 */
type Register = (program: Command) => void;

/**
 * Command groups, loaded on demand: `capulator run …` loads only what `run` needs, so start-up
 * stays short (every group pulls in its own libraries). Help and unknown words load them all.
 */
const GROUPS: Record<string, () => Register[]> = {
  abi: () => [require('./commands/abi.command').registerAbiCommands],
  // `policy suggest|publish` are attached to `policy` by the audit group (policy-events.command)
  policy: () => [require('./commands/policy.command').registerPolicyCommands],
  image: () => [require('./commands/image.command').registerImageCommands],
  run: () => [require('./commands/run.command').registerRunCommands],
  audit: () => [require('./commands/audit.command').registerAuditCommands],
  ps: () => [require('./commands/ps.command').registerPsCommands],
  inspect: () => [require('./commands/ps.command').registerPsCommands],
  serve: () => [require('./commands/serve.command').registerServeCommands],
  token: () => [require('./commands/token.command').registerTokenCommands],
  cp: () => [require('./commands/cp.command').registerCpCommands],
  logs: () => [require('./commands/manage.command').registerLogsCommand],
  wait: () => [require('./commands/manage.command').registerWaitCommand],
  stop: () => [require('./commands/manage.command').registerStopCommand],
  kill: () => [require('./commands/manage.command').registerKillCommand],
  rm: () => [require('./commands/manage.command').registerRmCommand],
  exec: () => [require('./commands/exec.command').registerExecCommands],
};

export function buildProgram(argv: string[] = []): Command {
  const program = new Command();
  program
    .name('capulator')
    .description('Run Linux binaries from OCI/Docker images with every use of privilege decided by a priv(9)-style policy')
    .version(pkg.version, '-V, --version')
    // a usage error is its line and where to read more (hint, below), as docker's: not the whole help (60 lines for run)
    // a word a command does not take is an error (as docker's), not silently ignored; every command inherits it
    .allowExcessArguments(false)
    // `run IMAGE CMD -c x`, `exec RUN CMD -l`: after the image (the run) every word is the program's, as docker's
    .enablePositionalOptions()
    .exitOverride();
  const first = argv.find((a) => !a.startsWith('-'));
  if (!first && (argv.includes('-V') || argv.includes('--version'))) return program;
  const wanted = first && first in GROUPS && first !== 'policy' && first !== 'audit' ? [first] : Object.keys(GROUPS).filter((g) => g !== 'inspect');
  if (first === 'policy' || first === 'audit') wanted.splice(0, wanted.length, 'policy', 'audit');
  for (const g of wanted) for (const register of GROUPS[g]()) register(program);
  const hint = (cmd: Command, path: string) => {
    cmd.showHelpAfterError(`(${path} --help for usage)`);
    for (const sub of cmd.commands) hint(sub, `${path} ${sub.name()}`);
  };
  hint(program, 'capulator');
  return program;
}

/**
 * Finishes the runs whose supervisor died (docs/events.md "Runs that outlive their runtime")
 * before any command: a scan of runs/ that costs a readdir when there is nothing to do.
 */
async function recoverOrphans(argv: string[]): Promise<void> {
  const first = argv.find((a) => !a.startsWith('-'));
  if (!first || argv.includes('--help') || argv.includes('-h')) return;
  const home = capulatorHome();
  const runs = join(home, 'runs');
  if (orphanedRuns(runs).length === 0) return;
  const { recoverOrphans } = require('../../runtime/src/run/recovery') as typeof import('../../runtime/src/run/recovery');
  const events = require('@capulator/events') as typeof import('@capulator/events');
  const why = (e: unknown) => storageErrorText(e) ?? (e as Error).message;
  // the runs of a home on the Kafka bus (a runtime worker's) are recorded on the Kafka log, never in a local events.db
  const bus = homeBus(argv, home);
  let store: import('@capulator/events').EventStore;
  try {
    if (bus) {
      store = await events.connectKafkaEventStore({ ...events.parseKafkaBus(bus), lazy: true, appendTimeoutMs: 30_000 });
    } else store = events.SqliteEventStore.open(join(home, 'events.db'));
  } catch (e) {
    process.stderr.write(`capulator: warning: orphaned runs are not recovered yet: the event ${bus ? `log on ${bus}` : 'store'} cannot be opened (${why(e)})\n`);
    return;
  }
  try {
    const done = await recoverOrphans(runs, store, (run, e) => process.stderr.write(`capulator: warning: run ${run} is not recovered yet: ${why(e)}\n`));
    for (const r of done) {
      const late = !r.closed && r.ingested > 0 ? ` (${r.ingested} of them added after the run's end, recorded elsewhere)` : '';
      process.stderr.write(`capulator: recovered run ${r.runId} (${r.failure.reason}): ${r.stored} of the agent's ${r.decided} decisions recorded${late}\n`);
    }
  } finally {
    await store.close();
  }
}

/**
 * The Kafka bus the runs of this home record on: `serve --bus` now, or the bus an earlier
 * `serve --bus` in this home recorded; undefined for the embedded store. (`audit … --bus` only
 * reads a log: it does not move the home's runs onto it.)
 */
function homeBus(argv: string[], home: string): string | undefined {
  const { resolveBus } = require('./commands/event-log') as typeof import('./commands/event-log');
  let flag: string | undefined;
  if (argv.find((a) => !a.startsWith('-')) === 'serve') {
    const i = argv.findIndex((a) => a === '--bus' || a.startsWith('--bus='));
    flag = i < 0 ? undefined : argv[i].startsWith('--bus=') ? argv[i].slice(6) : argv[i + 1];
  }
  const bus = resolveBus(flag, home, {});
  return bus && /^kafkas?:\/\//.test(bus) ? bus : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  try {
    await recoverOrphans(argv);
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    if (err instanceof CliError) {
      process.stderr.write(`capulator: ${err.message}\n`);
      return err.exitCode;
    }
    const storage = storageErrorText(err);
    if (storage) {
      process.stderr.write(`capulator: the event store cannot be used (${storage})\n`);
      return argv.find((a) => !a.startsWith('-')) === 'run' ? 125 : STORAGE_FAILED_EXIT;
    }
    process.stderr.write(`capulator: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}

if (require.main === module || process.argv[1]?.endsWith('/bin/capulator')) {
  // `capulator … | head`: a closed pipe ends the command quietly, as with other Unix tools.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const argv = process.argv.slice(2);
  main(argv).then((code) => {
    process.exitCode = code;
    // a server that has shut down ends, even if a client library left a connection open (seen:
    // kafkajs, after a broker that paused and was restarted, kept a socket to it and the process
    // alive after every shutdown step had finished)
    if (argv.find((a) => !a.startsWith('-')) === 'serve') process.exit(code);
  });
}
