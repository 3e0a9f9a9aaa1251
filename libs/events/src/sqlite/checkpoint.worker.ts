/**
 * The WAL checkpoints of a server's event store, on a thread of their own (checkpointer.ts): a
 * connection to the same file copies committed WAL frames into the database and fsyncs it, while
 * the event loop's connection goes on committing. PASSIVE never waits for the writer or readers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './open-database';

export interface CheckpointJob {
  path: string;
  everyMs: number;
}

if (parentPort && workerData && (workerData as { checkpointJob?: CheckpointJob }).checkpointJob) {
  const job = (workerData as { checkpointJob: CheckpointJob }).checkpointJob;
  const port = parentPort;
  const db = openDatabase(job.path, { fileMustExist: true });
  db.pragma('busy_timeout = 0');
  const step = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    try {
      step.get();
    } catch (err) {
      // SQLITE_BUSY: another checkpoint (a CLI's own) runs; anything else ends this thread
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') {
        port.postMessage({ error: (err as Error).message });
        stopped = true;
        db.close();
        return;
      }
    }
    setTimeout(tick, job.everyMs);
  };
  port.on('message', (m: { stop?: boolean }) => {
    if (!m.stop || stopped) return;
    stopped = true;
    try {
      step.get();
    } catch {
      /* the next writer checkpoints */
    }
    db.close();
    port.postMessage({ stopped: true });
  });
  port.postMessage({ ready: true });
  tick();
}
