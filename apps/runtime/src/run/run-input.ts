import { PassThrough, type Readable } from 'node:stream';

/**
 * The stdin of interactive runs executed in this process (`capulator serve`'s in-process
 * runtime): what a client sends (the gateway's POST /v1/runs/{id}/stdin, `capulator run --server
 * -i`) flows, in order, into the container's stdin. Bounded: at most RUN_INPUT_BUFFER_BYTES wait
 * per run; a write beyond that completes only when the program has read enough (back-pressure
 * reaches the client as a slower response). Input sent before the run starts waits for it.
 */
export const RUN_INPUT_BUFFER_BYTES = 64 * 1024;
/** The most one write may carry (one POST /v1/runs/{id}/stdin, one gRPC StdinChunk): a client sends more as several, one after the other. */
export const RUN_INPUT_MAX_WRITE_BYTES = 1024 * 1024;

export class RunInputClosed extends Error {
  constructor(runId: string, why: string) {
    super(`run ${runId}: ${why}`);
  }
}

interface Entry {
  stream: PassThrough;
  /** stdin's end was sent (eof): later writes are refused */
  ended: boolean;
}

/** A window size, in character cells. */
export interface TerminalSize {
  rows: number;
  cols: number;
}
/** The largest window side taken (the pty helper's bound, agent/src/pty.c). */
export const TERMINAL_MAX_SIDE = 10000;

/** The terminal of a -t run, as the runner sees it: its size so far, and later changes. */
export interface RunTerminal {
  size(): TerminalSize | undefined;
  /** calls `fn` with each new size until the returned function is called */
  onResize(fn: (size: TerminalSize) => void): () => void;
}

export class RunInputHub {
  private readonly runs = new Map<string, Entry>();
  /** -t runs: the last size a client set (kept from before the start) and who applies it */
  private readonly sizes = new Map<string, TerminalSize>();
  private readonly resizers = new Map<string, (size: TerminalSize) => void>();
  /** runs with a write under way (one at a time, so each client's bytes arrive in its order) */
  private readonly writing = new Map<string, (err: Error) => void>();
  /** released runs, so a late write is refused rather than opening a new stream (bounded) */
  private readonly gone = new Set<string>();

  private entry(runId: string): Entry {
    let e = this.runs.get(runId);
    if (!e) {
      const stream = new PassThrough({ highWaterMark: RUN_INPUT_BUFFER_BYTES });
      e = { stream, ended: false };
      this.runs.set(runId, e);
    }
    return e;
  }

  /** The stream the runner pipes into the container's stdin. */
  readable(runId: string): Readable {
    return this.entry(runId).stream;
  }

  /** Appends to the run's stdin; resolves once the stream has taken it (after the program read enough). */
  write(runId: string, data: Buffer): Promise<void> {
    if (this.gone.has(runId)) return Promise.reject(new RunInputClosed(runId, 'the run has ended'));
    const e = this.entry(runId);
    if (e.ended) return Promise.reject(new RunInputClosed(runId, 'its stdin was closed'));
    if (this.writing.has(runId)) return Promise.reject(new RunInputClosed(runId, 'another stdin request is under way; send one after the other'));
    if (data.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // settled by the stream, or by release(): a destroyed stream never calls back the write it
      // was holding for a reader
      let settled = false;
      const settle = (err?: Error | null) => {
        if (settled) return;
        settled = true;
        this.writing.delete(runId);
        if (err) reject(err instanceof RunInputClosed ? err : new RunInputClosed(runId, 'the run has ended'));
        else resolve();
      };
      this.writing.set(runId, settle);
      e.stream.write(data, settle);
    });
  }

  /** Closes the run's stdin (the program reads end of file once it has read what was sent). */
  end(runId: string): void {
    if (this.gone.has(runId)) throw new RunInputClosed(runId, 'the run has ended');
    const e = this.entry(runId);
    if (e.ended) return;
    e.ended = true;
    e.stream.end();
  }

  /** Sets the window size of a -t run (before its start: the size it starts with). */
  resize(runId: string, size: TerminalSize): void {
    if (this.gone.has(runId)) throw new RunInputClosed(runId, 'the run has ended');
    this.sizes.set(runId, size);
    this.resizers.get(runId)?.(size);
  }

  /** The terminal the runner gives a -t run (agent/src/pty.c reads the sizes). */
  terminal(runId: string): RunTerminal {
    return {
      size: () => this.sizes.get(runId),
      onResize: (fn) => {
        this.resizers.set(runId, fn);
        return () => {
          if (this.resizers.get(runId) === fn) this.resizers.delete(runId);
        };
      },
    };
  }

  /** Whether the run was released here (it ran in this process and has ended). */
  released(runId: string): boolean {
    return this.gone.has(runId);
  }

  /** The run is over: what was not read is dropped and waiting writers are told. */
  release(runId: string): void {
    this.sizes.delete(runId);
    this.resizers.delete(runId);
    const e = this.runs.get(runId);
    if (e) {
      e.stream.destroy();
      this.runs.delete(runId);
    }
    this.writing.get(runId)?.(new RunInputClosed(runId, 'the run has ended'));
    this.gone.add(runId);
    if (this.gone.size > 4096) this.gone.delete(this.gone.values().next().value as string);
  }
}

/** The hub of this process. */
export const runInput = new RunInputHub();
