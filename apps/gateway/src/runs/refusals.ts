import { Logger } from '@nestjs/common';
import { decide, evolve, expectedVersionOf, initialRunState, isEnded, runStream, type EventStore, type StoredEvent } from '@capulator/events';

/** How long a refused run's RunRequested is waited for before it is taken as never written. */
const SETTLE_GRACE_MS = 120_000;
import { Unavailable } from '../errors/domain.error';

/** Seconds a client is told to wait before retrying a refused submission (Retry-After). */
export const RETRY_AFTER_SECONDS = 1;

/** The event log could not take a write (the broker is unreachable): 503 with Retry-After. */
export class LogUnavailable extends Unavailable {
  readonly retryAfterSeconds = RETRY_AFTER_SECONDS;
  constructor(message: string) {
    super(`the event log is unavailable, the run was not accepted: ${message}`);
  }
}

/** An error of the event store saying the log cannot be reached (StoreUnavailable). */
export function isLogUnavailable(err: unknown): err is Error & { ambiguous?: boolean } {
  return (err as { code?: string })?.code === 'UNAVAILABLE';
}

/**
 * Submissions refused after something may have reached the log. A refused run must never run
 * and must not stay `queued`: its RunRequested may still land (the broker took the append but did
 * not answer in time), so the gateway records RunFailed on the run's stream, retrying until the
 * log takes it. The command is produced only after RunRequested is durable, so a refused run has
 * no command unless the command's own produce was the ambiguous step — and a worker skips a run
 * whose stream already ended (RunFailed is appended before any claim can follow it).
 */
export class Refusals {
  private readonly log = new Logger('runs');
  private readonly pending = new Set<string>();
  /** refusals answered 503 since start */
  refused = 0;

  constructor(
    private readonly store: EventStore,
    private readonly publish: (events: StoredEvent[]) => void,
  ) {}

  get unsettled(): number {
    return this.pending.size;
  }

  /** Records the refusal of a run whose RunRequested may be in the log; returns the 503 to answer. */
  refuse(runId: string, cause: unknown, settle: boolean): LogUnavailable {
    this.refused++;
    const reason = (cause as Error)?.message ?? String(cause);
    if (settle) void this.settle(runId, reason);
    return new LogUnavailable(reason);
  }

  /**
   * Fails the run through the run decider once its RunRequested is in the log (retrying while the
   * log is unreachable). A RunRequested that has not appeared after SETTLE_GRACE_MS never will
   * (the client gives up its retries well before), and there is nothing to settle.
   */
  private async settle(runId: string, reason: string): Promise<void> {
    if (this.pending.has(runId)) return;
    this.pending.add(runId);
    const since = Date.now();
    for (let delay = 250; this.pending.has(runId); delay = Math.min(delay * 2, 5_000)) {
      try {
        const events: StoredEvent[] = [];
        for await (const e of this.store.readStream(runStream(runId))) events.push(e);
        const state = events.reduce(evolve, initialRunState(runId));
        if (state.phase === 'none' && Date.now() - since < SETTLE_GRACE_MS) throw new Error('RunRequested not in the log (yet)');
        if (state.phase === 'none' || isEnded(state)) {
          this.pending.delete(runId);
          return;
        }
        const failed = decide({ type: 'FailRun', at: new Date().toISOString(), stage: 'runtime', reason: `refused (503): ${reason}` }, state);
        this.publish(await this.store.append(runStream(runId), expectedVersionOf(state.version), failed));
        this.pending.delete(runId);
        this.log.log({ msg: 'refused run recorded failed', runId });
      } catch (err) {
        if ((err as { code?: string })?.code === 'CLOSED') return;
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  }

  close(): void {
    this.pending.clear();
  }
}
