import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerRunCommands } from './commands/run.command';
import { BOOLEAN_LONG, BOOLEAN_SHORT, runsHere, withoutDetach } from './local-run';
import { LOCAL_RUN_CASES } from '../../../test/fixtures/local-run-cases';


describe('whether the CLI runs a `run` itself (no daemon, no --server, -d or --help among its options)', () => {
  it('reads only the run\'s own options: the program\'s words after the image are its own', () => {
    for (const [argv, want] of LOCAL_RUN_CASES) assert.equal(runsHere(argv), want, argv.join(' '));
  });

  it("a detached run's supervisor runs the same line without -d, -d taken only from run's own options", () => {
    for (const [argv, want] of [
      [['run', '-d', 'IMG', 'ls', '-d', '/'], ['run', 'IMG', 'ls', '-d', '/']],
      [['run', '-itd', 'IMG'], ['run', '-it', 'IMG']],
      [['run', '-dit', '--detach', '-e', '-d', 'IMG', '--', '-d'], ['run', '-it', '-e', '-d', 'IMG', '--', '-d']],
      [['run', '-dp', '8080:80', 'IMG'], ['run', '-p', '8080:80', 'IMG']],
      [['run', '-dp8080:80', 'IMG'], ['run', '-p8080:80', 'IMG']],
      [['run', '--', 'IMG', '-d'], ['run', '--', 'IMG', '-d']],
    ]) assert.deepEqual(withoutDetach(argv), want, argv.join(' '));
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
