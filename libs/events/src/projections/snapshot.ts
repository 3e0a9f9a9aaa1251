import type Database from 'better-sqlite3';
import type { StoredEvent } from '../contracts';
import type { EventStore, ReadAllOptions } from '../store';
import { partitionOfPosition } from '../positions';
import { ReadModelProjector } from './read-models.projector';
import { openDatabase } from '../sqlite/open-database';

/**
 * Read models (runs, decisions, policies, images) folded from any event store into a private
 * in-memory SQLite database: how `audit log|replay|rebuild` and `ps` work against a log that is
 * not SQLite (Kafka). The log is read once, in position order (see positions.ts), from a
 * snapshot taken when this is called. `partitions`: the log's (for `last`, see foldEvents).
 */
export async function foldReadModels(store: EventStore, partitions = 1): Promise<{ db: Database.Database; projector: ReadModelProjector; events: number; last: number[]; close(): void }> {
  const events: StoredEvent[] = [];
  for await (const e of store.readAll(1)) events.push(e);
  return foldEvents(events, partitions);
}

/**
 * Read models of the given events (in position order) alone. `last`: every position folded, as
 * the highest one per partition of a log of `partitions` (default 1): where a live follower of
 * the same log goes on from (positions.ts Cursor).
 */
export function foldEvents(events: StoredEvent[], partitions = 1): { db: Database.Database; projector: ReadModelProjector; events: number; last: number[]; close(): void } {
  const last = new Array<number>(Math.max(1, partitions)).fill(0);
  for (const e of events) {
    const p = partitionOfPosition(e.position, last.length);
    if (e.position > last[p]) last[p] = e.position;
  }
  const db = openDatabase(':memory:');
  const source = {
    db,
    *readAllSync(fromPosition = 1, opts: ReadAllOptions = {}): Iterable<StoredEvent> {
      const types = opts.types ? new Set(opts.types) : null;
      for (const e of events) if (e.position >= fromPosition && (!types || types.has(e.type))) yield e;
    },
  };
  const projector = new ReadModelProjector(source);
  projector.catchUp();
  return { db, projector, events: events.length, last, close: () => db.close() };
}
