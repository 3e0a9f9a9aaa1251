import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { Command } from 'commander';
import {
  CAPABILITIES,
  CAP_PRIV_MAP,
  PRIVILEGES,
  SYSCALLS,
  ElfError,
  classify,
  elfSummary,
  isArch,
  readElf,
  type Arch,
} from '@capulator/abi';
import { repoRoot } from '@capulator/host';
import { probeHostMechanisms } from '../../../runtime/src/run/host-mechanisms';
import { CliError } from '../cli-error';
import { printJson, printTable } from '../output';

/** Largest file `abi elf` reads whole (larger files are refused with exit 2). */
const MAX_ELF_BYTES = 1 << 30;

interface JsonOpt {
  json?: boolean;
}

function readFileBounded(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(`${path}: cannot open (${e.code ?? e.message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CliError(`${path}: not a regular file`);
    if (st.size > MAX_ELF_BYTES) throw new CliError(`${path}: ${st.size} bytes is larger than the ${MAX_ELF_BYTES}-byte limit`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n <= 0) break;
      off += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, off);
  } finally {
    closeSync(fd);
  }
}

/** `capulator abi …` — facts about the Linux ABI (libs/abi). */
export function registerAbiCommands(program: Command): void {
  const abi = program
    .command('abi')
    .description('Linux ABI facts: capabilities, priv(9), the cap→priv map, syscalls, ELF');

  abi
    .command('host')
    .description('which recording and enforcement mechanisms this kernel offers (each tried, not assumed), and which `run` uses')
    .option('--json', 'machine-readable output')
    .action((opts: JsonOpt) => {
      const h = probeHostMechanisms(repoRoot(__dirname));
      if (opts.json) return printJson(h);
      const rows: Array<[string, string]> = [['kernel', h.kernel]];
      for (const [k, v] of Object.entries(h.bpf)) rows.push([`bpf ${k}`, v]);
      for (const [k, v] of Object.entries(h.seccomp)) rows.push([`seccomp ${k}`, v]);
      rows.push(['cgroup v2', h.cgroupV2 ?? 'none']);
      rows.push(['active LSMs', h.lsm.join(',') || '(unknown)']);
      rows.push(['runc seccomp flags', h.runcSeccompFlags ? h.runcSeccompFlags.join(',') : 'not listed by `runc features` (runc < 1.2: WAIT_KILLABLE_RECV cannot be passed)']);
      rows.push(['run: kernel record', h.runUses.kernelRecord]);
      rows.push(['run: seccomp', h.runUses.seccomp]);
      printTable(['MECHANISM', 'STATUS'], rows);
    });

  abi
    .command('caps')
    .description('Linux capabilities: name, number, one-line meaning')
    .option('--json', 'machine-readable output')
    .action((opts: JsonOpt) => {
      const rows = CAPABILITIES.map((c) => ({ name: c.name, number: c.number, summary: c.summary }));
      if (opts.json) printJson(rows);
      else printTable(['NUMBER', 'NAME', 'SUMMARY'], rows.map((r) => [r.number, r.name, r.summary]));
    });

  abi
    .command('privs')
    .description('FreeBSD priv(9) privileges (active ones) and capulator pseudo-privileges (section linux)')
    .option('--json', 'machine-readable output')
    .action((opts: JsonOpt) => {
      const rows = PRIVILEGES.map((p) => ({
        name: p.name,
        number: p.number,
        section: p.section,
        trappable: p.trappable,
        ...(p.untrappedNote ? { untrappedNote: p.untrappedNote } : {}),
      }));
      if (opts.json) printJson(rows);
      else printTable(['NUMBER', 'NAME', 'SECTION', 'TRAPPABLE'], rows.map((r) => [r.number, r.name, r.section, r.trappable ? 'yes' : 'no']));
    });

  abi
    .command('map')
    .description('capability → priv(9) privileges, one row per capability')
    .option('--json', 'machine-readable output')
    .action((opts: JsonOpt) => {
      const rows = CAP_PRIV_MAP.map((m) => ({ capability: m.capability, privileges: [...m.privileges], confidence: m.confidence, note: m.note }));
      if (opts.json) printJson(rows);
      else printTable(['CAPABILITY', 'CONFIDENCE', 'PRIVILEGES'], rows.map((r) => [r.capability, r.confidence, r.privileges.join(',')]));
    });

  abi
    .command('syscalls')
    .description('syscall numbers of an architecture')
    .option('--arch <arch>', 'x86_64 or aarch64', 'x86_64')
    .option('--json', 'machine-readable output')
    .action((opts: JsonOpt & { arch: string }) => {
      if (!isArch(opts.arch)) throw new CliError(`unknown architecture ${JSON.stringify(opts.arch)} (expected x86_64 or aarch64)`);
      const rows = SYSCALLS[opts.arch].map((s) => ({ name: s.name, number: s.number }));
      if (opts.json) printJson(rows);
      else printTable(['NUMBER', 'NAME'], rows.map((r) => [r.number, r.name]));
    });

  abi
    .command('elf')
    .description('read an ELF file: class, machine, type, OS brand, interpreter, static or dynamic')
    .argument('<file>', 'the file to read')
    .option('--json', 'machine-readable output')
    .action((file: string, opts: JsonOpt) => {
      const bytes = readFileBounded(file);
      let info;
      try {
        info = readElf(bytes);
      } catch (err) {
        if (err instanceof ElfError) throw new CliError(`${file}: ${err.message}`);
        throw err;
      }
      const s = elfSummary(info);
      if (opts.json) {
        printJson(s);
        return;
      }
      printTable(['FIELD', 'VALUE'], [
        ['class', `ELF${s.class}`],
        ['data', s.data === 'lsb' ? 'little-endian' : 'big-endian'],
        ['type', s.type],
        ['machine', s.machine],
        ['brand', `${s.brand} (${info.brandSource})`],
        ['interpreter', s.interpreter],
        ['linkage', s.linkage],
        ['static', s.static],
        ...(s.prstatusSize !== null ? [['prstatus size', s.prstatusSize] as [string, number]] : []),
      ]);
    });

  abi
    .command('classify')
    .description('classify one syscall: the privileges it uses (args as name=value, lists comma-separated)')
    .argument('<syscall>', 'syscall name or number')
    .argument('[args...]', 'decoded arguments, e.g. family=AF_INET type=SOCK_RAW')
    .option('--arch <arch>', 'x86_64 or aarch64', 'x86_64')
    .option('--subject <ids>', 'uid,euid,suid,gid,egid,sgid of the calling process')
    .option('--json', 'machine-readable output')
    .action((syscall: string, rawArgs: string[], opts: JsonOpt & { arch: string; subject?: string }) => {
      if (!isArch(opts.arch)) throw new CliError(`unknown architecture ${JSON.stringify(opts.arch)} (expected x86_64 or aarch64)`);
      const args: Record<string, string | number | string[]> = {};
      for (const kv of rawArgs) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new CliError(`argument ${JSON.stringify(kv)} is not name=value`);
        const k = kv.slice(0, i);
        const v = kv.slice(i + 1);
        if (k === 'caps' || k === 'uids' || k === 'gids') args[k] = v.split(',').filter(Boolean);
        else args[k] = /^-?(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : v;
      }
      let subject;
      if (opts.subject) {
        const ids = opts.subject.split(',').map(Number);
        if (ids.length !== 6 || ids.some((n) => !Number.isInteger(n))) throw new CliError('--subject wants six ids: uid,euid,suid,gid,egid,sgid');
        subject = { uid: ids[0], euid: ids[1], suid: ids[2], gid: ids[3], egid: ids[4], sgid: ids[5] };
      }
      const c = classify(opts.arch as Arch, { syscall, args, subject });
      if (opts.json) printJson(c);
      else
        printTable(['FIELD', 'VALUE'], [
          ['syscall', c.syscall],
          ['unprivileged', c.unprivileged],
          ['capability', c.capability],
          ['privileges', c.privileges.join(',') || '-'],
          ['reason', c.reason],
        ]);
    });
}
