/**
 * Which offsets of one partition are finished. A command's offset may be committed only when it
 * and every offset before it are done (runs finish out of order), so the commit point is the
 * first offset not yet done, or one past the last one seen when all are.
 */
export class OffsetTracker {
  private readonly entries: Array<{ offset: bigint; done: boolean }> = [];
  private committed = -1n;

  add(offset: bigint): void {
    const last = this.entries[this.entries.length - 1];
    if (last && offset <= last.offset) return; // redelivered: already tracked
    this.entries.push({ offset, done: false });
  }

  done(offset: bigint): void {
    const e = this.entries.find((x) => x.offset === offset);
    if (e) e.done = true;
  }

  /** The offset to commit (the next one to read), or null when nothing new is committable. */
  commitPoint(): bigint | null {
    let point: bigint | null = null;
    while (this.entries.length > 0 && this.entries[0].done) point = this.entries.shift()!.offset + 1n;
    if (point === null || point <= this.committed) return null;
    this.committed = point;
    return point;
  }

  get pending(): number {
    return this.entries.length;
  }
}
