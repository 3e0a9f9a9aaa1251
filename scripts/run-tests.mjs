#!/usr/bin/env node
// Runs the test suites from the built tree (dist/) with node's own test runner.
//   --unit          only *.spec.js (pure, no root, no services)
//   --only PATTERN  only files whose path contains PATTERN
// Unit specs (*.spec.ts), integration specs (*.int-spec.ts, real runc/SQLite/registry/Kafka)
// and end-to-end specs (test/e2e/**/*.e2e-spec.ts) all compile into dist/.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const files = walk(dist)
  .filter((f) => /\.(spec|int-spec|e2e-spec)\.js$/.test(f))
  .filter((f) => !unitOnly || /[^-]spec\.js$/.test(f) && !/\.(int|e2e)-spec\.js$/.test(f))
  .filter((f) => !only || f.includes(only))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found under dist/ (did the build run?)');
  process.exit(1);
}
console.log(`run-tests: ${files.length} files`);
for (const f of files) console.log('  ' + relative(root, f));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=' + (process.env.CAPULATOR_TEST_TIMEOUT_MS ?? '600000'), ...files], {
  stdio: 'inherit',
  env: { ...process.env, CAPULATOR_REPO: root },
});
process.exit(r.status ?? 1);
