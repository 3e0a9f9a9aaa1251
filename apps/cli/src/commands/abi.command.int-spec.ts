import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'bin', 'capulator'))) {
    const up = join(dir, '..');
    if (up === dir) throw new Error('cannot find bin/capulator');
    dir = up;
  }
  return dir;
}
const bin = join(repoRoot(), 'bin', 'capulator');

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function json<T>(...args: string[]): T {
  const r = run(...args, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

describe('capulator abi', () => {
  it('caps --json lists the 41 capabilities as {name, number, summary}', () => {
    const caps = json<Array<{ name: string; number: number; summary: string }>>('abi', 'caps');
    assert.equal(caps.length, 41);
    assert.deepEqual(Object.keys(caps[0]).sort(), ['name', 'number', 'summary']);
    assert.deepEqual(caps[40], { name: 'CAP_CHECKPOINT_RESTORE', number: 40, summary: caps[40].summary });
  });

  it('caps prints a table without --json', () => {
    const r = run('abi', 'caps');
    assert.equal(r.code, 0);
    assert.match(r.stdout.split('\n')[0], /^NUMBER\s+NAME\s+SUMMARY$/);
    assert.match(r.stdout, /^13\s+CAP_NET_RAW\s+/m);
  });

  it('privs --json lists {name, number, section, trappable}', () => {
    const privs = json<Array<{ name: string; number: number; section: string; trappable: boolean }>>('abi', 'privs');
    const raw = privs.find((p) => p.name === 'PRIV_NETINET_RAW');
    assert.deepEqual({ ...raw }, { name: 'PRIV_NETINET_RAW', number: 497, section: 'netinet', trappable: true });
    assert.ok(privs.find((p) => p.name === 'PRIV_NET_ROUTE' && p.trappable === false));
  });

  it('map --json has one row per capability with privileges and a note', () => {
    const map = json<Array<{ capability: string; privileges: string[]; note: string }>>('abi', 'map');
    assert.equal(map.length, 41);
    const mknod = map.find((m) => m.capability === 'CAP_MKNOD')!;
    assert.deepEqual(mknod.privileges, ['PRIV_VFS_MKNOD_DEV']);
    assert.ok(mknod.note.length > 0);
  });

  it('syscalls --arch aarch64 --json lists {name, number}', () => {
    const sc = json<Array<{ name: string; number: number }>>('abi', 'syscalls', '--arch', 'aarch64');
    assert.deepEqual(sc.find((s) => s.name === 'socket'), { name: 'socket', number: 198 });
    const x = json<Array<{ name: string; number: number }>>('abi', 'syscalls', '--arch', 'x86_64');
    assert.deepEqual(x[0], { name: 'read', number: 0 });
    const bad = run('abi', 'syscalls', '--arch', 'mips');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown architecture/);
  });

  it('elf --json describes a dynamic and a static executable', () => {
    const ls = json<Record<string, unknown>>('abi', 'elf', '/bin/ls');
    assert.deepEqual(
      { class: ls.class, machine: ls.machine, type: ls.type, brand: ls.brand, interpreter: ls.interpreter, static: ls.static },
      { class: 64, machine: 'x86_64', type: 'dyn', brand: 'linux', interpreter: '/lib64/ld-linux-x86-64.so.2', static: false },
    );
    if (existsSync('/bin/busybox')) {
      const bb = json<Record<string, unknown>>('abi', 'elf', '/bin/busybox');
      assert.equal(bb.static, true);
      assert.equal(bb.interpreter, null);
    }
  });

  it('elf exits 2 with one line for a file that is not a readable ELF', () => {
    const dir = mkdtempSync(join(tmpdir(), 'capulator-cli-elf-'));
    try {
      const trunc = join(dir, 'trunc');
      writeFileSync(trunc, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]));
      for (const [file, re] of [
        ['/etc/passwd', /not an ELF file/],
        [trunc, /truncated/],
        [join(dir, 'missing'), /cannot open/],
        [dir, /not a regular file/],
      ] as const) {
        const r = run('abi', 'elf', file, '--json');
        assert.equal(r.code, 2, file);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, re);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('classify --json answers for one syscall', () => {
    const c = json<{ privileges: string[]; capability: string }>('abi', 'classify', 'bind', 'family=AF_INET', 'port=80');
    assert.deepEqual(c.privileges, ['PRIV_NETINET_RESERVEDPORT']);
    assert.equal(c.capability, 'CAP_NET_BIND_SERVICE');
  });
});
