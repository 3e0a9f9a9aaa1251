#!/usr/bin/env node
// Builds the audit console (apps/console/web) into dist/console: one JS bundle (TypeScript +
// CodeMirror 6, bundled by esbuild from node_modules), one CSS file and index.html, each with a
// .gz next to it (served when the browser accepts gzip). No CDN: everything the page loads is here.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'apps/console/web');
const out = join(root, 'dist/console');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// esbuild does not type-check: tsc does, with the DOM library (apps/console/web/tsconfig.json)
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(src, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
// the policy's property names, descriptions and enums for the editor's completion, taken from
// libs/policy's JSON Schema (compiled by tsc just before this script in `npm run build`)
const require = createRequire(import.meta.url);
const { policyJsonSchema } = require(join(root, 'dist/libs/policy/src/schema.js'));
const keys = {};
const walk = (node, path) => {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) return node.forEach((n) => walk(n, path));
  for (const [k, v] of Object.entries(node.properties ?? {})) {
    const e = (keys[k] ??= { paths: [], description: v.description ?? '', values: [] });
    e.paths.push(path);
    const enums = [v.enum, v.const !== undefined ? [v.const] : undefined, ...(v.anyOf ?? []).map((a) => a.enum)].filter(Boolean).flat();
    for (const x of enums) if (typeof x === 'string' && !/^(PRIV_|CAP_)/.test(x) && !e.values.includes(x) && e.values.length < 200) e.values.push(x);
    walk(v, path ? `${path}.${k}` : k);
  }
  for (const sub of ['items', 'anyOf', 'oneOf']) if (node[sub]) walk(node[sub], path);
};
walk(policyJsonSchema(), '');
await build({
  define: { __POLICY_KEYS__: JSON.stringify(keys) },
  entryPoints: [join(src, 'main.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunk-[hash]',
  target: ['chrome110', 'firefox115'],
  entryNames: 'app',
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
copyFileSync(join(src, 'app.css'), join(out, 'app.css'));
const sizes = {};
for (const f of readdirSync(out).filter((n) => /\.(html|js|css)$/.test(n))) {
  const body = readFileSync(join(out, f));
  const gz = gzipSync(body, { level: 9 });
  writeFileSync(join(out, f + '.gz'), gz);
  sizes[f] = { bytes: statSync(join(out, f)).size, gzip: gz.length };
}
writeFileSync(join(out, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
if (process.argv.includes('--sizes')) console.log(JSON.stringify(sizes));
