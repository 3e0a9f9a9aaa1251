import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin, type Consumer, type KafkaMessage, type Producer } from 'kafkajs';
import { BatchingAppender, kafkaClientConfig, type KafkaConnection, decide, recordBytes, evolve, expectedVersionOf, isEnded, loadRun, runStream, RunWriter, WrongExpectedVersion, type EventStore, type ExpectedVersion, type NewEvent, type RunCommand, type RunState, type StoredEvent } from '@capulator/events';
import {
  BadCommand,
  COMMANDS_TOPIC,
  DEFAULT_COMMAND_PARTITIONS,
  DLQ_TOPIC,
  RUNTIME_GROUP,
  decodeCommand,
  ensureCommandTopics,
  type RunOrder,
  type WorkerRunFn,
} from './commands';
import { OffsetTracker } from './offset-tracker';
import { WorkerRunIo } from './run-io';

export interface RuntimeWorkerOptions extends KafkaConnection {
  /** the shared event store (KafkaEventStore): claims and run events are appended here */
  store: EventStore;
  run: WorkerRunFn;
  /** runs executing at once (default 4) */
  concurrency?: number;
  /** commands held here, queued or running, before consumption pauses (default 4 × concurrency) */
  prefetch?: number;
  topic?: string;
  dlqTopic?: string;
  groupId?: string;
  partitions?: number;
  /** unique per process; also the Kafka client id, by which other workers tell whether it is alive */
  workerId?: string;
  /** handling attempts of one command before it is dead-lettered (default 5) */
  maxAttempts?: number;
  retryDelayMs?: number;
  /** Kafka group session timeout: how long a dead worker holds its partitions (default 10 s) */
  sessionTimeoutMs?: number;
  /** on close, how long running runs may go on before they are stopped (default 30 s) */
  drainMs?: number;
  log?: (rec: Record<string, unknown>) => void;
  /** called with what this worker appended (apps/runtime/src/main.ts publishes it on the EventBus) */
  onAppended?: (stored: StoredEvent[]) => void;
  now?: () => Date;
}

interface Ref {
  partition: number;
  offset: bigint;
  generation: number;
}

interface Job {
  order: RunOrder;
  /** the command message, for the dead-letter topic */
  message: KafkaMessage;
  refs: Ref[];
  abort: AbortController;
  state: 'queued' | 'running';
}

/** Another process appended to the run while this worker held it: it no longer owns the outcome. */
class Fenced extends Error {}
/** A handling fault worth retrying (the store lagging, the broker busy…). */
class Retriable extends Error {}

/** one append is one Kafka message: stay well under the broker's message.max.bytes (1 MiB default) */
export const MAX_APPEND_BYTES = 512 * 1024;

/** a run's appends in flight at once when its decisions come faster than one round trip takes them (RunWriter pipeline) */
export const RUN_APPENDS_IN_FLIGHT = 4;

/**
 * Splits a batch of events, in order, into appends of at most MAX_APPEND_BYTES each (recordBytes:
 * a decision's text is measured, not parsed and serialised again).
 */
export function chunks(batch: NewEvent[], max = MAX_APPEND_BYTES): NewEvent[][] {
  const out: NewEvent[][] = [];
  let cur: NewEvent[] = [];
  let bytes = 0;
  for (const e of batch) {
    const n = recordBytes(e);
    if (cur.length > 0 && bytes + n > max) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A runtime worker on the Kafka bus. Consumes `capulator.commands` in the `capulator-runtime`
 * group and executes each RunRequested with the RunFn (runc + agent), appending the run's events
 * to the event store. Guarantees:
 *
 * - exactly-once execution: before starting, the worker appends RunClaimed to `run-<id>` with the
 *   stream version it read; the log decides one winner, the loser skips. Every later append of the
 *   run uses the exact expected version too, so a worker that lost the run (fenced) stops.
 * - a command's offset is committed only when its run's outcome (RunExited/RunFailed) is durable
 *   and every earlier offset of its partition is finished; a crash re-delivers the rest.
 * - a redelivered run claimed by a worker that has left the group (dead) is recorded as
 *   RunFailed ("worker lost"), never executed twice; one claimed by a live member is waited for.
 * - poison messages: unparseable commands go to `capulator.commands.dlq` at once; handling faults
 *   are retried `maxAttempts` times with backoff, then dead-lettered (and the run marked failed).
 */
export class RuntimeWorker {
  readonly id: string;
  private readonly opts: Required<Omit<RuntimeWorkerOptions, 'log' | 'now' | 'workerId' | 'onAppended' | 'ssl' | 'sasl'>> & Pick<RuntimeWorkerOptions, 'log' | 'onAppended'>;
  private readonly now: () => Date;
  private readonly kafka: Kafka;
  private consumer!: Consumer;
  private producer!: Producer;
  private admin!: Admin;
  /** the runs' output to the gateways, their stdin and window sizes from them */
  private io!: WorkerRunIo;
  private readonly jobs = new Map<string, Job>();
  private queue: Job[] = [];
  private running = 0;
  private readonly trackers = new Map<number, OffsetTracker>();
  /** every append of this worker's runs: concurrent ones share one proposal per partition */
  private readonly appender: BatchingAppender;
  private generation = 0;
  private closing = false;
  private readonly waiters = new Set<() => void>();
  private members: { at: number; ids: Set<string> } | null = null;
  private commitChain: Promise<void> = Promise.resolve();
  readonly counters = { executed: 0, skipped: 0, lost: 0, deadLettered: 0, stopped: 0 };

  private constructor(o: RuntimeWorkerOptions) {
    this.appender = new BatchingAppender(o.store);
    const concurrency = o.concurrency ?? 4;
    this.opts = {
      brokers: o.brokers,
      store: o.store,
      run: o.run,
      concurrency,
      prefetch: Math.max(o.prefetch ?? concurrency * 4, concurrency),
      topic: o.topic ?? COMMANDS_TOPIC,
      dlqTopic: o.dlqTopic ?? DLQ_TOPIC,
      groupId: o.groupId ?? RUNTIME_GROUP,
      partitions: o.partitions ?? DEFAULT_COMMAND_PARTITIONS,
      maxAttempts: o.maxAttempts ?? 5,
      retryDelayMs: o.retryDelayMs ?? 200,
      sessionTimeoutMs: o.sessionTimeoutMs ?? 10_000,
      drainMs: o.drainMs ?? 30_000,
      log: o.log,
      onAppended: o.onAppended,
    };
    this.now = o.now ?? (() => new Date());
    this.id = o.workerId ?? `capulator-runtime-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.kafka = new Kafka({ clientId: this.id, ...kafkaClientConfig(o), logLevel: logLevel.NOTHING, retry: { retries: 8 } });
  }

  static async start(o: RuntimeWorkerOptions): Promise<RuntimeWorker> {
    const w = new RuntimeWorker(o);
    await w.begin();
    return w;
  }

  get stats(): { queued: number; running: number } {
    return { queued: this.queue.length, running: this.running };
  }

  private log(rec: Record<string, unknown>): void {
    this.opts.log?.({ worker: this.id, ...rec });
  }

  private async begin(): Promise<void> {
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await ensureCommandTopics(this.admin, this.opts.partitions, this.opts.topic, this.opts.dlqTopic);
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
    // before any run is taken: input for a run is sent once it started here
    this.io = await WorkerRunIo.start(this.kafka, this.id, (runId) => this.jobs.get(runId)?.state === 'running', (rec) => this.log(rec), this.opts.partitions);
    await this.startConsumer();
    this.log({ msg: 'runtime worker consuming', topic: this.opts.topic, group: this.opts.groupId, concurrency: this.opts.concurrency });
  }

  private async startConsumer(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      sessionTimeout: this.opts.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.opts.sessionTimeoutMs / 5)),
      rebalanceTimeout: Math.max(this.opts.sessionTimeoutMs * 3, 30_000),
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onJoin(e.payload.memberAssignment[this.opts.topic] ?? []));
    // kafkajs gives up on a consumer after some errors (restart: false): without this the worker
    // would stay in the group's eyes gone and take no more work, silently
    consumer.on(consumer.events.CRASH, (e) => {
      if (e.payload.restart || this.closing || this.consumer !== consumer) return;
      this.log({ level: 'warn', msg: 'command consumer stopped by its client; starting it again', err: e.payload.error?.message });
      void (async () => {
        await consumer.disconnect().catch(() => undefined);
        for (let delay = 1_000; !this.closing; delay = Math.min(delay * 2, 30_000)) {
          try {
            await this.startConsumer();
            return;
          } catch (err) {
            this.log({ level: 'warn', msg: 'command consumer could not be started again; trying later', err: String(err) });
            await sleep(delay);
          }
        }
      })();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachMessage: async ({ partition, message, heartbeat }) => this.onMessage(partition, message, heartbeat),
    });
  }

  /** A new generation: offsets and queued (unclaimed) commands of the old one are handed back. */
  private onJoin(partitions: number[]): void {
    this.generation++;
    this.trackers.clear();
    for (const job of this.queue) this.jobs.delete(job.order.runId);
    this.queue = [];
    this.wake();
    this.log({ msg: 'assigned partitions', partitions: [...partitions].sort((a, b) => a - b), generation: this.generation });
  }

  private tracker(partition: number): OffsetTracker {
    let t = this.trackers.get(partition);
    if (!t) this.trackers.set(partition, (t = new OffsetTracker()));
    return t;
  }

  private async onMessage(partition: number, message: KafkaMessage, heartbeat: () => Promise<void>): Promise<void> {
    const gen = this.generation;
    const ref: Ref = { partition, offset: BigInt(message.offset), generation: gen };
    this.tracker(partition).add(ref.offset);
    let cmd;
    try {
      cmd = decodeCommand(message.value);
    } catch (err) {
      await this.deadLetter(message, partition, (err as Error).message, 1);
      this.finish([ref]);
      return;
    }
    if (cmd.kind === 'StopRun') {
      await this.stopRun(cmd.runId);
      this.finish([ref]);
      return;
    }
    const known = this.jobs.get(cmd.run.runId);
    if (known) {
      known.refs.push(ref); // delivered again after a rebalance while it runs here
      return;
    }
    const job: Job = { order: cmd.run, message, refs: [ref], abort: new AbortController(), state: 'queued' };
    this.jobs.set(cmd.run.runId, job);
    this.queue.push(job);
    this.pump();
    // back-pressure: hold this partition while enough commands wait here
    while (!this.closing && this.generation === gen && this.queue.length + this.running >= this.opts.prefetch) {
      await this.waitChange(1000);
      await heartbeat();
    }
  }

  private waitChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private pump(): void {
    while (!this.closing && this.running < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.start(job);
    }
  }

  private start(job: Job): void {
    job.state = 'running';
    this.running++;
    void this.handle(job).finally(() => {
      this.running--;
      this.jobs.delete(job.order.runId);
      this.finish(job.refs);
      this.wake();
      this.pump();
    });
  }

  private async stopRun(runId: string): Promise<void> {
    const job = this.jobs.get(runId);
    if (!job) return;
    job.abort.abort();
    this.counters.stopped++;
    if (job.state === 'queued') {
      // settle it now rather than after the queue ahead of it: it will not run
      this.queue = this.queue.filter((j) => j !== job);
      this.start(job);
    }
  }

  /** Marks offsets finished and commits what became committable. */
  private finish(refs: Ref[]): void {
    const touched = new Set<number>();
    for (const r of refs) {
      if (r.generation !== this.generation) continue; // from before a rebalance: redelivered since
      this.trackers.get(r.partition)?.done(r.offset);
      touched.add(r.partition);
    }
    const offsets: Array<{ topic: string; partition: number; offset: string }> = [];
    for (const p of touched) {
      const point = this.trackers.get(p)?.commitPoint();
      if (point != null) offsets.push({ topic: this.opts.topic, partition: p, offset: point.toString() });
    }
    if (offsets.length === 0) return;
    this.commitChain = this.commitChain.then(() =>
      this.consumer.commitOffsets(offsets).catch((err) => this.log({ msg: 'offset commit failed (a rebalance re-delivers)', offsets, err: String(err) })),
    );
  }

  private async handle(job: Job): Promise<void> {
    const { runId } = job.order;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.once(job);
        return;
      } catch (err) {
        if (err instanceof Fenced) {
          this.log({ msg: 'run taken over by another process; stopped here', runId });
          return;
        }
        if (this.closing) {
          job.refs.length = 0; // not finished here: the command is delivered again to a worker that stays
          return;
        }
        if (attempt >= this.opts.maxAttempts) {
          this.log({ msg: 'command dead-lettered', runId, attempts: attempt, err: String((err as Error)?.message ?? err) });
          await this.deadLetter(job.message, job.refs[0].partition, (err as Error)?.message ?? String(err), attempt);
          await this.failIfOpen(runId, `dead-lettered after ${attempt} attempts: ${(err as Error)?.message ?? String(err)}`);
          return;
        }
        this.log({ msg: 'command failed; retrying', runId, attempt, err: String((err as Error)?.message ?? err) });
        await sleep(Math.min(this.opts.retryDelayMs * 2 ** (attempt - 1), 5_000));
      }
    }
  }

  /** The run's state: its stream folded by the run decider's `evolve`. */
  private async readRun(runId: string): Promise<RunState> {
    // while the log is unreachable, wait for it (a broker outage must not fail a run)
    for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        return await loadRun(this.opts.store, runId);
      } catch (err) {
        if ((err as { code?: string })?.code !== 'UNAVAILABLE' || this.closing) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Decides `cmd` on `s` and appends with the version read; false when the stream moved first. */
  private async tryDecide(s: RunState, cmd: RunCommand): Promise<StoredEvent[] | null> {
    return this.tryAppend(s.runId, s.version, decide(cmd, s));
  }

  private failRun(reason: string): RunCommand {
    return { type: 'FailRun', at: this.now().toISOString(), stage: 'runtime', reason };
  }

  /**
   * Appends with the exact expected version; null when the stream moved first. While the log is
   * unreachable (a broker outage) the append is retried until it is back, so a run in flight is
   * recorded as it ended; an append whose outcome was unknown is looked for before it is retried.
   */
  private async tryAppend(runId: string, version: number, events: NewEvent[]): Promise<StoredEvent[] | null> {
    try {
      const stored = await this.appendHolding(runId, expectedVersionOf(version), events, true);
      return stored;
    } catch (err) {
      if (err instanceof WrongExpectedVersion) return null;
      throw err;
    }
  }

  /**
   * store.append, holding on while the log is unreachable: retried until it is back; after an
   * append whose outcome was unknown, a version conflict is checked against our own events first.
   */
  private async appendHolding(runId: string, expected: ExpectedVersion, events: NewEvent[], notify: boolean, maybeLanded = false): Promise<StoredEvent[]> {
    const version = typeof expected === 'number' ? expected : 0;
    let unsure = maybeLanded;
    for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        // concurrent runs' appends go as one proposal per partition (group commit, as gateways do)
        const stored = await this.appender.append({ streamId: runStream(runId), expectedVersion: expected, events });
        if (notify) this.opts.onAppended?.(stored);
        return stored;
      } catch (err) {
        if (err instanceof WrongExpectedVersion) {
          const landed = unsure ? await this.landed(runId, version, events).catch(() => undefined) : undefined;
          if (!landed) throw err;
          if (notify) this.opts.onAppended?.(landed);
          return landed;
        }
        if ((err as { code?: string })?.code !== 'UNAVAILABLE') throw err;
        if (delay === 250) this.log({ level: 'warn', msg: 'event log unavailable: holding the run\'s events until it is back', runId, err: String(err) });
        if ((err as { ambiguous?: boolean }).ambiguous) {
          unsure = true;
          const landed = await this.landed(runId, version, events).catch(() => undefined);
          if (landed) {
            if (notify) this.opts.onAppended?.(landed);
            return landed;
          }
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Our append if it is in the log after all (same types and times right after `version`). */
  private async landed(runId: string, version: number, events: NewEvent[]): Promise<StoredEvent[] | undefined> {
    let all: StoredEvent[] = [];
    for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        all = [];
        for await (const e of this.opts.store.readStream(runStream(runId), version + 1)) all.push(e);
        break;
      } catch (err) {
        if ((err as { code?: string })?.code !== 'UNAVAILABLE' || this.closing) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    const mine = all.slice(0, events.length);
    return mine.length === events.length && mine.every((e, i) => e.type === events[i].type && e.at === events[i].at) ? mine : undefined;
  }

  private async failIfOpen(runId: string, reason: string): Promise<void> {
    try {
      for (let i = 0; i < 5; i++) {
        const s = await this.readRun(runId);
        if (s.phase === 'none' || isEnded(s)) return;
        if (await this.tryDecide(s, this.failRun(reason))) return;
      }
    } catch (err) {
      this.log({ msg: 'could not record the run as failed', runId, err: String(err) });
    }
  }

  private async isMember(workerId: string): Promise<boolean> {
    if (!this.members || Date.now() - this.members.at > 500) {
      const d = await this.admin.describeGroups([this.opts.groupId]);
      this.members = { at: Date.now(), ids: new Set(d.groups[0]?.members.map((m) => m.clientId) ?? []) };
    }
    return this.members.ids.has(workerId);
  }

  /** One attempt: claim (or settle) the run, then execute it — a shell around the run decider. */
  private async once(job: Job): Promise<void> {
    const { runId } = job.order;
    let claimed: RunState;
    for (;;) {
      const s = await this.readRun(runId);
      if (s.phase === 'none') throw new Retriable(`run ${runId}: RunRequested is not in the event store`);
      if (isEnded(s)) {
        this.counters.skipped++;
        return;
      }
      if (s.claimant === this.id) {
        // claimed in an earlier attempt of ours that failed midway: never run it twice
        if (await this.tryDecide(s, this.failRun('the runtime worker faulted while it ran'))) return;
        continue;
      }
      if (s.claimant) {
        if (await this.isMember(s.claimant)) {
          // alive (a rebalance moved the command here): it owns the outcome; wait for it
          await this.waitChange(1000);
          if (this.closing) throw new Retriable('closing while another worker still runs it');
          continue;
        }
        if (await this.tryDecide(s, this.failRun(`worker lost: ${s.claimant} left before the run ended`))) {
          this.counters.lost++;
          this.log({ msg: 'run recorded failed: its worker was lost', runId, claimant: s.claimant });
          return;
        }
        continue;
      }
      if (job.abort.signal.aborted) {
        if (await this.tryDecide(s, this.failRun('stopped before it started'))) return;
        continue;
      }
      const events = decide({ type: 'ClaimRun', at: this.now().toISOString(), worker: this.id }, s);
      const stored = await this.tryAppend(runId, s.version, events);
      if (!stored) continue; // someone else moved first: look again
      claimed = stored.reduce(evolve, s);
      break;
    }
    this.counters.executed++;
    // every later append uses the exact expected version: another writer's append fences this one
    const stream = runStream(runId);
    const writer = new RunWriter((events, expected, unsure) => this.appendHolding(runId, expected, events, false, unsure), claimed, {
      split: (b) => chunks(b),
      // a busy run's chunks overlap their round trips to the broker (each one attempt, straight to
      // the store: the group commit would hold the second until the first is back)
      pipeline: { depth: RUN_APPENDS_IN_FLIGHT, tryOnce: (events, expected) => this.opts.store.append(stream, expected, events) },
      ...(this.opts.onAppended ? { onAppended: this.opts.onAppended } : {}),
    });
    const fencedOr = (err: Error | undefined): Error | undefined => (err instanceof WrongExpectedVersion ? new Fenced() : err);
    try {
      for await (const cmd of this.opts.run(job.order, { signal: job.abort.signal })) {
        writer.submit(cmd);
        await writer.drain();
        const err = fencedOr(writer.failed);
        if (err) {
          job.abort.abort();
          throw err;
        }
      }
      if (!isEnded(writer.state)) {
        writer.submit(this.failRun('the runner ended without an outcome'));
        await writer.drain();
        const err = fencedOr(writer.failed);
        if (err) throw err;
      }
    } catch (err) {
      if (err instanceof Fenced) throw err;
      job.abort.abort();
      if (isEnded(writer.state) && !writer.failed) return;
      // the outcome must be durable before the offset is committed: a failed append here is retried
      // by handle(), which finds our own claim and records the failure
      const s = await this.readRun(runId);
      if (isEnded(s)) return;
      if (!(await this.tryDecide(s, this.failRun((err as Error)?.message ?? String(err))))) throw new Fenced();
    }
  }

  private async deadLetter(message: KafkaMessage, partition: number, reason: string, attempts: number): Promise<void> {
    this.counters.deadLettered++;
    await this.producer.send({
      topic: this.opts.dlqTopic,
      acks: -1,
      messages: [
        {
          key: message.key,
          value: message.value,
          headers: {
            'capulator-error': reason,
            'capulator-source': `${this.opts.topic}/${partition}/${message.offset}`,
            'capulator-attempts': String(attempts),
            'capulator-worker': this.id,
          },
        },
      ],
    });
  }

  /**
   * Stops taking commands, lets running runs finish (up to drainMs, then stops them), commits,
   * and leaves the group; queued commands go to the other workers.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.consumer.pause([{ topic: this.opts.topic }]);
    for (const job of this.queue) this.jobs.delete(job.order.runId);
    this.queue = [];
    this.wake();
    const deadline = Date.now() + this.opts.drainMs;
    while (this.running > 0 && Date.now() < deadline) await this.waitChange(200);
    for (const job of this.jobs.values()) job.abort.abort();
    while (this.running > 0) await this.waitChange(200);
    // the rest talks to the broker: each step is bounded, so a client stuck on a broker that
    // paused or restarted cannot keep the worker from stopping (offsets not committed are
    // re-delivered, and a run that has ended is skipped)
    for (const [step, p] of [
      ['commit offsets', () => this.commitChain],
      ['disconnect the consumer', () => this.consumer.disconnect()],
      ['close the run output relay', () => this.io.close()],
      ['disconnect the producer', () => this.producer.disconnect()],
      ['disconnect the admin client', () => this.admin.disconnect()],
    ] as const) {
      const ok = await boundedStep(p(), BROKER_STEP_MS);
      if (!ok) this.log({ level: 'warn', msg: 'shutdown step given up', step, afterMs: BROKER_STEP_MS });
    }
    this.log({ msg: 'runtime worker stopped', ...this.counters });
  }
}

/** How long a shutdown step that talks to the broker may take before the worker goes on without it. */
const BROKER_STEP_MS = 5_000;

/** true when `p` settled (either way) within `ms`. */
async function boundedStep(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
