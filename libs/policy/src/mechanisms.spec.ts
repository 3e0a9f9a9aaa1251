import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilityDecision, compile, load, seccompNeed } from './index';

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../..');
const policy = (body: string) => {
  const l = load(`apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: t }\n${body}`, 't.yaml');
  assert.deepEqual(l.errors.filter((e) => e.severity === 'error'), []);
  return compile(l.policy!);
};
const QUIET = `
  - { id: quiet-capget, when: { syscall: capget }, action: allow, audit: none }
  - { id: quiet-capset, when: { syscall: capset }, action: allow, audit: none }`;

describe('seccompNeed', () => {
  it('needs no filter when nothing refines arguments, emulates or records capget/capset', () => {
    assert.deepEqual(seccompNeed(policy(`defaults: { action: allow, audit: all }\nrules:${QUIET}\n`)), { needed: false, reasons: [] });
    const deny = policy(`defaults: { action: deny, audit: all }\nrules:${QUIET}\n  - { id: chown, capabilities: [CAP_CHOWN], action: allow }\n`);
    assert.equal(seccompNeed(deny).needed, false);
  });
  it('needs the filter, and says why, for each thing only the agent can do', () => {
    const why = (body: string) => seccompNeed(policy(body)).reasons.join('; ');
    assert.match(why('defaults: { action: allow, audit: all }\nrules: []\n'), /capget is recorded/);
    assert.match(why(`defaults: { action: deny, audit: all }\nrules:${QUIET}\n  - { id: web, privileges: [PRIV_NETINET_RESERVEDPORT], when: { syscall: bind, port: "80" }, action: allow }\n`), /rule web has argument conditions/);
    assert.match(why(`defaults: { action: deny, audit: all }\nrules:${QUIET}\n  - { id: e, when: { syscall: setsockopt, level: SOL_IP, option: IP_RECVERR }, action: emulate, return: 0 }\n`), /rule e emulates/);
    assert.match(why(`defaults: { action: allow, audit: all }\nrules:${QUIET}\n  - { id: p, match: { exe: [/bin/ping] }, privileges: [PRIV_NETINET_RAW], action: deny }\n`), /rule p denies for some programs only/);
    assert.match(why(`defaults: { action: deny, audit: all }\nrules:${QUIET}\n  - { id: u, match: { uid: "1000" }, privileges: [PRIV_NETINET_RAW], action: allow }\n`), /rule u applies to some users only/);
    // an allow for some programs is a file capability: the kernel enforces it
    assert.equal(seccompNeed(policy(`defaults: { action: deny, audit: all }\nrules:${QUIET}\n  - { id: p, match: { exe: [/bin/ping] }, privileges: [PRIV_NETINET_RAW], action: allow }\n`)).needed, false);
    assert.match(why(`defaults: { action: deny, audit: all, errno: EACCES }\nrules:${QUIET}\n`), /errno 13/);
  });
  it('keeps the filter for every shipped example (each records capget/capset or refines arguments)', () => {
    for (const f of ['default', 'ping', 'web', 'build', 'deny-all']) {
      const l = load(readFileSync(join(repo, 'examples/policies', `${f}.yaml`), 'utf8'), `${f}.yaml`);
      assert.equal(seccompNeed(compile(l.policy!)).needed, true, f);
    }
  });
});

describe('capabilityDecision', () => {
  const t = policy(`defaults: { action: deny, audit: all }\nrules:
  - { id: read-only, privileges: [PRIV_VFS_READ], action: allow }
  - { id: ip, match: { exe: [/usr/sbin/ip] }, capabilities: [CAP_NET_ADMIN], action: allow }
  - { id: no-admin, capabilities: [CAP_NET_ADMIN], action: deny }\n`);
  it('allows a capability when the policy allows any of its privileges for that program and user', () => {
    const d = capabilityDecision(t, 'CAP_DAC_OVERRIDE', { exe: '/bin/cat', uid: 0, gid: 0 });
    assert.equal(d.decision, 'allow');
    assert.equal(d.ruleId, 'read-only');
    assert.ok(d.privileges.includes('PRIV_VFS_WRITE'));
  });
  it('denies it when every privilege is denied, naming the first rule that denied', () => {
    assert.deepEqual(
      { ...capabilityDecision(t, 'CAP_NET_ADMIN', { exe: '/bin/busybox', uid: 0, gid: 0 }), privileges: [] },
      { decision: 'deny', ruleId: 'no-admin', privileges: [], audit: true },
    );
    assert.equal(capabilityDecision(t, 'CAP_NET_ADMIN', { exe: '/usr/sbin/ip', uid: 0, gid: 0 }).ruleId, 'ip');
    assert.equal(capabilityDecision(t, 'CAP_SYS_TIME', { exe: '/bin/date', uid: 0, gid: 0 }).ruleId, null);
  });
});
