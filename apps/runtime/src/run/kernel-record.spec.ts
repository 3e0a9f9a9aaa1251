import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DecisionPayload } from '@capulator/events';
import { compile, load } from '@capulator/policy';
import { AgentDecision } from './agent-process';
import { decidedSyscalls, KernelChecks, type KernelCheckLine } from './kernel-record';
import { buildSeccompProfile } from './seccomp-profile';

const compiled = (text: string) => compile(load(text, 't.yaml').policy!);
const DENY_ALL = compiled('apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: d }\ndefaults: { action: deny, audit: all }\nrules: []\n');
const table = (() => {
  const l = load(`apiVersion: capulator/v1\nkind: Policy\nmetadata: { name: t }\ndefaults: { action: allow, audit: all }\nrules:
  - { id: no-admin, capabilities: [CAP_NET_ADMIN], action: deny }
  - { id: no-setuid, privileges: [PRIV_CRED_SETUID], when: { syscall: setuid, uid: "0" }, action: deny }\n`, 't.yaml');
  return compile(l.policy!);
})();
const policyRef = { name: 't', version: 1, hash: table.hash };

function setup(profile = buildSeccompProfile('/x.sock'), t = table) {
  const out: DecisionPayload[] = [];
  const violations: DecisionPayload[] = [];
  const k = new KernelChecks({
    runId: 'r', policy: policyRef, tableText: t.text, arch: 'x86_64', decided: decidedSyscalls(profile),
    emit: (d) => out.push(d.payload), onViolation: (p) => violations.push(p),
  });
  return { k, out, violations };
}
const check = (o: Partial<KernelCheckLine>): KernelCheckLine => ({
  kseq: 1, at: '2026-12-04T10:00:00.010Z', pid: 10, tid: 10, uid: 0, gid: 0, exe: '/bin/busybox', nr: 46, cap: 12, result: 'granted', count: 1, ...o,
});
const agent = (o: Partial<DecisionPayload>) =>
  new AgentDecision('PrivilegeChecked', o.at ?? '2026-12-04T10:00:00.000Z', JSON.stringify({ runId: 'r', seq: 1, subject: { pid: 10, tid: 10, uid: 0, gid: 0, exe: '/bin/busybox' }, nr: 105, at: '2026-12-04T10:00:00.000Z', ...o }), 'allow');

describe('KernelChecks', () => {
  it('maps a kernel check to a PrivilegeChecked of source kernel: privileges, syscall, the policy\'s decision, the kernel\'s result', () => {
    const { k, out, violations } = setup();
    k.check(check({ cap: 1, nr: 257, kseq: 3, count: 2 })); // CAP_DAC_OVERRIDE in openat
    assert.equal(out.length, 1);
    const p = out[0];
    assert.equal(p.source, 'kernel');
    assert.equal(p.syscall, 'openat');
    assert.equal(p.capability, 'CAP_DAC_OVERRIDE');
    assert.ok(p.privileges.includes('PRIV_VFS_READ'));
    assert.equal(p.decision, 'allow');
    assert.equal(p.answeredBy, 'granted');
    assert.deepEqual(p.kernel, { result: 'granted', count: 2, kseq: 3 });
    assert.equal(p.seq, 0);
    assert.equal(violations.length, 0);
  });
  it('calls a granted check the policy denies a violation; a refused one is not', () => {
    const { k, out, violations } = setup();
    k.check(check({ nr: 46, cap: 12, result: 'refused' })); // sendmsg, CAP_NET_ADMIN refused
    assert.equal(violations.length, 0);
    k.check(check({ nr: 46, cap: 12, kseq: 2 }));
    assert.equal(violations.length, 1);
    assert.equal(violations[0].ruleId, 'no-admin');
    assert.equal(out[1].kernel!.violation, true);
  });
  it('never calls capset\'s own CAP_SETPCAP probe a violation', () => {
    const { k, out, violations } = setup({ ...buildSeccompProfile('/x.sock'), syscalls: [] }, DENY_ALL);
    k.check(check({ nr: 126, cap: 8 })); // capset, CAP_SETPCAP granted, denied by the policy
    k.check(check({ nr: 126, cap: 12, kseq: 2 })); // CAP_NET_ADMIN granted in capset, denied: a violation
    assert.equal(out.length, 2);
    assert.equal(violations.length, 1);
    assert.equal(violations[0].capability, 'CAP_NET_ADMIN');
  });
  it('joins a check inside a trapped syscall to the agent decision of the same call, which it is no violation of', async () => {
    const { k, out, violations } = setup();
    k.agentDecision(agent({ seq: 4, nr: 105, at: '2026-12-04T10:00:00.000Z' })); // setuid, an earlier call
    k.check(check({ nr: 105, cap: 7, at: '2026-12-04T10:00:00.020Z' }));
    k.agentDecision(agent({ seq: 5, nr: 105, at: '2026-12-04T10:00:00.019Z' })); // the same call, arriving later
    assert.equal(out.length, 0, 'held until the agent has had time to report the call');
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(out.length, 1);
    assert.equal(out[0].seq, 5);
    assert.equal(violations.length, 0);
  });
  it('without a filter, a check is decided by the policy alone', () => {
    const { k, out } = setup({ ...buildSeccompProfile('/x.sock'), syscalls: [] });
    k.check(check({ nr: 105, cap: 7 }));
    assert.equal(out.length, 1);
    assert.equal(out[0].seq, 0);
    assert.equal(out[0].decision, 'allow');
  });
});
