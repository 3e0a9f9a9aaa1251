import { SCHEMA_VERSIONS, type StoredEvent } from '../contracts';
import { InvalidEvent, WrongExpectedVersion } from '../errors';
import { chainHash, envelopeText, GENESIS_HASH } from '../hash';
import type { AppendRequest } from '../store';

/**
 * One append (or appendBatch) as it travels on the Kafka log: a proposal. Writers do not know
 * the global position or the previous hash when they produce, so every reader folds the log
 * through the same deterministic Sequencer: a proposal whose expected versions hold at its
 * place in the log is accepted and numbered; one that conflicts is rejected, by every reader
 * alike. The log is the arbiter, so two gateways racing on one stream version get exactly one
 * winner, and positions and the hash chain come out identical in every process.
 */
export interface Proposal {
  /** unique per append: `<clientId>:<counter>` */
  id: string;
  requests: AppendRequest[];
}

export type Verdict =
  | { id: string; ok: true; events: StoredEvent[][] }
  | { id: string; ok: false; error: WrongExpectedVersion | InvalidEvent };

/** Pure fold state: stream versions, the global head and the last hash. */
export class Sequencer {
  private readonly versions = new Map<string, number>();
  position = 0;
  lastHash = GENESIS_HASH;

  streamVersion(streamId: string): number {
    return this.versions.get(streamId) ?? 0;
  }

  /** Checks a proposal against the current state without applying it (writers use it to fail fast). */
  precheck(requests: AppendRequest[]): WrongExpectedVersion | InvalidEvent | null {
    const seen = new Map<string, number>();
    for (const r of requests) {
      if (typeof r.streamId !== 'string' || r.streamId === '') return new InvalidEvent('streamId must be a non-empty string');
      const actual = seen.get(r.streamId) ?? this.streamVersion(r.streamId);
      const ev = r.expectedVersion;
      if (ev !== 'any' && ev !== 'no-stream' && typeof ev !== 'number') return new InvalidEvent(`bad expectedVersion ${String(ev)}`);
      if ((ev === 'no-stream' && actual !== 0) || (typeof ev === 'number' && ev !== actual)) {
        return new WrongExpectedVersion(r.streamId, ev, actual);
      }
      for (const e of r.events) {
        if (SCHEMA_VERSIONS[e.type] === undefined && e.schemaVersion === undefined) return new InvalidEvent(`unknown event type ${String(e.type)}`);
        if (typeof e.at !== 'string') return new InvalidEvent(`${e.type}: bad time ${String(e.at)}`);
      }
      seen.set(r.streamId, actual + r.events.length);
    }
    return null;
  }

  /** Applies a proposal read from the log: all of it or none of it. */
  apply(p: Proposal): Verdict {
    const bad = this.precheck(p.requests);
    if (bad) return { id: p.id, ok: false, error: bad };
    let position = this.position;
    let prev = this.lastHash;
    const out: StoredEvent[][] = [];
    for (const r of p.requests) {
      let version = this.streamVersion(r.streamId);
      const sidJson = JSON.stringify(r.streamId);
      const stored: StoredEvent[] = [];
      for (const e of r.events) {
        const sv = e.schemaVersion ?? SCHEMA_VERSIONS[e.type];
        const payloadText = JSON.stringify(e.payload);
        position++;
        version++;
        const hash = chainHash(prev, envelopeText(position, sidJson, version, e.type, sv, e.at, payloadText));
        stored.push({ position, streamId: r.streamId, streamVersion: version, type: e.type, schemaVersion: sv, at: e.at, payload: e.payload, prevHash: prev, hash });
        prev = hash;
      }
      this.versions.set(r.streamId, version);
      out.push(stored);
    }
    this.position = position;
    this.lastHash = prev;
    return { id: p.id, ok: true, events: out };
  }
}
