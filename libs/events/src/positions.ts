/**
 * Positions in a partitioned log. A log of P partitions numbers each partition's events 1, 2, 3…
 * (its sequence, n) and encodes (partition p, n) as one integer:
 *
 *     position = (n − 1) × P + p + 1
 *
 * so partition p holds positions p+1, p+1+P, p+1+2P… With P = 1 (SQLite, a one-partition topic)
 * positions are 1, 2, 3… as always. Every reader computes the same positions. Within a partition
 * positions increase with the log; across partitions the defined order ("position order", used by
 * `audit log`, replay and readAll) is by sequence, then partition: (1,0) (1,1) … (2,0) (2,1) …
 * It is total and identical everywhere, but a partition that lags can later add events before
 * ones already read, so a live reader keeps one cursor per partition (see Cursor).
 */

/** The partition of a position. */
export function partitionOfPosition(position: number, partitions: number): number {
  return (position - 1) % partitions;
}

/** The sequence (1-based index) of a position within its partition. */
export function sequenceOfPosition(position: number, partitions: number): number {
  return Math.floor((position - 1) / partitions) + 1;
}

/** The position of the n-th event (1-based) of a partition. */
export function positionOf(partition: number, n: number, partitions: number): number {
  return (n - 1) * partitions + partition + 1;
}

/**
 * Where a reader stands: for each partition, the last position it has seen (0: none). With one
 * partition this is [head]. Serialised for SSE/gRPC resume as the last position of the run's
 * stream (a stream lives in one partition), and for whole-log followers as `p0,p1,…`.
 */
export type Cursor = number[];

export function emptyCursor(partitions: number): Cursor {
  return new Array<number>(partitions).fill(0);
}

/** Advances a cursor past a position; false when the position was already seen (a duplicate). */
export function advanceCursor(cursor: Cursor, position: number): boolean {
  const p = partitionOfPosition(position, cursor.length);
  if (position <= cursor[p]) return false;
  cursor[p] = position;
  return true;
}

/** The cursor that has seen every position below `from` (a whole-log subscription from a position). */
export function cursorBefore(from: number, partitions: number): Cursor {
  const c = emptyCursor(partitions);
  for (let p = 0; p < partitions; p++) {
    // the last position of partition p that is < from: p + 1 + k·P with k = ⌈(from − p − 1) / P⌉ − 1
    const span = from - p - 1;
    c[p] = span > 0 ? p + 1 + (Math.ceil(span / partitions) - 1) * partitions : 0;
  }
  return c;
}

/** Stable partition of a stream id (FNV-1a 32-bit). Writers and readers of every process agree. */
export function partitionOfStream(streamId: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < streamId.length; i++) {
    h ^= streamId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
