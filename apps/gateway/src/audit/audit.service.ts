import { Inject, Injectable } from '@nestjs/common';
import { decisionLog, ReadModelProjector, runStream, SqliteEventStore, type DecisionPayload, type EventStore, type EventType, type StoredEvent } from '@capulator/events';
import { globError, globMatch } from '@capulator/policy';
import { ValidationFailed } from '../errors/domain.error';
import { EVENT_STORE } from '../store/tokens';
import type { DecisionsQuery } from './dto/decisions.query';

const DECISION_TYPES: EventType[] = ['CapabilitiesQueried', 'CapabilitiesChangeRequested', 'PrivilegeChecked'];

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
