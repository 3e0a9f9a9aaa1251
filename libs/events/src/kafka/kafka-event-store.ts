import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Kafka, logLevel, type Consumer, type Producer, type Admin, CompressionTypes } from 'kafkajs';
import type { EventType, NewEvent, StoredEvent } from '../contracts';
import { EventStoreError } from '../errors';
import type { AppendRequest, EventStore, ExpectedVersion, ReadAllOptions } from '../store';
import { defaultUpcasters, type UpcasterRegistry } from '../upcast';
import { Sequencer, type Proposal, type Verdict } from './sequencer';
export { parseKafkaUrl } from './kafka-url';

export interface KafkaEventStoreOptions {
  /** host:port list */
  brokers: string[];
  /** the event log topic (one partition: the log is totally ordered) */
  topic?: string;
  clientId?: string;
  upcasters?: UpcasterRegistry;
  /** how long an append waits to see its own proposal come back (ms) */
  appendTimeoutMs?: number;
}

let instances = 0;
/** proposals coalesced into one produce request, at most this many bytes (UTF-16 units, ≈ bytes) */
const MAX_COALESCED_BYTES = 768 * 1024;

/**
 * The EventStore on Apache Kafka. Every append is one message (a Proposal) on a single-partition
 * topic, produced by an idempotent producer with acks from all in-sync replicas; each store
 * instance tails the topic from offset 0 and folds it through the deterministic Sequencer, which
 * assigns positions, stream versions and the hash chain, and rejects proposals whose expected
 * version no longer holds. An append resolves when its own proposal has been folded.
 *
 * The folded events are kept in memory (the Kafka log is the durable copy); a process that
 * restarts folds the log again.
 */
export class KafkaEventStore implements EventStore {
  readonly upcasters: UpcasterRegistry;
  private readonly kafka: Kafka;
  private readonly topic: string;
  private readonly clientId: string;
  private producer!: Producer;
  private consumer!: Consumer;
  private admin!: Admin;
  private readonly seq = new Sequencer();
  private readonly log: StoredEvent[] = [];
  private readonly byStream = new Map<string, StoredEvent[]>();
  private readonly waiting = new Map<string, (v: Verdict) => void>();
  private readonly folded = new EventEmitter();
  private nextOffset = 0n;
  private outbox: Array<{ message: { key: string; value: string }; resolve: () => void; reject: (err: unknown) => void }> = [];
  private sending = false;
  private counter = 0;
  private closed = false;
  private readonly appendTimeoutMs: number;

  private constructor(private readonly opts: KafkaEventStoreOptions) {
    this.topic = opts.topic ?? 'capulator.events';
    this.clientId = opts.clientId ?? `capulator-${hostname()}-${process.pid}-${++instances}`;
    this.upcasters = opts.upcasters ?? defaultUpcasters();
    this.appendTimeoutMs = opts.appendTimeoutMs ?? 30_000;
    this.kafka = new Kafka({ clientId: this.clientId, brokers: opts.brokers, logLevel: logLevel.NOTHING, retry: { retries: 8 } });
    this.folded.setMaxListeners(0);
  }

  static async connect(opts: KafkaEventStoreOptions): Promise<KafkaEventStore> {
    const s = new KafkaEventStore(opts);
    await s.start();
    return s;
  }

  private async start(): Promise<void> {
    this.admin = this.kafka.admin();
    await this.admin.connect();
    const topics = await this.admin.listTopics();
    if (!topics.includes(this.topic)) {
      try {
        await this.admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: this.topic, numPartitions: 1, replicationFactor: -1, configEntries: [{ name: 'min.insync.replicas', value: '1' }] }],
        });
      } catch (err) {
        // another instance created it first
        if (!String((err as Error).message).includes('already exists')) throw err;
      }
    }
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
    // A group of our own, never committed: every instance reads the whole log.
    this.consumer = this.kafka.consumer({ groupId: `${this.clientId}-fold`, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 20 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          this.foldMessage(BigInt(m.offset), m.value);
        }
      },
    });
    await this.catchUp();
  }

  private foldMessage(offset: bigint, value: Buffer | null): void {
    if (offset < this.nextOffset) return; // redelivery after a rebalance
    this.nextOffset = offset + 1n;
    if (!value) return;
    let p: Proposal;
    try {
      p = JSON.parse(value.toString('utf8')) as Proposal;
    } catch {
      return; // not ours: skipped by every reader alike
    }
    if (!p || typeof p.id !== 'string' || !Array.isArray(p.requests)) return;
    const verdict = this.seq.apply(p);
    if (verdict.ok) {
      for (const evs of verdict.events) {
        for (const e of evs) {
          this.log.push(e);
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
    this.folded.emit('folded');
  }

  /** Waits until every message produced before this call has been folded. */
  private async catchUp(): Promise<void> {
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    const high = BigInt(offsets[0]?.high ?? '0');
    await this.waitFor(() => this.nextOffset >= high, `the log up to offset ${high}`);
  }

  private waitFor(cond: () => boolean, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.folded.off('folded', check);
        reject(new EventStoreError('CLOSED', `Kafka event store: timed out waiting for ${what}`));
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
    const early = this.seq.precheck(requests);
    // An expected-version conflict seen locally may be stale only in the direction of "more
    // events exist", so it is final; invalid input is final too.
    if (early) throw early;
    const id = `${this.clientId}:${++this.counter}`;
    const verdict = new Promise<Verdict>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new EventStoreError('CLOSED', `Kafka event store: append ${id} not seen on ${this.topic} within ${this.appendTimeoutMs} ms`));
      }, this.appendTimeoutMs);
      this.waiting.set(id, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
    const proposal: Proposal = { id, requests };
    await this.produce({ key: requests[0]?.streamId ?? '', value: JSON.stringify(proposal) });
    const v = await verdict;
    if (!v.ok) throw v.error;
    return v.events;
  }

  /**
   * Produces one proposal. Proposals that arrive while a produce request is in flight wait and go
   * out together in the next request (still one message each, in arrival order), so concurrent
   * appenders share round trips instead of queueing one request each behind the in-flight one.
   */
  private produce(message: { key: string; value: string }): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ message, resolve, reject });
      if (!this.sending) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.sending = true;
    try {
      while (this.outbox.length > 0) {
        // one record batch must stay under the broker's message.max.bytes (1 MiB by default)
        let n = 0;
        let bytes = 0;
        while (n < this.outbox.length && (n === 0 || bytes + this.outbox[n].message.value.length <= MAX_COALESCED_BYTES)) bytes += this.outbox[n++].message.value.length;
        const batch = this.outbox.splice(0, n);
        try {
          await this.producer.send({ topic: this.topic, acks: -1, compression: CompressionTypes.None, messages: batch.map((o) => o.message) });
          for (const o of batch) o.resolve();
        } catch (err) {
          for (const o of batch) o.reject(err);
        }
      }
    } finally {
      this.sending = false;
    }
  }

  private upcast(e: StoredEvent): StoredEvent {
    if (e.schemaVersion === this.upcasters.currentVersion(e.type)) return e;
    const { schemaVersion, payload } = this.upcasters.upcast(e.type, e.schemaVersion, e.payload);
    return { ...e, schemaVersion, payload: payload as StoredEvent['payload'] };
  }

  async *readStream(streamId: string, fromVersion = 1): AsyncIterable<StoredEvent> {
    await this.catchUp();
    const s = this.byStream.get(streamId) ?? [];
    for (let i = Math.max(0, fromVersion - 1); i < s.length; i++) yield this.upcast(s[i]);
  }

  async *readAll(fromPosition = 1, opts: ReadAllOptions = {}): AsyncIterable<StoredEvent> {
    await this.catchUp();
    const types = opts.types ? new Set<EventType>(opts.types) : null;
    const end = this.log.length;
    for (let i = Math.max(0, fromPosition - 1); i < end; i++) {
      const e = this.log[i];
      if (types && !types.has(e.type)) continue;
      yield this.upcast(e);
    }
  }

  subscribe(fromPosition: number, onEvent: (e: StoredEvent) => void | Promise<void>): { close(): Promise<void> } {
    let next = Math.max(1, fromPosition);
    let stopped = false;
    let running: Promise<void> | null = null;
    const drain = async () => {
      while (!stopped && next <= this.log.length) {
        const e = this.log[next - 1];
        next++;
        await onEvent(this.upcast(e));
      }
    };
    const kick = () => {
      if (running || stopped) return;
      running = drain().finally(() => {
        running = null;
        if (!stopped && next <= this.log.length) kick();
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
    return this.seq.position;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [, w] of this.waiting) w({ id: '', ok: false, error: new EventStoreError('CLOSED', 'event store closed') as never });
    this.waiting.clear();
    await Promise.allSettled([this.consumer?.disconnect(), this.producer?.disconnect()]);
    try {
      await this.admin?.deleteGroups([`${this.clientId}-fold`]);
    } catch {
      /* the group may still be settling; it holds no offsets */
    }
    await this.admin?.disconnect();
  }
}
