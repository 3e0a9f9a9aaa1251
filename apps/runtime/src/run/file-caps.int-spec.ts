import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentBinary } from './agent-process';
import { applyKernelSets, expandExeGlob, kernelSetsTool } from './file-caps';

/** File capabilities and set-id clearing on a plain tree (root: writing security.capability needs CAP_SETFCAP). */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');

describe('applyKernelSets', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'capulator-filecaps-'));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    mkdirSync(join(root, 'usr/bin/pdir'));
    mkdirSync(join(root, 'bin'));
    for (const f of ['pa', 'pb', 'q', 'su']) writeFileSync(join(root, 'usr/bin', f), '#!/bin/sh\n', { mode: 0o755 });
    chmodSync(join(root, 'usr/bin/su'), 0o4755);
    chmodSync(join(root, 'usr/bin/q'), 0o2755);
    symlinkSync('../usr/bin/pa', join(root, 'bin/pa'));
    symlinkSync('/../../../etc/passwd', join(root, 'bin/escape')); // resolves inside the tree (missing): skipped
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('when an exe glob matches several files', () => {
    it('expands to each file and symlink it matches, never a directory', () => {
      assert.deepEqual(expandExeGlob(root, '/usr/bin/p*'), ['/usr/bin/pa', '/usr/bin/pb']);
      assert.deepEqual(expandExeGlob(root, '/bin/pa'), ['/bin/pa']);
      assert.deepEqual(expandExeGlob(root, '/nowhere/*'), []);
    });
  });

  describe('when a policy grants capabilities to programs with no_new_privs off', () => {
    it('gives each matching regular file (after symlinks) its capabilities once, warns about globs that match nothing, and clears set-id bits', () => {
      const r = applyKernelSets(
        root,
        {
          programs: [
            { ruleId: 'p', exe: ['/usr/bin/p*', '/bin/pa'], capabilities: ['CAP_NET_RAW'] },
            { ruleId: 'gone', exe: ['/bin/escape', '/opt/*'], capabilities: ['CAP_CHOWN'] },
          ],
          inheritable: ['CAP_KILL'],
          noNewPrivileges: false,
        },
        kernelSetsTool(agentBinary(repo)),
      );
      assert.deepEqual(r.fileCaps.map((f) => [f.path, f.capabilities]), [['/usr/bin/pa', ['CAP_NET_RAW']], ['/usr/bin/pb', ['CAP_NET_RAW']]]);
      assert.deepEqual(r.warnings.length, 2);
      assert.match(r.warnings[0], /^rule gone: exe \/bin\/escape matches no regular file/);
      assert.deepEqual(r.setidCleared.sort(), ['/usr/bin/q', '/usr/bin/su']);
      assert.equal(statSync(join(root, 'usr/bin/su')).mode & 0o7777, 0o755);
      assert.equal(statSync(join(root, 'usr/bin/q')).mode & 0o7777, 0o755);
    });
  });

  describe('when the xattr is written', () => {
    it('is VFS_CAP_REVISION_2 (+ effective) without a user namespace and revision 3 with its root uid', () => {
      const tool = kernelSetsTool(agentBinary(repo));
      const f = join(root, 'usr/bin/pb');
      // CAP_NET_RAW (13) permitted, CAP_KILL (5) inheritable, little-endian words
      assert.equal(spawnSync(tool, ['filecap', f, '2000', '20']).status, 0);
      assert.equal(spawnSync(tool, ['getcap', f], { encoding: 'utf8' }).stdout.trim(), '01000002' + '00200000' + '20000000' + '00000000' + '00000000');
      assert.equal(spawnSync(tool, ['filecap', f, '2000', '0', '100000']).status, 0);
      assert.equal(spawnSync(tool, ['getcap', f], { encoding: 'utf8' }).stdout.trim(), '01000003' + '00200000' + '00000000' + '00000000' + '00000000' + 'a0860100');
    });
  });

  describe('when the tool is handed a symlink or a directory', () => {
    it('refuses it (O_NOFOLLOW, regular files only) with exit 1, and bad masks with exit 2', () => {
      const tool = kernelSetsTool(agentBinary(repo));
      assert.equal(spawnSync(tool, ['filecap', join(root, 'bin/pa'), '2000', '0']).status, 1);
      assert.equal(spawnSync(tool, ['filecap', join(root, 'usr/bin/pdir'), '2000', '0']).status, 1);
      assert.equal(spawnSync(tool, ['filecap', join(root, 'usr/bin/pa'), 'zz', '0']).status, 2);
      assert.equal(spawnSync(tool, ['filecap', join(root, 'usr/bin/pa'), '2000', '0', '-1']).status, 2);
    });
  });
});
