import { runStream, type EventStore, type NewEvent, type StoredEvent } from '@capulator/events';
import { Unavailable } from '../errors/domain.error';
import { BatchingAppender } from '../store/batching-appender';
import type { RunExecutor, RunFn, RunRequest } from './run-executor';

export interface InProcessExecutorOptions {
  /** how many runs execute at once; the rest wait in a FIFO queue */
  concurrency: number;
  /** the most runs that may wait; submit() beyond it is refused */
  maxQueued: number;
  /** called with what was appended, so the gateway sees its own runtime's events at once */
  onAppended?: (events: StoredEvent[]) => void;
  onError?: (runId: string, err: unknown) => void;
  now?: () => Date;
}

interface Job {
  req: RunRequest;
  abort: AbortController;
}

/** The runtime in the gateway's own process: a bounded queue in front of a RunFn. */
export class InProcessExecutor implements RunExecutor {
  private readonly queue: Job[] = [];
  private readonly running = new Map<string, Job>();
  private readonly idle = new Set<() => void>();
  private closed = false;
  private readonly appender: BatchingAppender;

  constructor(
    store: EventStore,
    private readonly run: RunFn,
    private readonly opts: InProcessExecutorOptions,
  ) {
    this.appender = new BatchingAppender(store);
  }

  get stats(): { queued: number; running: number } {
    return { queued: this.queue.length, running: this.running.size };
  }

  async submit(req: RunRequest): Promise<void> {
    if (this.closed) throw new Unavailable('the server is shutting down');
    if (this.queue.length >= this.opts.maxQueued) throw new QueueFull(this.opts.maxQueued);
    this.queue.push({ req, abort: new AbortController() });
    setImmediate(() => this.pump());
  }

  async stop(runId: string): Promise<boolean> {
    const i = this.queue.findIndex((j) => j.req.runId === runId);
    if (i >= 0) {
      const [job] = this.queue.splice(i, 1);
      await this.append(job.req.runId, [this.failed(job.req.runId, 'stopped before it started')]);
      this.settle();
      return true;
    }
    const job = this.running.get(runId);
    if (!job) return false;
    job.abort.abort();
    return true;
  }

  /** Stops everything queued or running and waits until the running ones have ended. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) await this.append(job.req.runId, [this.failed(job.req.runId, 'server shut down before the run started')]);
    for (const job of this.running.values()) job.abort.abort();
    if (this.running.size > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running.set(job.req.runId, job);
      void this.execute(job).finally(() => {
        this.running.delete(job.req.runId);
        this.settle();
        this.pump();
      });
    }
  }

  private settle(): void {
    if (this.running.size > 0) return;
    const waiting = [...this.idle];
    this.idle.clear();
    for (const fn of waiting) fn();
  }

  private async execute(job: Job): Promise<void> {
    const { runId } = job.req;
    let ended = false;
    try {
      for await (const item of this.run(job.req, { signal: job.abort.signal })) {
        const batch = Array.isArray(item) ? item : [item];
        if (batch.length === 0) continue;
        await this.append(runId, batch);
        if (batch.some((e) => e.type === 'RunExited' || e.type === 'RunFailed')) ended = true;
      }
      if (!ended) await this.append(runId, [this.failed(runId, 'the runner ended without RunExited')]);
    } catch (err) {
      this.opts.onError?.(runId, err);
      if (!ended) await this.append(runId, [this.failed(runId, (err as Error)?.message ?? String(err))]).catch(() => undefined);
    }
  }

  private failed(runId: string, reason: string): NewEvent<'RunFailed'> {
    return { type: 'RunFailed', at: (this.opts.now?.() ?? new Date()).toISOString(), payload: { runId, reason, stage: 'runtime' } };
  }

  private async append(runId: string, events: NewEvent[]): Promise<void> {
    const stored = await this.appender.append({ streamId: runStream(runId), expectedVersion: 'any', events });
    this.opts.onAppended?.(stored);
  }
}

export class QueueFull extends Unavailable {
  constructor(readonly limit: number) {
    super(`the run queue is full (${limit} waiting)`);
  }
}
