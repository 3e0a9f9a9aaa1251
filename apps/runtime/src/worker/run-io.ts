import { randomBytes } from 'node:crypto';
import { CompressionTypes, type Consumer, type Kafka, type Message, type Producer } from 'kafkajs';
import { Coalescer, ensureTopics } from '@capulator/events';
import { RUN_INPUT_MAX_WRITE_BYTES, RunInputClosed, runInput, type TerminalSize } from '../run/run-input';
import { runOutput, type OutputStream } from '../run/run-output';

/**
 * The terminal side of runs on the Kafka bus: what a program writes reaches the gateways, and what
 * a client sends (stdin, window sizes) reaches the worker that runs it.
 *
 * - `capulator.output` (worker → gateways), keyed by run id: the program's output as the worker's
 *   RunOutputHub receives it ("out"), its end ("end"), and each stdin message's fate ("taken" once
 *   the run's stdin took it, "refused" when it could not).
 * - `capulator.input` (gateway → workers), keyed by run id: stdin bytes ("stdin", at most
 *   IO_PIECE_BYTES each, `eof` closes it after them) and window sizes ("resize").
 *
 * Every process reads every partition of the topic it reads, from its end when it starts (a
 * consumer group of its own, nothing committed): a gateway keeps the output of the runs it sees
 * in its RunOutputHub, as for its own runs; a worker applies input only to the runs it has.
 * Input is sent only once the run has started (the gateway waits for RunStarted), so the worker
 * that has the run is the one that answers. The topics keep an hour (retention.ms): they are a
 * relay, not a record; the audit record is the event log.
 */
export const OUTPUT_TOPIC = 'capulator.output';
export const INPUT_TOPIC = 'capulator.input';
export const DEFAULT_IO_PARTITIONS = 8;
/** The most stdin bytes in one input message (a client's write of up to 1 MiB goes as several). */
export const IO_PIECE_BYTES = 192 * 1024;
/** The most output text in one output message (a worker's chunks are joined up to this). */
const OUTPUT_MESSAGE_BYTES = 256 * 1024;
/** Messages waiting for the broker beyond this are dropped (counted), so a broker outage cannot fill a process's memory. */
const RELAY_QUEUE_BYTES = 16 * 1024 * 1024;
const RETENTION_MS = String(60 * 60 * 1000);
/** This process's mark on the output it relays: a gateway in the same process (role all) has that output already. */
const FROM = randomBytes(8).toString('hex');

export type OutputMessage =
  | { v: 1; kind: 'out'; runId: string; from: string; stream: OutputStream; text: string }
  | { v: 1; kind: 'end'; runId: string; from: string }
  | { v: 1; kind: 'taken'; runId: string; id: string }
  | { v: 1; kind: 'refused'; runId: string; id: string; reason: string };

export type InputMessage =
  | { v: 1; kind: 'stdin'; runId: string; id: string; data: string; eof: boolean }
  | { v: 1; kind: 'resize'; runId: string; rows: number; cols: number };

function parse<T extends { v: number; kind: string; runId: string }>(value: Buffer | null): T | undefined {
  if (!value) return undefined;
  try {
    const m = JSON.parse(value.toString('utf8')) as T;
    return m && m.v === 1 && typeof m.kind === 'string' && typeof m.runId === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

export async function ensureIoTopics(kafka: Kafka, partitions = DEFAULT_IO_PARTITIONS): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const configEntries = [{ name: 'retention.ms', value: RETENTION_MS }];
    await ensureTopics(admin, [
      { topic: OUTPUT_TOPIC, numPartitions: partitions, configEntries },
      { topic: INPUT_TOPIC, numPartitions: partitions, configEntries },
    ]);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A producer whose sends are coalesced: while one request is in flight, later messages wait and
 * go out together in the next (in order, one request at a time). A message the broker does not
 * take is reported to `onLost`, not retried: the relay carries no record.
 */
class Relay {
  private readonly outbox = new Coalescer<Message>((batch) => this.sendBatch(batch));
  /** bytes waiting (not yet in a request) */
  private bytes = 0;
  private closed = false;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly onLost: (n: number, err: unknown) => void,
  ) {}

  send(key: string, value: unknown): void {
    if (this.closed) return;
    const buf = Buffer.from(JSON.stringify(value), 'utf8');
    if (this.bytes + buf.length > RELAY_QUEUE_BYTES) {
      this.onLost(1, new Error('the relay queue is full'));
      return;
    }
    this.bytes += buf.length;
    this.outbox.push({ key, value: buf });
  }

  private async sendBatch(batch: Message[]): Promise<void> {
    for (const m of batch) this.bytes -= (m.value as Buffer).length;
    try {
      await this.producer.send({ topic: this.topic, acks: -1, compression: CompressionTypes.None, messages: batch });
    } catch (err) {
      this.onLost(batch.length, err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + 5_000;
    while (this.outbox.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }
}

interface Follower {
  close(): Promise<void>;
}

/**
 * Reads every partition of `topic` from its end (a consumer group of its own, nothing committed).
 * A consumer its client gives up on (a long broker outage) is replaced by a new one, which starts
 * from the end then: what was relayed meanwhile is missed, and logged.
 */
async function follow(kafka: Kafka, name: string, topic: string, onMessage: (value: Buffer | null) => void, log: IoLog): Promise<Follower> {
  let current: Consumer | undefined;
  let closed = false;
  const start = async (): Promise<void> => {
    const consumer = kafka.consumer({ groupId: `${name}-${randomBytes(6).toString('hex')}`, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 20 });
    current = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      if (e.payload.restart || closed || current !== consumer) return;
      log({ level: 'warn', msg: `${topic} consumer stopped by its client; starting it again (what was relayed meanwhile is missed)`, err: e.payload.error?.message });
      void consumer.disconnect().catch(() => undefined).then(again);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    const joined = new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.GROUP_JOIN, () => resolve());
      consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
    });
    joined.catch(() => undefined);
    await consumer.run({ autoCommit: false, eachMessage: async ({ message }) => onMessage(message.value) });
    await joined;
  };
  const again = async (): Promise<void> => {
    while (!closed) {
      try {
        await start();
        return;
      } catch (err) {
        log({ level: 'warn', msg: `${topic} consumer could not be started again; trying later`, err: String(err) });
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  };
  await start();
  return {
    close: async () => {
      closed = true;
      await current?.disconnect().catch(() => undefined);
    },
  };
}

export interface IoLog {
  (rec: Record<string, unknown>): void;
}

/**
 * The worker's side: publishes the output of the runs executed in this process and applies the
 * input sent to those of them it has (`has`), in order per run.
 */
export class WorkerRunIo {
  private relay!: Relay;
  private consumer!: Follower;
  private untap: () => void = () => undefined;
  /** per run, the input still being applied (one message after the other) */
  private readonly chains = new Map<string, Promise<void>>();
  readonly stats = { lostMessages: 0 };

  private constructor(
    private readonly has: (runId: string) => boolean,
  ) {}

  /** `name`: the worker's id (its consumer group's prefix); `has`: whether a run is queued or running here. */
  static async start(kafka: Kafka, name: string, has: (runId: string) => boolean, log: IoLog, partitions?: number): Promise<WorkerRunIo> {
    const io = new WorkerRunIo(has);
    await ensureIoTopics(kafka, partitions);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    io.relay = new Relay(producer, OUTPUT_TOPIC, (n, err) => {
      io.stats.lostMessages += n;
      log({ level: 'warn', msg: 'run output not relayed', messages: n, err: String((err as Error)?.message ?? err) });
    });
    io.closeProducer = () => producer.disconnect();
    io.untap = runOutput.tap((runId, c) => io.publish(runId, c));
    io.consumer = await follow(kafka, `${name}-input`, INPUT_TOPIC, (v) => io.onInput(v), log);
    return io;
  }

  private closeProducer: () => Promise<void> = async () => undefined;

  private publish(runId: string, c: { stream: OutputStream; text: string } | 'end'): void {
    if (c === 'end') {
      this.relay.send(runId, { v: 1, kind: 'end', runId, from: FROM } satisfies OutputMessage);
      return;
    }
    for (let i = 0; i < c.text.length; i += OUTPUT_MESSAGE_BYTES / 4) {
      // at most OUTPUT_MESSAGE_BYTES of UTF-8 (4 bytes a character at worst)
      const text = c.text.slice(i, i + OUTPUT_MESSAGE_BYTES / 4);
      this.relay.send(runId, { v: 1, kind: 'out', runId, from: FROM, stream: c.stream, text } satisfies OutputMessage);
    }
  }

  private onInput(value: Buffer | null): void {
    const m = parse<InputMessage>(value);
    if (!m) return;
    // a run of another worker: not ours to answer; one that ended here: refused below
    if (!this.has(m.runId) && !runInput.released(m.runId)) return;
    const prev = this.chains.get(m.runId) ?? Promise.resolve();
    const next = prev.then(() => this.apply(m));
    this.chains.set(m.runId, next);
    void next.finally(() => {
      if (this.chains.get(m.runId) === next) this.chains.delete(m.runId);
    });
  }

  private async apply(m: InputMessage): Promise<void> {
    try {
      if (m.kind === 'resize') {
        runInput.resize(m.runId, { rows: m.rows, cols: m.cols } satisfies TerminalSize);
        return;
      }
      if (m.kind !== 'stdin') return;
      const data = Buffer.from(m.data, 'base64');
      if (data.length > RUN_INPUT_MAX_WRITE_BYTES) throw new RunInputClosed(m.runId, 'the piece is too large');
      await runInput.write(m.runId, data);
      if (m.eof) runInput.end(m.runId);
      this.relay.send(m.runId, { v: 1, kind: 'taken', runId: m.runId, id: m.id } satisfies OutputMessage);
    } catch (err) {
      if (m.kind === 'stdin') this.relay.send(m.runId, { v: 1, kind: 'refused', runId: m.runId, id: m.id, reason: (err as Error).message } satisfies OutputMessage);
    }
  }

  async close(): Promise<void> {
    this.untap();
    await this.consumer?.close();
    await this.relay?.close();
    await this.closeProducer().catch(() => undefined);
  }
}

export class StdinRefused extends Error {}

interface Waiting {
  runId: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The gateway's side: keeps the output of runs on the bus in this process's RunOutputHub (what
 * GET /v1/runs/{id}/logs and `run --server` read), and sends stdin and window sizes to the worker
 * that runs them.
 */
export class GatewayRunIo {
  private relay!: Relay;
  private consumer!: Follower;
  private closeProducer: () => Promise<void> = async () => undefined;
  private readonly waiting = new Map<string, Waiting>();
  /** runs with a stdin request of this gateway under way (one at a time, as on a server that runs them) */
  private readonly writing = new Set<string>();
  /** the runs whose end was seen in the log: their output ends soon after, with or without "end" */
  private readonly ending = new Map<string, NodeJS.Timeout>();
  readonly stats = { lostMessages: 0 };

  /** `name`: the gateway's client id (its consumer group's prefix). */
  static async start(kafka: Kafka, name: string, log: IoLog, partitions?: number): Promise<GatewayRunIo> {
    const io = new GatewayRunIo();
    await ensureIoTopics(kafka, partitions);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    io.closeProducer = () => producer.disconnect();
    io.relay = new Relay(producer, INPUT_TOPIC, (n, err) => {
      io.stats.lostMessages += n;
      log({ level: 'warn', msg: 'run input not relayed', messages: n, err: String((err as Error)?.message ?? err) });
      // a stdin piece the broker did not take will never be answered
      for (const [id, w] of io.waiting) {
        io.waiting.delete(id);
        w.reject(new StdinRefused(`run ${w.runId}: the Kafka broker did not take its stdin`));
      }
    });
    io.consumer = await follow(kafka, `${name}-output`, OUTPUT_TOPIC, (v) => io.onOutput(v), log);
    return io;
  }

  private onOutput(value: Buffer | null): void {
    const m = parse<OutputMessage>(value);
    if (!m) return;
    switch (m.kind) {
      case 'out':
        if (m.from !== FROM && typeof m.text === 'string') runOutput.write(m.runId, m.stream === 'stderr' ? 'stderr' : 'stdout', m.text);
        return;
      case 'end':
        if (m.from !== FROM) this.endOutput(m.runId);
        return;
      case 'taken':
      case 'refused': {
        const w = this.waiting.get(m.id);
        if (!w) return;
        this.waiting.delete(m.id);
        if (m.kind === 'taken') w.resolve();
        else w.reject(new StdinRefused(m.reason));
      }
    }
  }

  private endOutput(runId: string): void {
    clearTimeout(this.ending.get(runId));
    this.ending.delete(runId);
    runOutput.end(runId);
  }

  /**
   * Sends bytes to the run's stdin (`eof`: then closes it); resolves once the worker's run took
   * them, rejects with StdinRefused when it refused them (the run ended, its stdin was closed).
   */
  async writeStdin(runId: string, data: Buffer, eof: boolean): Promise<void> {
    if (this.writing.has(runId)) throw new StdinRefused(`run ${runId}: another stdin request is under way; send one after the other`);
    this.writing.add(runId);
    try {
      await this.send(runId, data, eof);
    } finally {
      this.writing.delete(runId);
    }
  }

  private async send(runId: string, data: Buffer, eof: boolean): Promise<void> {
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += IO_PIECE_BYTES) pieces.push(data.subarray(i, i + IO_PIECE_BYTES));
    if (pieces.length === 0) pieces.push(Buffer.alloc(0));
    const answers = pieces.map((piece, i) => {
      const id = randomBytes(12).toString('hex');
      const answered = new Promise<void>((resolve, reject) => this.waiting.set(id, { runId, resolve, reject }));
      this.relay.send(runId, { v: 1, kind: 'stdin', runId, id, data: piece.toString('base64'), eof: eof && i === pieces.length - 1 } satisfies InputMessage);
      return answered;
    });
    await Promise.all(answers);
  }

  resize(runId: string, size: TerminalSize): void {
    this.relay.send(runId, { v: 1, kind: 'resize', runId, rows: size.rows, cols: size.cols } satisfies InputMessage);
  }

  /** The run has ended (its terminal event is in the log): stdin still waiting is refused, and its output ends once the last of it has had time to arrive. */
  runEnded(runId: string, graceMs = 3_000): void {
    for (const [id, w] of this.waiting) {
      if (w.runId !== runId) continue;
      this.waiting.delete(id);
      w.reject(new StdinRefused(`run ${runId}: the run has ended`));
    }
    // nothing kept and nobody reading (e.g. the runs of the log folded at start): nothing to end
    if (this.ending.has(runId) || !runOutput.has(runId)) return;
    const t = setTimeout(() => this.endOutput(runId), graceMs);
    t.unref();
    this.ending.set(runId, t);
  }

  async close(): Promise<void> {
    for (const t of this.ending.values()) clearTimeout(t);
    this.ending.clear();
    for (const w of this.waiting.values()) w.reject(new StdinRefused(`run ${w.runId}: the server is shutting down`));
    this.waiting.clear();
    await this.consumer?.close();
    await this.relay?.close();
    await this.closeProducer().catch(() => undefined);
  }
}
