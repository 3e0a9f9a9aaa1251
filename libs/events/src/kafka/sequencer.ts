import { SCHEMA_VERSIONS, StoredTextEvent, TextEvent, type NewEvent, type StoredEvent } from '../contracts';
import { InvalidEvent, WrongExpectedVersion } from '../errors';
import { chainHash, envelopeText, GENESIS_HASH } from '../hash';
import { partitionOfStream, positionOf } from '../positions';
import type { AppendRequest } from '../store';

/**
 * One append (or appendBatch) as it travels on the Kafka log: a proposal, one Kafka record (JSON)
 * on the partition of its streams. Writers do not know the position or the previous hash when
 * they produce, so every reader folds each partition through the same deterministic Sequencer: a
 * proposal whose expected versions hold at its place in the partition is accepted and numbered;
 * one that conflicts is rejected, by every reader alike. The log is the arbiter, so two gateways
 * racing on one stream version get exactly one winner, and positions and the hash chain come out
 * identical in every process.
 */
export interface Proposal {
  /** unique per append: `<clientId>:<counter>` */
  id: string;
  requests: AppendRequest[];
  /**
   * The writer's witness: the last position of this partition it had folded when it produced,
   * and that event's hash. Readers and `audit verify` check it against their own fold, so an
   * event changed (or removed) anywhere before a later proposal is detected.
   */
  seen?: { position: number; hash: string };
}

export type Verdict =
  | { id: string; ok: true; events: StoredEvent[][] }
  | { id: string; ok: false; error: WrongExpectedVersion | InvalidEvent };

/** A witness that does not match the fold: the log before it is not what its writer saw. */
export interface WitnessMismatch {
  proposal: string;
  position: number;
  expected: string;
  actual: string | undefined;
}

/**
 * Pure fold state of one partition: stream versions, the partition's head position and last hash.
 * `hashAt` looks up the hash of an earlier position of this partition (to check witnesses).
 */
export class Sequencer {
  private readonly versions = new Map<string, number>();
  /** events accepted in this partition */
  count = 0;
  /** the position of the partition's last event (0: none) */
  position = 0;
  lastHash = GENESIS_HASH;
  readonly mismatches: WitnessMismatch[] = [];

  constructor(
    readonly partition = 0,
    readonly partitions = 1,
    private readonly hashAt?: (position: number) => string | undefined,
  ) {}

  streamVersion(streamId: string): number {
    return this.versions.get(streamId) ?? 0;
  }

  /**
   * Checks a proposal against the current state without applying it (writers use it to fail fast).
   * `writer`: the state is this process's fold, which may lag the log: an expected version above it
   * may still hold when the proposal lands (a writer with appends in flight), so only one below it
   * is a conflict (versions only grow).
   */
  precheck(requests: AppendRequest[], writer = false): WrongExpectedVersion | InvalidEvent | null {
    const seen = new Map<string, number>();
    for (const r of requests) {
      if (typeof r.streamId !== 'string' || r.streamId === '') return new InvalidEvent('streamId must be a non-empty string');
      if (partitionOfStream(r.streamId, this.partitions) !== this.partition) {
        return new InvalidEvent(`stream ${r.streamId} belongs to partition ${partitionOfStream(r.streamId, this.partitions)}, not ${this.partition}`);
      }
      const actual = seen.get(r.streamId) ?? this.streamVersion(r.streamId);
      const ev = r.expectedVersion;
      if (ev !== 'any' && ev !== 'no-stream' && typeof ev !== 'number') return new InvalidEvent(`bad expectedVersion ${String(ev)}`);
      const ahead = writer && typeof ev === 'number' && ev > actual;
      if ((ev === 'no-stream' && actual !== 0) || (typeof ev === 'number' && ev !== actual && !ahead)) {
        return new WrongExpectedVersion(r.streamId, ev, actual);
      }
      if (!Array.isArray(r.events)) return new InvalidEvent(`stream ${r.streamId}: events must be an array`);
      for (const e of r.events) {
        if (SCHEMA_VERSIONS[e.type] === undefined && e.schemaVersion === undefined) return new InvalidEvent(`unknown event type ${String(e.type)}`);
        if (e.schemaVersion !== undefined && !(Number.isInteger(e.schemaVersion) && e.schemaVersion >= 0)) return new InvalidEvent(`${e.type}: bad schema version ${String(e.schemaVersion)}`);
        if (typeof e.at !== 'string') return new InvalidEvent(`${e.type}: bad time ${String(e.at)}`);
        const text = e.payloadText;
        if (text !== undefined && (typeof text !== 'string' || text.charCodeAt(0) !== 123 || text.indexOf('\n') >= 0)) {
          return new InvalidEvent(`${e.type}: payload is not a JSON object on one line`);
        }
      }
      seen.set(r.streamId, (ahead ? (ev as number) : actual) + r.events.length);
    }
    return null;
  }

  /** The witness a writer puts on its next proposal for this partition. */
  witness(): { position: number; hash: string } | undefined {
    return this.position > 0 ? { position: this.position, hash: this.lastHash } : undefined;
  }

  /** Applies a proposal read from the log: all of it or none of it. */
  apply(p: Proposal): Verdict {
    if (p.seen && this.hashAt) {
      const actual = p.seen.position === this.position ? this.lastHash : this.hashAt(p.seen.position);
      if (actual !== p.seen.hash) this.mismatches.push({ proposal: p.id, position: p.seen.position, expected: p.seen.hash, actual });
    }
    const bad = this.precheck(p.requests);
    if (bad) return { id: p.id, ok: false, error: bad };
    let n = this.count;
    let position = this.position;
    let prev = this.lastHash;
    const out: StoredEvent[][] = [];
    for (const r of p.requests) {
      let version = this.streamVersion(r.streamId);
      const sidJson = JSON.stringify(r.streamId);
      const stored: StoredEvent[] = [];
      for (const e of r.events) {
        const sv = e.schemaVersion ?? SCHEMA_VERSIONS[e.type];
        const text = e.payloadText;
        const payloadText = text ?? JSON.stringify(e.payload);
        position = positionOf(this.partition, ++n, this.partitions);
        version++;
        const hash = chainHash(prev, envelopeText(position, sidJson, version, e.type, sv, e.at, payloadText));
        stored.push(
          text === undefined
            ? { position, streamId: r.streamId, streamVersion: version, type: e.type, schemaVersion: sv, at: e.at, payload: e.payload, prevHash: prev, hash }
            : new StoredTextEvent(position, r.streamId, version, e.type, sv, e.at, e, prev, hash),
        );
        prev = hash;
      }
      this.versions.set(r.streamId, version);
      out.push(stored);
    }
    this.count = n;
    this.position = position;
    this.lastHash = prev;
    return { id: p.id, ok: true, events: out };
  }
}

/**
 * The record of a proposal (format 2). Line 1 is JSON: `{"v":2,"id","seen"?,"requests":[{streamId,
 * expectedVersion, events: [[type, at] | [type, at, schemaVersion], …]}]}`; then one line per event,
 * in order, holding its payload's JSON text exactly as it is hashed. A payload text is never parsed
 * on the way (a decision's text goes from the agent to every reader's hash unchanged), so neither
 * writer nor reader re-serialises it, and readers parse a payload only when something reads it.
 */
export function encodeProposal(p: Proposal): string {
  const lines: string[] = [];
  const requests = p.requests.map((r) => ({
    streamId: r.streamId,
    expectedVersion: r.expectedVersion,
    events: r.events.map((e) => {
      const text = e.payloadText ?? JSON.stringify(e.payload);
      // a text with a line break would end its line early; precheck refuses such TextEvents, and
      // JSON.stringify never writes one
      if (typeof text !== 'string' || text.charCodeAt(0) !== 123) throw new InvalidEvent(`${e.type}: payload is not a JSON object`);
      lines.push(text);
      return e.schemaVersion === undefined ? [e.type, e.at] : [e.type, e.at, e.schemaVersion];
    }),
  }));
  const head = JSON.stringify(p.seen ? { v: 2, id: p.id, seen: p.seen, requests } : { v: 2, id: p.id, requests });
  return lines.length > 0 ? head + '\n' + lines.join('\n') : head;
}

/**
 * A record read from the log as a proposal, or undefined when it is not one (skipped by every
 * reader alike). Format 1 records (one JSON object, each event with its `payload`) still fold.
 */
export function decodeProposal(value: Buffer): Proposal | undefined {
  const text = value.toString('utf8');
  const nl = text.indexOf('\n');
  let head: { v?: unknown; id?: unknown; seen?: Proposal['seen']; requests?: unknown };
  try {
    head = JSON.parse(nl < 0 ? text : text.slice(0, nl));
  } catch {
    return undefined;
  }
  if (!head || typeof head !== 'object' || typeof head.id !== 'string' || !Array.isArray(head.requests)) return undefined;
  if (head.v === undefined) return nl < 0 ? (head as Proposal) : undefined;
  if (head.v !== 2) return undefined;
  const lines = nl < 0 ? [] : text.slice(nl + 1).split('\n');
  let k = 0;
  const requests: AppendRequest[] = [];
  for (const r of head.requests as Array<{ streamId: string; expectedVersion: AppendRequest['expectedVersion']; events: unknown }>) {
    if (!r || typeof r !== 'object' || !Array.isArray(r.events)) return undefined;
    const events: NewEvent[] = [];
    for (const ev of r.events as unknown[]) {
      if (!Array.isArray(ev) || ev.length < 2 || ev.length > 3 || k >= lines.length) return undefined;
      events.push(new TextEvent(ev[0], ev[1], lines[k++], ev[2]));
    }
    requests.push({ streamId: r.streamId, expectedVersion: r.expectedVersion, events });
  }
  if (k !== lines.length) return undefined;
  return head.seen === undefined ? { id: head.id, requests } : { id: head.id, requests, seen: head.seen };
}
