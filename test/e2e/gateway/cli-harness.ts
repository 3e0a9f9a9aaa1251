import 'reflect-metadata';
import { CommanderError } from 'commander';
import { buildProgram } from '../../../apps/cli/src/main';
import { CliError } from '../../../apps/cli/src/cli-error';
import { registerServeCommands } from '../../../apps/cli/src/commands/serve.command';
import { registerTokenCommands } from '../../../apps/cli/src/commands/token.command';

/**
 * `capulator` with the gateway's commands registered even before apps/cli/src/main.ts wires
 * them (the lead owns main.ts); once it does, the program already has them.
 */
async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (!program.commands.some((c) => c.name() === 'token')) registerTokenCommands(program);
  if (!program.commands.some((c) => c.name() === 'serve')) registerServeCommands(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' ? 0 : 2;
    if (err instanceof CliError) {
      process.stderr.write(`capulator: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`capulator: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
