import type Database from 'better-sqlite3';

export interface DecisionLogFilter {
  runId?: string;
  decision?: 'allow' | 'deny' | 'emulate';
  privilege?: string;
  capability?: string;
  /** only executables it accepts (callers pass @capulator/policy's fnmatch-compatible globMatch) */
  exeMatches?: (exe: string) => boolean;
  /** ISO time, inclusive */
  since?: string;
  /** only positions after this one */
  afterPosition?: number;
}

export interface DecisionLogRow {
  position: number;
  at: string;
  runId: string;
  seq: number;
  type: string;
  syscall: string;
  args: Record<string, unknown>;
  exe: string;
  uid: number;
  privileges: string[];
  capability: string | null;
  decision: string;
  ruleId: string | null;
  policy: string;
  errno: number | null;
  answeredBy: string | null;
  latencyNs: number;
}

/** The decisions read model, filtered, in position order (streamed). */
export function* decisionLog(db: Database.Database, f: DecisionLogFilter): Generator<DecisionLogRow> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    where.push(sql);
    params.push(v);
  };
  if (f.runId) add('d.run_id = ?', f.runId);
  if (f.decision) add('d.decision = ?', f.decision);
  if (f.privilege) add('r.privileges LIKE ?', `%${JSON.stringify(f.privilege)}%`);
  if (f.capability) add('r.capability = ?', f.capability);
  if (f.since) add('d.at >= ?', f.since);
  if (f.afterPosition) add('d.position > ?', f.afterPosition);
  const stmt = db.prepare(
    `SELECT d.position, d.at, d.run_id, d.seq, r.type, r.syscall, r.args, r.exe, r.uid, r.privileges, r.capability, d.decision, d.rule_id,
            d.policy_name || '@' || d.policy_version, d.errno, d.answered_by, d.latency_ns
     FROM rm_decisions d JOIN rm_requests r ON r.id = d.req_id
     ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY d.position`,
  );
  for (const x of stmt.raw().iterate(...params) as IterableIterator<any[]>) {
    if (f.exeMatches && !f.exeMatches(x[7])) continue;
    yield {
      position: x[0], at: x[1], runId: x[2], seq: x[3], type: x[4], syscall: x[5], args: JSON.parse(x[6]), exe: x[7], uid: x[8],
      privileges: JSON.parse(x[9]), capability: x[10], decision: x[11], ruleId: x[12], policy: x[13], errno: x[14], answeredBy: x[15], latencyNs: x[16],
    };
  }
}
