import type { AppendRequest, EventStore, StoredEvent } from '@capulator/events';

interface Pending {
  req: AppendRequest;
  resolve: (events: StoredEvent[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: appends requested in the same turn of the event loop (or while a batch is
 * being written) go to the store together in one appendBatch — one transaction for many
 * concurrent submissions. appendBatch is all or nothing, so when a batch fails each request is
 * retried alone and only the one at fault sees the error.
 */
export class BatchingAppender {
  private queue: Pending[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(
    private readonly store: EventStore,
    private readonly maxBatch = 256,
  ) {}

  append(req: AppendRequest): Promise<StoredEvent[]> {
    return new Promise<StoredEvent[]>((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
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
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = batch.length === 1 ? [await this.store.append(batch[0].req.streamId, batch[0].req.expectedVersion, batch[0].req.events)] : await this.store.appendBatch(batch.map((p) => p.req));
          batch.forEach((p, i) => p.resolve(results[i]));
        } catch (err) {
          if (batch.length === 1) {
            batch[0].reject(err);
            continue;
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
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }
}
