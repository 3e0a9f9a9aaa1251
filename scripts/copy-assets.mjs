#!/usr/bin/env node
// Copies non-TypeScript assets the built code reads at run time into dist/.
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
const root = new URL('..', import.meta.url).pathname;
const assets = [
  // [from, to] relative to the repository root
];
for (const [from, to] of assets) {
  const src = join(root, from);
  if (!existsSync(src)) continue;
  mkdirSync(dirname(join(root, to)), { recursive: true });
  cpSync(src, join(root, to), { recursive: true });
}
