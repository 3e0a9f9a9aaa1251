import type { EventStore, StoredEvent } from '@capulator/events';

export type EventListener = (e: StoredEvent) => void;

/**
 * One subscription to the event store, fanned out in process to the read models, the metrics
 * and every live watcher (SSE, gRPC WatchRun). Catches up with readAll at start, then follows
 * the store's subscription; every listener sees each position once, in order.
 */
export class EventHub {
  private readonly listeners = new Set<EventListener>();
  private sub: { close(): Promise<void> } | undefined;
  /** highest position delivered by the store (catch-up or subscription) */
  private delivered = 0;
  /** positions published ahead of the subscription by this process */
  private readonly early = new Set<number>();
  private ready = false;

  constructor(private readonly store: EventStore) {}

  get position(): number {
    return this.delivered;
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
    this.sub = this.store.subscribe(this.delivered + 1, (e) => this.fromStore(e));
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
      if (e.position <= this.delivered || this.early.has(e.position)) continue;
      this.early.add(e.position);
      this.dispatch(e);
    }
  }

  private fromStore(e: StoredEvent): void {
    if (e.position <= this.delivered) return;
    this.delivered = e.position;
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
