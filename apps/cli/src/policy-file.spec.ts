import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadPolicyFileTextCached, readPolicyFile } from './policy-file';

const policy = (extra: string) => `apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: cached}\ninclude: [extra.yaml]\nrules:\n  - {id: main, when: {syscall: chown}, action: allow}\n${extra}`;
const fragment = (id: string) => `apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: extra}\nrules:\n  - {id: ${id}, when: {syscall: kill}, action: allow}\n`;

describe('loadPolicyFileTextCached', () => {
  it('reuses a load while the file and its includes hold the same text, and loads again when either changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-cache-'));
    try {
      const main = join(dir, 'main.yaml');
      writeFileSync(main, policy(''));
      writeFileSync(join(dir, 'extra.yaml'), fragment('from-include'));
      const ids = (r: ReturnType<typeof loadPolicyFileTextCached>) => r.policy!.rules.map((x) => x.id);
      const first = loadPolicyFileTextCached(main, readPolicyFile(main));
      assert.deepEqual(first.errors, []);
      assert.deepEqual(ids(first), ['from-include', 'main']);
      assert.equal(loadPolicyFileTextCached(main, readPolicyFile(main)), first, 'the same texts: the same load');
      writeFileSync(join(dir, 'extra.yaml'), fragment('changed-include'));
      const second = loadPolicyFileTextCached(main, readPolicyFile(main));
      assert.deepEqual(ids(second), ['changed-include', 'main']);
      writeFileSync(main, policy('  - {id: added, when: {syscall: chmod}, action: allow}\n'));
      assert.deepEqual(ids(loadPolicyFileTextCached(main, readPolicyFile(main))), ['changed-include', 'main', 'added']);
      rmSync(join(dir, 'extra.yaml'));
      assert.ok(loadPolicyFileTextCached(main, readPolicyFile(main)).errors.some((e) => e.code === 'INCLUDE_NOT_FOUND'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
