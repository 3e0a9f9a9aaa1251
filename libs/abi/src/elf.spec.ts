import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ElfError, readElf, type ElfErrorCode } from '@capulator/abi';
import { ET, buildElf, headerOffsets, u32s } from './testing/elf-builder';

const GNU_LINUX = (le = true) => ({ name: 'GNU', type: 1, desc: [...u32s(le, 0, 3, 2, 0)] });
const FREEBSD_TAG = (le = true) => ({ name: 'FreeBSD', type: 1, desc: [...u32s(le, 1400097)] });

function fails(bytes: Uint8Array, code: ElfErrorCode): ElfError {
  let caught: unknown;
  try {
    readElf(bytes);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ElfError, `expected an ElfError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(!caught.message.includes('\n') && caught.message.length > 5);
  return caught;
}

describe('readElf', () => {
  describe('when the image is well formed', () => {
    for (const cls of [32, 64] as const) {
      for (const le of [true, false]) {
        it(`reads a ${cls}-bit ${le ? 'little' : 'big'}-endian dynamic executable`, () => {
          const info = readElf(buildElf({ class: cls, le, machine: le ? 62 : 8, interp: '/lib/ld.so.1', notes: [GNU_LINUX(le)], dynamic: [[1, 1]] }));
          assert.equal(info.class, cls);
          assert.equal(info.data, le ? 'lsb' : 'msb');
          assert.equal(info.type, 'exec');
          assert.equal(info.machine, le ? 'x86_64' : 'mips');
          assert.equal(info.interpreter, '/lib/ld.so.1');
          assert.equal(info.static, false);
          assert.equal(info.brand, 'linux');
          assert.equal(info.brandSource, 'note:GNU');
          assert.deepEqual(info.gnuAbiTag, { os: 0, osName: 'linux', major: 3, minor: 2, patch: 0 });
          assert.equal(info.needed, 1);
        });
      }
    }

    it('reads a static executable', () => {
      const info = readElf(buildElf({ type: ET.EXEC, notes: [GNU_LINUX()] }));
      assert.equal(info.static, true);
      assert.equal(info.linkage, 'static');
      assert.equal(info.interpreter, null);
    });

    it('tells a static-pie (DF_1_PIE, no interpreter) from a shared library (DT_SONAME)', () => {
      const pie = readElf(buildElf({ type: ET.DYN, dynamic: [[0x6ffffffb, 0x08000000]] }));
      assert.equal(pie.linkage, 'static-pie');
      assert.equal(pie.static, true);
      assert.equal(pie.staticPie, true);
      const lib = readElf(buildElf({ type: ET.DYN, dynamic: [[14, 1], [1, 5]] }));
      assert.equal(lib.linkage, 'shared-library');
      assert.equal(lib.static, false);
    });

    it('brands by EI_OSABI when there is no ABI note', () => {
      assert.equal(readElf(buildElf({ osabi: 9 })).brand, 'freebsd');
      assert.equal(readElf(buildElf({ osabi: 3 })).brand, 'linux');
      assert.equal(readElf(buildElf({ osabi: 0 })).brand, 'sysv');
      assert.equal(readElf(buildElf({ osabi: 2 })).brand, 'netbsd');
    });

    it('brands by the FreeBSD ABI note, over EI_OSABI 0', () => {
      const info = readElf(buildElf({ osabi: 0, notes: [FREEBSD_TAG()] }));
      assert.equal(info.brand, 'freebsd');
      assert.equal(info.brandSource, 'note:FreeBSD');
      assert.equal(info.freebsdAbiTag, 1400097);
    });

    it('lets EI_OSABI FreeBSD win over a GNU note, and reads GNU notes for other OSes', () => {
      assert.equal(readElf(buildElf({ osabi: 9, notes: [GNU_LINUX()] })).brand, 'freebsd');
      assert.equal(readElf(buildElf({ notes: [{ name: 'GNU', type: 1, desc: [...u32s(true, 3, 10, 0, 0)] }] })).brand, 'kfreebsd');
    });

    it('reads 8-aligned note segments (like .note.gnu.property)', () => {
      const info = readElf(buildElf({ noteAlign: 8, notes: [{ name: 'GNU', type: 5, desc: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }, GNU_LINUX()] }));
      assert.deepEqual(info.notes.map((n) => [n.name, n.type, n.descsz]), [['GNU', 5, 12], ['GNU', 1, 16]]);
      assert.equal(info.brand, 'linux');
    });

    it('reports the NT_PRSTATUS size of a core file', () => {
      const pr = { name: 'CORE', type: 1, desc: new Array(336).fill(0) };
      const info = readElf(buildElf({ type: ET.CORE, notes: [pr, { name: 'CORE', type: 3, desc: new Array(136).fill(0) }, pr] }));
      assert.equal(info.type, 'core');
      assert.equal(info.prstatusSize, 336);
      assert.equal(info.prstatusCount, 2);
      assert.equal(info.static, false);
      assert.equal(info.linkage, 'none');
    });

    it('reads an image with no program headers (a relocatable object)', () => {
      const info = readElf(buildElf({ type: ET.REL }));
      assert.equal(info.type, 'rel');
      assert.deepEqual(info.programHeaders, []);
    });

    it('reads from a subarray at an odd offset', () => {
      const img = buildElf({ interp: '/x', notes: [GNU_LINUX()] });
      const big = new Uint8Array(img.length + 5);
      big.set(img, 5);
      assert.equal(readElf(big.subarray(5)).interpreter, '/x');
    });
  });

  describe('when the input is bad', () => {
    const good = buildElf({ interp: '/lib64/ld-linux-x86-64.so.2', notes: [GNU_LINUX()] });
    const set = (bytes: Uint8Array, at: number, size: 1 | 2 | 4 | 8, v: number | bigint) => {
      const b = bytes.slice();
      const dv = new DataView(b.buffer);
      if (size === 1) dv.setUint8(at, Number(v));
      else if (size === 2) dv.setUint16(at, Number(v), true);
      else if (size === 4) dv.setUint32(at, Number(v), true);
      else dv.setBigUint64(at, BigInt(v), true);
      return b;
    };
    const h = headerOffsets(true);

    it('refuses what is not ELF', () => {
      fails(new Uint8Array(0), 'not-elf');
      fails(new TextEncoder().encode('#!/bin/sh\necho hi\n'), 'not-elf');
      fails(set(good, 0, 1, 0x7e), 'not-elf');
    });

    it('refuses truncated images', () => {
      fails(good.subarray(0, 10), 'truncated');
      fails(good.subarray(0, 40), 'truncated');
      fails(good.subarray(0, 100), 'bad-program-headers');
      fails(good.subarray(0, good.length - 4), 'bad-note');
    });

    it('refuses bad class, data encoding and version', () => {
      fails(set(good, 4, 1, 3), 'bad-class');
      fails(set(good, 5, 1, 0), 'bad-data');
      fails(set(good, 6, 1, 2), 'bad-version');
      fails(set(good, 20, 4, 7), 'bad-version');
    });

    it('refuses lying offsets', () => {
      fails(set(good, h.phoff, 8, good.length + 100), 'bad-program-headers');
      fails(set(good, h.phoff, 8, 2n ** 63n), 'bad-program-headers');
      fails(set(good, h.shoff, 8, good.length * 4), 'bad-section-headers');
      // PT_INTERP's p_offset (first program header, at 64 + 8) past the end
      fails(set(good, 64 + 8, 8, good.length + 1), 'bad-interpreter');
      // PT_INTERP's size lying
      fails(set(good, 64 + 32, 8, 1 << 20), 'bad-interpreter');
    });

    it('refuses huge or inconsistent counts quickly', () => {
      const t0 = process.hrtime.bigint();
      fails(set(good, h.phnum, 2, 0xfffe), 'bad-program-headers');
      // PN_XNUM: the real count comes from section 0's sh_info — make it 2^31
      const sh0 = new Uint8Array(good.length + 64);
      sh0.set(good);
      const withSh = set(set(set(sh0, h.shoff, 8, good.length), h.shnum, 2, 1), h.phnum, 2, 0xffff);
      fails(set(withSh, good.length + 44, 4, 0x80000000), 'too-many');
      fails(set(withSh, good.length + 44, 4, 50000), 'bad-program-headers');
      fails(set(good, h.phnum, 2, 3000), 'bad-program-headers');
      fails(set(good, h.phentsize, 2, 8), 'bad-program-headers');
      fails(set(set(good, h.phnum, 2, 0xffff), h.shoff, 8, 0), 'bad-program-headers');
      assert.ok(process.hrtime.bigint() - t0 < 200_000_000n);
    });

    it('refuses an unterminated interpreter', () => {
      const img = buildElf({ interp: 'abc' });
      const at = img.indexOf(0x61);
      const b = img.slice();
      b[at + 3] = 0x41; // overwrite the NUL
      fails(b, 'bad-interpreter');
    });

    it('refuses notes that overrun their segment', () => {
      const img = buildElf({ notes: [GNU_LINUX()] });
      const noteAt = Number(new DataView(img.buffer).getBigUint64(64 + 8, true));
      fails(set(img, noteAt + 4, 4, 0xffffff00), 'bad-note'); // descsz
      fails(set(img, noteAt, 4, 0x10000), 'bad-note'); // namesz
    });

    it('never throws anything but ElfError on mutated or truncated images', () => {
      const samples = [
        good,
        buildElf({ class: 32, le: false, interp: '/lib/ld.so.1', notes: [GNU_LINUX(false)], dynamic: [[1, 1]] }),
        buildElf({ type: ET.CORE, notes: [{ name: 'CORE', type: 1, desc: new Array(40).fill(1) }] }),
      ];
      fc.assert(
        fc.property(
          fc.constantFrom(...samples),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
          fc.option(fc.nat()),
          (img, edits, cut) => {
            const b = img.slice(0, cut === null ? img.length : cut % (img.length + 1));
            for (const [at, v] of edits) if (b.length) b[at % b.length] = v;
            try {
              const info = readElf(b);
              assert.ok(info.class === 32 || info.class === 64);
            } catch (e) {
              assert.ok(e instanceof ElfError, String(e));
            }
          },
        ),
        { numRuns: 3000 },
      );
    });
  });
});
