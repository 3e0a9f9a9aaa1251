import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_ID } from './run-id';

/**
 * The output of runs executed in this process (`capulator serve`'s in-process runtime), or relayed
 * to it (a gateway on the Kafka bus): what the container wrote to stdout and stderr, kept per run
 * for readers that follow it (the gateway's GET /v1/runs/{id}/logs, gRPC RunLogs, `capulator run
 * --server`, `logs --server`). Bounded: the newest RUN_OUTPUT_MAX_BYTES of each run, and the output
 * of at most RUN_OUTPUT_MAX_RUNS ended runs in memory (oldest dropped first).
 *
 * With a directory (persist(), a server's $CAPULATOR_HOME/logs) each chunk is also appended to the
 * run's file as it is written, so the output outlives the server, as `docker logs` outlives a
 * daemon restart: a run no longer in memory is read back from its file. The file holds at least the
 * newest RUN_OUTPUT_MAX_BYTES (rewritten to that window each time it grows past twice as much), and
 * the files of the newest RUN_LOG_FILES_MAX runs (at most RUN_LOG_DISK_MAX_BYTES together) are kept.
 */
export const RUN_OUTPUT_MAX_BYTES = 4 * 1024 * 1024;
export const RUN_OUTPUT_MAX_RUNS = 256;
export const RUN_LOG_FILES_MAX = 1000;
export const RUN_LOG_DISK_MAX_BYTES = 1024 * 1024 * 1024;

export type OutputStream = 'stdout' | 'stderr';

export interface OutputChunk {
  /** 1, 2, 3… within the run (a reader resumes after the last one it saw) */
  seq: number;
  stream: OutputStream;
  text: string;
  time: string;
}

/**
 * A line of a run's output file, as docker's json-file log driver writes one (`log`, `stream`,
 * `time`), with the chunk's number. `capulator run -d` logs the same lines (without `seq`).
 */
export interface LogEntry {
  log: string;
  stream: OutputStream;
  time: string;
  seq?: number;
}

type Listener = (c: OutputChunk | 'end') => void;

class RunOutputEntry {
  chunks: OutputChunk[] = [];
  bytes = 0;
  seq = 0;
  /** chunks dropped from the front (the bound) */
  dropped = 0;
  ended = false;
  /** written by this process (else only read back from its file: nobody here will add to it) */
  live = false;
  readonly listeners = new Set<Listener>();
  /** the run's output file, open while this process writes it (else -1) */
  fd = -1;
  /** its file could not be written: the output is kept in memory only from then on */
  unkept = false;
  fileBytes = 0;
  /** the file is rewritten to the window in memory once it grows past this */
  compactAt = 2 * RUN_OUTPUT_MAX_BYTES;
}

const entryLine = (c: OutputChunk) => JSON.stringify({ log: c.text, stream: c.stream, time: c.time, seq: c.seq } satisfies LogEntry) + '\n';

export type OutputTap = (runId: string, c: OutputChunk | 'end') => void;

export class RunOutputHub {
  private readonly runs = new Map<string, RunOutputEntry>();
  private readonly endedOrder: string[] = [];
  private readonly taps = new Set<OutputTap>();
  private dir: string | undefined;
  private warn: (msg: string) => void = () => undefined;
  /** the files of ended runs, oldest first, with their sizes (read from the directory when first needed) */
  private files: Map<string, number> | undefined;

  /**
   * Keeps every run's output in `dir` too (created, mode 0700), read back for runs no longer in
   * memory. `warn` is told, once per run, when a file cannot be written (the output stays in memory).
   */
  persist(dir: string, warn?: (msg: string) => void): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.dir = dir;
    this.files = undefined;
    if (warn) this.warn = warn;
  }

  /** Calls `fn` with every chunk written and every end, of every run, until the returned function is called (a Kafka worker relays them to the gateways: worker/run-io.ts). */
  tap(fn: OutputTap): () => void {
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  private fileOf(runId: string): string | undefined {
    // a run id has no slash and no leading dot: it is a file name as it is
    return this.dir && RUN_ID.test(runId) ? join(this.dir, `${runId}.jsonl`) : undefined;
  }

  private entry(runId: string): RunOutputEntry {
    let e = this.runs.get(runId);
    if (!e) {
      e = this.load(runId) ?? new RunOutputEntry();
      this.runs.set(runId, e);
    }
    return e;
  }

  /** The run's output as its file has it (the newest RUN_OUTPUT_MAX_BYTES), or undefined without one. */
  private load(runId: string): RunOutputEntry | undefined {
    const file = this.fileOf(runId);
    if (!file) return undefined;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    const e = new RunOutputEntry();
    e.fileBytes = Buffer.byteLength(text);
    for (const line of text.split('\n')) {
      if (!line) continue;
      let l: LogEntry;
      try {
        l = JSON.parse(line) as LogEntry;
      } catch {
        continue; // a line cut short by a crash mid-write
      }
      if (typeof l.log !== 'string' || typeof l.seq !== 'number' || l.seq <= e.seq) continue;
      e.chunks.push({ seq: l.seq, stream: l.stream === 'stderr' ? 'stderr' : 'stdout', text: l.log, time: l.time });
      e.bytes += Buffer.byteLength(l.log);
      e.seq = l.seq;
    }
    this.trim(e);
    e.dropped = e.chunks.length > 0 ? e.chunks[0].seq - 1 : e.seq;
    return e;
  }

  private trim(e: RunOutputEntry): void {
    while (e.bytes > RUN_OUTPUT_MAX_BYTES && e.chunks.length > 1) {
      e.bytes -= Buffer.byteLength(e.chunks.shift()!.text);
      e.dropped++;
    }
  }

  write(runId: string, stream: OutputStream, text: string): void {
    if (!text) return;
    const e = this.entry(runId);
    if (e.ended) return;
    e.live = true;
    const c: OutputChunk = { seq: ++e.seq, stream, text, time: new Date().toISOString() };
    e.chunks.push(c);
    e.bytes += Buffer.byteLength(text);
    this.trim(e);
    this.append(runId, e, c);
    for (const l of e.listeners) l(c);
    for (const t of this.taps) t(runId, c);
  }

  /** Appends the chunk to the run's file; past twice the bound, the file is rewritten to what memory keeps. */
  private append(runId: string, e: RunOutputEntry, c: OutputChunk): void {
    const file = this.fileOf(runId);
    if (!file || e.unkept) return;
    try {
      if (e.fileBytes > e.compactAt) {
        if (e.fd >= 0) closeSync(e.fd);
        e.fd = -1;
        const tmp = `${file}.tmp`;
        const fd = openSync(tmp, 'w', 0o600);
        try {
          const window = e.chunks.slice(0, -1).map(entryLine).join('');
          writeSync(fd, window);
          e.fileBytes = Buffer.byteLength(window);
          // output that JSON escapes to far more than its own size must not be rewritten at every chunk
          e.compactAt = 2 * Math.max(RUN_OUTPUT_MAX_BYTES, e.fileBytes);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, file);
      }
      if (e.fd < 0) e.fd = openSync(file, 'a', 0o600);
      const line = entryLine(c);
      writeSync(e.fd, line);
      e.fileBytes += Buffer.byteLength(line);
    } catch (err) {
      if (e.fd >= 0) closeSync(e.fd);
      e.fd = -1;
      e.unkept = true;
      this.warn(`run ${runId}: its output is no longer kept on disk (${(err as Error).message})`);
    }
  }

  /** The run's output is complete (its container's pipes closed, or it never started). */
  end(runId: string): void {
    const e = this.entry(runId);
    if (e.ended) return;
    e.ended = true;
    if (e.fd >= 0) {
      closeSync(e.fd);
      this.kept(runId, e.fileBytes);
    }
    e.fd = -1;
    for (const t of this.taps) t(runId, 'end');
    for (const l of e.listeners) l('end');
    e.listeners.clear();
    this.retire(runId);
  }

  /** An ended run's output: kept in memory among the newest RUN_OUTPUT_MAX_RUNS ended runs' (a file keeps the rest). */
  private retire(runId: string): void {
    this.endedOrder.push(runId);
    while (this.endedOrder.length > RUN_OUTPUT_MAX_RUNS) this.runs.delete(this.endedOrder.shift()!);
  }

  /** A run's file is complete: the oldest files go past RUN_LOG_FILES_MAX or RUN_LOG_DISK_MAX_BYTES. */
  private kept(runId: string, bytes: number): void {
    if (!this.dir) return;
    if (!this.files) {
      const found: Array<[string, number, number]> = [];
      try {
        for (const name of readdirSync(this.dir)) {
          if (!name.endsWith('.jsonl')) continue;
          const st = statSync(join(this.dir, name), { throwIfNoEntry: false });
          if (st) found.push([name.slice(0, -6), st.mtimeMs, st.size]);
        }
      } catch {
        /* an unreadable directory: nothing to prune */
      }
      found.sort((a, b) => a[1] - b[1]);
      this.files = new Map(found.map(([id, , size]) => [id, size]));
    }
    this.files.delete(runId);
    this.files.set(runId, bytes);
    let total = 0;
    for (const b of this.files.values()) total += b;
    for (const [id, b] of this.files) {
      if (this.files.size <= RUN_LOG_FILES_MAX && total <= RUN_LOG_DISK_MAX_BYTES) break;
      if (id === runId) break;
      if ((this.runs.get(id)?.fd ?? -1) >= 0) continue; // still being written
      try {
        unlinkSync(join(this.dir, `${id}.jsonl`));
      } catch {
        /* gone already */
      }
      this.files.delete(id);
      total -= b;
    }
  }

  /**
   * The chunks after `after`, then (follow) every new one until the end; `onChunk` gets them in
   * order and `onEnd` once. `ended`: the run has ended (its terminal event is recorded), so output
   * that nobody in this process writes (read back from a file, or none kept) is complete as it is.
   * Returns the unsubscribe function.
   */
  read(runId: string, after: number, follow: boolean, onChunk: (c: OutputChunk) => void, onEnd: () => void, ended = false): () => void {
    const e = this.entry(runId);
    // output of an ended run that nobody here writes is complete: kept as an ended run's (within
    // RUN_OUTPUT_MAX_RUNS), so reading many old runs does not grow this process without bound
    if (ended && !e.live && !e.ended) {
      e.ended = true;
      this.retire(runId);
    }
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
