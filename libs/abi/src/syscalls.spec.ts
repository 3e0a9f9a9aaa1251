import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { SYSCALLS, syscallName, syscallNumber } from '@capulator/abi';
import { repoRoot } from './testing/repo';

const root = repoRoot(__dirname);
const generator = join(root, 'scripts/gen-syscalls.mjs');

function gen(...args: string[]): string {
  const r = spawnSync(process.execPath, [generator, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('syscall tables', () => {
  describe('when regenerated from the installed headers', () => {
    it('match the checked-in syscalls.generated.ts byte for byte (no drift)', () => {
      const checkedIn = readFileSync(join(root, 'libs/abi/src/syscalls.generated.ts'), 'utf8');
      assert.equal(gen('--stdout'), checkedIn, 'run `npm run gen:syscalls` and commit the result');
    });
  });

  describe('x86_64', () => {
    it('has every __NR_ of asm/unistd_64.h, with its number, and nothing else', () => {
      const text = readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8');
      const fromHeader = new Map([...text.matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)].map((m) => [m[1], Number(m[2])]));
      assert.ok(fromHeader.size > 300);
      assert.deepEqual(new Map(SYSCALLS.x86_64.map((s) => [s.name, s.number])), fromHeader);
    });

    it('knows the well-known numbers', () => {
      assert.equal(syscallNumber('x86_64', 'read'), 0);
      assert.equal(syscallNumber('x86_64', 'socket'), 41);
      assert.equal(syscallNumber('x86_64', 'capset'), 126);
      assert.equal(syscallName('x86_64', 257), 'openat');
      assert.equal(syscallNumber('x86_64', 'nope'), undefined);
    });
  });

  describe('aarch64 (asm-generic/unistd.h as arm64 includes it)', () => {
    const text = readFileSync('/usr/include/asm-generic/unistd.h', 'utf8');

    it('agrees with every unconditional plain #define __NR_ in the header', () => {
      // Lines outside any #if block with a literal number: these must all be present, unchanged.
      let depth = 0;
      const plain = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (/^#\s*if/.test(line)) depth++;
        else if (/^#\s*endif/.test(line)) depth--;
        else if (depth === 0) {
          // the header has no include guard: depth 0 is outside every conditional
          const m = /^#define __NR_(\w+)\s+(\d+)\s*$/.exec(line);
          if (m && m[1] !== 'syscalls' && m[1] !== 'arch_specific_syscall') plain.set(m[1], Number(m[2]));
        }
      }
      assert.ok(plain.size > 200, `found ${plain.size}`);
      for (const [name, nr] of plain) assert.equal(syscallNumber('aarch64', name), nr, name);
    });

    it('resolves the __NR3264_ indirections to their 64-bit names', () => {
      for (const [name, nr] of [['fcntl', 25], ['statfs', 43], ['fstatfs', 44], ['truncate', 45], ['ftruncate', 46], ['lseek', 62], ['sendfile', 71], ['newfstatat', 79], ['fstat', 80], ['mmap', 222], ['fadvise64', 223]] as const) {
        assert.equal(syscallNumber('aarch64', name), nr, name);
      }
      for (const name of ['fcntl64', 'statfs64', 'llseek', 'mmap2', 'fstatat64', 'stat', 'lstat', 'stat64']) assert.equal(syscallNumber('aarch64', name), undefined, name);
    });

    it('takes the branches arm64 takes', () => {
      assert.equal(syscallNumber('aarch64', 'renameat'), 38); // __ARCH_WANT_RENAMEAT
      assert.equal(syscallNumber('aarch64', 'getrlimit'), 163); // __ARCH_WANT_SET_GET_RLIMIT
      assert.equal(syscallNumber('aarch64', 'clone3'), 435); // __ARCH_WANT_SYS_CLONE3
      assert.equal(syscallNumber('aarch64', 'memfd_secret'), 447); // __ARCH_WANT_MEMFD_SECRET
      assert.equal(syscallNumber('aarch64', 'sync_file_range'), 84); // not _SYNC_FILE_RANGE2
      assert.equal(syscallNumber('aarch64', 'sync_file_range2'), undefined);
      assert.equal(syscallNumber('aarch64', 'io_getevents'), 4); // time32 syscalls kept on 64-bit
      assert.equal(syscallNumber('aarch64', 'arch_specific_syscall'), undefined);
      assert.equal(syscallNumber('aarch64', 'open'), undefined);
      assert.equal(syscallNumber('aarch64', 'socket'), 198);
      assert.equal(syscallName('aarch64', 56), 'openat');
    });

    it('has unique names and numbers', () => {
      for (const arch of ['x86_64', 'aarch64'] as const) {
        assert.equal(new Set(SYSCALLS[arch].map((s) => s.name)).size, SYSCALLS[arch].length);
        assert.equal(new Set(SYSCALLS[arch].map((s) => s.number)).size, SYSCALLS[arch].length);
      }
    });
  });

  describe('the generator', () => {
    it('evaluates conditionals, #else, #undef and indirections in a synthetic header', () => {
      const dir = mkdtempSync(join(tmpdir(), 'gen-syscalls-'));
      try {
        mkdirSync(join(dir, 'x86_64-linux-gnu/asm'), { recursive: true });
        mkdirSync(join(dir, 'asm-generic'));
        writeFileSync(join(dir, 'x86_64-linux-gnu/asm/unistd_64.h'), '#ifndef G\n#define G\n#define __NR_read 0\n#define __NR_write 1\n#endif\n');
        writeFileSync(
          join(dir, 'asm-generic/unistd.h'),
          [
            '#define __NR_a 1',
            '#ifdef __ARCH_WANT_RENAMEAT',
            '#define __NR_b 2',
            '#endif',
            '#ifdef __ARCH_WANT_SYNC_FILE_RANGE2',
            '#define __NR_c2 3',
            '#else',
            '#define __NR_c 3',
            '#endif',
            '#if defined(__ARCH_WANT_TIME32_SYSCALLS) || __BITS_PER_LONG != 32',
            '#define __NR_d 4',
            '#endif',
            '#if __BITS_PER_LONG == 32 || defined(__SYSCALL_COMPAT)',
            '#define __NR_e 5',
            '#elif 1',
            '#define __NR_f 6',
            '#endif',
            '#define __NR3264_g 7',
            '#if __BITS_PER_LONG == 64 && !defined(__SYSCALL_COMPAT)',
            '#define __NR_g __NR3264_g',
            '#else',
            '#define __NR_g64 __NR3264_g',
            '#endif',
            '#define __NR_h 8',
            '#undef __NR_h',
            '#define __NR_syscalls 9',
            '#define __SYSCALL(x, y)',
          ].join('\n'),
        );
        const t = JSON.parse(gen('--json', '--include', dir)) as Record<string, Record<string, number>>;
        assert.deepEqual(t.x86_64, { read: 0, write: 1 });
        assert.deepEqual(t.aarch64, { a: 1, b: 2, c: 3, d: 4, f: 6, g: 7 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
