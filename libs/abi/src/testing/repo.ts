import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root, found upward from a compiled test file (dist/libs/abi/src/… or the source tree). */
export function repoRoot(from: string): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'libs', 'abi', 'reference', 'priv.tsv')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = join(dir, '..');
    if (up === dir) throw new Error(`cannot find the repository root above ${from}`);
    dir = up;
  }
}

/** Reads a TSV reference file: rows (comment lines and the header skipped) as string arrays. */
export function tsvRows(text: string): string[][] {
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  return lines.slice(1).map((l) => l.split('\t'));
}
