import { anchorKey, appendAnchorAsync, signAnchor, writeAnchor, type Anchor, type AnchorPaths } from './anchor';

/** Events between automatic anchors while a run is recorded (one more is written at its end). */
export const ANCHOR_EVERY_EVENTS = 10_000;
/** A server's anchors (anchorSoon) at most this often: the latest anchor of a log witnesses everything before it. */
export const ANCHOR_MIN_INTERVAL_MS = 1_000;

type Head = { position: number; hash: string };

/**
 * Writes anchors at sensible points for a writer: every ANCHOR_EVERY_EVENTS appended events and
 * when asked (at a run's end). A failure to anchor is reported to `warn`, never thrown: the log
 * itself is intact, only its outside witness is late. The key is read once. `head` gives the
 * log's head, or a partitioned log's heads (one per partition, anchored as `log`'s v2 anchors).
 */
export class Anchorer {
  private since = 0;
  /** the last anchored position by partition (a log that is not partitioned: its only one, 0) */
  private readonly last = new Map<number, number>();
  private key: Buffer | undefined;
  private syncing = false;
  private again = false;
  private lastAt = 0;
  private trailing: NodeJS.Timeout | undefined;
  private readonly every: number;
  private readonly log: string | undefined;
  private readonly minIntervalMs: number;

  constructor(
    private readonly paths: AnchorPaths,
    private readonly head: () => Head | Head[],
    private readonly warn: (message: string) => void,
    o: { every?: number; log?: string; minIntervalMs?: number } = {},
  ) {
    this.every = o.every ?? ANCHOR_EVERY_EVENTS;
    this.log = o.log;
    this.minIntervalMs = o.minIntervalMs ?? ANCHOR_MIN_INTERVAL_MS;
  }

  appended(n: number): void {
    this.since += n;
    if (this.since >= this.every) this.anchor();
  }

  /** Anchors the head now (appended and fsync'd before it returns); undefined when it is anchored already or cannot be. */
  anchor(): Anchor | undefined {
    this.since = 0;
    try {
      const h = this.head();
      if (Array.isArray(h)) throw new Error('a partitioned log is anchored by anchorSoon');
      if (h.position === 0 || h.position === this.last.get(0)) return undefined;
      this.key ??= anchorKey(this.paths.key, true)!;
      this.last.set(0, h.position);
      return writeAnchor(this.paths, h, { key: this.key });
    } catch (err) {
      this.warn(`cannot write an anchor to ${this.paths.file}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /**
   * Anchors the head without making the caller wait for the disk (a server ending runs): the
   * line is written and fsync'd on the thread pool, one anchor at a time, at most one round per
   * minIntervalMs; heads that move meanwhile get one more anchor after it. So a server that ends
   * hundreds of runs a second writes about one anchor a second (per partition of a partitioned
   * log), each naming the head of its moment, and its event loop never stalls on an fsync (it
   * did: up to 54 ms each, one per run's end).
   */
  anchorSoon(): void {
    if (this.syncing) {
      this.again = true;
      return;
    }
    const wait = this.lastAt + this.minIntervalMs - Date.now();
    if (wait > 0) {
      this.trailing ??= setTimeout(() => {
        this.trailing = undefined;
        this.anchorSoon();
      }, wait);
      this.trailing.unref();
      return;
    }
    this.since = 0;
    let due: Anchor[];
    try {
      const h = this.head();
      const partitioned = Array.isArray(h);
      if (partitioned && !this.log) throw new Error('the anchors of a partitioned log need its name');
      const moved = (partitioned ? h : [h]).map((x, p) => ({ ...x, p })).filter((x) => x.position !== 0 && x.position !== this.last.get(x.p));
      if (moved.length === 0) return;
      this.key ??= anchorKey(this.paths.key, true)!;
      const at = new Date().toISOString();
      due = moved.map((x) => {
        this.last.set(x.p, x.position);
        return signAnchor(this.key!, x, at, partitioned ? this.log : undefined);
      });
    } catch (err) {
      this.warn(`cannot write an anchor to ${this.paths.file}: ${(err as Error).message}`);
      return;
    }
    this.syncing = true;
    this.lastAt = Date.now();
    appendAnchorAsync(this.paths.file, due)
      .catch((err: Error) => this.warn(`cannot write an anchor to ${this.paths.file}: ${err.message}`))
      .finally(() => {
        this.syncing = false;
        if (this.again) {
          this.again = false;
          this.anchorSoon();
        }
      });
  }

  /** Writes a waiting anchor now and resolves once none is being written (a server's shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      if (this.syncing) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      if (!this.trailing) return;
      clearTimeout(this.trailing);
      this.trailing = undefined;
      this.lastAt = 0;
      this.anchorSoon();
    }
  }
}
