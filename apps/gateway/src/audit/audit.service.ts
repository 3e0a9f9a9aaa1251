import { Inject, Injectable } from '@nestjs/common';
import { decisionLog, ReadModelProjector, runStream, SqliteEventStore, type DecisionPayload, type EventStore, type EventType, type StoredEvent } from '@capulator/events';
import { globError, globMatch } from '@capulator/policy';
import { Unavailable, ValidationFailed } from '../errors/domain.error';
import { EVENT_STORE } from '../store/tokens';
import type { DecisionsQuery } from './dto/decisions.query';
import type { RunTimeline } from '../api-shapes';

const DECISION_TYPES: EventType[] = ['CapabilitiesQueried', 'CapabilitiesChangeRequested', 'PrivilegeChecked'];

export type { RunTimeline } from '../api-shapes';

export interface DecisionRecord {
  position: number;
  type: string;
  [field: string]: unknown;
}

/** The audit query: decision events filtered by run, outcome, privilege, capability, exe, time. */
@Injectable()
export class AuditService {
  private projector: ReadModelProjector | undefined;

  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  async decisions(q: DecisionsQuery): Promise<{ decisions: DecisionRecord[]; truncated: boolean }> {
    const limit = q.limit ?? 1000;
    const sinceIsPosition = q.since !== undefined && /^[0-9]+$/.test(q.since);
    const sincePosition = sinceIsPosition ? Number(q.since) : 0;
    const exe = q.exe;
    const bad = exe !== undefined ? globError(exe) : undefined;
    if (bad) throw new ValidationFailed([{ field: 'exe', messages: [`exe ${bad}`] }]);
    if (this.store instanceof SqliteEventStore) {
      // the decisions read model of libs/events, caught up first; exe is a glob (fnmatch, linear time)
      this.projector ??= new ReadModelProjector(this.store);
      this.projector.catchUp();
      const out: DecisionRecord[] = [];
      for (const row of decisionLog(this.store.db, {
        ...(q.run ? { runId: q.run } : {}),
        ...(q.decision ? { decision: q.decision } : {}),
        ...(q.privilege ? { privilege: q.privilege } : {}),
        ...(q.capability ? { capability: q.capability } : {}),
        ...(exe ? { exeMatches: (e: string) => globMatch(exe, e) } : {}),
        ...(q.since && !sinceIsPosition ? { since: q.since } : {}),
        ...(sinceIsPosition ? { afterPosition: sincePosition } : {}),
      })) {
        if (out.length === limit) return { decisions: out, truncated: true };
        out.push({ ...row });
      }
      return { decisions: out, truncated: false };
    }
    return this.scan(q, limit, sinceIsPosition, sincePosition);
  }

  /**
   * One run's decisions in columns, for the console's timeline: one entry per decision (position,
   * ms since the first, program index, kind index, outcome 0 allow / 1 emulate / 2 deny), with the
   * distinct programs and kinds (type, syscall, privileges, capability, rule) listed once. About
   * 25 bytes a decision in JSON, against about 400 in GET /v1/decisions. SQLite store only.
   */
  timeline(runId: string): RunTimeline {
    if (!(this.store instanceof SqliteEventStore)) throw new Unavailable('the timeline needs the SQLite store (use GET /v1/decisions)');
    this.projector ??= new ReadModelProjector(this.store);
    this.projector.catchUp();
    const out: RunTimeline = { runId, count: 0, start: null, programs: [], kinds: [], position: [], t: [], program: [], kind: [], outcome: [] };
    const programs = new Map<string, number>();
    const kinds = new Map<string, number>();
    const OUTCOME: Record<string, number> = { allow: 0, emulate: 1, deny: 2 };
    let t0 = NaN;
    const stmt = this.store.db.prepare(
      `SELECT d.position, d.at, r.exe, r.type, r.syscall, r.privileges, r.capability, d.rule_id, d.decision
       FROM rm_decisions d JOIN rm_requests r ON r.id = d.req_id WHERE d.run_id = ? ORDER BY d.position`,
    );
    for (const x of stmt.raw().iterate(runId) as IterableIterator<[number, string, string, string, string, string, string | null, string | null, string]>) {
      const [position, at, exe, type, syscall, privileges, capability, ruleId, decision] = x;
      const ms = Date.parse(at);
      if (isNaN(t0)) {
        t0 = ms;
        out.start = at;
      }
      let p = programs.get(exe);
      if (p === undefined) {
        p = out.programs.length;
        programs.set(exe, p);
        out.programs.push(exe);
      }
      const key = `${type}\t${syscall}\t${privileges}\t${capability ?? ''}\t${ruleId ?? ''}`;
      let k = kinds.get(key);
      if (k === undefined) {
        k = out.kinds.length;
        kinds.set(key, k);
        out.kinds.push({ type, syscall, privileges: JSON.parse(privileges) as string[], capability, ruleId });
      }
      out.position.push(position);
      out.t.push(ms - t0);
      out.program.push(p);
      out.kind.push(k);
      out.outcome.push(OUTCOME[decision] ?? 0);
    }
    out.count = out.position.length;
    return out;
  }

  /** Any EventStore (e.g. Kafka later): scan the decision events. */
  private async scan(q: DecisionsQuery, limit: number, sinceIsPosition: boolean, sincePosition: number): Promise<{ decisions: DecisionRecord[]; truncated: boolean }> {
    const sinceTime = q.since !== undefined && !sinceIsPosition ? Date.parse(q.since) : undefined;
    const source: AsyncIterable<StoredEvent> = q.run ? this.store.readStream(runStream(q.run)) : this.store.readAll(sincePosition + 1, { types: DECISION_TYPES });
    const out: DecisionRecord[] = [];
    for await (const e of source) {
      if (!DECISION_TYPES.includes(e.type) || e.position <= sincePosition) continue;
      const p = e.payload as DecisionPayload;
      if (q.decision && p.decision !== q.decision) continue;
      if (q.privilege && !p.privileges.includes(q.privilege)) continue;
      if (q.capability && p.capability !== q.capability) continue;
      if (q.exe && !(typeof p.subject?.exe === 'string' && globMatch(q.exe, p.subject.exe))) continue;
      if (sinceTime !== undefined && Date.parse(p.at ?? e.at) < sinceTime) continue;
      if (out.length === limit) return { decisions: out, truncated: true };
      out.push({ position: e.position, type: e.type, ...p });
    }
    return { decisions: out, truncated: false };
  }
}
