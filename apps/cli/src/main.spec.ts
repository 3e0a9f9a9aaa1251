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
  it('says what is wrong and where to read more in two lines, not the whole help', () => {
    for (const [argv, first, hint] of [
      [['run', '--zzz', 'img'], "error: unknown option '--zzz'", 'capulator run'],
      [['image', 'import'], "error: missing required argument 'path'", 'capulator image import'],
      [['nosuch'], "error: unknown command 'nosuch'", 'capulator'],
    ] as const) {
      let err = '';
      const program = buildProgram([...argv]).configureOutput({ writeOut: () => undefined, writeErr: (s) => (err += s) });
      assert.throws(() => program.parse([...argv], { from: 'user' }), CommanderError);
      assert.equal(err, `${first}\n(${hint} --help for usage)\n`, argv.join(' '));
    }
  });
});
