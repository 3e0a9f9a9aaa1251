import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { registerAbiCommands } from './commands/abi.command';
import { registerPolicyCommands } from './commands/policy.command';
import { registerImageCommands } from './commands/image.command';
import { registerRunCommands } from './commands/run.command';
import { registerAuditCommands } from './commands/audit.command';
import { registerServeCommands } from './commands/serve.command';
import { registerTokenCommands } from './commands/token.command';
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
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('capulator')
    .description('Run Linux binaries from OCI/Docker images with every use of privilege decided by a priv(9)-style policy')
    .version(pkg.version, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  registerAbiCommands(program);
  registerPolicyCommands(program);
  registerImageCommands(program);
  registerRunCommands(program);
  registerAuditCommands(program);
  registerServeCommands(program);
  registerTokenCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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
