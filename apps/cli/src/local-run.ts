/**
 * `run`'s own options in a command line: the words after `run` up to the image (the first word
 * that is neither an option nor an option's value) or a `--`. The program's words after the image
 * are its own (`capulator run IMG ls -d /`), as docker's are.
 *
 * runsHere: whether the CLI runs this `run` itself, without a daemon (bin/capulator's `local`): no
 * --server, -d/--detach or -h/--help among them. bin/capulator asks before it loads the CLI;
 * agent/src/run-client.c runs_here() is the same rule in C, before Node (kernel-record.int-spec
 * holds them to the same answers). withoutDetach: the command line a detached run's supervisor
 * runs.
 */

/** `run`'s options that take no value (every other takes one): what decides where its options end. */
export const BOOLEAN_LONG: ReadonlySet<string> = new Set(['--learn', '--keep', '--no-store', '--detach', '--read-only', '--interactive', '--tty', '--rm', '--privileged', '--help']);
export const BOOLEAN_SHORT = 'dith';

interface OwnOption {
  index: number;
  /** a long option's name (without `=VALUE`) */
  long?: string;
  /** a short cluster's flag letters, up to the first letter that takes a value (`-itp 80:80`: `it`) */
  flags?: string;
}

/** run's own options in argv (argv[0] === 'run'), the values they take skipped. */
function ownOptions(argv: readonly string[]): OwnOption[] {
  const own: OwnOption[] = [];
  for (let i = 1; i < argv.length; i++) {
    const w = argv[i];
    if (w === '--' || !w.startsWith('-') || w === '-') break; // the image: the run's options end
    if (w.startsWith('--')) {
      const long = w.split('=')[0];
      own.push({ index: i, long });
      if (!w.includes('=') && !BOOLEAN_LONG.has(long)) i++; // its value
      continue;
    }
    let j = 1;
    while (j < w.length && BOOLEAN_SHORT.includes(w[j])) j++;
    own.push({ index: i, flags: w.slice(1, j) });
    if (j === w.length - 1) i++; // a letter that takes a value, last: its value is the next word (else the rest of this one)
  }
  return own;
}

export function runsHere(argv: readonly string[]): boolean {
  if (argv[0] !== 'run') return false;
  return !ownOptions(argv).some((o) => o.long === '--server' || o.long === '--detach' || o.long === '--help' || /[dh]/.test(o.flags ?? ''));
}

/** argv (argv[0] === 'run') without -d/--detach among run's own options (`-itd` becomes `-it`); the program's words untouched. */
export function withoutDetach(argv: readonly string[]): string[] {
  const out = [...argv];
  for (const o of ownOptions(argv).reverse()) {
    const w = argv[o.index];
    if (o.long === '--detach') out.splice(o.index, 1);
    else if (o.flags?.includes('d')) {
      const rest = '-' + o.flags.replace(/d/g, '') + w.slice(1 + o.flags.length);
      if (rest === '-') out.splice(o.index, 1);
      else out[o.index] = rest;
    }
  }
  return out;
}
