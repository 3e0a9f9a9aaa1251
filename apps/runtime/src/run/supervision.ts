import { closeSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RunFailureStage } from '@capulator/events';

/**
 * The files of a run directory that make it recoverable (docs/events.md "Runs that outlive
 * their runtime"): `supervisor.json` names the process supervising the run, and exists from the
 * run's start until its end is recorded; the agent appends its decisions to `decisions.spool`
 * and keeps its count in `decisions.count`.
 */
export const SUPERVISOR_FILE = 'supervisor.json';
export const SPOOL_FILE = 'decisions.spool';
export const COUNT_FILE = 'decisions.count';
/** Why a supervisor left its run to recovery (an audit failure: the store could not take the rest). */
export const FAILURE_FILE = 'failure.json';

export interface Supervisor {
  /** the supervising process (a `capulator run` or `capulator serve`), with its start time */
  pid: number;
  start: string;
  runId: string;
  containerId: string;
  runc: string;
  runcRoot: string;
  rootfs: string;
  agent?: { pid: number; start: string };
  startedAt: string;
}

/** Start time of a process (field 22 of /proc/PID/stat), or undefined when it does not exist. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function alive(p: { pid: number; start: string }): boolean {
  return p.pid > 0 && processStart(p.pid) === p.start;
}

/** This process as a supervisor. */
export function thisProcess(): { pid: number; start: string } {
  return { pid: process.pid, start: processStart(process.pid) ?? '' };
}

/** Bytes reserved for failure.json when the run starts: giving the run up must not need space. */
const FAILURE_ROOM = 1024;

/** Writes (atomically replaces) the run's supervisor file; the first time, also reserves failure.json. */
export function writeSupervisor(dir: string, s: Supervisor): void {
  const tmp = join(dir, `.${SUPERVISOR_FILE}.tmp`);
  writeFileSync(tmp, JSON.stringify(s) + '\n', { mode: 0o600 });
  renameSync(tmp, join(dir, SUPERVISOR_FILE));
  if (!s.agent) writeFileSync(join(dir, FAILURE_FILE), ' '.repeat(FAILURE_ROOM), { mode: 0o600 });
}

/** The run's end is recorded: nobody needs to recover it. */
export function releaseSupervisor(dir: string): void {
  rmSync(join(dir, SUPERVISOR_FILE), { force: true });
}

/**
 * The supervisor gives the run up to recovery (its record could not be written): the next
 * `capulator` command or `serve` start finishes it once the store takes events again.
 */
export function orphanRun(dir: string, failure: { stage: RunFailureStage; reason: string }): void {
  // written over the room reserved at the start: no allocation on a full disk
  const text = Buffer.from(JSON.stringify(failure).slice(0, FAILURE_ROOM));
  const fd = openSync(join(dir, FAILURE_FILE), 'r+');
  try {
    writeSync(fd, Buffer.concat([text, Buffer.alloc(FAILURE_ROOM - text.length, ' ')]), 0, FAILURE_ROOM, 0);
  } finally {
    closeSync(fd);
  }
}

/** Why the supervisor gave the run up (failure.json, blank while it has not). */
export function readFailure(dir: string): { stage: RunFailureStage; reason: string } | undefined {
  try {
    const text = readFileSync(join(dir, FAILURE_FILE), 'utf8').trim();
    return text ? (JSON.parse(text) as { stage: RunFailureStage; reason: string }) : undefined;
  } catch {
    return undefined;
  }
}

export function readSupervisor(dir: string): Supervisor | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, SUPERVISOR_FILE), 'utf8')) as Supervisor;
  } catch {
    return undefined;
  }
}

/**
 * Runs whose supervisor is gone (or gave them up): a quick scan of runs/, one readdir plus a
 * read of /proc per run in progress. Kept run directories (`--keep`) have no supervisor file.
 */
export function orphanedRuns(runsDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(runsDir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const s = readSupervisor(join(runsDir, n));
    if (s && (!alive(s) || readFailure(join(runsDir, n)))) out.push(n);
  }
  return out;
}

