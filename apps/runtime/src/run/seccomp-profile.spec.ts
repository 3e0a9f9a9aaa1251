import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilitySets, compileForContainer, load, parseTable } from '@capulator/policy';
import { buildSeccompProfile, trapPlan, type TrapPlan } from './seccomp-profile';

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');

function planOf(text: string): TrapPlan {
  const l = load(text, 'p.yaml');
  assert.deepEqual(l.errors, []);
  const table = parseTable(compileForContainer(l.policy!, {}).text).table!;
  return trapPlan(table, capabilitySets(l.policy!, { uid: 0, gid: 0 }).sets.bounding, 'x64');
}
const example = (n: string) => planOf(readFileSync(join(repo, 'examples/policies', n), 'utf8'));
const doc = (defaults: string, rules: string) => `apiVersion: capulator/v1
kind: Policy
metadata: { name: t }
defaults: ${defaults}
rules:${rules === '[]' ? ' []' : '\n' + rules}`;
const names = (p: TrapPlan) => buildSeccompProfile('/s', 'x64', p).syscalls.flatMap((s) => s.names);

describe('trapPlan: the trapped list is a function of the policy', () => {
  it('traps nothing for privilege when no capability is held (deny-all): the kernel refuses every path itself', () => {
    const p = planOf(doc('{ action: deny, audit: denials }', '[]'));
    assert.equal(p.empty, true);
    assert.deepEqual(names(p), ['execve', 'execveat']);
  });
  it('traps nothing when every held capability is granted whole and nothing records capget', () => {
    const p = planOf(doc('{ action: deny, audit: denials }', '  - id: raw\n    capabilities: [CAP_NET_RAW]\n    action: allow\n'));
    assert.deepEqual(p.refined, []);
    assert.equal(p.empty, true);
  });
  it('web.yaml: the refined capabilities, io_uring refused, clone3 answered ENOSYS only if CAP_SYS_ADMIN is refined', () => {
    const p = example('web.yaml');
    assert.deepEqual([...p.refined].sort(), ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_SETGID', 'CAP_SETUID']);
    assert.ok(p.groups.includes('io_uring'));
    assert.ok(!p.groups.includes('record'), 'audit: denials does not record capget');
    const n = names(p);
    for (const sc of ['bind', 'setuid', 'chown', 'io_uring_setup', 'io_uring_enter', 'io_uring_register']) assert.ok(n.includes(sc), sc);
    for (const sc of ['kill', 'mount', 'fsopen', 'clone3', 'capget']) assert.ok(!n.includes(sc), sc);
  });
  it('ping.yaml: raw and packet sockets (also SOCK_PACKET), the ring, the emulated IP_RECVERR and capget (audit: all)', () => {
    const p = example('ping.yaml');
    assert.deepEqual(p.refined, ['CAP_NET_RAW']);
    const prof = buildSeccompProfile('/s', 'x64', p);
    const sock = prof.syscalls.filter((s) => s.names.includes('socket')).map((s) => s.args);
    assert.ok(sock.some((a) => a?.[0].op === 'SCMP_CMP_MASKED_EQ' && a[0].valueTwo === 10), 'SOCK_PACKET');
    assert.ok(prof.syscalls.some((s) => s.names.includes('setsockopt') && s.args?.[1].value === 11), 'IP_RECVERR');
    for (const g of ['record', 'io_uring', 'CAP_NET_RAW']) assert.ok(p.groups.includes(g), g);
  });
  it('CAP_SYS_ADMIN granted to one program: the new mount API, namespaces, TIOCSTI, and clone3 → ENOSYS', () => {
    const p = planOf(doc('{ action: deny, audit: denials }', '  - id: m\n    match: { exe: [/bin/mount] }\n    capabilities: [CAP_SYS_ADMIN]\n    action: allow\n'));
    const prof = buildSeccompProfile('/s', 'x64', p);
    const n = prof.syscalls.flatMap((s) => s.names);
    for (const sc of ['mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'mount_setattr', 'open_tree', 'setns', 'unshare', 'clone', 'ioctl']) assert.ok(n.includes(sc), sc);
    assert.deepEqual(prof.syscalls.find((s) => s.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });
  it('CAP_KILL granted to one program: every signal path', () => {
    const n = names(planOf(doc('{ action: deny, audit: denials }', '  - id: k\n    match: { exe: [/bin/kill] }\n    capabilities: [CAP_KILL]\n    action: allow\n')));
    for (const sc of ['kill', 'tkill', 'tgkill', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'pidfd_send_signal']) assert.ok(n.includes(sc), sc);
  });
  it('CAP_DAC_READ_SEARCH, CAP_SYS_RAWIO, CAP_SYSLOG refined: open_by_handle_at ("shocker"), iopl/ioperm, syslog', () => {
    const n = names(planOf(doc('{ action: deny, audit: denials }', '  - id: x\n    match: { uid: 0 }\n    capabilities: [CAP_DAC_READ_SEARCH, CAP_SYS_RAWIO, CAP_SYSLOG]\n    action: allow\n')));
    for (const sc of ['open_by_handle_at', 'iopl', 'ioperm', 'syslog']) assert.ok(n.includes(sc), sc);
  });
  it('a rule that names capget with audit: none under audit: denials records nothing: no filter needed', () => {
    const p = planOf(doc('{ action: allow, audit: denials }', '  - id: q\n    when: { syscall: capget }\n    action: allow\n    audit: none\n'));
    assert.equal(p.empty, true);
  });
  it('learn mode traps everything', () => {
    const l = load(doc('{ action: deny, audit: all }', '[]'), 'p.yaml');
    const table = parseTable(compileForContainer({ ...l.policy!, learn: true }, {}).text).table!;
    const p = trapPlan(table, [], 'x64');
    assert.ok(p.groups.includes('record') && p.groups.includes('io_uring'));
  });
});
