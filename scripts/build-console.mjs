#!/usr/bin/env node
// Builds the audit console (apps/console/web) into dist/console: one JS bundle (TypeScript +
// CodeMirror 6, bundled by esbuild from node_modules), one CSS file and index.html, each with a
// .gz next to it (served when the browser accepts gzip). No CDN: everything the page loads is here.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'apps/console/web');
const out = join(root, 'dist/console');
mkdirSync(out, { recursive: true });
// esbuild does not type-check: tsc does, with the DOM library (apps/console/web/tsconfig.json)
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(src, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
await build({
  entryPoints: [join(src, 'main.ts')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox115'],
  outfile: join(out, 'app.js'),
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
copyFileSync(join(src, 'app.css'), join(out, 'app.css'));
const sizes = {};
for (const f of ['index.html', 'app.js', 'app.css']) {
  const body = readFileSync(join(out, f));
  const gz = gzipSync(body, { level: 9 });
  writeFileSync(join(out, f + '.gz'), gz);
  sizes[f] = { bytes: statSync(join(out, f)).size, gzip: gz.length };
}
writeFileSync(join(out, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
if (process.argv.includes('--sizes')) console.log(JSON.stringify(sizes));
