import type { RunStatus, RunSummary } from '@capulator/events';

/** A run as the API shows it (HTTP and gRPC), from libs/events' run summary. */
export interface RunView {
  id: string;
  status: RunStatus;
  image: string;
  imageDigest?: string;
  command: string[];
  policy: { name: string; version: number; hash: string } | null;
  learn: boolean;
  counts: { allow: number; deny: number; emulate: number };
  exitCode?: number | null;
  signal?: string | null;
  reason?: string;
  stage?: string;
  lostEvents?: number;
  requestedAt: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  position: number;
}

export function toRunView(s: RunSummary): RunView {
  const v: RunView = {
    id: s.runId,
    status: s.status,
    image: s.image ?? '',
    command: s.command,
    policy: s.policy,
    learn: s.learn,
    counts: { ...s.counts },
    requestedAt: s.requestedAt ?? '',
    position: s.lastPosition,
  };
  if (s.imageDigest) v.imageDigest = s.imageDigest;
  if (s.startedAt) v.startedAt = s.startedAt;
  if (s.status === 'exited') {
    v.exitCode = s.exitCode;
    v.signal = s.signal;
    if (s.durationMs !== null) v.durationMs = s.durationMs;
    if (s.lostEvents > 0) v.lostEvents = s.lostEvents;
  }
  if (s.status === 'failed') {
    if (s.failReason) v.reason = s.failReason;
    if (s.failStage) v.stage = s.failStage;
  }
  if (s.endedAt) v.endedAt = s.endedAt;
  return v;
}

export function isTerminal(status: RunStatus): boolean {
  return status === 'exited' || status === 'failed';
}
