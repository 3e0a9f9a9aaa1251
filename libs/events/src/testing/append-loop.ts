/**
 * A child process for the crash test: appends batches of exactly 37 events (two streams, one
 * transaction) to the store at argv[2] until it is killed.
 */
import { SqliteEventStore } from '../sqlite/sqlite-event-store';
import { decision } from './fixtures';

export const EVENTS_PER_TRANSACTION = 37;

if (require.main === module) {
  const store = SqliteEventStore.open(process.argv[2]);
  const tag = process.argv[3] ?? 'x';
  let round = 0;
  let seq = 0;
  for (;;) {
    round++;
    const a = `run-${tag}-a`;
    const b = `run-${tag}-b`;
    const ea = Array.from({ length: 20 }, () => decision(a, ++seq));
    const eb = Array.from({ length: 17 }, (_, i) => decision(b, seq * 100 + i));
    store.appendSync([
      { streamId: a, expectedVersion: 'any', events: ea },
      { streamId: b, expectedVersion: 'any', events: eb },
    ]);
    if (round === 1) process.stdout.write('appending\n');
  }
}
