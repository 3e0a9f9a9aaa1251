/**
 * The what-if replay off the event loop: a worker thread opens the SQLite store read-only and runs
 * libs/events' whatIf with libs/policy as the policy under test. The gateway's thread keeps
 * answering (/healthz, runs, the run socket) while a long replay runs; terminating the worker
 * cancels the replay.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { openDatabase, whatIf, whatIfExitCode, type WhatIfChange } from '@capulator/events';
import { capabilitySets, evaluate, load } from '@capulator/policy';

export interface ReplayJob {
  dbPath: string;
  policyYaml: string;
  runIds?: string[];
  since?: string;
  maxChanges: number;
}

export type ReplayJobResult =
  | { ok: true; report: Record<string, unknown> & { examined: number; changed: number; wouldDeny: number; policy: { name: string; hash: string } } }
  | { ok: false; errors: Array<{ code: string; message: string; location: string }> };

export function runReplayJob(db: Database.Database, job: ReplayJob): ReplayJobResult {
  const loaded = load(job.policyYaml, 'policyYaml');
  if (!loaded.policy || loaded.errors.length > 0) {
    return { ok: false, errors: loaded.errors.map((e) => ({ code: e.code, message: e.message, location: `${e.location.file}:${e.location.line}:${e.location.col}` })) };
  }
  const policy = loaded.policy;
  const changes: WhatIfChange[] = [];
  let total = 0;
  const summary = whatIf(
    db,
    { evaluate: (r) => evaluate(policy, r), startCapabilities: (c) => capabilitySets(policy, c).sets.bounding },
    { ...(job.runIds ? { runIds: job.runIds } : {}), ...(job.since ? { since: job.since } : {}) },
    (c) => {
      total++;
      if (changes.length < job.maxChanges) changes.push(c);
    },
  );
  return {
    ok: true,
    report: {
      policy: { name: policy.name, hash: policy.version },
      examined: summary.decisions,
      changed: summary.changed + summary.capabilityChanges,
      wouldDeny: summary.regressions + summary.capabilityRegressions,
      exitCode: whatIfExitCode(summary),
      summary,
      changes,
      truncated: total > changes.length,
    },
  };
}

if (parentPort && workerData && (workerData as { replayJob?: ReplayJob }).replayJob) {
  const job = (workerData as { replayJob: ReplayJob }).replayJob;
  const db = openDatabase(job.dbPath, { readonly: true, fileMustExist: true });
  try {
    parentPort.postMessage(runReplayJob(db, job));
  } finally {
    db.close();
  }
}
