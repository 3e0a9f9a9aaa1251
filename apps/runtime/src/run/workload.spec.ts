import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePublish } from './network';
import { buildOciSpec, ociSpecJson } from './oci-spec';
import {
  defaultWorkload,
  DEFAULT_PIDS_LIMIT,
  parseBytes,
  parseEnvFile,
  parseMemorySwap,
  parsePidsLimit,
  parseTmpfs,
  parseUlimit,
  resources,
  rlimits,
  RLIM_INFINITY,
} from './workload';

describe('workload options', () => {
  it('parses -p as docker does', () => {
    assert.deepEqual(parsePublish('8080:80'), { hostPort: 8080, containerPort: 80, protocol: 'tcp' });
    assert.deepEqual(parsePublish('127.0.0.1:53:53/udp'), { hostIP: '127.0.0.1', hostPort: 53, containerPort: 53, protocol: 'udp' });
    assert.throws(() => parsePublish('80'), /-p 80: want \[IP:\]HOSTPORT:PORT\[\/udp\]/);
    assert.throws(() => parsePublish('0:80'), /port 0 is not in 1-65535/);
    assert.throws(() => parsePublish('300.1.1.1:1:2'), /300\.1\.1\.1 is not an IPv4 address/);
    assert.throws(() => parsePublish('1:2/sctp'), /want/);
  });

  it('sizes, swap, pids', () => {
    assert.equal(parseBytes('--memory', '256m'), 256 * 1024 * 1024);
    assert.equal(parseBytes('--memory', '1G'), 1024 ** 3);
    assert.equal(parseBytes('--memory', '1.5k'), 1536);
    assert.throws(() => parseBytes('--memory', '-1'), /want a size/);
    assert.equal(parseMemorySwap('-1', 1), -1);
    assert.throws(() => parseMemorySwap('1m', 2 * 1024 * 1024), /at least --memory/);
    assert.equal(parsePidsLimit('0'), -1);
    assert.equal(parsePidsLimit('-1'), -1);
    assert.equal(parsePidsLimit('100'), 100);
    assert.throws(() => parsePidsLimit('-5'), /want a positive number/);
  });

  it('linux.resources: pids default, swap twice memory unless given, cpu quota', () => {
    assert.deepEqual(resources(defaultWorkload()), { pids: { limit: DEFAULT_PIDS_LIMIT } });
    const w = { ...defaultWorkload(), memory: 64, cpus: 0.5, pidsLimit: -1 };
    assert.deepEqual(resources(w), { memory: { limit: 64, swap: 128 }, cpu: { quota: 50000, period: 100000 } });
    assert.deepEqual(resources({ ...w, memorySwap: -1 }).memory, { limit: 64, swap: -1 });
  });

  it('rlimits: nofile 1024, core as the host allows, --ulimit over them; unlimited written as uint64 max', () => {
    const r = rlimits([parseUlimit('nofile=10:20'), parseUlimit('stack=unlimited')]);
    assert.deepEqual(r.find((x) => x.type === 'RLIMIT_NOFILE'), { type: 'RLIMIT_NOFILE', soft: 10, hard: 20 });
    assert.ok(r.some((x) => x.type === 'RLIMIT_CORE'));
    const spec = buildOciSpec({
      rootfs: '/r', args: ['x'], env: [], cwd: '/', uid: 0, gid: 0, hostname: 'h',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] } as never, mounts: [], rlimits: [{ type: 'RLIMIT_STACK', soft: RLIM_INFINITY, hard: RLIM_INFINITY }],
    });
    const text = ociSpecJson(spec);
    assert.match(text, /"soft": 18446744073709551615,\s*"hard": 18446744073709551615/);
    assert.throws(() => parseUlimit('nofile=2:1'), /soft limit is above the hard one/);
  });

  it('network namespace: own (none), a path (bridge), or absent (host)', () => {
    const base = {
      rootfs: '/r', args: ['x'], env: [], cwd: '/', uid: 0, gid: 0, hostname: 'h',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      seccomp: {} as never, mounts: [],
    };
    const ns = (s: Record<string, unknown>) => (s.linux as { namespaces: { type: string; path?: string }[] }).namespaces.filter((n) => n.type === 'network');
    assert.deepEqual(ns(buildOciSpec({ ...base, network: { mode: 'none' } })), [{ type: 'network' }]);
    assert.deepEqual(ns(buildOciSpec({ ...base, network: { mode: 'path', path: '/run/netns/x' } })), [{ type: 'network', path: '/run/netns/x' }]);
    assert.deepEqual(ns(buildOciSpec({ ...base, network: { mode: 'host' } })), []);
  });

  it('tmpfs defaults to noexec,nosuid,nodev unless the options say otherwise', () => {
    assert.deepEqual(parseTmpfs('/run'), { destination: '/run', options: ['noexec', 'nosuid', 'nodev'] });
    assert.deepEqual(parseTmpfs('/run:exec,size=1m'), { destination: '/run', options: ['nosuid', 'nodev', 'exec', 'size=1m'] });
    assert.throws(() => parseTmpfs('run'), /absolute/);
    assert.throws(() => parseTmpfs('/run:uid=x'), /unknown option uid=x/);
  });

  it('env files: K=V lines, comments, bare names from the environment', () => {
    assert.deepEqual(parseEnvFile('f', '# c\nA=1\n\n  B=two words\nC\nD\n', { C: 'from-env' }), ['A=1', 'B=two words', 'C=from-env']);
    assert.throws(() => parseEnvFile('f', 'A=1\n1BAD=2\n'), /^Error: f:2: want K=V$/);
  });
});
