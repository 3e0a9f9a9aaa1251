import { Command, CommanderError } from 'commander';
import { CliError } from './cli-error';

const pkg = require('../../../../package.json') as { version: string };

/**
 * `capulator` — the command line. Each command group lives in its own file under
 * commands/ and registers itself here.
 *
 * Exit codes: 0 success; 1 a check failed (lint errors, replay would deny, verify failed);
 * 2 bad usage or bad input; 70 internal error. A contained program's exit code is passed
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
  serve: () => [require('./commands/serve.command').registerServeCommands],
  token: () => [require('./commands/token.command').registerTokenCommands],
  cp: () => [require('./commands/cp.command').registerCpCommands],
  logs: () => [require('./commands/manage.command').registerLogsCommand],
  wait: () => [require('./commands/manage.command').registerWaitCommand],
  stop: () => [require('./commands/manage.command').registerStopCommand],
  kill: () => [require('./commands/manage.command').registerKillCommand],
  rm: () => [require('./commands/manage.command').registerRmCommand],
};

export function buildProgram(argv: string[] = []): Command {
  const program = new Command();
  program
    .name('capulator')
    .description('Run Linux binaries from OCI/Docker images with every use of privilege decided by a priv(9)-style policy')
    .version(pkg.version, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  const first = argv.find((a) => !a.startsWith('-'));
  if (!first && (argv.includes('-V') || argv.includes('--version'))) return program;
  const wanted = first && first in GROUPS && first !== 'policy' && first !== 'audit' ? [first] : Object.keys(GROUPS);
  if (first === 'policy' || first === 'audit') wanted.splice(0, wanted.length, 'policy', 'audit');
  for (const g of wanted) for (const register of GROUPS[g]()) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  try {
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
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
