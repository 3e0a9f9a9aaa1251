import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilitySets, compile, evaluate, load, lookup, parseTable } from './index';

function root(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'examples', 'policies'))) dir = join(dir, '..');
  return dir;
}
const read = (name: string) => readFileSync(join(root(), 'examples', 'policies', name), 'utf8');
const EXAMPLES = ['ping.yaml', 'web.yaml', 'build.yaml', 'deny-all.yaml', 'learn.yaml', 'default.yaml'];

describe('example policies', () => {
  for (const name of EXAMPLES) {
    describe(`when ${name} is loaded`, () => {
      it('lints clean (no errors, no warnings) and compiles to a valid table', () => {
        const r = load(read(name), name);
        assert.deepEqual([...r.errors, ...r.warnings], []);
        assert.deepEqual(parseTable(compile(r.policy!).text).errors, []);
      });
    });
  }

  describe('when default.yaml gives a root container its sets', () => {
    it('grants about what Docker grants, without NET_RAW and MKNOD, and audits every decision', () => {
      const p = load(read('default.yaml'), 'default.yaml').policy!;
      const s = capabilitySets(p, { uid: 0, gid: 0 });
      assert.deepEqual(s.sets.effective, [
        'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
        'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP',
      ]);
      assert.deepEqual(s.sets.bounding, s.sets.effective);
      assert.deepEqual(s.sets.inheritable, []);
      assert.equal(evaluate(p, { syscall: 'socket', args: { family: 'AF_INET', type: 'SOCK_RAW', protocol: 1 }, uid: 0 }).decision, 'deny');
      assert.equal(evaluate(p, { syscall: 'mknod', args: { mode: 8192 | 0o600 }, uid: 0 }).decision, 'deny');
      for (const d of [evaluate(p, { privilege: 'PRIV_VFS_CHOWN', uid: 0 }), evaluate(p, { privilege: 'PRIV_VFS_MOUNT', uid: 0 }), evaluate(p, { syscall: 'capget', args: {} })]) {
        assert.equal(d.audit, true);
      }
    });
  });

  describe('when ping.yaml decides sockets', () => {
    it('allows raw ICMP for ping only and emulates IP_RECVERR', () => {
      const p = load(read('ping.yaml'), 'ping.yaml').policy!;
      const t = compile(p);
      const raw = { syscall: 'socket', args: { family: 'AF_INET', type: 'SOCK_RAW', protocol: 1 }, uid: 0 };
      assert.equal(lookup(t, { ...raw, exe: '/bin/ping' }).decision, 'allow');
      assert.equal(lookup(t, { ...raw, exe: '/usr/bin/python3' }).decision, 'deny');
      assert.equal(lookup(t, { syscall: 'setsockopt', args: { level: 'SOL_IP', option: 'IP_RECVERR' }, exe: '/bin/ping', uid: 0 }).decision, 'emulate');
    });
  });

  describe('when build.yaml decides a package install', () => {
    it('allows chown and setuid, denies device nodes, emulates capset', () => {
      const p = load(read('build.yaml'), 'build.yaml').policy!;
      assert.equal(evaluate(p, { syscall: 'chown', args: { uid: 100, gid: 100 }, uid: 0 }).ruleId, 'package-files');
      assert.equal(evaluate(p, { syscall: 'setuid', args: { uid: 100 }, uid: 0, gid: 0 }).ruleId, 'package-users');
      assert.deepEqual(evaluate(p, { syscall: 'mknod', args: { mode: 8192 | 0o600 }, uid: 0 }), {
        decision: 'deny', ruleId: 'no-device-nodes', privileges: ['PRIV_VFS_MKNOD_DEV'], capability: 'CAP_MKNOD', errno: 1, audit: true,
      });
      assert.equal(evaluate(p, { syscall: 'capset', args: { caps: ['CAP_SYS_ADMIN'] }, uid: 0 }).decision, 'emulate');
    });
  });

  describe('when learn.yaml is used', () => {
    it('allows and records everything and grants every capability', () => {
      const p = load(read('learn.yaml'), 'learn.yaml').policy!;
      assert.deepEqual(evaluate(p, { privilege: 'PRIV_VFS_MOUNT' }), { decision: 'allow', ruleId: null, privileges: ['PRIV_VFS_MOUNT'], capability: 'CAP_SYS_ADMIN', audit: true });
      assert.equal(capabilitySets(p, { uid: 0, gid: 0 }).sets.effective.length, 41);
    });
  });
});
