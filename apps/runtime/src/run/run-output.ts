/**
 * The output of runs executed in this process (`capulator serve`'s in-process runtime): what the
 * container wrote to stdout and stderr, kept per run for readers that follow it (the gateway's
 * GET /v1/runs/{id}/logs, `capulator run --server`). Bounded: the newest RUN_OUTPUT_MAX_BYTES of
 * each run, and the output of at most RUN_OUTPUT_MAX_RUNS ended runs (oldest dropped first).
 */
export const RUN_OUTPUT_MAX_BYTES = 4 * 1024 * 1024;
export const RUN_OUTPUT_MAX_RUNS = 256;

export type OutputStream = 'stdout' | 'stderr';

export interface OutputChunk {
  /** 1, 2, 3… within the run (a reader resumes after the last one it saw) */
  seq: number;
  stream: OutputStream;
  text: string;
  time: string;
}

type Listener = (c: OutputChunk | 'end') => void;

class RunOutputEntry {
  chunks: OutputChunk[] = [];
  bytes = 0;
  seq = 0;
  /** chunks dropped from the front (the bound) */
  dropped = 0;
  ended = false;
  readonly listeners = new Set<Listener>();
}

export type OutputTap = (runId: string, c: OutputChunk | 'end') => void;

export class RunOutputHub {
  private readonly runs = new Map<string, RunOutputEntry>();
  private readonly endedOrder: string[] = [];
  private readonly taps = new Set<OutputTap>();

  /** Calls `fn` with every chunk written and every end, of every run, until the returned function is called (a Kafka worker relays them to the gateways: worker/run-io.ts). */
  tap(fn: OutputTap): () => void {
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  private entry(runId: string): RunOutputEntry {
    let e = this.runs.get(runId);
    if (!e) {
      e = new RunOutputEntry();
      this.runs.set(runId, e);
    }
    return e;
  }

  write(runId: string, stream: OutputStream, text: string): void {
    if (!text) return;
    const e = this.entry(runId);
    if (e.ended) return;
    const c: OutputChunk = { seq: ++e.seq, stream, text, time: new Date().toISOString() };
    e.chunks.push(c);
    e.bytes += Buffer.byteLength(text);
    while (e.bytes > RUN_OUTPUT_MAX_BYTES && e.chunks.length > 1) {
      e.bytes -= Buffer.byteLength(e.chunks.shift()!.text);
      e.dropped++;
    }
    for (const l of e.listeners) l(c);
    for (const t of this.taps) t(runId, c);
  }

  /** The run's output is complete (its container's pipes closed, or it never started). */
  end(runId: string): void {
    const e = this.entry(runId);
    if (e.ended) return;
    e.ended = true;
    for (const t of this.taps) t(runId, 'end');
    for (const l of e.listeners) l('end');
    e.listeners.clear();
    this.endedOrder.push(runId);
    while (this.endedOrder.length > RUN_OUTPUT_MAX_RUNS) this.runs.delete(this.endedOrder.shift()!);
  }

  /**
   * The chunks after `after`, then (follow) every new one until the end; `onChunk` gets them in
   * order and `onEnd` once. Returns the unsubscribe function.
   */
  read(runId: string, after: number, follow: boolean, onChunk: (c: OutputChunk) => void, onEnd: () => void): () => void {
    const e = this.entry(runId);
    for (const c of e.chunks) if (c.seq > after) onChunk(c);
    if (!follow || e.ended) {
      onEnd();
      return () => undefined;
    }
    const l: Listener = (c) => (c === 'end' ? onEnd() : c.seq > after && onChunk(c));
    e.listeners.add(l);
    return () => e.listeners.delete(l);
  }

  /** Whether the run has output here, or a reader waiting for it. */
  has(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Whether chunks were dropped from the front of the run's output (the bound). */
  truncated(runId: string): boolean {
    return (this.runs.get(runId)?.dropped ?? 0) > 0;
  }
}

/** The hub of this process. */
export const runOutput = new RunOutputHub();
