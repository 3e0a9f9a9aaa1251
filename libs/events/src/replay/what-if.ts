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

/** rm_decisions rows written by the seccomp agent (not by the kernel record). */
export const AGENT_ROWS = "(d.answered_by IS NULL OR d.answered_by NOT IN ('granted', 'refused'))";

/** The policy a what-if replay evaluates against (the CLI adapts @capulator/policy to this). */
export interface PolicyUnderTest {
  evaluate(request: ReplayRequest): { decision: DecisionOutcome; ruleId: string | null };
  /** what a program of a container of this uid/gid/image could hold at start (its bounding set) */
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
 * What-if replay over the decisions read model (catch the projector up first). Every recorded
 * privilege check and capset decision gets its outcome under `policy`: each distinct recorded
 * request (program, user, image, syscall, arguments, privileges) is evaluated once — evaluation is
 * pure, so equal requests decide equally — into a temporary table, and SQLite compares every
 * recorded decision with it in one streaming scan, handing back the changes in position order.
 * Then each run's start-time capability computation is redone. Memory grows with the number of
 * distinct requests, not of events. Never publishes or appends anything.
 */
export function whatIf(
  db: Database.Database,
  policy: PolicyUnderTest,
  filter: WhatIfFilter,
  onChange: (c: WhatIfChange) => void,
  progress?: { every: number; onProgress: (decisions: number) => void },
): WhatIfSummary {
  // the agent's decisions only: a kernel-record row (answered_by granted/refused) is a capability
  // check the kernel made, decided by capability (libs/policy capabilityDecision), not a request
  const where: string[] = [AGENT_ROWS];
  const params: unknown[] = [];
  if (filter.runIds?.length) {
    where.push(`d.run_id IN (${filter.runIds.map(() => '?').join(',')})`);
    params.push(...filter.runIds);
  }
  if (filter.since) {
    where.push('d.at >= ?');
    params.push(filter.since);
  }
  const w = where.length ? where.join(' AND ') : '1';
  const sum: WhatIfSummary = { decisions: 0, distinctRequests: 0, changed: 0, ruleOnly: 0, regressions: 0, relaxed: 0, runs: 0, capabilityChanges: 0, capabilityRegressions: 0 };

  // 1. Evaluate each distinct recorded request once (evaluate is pure: equal requests decide equally).
  db.exec('CREATE TEMP TABLE IF NOT EXISTS whatif_results (req_id INTEGER PRIMARY KEY, decision TEXT NOT NULL, rule_id TEXT); DELETE FROM temp.whatif_results;');
  const put = db.prepare('INSERT INTO temp.whatif_results (req_id, decision, rule_id) VALUES (?, ?, ?)');
  const reqs = db
    .prepare(
      `SELECT id, syscall, args, privileges, exe, uid, gid, image, arch FROM rm_requests
       WHERE id IN (SELECT DISTINCT d.req_id FROM rm_decisions d WHERE ${w}) ORDER BY id`,
    )
    .raw();
  const requests = new Map<number, { exe: string; syscall: string; privileges: string[] }>();
  /** the new outcome of each distinct request (as many as distinct requests, not events) */
  const outcomes = new Map<number, { decision: DecisionOutcome; ruleId: string | null }>();
  const pending: Array<[number, string, string | null]> = [];
  const flush = db.transaction(() => {
    for (const r of pending) put.run(r[0], r[1], r[2]);
    pending.length = 0;
  });
  for (const [id, syscall, args, privileges, exe, uid, gid, image, arch] of reqs.iterate(...params) as IterableIterator<
    [number, string, string, string, string, number, number, string | null, string | null]
  >) {
    const privs = JSON.parse(privileges) as string[];
    const req: ReplayRequest = { syscall, args: JSON.parse(args), privilege: privs.length === 1 ? privs[0] : undefined, exe, uid, gid, image: image ?? undefined, arch: (arch ?? undefined) as ReplayRequest['arch'] };
    const res = policy.evaluate(req);
    sum.distinctRequests++;
    outcomes.set(id, res);
    pending.push([id, res.decision, res.ruleId]);
  }
  // written after the iteration: SQLite refuses writes on a connection while a statement iterates
  // (`outcomes` holds every distinct request anyway)
  flush();
  const requestOf = db.prepare('SELECT exe, syscall, privileges FROM rm_requests WHERE id = ?').raw();
  const describe = (id: number) => {
    let r = requests.get(id);
    if (!r) {
      const [exe, syscall, privileges] = requestOf.get(id) as [string, string, string];
      r = { exe, syscall, privileges: JSON.parse(privileges) as string[] };
      if (requests.size >= 50_000) requests.clear();
      requests.set(id, r);
    }
    return r;
  };

  // 2. Compare every recorded decision with its new outcome, inside SQLite, streaming the changes:
  //    one scan hands back the rows whose decision or rule differ (every request referenced by
  //    the selected decisions was evaluated above, so the join drops none), in keyset pages of
  //    `all()` (cheaper per row than iterate), the new outcome taken from memory.
  sum.decisions = db.prepare(`SELECT count(*) FROM rm_decisions d WHERE ${w}`).pluck().get(...params) as number;
  const changes = db
    .prepare(
      `SELECT d.position, d.run_id, d.seq, d.req_id, d.decision, d.rule_id, d.decision = r.decision
       FROM rm_decisions d CROSS JOIN temp.whatif_results r ON r.req_id = d.req_id
       WHERE d.position > ? AND (d.decision != r.decision OR d.rule_id IS NOT r.rule_id) AND ${w} ORDER BY d.position LIMIT 10000`,
    )
    .raw();
  const every = progress?.every ?? 0;
  let seen = 0;
  const olds = new Map<string, { decision: DecisionOutcome; ruleId: string | null }>();
  for (let after = 0; ; ) {
    const page = changes.all(after, ...params) as Array<[number, string, number, number, DecisionOutcome, string | null, number]>;
    if (page.length === 0) break;
    for (const [position, runId, seq, reqId, oldDecision, oldRule, sameDecision] of page) {
      if (sameDecision) {
        sum.ruleOnly++;
        continue;
      }
      const now = outcomes.get(reqId)!;
      const newDecision = now.decision;
      sum.changed++;
      const regression = oldDecision !== 'deny' && newDecision === 'deny';
      if (regression) sum.regressions++;
      else if (SEVERITY[newDecision] < SEVERITY[oldDecision]) sum.relaxed++;
      const r = describe(reqId);
      // old/new outcomes are shared between changes (few distinct ones): treat them as read-only
      const oldKey = oldRule === null ? oldDecision : oldDecision + '\0' + oldRule;
      let was = olds.get(oldKey);
      if (!was) olds.set(oldKey, (was = { decision: oldDecision, ruleId: oldRule }));
      onChange({ kind: 'decision', position, runId, seq, exe: r.exe, syscall: r.syscall, privileges: r.privileges, old: was, new: now, regression });
      if (every && ++seen % every === 0) progress!.onProgress(seen);
    }
    after = page[page.length - 1][0];
  }
  db.exec('DELETE FROM temp.whatif_results');

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
    const used = new Set(s.capabilitiesUsed ?? []);
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
