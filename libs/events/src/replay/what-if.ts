import type Database from 'better-sqlite3';
import type { DecisionOutcome, DecisionPayload } from '../contracts';
import type { RunSummary } from '../projections/run-summary.projection';

/** A recorded request as handed to the policy under test (the shape of @capulator/policy's DecisionRequest). */
export interface ReplayRequest {
  syscall: string;
  args: DecisionPayload['args'];
  /** set when the recorded check named exactly one privilege; otherwise the evaluator classifies syscall+args */
  privilege?: string;
  exe: string;
  uid: number;
  gid: number;
  image?: string;
  arch?: DecisionPayload['arch'];
}

/** The policy a what-if replay evaluates against (the CLI adapts @capulator/policy to this). */
export interface PolicyUnderTest {
  evaluate(request: ReplayRequest): { decision: DecisionOutcome; ruleId: string | null };
  /** the permitted set a container of this uid/gid/image would start with */
  startCapabilities(container: { uid: number; gid: number; image?: string }): string[];
}

export interface DecisionChange {
  kind: 'decision';
  position: number;
  runId: string;
  seq: number;
  exe: string;
  syscall: string;
  privileges: string[];
  old: { decision: DecisionOutcome; ruleId: string | null };
  new: { decision: DecisionOutcome; ruleId: string | null };
  /** something allowed (or emulated) before would now be denied */
  regression: boolean;
}

export interface CapabilityChange {
  kind: 'capabilities';
  runId: string;
  /** capabilities granted at start before and not now */
  lost: string[];
  gained: string[];
  /** lost capabilities the run actually used (an allowed decision needing them): these would now fail */
  usedLost: string[];
  regression: boolean;
}

export type WhatIfChange = DecisionChange | CapabilityChange;

export interface WhatIfSummary {
  decisions: number;
  distinctRequests: number;
  changed: number;
  /** same decision, different rule */
  ruleOnly: number;
  regressions: number;
  relaxed: number;
  runs: number;
  capabilityChanges: number;
  capabilityRegressions: number;
}

export interface WhatIfFilter {
  runIds?: string[];
  /** ISO time: decisions at or after, runs started at or after */
  since?: string;
}

const SEVERITY: Record<DecisionOutcome, number> = { allow: 0, emulate: 1, deny: 2 };

/**
 * What-if replay over the decisions read model (catch the projector up first): every recorded
 * privilege check and capset decision is evaluated under `policy`, each distinct request once
 * (a bounded cache), then each run's start-time capability computation. Streams rows in position
 * order; memory does not grow with the number of events. Never publishes or appends anything.
 */
export function whatIf(db: Database.Database, policy: PolicyUnderTest, filter: WhatIfFilter, onChange: (c: WhatIfChange) => void): WhatIfSummary {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.runIds?.length) {
    where.push(`run_id IN (${filter.runIds.map(() => '?').join(',')})`);
    params.push(...filter.runIds);
  }
  if (filter.since) {
    where.push('at >= ?');
    params.push(filter.since);
  }
  const rows = db
    .prepare(`SELECT position, run_id, seq, req_id, decision, rule_id FROM rm_decisions ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY position`)
    .raw();
  const reqStmt = db.prepare('SELECT syscall, args, privileges, exe, uid, gid, image, arch FROM rm_requests WHERE id = ?').raw();
  const results = new Map<number, { decision: DecisionOutcome; ruleId: string | null }>();
  const requests = new Map<number, { exe: string; syscall: string; privileges: string[] }>();
  let distinct = 0;
  const sum: WhatIfSummary = { decisions: 0, distinctRequests: 0, changed: 0, ruleOnly: 0, regressions: 0, relaxed: 0, runs: 0, capabilityChanges: 0, capabilityRegressions: 0 };
  const requestOf = (id: number) => {
    let r = requests.get(id);
    if (!r) {
      const [syscall, args, privileges, exe, uid, gid, image, arch] = reqStmt.get(id) as [string, string, string, string, number, number, string | null, string | null];
      const privs = JSON.parse(privileges) as string[];
      r = { exe, syscall, privileges: privs, req: { syscall, args: JSON.parse(args), privilege: privs.length === 1 ? privs[0] : undefined, exe, uid, gid, image: image ?? undefined, arch: (arch ?? undefined) as ReplayRequest['arch'] } } as any;
      if (requests.size >= 50_000) requests.clear();
      requests.set(id, r!);
    }
    return r as { exe: string; syscall: string; privileges: string[]; req: ReplayRequest };
  };
  for (const row of rows.iterate(...params) as IterableIterator<[number, string, number, number, DecisionOutcome, string | null]>) {
    sum.decisions++;
    const reqId = row[3];
    let res = results.get(reqId);
    if (res === undefined) {
      distinct++;
      res = policy.evaluate(requestOf(reqId).req);
      if (results.size >= 200_000) results.clear();
      results.set(reqId, res);
    }
    const oldDecision = row[4];
    if (res.decision === oldDecision) {
      if (res.ruleId !== row[5]) sum.ruleOnly++;
      continue;
    }
    sum.changed++;
    const regression = oldDecision !== 'deny' && res.decision === 'deny';
    if (regression) sum.regressions++;
    else if (SEVERITY[res.decision] < SEVERITY[oldDecision]) sum.relaxed++;
    const r = requestOf(reqId);
    onChange({
      kind: 'decision', position: row[0], runId: row[1], seq: row[2], exe: r.exe, syscall: r.syscall, privileges: r.privileges,
      old: { decision: oldDecision, ruleId: row[5] }, new: { decision: res.decision, ruleId: res.ruleId }, regression,
    });
  }
  sum.distinctRequests = distinct;

  // Start-time capability computation, run by run.
  const runWhere: string[] = [];
  const runParams: unknown[] = [];
  if (filter.runIds?.length) {
    runWhere.push(`run_id IN (${filter.runIds.map(() => '?').join(',')})`);
    runParams.push(...filter.runIds);
  }
  if (filter.since) {
    runWhere.push('started_at >= ?');
    runParams.push(filter.since);
  }
  const usedStmt = db
    .prepare(
      "SELECT DISTINCT r.capability FROM rm_decisions d JOIN rm_requests r ON r.id = d.req_id WHERE d.run_id = ? AND d.decision = 'allow' AND r.capability IS NOT NULL",
    )
    .pluck();
  const runRows = db.prepare(`SELECT summary FROM rm_runs ${runWhere.length ? 'WHERE ' + runWhere.join(' AND ') : ''} ORDER BY run_id`).pluck();
  for (const json of runRows.iterate(...runParams) as IterableIterator<string>) {
    const s = JSON.parse(json) as RunSummary;
    if (!s.permitted || s.uid === null || s.gid === null) continue;
    sum.runs++;
    const now = new Set(policy.startCapabilities({ uid: s.uid, gid: s.gid, image: s.image ?? s.imageDigest ?? undefined }));
    const before = new Set(s.permitted);
    const lost = [...before].filter((c) => !now.has(c)).sort();
    const gained = [...now].filter((c) => !before.has(c)).sort();
    if (!lost.length && !gained.length) continue;
    const used = new Set(usedStmt.all(s.runId) as string[]);
    const usedLost = lost.filter((c) => used.has(c));
    const regression = usedLost.length > 0;
    sum.capabilityChanges++;
    if (regression) sum.capabilityRegressions++;
    onChange({ kind: 'capabilities', runId: s.runId, lost, gained, usedLost, regression });
  }
  return sum;
}

/** Exit status of a what-if: 0 nothing allowed before would be denied, 1 something would. */
export const whatIfExitCode = (s: WhatIfSummary) => (s.regressions + s.capabilityRegressions > 0 ? 1 : 0);
