import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { capabilityByName } from '@capulator/abi';
import { globMatch } from '@capulator/policy';
import { resolveInRootfs } from './rootfs-path';

/**
 * The kernel-enforced part of a run's start that lives in its filesystem (libs/policy
 * ProgramGrant, docs/policy.md "Who enforces what"):
 * - every regular file of the image that a per-program grant's exe globs match gets those
 *   capabilities as file capabilities (permitted + effective; inheritable = the container-wide
 *   grants, so the program keeps them), written through the overlay mount so the file is copied
 *   up into the run's upper dir first and the shared layer is never touched;
 * - with noNewPrivileges off, set-user-ID and set-group-ID bits of the image are cleared in the
 *   same way, so that they stay as inert as under noNewPrivileges (no uid change, nothing gained).
 */
export interface KernelSetsPlan {
  programs: ReadonlyArray<{ ruleId: string; exe: readonly string[]; capabilities: readonly string[] }>;
  /** the container-wide grants (the inheritable set the container starts with) */
  inheritable: readonly string[];
  noNewPrivileges: boolean;
  /** the uid that root of the container's user namespace maps to, when it has one (VFS_CAP_REVISION_3) */
  rootId?: number;
}

export interface AppliedFileCap {
  ruleId: string;
  /** the file, as the container sees it (after symlinks) */
  path: string;
  capabilities: string[];
}

export interface KernelSetsApplied {
  fileCaps: AppliedFileCap[];
  /** set-id files whose bits were cleared (container paths) */
  setidCleared: string[];
  /** one line each: a per-program glob that matched no regular file of the image */
  warnings: string[];
}

/** Entries walked to expand one glob; a glob that would need more is refused. */
export const GLOB_WALK_LIMIT = 20000;

function mask(caps: readonly string[]): string {
  let m = 0n;
  for (const c of caps) {
    const n = capabilityByName(c)?.number;
    if (n === undefined) throw new Error(`unknown capability ${c}`);
    m |= 1n << BigInt(n);
  }
  return m.toString(16);
}

/** Container paths under `rootfs` that `glob` matches (regular files and symlinks; no directories). */
export function expandExeGlob(rootfs: string, glob: string): string[] {
  const first = glob.search(/[*?[\\]/);
  if (first < 0) return [posix.normalize(glob)];
  const base = glob.slice(0, glob.lastIndexOf('/', first) + 1) || '/';
  const out: string[] = [];
  let walked = 0;
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(join(rootfs, dir));
    } catch {
      return;
    }
    for (const n of names.sort()) {
      if (++walked > GLOB_WALK_LIMIT) throw new Error(`exe glob ${glob} walks more than ${GLOB_WALK_LIMIT} entries of the image; narrow it`);
      const p = posix.join(dir, n);
      const st = lstatSync(join(rootfs, p));
      if (st.isDirectory()) walk(p);
      else if (globMatch(glob, p)) out.push(p);
    }
  };
  walk(base);
  return out;
}

/** The regular files (container paths, after symlinks inside the rootfs) that `glob` names. */
export function regularFilesMatching(rootfs: string, glob: string): string[] {
  const out = new Set<string>();
  for (const p of expandExeGlob(rootfs, glob)) {
    const host = resolveInRootfs(rootfs, p);
    if (!host) continue;
    try {
      if (!lstatSync(host).isFile()) continue;
    } catch {
      continue;
    }
    out.add('/' + posix.relative(rootfs, host));
  }
  return [...out];
}

/**
 * Calls `fn` with a read-only view of the image's layers (bottom first): the layer itself when
 * there is one, else a read-only overlay mount (root only) that is unmounted afterwards.
 */
export function withImageView<T>(layers: readonly string[], fn: (rootfs: string) => T): T {
  if (layers.length === 1) return fn(layers[0]);
  const dir = mkdtempSync(join(tmpdir(), 'capulator-view-'));
  const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...layers].reverse().join(':')}`, dir], { encoding: 'utf8' });
  if (m.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot mount a view of the image (root is needed for a multi-layer image): ${(m.stderr || m.error?.message || '').trim()}`);
  }
  try {
    return fn(dir);
  } finally {
    if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Set-id regular files of the rootfs (container paths), not crossing into other mounts. */
function setidFiles(rootfs: string): string[] {
  const r = spawnSync('find', [rootfs, '-xdev', '-type', 'f', '-perm', '/6000', '-print0'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`cannot list set-id files of the image: ${r.stderr.trim()}`);
  return r.stdout.split('\0').filter((x) => x !== '').map((h) => '/' + posix.relative(rootfs, h));
}

/**
 * Applies `plan` to the mounted overlay `rootfs` (before the container starts: the tree is the
 * image's, and nothing in it runs yet). `tool` is agent/build/capulator-sets.
 */
export function applyKernelSets(rootfs: string, plan: KernelSetsPlan, tool: string): KernelSetsApplied {
  const applied: KernelSetsApplied = { fileCaps: [], setidCleared: [], warnings: [] };
  if (!plan.noNewPrivileges) {
    for (const p of setidFiles(rootfs)) {
      const host = join(rootfs, p);
      const st = lstatSync(host);
      if (!st.isFile()) continue;
      chmodSync(host, st.mode & 0o1777);
      applied.setidCleared.push(p);
    }
  }
  const inh = mask(plan.inheritable);
  const byPath = new Map<string, AppliedFileCap>();
  for (const g of plan.programs) {
    for (const glob of g.exe) {
      const files = regularFilesMatching(rootfs, glob);
      for (const path of files) {
        const e = byPath.get(path) ?? { ruleId: g.ruleId, path, capabilities: [] };
        for (const c of g.capabilities) if (!e.capabilities.includes(c)) e.capabilities.push(c);
        byPath.set(path, e);
      }
      if (files.length === 0) applied.warnings.push(`rule ${g.ruleId}: exe ${glob} matches no regular file of the image; it gets no file capability`);
    }
  }
  for (const e of byPath.values()) {
    const args = ['filecap', join(rootfs, e.path), mask(e.capabilities), inh];
    if (plan.rootId !== undefined) args.push(String(plan.rootId));
    const r = spawnSync(tool, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot give ${e.path} its file capabilities: ${(r.stderr || r.error?.message || '').trim()}`);
    applied.fileCaps.push(e);
  }
  return applied;
}

/** What a run needs from libs/policy's CapabilitySetsResult besides the sets themselves. */
export interface RunKernelSets {
  programs: KernelSetsPlan['programs'];
  noNewPrivileges: boolean;
  securebits: readonly string[];
}

/** agent/build/capulator-sets beside the agent binary. */
export function kernelSetsTool(agentBinary: string): string {
  return join(agentBinary, '..', 'capulator-sets');
}

/**
 * How runc is started for `k`: through `capulator-sets noroot-exec` when the container must start
 * with SECBIT_NOROOT (runc's init inherits the securebits; OCI has no field for them).
 */
export function runcCommand(runc: string, args: string[], k: RunKernelSets | undefined, tool: string): { command: string; args: string[] } {
  if (k?.securebits.includes('noroot')) return { command: tool, args: ['noroot-exec', runc, ...args] };
  return { command: runc, args };
}

/**
 * With noNewPrivileges off the agent lets runc's setup through until the container's first
 * execve (capulator-agent --runc-setup), so a filter that traps anything must trap execve: fail
 * closed otherwise.
 */
export function checkSetupEnds(k: RunKernelSets | undefined, trapped: ReadonlyArray<{ names: readonly string[] }>): void {
  if (k?.noNewPrivileges !== false || trapped.length === 0) return; // no filter: nothing of runc's is trapped
  if (!trapped.some((s) => s.names.includes('execve'))) throw new Error('the seccomp filter does not trap execve, which ends runc\'s setup phase when noNewPrivileges is off; refusing to start');
}
