import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ADJ_MODES,
  AF,
  CLOCKS,
  CONSTANT_ALIASES,
  ERRNO,
  IPPROTO,
  IPV6_OPTIONS,
  IP_OPTIONS,
  PR,
  PRCTL_OPTIONS,
  PTRACE_REQUESTS,
  REBOOT_CMDS,
  RLIMIT,
  SCHED_POLICIES,
  SIGNALS,
  SIOC,
  SO,
  SOCK,
  SOL,
  TCP_OPTIONS,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  S_IFMT,
  S_IFREG,
  constantNumber,
  errnoName,
  errnoNumber,
  optionName,
  signalName,
  signalNumber,
  sockTypeName,
  type ConstantTable,
} from '@capulator/abi';
import { evalCDefine, parseCDefines } from './testing/c-defines';

const INC = '/usr/include/';
function headers(...files: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of files) parseCDefines(readFileSync(INC + f, 'utf8'), m);
  return m;
}

const SOURCES: Array<[string, ConstantTable, string[], RegExp | null]> = [
  ['AF', AF, ['x86_64-linux-gnu/bits/socket.h'], /^AF_/],
  ['SOCK', SOCK, ['x86_64-linux-gnu/bits/socket_type.h'], /^SOCK_/],
  ['SOL', SOL, ['x86_64-linux-gnu/bits/socket.h', 'asm-generic/socket.h', 'x86_64-linux-gnu/bits/in.h', 'netinet/tcp.h', 'netinet/udp.h'], /^SOL_/],
  ['IPPROTO', IPPROTO, ['linux/in.h', 'linux/in6.h'], null],
  ['IP_OPTIONS', IP_OPTIONS, ['linux/in.h', 'linux/mroute.h'], null],
  ['IPV6_OPTIONS', IPV6_OPTIONS, ['linux/in6.h'], null],
  ['SO', SO, ['asm-generic/socket.h'], null],
  ['TCP_OPTIONS', TCP_OPTIONS, ['linux/tcp.h'], null],
  ['PR', PR, ['linux/prctl.h'], /^PR_/],
  ['PRCTL_OPTIONS', PRCTL_OPTIONS, ['linux/prctl.h'], null],
  ['RLIMIT', RLIMIT, ['asm-generic/resource.h'], /^RLIMIT_/],
  ['SIGNALS', SIGNALS, ['asm-generic/signal.h', 'x86_64-linux-gnu/asm/signal.h'], null],
  ['SIOC', SIOC, ['linux/sockios.h'], null],
  ['ERRNO', ERRNO, ['asm-generic/errno-base.h', 'asm-generic/errno.h'], /^E[A-Z0-9]+$/],
  ['SCHED_POLICIES', SCHED_POLICIES, ['linux/sched.h'], null],
  ['CLOCKS', CLOCKS, ['linux/time.h'], null],
  ['PTRACE_REQUESTS', PTRACE_REQUESTS, ['linux/ptrace.h'], null],
  ['REBOOT_CMDS', REBOOT_CMDS, ['linux/reboot.h'], /^LINUX_REBOOT_/],
  ['ADJ_MODES', ADJ_MODES, ['linux/timex.h'], /^ADJ_/],
];

describe('constants', () => {
  describe('when compared with the headers parsed now', () => {
    for (const [name, table, files, complete] of SOURCES) {
      it(`${name}: every entry has the number ${files.join(' + ')} gives it`, () => {
        const defs = headers(...files);
        assert.ok(Object.keys(table).length > 0);
        for (const [k, v] of Object.entries(table)) assert.equal(evalCDefine(defs, k), v, `${name}.${k}`);
      });
      if (complete) {
        it(`${name}: has every ${complete.source} constant of the headers (aliases aside)`, () => {
          const defs = headers(...files);
          const skip = new Set([...Object.keys(CONSTANT_ALIASES), 'AF_MAX', 'RLIM_NLIMITS', 'SOL_SOCKET']);
          for (const k of defs.keys()) {
            if (!complete.test(k) || skip.has(k)) continue;
            const v = evalCDefine(defs, k);
            if (v === undefined) continue;
            assert.ok(Object.prototype.hasOwnProperty.call(table, k), `${name} lacks ${k} = ${v}`);
          }
        });
      }
    }

    it('x86_64 asm/signal.h agrees with asm-generic/signal.h (arm64) on every signal', () => {
      const x86 = headers('x86_64-linux-gnu/asm/signal.h');
      const generic = headers('asm-generic/signal.h');
      for (const k of Object.keys(SIGNALS)) assert.equal(evalCDefine(x86, k), evalCDefine(generic, k), k);
    });

    it('has the mode bits of linux/stat.h', () => {
      const defs = headers('linux/stat.h');
      assert.equal(evalCDefine(defs, 'S_IFMT'), S_IFMT);
      assert.equal(evalCDefine(defs, 'S_IFCHR'), S_IFCHR);
      assert.equal(evalCDefine(defs, 'S_IFBLK'), S_IFBLK);
      assert.equal(evalCDefine(defs, 'S_IFIFO'), S_IFIFO);
      assert.equal(evalCDefine(defs, 'S_IFREG'), S_IFREG);
    });
  });

  describe('lookups', () => {
    it('maps errno names and numbers both ways', () => {
      assert.equal(errnoNumber('EPERM'), 1);
      assert.equal(errnoNumber('eacces'), 13);
      assert.equal(errnoNumber('EWOULDBLOCK'), 11);
      assert.equal(errnoName(1), 'EPERM');
      assert.equal(errnoName(38), 'ENOSYS');
      assert.equal(errnoName(100000), undefined);
    });

    it('maps signals, socket types and option names', () => {
      assert.equal(signalNumber('SIGKILL'), 9);
      assert.equal(signalNumber('term'), 15);
      assert.equal(signalName(17), 'SIGCHLD');
      assert.equal(sockTypeName(3 | SOCK.SOCK_CLOEXEC | SOCK.SOCK_NONBLOCK), 'SOCK_RAW');
      assert.equal(optionName('SOL_SOCKET', 36), 'SO_MARK');
      assert.equal(optionName(0, 19), 'IP_TRANSPARENT');
      assert.equal(optionName('IPPROTO_IPV6', 75), 'IPV6_TRANSPARENT');
      assert.equal(constantNumber(AF, 'AF_LOCAL'), 1);
      assert.equal(PRCTL_OPTIONS.PR_CAPBSET_DROP, 24);
      assert.equal(SIOC.SIOCSIFFLAGS, 0x8914);
    });
  });
});
