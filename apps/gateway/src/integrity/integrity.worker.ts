/**
 * `audit verify` off the event loop: a worker thread opens the SQLite store read-only and walks
 * the chain (every hash recomputed), so a long log does not stall the gateway while it is checked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteEventStore, verifyChain, type Anchor, type VerifyResult } from '@capulator/events';

export interface VerifyJob {
  dbPath: string;
  anchors: Anchor[];
}

export function runVerifyJob(store: SqliteEventStore, job: VerifyJob): VerifyResult {
  return verifyChain(store, { anchors: job.anchors });
}

if (parentPort && workerData && (workerData as { verifyJob?: VerifyJob }).verifyJob) {
  const job = (workerData as { verifyJob: VerifyJob }).verifyJob;
  const store = SqliteEventStore.open(job.dbPath, { readonly: true });
  try {
    parentPort.postMessage(runVerifyJob(store, job));
  } finally {
    void store.close();
  }
}
