import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root (where package.json and agent/ live), found from the built file's location. */
export function repoRoot(from = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'capulator'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`capulator: cannot find the repository root above ${from}`);
    dir = up;
  }
}
