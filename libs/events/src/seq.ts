/**
 * Per-run sequence numbers: the agent numbers decision events 1, 2, 3, … with no gaps. These helpers
 * find gaps so the runtime can fill RunExited.lostEvents / lostReason and readers can report them.
 */

/** The missing numbers in 1…upTo given the numbers seen (any order, duplicates allowed), as ranges. */
export function missingSeqs(seen: Iterable<number>, upTo?: number): Array<[from: number, to: number]> {
  const sorted = Array.from(new Set(seen)).sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  let next = 1;
  for (const s of sorted) {
    if (s < next) continue;
    if (s > next) out.push([next, s - 1]);
    next = s + 1;
  }
  if (upTo !== undefined && upTo >= next) out.push([next, upTo]);
  return out;
}

export const countRanges = (ranges: Array<[number, number]>) => ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);

/**
 * Tracks one run's sequence numbers as they arrive, in constant memory while they arrive in order
 * (the common case); out-of-order arrivals fill gaps. Duplicates (the same seq twice) are reported.
 */
export class SeqTracker {
  private next = 1;
  private gaps: Array<[number, number]> = [];
  duplicates = 0;
  received = 0;

  /** Records one seq; returns 'ok', 'gap' (some earlier ones are missing so far), 'late' (filled a gap) or 'duplicate'. */
  observe(seq: number): 'ok' | 'gap' | 'late' | 'duplicate' {
    if (seq === this.next) {
      this.next++;
      this.received++;
      return 'ok';
    }
    if (seq > this.next) {
      this.gaps.push([this.next, seq - 1]);
      this.next = seq + 1;
      this.received++;
      return 'gap';
    }
    for (let i = 0; i < this.gaps.length; i++) {
      const [a, b] = this.gaps[i];
      if (seq < a || seq > b) continue;
      const repl: Array<[number, number]> = [];
      if (a <= seq - 1) repl.push([a, seq - 1]);
      if (seq + 1 <= b) repl.push([seq + 1, b]);
      this.gaps.splice(i, 1, ...repl);
      this.received++;
      return 'late';
    }
    this.duplicates++;
    return 'duplicate';
  }

  /** The highest seq seen (0 if none). */
  get last(): number {
    return this.next - 1;
  }

  /** Missing ranges; with `expectedLast` (the agent's final count) the tail counts too. */
  missing(expectedLast?: number): Array<[number, number]> {
    const out = this.gaps.slice();
    if (expectedLast !== undefined && expectedLast > this.last) out.push([this.last + 1, expectedLast]);
    return out;
  }
}

/**
 * What RunExited should say about loss: `lostEvents` and a `lostReason` naming the ranges
 * (and the agent's own drop count, if it reported one).
 */
export function lostEventsFor(tracker: SeqTracker, expectedLast?: number, agentReason?: string): { lostEvents: number; lostReason?: string } {
  const ranges = tracker.missing(expectedLast);
  const lost = countRanges(ranges);
  if (lost === 0) return agentReason ? { lostEvents: 0, lostReason: agentReason } : { lostEvents: 0 };
  const shown = ranges.slice(0, 5).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
  const more = ranges.length > 5 ? `,… (${ranges.length} ranges)` : '';
  return { lostEvents: lost, lostReason: `missing decision seq ${shown}${more}${agentReason ? `; ${agentReason}` : ''}` };
}
