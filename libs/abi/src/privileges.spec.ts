import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FREEBSD_PRIVILEGES, PRIVILEGES, PSEUDO_PRIV_BASE, privilegeByName, privilegeByNumber } from '@capulator/abi';
import { repoRoot, tsvRows } from './testing/repo';

describe('privileges', () => {
  const rows = tsvRows(readFileSync(join(repoRoot(__dirname), 'libs/abi/reference/priv.tsv'), 'utf8'));

  describe('when compared with priv.tsv (sys/sys/priv.h)', () => {
    it('has exactly the active privileges, with their numbers, in header order', () => {
      const active = rows.filter((r) => r[4] === 'active').map((r) => [r[0], Number(r[1])]);
      assert.equal(active.length, 231);
      assert.deepEqual(FREEBSD_PRIVILEGES.map((p) => [p.name, p.number]), active);
    });

    it('keeps aliases, removed, reserved, module, marker and fork-only rows out', () => {
      for (const r of rows.filter((x) => x[4] !== 'active')) {
        const p = privilegeByName(r[0]);
        if (r[4] === 'alias') assert.notEqual(p?.name, r[0], `${r[0]} resolves to its canonical entry`);
        else assert.equal(p, undefined, `${r[0]} (${r[4]})`);
      }
      assert.equal(privilegeByName('PRIV_NET_SETVLANPCP')?.name, 'PRIV_NET_SETLANPCP');
    });

    it('keeps the priv.h comment and gives every privilege a short section', () => {
      const byName = new Map(rows.map((r) => [r[0], r]));
      for (const p of FREEBSD_PRIVILEGES) {
        assert.equal(p.comment, byName.get(p.name)![3]);
        assert.match(p.section, /^[a-z0-9]+$/);
      }
      assert.equal(privilegeByName('PRIV_CRED_SETUID')?.section, 'cred');
      assert.equal(privilegeByName('PRIV_NETINET_RAW')?.section, 'netinet');
      assert.equal(privilegeByName('PRIV_VFS_CHOWN')?.section, 'vfs');
    });

    it('has unique names and numbers', () => {
      assert.equal(new Set(PRIVILEGES.map((p) => p.name)).size, PRIVILEGES.length);
      assert.equal(new Set(PRIVILEGES.map((p) => p.number)).size, PRIVILEGES.length);
      assert.equal(privilegeByNumber(3)?.name, 'PRIV_MAXFILES');
    });
  });

  describe('pseudo-privileges', () => {
    it('live in section linux, numbered from 100000, named PRIV_LINUX_*', () => {
      const pseudo = PRIVILEGES.filter((p) => p.pseudo);
      assert.ok(pseudo.length > 0);
      for (const p of pseudo) {
        assert.equal(p.section, 'linux');
        assert.ok(p.number >= PSEUDO_PRIV_BASE, p.name);
        assert.match(p.name, /^PRIV_LINUX_/);
      }
      for (const p of FREEBSD_PRIVILEGES) assert.ok(p.number < PSEUDO_PRIV_BASE && p.section !== 'linux' && !p.name.startsWith('PRIV_LINUX_'));
    });
  });

  describe('trappability', () => {
    it('marks the examples of the issue', () => {
      assert.equal(privilegeByName('PRIV_NETINET_RAW')?.trappable, true);
      assert.equal(privilegeByName('PRIV_NET_ROUTE')?.trappable, false);
      assert.equal(privilegeByName('PRIV_VFS_READ')?.trappable, false);
      assert.equal(privilegeByName('PRIV_VFS_WRITE')?.trappable, false);
      assert.equal(privilegeByName('PRIV_VFS_MKNOD_DEV')?.trappable, true);
    });

    it('gives every untrappable privilege a note, and no trappable one', () => {
      for (const p of PRIVILEGES) {
        if (p.trappable) assert.equal(p.untrappedNote, undefined, p.name);
        else assert.ok(p.untrappedNote && p.untrappedNote.length > 10, p.name);
      }
    });
  });
});
