/**
 * How `capulator logs` prints a run's output, kept as chunks (what one read of the program's
 * stdout or stderr gave: part of a line, or several), the same for a detached run (log.jsonl) and
 * a server's run (its logs stream): lines, as `docker logs` shows them.
 */
export type LogStream = 'stdout' | 'stderr';

export interface LogChunk {
  stream: LogStream;
  /** ISO time the chunk was read */
  time: string;
  text: string;
}

/** `--tail N`: a count of lines, or `all` (undefined). Throws Error with the reason. */
export function parseTail(value: string): number | undefined {
  if (value === 'all') return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new Error(`--tail ${value}: want a number of lines, or all`);
  return Number(value);
}

/**
 * The last `n` lines of these chunks, each as one chunk (its time the time its first part was
 * read). A line's parts may be spread over several chunks of its stream, with the other stream's
 * between them; lines are in the order they ended, a line not ended yet (no newline) last.
 */
export function lastLines(chunks: Iterable<LogChunk>, n: number): LogChunk[] {
  const lines: LogChunk[] = [];
  const open: Partial<Record<LogStream, LogChunk>> = {};
  for (const c of chunks) {
    let at = 0;
    while (at < c.text.length) {
      const nl = c.text.indexOf('\n', at);
      const end = nl < 0 ? c.text.length : nl + 1;
      const line = (open[c.stream] ??= { stream: c.stream, time: c.time, text: '' });
      line.text += c.text.slice(at, end);
      if (nl >= 0) {
        lines.push(line);
        delete open[c.stream];
        if (lines.length > 2 * n + 64) lines.splice(0, lines.length - n);
      }
      at = end;
    }
  }
  for (const s of ['stdout', 'stderr'] as const) if (open[s]) lines.push(open[s]!);
  return n === 0 ? [] : lines.slice(-n);
}

/**
 * Writes chunks to stdout and stderr; with `timestamps`, every line starts with the time of the
 * chunk it starts in (docker's `logs -t`), including each line of a chunk that holds several.
 */
export class LogPrinter {
  private readonly atLineStart: Record<LogStream, boolean> = { stdout: true, stderr: true };

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
    private readonly timestamps = false,
  ) {}

  write(c: LogChunk): void {
    const to = c.stream === 'stderr' ? this.err : this.out;
    if (!this.timestamps) {
      to.write(c.text);
      return;
    }
    if (c.text === '') return;
    const parts = c.text.split('\n'); // the last one '' when the chunk ends a line
    let s = '';
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      if (last && parts[i] === '') break;
      if (i > 0 || this.atLineStart[c.stream]) s += `${c.time} `;
      s += last ? parts[i] : `${parts[i]}\n`;
    }
    to.write(s);
    this.atLineStart[c.stream] = c.text.endsWith('\n');
  }
}
