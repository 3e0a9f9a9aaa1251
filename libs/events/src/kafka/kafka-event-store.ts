import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Kafka, logLevel, type Consumer, type Producer, type Admin, CompressionTypes } from 'kafkajs';
import { payloadTextOf, type EventType, type NewEvent, type StoredEvent } from '../contracts';
import { EventStoreError, InvalidEvent, StoreUnavailable } from '../errors';
import { cursorBefore, partitionOfStream, sequenceOfPosition, type Cursor } from '../positions';
import type { AppendRequest, EventStore, ExpectedVersion, ReadAllOptions } from '../store';
import { defaultUpcasters, type UpcasterRegistry } from '../upcast';
import { ensureTopics } from './topics';
import { MAX_BATCH_BYTES } from '../batching-appender';
import { decodeProposal, encodeProposal, Sequencer, type Proposal, type Verdict, type WitnessMismatch } from './sequencer';
import { kafkaClientConfig, type KafkaConnection } from './kafka-url';
export { parseKafkaBus } from './kafka-url';

export interface KafkaEventStoreOptions extends KafkaConnection {
  /** the event log topic */
  topic?: string;
  /** partitions of the topic when this store creates it (an existing topic keeps its own); default 4 */
  partitions?: number;
  /**
   * Fold partitions only when something needs them (a stream of the partition is read or
   * appended to; readAll/subscribe/headPosition need them all). A runtime worker folds only the
   * partitions of the runs it handles; records of other partitions are kept unparsed.
   */
  lazy?: boolean;
  /**
   * Only read the log (audit commands): no producer, so the user needs no write right on any
   * topic (an idempotent producer's id is a cluster-level grant without one); the topic must
   * exist, and appends are refused.
   */
  readOnly?: boolean;
  clientId?: string;
  upcasters?: UpcasterRegistry;
  /** how long a read waits for the log to be caught up (ms) */
  appendTimeoutMs?: number;
  /** how long an append waits to see its own proposal come back once the broker took it (ms; then: unavailable, outcome unknown) */
  seenTimeoutMs?: number;
  /** how long a produce may take before the append is refused as unavailable (ms) */
  produceTimeoutMs?: number;
  /** structured log lines (outages, recoveries, witness mismatches) */
  log?: (rec: Record<string, unknown>) => void;
}

let instances = 0;
/** proposals of one partition coalesced into one produce request, at most this many bytes (UTF-16 units, ≈ bytes) */
const MAX_COALESCED_BYTES = MAX_BATCH_BYTES;
/** partitions of a new event topic unless told otherwise */
export const DEFAULT_EVENT_PARTITIONS = 4;
/** how often the broker is asked for the partitions' ends (broker up/down, consumer lag) */
const PROBE_MS = 2_000;
const LEADER_WAIT_MS = 5_000;
/**
 * The fold consumer is started again when the broker is reachable, records wait for it, and it
 * has received none for this long. Longer than a rejoin after a broker restart, which waits out
 * the old member's session (10 s). kafkajs stops a consumer for good on some errors (restart:
 * false), and was seen here to stay silent after a 60 s pause and a restart of the broker: every
 * append then failed "not seen" until the process was restarted.
 */
const CONSUMER_STALL_MS = 20_000;

interface OutboxEntry {
  message: { key: string; value: string; partition: number };
  /** handed to the client: if it times out now, the outcome is unknown */
  inFlight: boolean;
  settled: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Partition {
  seq: Sequencer;
  /** folded events of this partition, index = sequence − 1 */
  events: StoredEvent[];
  /** the next Kafka offset to fold */
  nextOffset: bigint;
  /** with `lazy`: records received but not folded yet (null once the partition is folded) */
  pending: Array<{ offset: bigint; value: Buffer | null }> | null;
  /** records that are not proposals (skipped by every reader alike; `audit verify` reports them) */
  malformed: bigint[];
  /** proposals folded, accepted or rejected, and those carrying a witness */
  proposals: number;
  rejected: number;
  witnesses: number;
}

/** What `audit verify` reports for one partition of the Kafka log. */
export interface PartitionVerifyResult {
  partition: number;
  /** records read (proposals and anything else) */
  records: number;
  proposals: number;
  /** proposals rejected by the fold (expected-version conflicts, invalid input): written, but no events */
  rejected: number;
  events: number;
  /** witnesses (writers' views of the partition's head) checked against the fold */
  witnesses: number;
  head: { position: number; hash: string };
  problems: string[];
}

/** Counters for /metrics. */
export interface KafkaStoreStats {
  partitions: number;
  /** records folded (proposals, accepted or not) */
  folded: number;
  /** produce requests that failed (broker unreachable, timeout) */
  produceFailures: number;
  /** appends refused because the broker could not be reached */
  unavailable: number;
  /** witness mismatches seen while folding (the log is not what its writers saw) */
  witnessMismatches: number;
  /** records behind the high watermark at the last catch-up, summed over partitions */
  lag: number;
  /** whether the last produce or metadata call reached the broker */
  brokerUp: boolean;
  outages: number;
  /** times the broker became reachable again after an outage */
  recoveries: number;
  /** times the fold consumer was replaced (stopped by its client, or silent while records waited) */
  consumerRestarts: number;
}

/**
 * The EventStore on Apache Kafka, partitioned by stream. Every append is one record (a Proposal)
 * on its streams' partition, produced by an idempotent producer with acks from all in-sync
 * replicas; each store instance tails the partitions from offset 0 and folds each through its own
 * deterministic Sequencer, which assigns positions, stream versions and the partition's hash
 * chain, and rejects proposals whose expected version no longer holds. An append resolves when
 * its own proposal has been folded.
 *
 * The folded events are kept in memory (the Kafka log is the durable copy); a process that
 * restarts folds the log again.
 */
export class KafkaEventStore implements EventStore {
  readonly upcasters: UpcasterRegistry;
  private readonly kafka: Kafka;
  readonly topic: string;
  private readonly clientId: string;
  private producer!: Producer;
  private consumer!: Consumer;
  private admin!: Admin;
  private parts: Partition[] = [];
  private readonly byStream = new Map<string, StoredEvent[]>();
  private readonly waiting = new Map<string, (v: Verdict) => void>();
  private readonly folded = new EventEmitter();
  private outbox: OutboxEntry[] = [];
  private sending = false;
  private probe: NodeJS.Timeout | undefined;
  private counter = 0;
  private closed = false;
  private readonly appendTimeoutMs: number;
  private readonly produceTimeoutMs: number;
  private readonly seenTimeoutMs: number;
  private readonly log: (rec: Record<string, unknown>) => void;
  readonly stats: KafkaStoreStats = { partitions: 0, folded: 0, produceFailures: 0, unavailable: 0, witnessMismatches: 0, lag: 0, brokerUp: true, outages: 0, recoveries: 0, consumerRestarts: 0 };

  private constructor(private readonly opts: KafkaEventStoreOptions) {
    this.topic = opts.topic ?? 'capulator.events';
    this.clientId = opts.clientId ?? `capulator-${hostname()}-${process.pid}-${++instances}`;
    this.upcasters = opts.upcasters ?? defaultUpcasters();
    this.appendTimeoutMs = opts.appendTimeoutMs ?? 30_000;
    this.produceTimeoutMs = opts.produceTimeoutMs ?? 2_000;
    this.seenTimeoutMs = opts.seenTimeoutMs ?? 2_000;
    this.log = opts.log ?? (() => undefined);
    this.kafka = new Kafka({
      clientId: this.clientId,
      ...kafkaClientConfig(opts),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 5_000,
      // a reader (an audit command) says at once that the broker cannot be reached; a writer rides out an outage
      retry: opts.readOnly ? { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 } : { retries: 8, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
    this.folded.setMaxListeners(0);
  }

  static async connect(opts: KafkaEventStoreOptions): Promise<KafkaEventStore> {
    const s = new KafkaEventStore(opts);
    try {
      await s.start();
    } catch (err) {
      await s.close().catch(() => undefined);
      throw err;
    }
    return s;
  }

  get partitions(): number {
    return this.parts.length;
  }

  /** Each partition's head as folded so far (no catch-up; 0 for one not folded): what a gateway anchors. */
  foldedHeads(): Array<{ position: number; hash: string }> {
    return this.parts.map((p) => ({ position: p.seq.position, hash: p.seq.lastHash }));
  }

  partitionOf(streamId: string): number {
    return partitionOfStream(streamId, this.parts.length);
  }

  /** Witness mismatches seen so far (each: a proposal whose writer saw a different log before it). */
  get mismatches(): WitnessMismatch[] {
    return this.parts.flatMap((p) => p.seq.mismatches);
  }

  private async start(): Promise<void> {
    this.admin = this.kafka.admin();
    await this.admin.connect();
    // a reader does not create the log
    if (this.opts.readOnly && !(await this.admin.listTopics()).includes(this.topic)) throw new EventStoreError('NOT_FOUND', `Kafka event store: topic ${this.topic} does not exist`);
    const counts = await ensureTopics(this.admin, [
      { topic: this.topic, numPartitions: this.opts.partitions ?? DEFAULT_EVENT_PARTITIONS, configEntries: [{ name: 'min.insync.replicas', value: '1' }] },
    ]);
    const n = counts.get(this.topic) ?? 0;
    if (n < 1) throw new EventStoreError('CLOSED', `Kafka event store: topic ${this.topic} has no partitions`);
    this.parts = Array.from({ length: n }, (_, p) => {
      const part: Partition = { seq: undefined as unknown as Sequencer, events: [], nextOffset: 0n, pending: this.opts.lazy ? [] : null, malformed: [], proposals: 0, rejected: 0, witnesses: 0 };
      part.seq = new Sequencer(p, n, (pos) => part.events[sequenceOfPosition(pos, n) - 1]?.hash);
      return part;
    });
    this.stats.partitions = n;
    if (!this.opts.readOnly) {
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await this.producer.connect();
    }
    await this.startConsumer();
    await this.leadersElected();
    // a lazy store receives the log now and folds each partition when it is first needed
    await this.catchUp(undefined, !this.opts.lazy);
    this.probe = setInterval(() => void this.catchUpOffsets().catch(() => undefined), PROBE_MS);
    this.probe.unref();
  }

  /**
   * The fold consumer: a group of our own, never committed, so every instance reads the whole
   * log. Started again (startConsumer once more) it goes on from where this store is: each
   * partition is sought to the next offset not yet received.
   */
  private async startConsumer(): Promise<void> {
    // a group of its own for each consumer this store starts: a replaced consumer whose disconnect
    // did not finish (a broker that was down) could otherwise stay a member of the same group,
    // keep some partitions and drop what it fetched (it is no longer this.consumer), so those
    // partitions were never folded again (seen as the fault test's 'received nothing while records
    // waited', the same lag after every restart)
    const consumer = this.kafka.consumer({ groupId: `${this.clientId}-fold-${++this.consumerGeneration}`, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 20 });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      if (e.payload.restart || this.closed || this.consumer !== consumer) return;
      this.log({ level: 'warn', msg: 'event log consumer stopped by its client; starting it again', topic: this.topic, err: e.payload.error?.message });
      void this.restartConsumer();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch }) => {
        if (this.consumer !== consumer) return;
        const part = this.parts[batch.partition];
        if (!part) return;
        for (const m of batch.messages) this.receive(batch.partition, BigInt(m.offset), m.value);
        this.folded.emit('folded');
      },
    });
    for (const [partition, part] of this.parts.entries()) {
      if (part.nextOffset > 0n) consumer.seek({ topic: this.topic, partition, offset: part.nextOffset.toString() });
    }
  }

  private restarting: Promise<void> | undefined;
  /** consumers started so far (each gets a group of its own) */
  private consumerGeneration = 0;

  /** Replaces the fold consumer (see CONSUMER_STALL_MS); what it received stays, the new one goes on after it. */
  private restartConsumer(): Promise<void> {
    if (this.restarting || this.closed) return this.restarting ?? Promise.resolve();
    this.stats.consumerRestarts++;
    this.stall = undefined;
    const old = this.consumer;
    this.restarting = (async () => {
      try {
        await Promise.race([old.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
        if (!this.closed) await this.startConsumer();
      } catch (err) {
        this.log({ level: 'warn', msg: 'event log consumer could not be started again; trying later', topic: this.topic, err: (err as Error)?.message ?? String(err) });
      } finally {
        this.restarting = undefined;
      }
    })();
    return this.restarting;
  }

  /** since when records have waited for the consumer without any arriving (received offsets then) */
  private stall: { since: number; received: bigint } | undefined;

  /** Called with each probe's partition ends: notices a consumer that stopped receiving. */
  private watchConsumer(lag: bigint): void {
    const received = this.parts.reduce((n, p) => n + p.nextOffset, 0n);
    if (lag === 0n || this.restarting) {
      this.stall = undefined;
      return;
    }
    if (!this.stall || this.stall.received !== received) {
      this.stall = { since: Date.now(), received };
      return;
    }
    if (Date.now() - this.stall.since < CONSUMER_STALL_MS) return;
    this.log({ level: 'warn', msg: 'event log consumer received nothing while records waited; starting it again', topic: this.topic, lag: Number(lag), waitedMs: Date.now() - this.stall.since });
    void this.restartConsumer();
  }

  /**
   * A topic created a moment ago may still be electing its partitions' leaders: the broker
   * answers with a retriable error (e.g. "not the leader for that topic-partition") for a while.
   * Waits that out at start, up to LEADER_WAIT_MS; any other error is catchUp's to report.
   */
  private async leadersElected(): Promise<void> {
    const until = Date.now() + LEADER_WAIT_MS;
    for (;;) {
      try {
        await this.admin.fetchTopicOffsets(this.topic);
        return;
      } catch (err) {
        if ((err as { retriable?: boolean }).retriable !== true || Date.now() >= until) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Asks the broker for the partitions' ends: keeps brokerUp and lag current between appends. */
  private async catchUpOffsets(): Promise<void> {
    if (this.closed) return;
    try {
      const offsets = await this.admin.fetchTopicOffsets(this.topic);
      this.brokerBack();
      let lag = 0n;
      for (const o of offsets) {
        const part = this.parts[o.partition];
        if (part && BigInt(o.high) > part.nextOffset) lag += BigInt(o.high) - part.nextOffset;
      }
      this.stats.lag = Number(lag);
      this.watchConsumer(lag);
    } catch (err) {
      this.brokerDown(err);
    }
  }

  private receive(p: number, offset: bigint, value: Buffer | null): void {
    const part = this.parts[p];
    if (offset < part.nextOffset) return; // redelivery after a rebalance
    part.nextOffset = offset + 1n;
    if (part.pending) part.pending.push({ offset, value });
    else this.foldRecord(part, value, offset);
  }

  /** Folds the records a lazy partition has kept unparsed; afterwards it folds as they come. */
  private ensureFolded(p: number): void {
    const part = this.parts[p];
    if (!part.pending) return;
    const pending = part.pending;
    part.pending = null;
    for (const r of pending) this.foldRecord(part, r.value, r.offset);
  }

  private foldRecord(part: Partition, value: Buffer | null, offset: bigint): void {
    this.stats.folded++;
    let p: Proposal | undefined;
    try {
      p = value ? decodeProposal(value) : undefined;
    } catch {
      p = undefined;
    }
    if (!p) {
      part.malformed.push(offset); // not a proposal: skipped by every reader alike
      return;
    }
    part.proposals++;
    if (p.seen) part.witnesses++;
    const before = part.seq.mismatches.length;
    const verdict = part.seq.apply(p);
    if (part.seq.mismatches.length > before) {
      this.stats.witnessMismatches++;
      const m = part.seq.mismatches[part.seq.mismatches.length - 1];
      this.log({ level: 'error', msg: 'event log witness mismatch: the log before this proposal is not what its writer saw', partition: part.seq.partition, ...m });
    }
    if (!verdict.ok) part.rejected++;
    if (verdict.ok) {
      for (const evs of verdict.events) {
        for (const e of evs) {
          part.events.push(e);
          let s = this.byStream.get(e.streamId);
          if (!s) this.byStream.set(e.streamId, (s = []));
          s.push(e);
        }
      }
    }
    const w = this.waiting.get(p.id);
    if (w) {
      this.waiting.delete(p.id);
      w(verdict);
    }
  }

  private brokerDown(err: unknown): void {
    if (this.stats.brokerUp) {
      this.stats.brokerUp = false;
      this.stats.outages++;
      this.log({ level: 'warn', msg: 'Kafka broker unreachable', topic: this.topic, err: (err as Error)?.message ?? String(err) });
    }
  }

  private brokerBack(): void {
    if (!this.stats.brokerUp) {
      this.stats.brokerUp = true;
      this.stats.recoveries++;
      this.log({ level: 'log', msg: 'Kafka broker reachable again', topic: this.topic });
    }
  }

  /** Waits until every record produced before this call to the given partitions (default all) has been received, and folds them. */
  private async catchUp(only?: number[], fold = true): Promise<void> {
    let offsets: Array<{ partition: number; high: string }>;
    try {
      offsets = await this.admin.fetchTopicOffsets(this.topic);
      this.brokerBack();
    } catch (err) {
      this.brokerDown(err);
      throw new StoreUnavailable(`Kafka event store: cannot reach the broker: ${(err as Error).message}`);
    }
    const high = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    const want = only ?? this.parts.map((_, p) => p);
    let lag = 0n;
    for (const p of this.parts.keys()) lag += (high.get(p) ?? 0n) > this.parts[p].nextOffset ? (high.get(p) ?? 0n) - this.parts[p].nextOffset : 0n;
    this.stats.lag = Number(lag);
    await this.waitFor(() => want.every((p) => this.parts[p].nextOffset >= (high.get(p) ?? 0n)), `the log up to offsets ${want.map((p) => `${p}:${high.get(p)}`).join(',')}`);
    if (fold) for (const p of want) this.ensureFolded(p);
  }

  private waitFor(cond: () => boolean, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.folded.off('folded', check);
        reject(new StoreUnavailable(`Kafka event store: timed out waiting for ${what}`));
      }, this.appendTimeoutMs);
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.folded.off('folded', check);
        resolve();
      };
      this.folded.on('folded', check);
    });
  }

  async append(streamId: string, expectedVersion: ExpectedVersion, events: NewEvent[]): Promise<StoredEvent[]> {
    return (await this.appendBatch([{ streamId, expectedVersion, events }]))[0];
  }

  async appendBatch(requests: AppendRequest[]): Promise<StoredEvent[][]> {
    if (this.closed) throw new EventStoreError('CLOSED', 'event store is closed');
    if (this.opts.readOnly) throw new EventStoreError('CLOSED', 'this Kafka event store was opened to read only');
    if (requests.length === 0) return [];
    if (typeof requests[0]?.streamId !== 'string' || requests[0].streamId === '') throw new InvalidEvent('streamId must be a non-empty string');
    const p = this.partitionOf(requests[0].streamId);
    for (const r of requests) {
      if (typeof r.streamId === 'string' && this.partitionOf(r.streamId) !== p) {
        throw new InvalidEvent(`appendBatch spans partitions ${p} and ${this.partitionOf(r.streamId)} (${requests[0].streamId}, ${r.streamId}): a batch is atomic within one partition`);
      }
    }
    this.ensureFolded(p);
    const seq = this.parts[p].seq;
    const early = seq.precheck(requests, true);
    // An expected-version conflict seen locally may be stale only in the direction of "more
    // events exist", so it is final; invalid input is final too. (An expected version above the
    // local fold is left to the log: this writer may have appends in flight.)
    if (early) throw early;
    const id = `${this.clientId}:${++this.counter}`;
    let settle!: (v: Verdict) => void;
    const verdict = new Promise<Verdict>((resolve) => (settle = resolve));
    // Registered before the produce: the proposal may come back before send() resolves.
    this.waiting.set(id, settle);
    const proposal: Proposal = { id, requests, seen: seq.witness() };
    let value: string;
    try {
      value = encodeProposal(proposal);
    } catch (err) {
      this.waiting.delete(id);
      throw err;
    }
    try {
      await this.produce({ key: requests[0].streamId, value, partition: p });
    } catch (err) {
      // The proposal may still land (the client retries inside send): a reader that folds it
      // later applies it like any other; this append reports the outcome as unknown.
      this.waiting.delete(id);
      this.stats.unavailable++;
      throw err instanceof StoreUnavailable ? err : new StoreUnavailable(`Kafka event store: cannot append to ${this.topic}: ${(err as Error).message}`, true);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new StoreUnavailable(`Kafka event store: append ${id} not seen on ${this.topic} within ${this.seenTimeoutMs} ms`, true));
      }, this.seenTimeoutMs);
    });
    try {
      const v = await Promise.race([verdict, timeout]);
      if (!v.ok) throw v.error;
      return v.events;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Produces one proposal. Proposals that arrive while a produce request is in flight wait and go
   * out together in the next request (still one record each, in arrival order), so concurrent
   * appenders share round trips instead of queueing one request each behind the in-flight one.
   * A produce that the broker has not acknowledged within produceTimeoutMs is reported as
   * unavailable (ambiguous: the client may still deliver it).
   */
  private produce(message: { key: string; value: string; partition: number }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry: OutboxEntry = { message, settled: false, inFlight: false, resolve: () => undefined, reject: () => undefined, timer: undefined };
      entry.resolve = () => {
        if (entry.settled) return;
        entry.settled = true;
        clearTimeout(entry.timer);
        resolve();
      };
      entry.reject = (err) => {
        if (entry.settled) return;
        entry.settled = true;
        clearTimeout(entry.timer);
        reject(err);
      };
      entry.timer = setTimeout(() => {
        this.stats.produceFailures++;
        this.brokerDown(new Error(`no acknowledgement within ${this.produceTimeoutMs} ms`));
        if (!entry.inFlight) {
          // never sent: certainly not written
          const i = this.outbox.indexOf(entry);
          if (i >= 0) this.outbox.splice(i, 1);
          entry.reject(new StoreUnavailable(`Kafka event store: the broker did not take the append within ${this.produceTimeoutMs} ms`));
        } else {
          entry.reject(new StoreUnavailable(`Kafka event store: the broker did not acknowledge the append within ${this.produceTimeoutMs} ms`, true));
        }
      }, this.produceTimeoutMs);
      this.outbox.push(entry);
      if (!this.sending) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.sending = true;
    try {
      while (this.outbox.length > 0) {
        // a prefix of the outbox, each partition's record batch under the broker's
        // message.max.bytes (1 MiB by default; the limit is per partition's batch, not per request)
        let n = 0;
        const bytes = new Map<number, number>();
        while (n < this.outbox.length) {
          const m = this.outbox[n].message;
          const b = (bytes.get(m.partition) ?? 0) + m.value.length;
          if (n > 0 && b > MAX_COALESCED_BYTES) break;
          bytes.set(m.partition, b);
          n++;
        }
        const batch = this.outbox.splice(0, n);
        for (const o of batch) o.inFlight = true;
        try {
          // one request in flight at a time keeps proposals in order; a request the broker does
          // not answer holds later ones here until it ends, and they time out unsent (refused)
          await this.producer.send({ topic: this.topic, acks: -1, compression: CompressionTypes.None, messages: batch.map((o) => o.message) });
          this.brokerBack();
          for (const o of batch) o.resolve();
        } catch (err) {
          this.stats.produceFailures++;
          this.brokerDown(err);
          const e = new StoreUnavailable(`Kafka event store: cannot append to ${this.topic}: ${(err as Error).message}`, true);
          for (const o of batch) o.reject(e);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  private upcast(e: StoredEvent): StoredEvent {
    if (e.schemaVersion === this.upcasters.currentVersion(e.type)) return e;
    const { schemaVersion, payload } = this.upcasters.upcast(e.type, e.schemaVersion, e.payload);
    const { position, streamId, streamVersion, type, at, prevHash, hash } = e;
    return { position, streamId, streamVersion, type, schemaVersion, at, payload: payload as StoredEvent['payload'], prevHash, hash };
  }

  async *readStream(streamId: string, fromVersion = 1): AsyncIterable<StoredEvent> {
    const p = this.partitionOf(streamId);
    await this.catchUp([p]);
    const s = this.byStream.get(streamId) ?? [];
    for (let i = Math.max(0, fromVersion - 1); i < s.length; i++) yield this.upcast(s[i]);
  }

  /** Events in position order (sequence, then partition) over what has been folded by the call. */
  async *readAll(fromPosition = 1, opts: ReadAllOptions = {}): AsyncIterable<StoredEvent> {
    await this.catchUp();
    const types = opts.types ? new Set<EventType>(opts.types) : null;
    const P = this.parts.length;
    const ends = this.parts.map((p) => p.events.length);
    const maxN = Math.max(0, ...ends);
    const from = Math.max(1, fromPosition);
    for (let n = sequenceOfPosition(from, P); n <= maxN; n++) {
      for (let p = 0; p < P; p++) {
        if (n > ends[p]) continue;
        const e = this.parts[p].events[n - 1];
        if (e.position < from) continue;
        if (types && !types.has(e.type)) continue;
        yield this.upcast(e);
      }
    }
  }

  /** Every folded event of one partition, in order (folds it first if it is lazy). */
  async partitionEvents(p: number): Promise<readonly StoredEvent[]> {
    await this.catchUp([p]);
    return this.parts[p].events;
  }

  /** Partitions folded so far (a lazy store folds only what it was asked for). */
  get foldedPartitions(): number[] {
    return this.parts.flatMap((part, p) => (part.pending ? [] : [p]));
  }

  subscribe(from: number | Cursor, onEvent: (e: StoredEvent) => void | Promise<void>): { close(): Promise<void> } {
    const P = this.parts.length;
    for (let p = 0; p < P; p++) this.ensureFolded(p);
    const cursor = typeof from === 'number' ? cursorBefore(Math.max(1, from), P) : Array.from({ length: P }, (_, p) => from[p] ?? 0);
    // next index (sequence − 1) to deliver per partition
    const next = cursor.map((pos) => (pos > 0 ? sequenceOfPosition(pos, P) : 0));
    let stopped = false;
    let running: Promise<void> | null = null;
    const pick = (): StoredEvent | undefined => {
      let best: StoredEvent | undefined;
      let bp = -1;
      for (let p = 0; p < P; p++) {
        const e = this.parts[p].events[next[p]];
        if (e && (!best || e.position < best.position)) {
          best = e;
          bp = p;
        }
      }
      if (best) next[bp]++;
      return best;
    };
    const drain = async () => {
      for (let e = pick(); e && !stopped; e = stopped ? undefined : pick()) await onEvent(this.upcast(e));
    };
    const pendingAny = () => this.parts.some((part, p) => next[p] < part.events.length);
    const kick = () => {
      if (running || stopped) return;
      running = drain().finally(() => {
        running = null;
        if (!stopped && pendingAny()) kick();
      });
    };
    this.folded.on('folded', kick);
    kick();
    return {
      close: async () => {
        stopped = true;
        this.folded.off('folded', kick);
        await running;
      },
    };
  }

  async headPosition(): Promise<number> {
    await this.catchUp();
    return Math.max(0, ...this.parts.map((p) => p.seq.position));
  }

  /** Per partition: the last position and its hash (what `audit verify` prints as heads). */
  async heads(): Promise<Array<{ partition: number; count: number; position: number; hash: string }>> {
    await this.catchUp();
    return this.parts.map((p, i) => ({ partition: i, count: p.seq.count, position: p.seq.position, hash: p.seq.lastHash }));
  }

  /**
   * `audit verify` on Kafka: reads every partition from offset 0 (as connecting did), recomputes
   * every event's hash from its record and the chain that links it, checks every writer's witness
   * against the fold, and reports records that are not proposals. An event changed in any
   * partition shows as a witness that no longer matches (any later proposal of that partition),
   * or as a head different from one recorded earlier (`expectHeads`).
   */
  async verify(expectHeads: Array<{ partition: number; position: number; hash: string }> = []): Promise<PartitionVerifyResult[]> {
    await this.catchUp();
    const { chainHash, envelopeText, GENESIS_HASH } = await import('../hash');
    return this.parts.map((part, p) => {
      const problems: string[] = [];
      let prev = GENESIS_HASH;
      const versions = new Map<string, number>();
      for (const [i, e] of part.events.entries()) {
        if (problems.length > 0) break;
        const expected = p + 1 + i * this.parts.length;
        if (e.position !== expected) problems.push(`position ${e.position} where ${expected} belongs`);
        const v = (versions.get(e.streamId) ?? 0) + 1;
        if (e.streamVersion !== v) problems.push(`position ${e.position}: stream ${e.streamId} version ${e.streamVersion}, expected ${v}`);
        versions.set(e.streamId, e.streamVersion);
        const h = chainHash(prev, envelopeText(e.position, JSON.stringify(e.streamId), e.streamVersion, e.type, e.schemaVersion, e.at, payloadTextOf(e)));
        if (e.prevHash !== prev || e.hash !== h) problems.push(`position ${e.position}: hash does not match its record`);
        prev = h;
      }
      for (const m of part.seq.mismatches) {
        problems.push(`position ${m.position}: a later proposal (${m.proposal}) was written after hash ${m.expected.slice(0, 16)}…, the log now gives ${m.actual ? m.actual.slice(0, 16) + '…' : 'no such event'} (an event at or before it was changed or removed)`);
      }
      for (const off of part.malformed) problems.push(`offset ${off}: a record that is not an append proposal`);
      const head = { position: part.seq.position, hash: part.seq.lastHash };
      for (const x of expectHeads.filter((x) => x.partition === p)) {
        const at = x.position === 0 ? undefined : part.events[sequenceOfPosition(x.position, this.parts.length) - 1];
        if (x.position > head.position) problems.push(`truncated: the recorded head ${x.position} is beyond the partition's head ${head.position}`);
        else if (at && at.hash !== x.hash) problems.push(`position ${x.position}: hash differs from the recorded head (the log was changed)`);
      }
      return {
        partition: p,
        records: Number(part.nextOffset),
        proposals: part.proposals,
        rejected: part.rejected,
        events: part.events.length,
        witnesses: part.witnesses,
        head,
        problems,
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.probe);
    for (const [, w] of this.waiting) w({ id: '', ok: false, error: new EventStoreError('CLOSED', 'event store closed') as never });
    this.waiting.clear();
    await this.restarting;
    await Promise.allSettled([this.consumer?.disconnect(), this.producer?.disconnect()]);
    try {
      await this.admin?.deleteGroups([`${this.clientId}-fold`]);
    } catch {
      /* the group may still be settling; it holds no offsets */
    }
    await this.admin?.disconnect().catch(() => undefined);
  }
}
