import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  CAPABILITIES,
  CAP_LAST_CAP,
  CapDataError,
  _LINUX_CAPABILITY_VERSION_1,
  _LINUX_CAPABILITY_VERSION_2,
  _LINUX_CAPABILITY_VERSION_3,
  capDataWords,
  capVersionWord,
  capabilityByName,
  capabilityByNumber,
  capsToMask,
  decodeCapData,
  encodeCapData,
  maskToCaps,
  unknownCapBits,
} from '@capulator/abi';
import { evalCDefine, parseCDefines } from './testing/c-defines';
import { repoRoot, tsvRows } from './testing/repo';

const HEADER = '/usr/include/linux/capability.h';

describe('capabilities', () => {
  describe('when compared with the kernel header parsed now', () => {
    const defs = parseCDefines(readFileSync(HEADER, 'utf8'));
    const headerCaps = [...defs.keys()].filter((k) => /^CAP_[A-Z_]+$/.test(k) && !['CAP_LAST_CAP'].includes(k) && evalCDefine(defs, k) !== undefined);

    it('has every capability of the header with the same number, and no other', () => {
      const fromHeader = new Map(headerCaps.map((k) => [k, evalCDefine(defs, k)]));
      assert.deepEqual(new Map(CAPABILITIES.map((c) => [c.name, c.number])), fromHeader);
    });

    it('ends at CAP_LAST_CAP', () => {
      assert.equal(evalCDefine(defs, 'CAP_LAST_CAP'), CAP_LAST_CAP);
      assert.equal(CAPABILITIES.length, CAP_LAST_CAP + 1);
      assert.equal(CAPABILITIES[CAPABILITIES.length - 1].name, 'CAP_CHECKPOINT_RESTORE');
    });

    it('has the header versions', () => {
      assert.equal(evalCDefine(defs, '_LINUX_CAPABILITY_VERSION_1'), _LINUX_CAPABILITY_VERSION_1);
      assert.equal(evalCDefine(defs, '_LINUX_CAPABILITY_VERSION_2'), _LINUX_CAPABILITY_VERSION_2);
      assert.equal(evalCDefine(defs, '_LINUX_CAPABILITY_VERSION_3'), _LINUX_CAPABILITY_VERSION_3);
      assert.equal(evalCDefine(defs, '_LINUX_CAPABILITY_U32S_1'), capDataWords(1));
      assert.equal(evalCDefine(defs, '_LINUX_CAPABILITY_U32S_2'), capDataWords(2));
      assert.equal(evalCDefine(defs, '_LINUX_CAPABILITY_U32S_3'), capDataWords(3));
    });
  });

  describe('when compared with the reference table', () => {
    it('has the names, numbers and summaries of libs/abi/reference/linux-caps.tsv', () => {
      const rows = tsvRows(readFileSync(join(repoRoot(__dirname), 'libs/abi/reference/linux-caps.tsv'), 'utf8'));
      assert.equal(rows.length, 41);
      for (const [name, number, , summary] of rows) {
        const c = capabilityByName(name);
        assert.ok(c, name);
        assert.equal(c.number, Number(number));
        assert.equal(c.summary, summary);
      }
    });

    it('has a one-line summary for every capability', () => {
      for (const c of CAPABILITIES) assert.ok(c.summary.length > 10 && !c.summary.includes('\n'), c.name);
    });
  });

  describe('lookups', () => {
    it('finds by name (any case, with or without CAP_) and by number', () => {
      assert.equal(capabilityByName('CAP_NET_RAW')?.number, 13);
      assert.equal(capabilityByName('net_raw')?.number, 13);
      assert.equal(capabilityByNumber(40)?.name, 'CAP_CHECKPOINT_RESTORE');
      assert.equal(capabilityByNumber(41), undefined);
      assert.equal(capabilityByName('CAP_NOPE'), undefined);
    });

    it('maps 1|2|3 to header version words and finds bits no capability names', () => {
      assert.equal(capVersionWord(1), 0x19980330);
      assert.equal(capVersionWord(3), 0x20080522);
      assert.equal(capVersionWord(0x20071026), 0x20071026);
      assert.throws(() => capVersionWord(4), CapDataError);
      assert.equal(unknownCapBits((1n << 41n) | (1n << 40n) | 1n), 1n << 41n);
      assert.equal(unknownCapBits(capsToMask(CAPABILITIES.map((c) => c.name))), 0n);
    });

    it('turns names into masks and back', () => {
      assert.equal(capsToMask(['CAP_CHOWN', 'CAP_NET_RAW']), (1n << 0n) | (1n << 13n));
      assert.deepEqual(maskToCaps((1n << 40n) | (1n << 7n)), ['CAP_SETUID', 'CAP_CHECKPOINT_RESTORE']);
      assert.throws(() => capsToMask(['CAP_NOPE']), CapDataError);
    });
  });

  describe('cap_user_data_t encoding', () => {
    it('lays out v1 as one {effective, permitted, inheritable} struct of little-endian u32s', () => {
      const b = encodeCapData(_LINUX_CAPABILITY_VERSION_1, { effective: 0x01020304n, permitted: 0xffffffffn, inheritable: 0n });
      assert.deepEqual([...b], [4, 3, 2, 1, 255, 255, 255, 255, 0, 0, 0, 0]);
    });

    it('lays out v3 as two structs: low words first, then high words', () => {
      const all = (1n << 41n) - 1n;
      const b = encodeCapData(3, { effective: all, permitted: 1n << 32n, inheritable: 1n });
      assert.equal(b.length, 24);
      const dv = new DataView(b.buffer);
      assert.deepEqual([0, 4, 8, 12, 16, 20].map((o) => dv.getUint32(o, true)), [0xffffffff, 0, 1, 0x1ff, 1, 0]);
    });

    it('refuses bits v1 cannot carry, negative sets and unknown versions', () => {
      assert.throws(() => encodeCapData(1, { effective: 1n << 32n, permitted: 0n, inheritable: 0n }), CapDataError);
      assert.throws(() => encodeCapData(3, { effective: -1n, permitted: 0n, inheritable: 0n }), CapDataError);
      assert.throws(() => encodeCapData(0x12345678, { effective: 0n, permitted: 0n, inheritable: 0n }), CapDataError);
      assert.throws(() => decodeCapData(3, new Uint8Array(12)), CapDataError);
    });

    for (const [label, version, bits] of [
      ['v1', _LINUX_CAPABILITY_VERSION_1, 32],
      ['v2', _LINUX_CAPABILITY_VERSION_2, 64],
      ['v3', _LINUX_CAPABILITY_VERSION_3, 64],
    ] as const) {
      it(`round-trips any ${bits}-bit sets through ${label}, in both byte orders`, () => {
        const set = fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
        fc.assert(
          fc.property(set, set, set, fc.boolean(), (effective, permitted, inheritable, le) => {
            const sets = { effective, permitted, inheritable };
            const bytes = encodeCapData(version, sets, le);
            assert.equal(bytes.length, (bits / 32) * 12);
            assert.deepEqual(decodeCapData(version, bytes, le), sets);
          }),
        );
      });
    }

    it('decodes from a subarray at an odd offset', () => {
      const inner = encodeCapData(3, { effective: 5n, permitted: 1n << 40n, inheritable: 0n });
      const outer = new Uint8Array(inner.length + 3);
      outer.set(inner, 3);
      assert.deepEqual(decodeCapData(3, outer.subarray(3)), { effective: 5n, permitted: 1n << 40n, inheritable: 0n });
    });
  });
});
