import { runStream, type NewEvent, type StoredEvent } from '../contracts';
import type { EventStore, ExpectedVersion } from '../store';
import { decide, evolve, initialRunState, type RunCommand, type RunState } from './run.decider';

/** Loads a run's state: its stream folded with `evolve`; the version is the last event's stream version. */
export async function loadRun(store: EventStore, runId: string): Promise<RunState> {
  let s = initialRunState(runId);
  for await (const e of store.readStream(runStream(runId))) s = evolve(s, e);
  return s;
}

/**
 * Appends a run's events with this expected version. `unsure`: an earlier attempt of these very
 * events may already be in the log (the writer retries after a pipelined attempt failed); an
 * append that can tell its own events from another writer's says so instead of a version conflict.
 */
export type RunAppend = (events: NewEvent[], expectedVersion: ExpectedVersion, unsure?: boolean) => Promise<StoredEvent[]>;

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
  /**
   * Appends of one batch in flight at once, for a log whose round trip is long (Kafka): each
   * append's expected version counts the ones before it, and the log keeps one writer's appends to
   * one stream in order, so they land in order or a version check stops the rest. `tryOnce` makes
   * one attempt, with no retries of its own; when an attempt of a window fails, that append and
   * those after it go again one at a time through the writer's own append, `unsure` set, so
   * retries never overtake one another. A failure then stops the writer (not with onFailed).
   */
  pipeline?: { depth: number; tryOnce: RunAppend };
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
    if (opts.pipeline && opts.onFailed) throw new Error('RunWriter: a pipelined writer stops at its first failure (no onFailed)');
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

  private took(stored: StoredEvent[]): void {
    this.appended = stored[stored.length - 1].streamVersion;
    this.count += stored.length;
    this.opts.onAppended?.(stored);
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.failed) {
      const batch = this.queue.splice(0, this.queue.length);
      const chunks = (this.opts.split ?? byThousand)(batch);
      const p = this.opts.pipeline;
      if (p && p.depth > 1 && chunks.length > 1) {
        await this.pipelined(chunks, p);
        continue;
      }
      for (const chunk of chunks) {
        try {
          this.took(await this.append(chunk, expectedVersionOf(this.appended)));
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

  /** A sliding window of `depth` attempts; completions are taken in order, each making room for the next. */
  private async pipelined(chunks: NewEvent[][], p: { depth: number; tryOnce: RunAppend }): Promise<void> {
    let next = 0;
    let v = this.appended;
    const inFlight: Array<{ chunk: NewEvent[]; attempt: Promise<StoredEvent[]> }> = [];
    const send = () => {
      const chunk = chunks[next++];
      const attempt = p.tryOnce(chunk, expectedVersionOf(v));
      attempt.catch(() => undefined); // awaited in order below
      v += chunk.length;
      inFlight.push({ chunk, attempt });
    };
    while (next < chunks.length && inFlight.length < p.depth) send();
    while (inFlight.length > 0) {
      const head = inFlight.shift()!;
      try {
        this.took(await head.attempt);
      } catch {
        // this attempt failed: it, and each attempted after it, may or may not be in the log (an
        // attempt whose outcome was unknown can land; one after a failed one was refused by its
        // version); once they have all settled, each goes again, in order, one at a time
        await Promise.allSettled(inFlight.map((x) => x.attempt));
        const tried = [head.chunk, ...inFlight.map((x) => x.chunk)];
        const rest = [...tried.map((chunk) => ({ chunk, unsure: true })), ...chunks.slice(next).map((chunk) => ({ chunk, unsure: false }))];
        for (const { chunk, unsure } of rest) {
          try {
            this.took(await this.append(chunk, expectedVersionOf(this.appended), unsure));
          } catch (e) {
            this.failed = e as Error;
            return;
          }
        }
        return;
      }
      if (next < chunks.length) send();
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
