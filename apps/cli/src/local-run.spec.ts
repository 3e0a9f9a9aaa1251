import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerRunCommands } from './commands/run.command';
import { BOOLEAN_LONG, BOOLEAN_SHORT, runsHere } from './local-run';
import { LOCAL_RUN_CASES } from '../../../test/fixtures/local-run-cases';


describe('whether the CLI runs a `run` itself (no daemon, no --server, -d or --help among its options)', () => {
  it('reads only the run\'s own options: the program\'s words after the image are its own', () => {
    for (const [argv, want] of LOCAL_RUN_CASES) assert.equal(runsHere(argv), want, argv.join(' '));
  });

  it('knows which of run\'s options take a value, as the command defines them (a new option cannot drift)', () => {
    const program = new Command().enablePositionalOptions();
    registerRunCommands(program);
    const run = program.commands.find((c) => c.name() === 'run')!;
    assert.ok(run.options.length > 20);
    for (const o of run.options) {
      const boolean = !o.required && !o.optional;
      if (o.long) assert.equal(BOOLEAN_LONG.has(o.long), boolean, o.long);
      if (o.short) assert.equal(BOOLEAN_SHORT.includes(o.short[1]), boolean, o.short);
    }
  });
});
