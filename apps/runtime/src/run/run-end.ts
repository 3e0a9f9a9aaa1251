import type { NewEvent, RunFailureStage } from '@capulator/events';

/** How a run ended, as the runtime (or the recovery of an orphaned run) knows it. */
export interface RunEnd {
  runId: string;
  exitCode: number | null;
  signal: string | null;
  failure?: { stage: RunFailureStage; reason: string };
  counts: { allow: number; deny: number; emulate: number };
  lostEvents: number;
  lostReason?: string;
  durationMs: number;
}

/**
 * The events that close a run: the one place that writes them (the CLI, the daemon and the
 * recovery of orphaned runs call it). The lifecycle decider (issue 12 part B) replaces it.
 */
export function runEndEvents(end: RunEnd, at: string): NewEvent[] {
  const out: NewEvent[] = [];
  if (end.failure) out.push({ type: 'RunFailed', at, payload: { runId: end.runId, reason: end.failure.reason, stage: end.failure.stage } });
  out.push({
    type: 'RunExited',
    at,
    payload: {
      runId: end.runId,
      exitCode: end.exitCode,
      signal: end.signal,
      counts: end.counts,
      lostEvents: end.lostEvents,
      ...(end.lostEvents > 0 ? { lostReason: end.lostReason ?? 'the agent dropped events (recorder too slow) or died' } : {}),
      durationMs: end.durationMs,
    },
  });
  return out;
}
