import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readElf, type ElfInfo } from '@capulator/abi';

/**
 * readElf on real files of this machine, each compared with `readelf -h -l -n -d -W` parsed
 * at test time: a static executable (busybox-static, installed by scripts/test.sh), a dynamic
 * PIE (/bin/ls), a shared library (libc.so.6), a static-pie and a core file made here with gcc
 * and gdb, a relocatable object, and FreeBSD-branded images crafted from them.
 */
interface ReadelfView {
  class: number;
  data: 'lsb' | 'msb';
  type: string;
  machine: string;
  osabi: number;
  interpreter: string | null;
  phTypes: string[];
  notes: Array<{ name: string; descsz: number; type: string }>;
  gnuOs: string | null;
  pie: boolean;
  needed: number;
  hasDynamic: boolean;
}

const MACHINES: Record<string, string> = { 'Advanced Micro Devices X86-64': 'x86_64', AArch64: 'aarch64', 'Intel 80386': 'i386' };
const OSABI: Record<string, number> = { 'UNIX - System V': 0, 'UNIX - GNU': 3, 'UNIX - FreeBSD': 9, 'UNIX - NetBSD': 2 };

function readelf(path: string): ReadelfView {
  const out = execFileSync('readelf', ['-h', '-l', '-n', '-d', '-W', path], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const m = (re: RegExp) => re.exec(out)?.[1];
  const phSection = out.split(/Program Headers:/)[1]?.split(/Section to Segment mapping|\n\n/)[0] ?? '';
  const phTypes = [...phSection.matchAll(/^\s+([A-Z_]+|LOOS\+0x[0-9a-f]+)\s+0x/gm)].map((x) => x[1]);
  const notes = [...out.matchAll(/^\s{2}(\S+)\s+0x([0-9a-f]{8})\s+(\S.*)$/gm)].map((x) => ({ name: x[1], descsz: parseInt(x[2], 16), type: x[3] }));
  return {
    class: Number(m(/Class:\s+ELF(32|64)/)),
    data: /Data:.*little endian/.test(out) ? 'lsb' : 'msb',
    type: (m(/^\s*Type:\s+(\w+)/m) ?? '').toLowerCase(),
    machine: MACHINES[m(/Machine:\s+(.*)/)!.trim()] ?? m(/Machine:\s+(.*)/)!.trim(),
    osabi: OSABI[m(/OS\/ABI:\s+(.*)/)!.trim()] ?? -1,
    interpreter: m(/\[Requesting program interpreter: (.*)\]/) ?? null,
    phTypes,
    notes,
    gnuOs: m(/OS: (\w+), ABI:/) ?? null,
    pie: /\(FLAGS_1\).*PIE/.test(out),
    needed: (out.match(/\(NEEDED\)/g) ?? []).length,
    hasDynamic: phTypes.includes('DYNAMIC'),
  };
}

function compare(path: string): { info: ElfInfo; view: ReadelfView } {
  const info = readElf(new Uint8Array(readFileSync(path)));
  const view = readelf(path);
  assert.equal(info.class, view.class, 'class');
  assert.equal(info.data, view.data, 'data');
  assert.equal(info.type, view.type, 'type');
  assert.equal(info.machine, view.machine, 'machine');
  assert.equal(info.osabi, view.osabi, 'EI_OSABI');
  assert.equal(info.interpreter, view.interpreter, 'interpreter');
  assert.deepEqual(info.programHeaders.map((p) => p.typeName), view.phTypes, 'program headers');
  const key = (n: { name: string; descsz: number }) => `${n.name}/${n.descsz}`;
  assert.deepEqual(info.notes.map(key).sort(), view.notes.map(key).sort(), 'notes');
  if (view.type === 'exec' || view.type === 'dyn') {
    const expectStatic = view.interpreter === null && (!view.hasDynamic || (view.needed === 0 && (view.pie || view.type === 'exec')));
    assert.equal(info.static, expectStatic, 'static');
    assert.equal(info.staticPie, expectStatic && view.type === 'dyn', 'static-pie');
  } else assert.equal(info.static, false);
  const expectBrand = view.notes.some((n) => n.name === 'FreeBSD') || view.osabi === 9 ? 'freebsd' : view.gnuOs === 'Linux' ? 'linux' : view.osabi === 3 ? 'linux' : 'sysv';
  assert.equal(info.brand, expectBrand, 'brand');
  const pr = view.notes.filter((n) => n.name === 'CORE' && n.type.startsWith('NT_PRSTATUS'));
  assert.equal(info.prstatusSize, pr.length ? pr[0].descsz : null, 'NT_PRSTATUS size');
  assert.equal(info.prstatusCount, pr.length, 'NT_PRSTATUS count');
  return { info, view };
}

describe('readElf on real files', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-elf-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cc = (name: string, src: string, ...flags: string[]) => {
    writeFileSync(join(dir, `${name}.c`), src);
    execFileSync('gcc', [...flags, '-o', join(dir, name), join(dir, `${name}.c`)], { stdio: 'pipe' });
    return join(dir, name);
  };

  it('reads a static executable (/bin/busybox from busybox-static)', () => {
    assert.ok(existsSync('/bin/busybox'), 'install busybox-static (scripts/test.sh does)');
    const { info } = compare('/bin/busybox');
    assert.equal(info.static, true);
    assert.equal(info.interpreter, null);
    assert.equal(info.brand, 'linux');
  });

  it('reads a dynamic executable (/bin/ls)', () => {
    const { info } = compare('/bin/ls');
    assert.equal(info.static, false);
    assert.equal(info.interpreter, '/lib64/ld-linux-x86-64.so.2');
    assert.equal(info.type, 'dyn');
    assert.equal(info.brand, 'linux');
  });

  it('reads a shared library (libc.so.6)', () => {
    const { info } = compare('/lib/x86_64-linux-gnu/libc.so.6');
    assert.equal(info.type, 'dyn');
    assert.equal(info.static, false);
    assert.equal(info.osabi, 3);
  });

  it('reads the dynamic loader (a shared object with no interpreter)', () => {
    const { info } = compare('/lib64/ld-linux-x86-64.so.2');
    assert.equal(info.linkage, 'shared-library');
  });

  it('reads a static-pie built here', () => {
    const { info } = compare(cc('spie', 'int main(void){return 0;}\n', '-static-pie'));
    assert.equal(info.static, true);
    assert.equal(info.staticPie, true);
    assert.equal(info.type, 'dyn');
  });

  it('reads a relocatable object', () => {
    writeFileSync(join(dir, 'o.c'), 'int f(void){return 1;}\n');
    execFileSync('gcc', ['-c', '-o', join(dir, 'o.o'), join(dir, 'o.c')]);
    const { info } = compare(join(dir, 'o.o'));
    assert.equal(info.type, 'rel');
  });

  it('reads a core file made with gdb, with its NT_PRSTATUS size', () => {
    const prog = cc('crash', '#include <stdlib.h>\nint main(void){abort();}\n', '-g');
    const core = join(dir, 'core');
    execFileSync('gdb', ['-batch', '-nx', '-ex', 'run', '-ex', `generate-core-file ${core}`, prog], { stdio: 'pipe', timeout: 60_000 });
    const { info } = compare(core);
    assert.equal(info.type, 'core');
    assert.equal(info.prstatusSize, 336); // sizeof(struct elf_prstatus) on x86_64
  });

  it('brands a copy of /bin/ls with EI_OSABI 9 as FreeBSD', () => {
    const p = join(dir, 'ls-freebsd');
    copyFileSync('/bin/ls', p);
    const b = readFileSync(p);
    b[7] = 9;
    writeFileSync(p, b);
    const { info, view } = compare(p);
    assert.equal(view.osabi, 9);
    assert.equal(info.brand, 'freebsd');
  });

  it('brands an executable carrying a FreeBSD ABI note (.note.tag) as FreeBSD', () => {
    const src = [
      'struct note { unsigned namesz, descsz, type; char name[8]; unsigned desc; };',
      '__attribute__((section(".note.tag"), aligned(4), used))',
      'static const struct note tag = { 8, 4, 1, "FreeBSD", 1400097 };',
      'int main(void){return 0;}',
    ].join('\n');
    const { info, view } = compare(cc('fbsdnote', src));
    assert.ok(view.notes.some((n) => n.name === 'FreeBSD'));
    assert.equal(info.brand, 'freebsd');
    assert.equal(info.brandSource, 'note:FreeBSD');
    assert.equal(info.freebsdAbiTag, 1400097);
  });
});
