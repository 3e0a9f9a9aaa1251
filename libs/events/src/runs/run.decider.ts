import type { CapabilitySets, EventTypes, NewEvent, StoredEvent } from '../contracts';

/**
 * The run lifecycle: one pure decider (emmett style) for the stream `run-<id>`. Every writer of
 * run events — `capulator run` (cold and on the run socket), the gateway, the in-process executor,
 * the Kafka runtime workers, recovery — is a shell that loads the state (fold `evolve` over the
 * stream), calls `decide`, and appends what it returns with the expected version it read.
 *
 *   RequestRun → RunRequested          (only on an empty stream: a run id is used once)
 *   ClaimRun   → RunClaimed            (requested, not yet claimed or started)
 *   StartRun   → RunStarted            (requested or claimed; records the sets the host granted)
 *   RecordDecisions → the agent's decision events, untouched (any open state after RunRequested)
 *   ExitRun    → RunExited             (started)
 *   FailRun    → RunFailed             (any open state; keeps the reason and the stage)
 *   RecoverDecisions → decision events (ended runs only: a dead runtime's spool, found after
 *                      someone else closed the run), then CompleteRecord → RunRecordCompleted
 *
 * Exactly one terminal event per run: an ended run (exited or failed) accepts no further
 * lifecycle event; `decide` throws RunLifecycleError, which writers that only want to close an
 * open run (`failIfOpen`) check for with `isEnded` first.
 */

export type FailStage = EventTypes['RunFailed']['stage'];
type DecisionEvent = NewEvent<'CapabilitiesQueried' | 'CapabilitiesChangeRequested' | 'PrivilegeChecked'>;

export type RunCommand =
  | { type: 'RequestRun'; at: string; request: EventTypes['RunRequested'] }
  | { type: 'ClaimRun'; at: string; worker: string }
  | {
      type: 'StartRun';
      at: string;
      imageDigest: string;
      user: { uid: number; gid: number };
      /** the sets the host actually granted (the runner's StartedInfo), not the requested ones */
      granted: CapabilitySets;
      /** for each requested capability, the rules that granted it; capabilities not granted are dropped */
      provenance: Record<string, string[]>;
      policy: EventTypes['RunStarted']['policy'];
      pid: number;
      /** which mechanisms record and enforce the run (the runner's StartedInfo) */
      mechanisms?: EventTypes['RunStarted']['mechanisms'];
    }
  | { type: 'RecordDecisions'; events: DecisionEvent[] }
  | { type: 'ExitRun'; at: string; exit: Omit<EventTypes['RunExited'], 'runId'> }
  | { type: 'FailRun'; at: string; stage: FailStage; reason: string; end?: RunEnd }
  | { type: 'RecoverDecisions'; events: DecisionEvent[] }
  | { type: 'CompleteRecord'; at: string; recovered: number; lostEvents: number; lostReason?: string };

/** What is known of how the container ended when a run failed after it started (optional). */
export type RunEnd = Pick<EventTypes['RunFailed'], 'exitCode' | 'signal' | 'counts' | 'lostEvents' | 'lostReason' | 'durationMs'>;

export type RunPhase = 'none' | 'requested' | 'claimed' | 'running' | 'exited' | 'failed';

export interface RunState {
  runId: string;
  phase: RunPhase;
  /** the stream version of the last event folded (0: no stream) — the expected version of the next append */
  version: number;
  claimant: string | null;
  /** why and where a failed run failed */
  failure: { stage: FailStage; reason: string } | null;
}

export const initialRunState = (runId: string): RunState => ({ runId, phase: 'none', version: 0, claimant: null, failure: null });

export const isEnded = (s: RunState): boolean => s.phase === 'exited' || s.phase === 'failed';

export type RunLifecycleErrorCode = 'RUN_EXISTS' | 'NO_RUN' | 'RUN_ENDED' | 'ILLEGAL';

/** A command the run's state does not allow; nothing is appended. */
export class RunLifecycleError extends Error {
  constructor(readonly code: RunLifecycleErrorCode, readonly runId: string, message: string) {
    super(message);
    this.name = 'RunLifecycleError';
  }
}

const DECISIONS = new Set(['CapabilitiesQueried', 'CapabilitiesChangeRequested', 'PrivilegeChecked']);

function refuse(s: RunState, cmd: RunCommand): never {
  if (s.phase === 'none') throw new RunLifecycleError('NO_RUN', s.runId, `run ${s.runId} was never requested (${cmd.type})`);
  if (isEnded(s)) throw new RunLifecycleError('RUN_ENDED', s.runId, `run ${s.runId} has already ${s.phase === 'exited' ? 'exited' : 'failed'}; ${cmd.type} refused`);
  throw new RunLifecycleError('ILLEGAL', s.runId, `run ${s.runId} is ${s.phase}; ${cmd.type} refused`);
}

/** Pure: the events a command produces in a state, or RunLifecycleError. */
export function decide(cmd: RunCommand, s: RunState): NewEvent[] {
  const runId = s.runId;
  switch (cmd.type) {
    case 'RequestRun':
      if (s.phase !== 'none') throw new RunLifecycleError('RUN_EXISTS', runId, `run ${runId} already exists`);
      if (cmd.request.runId !== runId) throw new RunLifecycleError('ILLEGAL', runId, `RequestRun for ${cmd.request.runId} on the stream of ${runId}`);
      return [{ type: 'RunRequested', at: cmd.at, payload: cmd.request }];
    case 'ClaimRun':
      if (s.phase !== 'requested') refuse(s, cmd);
      return [{ type: 'RunClaimed', at: cmd.at, payload: { runId, worker: cmd.worker } }];
    case 'StartRun': {
      if (s.phase !== 'requested' && s.phase !== 'claimed') refuse(s, cmd);
      const g = cmd.granted;
      const granted = new Set([...g.bounding, ...g.permitted, ...g.effective, ...g.inheritable, ...g.ambient]);
      const provenance: Record<string, string[]> = {};
      for (const [cap, rules] of Object.entries(cmd.provenance)) if (granted.has(cap)) provenance[cap] = rules.slice();
      return [{ type: 'RunStarted', at: cmd.at, payload: { runId, imageDigest: cmd.imageDigest, user: cmd.user, capabilities: g, provenance, policy: cmd.policy, pid: cmd.pid, ...(cmd.mechanisms ? { mechanisms: cmd.mechanisms } : {}) } }];
    }
    case 'RecordDecisions':
    case 'RecoverDecisions':
      // decisions go to an open run; only recovery adds them to one that has ended
      if (s.phase === 'none' || isEnded(s) !== (cmd.type === 'RecoverDecisions')) refuse(s, cmd);
      for (const e of cmd.events) {
        if (!DECISIONS.has(e.type)) throw new RunLifecycleError('ILLEGAL', runId, `${cmd.type}: ${e.type} is not a decision event`);
      }
      return cmd.events;
    case 'CompleteRecord':
      if (!isEnded(s)) throw new RunLifecycleError('ILLEGAL', runId, `run ${runId} has not ended; CompleteRecord refused`);
      return [{ type: 'RunRecordCompleted', at: cmd.at, payload: { runId, recovered: cmd.recovered, lostEvents: cmd.lostEvents, ...(cmd.lostReason ? { lostReason: cmd.lostReason } : {}) } }];
    case 'ExitRun':
      if (s.phase !== 'running') refuse(s, cmd);
      return [{ type: 'RunExited', at: cmd.at, payload: { runId, ...cmd.exit } }];
    case 'FailRun':
      if (s.phase === 'none' || isEnded(s)) refuse(s, cmd);
      return [{ type: 'RunFailed', at: cmd.at, payload: { runId, reason: cmd.reason, stage: cmd.stage, ...(cmd.end ?? {}) } }];
  }
}

/** Pure: the state after one event of the run's stream (decision events change only the version). */
export function evolve(s: RunState, e: Pick<StoredEvent, 'type' | 'payload'> & { streamVersion?: number }): RunState {
  const version = e.streamVersion ?? s.version + 1;
  switch (e.type) {
    case 'RunRequested':
      return { ...s, phase: 'requested', version };
    case 'RunClaimed':
      return { ...s, phase: s.phase === 'requested' ? 'claimed' : s.phase, claimant: (e.payload as EventTypes['RunClaimed']).worker, version };
    case 'RunStarted':
      return { ...s, phase: isEnded(s) ? s.phase : 'running', version };
    case 'RunExited':
      return { ...s, phase: isEnded(s) ? s.phase : 'exited', version };
    case 'RunFailed': {
      if (isEnded(s)) return { ...s, version };
      const p = e.payload as EventTypes['RunFailed'];
      return { ...s, phase: 'failed', failure: { stage: p.stage, reason: p.reason }, version };
    }
    default:
      return s.version === version ? s : { ...s, version };
  }
}

/** Folds events (e.g. a stream read from the store) into the state. */
export function foldRun(runId: string, events: Iterable<Pick<StoredEvent, 'type' | 'payload'> & { streamVersion?: number }>): RunState {
  let s = initialRunState(runId);
  for (const e of events) s = evolve(s, e);
  return s;
}

/** How the runner ended a run, as the one command that records it (RunExited, or RunFailed with its stage). */
export interface RunOutcome {
  status: 'exited' | 'failed';
  exitCode: number | null;
  signal: string | null;
  failure?: { stage: FailStage; reason: string };
  counts: { allow: number; deny: number; emulate: number };
  lostEvents: number;
  durationMs: number;
  /** the kernel's OOM killer ended the run (RunExited.oomKilled) */
  oomKilled?: boolean;
  /** files kept after the run, e.g. a core dump (RunExited.artifacts) */
  artifacts?: Array<{ name: string; bytes: number; source?: string }>;
}

export const LOST_REASON = 'decision events the agent numbered did not reach the store (the recorder fell behind or the agent died)';

export function endCommand(r: RunOutcome, at: string): RunCommand {
  const end = {
    exitCode: r.exitCode,
    signal: r.signal,
    counts: r.counts,
    lostEvents: r.lostEvents,
    ...(r.lostEvents > 0 ? { lostReason: LOST_REASON } : {}),
    durationMs: r.durationMs,
  };
  if (r.status === 'failed') return { type: 'FailRun', at, stage: r.failure?.stage ?? 'runtime', reason: r.failure?.reason ?? 'the run failed', end };
  const kept = {
    ...(r.oomKilled ? { oomKilled: true } : {}),
    ...(r.artifacts?.length ? { artifacts: r.artifacts.map((a) => ({ name: a.name, bytes: a.bytes, ...(a.source ? { source: a.source } : {}) })) } : {}),
  };
  return { type: 'ExitRun', at, exit: { ...end, ...kept } };
}
