/**
 * The cold CLI's head start on the kernel record (agent/PROTOCOL.md "Kernel record"): loading and
 * verifying its BPF program takes ~75 ms, which a `capulator run` without a daemon used to wait for
 * after Node had loaded the CLI. bin/capulator starts it first, as a spare (`--cgroup -`: loaded,
 * attached to nothing until a run gives it its group on stdin), so it loads while Node loads
 * ~180 modules and reads the policy; KernelRecordProcess.start then takes it. This module imports
 * only Node's own modules, so requiring it costs nothing measurable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';

const EARLY = Symbol.for('capulator.kernel-record.early');
type Holder = { [EARLY]?: { binary: string; child: ChildProcess } };

/** The command line of a spare (the same for KernelRecordProcess). */
export const SPARE_ARGS = ['serve', '--cgroup', '-', '--events-fd', '3'] as const;

/** The binary: $CAPULATOR_KERNEL_RECORD, else agent/build/capulator-kernel-record; undefined when not built. */
export function kernelRecordBinary(repo: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const p = env.CAPULATOR_KERNEL_RECORD && env.CAPULATOR_KERNEL_RECORD !== '' ? env.CAPULATOR_KERNEL_RECORD : join(repo, 'agent', 'build', 'capulator-kernel-record');
  return existsSync(p) ? p : undefined;
}

/**
 * Starts a spare now, for a run of this process to take. It keeps nothing alive: if no run takes
 * it, it ends with this process (PR_SET_PDEATHSIG).
 */
export function startKernelRecordEarly(repo: string): void {
  const binary = kernelRecordBinary(repo);
  if (!binary || !existsSync('/sys/fs/cgroup/unified/cgroup.procs') && !existsSync('/sys/fs/cgroup/cgroup.procs')) return;
  const child = spawn(binary, [...SPARE_ARGS], { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], detached: true });
  child.on('error', () => undefined);
  child.unref();
  for (const s of [child.stdin, child.stderr, child.stdio[3]]) (s as Socket | null)?.unref?.();
  (globalThis as Holder)[EARLY] = { binary, child };
}

/** The spare started early for `binary`, once (a later call gets nothing); its streams count again. */
export function takeEarlyKernelRecord(binary: string): ChildProcess | undefined {
  const h = (globalThis as Holder)[EARLY];
  if (!h || h.binary !== binary) return undefined;
  delete (globalThis as Holder)[EARLY];
  const c = h.child;
  if (c.exitCode !== null || c.signalCode !== null) return undefined;
  for (const s of [c.stdin, c.stderr, c.stdio[3]]) (s as Socket | null)?.ref?.();
  return c;
}
