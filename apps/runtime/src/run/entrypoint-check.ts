import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { arch as hostArch } from 'node:os';
import { resolveInRootfs } from './rootfs-path';

/** A bind mount as far as path resolution cares: host `source` appears at `destination`. */
export interface PathMount {
  source: string;
  destination: string;
}

/** Resolves a container path to a host path, through the bind mounts first, then the rootfs. */
export function resolveContainerPath(rootfs: string, p: string, mounts: readonly PathMount[] = []): string | undefined {
  const norm = '/' + p.split('/').filter((c) => c !== '' && c !== '.').join('/');
  const m = [...mounts]
    .sort((a, b) => b.destination.length - a.destination.length)
    .find((x) => norm === x.destination || norm.startsWith(x.destination.replace(/\/$/, '') + '/'));
  if (m) return resolveInRootfs(m.source, norm.slice(m.destination.replace(/\/$/, '').length) || '/');
  return resolveInRootfs(rootfs, p);
}

/** Why a command cannot start in an image: one line, for the CLI. */
export class EntrypointError extends Error {
  readonly code = 'ENTRYPOINT';
}

const EM: Record<number, string> = { 3: 'i386', 8: 'mips', 20: 'ppc', 21: 'ppc64', 22: 's390x', 40: 'arm', 62: 'x86_64', 183: 'aarch64', 243: 'riscv64' };
const HOST_EM: Record<string, number> = { x64: 62, arm64: 183 };
const HOST_NAME: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64' };

export interface ElfSummary {
  machine: string;
  elfClass: 32 | 64;
  osabi: number;
  interpreter?: string;
}

/** Reads the parts of an ELF header the start check needs (bounded reads, no trust in offsets). */
export function readElfSummary(path: string): ElfSummary | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 52) return undefined;
    if (h.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const machine = u16(h, 18);
    const phoff = is64 ? u64(h, 32) : u32(h, 28);
    const phentsize = u16(h, is64 ? 54 : 42);
    const phnum = Math.min(u16(h, is64 ? 56 : 44), 256);
    let interpreter: string | undefined;
    const ph = Buffer.alloc(phentsize);
    for (let i = 0; i < phnum && phentsize >= (is64 ? 56 : 32); i++) {
      if (readSync(fd, ph, 0, phentsize, phoff + i * phentsize) < phentsize) break;
      if (u32(ph, 0) !== 3) continue; // PT_INTERP
      const off = is64 ? u64(ph, 8) : u32(ph, 4);
      const len = Math.min(is64 ? u64(ph, 32) : u32(ph, 16), 4096);
      if (off + len > size) break;
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, off);
      interpreter = b.toString('utf8').replace(/\0.*$/s, '');
    }
    return { machine: EM[machine] ?? `machine ${machine}`, elfClass: is64 ? 64 : 32, osabi: h[7], interpreter };
  } finally {
    closeSync(fd);
  }
}

/** Finds `cmd` in the image: absolute/relative paths as given, bare names through PATH. Returns the in-container path. */
export function findCommand(rootfs: string, cmd: string, env: string[], cwd = '/', mounts: readonly PathMount[] = []): string | undefined {
  if (cmd.includes('/')) {
    const p = cmd.startsWith('/') ? cmd : `${cwd.replace(/\/$/, '')}/${cmd}`;
    return resolveContainerPath(rootfs, p, mounts) ? p : undefined;
  }
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const dir of pathVar.split(':')) {
    if (!dir.startsWith('/')) continue;
    const p = `${dir.replace(/\/$/, '')}/${cmd}`;
    const host = resolveContainerPath(rootfs, p, mounts);
    if (host) {
      try {
        const st = statSync(host);
        if (st.isFile() && (st.mode & 0o111) !== 0) return p;
      } catch {
        /* next */
      }
    }
  }
  return undefined;
}

/**
 * The start check of DESIGN.md ("Images"): the entrypoint is an ELF for this host's ISA with a
 * Linux/SysV brand and an interpreter present in the image, or a #! script whose interpreter is.
 * Throws EntrypointError with one clear line otherwise.
 */
export function checkEntrypoint(
  rootfs: string,
  argv: string[],
  env: string[],
  cwd = '/',
  platformArch?: string,
  depth = 0,
  mounts: readonly PathMount[] = [],
): string {
  if (argv.length === 0 || !argv[0]) throw new EntrypointError('no command: the image has no Entrypoint/Cmd and none was given');
  const inPath = findCommand(rootfs, argv[0], env, cwd, mounts);
  if (!inPath) throw new EntrypointError(`${argv[0]}: not found in the image`);
  const host = resolveContainerPath(rootfs, inPath, mounts)!;
  const st = statSync(host);
  if (!st.isFile()) throw new EntrypointError(`${inPath}: not a regular file`);
  if ((st.mode & 0o111) === 0) throw new EntrypointError(`${inPath}: not executable`);
  const head = Buffer.alloc(256);
  const fd = openSync(host, 'r');
  const n = readSync(fd, head, 0, 256, 0);
  closeSync(fd);
  const hostName = HOST_NAME[hostArch()] ?? hostArch();
  if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) {
    if (depth > 4) throw new EntrypointError(`${inPath}: too many nested #! interpreters`);
    const line = head.subarray(2, n).toString('utf8').split('\n')[0].trim();
    const interp = line.split(/\s+/)[0];
    if (!interp) throw new EntrypointError(`${inPath}: empty #! line`);
    if (!resolveContainerPath(rootfs, interp, mounts)) throw new EntrypointError(`${inPath}: interpreter ${interp} is not in the image`);
    checkEntrypoint(rootfs, [interp], env, cwd, platformArch, depth + 1, mounts);
    return inPath;
  }
  const elf = readElfSummary(host);
  if (!elf) throw new EntrypointError(`${inPath}: not an ELF executable or #! script`);
  const want = HOST_EM[hostArch()];
  if (EM[want] !== elf.machine || elf.elfClass !== 64) {
    const img = platformArch ? `image is linux/${platformArch}` : `${inPath} is ${elf.machine}`;
    throw new EntrypointError(`${img}, this host is ${hostName}`);
  }
  if (elf.osabi !== 0 && elf.osabi !== 3) throw new EntrypointError(`${inPath}: ELF OS ABI ${elf.osabi} is not Linux/SysV`);
  if (elf.interpreter && !resolveContainerPath(rootfs, elf.interpreter, mounts)) {
    throw new EntrypointError(`${inPath}: interpreter ${elf.interpreter} is not in the image`);
  }
  return inPath;
}
