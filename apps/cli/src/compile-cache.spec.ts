import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const CACHE = join(__dirname, 'compile-cache.js');

/** A fresh Node process that installs the cache for `root`, requires root/m.js and prints what happened. */
function load(root: string, dir: string): { value: string; stats: { hits: number; misses: number } | null } {
  const script = `
    const stats = require(${JSON.stringify(CACHE)}).installCompileCache(${JSON.stringify(root)}, ${JSON.stringify(dir)});
    const value = require(${JSON.stringify(join(root, 'm.js'))}).value();
    process.on('exit', () => process.stdout.write(JSON.stringify({ value, stats: stats ?? null })));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { value: string; stats: { hits: number; misses: number } | null };
}

describe('compile cache', () => {
  it('compiles a module from the code an earlier process cached, and anew once its source changed', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'capulator-cc-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const dir = join(root, 'cache');
    writeFileSync(join(root, 'm.js'), `const path = require('node:path'); exports.value = () => 'one:' + path.basename(__filename) + ':' + typeof require.resolve;`);
    assert.deepEqual(load(root, dir), { value: 'one:m.js:function', stats: { hits: 0, misses: 1 } });
    assert.deepEqual(load(root, dir), { value: 'one:m.js:function', stats: { hits: 1, misses: 0 } });
    // same length, other text: never the old code
    writeFileSync(join(root, 'm.js'), `const path = require('node:path'); exports.value = () => 'two:' + path.basename(__filename) + ':' + typeof require.resolve;`);
    assert.deepEqual(load(root, dir), { value: 'two:m.js:function', stats: { hits: 0, misses: 1 } });
    assert.deepEqual(load(root, dir), { value: 'two:m.js:function', stats: { hits: 1, misses: 0 } });
  });

  it('leaves ES modules reached by require() to Node (no cache, no CommonJS wrapper)', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'capulator-cc-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'e.mjs'), `import { basename } from 'node:path'; export const name = basename('/a/esm');`);
    writeFileSync(join(root, 'm.js'), `exports.value = () => { try { return require('./e.mjs').name; } catch (e) { return 'no require(esm) here: ' + e.code; } };`);
    const dir = join(root, 'cache');
    const first = load(root, dir);
    assert.match(first.value, /^(esm|no require\(esm\) here: ERR_REQUIRE_ESM)$/);
    assert.deepEqual(first.stats, { hits: 0, misses: 1 });
    assert.deepEqual(load(root, dir), { value: first.value, stats: { hits: 1, misses: 0 } });
  });

  it('is not used from a directory others may write, and a torn file only means compiling again', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'capulator-cc-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, 'm.js'), `exports.value = () => 'v';`);
    const dir = join(root, 'cache');
    load(root, dir);
    chmodSync(dir, 0o777);
    assert.deepEqual(load(root, dir), { value: 'v', stats: null });
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, 'modules.bin'), 'capulator-compile-cache 1 garbage\n[["x"', { mode: 0o600 });
    assert.deepEqual(load(root, dir), { value: 'v', stats: { hits: 0, misses: 1 } });
    assert.deepEqual(load(root, dir), { value: 'v', stats: { hits: 1, misses: 0 } });
  });
});
