import type { DecisionPayload, StoredEvent } from '../contracts';

/**
 * The decisions read model splits a decision event into the request (what was asked, by whom, in
 * which image — interned, since runs repeat the same few requests) and the record (where, when, what
 * was answered). What-if replay evaluates each distinct request once per policy.
 */
export interface DecisionRequestRecord {
  type: string;
  syscall: string;
  args: DecisionPayload['args'];
  privileges: string[];
  capability: string | null;
  exe: string;
  uid: number;
  gid: number;
  image: string | null;
  arch: DecisionPayload['arch'];
}

export interface DecisionRecord {
  position: number;
  runId: string;
  seq: number;
  at: string;
  decision: DecisionPayload['decision'];
  ruleId: string | null;
  policyName: string;
  policyVersion: number;
  errno: number | null;
  ret: number | null;
  answeredBy: string;
  latencyNs: number;
}

/** Pure: the request and record of a decision event (image from the run's summary). */
export function toDecision(e: StoredEvent, image: string | null): { request: DecisionRequestRecord; record: DecisionRecord } {
  const p = e.payload as DecisionPayload;
  return {
    request: {
      type: e.type,
      syscall: p.syscall,
      args: p.args ?? {},
      privileges: p.privileges ?? [],
      capability: p.capability ?? null,
      exe: p.subject?.exe ?? '',
      uid: p.subject?.uid ?? 0,
      gid: p.subject?.gid ?? 0,
      image,
      arch: p.arch,
    },
    record: {
      position: e.position,
      runId: p.runId,
      seq: p.seq,
      at: p.at ?? e.at,
      decision: p.decision,
      ruleId: p.ruleId ?? null,
      policyName: p.policy?.name ?? '',
      policyVersion: p.policy?.version ?? 0,
      errno: p.errno ?? null,
      ret: p.return ?? null,
      answeredBy: p.answeredBy,
      latencyNs: p.latencyNs ?? 0,
    },
  };
}

/** The interning key of a request: equal requests decide equally under any policy. */
export function requestKey(r: DecisionRequestRecord): string {
  return JSON.stringify([r.type, r.syscall, r.args, r.privileges, r.capability, r.exe, r.uid, r.gid, r.image, r.arch]);
}
