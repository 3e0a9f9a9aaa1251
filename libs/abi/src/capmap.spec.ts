import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CAPABILITIES, CAP_PRIV_MAP, capabilitiesOfPrivilege, privilegeByName, privilegesOfCapability } from '@capulator/abi';

describe('capability → privilege map', () => {
  it('has one row per capability, in capability order (41 rows)', () => {
    assert.equal(CAP_PRIV_MAP.length, 41);
    assert.deepEqual(CAP_PRIV_MAP.map((r) => r.capability), CAPABILITIES.map((c) => c.name));
  });

  it('names only privileges that exist in the catalogue, each once per row', () => {
    for (const r of CAP_PRIV_MAP) {
      assert.equal(new Set(r.privileges).size, r.privileges.length, r.capability);
      for (const p of r.privileges) assert.ok(privilegeByName(p)?.name === p, `${r.capability}: ${p} is not in the catalogue`);
    }
  });

  it('maps every capability to at least one privilege, and marks those with no FreeBSD counterpart', () => {
    for (const r of CAP_PRIV_MAP) {
      assert.ok(r.privileges.length > 0, r.capability);
      assert.ok(r.note.length > 0, r.capability);
      const freebsd = r.privileges.filter((p) => !privilegeByName(p)!.pseudo);
      if (r.confidence === 'none') assert.equal(freebsd.length, 0, `${r.capability} is 'none' but names FreeBSD privileges`);
      else assert.ok(freebsd.length > 0, `${r.capability} is '${r.confidence}' but names only pseudo-privileges`);
    }
  });

  it('agrees with its reverse map', () => {
    for (const r of CAP_PRIV_MAP) {
      assert.deepEqual(privilegesOfCapability(r.capability), r.privileges);
      for (const p of r.privileges) assert.ok(capabilitiesOfPrivilege(p).includes(r.capability));
    }
    assert.deepEqual(privilegesOfCapability('CAP_NOPE'), []);
    assert.deepEqual(capabilitiesOfPrivilege('PRIV_NOPE'), []);
  });

  it('carries the corrections made to the proposal', () => {
    assert.deepEqual(capabilitiesOfPrivilege('PRIV_NET_RAW'), ['CAP_NET_RAW']);
    assert.deepEqual(capabilitiesOfPrivilege('PRIV_NETINET_RAW'), ['CAP_NET_RAW']);
    assert.deepEqual(capabilitiesOfPrivilege('PRIV_NETINET_BINDANY'), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    assert.deepEqual(privilegesOfCapability('CAP_SETPCAP'), ['PRIV_LINUX_SETPCAP']);
    assert.ok(!privilegesOfCapability('CAP_SYS_RESOURCE').includes('PRIV_PROC_SETRLIMIT_UID'));
  });
});
