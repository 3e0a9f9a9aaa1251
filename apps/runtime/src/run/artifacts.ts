import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RUN_ID } from './run-id';

/**
 * What a run leaves besides events: core dumps (kept under $CAPULATOR_HOME/artifacts/RUN/, which
 * outlives the run directory) and whether the kernel's OOM killer ended it.
 */

export interface RunArtifact {
  /** name for `capulator cp RUN:NAME` */
  name: string;
  /** where it is kept on the host */
  path: string;
  bytes: number;
  /** for a core: where the program wrote it, in the container */
  source?: string;
}

/** Signals whose default action dumps core (signal(7)). */
export const CORE_SIGNALS = new Set(['SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGXCPU', 'SIGXFSZ', 'SIGSYS']);

export function artifactsDir(home: string, runId: string): string {
  return join(home, 'artifacts', runId);
}

/** The host's kernel.core_pattern (the kernel applies it in the crashing process's mount namespace; a `|` pattern pipes the core to a host program instead). */
export function corePattern(): string {
  try {
    return readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  } catch {
    return 'core';
  }
}

const MAX_ENTRIES = 20_000;
const MAX_CORES = 8;

/** An ELF file of type ET_CORE (e_type 4 at offset 16, either byte order). */
function isElfCore(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(18);
    if (readSync(fd, b, 0, 18, 0) < 18) return false;
    if (b.readUInt32BE(0) !== 0x7f454c46) return false;
    return (b[5] === 2 ? b.readUInt16BE(16) : b.readUInt16LE(16)) === 4;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Moves the core files a run's programs wrote (ELF cores among the files the run created: its
 * overlay upper directory; bounded walk) to the run's artifacts directory. Named `core`,
 * `core.2`, … in the order found. Symlinks are never followed.
 */
export function collectCores(upperDir: string, home: string, runId: string): RunArtifact[] {
  if (!existsSync(upperDir)) return [];
  const found: string[] = [];
  let seen = 0;
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (++seen > MAX_ENTRIES || found.length >= MAX_CORES) return;
      const p = join(dir, n);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size >= 64 && isElfCore(p)) found.push(p);
    }
  };
  walk(upperDir);
  if (found.length === 0) return [];
  const out = artifactsDir(home, runId);
  mkdirSync(out, { recursive: true, mode: 0o700 });
  return found.map((p, i) => {
    const name = i === 0 ? 'core' : `core.${i + 1}`;
    const dest = join(out, name);
    try {
      renameSync(p, dest);
    } catch {
      copyFileSync(p, dest);
      rmSync(p, { force: true });
    }
    return { name, path: dest, bytes: statSync(dest).size, source: '/' + relative(upperDir, p) };
  });
}

/**
 * Whether the kernel's OOM killer killed a process of the container: the oom_kill counter of its
 * memory cgroup (cgroup v1 memory.oom_control, v2 memory.events). runc keeps the cgroup after
 * the container exited only with `runc run --keep`; its state.json names the paths.
 */
export function oomKilled(runcRoot: string, containerId: string): boolean {
  let memory: string | undefined;
  try {
    const st = JSON.parse(readFileSync(join(runcRoot, containerId, 'state.json'), 'utf8')) as { cgroup_paths?: Record<string, string> };
    memory = st.cgroup_paths?.memory ?? st.cgroup_paths?.[''];
  } catch {
    return false;
  }
  if (!memory) return false;
  for (const f of ['memory.events', 'memory.oom_control']) {
    try {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(memory, f), 'utf8'));
      if (m) return Number(m[1]) > 0;
    } catch {
      /* not this cgroup version */
    }
  }
  return false;
}

/** The artifact NAME of run RUN, or undefined. Names are checked: no path can leave the run's directory. */
export function findArtifact(home: string, runId: string, name: string): string | undefined {
  if (!RUN_ID.test(runId) || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) return undefined;
  const p = join(artifactsDir(home, runId), name);
  try {
    return lstatSync(p).isFile() ? p : undefined;
  } catch {
    return undefined;
  }
}

export function listArtifacts(home: string, runId: string): string[] {
  try {
    return readdirSync(artifactsDir(home, runId)).sort();
  } catch {
    return [];
  }
}
