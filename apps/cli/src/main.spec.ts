import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError } from 'commander';
import { buildProgram } from './main';

describe('the command line', () => {
  const parse = (argv: string[]) => {
    const program = buildProgram(argv).configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    // every command's action is replaced: only the parsing is under test
    const quiet = (c: typeof program) => {
      c.action(() => undefined);
      c.commands.forEach(quiet);
    };
    program.commands.forEach(quiet);
    return program.parse(argv, { from: 'user' });
  };
  it('refuses a word a command does not take, in every group (as docker does), not ignoring it', () => {
    for (const argv of [['ps', 'extra'], ['audit', 'verify', 'x'], ['abi', 'caps', '--json', 'extra'], ['token', 'ls', 'x']]) {
      assert.throws(() => parse(argv), (e: unknown) => e instanceof CommanderError && e.code === 'commander.excessArguments', argv.join(' '));
    }
  });
  it('still takes what commands take: variadic runs, a program and its arguments', () => {
    for (const argv of [['rm', 'a', 'b'], ['run', 'img', '--', '/bin/echo', 'a', 'b'], ['run', 'img', '/bin/echo', 'a'], ['ps', '-a']]) parse(argv);
  });
});
