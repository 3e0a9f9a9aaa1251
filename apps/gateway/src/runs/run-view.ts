import type { RunStatus, RunSummary } from '@capulator/events';
import type { RunView, RunViewStatus } from '../api-shapes';

export type { RunView } from '../api-shapes';
// the API's status names are libs/events' run statuses, both ways
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const statusesAgree: Same<RunStatus, RunViewStatus> = true;
void statusesAgree;

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
  if (s.requestedBy) v.requestedBy = s.requestedBy;
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
