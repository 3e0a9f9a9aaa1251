import { runStream, type NewEvent, type StoredEvent } from '../contracts';
import type { EventStore, ExpectedVersion } from '../store';
import { decide, evolve, initialRunState, type RunCommand, type RunState } from './run.decider';

/** Loads a run's state: its stream folded with `evolve`; the version is the last event's stream version. */
export async function loadRun(store: EventStore, runId: string): Promise<RunState> {
  let s = initialRunState(runId);
  for await (const e of store.readStream(runStream(runId))) s = evolve(s, e);
  return s;
}

export type RunAppend = (events: NewEvent[], expectedVersion: ExpectedVersion) => Promise<StoredEvent[]>;

export const expectedVersionOf = (version: number): ExpectedVersion => (version === 0 ? 'no-stream' : version);

/** Decides one command against a state loaded now and appends the events with the version read. */
export async function executeRunCommand(store: EventStore, runId: string, cmd: RunCommand): Promise<{ state: RunState; stored: StoredEvent[] }> {
  const s = await loadRun(store, runId);
  const events = decide(cmd, s);
  const stored = await store.append(runStream(runId), expectedVersionOf(s.version), events);
  return { state: stored.reduce(evolve, s), stored };
}

export interface RunWriterOptions {
  /** splits one append into several (e.g. to stay under a broker's message size); default: at most 1000 events each */
  split?: (events: NewEvent[]) => NewEvent[][];
  /** called with what each append stored */
  onAppended?: (stored: StoredEvent[]) => void;
  /**
   * called when an append fails: `stop` (default) appends nothing more; `continue` drops that
   * append's events (counted in `dropped`) and goes on (`capulator run --on-audit-failure continue`)
   */
  onFailed?: (e: Error, events: NewEvent[]) => 'stop' | 'continue';
}

const byThousand = (events: NewEvent[]): NewEvent[][] => {
  const out: NewEvent[][] = [];
  for (let i = 0; i < events.length; i += 1000) out.push(events.slice(i, i + 1000));
  return out;
};

/**
 * The single writer of one run's stream, for shells that must not wait for the store while the
 * run goes on (the agent's decisions arrive at up to 100k/s): `submit` decides at once against the
 * state decided so far (and throws RunLifecycleError, nothing queued, when the command is not
 * allowed); the events are appended in order, batched, each append with the exact expected
 * version. After an append fails nothing more is appended (`failed` says why).
 */
export class RunWriter {
  private decided: RunState;
  private appended: number;
  private queue: NewEvent[] = [];
  private pumping: Promise<void> = Promise.resolve();
  private scheduled = false;
  failed?: Error;
  /** events stored so far */
  count = 0;
  /** events dropped after failed appends (onFailed said `continue`) */
  dropped = 0;

  constructor(
    private readonly append: RunAppend,
    state: RunState,
    private readonly opts: RunWriterOptions = {},
  ) {
    this.decided = state;
    this.appended = state.version;
  }

  /** A writer appending to `store`'s stream of the run. */
  static forStore(store: EventStore, state: RunState, opts: RunWriterOptions = {}): RunWriter {
    const stream = runStream(state.runId);
    return new RunWriter((events, expected) => store.append(stream, expected, events), state, opts);
  }

  /** The state after everything decided (appended or still queued). */
  get state(): RunState {
    return this.decided;
  }

  /** The stream version of the last event stored. */
  get version(): number {
    return this.appended;
  }

  submit(cmd: RunCommand): NewEvent[] {
    const events = decide(cmd, this.decided);
    let s = this.decided;
    if (cmd.type === 'RecordDecisions') {
      // decisions change only the version; their payloads (agent text) are not parsed here
      s = { ...s, version: s.version + events.length };
    } else {
      for (const e of events) s = evolve(s, { type: e.type, payload: e.payload, streamVersion: s.version + 1 });
    }
    this.decided = s;
    for (const e of events) this.queue.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pumping = this.pumping.then(() => this.pump());
      });
    }
    return events;
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.failed) {
      const batch = this.queue.splice(0, this.queue.length);
      for (const chunk of (this.opts.split ?? byThousand)(batch)) {
        try {
          const stored = await this.append(chunk, expectedVersionOf(this.appended));
          this.appended = stored[stored.length - 1].streamVersion;
          this.count += stored.length;
          this.opts.onAppended?.(stored);
        } catch (e) {
          if (this.opts.onFailed?.(e as Error, chunk) === 'continue') {
            this.dropped += chunk.length;
            continue;
          }
          this.failed = e as Error;
          return;
        }
      }
    }
  }

  /** Waits until everything submitted is appended (or an append failed: see `failed`). */
  async drain(): Promise<void> {
    // every pump runs on the one chain, so two never append at once
    do {
      this.pumping = this.pumping.then(() => this.pump());
      await this.pumping;
    } while (this.queue.length > 0 && !this.failed);
  }
}
