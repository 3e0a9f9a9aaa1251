import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Command } from 'commander';
import type { KafkaBus, KafkaEventStore, ReadModelProjector, SqliteEventStore } from '@capulator/events';
import { homePaths } from '@capulator/host';
import { CliError } from '../cli-error';

/** The environment variable that names the bus for `audit` and `ps` (like --bus). */
export const BUS_ENV = 'CAPULATOR_BUS';
/** Written by `serve --bus` into its home: later commands in that home read the same log. */
const BUS_FILE = 'bus';

/** Adds `--bus` to a command that reads the event log. */
export function addLogBusOption(cmd: Command): Command {
  return cmd.option('--bus <url>', `read the event log on Apache Kafka: kafka://HOST:PORT[,HOST:PORT…][/TOPIC] (default: $${BUS_ENV}, or the bus this home's \`serve --bus\` uses)`);
}

/** Remembers the bus of a home served with `serve --bus`. */
export function recordHomeBus(home: string, url: string): void {
  writeFileSync(join(home, BUS_FILE), url + '\n', { mode: 0o600 });
}

/** The bus to read: --bus, then $CAPULATOR_BUS, then the home's recorded bus; undefined: SQLite. */
export function resolveBus(flag: string | undefined, home = homePaths().home, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) return flag;
  if (env[BUS_ENV] && env[BUS_ENV]!.trim() !== '') return env[BUS_ENV]!.trim();
  const f = join(home, BUS_FILE);
  if (existsSync(f)) return readFileSync(f, 'utf8').trim() || undefined;
  return undefined;
}

/** Connects to the Kafka log (reads every partition); a clean exit-1 error when it cannot. */
export async function openKafkaLog(url: string): Promise<KafkaEventStore> {
  const { connectKafkaEventStore, parseKafkaBus } = await import('@capulator/events');
  let bus: KafkaBus;
  try {
    if (!/^kafkas?:\/\//.test(url)) throw new Error(`bad bus ${JSON.stringify(url)}: expected kafka://HOST:PORT[,HOST:PORT…][/TOPIC] (kafkas:// for TLS)`);
    bus = parseKafkaBus(url);
  } catch (err) {
    throw new CliError(`--bus: ${(err as Error).message}`);
  }
  try {
    // read-only: no producer, and a topic that does not exist is refused rather than created
    return await connectKafkaEventStore({ ...bus, readOnly: true, appendTimeoutMs: 60_000 });
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') throw new CliError(`no event log on ${url}: topic ${bus.topic ?? 'capulator.events'} does not exist`, 1);
    throw new CliError(`cannot read the event log on ${url}: ${(err as Error).message}`, 1);
  }
}

/** Opens the embedded SQLite log, refusing (not creating) one that does not exist. */
export async function openSqliteLog(): Promise<SqliteEventStore> {
  const { SqliteEventStore } = await import('@capulator/events');
  const path = homePaths().store;
  if (!existsSync(path)) {
    throw new CliError(`no event log at ${path} (nothing recorded in this home; for a log on Kafka pass --bus kafka://HOST:PORT or set ${BUS_ENV})`, 1);
  }
  try {
    return SqliteEventStore.open(path);
  } catch (err) {
    throw storeOpenError(path, err);
  }
}

/** The one-line error of an event store that cannot be opened (the store names the file and why when it can). */
export function storeOpenError(path: string, err: unknown): CliError {
  const e = err as { code?: string; message?: string };
  return new CliError(e.code === 'SQLITE_CANTOPEN' ? (e.message ?? 'cannot open the event store') : `cannot open the event store ${path}: ${e.message ?? String(err)}`, 1);
}

/**
 * The read models (runs, decisions, policies, images) of the log, up to date: SQLite's own, or
 * folded from the Kafka log into memory. What `audit log|replay|rebuild` and `ps` query.
 */
export async function openReadModels(
  busFlag?: string,
  opts: { follow?: boolean } = {},
): Promise<{ db: Database.Database; projector: ReadModelProjector; bus?: string; sqlite?: SqliteEventStore; kafka?: { store: KafkaEventStore; last: number[] }; close(): Promise<void> }> {
  const { ReadModelProjector, foldReadModels } = await import('@capulator/events');
  const bus = resolveBus(busFlag);
  if (bus) {
    const store = await openKafkaLog(bus);
    let keep = false;
    try {
      const rm = await foldReadModels(store, store.partitions);
      // a follower goes on reading the log from where the snapshot ends; otherwise the connection is not needed any more
      keep = opts.follow === true;
      return {
        db: rm.db,
        projector: rm.projector,
        bus,
        ...(keep ? { kafka: { store, last: rm.last } } : {}),
        close: async () => {
          rm.close();
          await store.close();
        },
      };
    } finally {
      if (!keep) await store.close();
    }
  }
  const store = await openSqliteLog();
  const projector = new ReadModelProjector(store);
  projector.catchUp();
  return { db: store.db, projector, sqlite: store, close: () => store.close() };
}
