import { BatchingAppender, decide, expectedVersionOf, isEnded, loadRun, RunLifecycleError, runStream, RunWriter, type EventStore, type StoredEvent } from '@capulator/events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IllegalState, Unavailable } from '../errors/domain.error';
import { runInput, RunInputClosed } from '../../../runtime/src/run/run-input';
import type { CommandLedger, CommandMark } from './orphans';
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
  /**
   * Where runtimes keep the directories of the runs they execute ($CAPULATOR_HOME/runs): a run
   * with one there is being run (or recovered) by some runtime of this home, never an orphan.
   */
  runsDir?: string;
}

/** A run requested this long ago that this executor does not hold may be an orphan (OrphanRecovery). */
export const IN_PROCESS_ORPHAN_AFTER_MS = 5_000;

interface Job {
  req: RunRequest;
  abort: AbortController;
}

/**
 * The runtime in the gateway's own process: a bounded queue in front of a RunFn. As a ledger
 * (OrphanRecovery), it answers for the runs a server killed before it could run them.
 */
export class InProcessExecutor implements RunExecutor, CommandLedger {
  readonly orphanAfterMs = IN_PROCESS_ORPHAN_AFTER_MS;
  readonly orphanReason = 'orphaned: the server that queued it stopped before it started; it never ran';
  private readonly queue: Job[] = [];
  private readonly running = new Map<string, Job>();
  private readonly idle = new Set<() => void>();
  private closed = false;
  private readonly appender: BatchingAppender;

  constructor(
    private readonly store: EventStore,
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
      runInput.release(job.req.runId);
      await this.failIfOpen(job.req.runId, 'stopped before it started');
      this.settle();
      return true;
    }
    const job = this.running.get(runId);
    if (!job) return false;
    job.abort.abort();
    return true;
  }

  /** The caller (RunsService) has checked that the run was requested with -i (-t for resizeTty). */
  async writeStdin(runId: string, data: Buffer, eof: boolean): Promise<boolean> {
    const job = this.running.get(runId) ?? this.queue.find((j) => j.req.runId === runId);
    if (!job) return false;
    try {
      await runInput.write(runId, data);
      if (eof) runInput.end(runId);
    } catch (err) {
      if (err instanceof RunInputClosed) throw new IllegalState(err.message);
      throw err;
    }
    return true;
  }

  resizeTty(runId: string, size: { rows: number; cols: number }): boolean {
    const job = this.running.get(runId) ?? this.queue.find((j) => j.req.runId === runId);
    if (!job) return false;
    try {
      runInput.resize(runId, size);
    } catch (err) {
      if (err instanceof RunInputClosed) throw new IllegalState(err.message);
      throw err;
    }
    return true;
  }

  /** Nothing to wait for here: what this executor holds is known now (see handled). */
  async markFor(): Promise<CommandMark> {
    return { partition: 0, offset: 0n };
  }

  /**
   * Whether `runId`, still requested, will never run: this executor holds it neither queued nor
   * running, and no runtime has its run directory (a `capulator run` of this home between its
   * RunRequested and its start, or a run left to recovery).
   */
  async handled(_mark: CommandMark, runId: string): Promise<boolean> {
    if (this.running.has(runId) || this.queue.some((j) => j.req.runId === runId)) return false;
    return !(this.opts.runsDir && existsSync(join(this.opts.runsDir, runId)));
  }

  /** Stops everything queued or running and waits until the running ones have ended. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      runInput.release(job.req.runId);
      await this.failIfOpen(job.req.runId, 'server shut down before the run started');
    }
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

  /** A shell around the run decider: load the run, decide each command the runner yields, append with the expected version. */
  private async execute(job: Job): Promise<void> {
    const { runId } = job.req;
    try {
      const writer = new RunWriter(
        (events, expectedVersion) => this.appender.append({ streamId: runStream(runId), expectedVersion, events }),
        await loadRun(this.store, runId),
        { onAppended: (stored) => this.opts.onAppended?.(stored) },
      );
      for await (const cmd of this.run(job.req, { signal: job.abort.signal })) {
        writer.submit(cmd);
        await writer.drain(); // back-pressure: the runner's next batch waits for this one's append
        if (writer.failed) throw writer.failed;
      }
      if (!isEnded(writer.state)) await this.failIfOpen(runId, 'the runner ended without an outcome');
    } catch (err) {
      runInput.release(runId);
      this.opts.onError?.(runId, err);
      await this.failIfOpen(runId, (err as Error)?.message ?? String(err)).catch(() => undefined);
    }
  }

  /** Records RunFailed unless the run has ended already (one terminal event per run). */
  private async failIfOpen(runId: string, reason: string): Promise<void> {
    const s = await loadRun(this.store, runId);
    if (s.phase === 'none' || isEnded(s)) return;
    const events = decide({ type: 'FailRun', at: (this.opts.now?.() ?? new Date()).toISOString(), stage: 'runtime', reason }, s);
    const stored = await this.appender.append({ streamId: runStream(runId), expectedVersion: expectedVersionOf(s.version), events });
    this.opts.onAppended?.(stored);
  }
}

export class QueueFull extends Unavailable {
  constructor(readonly limit: number) {
    super(`the run queue is full (${limit} waiting)`);
  }
}
