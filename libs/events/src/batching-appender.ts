import { StoreUnavailable } from './errors';
import { recordBytes, type StoredEvent } from './contracts';
import type { AppendRequest, EventStore } from './store';

/** A batch's bytes at most (recordBytes): one record on a Kafka log stays well under the broker's 1 MiB message.max.bytes. */
export const MAX_BATCH_BYTES = 768 * 1024;

interface Pending {
  req: AppendRequest;
  /** recordBytes of its events */
  bytes: number;
  resolve: (events: StoredEvent[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: appends requested in the same turn of the event loop (or while a batch is
 * being written) go to the store together in one appendBatch — one transaction for many
 * concurrent submissions. appendBatch is all or nothing, so when a batch fails each request is
 * retried alone and only the one at fault sees the error. A batch is atomic within one partition
 * of the log, so requests are grouped by partition (one batch each).
 */
export class BatchingAppender {
  private queue: Pending[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(
    private readonly store: EventStore,
    private readonly maxBatch = 256,
    /** one batch is one record on a Kafka log: its events' recordBytes at most this much (a request alone may be larger) */
    private readonly maxBytes = MAX_BATCH_BYTES,
  ) {}

  append(req: AppendRequest): Promise<StoredEvent[]> {
    return new Promise<StoredEvent[]>((resolve, reject) => {
      let bytes = 0;
      for (const e of Array.isArray(req.events) ? req.events : []) bytes += recordBytes(e);
      this.queue.push({ req, bytes, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        // one batch per partition (at most maxBatch each), written concurrently
        // once a request does not fit, the partition's later requests wait too (kept in order)
        const groups = new Map<number, { batch: Pending[]; bytes: number; full: boolean }>();
        const rest: Pending[] = [];
        for (const x of this.queue) {
          const p = this.store.partitionOf(x.req.streamId);
          let g = groups.get(p);
          if (!g) groups.set(p, (g = { batch: [], bytes: 0, full: false }));
          if (g.batch.length > 0 && (g.full || g.batch.length >= this.maxBatch || g.bytes + x.bytes > this.maxBytes)) {
            g.full = true;
            rest.push(x);
          } else {
            g.batch.push(x);
            g.bytes += x.bytes;
          }
        }
        this.queue = rest;
        const outcomes = await Promise.all([...groups.values()].map((g) => this.write(g.batch)));
        // the log is unreachable: what queued behind the failed write is refused now, unsent
        // (certainly not written), instead of waiting out a timeout of its own
        const down = outcomes.find((o) => o !== undefined);
        if (down) {
          const waiting = this.queue;
          this.queue = [];
          const err = new StoreUnavailable(`${down.message} (not tried: the write before it found the log unreachable)`);
          for (const p of waiting) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  /** Writes one batch; returns the error when the log was unreachable. */
  private async write(batch: Pending[]): Promise<Error | undefined> {
    try {
      const results = batch.length === 1 ? [await this.store.append(batch[0].req.streamId, batch[0].req.expectedVersion, batch[0].req.events)] : await this.store.appendBatch(batch.map((p) => p.req));
      batch.forEach((p, i) => p.resolve(results[i]));
    } catch (err) {
      if (batch.length === 1 || isUnavailable(err)) {
        for (const p of batch) p.reject(err);
        return isUnavailable(err) ? (err as Error) : undefined;
      }
      for (const p of batch) {
        try {
          p.resolve(await this.store.append(p.req.streamId, p.req.expectedVersion, p.req.events));
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }
}

/** The log could not be reached: retrying each request alone would only wait longer. */
function isUnavailable(err: unknown): boolean {
  return (err as { code?: string })?.code === 'UNAVAILABLE';
}
