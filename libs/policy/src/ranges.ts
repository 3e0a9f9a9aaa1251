/** Inclusive numeric ranges, sorted and merged: [[lo, hi], …]. */
export type Ranges = ReadonlyArray<readonly [number, number]>;

export const UINT32_MAX = 4294967295;

/**
 * Parses "0-999,65534" (also a plain non-negative integer, or a list of either).
 * Returns a message saying what is wrong instead of throwing.
 */
export function parseRanges(value: unknown, max = UINT32_MAX): { ranges?: Ranges; error?: string } {
  const parts: string[] = [];
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return { error: 'empty range list; write e.g. "0-999,65534"' };
  for (const it of items) {
    if (typeof it === 'number') parts.push(String(it));
    else if (typeof it === 'string') parts.push(...it.split(','));
    else return { error: `expected a number or a range string like "0-999,65534", got ${it === null ? 'null' : typeof it}` };
  }
  const out: Array<[number, number]> = [];
  for (const raw of parts) {
    const p = raw.trim();
    const m = /^(\d{1,10})(?:\s*-\s*(\d{1,10}))?$/.exec(p);
    if (!m) return { error: `"${p.slice(0, 40)}" is not a number or a range lo-hi (write e.g. "0-999,65534")` };
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (!Number.isSafeInteger(lo) || lo > max || hi > max) return { error: `"${p}" is out of bounds: values go from 0 to ${max}` };
    if (lo > hi) return { error: `"${p}" is backwards: the low end ${lo} is above the high end ${hi}; write "${hi}-${lo}"` };
    out.push([lo, hi]);
  }
  return { ranges: normalizeRanges(out) };
}

export function normalizeRanges(rs: ReadonlyArray<readonly [number, number]>): Ranges {
  const sorted = [...rs].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

export function inRanges(rs: Ranges, v: number): boolean {
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i];
    if (v < r[0]) return false;
    if (v <= r[1]) return true;
  }
  return false;
}

/** Every value of `inner` is in `outer`. */
export function rangesCover(outer: Ranges, inner: Ranges): boolean {
  return inner.every(([lo, hi]) => outer.some(([olo, ohi]) => olo <= lo && hi <= ohi));
}

export function formatRanges(rs: Ranges): string {
  return rs.map(([lo, hi]) => `${lo}-${hi}`).join(',');
}
