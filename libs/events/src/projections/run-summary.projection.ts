import type { DecisionOutcome, EventTypes, PolicyRef, StoredEvent } from '../contracts';

export type RunStatus = 'queued' | 'running' | 'exited' | 'failed';

/** The runs read model: one summary per run, folded from its stream. */
export interface RunSummary {
  runId: string;
  status: RunStatus;
  image: string | null;
  imageDigest: string | null;
  command: string[];
  learn: boolean;
  policy: PolicyRef | null;
  uid: number | null;
  gid: number | null;
  /**
   * what a program of the run could hold at start (RunStarted's bounding set: the container-wide
   * grants and the per-program file capabilities; for root without per-program grants, its permitted set)
   */
  permitted: string[] | null;
  /** capabilities of the privileged operations the run was allowed to perform (sorted) */
  capabilitiesUsed: string[];
  requestedAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
  exitCode: number | null;
  signal: string | null;
  counts: { allow: number; deny: number; emulate: number };
  /** highest decision seq received */
  lastSeq: number;
  /** decision seqs skipped in the stream as received (gaps seen by the projection) */
  seqGaps: number;
  lostEvents: number;
  lostReason: string | null;
  failReason: string | null;
  failStage: string | null;
  lastPosition: number;
  /** set when the kernel's OOM killer ended the run (RunExited.oomKilled) */
  oomKilled?: true;
  /** names of the files kept after the run (RunExited.artifacts, e.g. core) */
  artifacts?: string[];
  /** set when the run was requested with -i (its stdin is what clients send) / -t (a terminal) */
  interactive?: true;
  tty?: true;
  /** the token that submitted the run (RunRequested.requestedBy), when a gateway took it */
  requestedBy?: string;
}

export function initialRunSummary(runId: string): RunSummary {
  return {
    runId, status: 'queued', image: null, imageDigest: null, command: [], learn: false, policy: null, uid: null, gid: null,
    permitted: null, capabilitiesUsed: [], requestedAt: null, startedAt: null, endedAt: null, durationMs: null, exitCode: null, signal: null,
    counts: { allow: 0, deny: 0, emulate: 0 }, lastSeq: 0, seqGaps: 0, lostEvents: 0, lostReason: null, failReason: null,
    failStage: null, lastPosition: 0,
  };
}

export const DECISION_TYPES = ['CapabilitiesQueried', 'CapabilitiesChangeRequested', 'PrivilegeChecked'] as const;
export const isDecisionType = (t: string): t is (typeof DECISION_TYPES)[number] =>
  t === 'PrivilegeChecked' || t === 'CapabilitiesQueried' || t === 'CapabilitiesChangeRequested';

/** The run id an event belongs to, or null for events of other streams. */
export function runIdOf(e: StoredEvent): string | null {
  const p = e.payload as { runId?: unknown };
  return e.streamId.startsWith('run-') && typeof p?.runId === 'string' ? p.runId : null;
}

/**
 * Pure: the next summary after `e`. Idempotent by position: an event at or before
 * `lastPosition` leaves the state unchanged (the same object is returned).
 */
export function evolveRunSummary(state: RunSummary | undefined, e: StoredEvent): RunSummary | undefined {
  const runId = runIdOf(e);
  if (runId === null) return state;
  const s0 = state ?? initialRunSummary(runId);
  if (e.position <= s0.lastPosition) return s0;
  const s: RunSummary = { ...s0, counts: { ...s0.counts }, lastPosition: e.position };
  switch (e.type) {
    case 'RunRequested': {
      const p = e.payload as EventTypes['RunRequested'];
      s.image = p.image;
      s.command = [...p.command, ...(p.args ?? [])];
      s.learn = p.learn;
      s.policy = p.policy;
      if (p.workload?.interactive === true) s.interactive = true;
      if (p.workload?.tty === true) s.tty = true;
      if (typeof p.requestedBy === 'string') s.requestedBy = p.requestedBy;
      s.requestedAt = e.at;
      break;
    }
    case 'RunStarted': {
      const p = e.payload as EventTypes['RunStarted'];
      s.status = s.status === 'queued' ? 'running' : s.status;
      s.imageDigest = p.imageDigest;
      s.uid = p.user.uid;
      s.gid = p.user.gid;
      s.permitted = p.capabilities.bounding.slice();
      s.policy = p.policy;
      s.startedAt = e.at;
      break;
    }
    case 'CapabilitiesQueried':
    case 'CapabilitiesChangeRequested':
    case 'PrivilegeChecked': {
      const p = e.payload as EventTypes['PrivilegeChecked'];
      if (p.source === 'kernel') {
        // a check seen by the kernel record: not an agent decision (no count, no seq of its own)
        if (p.kernel?.result === 'granted' && p.capability && !s.capabilitiesUsed.includes(p.capability)) s.capabilitiesUsed = [...s.capabilitiesUsed, p.capability].sort();
        break;
      }
      s.counts[p.decision as DecisionOutcome]++;
      if (p.decision === 'allow' && p.capability && !s.capabilitiesUsed.includes(p.capability)) s.capabilitiesUsed = [...s.capabilitiesUsed, p.capability].sort();
      if (p.seq > s.lastSeq + 1) s.seqGaps += p.seq - s.lastSeq - 1;
      if (p.seq > s.lastSeq) s.lastSeq = p.seq;
      break;
    }
    case 'RunExited': {
      // one terminal event per run: a stream written before the decider may hold a second one
      if (s.status === 'exited' || s.status === 'failed') return { ...s0, lastPosition: e.position };
      const p = e.payload as EventTypes['RunExited'];
      s.status = 'exited';
      s.exitCode = p.exitCode;
      s.signal = p.signal;
      s.durationMs = p.durationMs;
      s.endedAt = e.at;
      s.lostEvents = Math.max(p.lostEvents ?? 0, s.seqGaps);
      s.lostReason = p.lostReason ?? (s.seqGaps > 0 ? `${s.seqGaps} decision seq numbers missing in the stream` : null);
      if (p.oomKilled) s.oomKilled = true;
      if (p.artifacts?.length) s.artifacts = p.artifacts.map((a) => a.name);
      break;
    }
    case 'RunFailed': {
      if (s.status === 'exited' || s.status === 'failed') return { ...s0, lastPosition: e.position };
      const p = e.payload as EventTypes['RunFailed'];
      s.status = 'failed';
      s.failReason = p.reason;
      s.failStage = p.stage;
      s.endedAt = e.at;
      if (p.exitCode !== undefined) s.exitCode = p.exitCode;
      if (p.signal !== undefined) s.signal = p.signal;
      if (p.durationMs !== undefined) s.durationMs = p.durationMs;
      s.lostEvents = Math.max(p.lostEvents ?? 0, s.seqGaps);
      s.lostReason = p.lostReason ?? (s.seqGaps > 0 ? `${s.seqGaps} decision seq numbers missing in the stream` : null);
      break;
    }
    case 'RunRecordCompleted': {
      // decisions recovered after the end (they were counted above as they came): what is still lost
      const p = e.payload as EventTypes['RunRecordCompleted'];
      s.lostEvents = p.lostEvents;
      s.lostReason = p.lostReason ?? null;
      break;
    }
    default:
      return s0;
  }
  return s;
}
