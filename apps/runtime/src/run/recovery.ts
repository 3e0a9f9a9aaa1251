import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decide, evolve, expectedVersionOf, initialRunState, isEnded, runStream, type EventStore, type RunFailureStage, type RunState } from '@capulator/events';
import { parseDecisionLine, readCountFile, SpoolTail, type AgentExit } from './agent-process';
import { alive, COUNT_FILE, orphanedRuns, readFailure, readSupervisor, SPOOL_FILE, thisProcess } from './supervision';
import { releaseNetwork } from './network';

const CLAIM_FILE = 'recovering';

export interface Recovered {
  runId: string;
  /** decision events appended now (the rest were stored before the supervisor died) */
  ingested: number;
  /** the agent's own count of decisions, and what the store now holds of them */
  decided: number;
  stored: number;
  lostEvents: number;
  failure: { stage: RunFailureStage; reason: string };
  /** false when the run's end was already recorded */
  closed: boolean;
}

/** Takes the recovery of one run, unless another live process has; returns the release function. */
function claim(dir: string): (() => void) | undefined {
  const path = join(dir, CLAIM_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(thisProcess()));
      } catch {
        closeSync(fd);
        rmSync(path, { force: true });
        return undefined;
      }
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return undefined;
      try {
        if (alive(JSON.parse(readFileSync(path, 'utf8')) as { pid: number; start: string })) return undefined;
      } catch {
        /* a claim being written, or a torn one: treat as stale */
      }
      try {
        unlinkSync(path);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** What the store already holds of a run: its lifecycle state, the last decision seq and how many decisions. */
async function storedState(store: EventStore, runId: string): Promise<{ state: RunState; lastSeq: number; stored: number }> {
  let state = initialRunState(runId);
  let lastSeq = 0;
  let stored = 0;
  for await (const e of store.readStream(runStream(runId))) {
    state = evolve(state, e);
    if (e.type === 'PrivilegeChecked' || e.type === 'CapabilitiesQueried' || e.type === 'CapabilitiesChangeRequested') {
      stored++;
      const seq = (e.payload as { seq?: number }).seq ?? 0;
      if (seq > lastSeq) lastSeq = seq;
    }
  }
  return { state, lastSeq, stored };
}

/**
 * Finishes one orphaned run: stops its container, lets its agent write its trailer, appends what
 * the spool holds beyond what the store has (by seq: idempotent), records its end as failed,
 * unmounts its overlay and removes its directory. Throws when the store cannot be written; the
 * run is then left for the next attempt.
 */
export async function recoverRun(dir: string, store: EventStore): Promise<Recovered | undefined> {
  const release = claim(dir);
  if (!release) return undefined;
  try {
    const s = readSupervisor(dir);
    if (!s || (alive(s) && !readFailure(dir))) return undefined;
    // the container: the agent stopped it when its runtime went away; make sure of it
    const runc = (...args: string[]) => spawnSync(s.runc, ['--root', s.runcRoot, ...args], { stdio: 'ignore' });
    if (existsSync(join(s.runcRoot, s.containerId))) runc('kill', '--all', s.containerId, 'KILL');
    // the agent ends once every process of the container is gone, after writing its trailer
    if (s.agent) {
      const deadline = Date.now() + 10_000;
      while (alive(s.agent) && Date.now() < deadline) sleep(20);
      if (alive(s.agent)) process.kill(s.agent.pid, 'SIGKILL');
    }
    if (existsSync(join(s.runcRoot, s.containerId))) runc('delete', '-f', s.containerId);
    // its bridge address, port mappings and netns (network.ts; nothing when it had none)
    releaseNetwork(dir);

    const failure = readFailure(dir) ?? { stage: 'runtime' as const, reason: `supervisor died (pid ${s.pid})` };
    const have = await storedState(store, s.runId);
    const spool = readSpool(join(dir, SPOOL_FILE));
    const count = readCountFile(join(dir, COUNT_FILE));
    const decided = spool.exit?.events ?? count?.decided ?? spool.decisions.length;
    // through the run's decider, each append with the version read: a run that was never
    // requested (its first event could not be written) or has ended takes no more events
    let state = have.state;
    const open = state.phase !== 'none' && !isEnded(state);
    // a run someone else closed meanwhile (another Kafka worker recorded it "worker lost") still
    // takes the spool's decisions, after its end, followed by RunRecordCompleted
    const late = !open && isEnded(state);
    const pending = open || late ? spool.decisions.filter((d) => d.seq > have.lastSeq) : [];
    const append = async (cmd: Parameters<typeof decide>[0]) => {
      const stored = await store.append(runStream(s.runId), expectedVersionOf(state.version), decide(cmd, state));
      state = stored.reduce(evolve, state);
    };
    const type = open ? 'RecordDecisions' : 'RecoverDecisions';
    for (let i = 0; i < pending.length; i += 1000) await append({ type, events: pending.slice(i, i + 1000).map((d) => d.event) });
    const stored = have.stored + pending.length;
    const lostEvents = Math.max(0, decided - stored);
    const lostReason = 'decided by the agent but never written to its spool (the agent died, or its spool could not be written)';
    if (late && pending.length > 0) {
      await append({ type: 'CompleteRecord', at: new Date().toISOString(), recovered: pending.length, lostEvents, ...(lostEvents > 0 ? { lostReason } : {}) });
    }
    if (open) {
      const counts = { allow: 0, deny: 0, emulate: 0 };
      for (const d of spool.decisions) if (d.event.count) counts[d.event.count]++;
      await append({
        type: 'FailRun',
        at: new Date().toISOString(),
        stage: failure.stage,
        reason: failure.reason,
        end: {
          exitCode: null,
          signal: null,
          counts,
          lostEvents,
          ...(lostEvents > 0 ? { lostReason } : {}),
          durationMs: Math.max(0, Date.now() - Date.parse(s.startedAt)),
        },
      });
    }
    // the overlay, then the directory
    if (mountedAt(s.rootfs)) {
      const u = spawnSync('umount', [s.rootfs], { stdio: 'ignore' });
      if (u.status !== 0) spawnSync('umount', ['-l', s.rootfs], { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
    return { runId: s.runId, ingested: pending.length, decided, stored, lostEvents, failure, closed: open };
  } finally {
    if (existsSync(dir)) release();
  }
}

/** Recovers every orphaned run under runsDir; `onError` hears about runs that could not be finished yet. */
export async function recoverOrphans(runsDir: string, store: EventStore, onError: (runId: string, e: Error) => void): Promise<Recovered[]> {
  const out: Recovered[] = [];
  for (const name of orphanedRuns(runsDir)) {
    try {
      const r = await recoverRun(join(runsDir, name), store);
      if (r) out.push(r);
    } catch (e) {
      onError(name, e as Error);
    }
  }
  return out;
}

/** Whether something is mounted at `path` (/proc/mounts escapes spaces and such as octal). */
export function mountedAt(path: string): boolean {
  const mounts = readFileSync('/proc/mounts', 'utf8');
  for (const line of mounts.split('\n')) {
    const target = line.split(' ')[1];
    if (target !== undefined && target.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === path) return true;
  }
  return false;
}

/** The decisions of a spool (whole, well-formed lines only) and its trailer. */
export function readSpool(path: string): { decisions: Array<{ seq: number; event: ReturnType<typeof parseDecisionLine> & object }>; exit?: AgentExit } {
  const tail = new SpoolTail(path);
  const decisions: Array<{ seq: number; event: NonNullable<ReturnType<typeof parseDecisionLine>> }> = [];
  let exit: AgentExit | undefined;
  let partial = '';
  for (let chunk = tail.read(); chunk !== ''; chunk = tail.read()) {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('decision\t')) {
        const d = parseDecisionLine(line);
        const m = d && /^\{"seq":(\d+),/.exec(d.payloadText);
        if (d && m) decisions.push({ seq: Number(m[1]), event: d });
      } else if (line.startsWith('{')) {
        try {
          const msg = JSON.parse(line) as { type?: string };
          if (msg.type === 'exit') exit = msg as AgentExit;
        } catch {
          /* a torn line */
        }
      }
    }
  }
  tail.close();
  return { decisions, exit };
}
