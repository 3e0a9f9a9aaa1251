/**
 * One request at a time, whatever the rate: items pushed while a batch is being sent wait and go
 * together in the next one, in order. The group commit of the Kafka command producer and of the
 * run output relay (apps/gateway/src/bus/kafka-run.executor.ts, apps/runtime/src/worker/run-io.ts).
 * `send` reports its own failures; a rejection is ignored here.
 */
export class Coalescer<T> {
  private queue: T[] = [];
  private sending = false;

  constructor(private readonly send: (batch: T[]) => Promise<void>) {}

  push(item: T): void {
    this.queue.push(item);
    if (!this.sending) void this.flush();
  }

  /** Takes a waiting item back (false when it is already being sent or was never pushed). */
  remove(item: T): boolean {
    const i = this.queue.indexOf(item);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** a batch is being sent, or items wait */
  get busy(): boolean {
    return this.sending || this.queue.length > 0;
  }

  private async flush(): Promise<void> {
    this.sending = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.send(batch).catch(() => undefined);
      }
    } finally {
      this.sending = false;
    }
  }
}
