import type { EventTypes, StoredEvent } from '../contracts';
import type { SqliteEventStore } from '../sqlite/sqlite-event-store';
import type { EventStore } from '../store';
import { READ_MODEL_VERSION } from './read-models.projector';
import { evolveRunSummary, runIdOf, type RunSummary } from './run-summary.projection';

/**
 * The runs read model as of now, for `capulator ps`, without writing: the rows the projector has
 * stored (`rm_runs`, as of its checkpoint) with the events after the checkpoint folded in memory
 * by the same `evolveRunSummary`. It needs no write lock, so it works while runs are recorded.
 */
export function runSummaries(store: SqliteEventStore): RunSummary[] {
  // one read snapshot: the rows, their checkpoint and the tail agree
  return store.db.transaction(() => readRunSummaries(store))();
}

function readRunSummaries(store: SqliteEventStore): RunSummary[] {
  const db = store.db;
  const runs = new Map<string, RunSummary>();
  let from = 1;
  const has = (t: string) => db.prepare('SELECT count(*) FROM sqlite_master WHERE name = ?').pluck().get(t) === 1;
  if (has('rm_runs') && has('projection_checkpoints') && has('projection_meta')) {
    const cps = db.prepare("SELECT position FROM projection_checkpoints WHERE name = 'runs'").pluck().get() as number | undefined;
    const version = db.prepare("SELECT value FROM projection_meta WHERE key = 'version'").pluck().get() as string | undefined;
    // rows of another read-model version were folded by other rules: fold from the log instead
    if (cps !== undefined && version === String(READ_MODEL_VERSION)) {
      for (const json of db.prepare('SELECT summary FROM rm_runs').pluck().iterate() as IterableIterator<string>) {
        const s = JSON.parse(json) as RunSummary;
        runs.set(s.runId, s);
      }
      from = cps + 1;
    }
  }
  for (const e of store.readAllSync(from, { batch: 5000 })) foldInto(runs, e);
  return [...runs.values()];
}

/** Folds one event into a map of run summaries (any store: the Kafka log is read the same way). */
export function foldInto(runs: Map<string, RunSummary>, e: StoredEvent): void {
  const id = runIdOf(e);
  if (id === null) return;
  if (!runs.has(id) && e.type !== 'RunRequested') return;
  const next = evolveRunSummary(runs.get(id), e);
  if (next) runs.set(id, next);
}

/** What `capulator inspect` adds to a run's summary: the start (granted sets, the rules that granted them) and the end. */
export interface RunDetails {
  summary: RunSummary;
  requested: EventTypes['RunRequested'] | null;
  started: EventTypes['RunStarted'] | null;
  ended: { type: 'RunExited' | 'RunFailed'; at: string; payload: EventTypes['RunExited'] | EventTypes['RunFailed'] } | null;
}

export async function runDetails(store: Pick<EventStore, 'readStream'>, summary: RunSummary): Promise<RunDetails> {
  const out: RunDetails = { summary, requested: null, started: null, ended: null };
  for await (const e of store.readStream(`run-${summary.runId}`)) {
    if (e.type === 'RunRequested') out.requested = e.payload as EventTypes['RunRequested'];
    else if (e.type === 'RunStarted') out.started = e.payload as EventTypes['RunStarted'];
    else if ((e.type === 'RunExited' || e.type === 'RunFailed') && !out.ended) out.ended = { type: e.type, at: e.at, payload: e.payload as never };
  }
  return out;
}
