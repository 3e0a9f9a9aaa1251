#!/usr/bin/env node
// Generates libs/abi/src/syscalls.generated.ts from the kernel uapi headers of Debian's
// linux-libc-dev:
//   x86_64:  /usr/include/x86_64-linux-gnu/asm/unistd_64.h
//   aarch64: /usr/include/asm-generic/unistd.h, preprocessed the way arm64's
//            arch/arm64/include/uapi/asm/unistd.h includes it (64-bit, not compat, with
//            __ARCH_WANT_RENAMEAT, _NEW_STAT, _SET_GET_RLIMIT, _TIME32_SYSCALLS, _SYS_CLONE3,
//            _MEMFD_SECRET), resolving the __NR3264_* indirections.
//
//   node scripts/gen-syscalls.mjs            write the file
//   node scripts/gen-syscalls.mjs --stdout   print what would be written (the drift test uses it)
//   node scripts/gen-syscalls.mjs --json     print {x86_64: {name: nr}, aarch64: {...}} parsed from the headers
//   --include DIR                            header root instead of /usr/include
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const incIdx = args.indexOf('--include');
const include = incIdx >= 0 ? args[incIdx + 1] : '/usr/include';
const root = new URL('..', import.meta.url).pathname;

// Macros that look like syscall numbers but are not: the count, and arm64's marker for the
// start of the arch-specific range (asm-generic/unistd.h).
const NOT_SYSCALLS = new Set(['__NR_syscalls', '__NR_arch_specific_syscall']);

export const SOURCES = {
  x86_64: {
    header: 'x86_64-linux-gnu/asm/unistd_64.h',
    predefined: { __BITS_PER_LONG: '64', __x86_64__: '1' },
  },
  aarch64: {
    header: 'asm-generic/unistd.h',
    predefined: {
      __BITS_PER_LONG: '64',
      __ARCH_WANT_RENAMEAT: '',
      __ARCH_WANT_NEW_STAT: '',
      __ARCH_WANT_SET_GET_RLIMIT: '',
      __ARCH_WANT_TIME32_SYSCALLS: '',
      __ARCH_WANT_SYS_CLONE3: '',
      __ARCH_WANT_MEMFD_SECRET: '',
    },
  },
};

/** Evaluates a #if expression: defined(X), integers, identifiers (macro values, else 0), ! == != < > <= >= && || ( ). */
function evalCondition(expr, macros) {
  let e = expr.replace(/\/\*.*?\*\//g, '').replace(/\/\/.*$/, '');
  e = e.replace(/defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)/g, (_, a, b) => (macros.has(a ?? b) ? ' 1 ' : ' 0 '));
  for (let depth = 0; depth < 10 && /[A-Za-z_]\w*/.test(e); depth++) {
    e = e.replace(/[A-Za-z_]\w*/g, (id) => {
      const v = macros.get(id);
      return v === undefined || v.trim() === '' ? ' 0 ' : ` (${v}) `;
    });
  }
  if (!/^[\s\d()!=<>&|+\-]*$/.test(e)) throw new Error(`unsupported #if expression: ${expr}`);
  // eslint-disable-next-line no-new-func
  return Boolean(Function(`"use strict"; return (${e});`)());
}

/** A minimal C preprocessor over one header: conditionals and object-like #defines; no #include. */
export function parseUnistd(text, predefined) {
  const macros = new Map(Object.entries(predefined));
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stack = []; // { active, taken, parentActive }
  let active = true;
  for (const raw of lines) {
    const line = raw.trim();
    const m = /^#\s*(\w+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, dir, rest0] = m;
    const rest = rest0.replace(/\/\*.*?\*\//g, '').trim();
    switch (dir) {
      case 'ifdef':
      case 'ifndef':
      case 'if': {
        const cond = !active ? false
          : dir === 'ifdef' ? macros.has(rest.split(/\s/)[0])
          : dir === 'ifndef' ? !macros.has(rest.split(/\s/)[0])
          : evalCondition(rest, macros);
        stack.push({ parentActive: active, taken: cond });
        active = active && cond;
        break;
      }
      case 'elif': {
        const top = stack[stack.length - 1];
        if (!top) throw new Error('#elif without #if');
        const cond = top.parentActive && !top.taken && evalCondition(rest, macros);
        if (cond) top.taken = true;
        active = cond;
        break;
      }
      case 'else': {
        const top = stack[stack.length - 1];
        if (!top) throw new Error('#else without #if');
        active = top.parentActive && !top.taken;
        top.taken = true;
        break;
      }
      case 'endif': {
        const top = stack.pop();
        if (!top) throw new Error('#endif without #if');
        active = top.parentActive;
        break;
      }
      case 'define': {
        if (!active) break;
        const d = /^(\w+)(?:\s+(.*))?$/.exec(rest);
        if (d && !/^\w+\(/.test(rest)) macros.set(d[1], (d[2] ?? '').trim());
        break;
      }
      case 'undef':
        if (active) macros.delete(rest.split(/\s/)[0]);
        break;
      default:
        break;
    }
  }
  if (stack.length) throw new Error('unterminated #if');
  const resolve = (v, depth = 0) => {
    if (depth > 10) return undefined;
    if (/^\d+$/.test(v)) return Number(v);
    const inner = /^\(?\s*(\w+)\s*\)?$/.exec(v);
    if (inner && macros.has(inner[1])) return resolve(macros.get(inner[1]), depth + 1);
    return undefined;
  };
  const out = {};
  for (const [name, value] of macros) {
    if (!name.startsWith('__NR_') || NOT_SYSCALLS.has(name)) continue;
    const nr = resolve(value);
    if (nr === undefined) throw new Error(`cannot resolve ${name} = ${value}`);
    out[name.slice(5)] = nr;
  }
  return out;
}

export function readTables(includeDir = include) {
  const tables = {};
  for (const [arch, src] of Object.entries(SOURCES)) {
    tables[arch] = parseUnistd(readFileSync(join(includeDir, src.header), 'utf8'), src.predefined);
  }
  return tables;
}

export function render(tables) {
  const lines = [];
  lines.push('// GENERATED by scripts/gen-syscalls.mjs (npm run gen:syscalls) — do not edit.');
  lines.push('// Sources (Debian linux-libc-dev):');
  for (const [arch, src] of Object.entries(SOURCES)) lines.push(`//   ${arch}: /usr/include/${src.header}`);
  lines.push('// syscalls.int-spec.ts regenerates this file in memory and fails when it drifts from the headers.');
  lines.push('');
  lines.push("export type Arch = 'x86_64' | 'aarch64';");
  lines.push('');
  lines.push('export const ARCHES: readonly Arch[] = [\'x86_64\', \'aarch64\'];');
  lines.push('');
  lines.push('export const SYSCALLS: Readonly<Record<Arch, ReadonlyArray<{ readonly name: string; readonly number: number }>>> = {');
  for (const arch of Object.keys(SOURCES)) {
    const entries = Object.entries(tables[arch]).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    lines.push(`  ${arch}: [`);
    for (const [name, nr] of entries) lines.push(`    { name: '${name}', number: ${nr} },`);
    lines.push('  ],');
  }
  lines.push('};');
  lines.push('');
  lines.push('const byName: Record<Arch, Map<string, number>> = {');
  lines.push('  x86_64: new Map(SYSCALLS.x86_64.map((s) => [s.name, s.number])),');
  lines.push('  aarch64: new Map(SYSCALLS.aarch64.map((s) => [s.name, s.number])),');
  lines.push('};');
  lines.push('const byNumber: Record<Arch, Map<number, string>> = {');
  lines.push('  x86_64: new Map(SYSCALLS.x86_64.map((s) => [s.number, s.name])),');
  lines.push('  aarch64: new Map(SYSCALLS.aarch64.map((s) => [s.number, s.name])),');
  lines.push('};');
  lines.push('');
  lines.push('export function isArch(a: string): a is Arch {');
  lines.push("  return a === 'x86_64' || a === 'aarch64';");
  lines.push('}');
  lines.push('');
  lines.push('export function syscallNumber(arch: Arch, name: string): number | undefined {');
  lines.push('  return byName[arch]?.get(name);');
  lines.push('}');
  lines.push('');
  lines.push('export function syscallName(arch: Arch, nr: number): string | undefined {');
  lines.push('  return byNumber[arch]?.get(nr);');
  lines.push('}');
  lines.push('');
  return lines.join('\n');
}

const isMain = process.argv[1] && new URL(import.meta.url).pathname === process.argv[1];
if (isMain) {
  const tables = readTables(include);
  if (args.includes('--json')) {
    process.stdout.write(JSON.stringify(tables) + '\n');
  } else if (args.includes('--stdout')) {
    process.stdout.write(render(tables));
  } else {
    const target = join(root, 'libs/abi/src/syscalls.generated.ts');
    writeFileSync(target, render(tables));
    console.log(`gen-syscalls: wrote ${target} (x86_64 ${Object.keys(tables.x86_64).length}, aarch64 ${Object.keys(tables.aarch64).length})`);
  }
}
