import { advanceCursor, emptyCursor, partitionOfPosition, type Cursor, type EventStore, type StoredEvent } from '@capulator/events';

export type EventListener = (e: StoredEvent) => void;

/**
 * One subscription to the event store, fanned out in process to the read models, the metrics
 * and every live watcher (SSE, gRPC WatchRun). Catches up with readAll at start, then follows
 * the store's subscription; every listener sees each position once, in order within its
 * partition (a stream lives in one partition, so a run's events arrive in order).
 */
export class EventHub {
  private readonly listeners = new Set<EventListener>();
  private sub: { close(): Promise<void> } | undefined;
  /** per partition, the highest position delivered by the store (catch-up or subscription) */
  private delivered: Cursor;
  /** positions published ahead of the subscription by this process */
  private readonly early = new Set<number>();
  private ready = false;

  constructor(private readonly store: EventStore) {
    this.delivered = emptyCursor(store.partitions);
  }

  /** the highest position delivered (of any partition) */
  get position(): number {
    return Math.max(0, ...this.delivered);
  }

  /** per partition, the last position delivered */
  get cursor(): Cursor {
    return this.delivered.slice();
  }

  get isReady(): boolean {
    return this.ready;
  }

  listen(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async start(): Promise<void> {
    for await (const e of this.store.readAll(0)) this.fromStore(e);
    this.sub = this.store.subscribe(this.delivered.slice(), (e) => this.fromStore(e));
    this.ready = true;
  }

  async close(): Promise<void> {
    this.ready = false;
    await this.sub?.close();
    this.sub = undefined;
  }

  /**
   * Feeds events this process appended itself, so its own writes are visible at once; the
   * store's subscription delivers them again later and they are skipped then. Within one
   * stream, order is kept (appends to a stream are ordered); across streams it may not be.
   */
  publish(events: StoredEvent[]): void {
    for (const e of events) {
      if (e.position <= this.delivered[partitionOfPosition(e.position, this.delivered.length)] || this.early.has(e.position)) continue;
      this.early.add(e.position);
      this.dispatch(e);
    }
  }

  private fromStore(e: StoredEvent): void {
    if (!advanceCursor(this.delivered, e.position)) return;
    if (this.early.delete(e.position)) return;
    this.dispatch(e);
  }

  private dispatch(e: StoredEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch {
        // a listener's fault must not stop the others; listeners log their own errors
      }
    }
  }
}
