import { Logger } from '@nestjs/common';
import { decide, expectedVersionOf, loadRun, runStream, WrongExpectedVersion, type EventStore, type StoredEvent } from '@capulator/events';

/** A point in the command topic: the end of the partition a run's command would be on. */
export interface CommandMark {
  partition: number;
  /** the partition's end offset when the mark was taken */
  offset: bigint;
}

/**
 * What an executor tells about the runs handed to it: the Kafka bus (KafkaRunExecutor: its
 * command topic) or the server's own runtime (InProcessExecutor: its queue).
 */
export interface CommandLedger {
  /** the end of the command partition of `runId`, now */
  markFor(runId: string): Promise<CommandMark>;
  /** true once every run handed over before `mark` has been taken up, so `runId`, still requested, never will be */
  handled(mark: CommandMark, runId: string): Promise<boolean>;
  /** measures the command topic's lag (produced, not yet finished by the workers) */
  measureLag?(): Promise<number>;
  /** how long after its RunRequested a run still requested may be an orphan (default ORPHAN_AFTER_MS) */
  readonly orphanAfterMs?: number;
  /** the failure reason recorded for an orphan */
  readonly orphanReason?: string;
}

export function isCommandLedger(x: unknown): x is CommandLedger {
  return typeof (x as CommandLedger)?.markFor === 'function' && typeof (x as CommandLedger)?.handled === 'function';
}

/** A run still `requested` this long after its RunRequested is a candidate orphan. */
export const ORPHAN_AFTER_MS = 30_000;
/** How often candidates are looked for. */
export const ORPHAN_SWEEP_MS = 5_000;

/**
 * Recovers orphaned requests on the Kafka bus: a run whose RunRequested is in the log but whose
 * command never reached the command topic (its gateway was killed between the two steps, or
 * answered 503 and died before recording the refusal). Such a run would stay `queued` forever.
 *
 * A gateway produces a run's command within a couple of seconds of its RunRequested or not at all,
 * and answers 202 only once the command is in the topic. So for a run still `requested`
 * ORPHAN_AFTER_MS after it was requested, the end of its command partition is taken as a mark; once
 * the workers have committed past the mark, every command before it has been handled — and a
 * handled command leaves its run claimed or ended, never `requested`. A run still `requested`
 * then had no command: no 202 was ever answered for it, and it is recorded failed through the run
 * decider with the version read (a late claim or another gateway's recovery racing it: one wins).
 *
 * The embedded server's runtime (InProcessExecutor) is a ledger too: a run it queued is lost with
 * it when the server is killed (a server that stops in order records its queued runs failed). A
 * run still requested a few seconds after its RunRequested that the executor holds neither queued
 * nor running, and that no runtime has a run directory for, will never run; it is recorded failed
 * the same way, on the restarted server's first sweep.
 */
export class OrphanRecovery {
  private readonly log = new Logger('runs');
  private readonly marks = new Map<string, CommandMark>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  /** runs recorded failed as orphans by this gateway */
  recovered = 0;

  constructor(
    private readonly store: EventStore,
    private readonly ledger: CommandLedger,
    /** run ids the read model has as `queued` and requested before the given time */
    private readonly candidates: (requestedBefore: number) => string[],
    private readonly publish: (events: StoredEvent[]) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Sweeps now (runs left requested by a server that died are settled soon after a restart), then every `everyMs`. */
  start(everyMs = ORPHAN_SWEEP_MS): void {
    this.timer = setInterval(() => void this.sweep(), everyMs);
    this.timer.unref();
    setImmediate(() => void this.sweep());
  }

  stop(): void {
    clearInterval(this.timer);
    this.marks.clear();
  }

  /** One pass: marks new candidates, settles those whose mark the workers have passed. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.ledger.measureLag?.();
      const now = this.now();
      const seen = new Set(this.candidates(now - (this.ledger.orphanAfterMs ?? ORPHAN_AFTER_MS)));
      for (const id of this.marks.keys()) if (!seen.has(id)) this.marks.delete(id); // claimed or ended meanwhile
      for (const id of seen) {
        let mark = this.marks.get(id);
        if (!mark) this.marks.set(id, (mark = await this.ledger.markFor(id)));
        if (!(await this.ledger.handled(mark, id))) continue;
        await this.settle(id);
        this.marks.delete(id);
      }
    } catch (err) {
      // the broker is unreachable: the next pass tries again
      if ((err as { code?: string })?.code !== 'CLOSED') this.log.warn({ msg: 'orphan recovery pass failed', err: String((err as Error)?.message ?? err) });
    } finally {
      this.sweeping = false;
    }
  }

  private async settle(runId: string): Promise<void> {
    const s = await loadRun(this.store, runId);
    if (s.phase !== 'requested') return;
    const reason = this.ledger.orphanReason ?? 'orphaned: no command for this run reached the workers (its gateway stopped before sending it); it never ran';
    try {
      this.publish(await this.store.append(runStream(runId), expectedVersionOf(s.version), decide({ type: 'FailRun', at: new Date(this.now()).toISOString(), stage: 'runtime', reason }, s)));
    } catch (err) {
      if (err instanceof WrongExpectedVersion) return; // a claim or another gateway came first
      throw err;
    }
    this.recovered++;
    this.log.log({ msg: 'orphaned run recorded failed', runId });
  }
}
