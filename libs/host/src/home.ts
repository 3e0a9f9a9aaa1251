import { homedir } from 'node:os';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

/**
 * Where capulator keeps its state: the event store, images, run bundles, tokens.
 * `$CAPULATOR_HOME` wins; otherwise root uses /var/lib/capulator and other users
 * `$XDG_DATA_HOME/capulator` (default ~/.local/share/capulator).
 */
export function capulatorHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CAPULATOR_HOME && env.CAPULATOR_HOME.trim() !== '') return env.CAPULATOR_HOME;
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/lib/capulator';
  const xdg = env.XDG_DATA_HOME && env.XDG_DATA_HOME.trim() !== '' ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(xdg, 'capulator');
}

/** The home directory, created (mode 0700) if missing, and the paths inside it. */
export function homePaths(home = capulatorHome()) {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  return {
    home,
    store: join(home, 'events.db'),
    images: join(home, 'images'),
    runs: join(home, 'runs'),
    /** a server's runs' output (apps/runtime run-output.ts) */
    logs: join(home, 'logs'),
    tokens: join(home, 'tokens.json'),
  };
}
