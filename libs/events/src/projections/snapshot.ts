import Database from 'better-sqlite3';
import type { StoredEvent } from '../contracts';
import type { EventStore, ReadAllOptions } from '../store';
import { ReadModelProjector } from './read-models.projector';

/**
 * Read models (runs, decisions, policies, images) folded from any event store into a private
 * in-memory SQLite database: how `audit log|replay|rebuild` and `ps` work against a log that is
 * not SQLite (Kafka). The log is read once, in position order (see positions.ts), from a
 * snapshot taken when this is called.
 */
export async function foldReadModels(store: EventStore): Promise<{ db: Database.Database; projector: ReadModelProjector; events: number; close(): void }> {
  const events: StoredEvent[] = [];
  for await (const e of store.readAll(1)) events.push(e);
  const db = new Database(':memory:');
  const source = {
    db,
    *readAllSync(fromPosition = 1, opts: ReadAllOptions = {}): Iterable<StoredEvent> {
      const types = opts.types ? new Set(opts.types) : null;
      for (const e of events) if (e.position >= fromPosition && (!types || types.has(e.type))) yield e;
    },
  };
  const projector = new ReadModelProjector(source);
  projector.catchUp();
  return { db, projector, events: events.length, close: () => db.close() };
}
