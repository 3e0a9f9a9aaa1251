import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';

/** Includes are read bounded: regular files only, at most 1 MiB, and never echoed when they are not policies. */
const ROOT = repoRoot();
function lint(file: string): { code: number | null; out: string; err: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'capulator'), 'policy', 'lint', file], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - t0 };
}
const including = (path: string) => `apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: inc}\ninclude: [${JSON.stringify(path)}]\nrules: []\n`;

describe('policy lint (includes)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hostile-inc-'));
    spawnSync('mkfifo', [join(dir, 'fifo')]);
    mkdirSync(join(dir, 'subdir'));
    writeFileSync(join(dir, 'secret'), 'root:$6$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n');
    writeFileSync(join(dir, 'big.yaml'), 'apiVersion: capulator/v1\n#' + 'x'.repeat(2 * 1024 * 1024) + '\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [what, target, want] of [
    ['a character device', '/dev/zero', /character device, not a regular file \[INCLUDE_UNREADABLE\]/],
    ['a FIFO', 'fifo', /FIFO, not a regular file \[INCLUDE_UNREADABLE\]/],
    ['a directory', 'subdir', /directory, not a regular file \[INCLUDE_UNREADABLE\]/],
    ['a file over 1 MiB', 'big.yaml', /at most 1048576 \(1 MiB\) \[INCLUDE_UNREADABLE\]/],
  ] as const) {
    describe(`when the include is ${what}`, () => {
      it('refuses it at the include, promptly', () => {
        const f = join(dir, `inc-${what.replace(/\W/g, '')}.yaml`);
        writeFileSync(f, including(target));
        const r = lint(f);
        assert.equal(r.code, 1, r.err);
        assert.match(r.out + r.err, new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:\\d+: error: cannot include`));
        assert.match(r.out + r.err, want);
        assert.ok(r.ms < 10_000, `${r.ms} ms`);
      });
    });
  }

  describe('when the include is a file that is not a policy', () => {
    it('says so without quoting a byte of it', () => {
      const f = join(dir, 'inc-secret.yaml');
      writeFileSync(f, including('secret'));
      const r = lint(f);
      assert.equal(r.code, 1);
      assert.match(r.out + r.err, /not a capulator policy .*\[INCLUDE_NOT_A_POLICY\]/);
      assert.doesNotMatch(r.out + r.err, /SECRETHASH|daemon|root:/);
    });
  });
});
