import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { SYSCALLS } from '@capulator/abi';

/**
 * An independent oracle for the aarch64 table: the real C preprocessor, given the defines
 * arch/arm64/include/uapi/asm/unistd.h sets before including asm-generic/unistd.h.
 */
describe('aarch64 syscall table', () => {
  describe('when compared with gcc -E -dM over asm-generic/unistd.h', () => {
    it('has exactly the __NR_ macros the preprocessor defines', () => {
      const src = [
        '#define __ARCH_WANT_RENAMEAT',
        '#define __ARCH_WANT_NEW_STAT',
        '#define __ARCH_WANT_SET_GET_RLIMIT',
        '#define __ARCH_WANT_TIME32_SYSCALLS',
        '#define __ARCH_WANT_SYS_CLONE3',
        '#define __ARCH_WANT_MEMFD_SECRET',
        '#include <asm-generic/unistd.h>',
      ].join('\n');
      const r = spawnSync('gcc', ['-E', '-dM', '-x', 'c', '-'], { input: src, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const macros = new Map([...r.stdout.matchAll(/^#define (\w+) (.*)$/gm)].map((m) => [m[1], m[2].trim()]));
      const value = (v: string, depth = 0): number => {
        if (/^\d+$/.test(v)) return Number(v);
        assert.ok(depth < 5 && macros.has(v), `cannot resolve ${v}`);
        return value(macros.get(v)!, depth + 1);
      };
      const oracle = new Map<string, number>();
      for (const [k, v] of macros) {
        if (k.startsWith('__NR_') && k !== '__NR_syscalls' && k !== '__NR_arch_specific_syscall') oracle.set(k.slice(5), value(v));
      }
      assert.deepEqual(new Map(SYSCALLS.aarch64.map((s) => [s.name, s.number])), oracle);
    });
  });
});
