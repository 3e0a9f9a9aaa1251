import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** How often the background checkpointer copies the WAL into the database (ms). */
export const CHECKPOINT_EVERY_MS = 200;

/**
 * Moves a connection's WAL checkpoints off its thread. SQLite checkpoints inside a commit once
 * the WAL passes 1000 pages: on a server that commits hundreds of small appends a second that is
 * a 16 MB copy and an fsync (30–54 ms measured here) inside some request every second or so, the
 * whole p99. Here the connection stops checkpointing itself and a worker thread (checkpoint.worker)
 * checkpoints every CHECKPOINT_EVERY_MS. Should the worker fail, the connection checkpoints itself
 * again, so the WAL never grows without bound.
 */
export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private done = false;

  constructor(
    private readonly db: Database.Database,
    path: string,
    everyMs = CHECKPOINT_EVERY_MS,
  ) {
    db.pragma('wal_autocheckpoint = 0');
    // after a checkpoint the WAL restarts from its beginning; its file is cut back to 64 MB then
    db.pragma(`journal_size_limit = ${64 << 20}`);
    this.worker = new Worker(join(__dirname, 'checkpoint.worker.js'), { workerData: { checkpointJob: { path, everyMs } } });
    this.worker.unref();
    const fallBack = () => {
      if (this.done) return;
      this.done = true;
      db.pragma('wal_autocheckpoint = 1000');
    };
    this.worker.on('message', (m: { error?: string }) => {
      if (m.error) fallBack();
    });
    this.worker.on('error', fallBack);
    this.worker.on('exit', fallBack);
  }

  /** Whether checkpoints still run on the worker (false: the connection checkpoints itself). */
  get running(): boolean {
    return !this.done;
  }

  /** A last checkpoint, then the worker ends (before the connection closes). */
  async stop(): Promise<void> {
    if (this.done) return;
    this.done = true;
    const ended = new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      this.worker.on('message', (m: { stopped?: boolean }) => m.stopped && void this.worker.terminate());
    });
    this.worker.postMessage({ stop: true });
    await Promise.race([ended, new Promise((r) => setTimeout(r, 5_000).unref())]);
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }
}
