import { hostname } from 'node:os';
import { Kafka, logLevel, CompressionTypes, Partitioners, type Admin, type Producer, type Message } from 'kafkajs';
import {
  COMMANDS_TOPIC,
  DEFAULT_COMMAND_PARTITIONS,
  RUNTIME_GROUP,
  encodeCommand,
  ensureCommandTopics,
  type BusCommand,
} from '../../../runtime/src/worker/commands';
import { GatewayRunIo, StdinRefused } from '../../../runtime/src/worker/run-io';
import { IllegalState } from '../errors/domain.error';
import type { RunExecutor, RunRequest } from '../runs/run-executor';
import { DEFAULT_MAX_QUEUED } from '../gateway.options';
import type { CommandLedger, CommandMark } from '../runs/orphans';
import { Coalescer, kafkaClientConfig, type KafkaConnection } from '@capulator/events';

export interface KafkaRunExecutorOptions extends KafkaConnection {
  topic?: string;
  /** partitions of the command topic when this executor creates it */
  partitions?: number;
  clientId?: string;
  now?: () => Date;
  /** runs that may wait cluster-wide before the gateway refuses submissions (503 + Retry-After) */
  maxQueued?: number;
  /** the runtime workers' consumer group (whose committed offsets say which commands are handled) */
  groupId?: string;
  log?: (rec: Record<string, unknown>) => void;
}

/** how long a command may wait for the broker before its submission is refused */
const SEND_TIMEOUT_MS = 2_000;

interface Pending {
  message: Message;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The runtime behind the gateway when the bus is Kafka: submit() produces a RunRequested
 * command on `capulator.commands`, keyed by run id (idempotent producer, acks from all in-sync
 * replicas), and resolves once the broker has it; stop() produces StopRun with the same key, so
 * it lands on the partition, hence the worker, that has the run. The worker appends the run's
 * events to the event store, where every gateway reads them.
 *
 * Sends are coalesced: while one produce request is in flight, later commands wait and go out
 * together in the next one (one request per round trip, whatever the submission rate).
 */
export class KafkaRunExecutor implements RunExecutor, CommandLedger {
  private readonly topic: string;
  /** the key → partition function the producer uses (kafkajs' default, Java-compatible murmur2) */
  private readonly partitioner = Partitioners.DefaultPartitioner();
  /** the command topic as last measured: produced and not yet finished by the workers */
  readonly stats = { commandLag: 0 };
  /** one produce request at a time; commands asked for meanwhile go in the next */
  private readonly outbox = new Coalescer<Pending>((batch) => this.sendBatch(batch));
  private closed = false;
  readonly maxQueued: number;
  readonly remote = true;

  private constructor(
    private readonly producer: Producer,
    private readonly admin: Admin,
    topic: string,
    private readonly groupId: string,
    private readonly now: () => Date,
    maxQueued: number,
    private readonly io: GatewayRunIo,
  ) {
    this.topic = topic;
    this.maxQueued = maxQueued;
  }

  static async connect(opts: KafkaRunExecutorOptions): Promise<KafkaRunExecutor> {
    const clientId = opts.clientId ?? `capulator-gateway-${hostname()}-${process.pid}`;
    const kafka = new Kafka({
      clientId,
      ...kafkaClientConfig(opts),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 5_000,
      retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureCommandTopics(admin, opts.partitions ?? DEFAULT_COMMAND_PARTITIONS, opts.topic ?? COMMANDS_TOPIC);
    } catch (err) {
      await admin.disconnect();
      throw err;
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    let io: GatewayRunIo | undefined;
    try {
      await producer.connect();
      io = await GatewayRunIo.start(kafka, clientId, opts.log ?? (() => undefined), opts.partitions);
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
      throw err;
    }
    return new KafkaRunExecutor(producer, admin, opts.topic ?? COMMANDS_TOPIC, opts.groupId ?? RUNTIME_GROUP, opts.now ?? (() => new Date()), opts.maxQueued ?? DEFAULT_MAX_QUEUED, io);
  }

  /** The end offset of every partition of the command topic, now. */
  private async ends(): Promise<Map<number, bigint>> {
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  }

  /** What the workers' group has committed (finished) per partition; -1 when nothing yet. */
  private async committed(): Promise<Map<number, bigint>> {
    const [t] = await this.admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] });
    return new Map((t?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  }

  async markFor(runId: string): Promise<CommandMark> {
    const ends = await this.ends();
    const partitionMetadata = [...ends.keys()].sort((a, b) => a - b).map((partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
    const partition = this.partitioner({ topic: this.topic, partitionMetadata, message: { key: runId, value: null } });
    return { partition, offset: ends.get(partition) ?? 0n };
  }

  async handled(mark: CommandMark, _runId?: string): Promise<boolean> {
    return mark.offset <= 0n || ((await this.committed()).get(mark.partition) ?? -1n) >= mark.offset;
  }

  /** Commands produced and not yet finished by the workers (all partitions); kept in `stats`. */
  async measureLag(): Promise<number> {
    const [ends, done] = await Promise.all([this.ends(), this.committed()]);
    let lag = 0n;
    for (const [p, high] of ends) {
      const c = done.get(p) ?? -1n;
      lag += high - (c < 0n ? 0n : c);
    }
    this.stats.commandLag = Number(lag);
    return this.stats.commandLag;
  }

  submit(req: RunRequest): Promise<void> {
    return this.send({ v: 1, kind: 'RunRequested', at: this.now().toISOString(), run: req });
  }

  async stop(runId: string): Promise<boolean> {
    await this.send({ v: 1, kind: 'StopRun', at: this.now().toISOString(), runId });
    return true;
  }

  /**
   * Sends to the stdin of a run that has started on a worker (the gateway waits for RunStarted:
   * RunsService); resolves once the run's stdin took the bytes. The run's output reaches this
   * process's RunOutputHub from `capulator.output` (worker/run-io.ts).
   */
  async writeStdin(runId: string, data: Buffer, eof: boolean): Promise<boolean> {
    try {
      await this.io.writeStdin(runId, data, eof);
    } catch (err) {
      if (err instanceof StdinRefused) throw new IllegalState(err.message);
      throw err;
    }
    return true;
  }

  resizeTty(runId: string, size: { rows: number; cols: number }): boolean {
    this.io.resize(runId, size);
    return true;
  }

  runEnded(runId: string): void {
    this.io.runEnded(runId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.io.close();
    while (this.outbox.busy) await new Promise((r) => setTimeout(r, 5));
    await this.producer.disconnect();
    await this.admin.disconnect().catch(() => undefined);
  }

  private send(c: BusCommand): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the Kafka run executor is closed'));
    const key = c.kind === 'StopRun' ? c.runId : c.run.runId;
    return new Promise<void>((resolve, reject) => {
      const p: Pending = { message: { key, value: encodeCommand(c) }, resolve, reject };
      // still waiting behind a request the broker does not answer: refused, certainly not sent
      const timer = setTimeout(() => {
        if (!this.outbox.remove(p)) return;
        reject(Object.assign(new Error(`the Kafka broker did not take the command within ${SEND_TIMEOUT_MS} ms`), { code: 'UNAVAILABLE' }));
      }, SEND_TIMEOUT_MS);
      p.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      p.reject = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      this.outbox.push(p);
    });
  }

  private async sendBatch(batch: Pending[]): Promise<void> {
    // a broker that does not answer within SEND_TIMEOUT_MS: the submissions are refused (503;
    // the gateway then records their runs failed), the request finishes in the background
    const send = this.producer.send({ topic: this.topic, acks: -1, compression: CompressionTypes.None, messages: batch.map((p) => p.message) });
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((resolve) => (timer = setTimeout(() => resolve('slow'), SEND_TIMEOUT_MS)));
    try {
      if ((await Promise.race([send, slow])) === 'slow') {
        const err = Object.assign(new Error(`the Kafka broker did not take the command within ${SEND_TIMEOUT_MS} ms`), { code: 'UNAVAILABLE', ambiguous: true });
        for (const p of batch) p.reject(err);
        await send.catch(() => undefined);
      } else for (const p of batch) p.resolve();
    } catch (err) {
      for (const p of batch) p.reject(Object.assign(err as Error, { code: 'UNAVAILABLE', ambiguous: true }));
    } finally {
      clearTimeout(timer);
    }
  }
}
