/**
 * The line framing both native helpers (the agent and the kernel record) speak on their event
 * pipes: text lines, a chunk may end inside one. Keeps the unfinished tail between chunks and
 * hands every complete, non-empty line on; the caller decides what a line means.
 */
export class LineReader {
  private partial = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    const text = this.partial + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line !== '') this.onLine(line);
    }
    this.partial = text.slice(start);
  }
}

/** A control line: one JSON object with a `type`; `undefined` for anything else (counted as malformed by the caller). */
export function parseControlLine<T extends { type: string }>(line: string): T | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    return v !== null && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string' ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}
