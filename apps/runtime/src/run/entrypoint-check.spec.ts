import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkEntrypoint, resolveContainerPath } from './entrypoint-check';
import { resolveInRootfs } from './rootfs-path';

/** A static aarch64 ELF header (enough for the check): e_machine 183, ELFCLASS64, LE, SysV. */
function aarch64Elf(): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; b[5] = 1; b[6] = 1; b[7] = 0;
  b.writeUInt16LE(2, 16); b.writeUInt16LE(183, 18); b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(64n, 32); b.writeUInt16LE(56, 54); b.writeUInt16LE(0, 56);
  return b;
}

describe('checkEntrypoint', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'capulator-elf-'));
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    copyFileSync(process.execPath, join(root, 'bin/dyn')); // node: dynamically linked, needs ld-linux
    writeFileSync(join(root, 'bin/arm'), aarch64Elf());
    chmodSync(join(root, 'bin/arm'), 0o755);
    writeFileSync(join(root, 'bin/script'), '#!/bin/nosh -e\necho hi\n');
    chmodSync(join(root, 'bin/script'), 0o755);
    writeFileSync(join(root, 'bin/data'), 'plain text');
    chmodSync(join(root, 'bin/data'), 0o755);
    symlinkSync('/../../../../etc', join(root, 'escape'));
    symlinkSync('../../bin/dyn', join(root, 'usr/bin/viapath'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('when the ELF is for another ISA', () => {
    it('names the image platform and the host', () => {
      assert.throws(() => checkEntrypoint(root, ['/bin/arm'], [], '/', 'arm64'), /^EntrypointError: image is linux\/arm64, this host is x86_64$|image is linux\/arm64, this host is x86_64/);
    });
  });
  describe('when the interpreter is missing from the image', () => {
    it('says which one', () => {
      assert.throws(() => checkEntrypoint(root, ['dyn'], ['PATH=/bin'], '/'), /\/bin\/dyn: interpreter \/lib64\/ld-linux-x86-64\.so\.2 is not in the image/);
    });
    it('finds the command through PATH and symlinks first', () => {
      assert.throws(() => checkEntrypoint(root, ['viapath'], ['PATH=/usr/bin'], '/'), /\/usr\/bin\/viapath: interpreter/);
    });
  });
  describe('when a #! script names a missing interpreter', () => {
    it('says so', () => {
      assert.throws(() => checkEntrypoint(root, ['/bin/script'], [], '/'), /\/bin\/script: interpreter \/bin\/nosh is not in the image/);
    });
  });
  describe('when the file is neither ELF nor script', () => {
    it('refuses it', () => {
      assert.throws(() => checkEntrypoint(root, ['/bin/data'], [], '/'), /not an ELF executable or #! script/);
    });
  });
  describe('when a symlink points above the rootfs', () => {
    it('stays inside the rootfs', () => {
      assert.equal(resolveInRootfs(root, '/escape/passwd'), undefined);
      assert.equal(resolveInRootfs(root, '/../../bin/arm'), join(root, 'bin/arm'));
    });
  });
  describe('when the command lives in a bind mount', () => {
    it('resolves it through the mount', () => {
      assert.equal(resolveContainerPath('/nonexistent', '/t/bin/arm', [{ source: root, destination: '/t' }]), join(root, 'bin/arm'));
    });
  });
});
