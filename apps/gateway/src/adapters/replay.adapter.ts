import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ReadModelProjector, SqliteEventStore, type EventStore } from '@capulator/events';
import { DomainError, PolicyInvalid, Unavailable } from '../errors/domain.error';
import type { Replayer, ReplayReport, ReplayRequest } from '../replays/replayer';
import { runReplayJob, type ReplayJob, type ReplayJobResult } from '../replays/replay.worker';

const MAX_CHANGES = 1000;

export interface EventsReplayerOptions {
  /** a replay running longer is cancelled (503); default 10 minutes */
  timeoutMs?: number;
}

/**
 * libs/events' what-if over the SQLite read models, with libs/policy as the policy under test.
 * The read models are caught up on this thread (incremental); the replay itself runs in a worker
 * thread on a read-only connection, so the event loop stays free, and it is cancelled (the worker
 * terminated) when the caller's signal aborts or the timeout passes.
 */
export class EventsReplayer implements Replayer {
  private projector: ReadModelProjector | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly options: EventsReplayerOptions = {},
  ) {}

  async whatIf(req: ReplayRequest, signal?: AbortSignal): Promise<ReplayReport> {
    if (!(this.store instanceof SqliteEventStore)) throw new Unavailable('what-if replay needs the SQLite store');
    this.projector ??= new ReadModelProjector(this.store);
    this.projector.catchUp();
    const job: ReplayJob = { dbPath: this.store.db.name, policyYaml: req.policyYaml, maxChanges: MAX_CHANGES, ...(req.runIds ? { runIds: req.runIds } : {}), ...(req.since ? { since: req.since } : {}) };
    // an in-memory store cannot be opened by another thread: replay it here (tests only)
    const result = this.store.db.memory ? runReplayJob(this.store.db, job) : await this.inWorker(job, signal);
    if (!result.ok) throw new PolicyInvalid(result.errors);
    return result.report;
  }

  private inWorker(job: ReplayJob, signal: AbortSignal | undefined): Promise<ReplayJobResult> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Unavailable('the replay was cancelled'));
      const worker = new Worker(join(__dirname, '../replays/replay.worker.js'), { workerData: { replayJob: job } });
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        f();
      };
      const cancel = (why: string) => finish(() => {
        void worker.terminate();
        reject(new Unavailable(why));
      });
      const onAbort = () => cancel('the replay was cancelled');
      const timeoutMs = this.options.timeoutMs ?? 600_000;
      const timer = setTimeout(() => cancel(`the replay ran longer than ${Math.round(timeoutMs / 1000)} s and was cancelled`), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.once('message', (m: ReplayJobResult) => finish(() => resolve(m)));
      worker.once('error', (e) => finish(() => reject(e instanceof DomainError ? e : new DomainError('internal', `replay failed: ${e.message}`))));
      worker.once('exit', (code) => finish(() => reject(new DomainError('internal', `replay worker exited with ${code}`))));
    });
  }
}
