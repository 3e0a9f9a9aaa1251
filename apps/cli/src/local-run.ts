/**
 * Whether the CLI runs this `run` itself, without a daemon (bin/capulator's `local`): no
 * --server, -d/--detach or -h/--help among the run's own options. Those are the words after `run`
 * up to the image (the first word that is neither an option nor an option's value) or a `--`:
 * the program's words after the image are its own (`capulator run IMG ls -d /`).
 * bin/capulator asks before it loads the CLI; agent/src/run-client.c runs_here() is the same rule
 * in C, before Node (kernel-record.int-spec holds them to the same answers).
 */
export function runsHere(argv: readonly string[]): boolean {
  if (argv[0] !== 'run') return false;
  for (let i = 1; i < argv.length; i++) {
    const w = argv[i];
    if (w === '--' || !w.startsWith('-') || w === '-') return true; // the image: the run's options end
    if (w.startsWith('--')) {
      const name = w.split('=')[0];
      if (name === '--server' || name === '--detach' || name === '--help') return false;
      if (!w.includes('=') && !BOOLEAN_LONG.has(name)) i++; // its value
      continue;
    }
    for (let j = 1; j < w.length; j++) {
      if (w[j] === 'd' || w[j] === 'h') return false;
      if (BOOLEAN_SHORT.includes(w[j])) continue;
      if (j === w.length - 1) i++; // its value is the next word (else the rest of this one)
      break;
    }
  }
  return true;
}

/** `run`'s options that take no value (every other takes one): what decides where its options end. */
export const BOOLEAN_LONG: ReadonlySet<string> = new Set(['--learn', '--keep', '--no-store', '--detach', '--read-only', '--interactive', '--tty', '--rm', '--privileged', '--help']);
export const BOOLEAN_SHORT = 'dith';
