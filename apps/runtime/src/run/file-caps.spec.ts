import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkSetupEnds, runcCommand } from './file-caps';

describe('file-caps', () => {
  const perProgram = { programs: [{ ruleId: 'p', exe: ['/bin/ping'], capabilities: ['CAP_NET_RAW'] }], noNewPrivileges: false, securebits: ['noroot', 'noroot_locked'] };
  const plain = { programs: [], noNewPrivileges: true, securebits: [] };

  describe('when runc must start with SECBIT_NOROOT', () => {
    it('runs it through capulator-sets noroot-exec, and directly otherwise', () => {
      assert.deepEqual(runcCommand('runc', ['run', 'x'], perProgram, '/a/capulator-sets'), { command: '/a/capulator-sets', args: ['noroot-exec', 'runc', 'run', 'x'] });
      assert.deepEqual(runcCommand('runc', ['run', 'x'], plain, '/a/capulator-sets'), { command: 'runc', args: ['run', 'x'] });
      assert.deepEqual(runcCommand('runc', ['run', 'x'], undefined, '/a/capulator-sets'), { command: 'runc', args: ['run', 'x'] });
    });
  });

  describe('when no_new_privs is off', () => {
    it('refuses a filter that traps calls but not execve (the end of runc\'s setup phase)', () => {
      assert.throws(() => checkSetupEnds(perProgram, [{ names: ['capget'] }]), /does not trap execve/);
      assert.doesNotThrow(() => checkSetupEnds(perProgram, [{ names: ['capget'] }, { names: ['execve', 'execveat'] }]));
      assert.doesNotThrow(() => checkSetupEnds(perProgram, []));
      assert.doesNotThrow(() => checkSetupEnds(plain, [{ names: ['capget'] }]));
    });
  });
});
