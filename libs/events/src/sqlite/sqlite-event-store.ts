import type Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventType, NewEvent, StoredEvent } from '../contracts';
import { SCHEMA_VERSIONS, StoredTextEvent } from '../contracts';
import { EventStoreError, InvalidEvent, WrongExpectedVersion } from '../errors';
import { chainHash, envelopeText, GENESIS_HASH } from '../hash';
import type { Cursor } from '../positions';
import type { AppendRequest, EventStore, ExpectedVersion, ReadAllOptions } from '../store';
import { defaultUpcasters, UpcasterRegistry } from '../upcast';
import { verifyChain, type VerifyOptions, type VerifyResult } from './verify';
import { BackgroundCheckpointer } from './checkpointer';
import { openDatabase } from './open-database';

export interface SqliteEventStoreOptions {
  upcasters?: UpcasterRegistry;
  /** how often a subscription looks for events appended by another process (ms, default 50) */
  pollMs?: number;
  /** 'NORMAL' (default) or 'FULL'; see docs/events.md ("Durability") */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * A read-only connection (ps, inspect, verify): never takes the write lock, so it works while
   * runs are being recorded (WAL: readers see the last committed transaction). The file must exist.
   */
  readonly?: boolean;
  /**
   * 'background': WAL checkpoints on a worker thread instead of inside whichever commit passes
   * 1000 pages (checkpointer.ts). For a server, whose every request waits on its event loop.
   */
  checkpoint?: 'inline' | 'background';
}

/** The raw row of a commit: one append to one stream, events as lines, hashes as 32-byte blocks. */
export type CommitRow = [firstPosition: number, lastPosition: number, streamId: string, firstVersion: number, events: string, hashes: Buffer];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS commits (
  first_position INTEGER PRIMARY KEY,
  last_position  INTEGER NOT NULL,
  stream_id      TEXT    NOT NULL,
  first_version  INTEGER NOT NULL,
  events         TEXT    NOT NULL,
  hashes         BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS commits_stream ON commits (stream_id, first_version);
CREATE TABLE IF NOT EXISTS streams (
  stream_id TEXT PRIMARY KEY,
  version   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  position INTEGER NOT NULL,
  hash     TEXT    NOT NULL
);
INSERT OR IGNORE INTO head (id, position, hash) VALUES (1, 0, '${GENESIS_HASH}');
`;

/**
 * The embedded event store: one SQLite file (WAL). Each append to a stream is one row of `commits`
 * holding its events as lines `type \t schemaVersion \t at \t payloadJSON` and their hashes; the
 * positions of its events are first_position…last_position. See docs/events.md.
 */
export class SqliteEventStore implements EventStore {
  readonly db: Database.Database;
  readonly upcasters: UpcasterRegistry;
  private readonly pollMs: number;
  private readonly appended = new EventEmitter();
  private closed = false;
  private readonly st: {
    head: Database.Statement;
    setHead: Database.Statement;
    streamVersion: Database.Statement;
    setStream: Database.Statement;
    insert: Database.Statement;
    pageFrom: Database.Statement;
    nextCommit: Database.Statement;
    rowsFrom: Database.Statement;
    prevHashes: Database.Statement;
    streamCommits: Database.Statement;
  };
  private readonly appendTx: (reqs: AppendRequest[]) => StoredEvent[][];
  private checkpointer: BackgroundCheckpointer | undefined;

  static open(path: string, opts: SqliteEventStoreOptions = {}): SqliteEventStore {
    // a store this user may not write fails on its first append (SQLITE_READONLY) otherwise: say so at open
    if (!opts.readonly && accessProblem(path, true)) throw cannotOpen(path, Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' }), true);
    let db: Database.Database;
    try {
      db = opts.readonly ? openDatabase(path, { readonly: true, fileMustExist: true }) : openDatabase(path);
    } catch (e) {
      throw cannotOpen(path, e, !opts.readonly);
    }
    try {
      const store = new SqliteEventStore(db, opts);
      if (opts.checkpoint === 'background' && !opts.readonly) store.checkpointer = new BackgroundCheckpointer(db, path);
      return store;
    } catch (e) {
      db.close();
      throw cannotOpen(path, e, !opts.readonly);
    }
  }

  constructor(db: Database.Database, opts: SqliteEventStoreOptions = {}) {
    this.db = db;
    this.upcasters = opts.upcasters ?? defaultUpcasters();
    this.pollMs = opts.pollMs ?? 50;
    // 16 KiB pages (only takes effect on a new file): batched commits are large rows.
    db.pragma('busy_timeout = 10000');
    db.pragma('cache_size = -65536');
    if (!db.readonly) {
      db.pragma('page_size = 16384');
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${opts.synchronous ?? 'NORMAL'}`);
      // the schema is created once; a store that has it is opened without writing (no write lock)
      const has = db.prepare("SELECT count(*) FROM sqlite_master WHERE name IN ('commits', 'streams', 'head')").pluck().get() === 3;
      if (!has) db.exec(SCHEMA);
    }
    this.appended.setMaxListeners(0);
    this.st = {
      head: db.prepare('SELECT position, hash FROM head WHERE id = 1').raw(),
      setHead: db.prepare('UPDATE head SET position = ?, hash = ? WHERE id = 1'),
      streamVersion: db.prepare('SELECT version FROM streams WHERE stream_id = ?').pluck(),
      setStream: db.prepare('INSERT INTO streams (stream_id, version) VALUES (?, ?) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version'),
      insert: db.prepare('INSERT INTO commits (first_position, last_position, stream_id, first_version, events, hashes) VALUES (?, ?, ?, ?, ?, ?)'),
      // The commits holding positions from…to: the one containing `from`, then by rowid range.
      pageFrom: db
        .prepare(
          `SELECT first_position, last_position, stream_id, first_version, events, hashes FROM commits
           WHERE first_position >= (SELECT coalesce(max(first_position), 0) FROM commits WHERE first_position <= @from) AND first_position <= @to
           ORDER BY first_position`,
        )
        .raw(),
      nextCommit: db.prepare('SELECT min(first_position) FROM commits WHERE first_position > ?').pluck(),
      rowsFrom: db
        .prepare('SELECT first_position, last_position, stream_id, first_version, events, hashes FROM commits WHERE first_position >= ? ORDER BY first_position LIMIT ?')
        .raw(),
      prevHashes: db.prepare('SELECT hashes FROM commits WHERE first_position < ? ORDER BY first_position DESC LIMIT 1').pluck(),
      streamCommits: db
        .prepare('SELECT first_position, last_position, stream_id, first_version, events, hashes FROM commits WHERE stream_id = ? ORDER BY first_version')
        .raw(),
    };
    this.appendTx = db.transaction((reqs: AppendRequest[]) => this.appendInTx(reqs)).immediate as unknown as (reqs: AppendRequest[]) => StoredEvent[][];
  }

  async append(streamId: string, expectedVersion: ExpectedVersion, events: NewEvent[]): Promise<StoredEvent[]> {
    return this.appendSync([{ streamId, expectedVersion, events }])[0];
  }

  async appendBatch(requests: AppendRequest[]): Promise<StoredEvent[][]> {
    return this.appendSync(requests);
  }

  /** The synchronous core of append/appendBatch: one IMMEDIATE transaction, all or nothing. */
  appendSync(requests: AppendRequest[]): StoredEvent[][] {
    if (this.closed) throw new EventStoreError('CLOSED', 'event store is closed');
    const out = this.appendTx(requests);
    this.appended.emit('appended');
    return out;
  }

  private appendInTx(reqs: AppendRequest[]): StoredEvent[][] {
    const headRow = this.st.head.get() as [number, string];
    let position = headRow[0];
    let prev = headRow[1];
    const result: StoredEvent[][] = [];
    const seen = new Map<string, number>();
    for (const req of reqs) {
      const { streamId, expectedVersion, events } = req;
      if (typeof streamId !== 'string' || streamId === '') throw new InvalidEvent('streamId must be a non-empty string');
      const actual = seen.get(streamId) ?? ((this.st.streamVersion.get(streamId) as number | undefined) ?? 0);
      if (
        (expectedVersion === 'no-stream' && actual !== 0) ||
        (typeof expectedVersion === 'number' && expectedVersion !== actual)
      ) {
        throw new WrongExpectedVersion(streamId, expectedVersion, actual);
      }
      if (expectedVersion !== 'any' && expectedVersion !== 'no-stream' && typeof expectedVersion !== 'number') {
        throw new InvalidEvent(`bad expectedVersion ${String(expectedVersion)}`);
      }
      const stored: StoredEvent[] = [];
      result.push(stored);
      if (events.length === 0) continue;
      const sidJson = JSON.stringify(streamId);
      const lines: string[] = new Array(events.length);
      const hashes = Buffer.allocUnsafe(32 * events.length);
      const first = position + 1;
      let version = actual;
      for (let i = 0; i < events.length; i++) {
        const e = events[i];
        const type = e.type;
        const sv = e.schemaVersion ?? SCHEMA_VERSIONS[type];
        if (sv === undefined || typeof type !== 'string' || type.indexOf('\t') >= 0 || type.indexOf('\n') >= 0) throw new InvalidEvent(`unknown event type ${String(type)}`);
        const at = e.at;
        if (typeof at !== 'string' || at.indexOf('\t') >= 0 || at.indexOf('\n') >= 0) throw new InvalidEvent(`${type}: bad time ${String(at)}`);
        const text = e.payloadText;
        const payloadText = text === undefined ? JSON.stringify(e.payload) : text;
        if (typeof payloadText !== 'string' || payloadText.charCodeAt(0) !== 123 || (text !== undefined && text.indexOf('\n') >= 0)) {
          throw new InvalidEvent(`${type}: payload is not a JSON object${text !== undefined ? ' on one line' : ''}`);
        }
        position++;
        version++;
        const hex = chainHash(prev, envelopeText(position, sidJson, version, type, sv, at, payloadText));
        hashes.write(hex, 32 * i, 'hex');
        stored.push(
          text === undefined
            ? { position, streamId, streamVersion: version, type, schemaVersion: sv, at, payload: e.payload, prevHash: prev, hash: hex }
            : new StoredTextEvent(position, streamId, version, type, sv, at, e, prev, hex),
        );
        prev = hex;
        lines[i] = type + '\t' + sv + '\t' + at + '\t' + payloadText;
      }
      this.st.insert.run(first, position, streamId, actual + 1, lines.join('\n'), hashes);
      this.st.setStream.run(streamId, version);
      seen.set(streamId, version);
    }
    this.st.setHead.run(position, prev);
    return result;
  }

  async *readStream(streamId: string, fromVersion = 1): AsyncIterable<StoredEvent> {
    // rows are fetched first: a statement cannot be iterated by two readers at once (concurrent readStreams)
    for (const row of this.st.streamCommits.all(streamId) as CommitRow[]) {
      const n = row[1] - row[0] + 1;
      if (row[3] + n - 1 < fromVersion) continue;
      const prevBuf = row[0] > 1 ? (this.st.prevHashes.get(row[0]) as Buffer | undefined) : undefined;
      let prev = prevBuf ? prevBuf.subarray(prevBuf.length - 32).toString('hex') : GENESIS_HASH;
      const evs = this.decodeCommit(row, prev, 0, undefined);
      for (const e of evs) if (e.streamVersion >= fromVersion) yield e;
      prev = evs.length ? evs[evs.length - 1].hash : prev;
    }
  }

  async *readAll(fromPosition = 1, opts: ReadAllOptions = {}): AsyncIterable<StoredEvent> {
    yield* this.readAllSync(fromPosition, opts);
  }

  /** Synchronous readAll (used by projections, verify-free readers and benchmarks). */
  *readAllSync(fromPosition = 1, opts: ReadAllOptions = {}): Generator<StoredEvent> {
    const batch = Math.max(1, opts.batch ?? 1000);
    const types = opts.types ? new Set<string>(opts.types) : undefined;
    let from = Math.max(1, fromPosition);
    let prev: string | undefined;
    for (;;) {
      const rows = this.st.pageFrom.all({ from, to: from + batch - 1 }) as CommitRow[];
      if (rows.length === 0 || rows[rows.length - 1][1] < from) {
        // Nothing at from…from+batch-1: the end, or a hole (only in a damaged log) to skip.
        const next = this.st.nextCommit.get(from + batch - 1) as number | null;
        if (next === null) return;
        from = next;
        continue;
      }
      for (const row of rows) {
        if (row[1] < from) continue;
        if (prev === undefined) {
          const prevBuf = row[0] > 1 ? (this.st.prevHashes.get(row[0]) as Buffer | undefined) : undefined;
          prev = prevBuf ? prevBuf.subarray(prevBuf.length - 32).toString('hex') : GENESIS_HASH;
        }
        const evs = this.decodeCommit(row, prev, from, types);
        prev = row[5].subarray(row[5].length - 32).toString('hex');
        for (const e of evs) yield e;
        from = row[1] + 1;
      }
    }
  }

  /** Raw commit rows from a position, for fast scanners (verify, benchmarks). */
  *commitsFrom(fromPosition = 1, pageRows = 32): Generator<CommitRow> {
    let from = Math.max(1, fromPosition);
    for (;;) {
      const rows = this.st.rowsFrom.all(from, pageRows) as CommitRow[];
      if (rows.length === 0) return;
      for (const row of rows) yield row;
      from = rows[rows.length - 1][0] + 1;
    }
  }

  /** Decodes one commit row into events (positions >= minPosition, types filtered), upcasting old schemas. */
  decodeCommit(row: CommitRow, prevHash: string, minPosition: number, types: Set<string> | undefined): StoredEvent[] {
    const [first, , streamId, firstVersion, text, hashes] = row;
    const out: StoredEvent[] = [];
    let prev = prevHash;
    let start = 0;
    for (let i = 0; start <= text.length; i++) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const position = first + i;
      const hash = hashes.toString('hex', 32 * i, 32 * i + 32);
      if (position >= minPosition) {
        const t1 = text.indexOf('\t', start);
        const type = text.slice(start, t1);
        if (!types || types.has(type)) {
          const t2 = text.indexOf('\t', t1 + 1);
          const t3 = text.indexOf('\t', t2 + 1);
          const sv = +text.slice(t1 + 1, t2);
          const at = text.slice(t2 + 1, t3);
          let payload: unknown = JSON.parse(text.slice(t3 + 1, end));
          let schemaVersion = sv;
          if (sv !== this.upcasters.currentVersion(type)) ({ schemaVersion, payload } = this.upcasters.upcast(type, sv, payload));
          out.push({ position, streamId, streamVersion: firstVersion + i, type: type as EventType, schemaVersion, at, payload: payload as never, prevHash: prev, hash });
        }
      }
      prev = hash;
      start = end + 1;
    }
    return out;
  }

  /** One partition: every position is in one total order. */
  readonly partitions = 1;

  partitionOf(_streamId: string): number {
    return 0;
  }

  subscribe(from: number | Cursor, onEvent: (e: StoredEvent) => void | Promise<void>): { close(): Promise<void> } {
    let stopped = false;
    let next = Math.max(1, typeof from === 'number' ? from : (from[0] ?? 0) + 1);
    let wake: (() => void) | undefined;
    const onAppend = () => wake?.();
    this.appended.on('appended', onAppend);
    const loop = async () => {
      while (!stopped && !this.closed) {
        let delivered = false;
        for (const e of this.readAllSync(next, { batch: 500 })) {
          if (stopped) return;
          await onEvent(e);
          next = e.position + 1;
          delivered = true;
        }
        if (!delivered && !stopped) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.pollMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      }
    };
    const done = loop();
    done.catch(() => undefined);
    return {
      close: async () => {
        stopped = true;
        this.appended.off('appended', onAppend);
        wake?.();
        await done;
      },
    };
  }

  async headPosition(): Promise<number> {
    return (this.st.head.get() as [number, string])[0];
  }

  /** The head (position, hash) as recorded by the last append. */
  head(): { position: number; hash: string } {
    const [position, hash] = this.st.head.get() as [number, string];
    return { position, hash };
  }

  /** Checks the whole hash chain; see verify.ts. */
  verify(opts: VerifyOptions = {}): VerifyResult {
    // one read transaction: the walk and the head row come from one snapshot, so a run recorded
    // meanwhile neither extends the walk nor shows a head beyond it (a false "truncated")
    return this.db.transaction(() => verifyChain(this, opts))();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.appended.emit('appended');
    await this.checkpointer?.stop();
    this.db.close();
  }
}

/** Why this user cannot open `path` (and the -wal/-shm beside it) for reading or writing; undefined when it can. */
function accessProblem(path: string, write: boolean): string | undefined {
  const dir = dirname(path);
  const uid = process.getuid?.() ?? -1;
  const denied = (p: string, m: number) => {
    try {
      accessSync(p, m);
      return false;
    } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      return c === 'EACCES' || c === 'EPERM' || c === 'EROFS';
    }
  };
  if (!existsSync(dir)) return `its directory ${dir} does not exist`;
  if (denied(dir, (write ? constants.W_OK : 0) | constants.X_OK)) return `uid ${uid} may not ${write ? 'write in' : 'enter'} ${dir}`;
  if (existsSync(path) && denied(path, write ? constants.W_OK | constants.R_OK : constants.R_OK)) return `uid ${uid} may not ${write ? 'write' : 'read'} it`;
  return undefined;
}

/** An error with code SQLITE_CANTOPEN naming the file and why this user cannot open it; `cause` itself when that is not the reason. */
function cannotOpen(path: string, cause: unknown, write: boolean): Error {
  const code = (cause as { code?: string }).code;
  if (code !== 'SQLITE_CANTOPEN' && !code?.startsWith('SQLITE_READONLY')) return cause as Error;
  let why = accessProblem(path, write);
  // a reader of a WAL log maps its -shm file, which SQLite creates beside it when missing
  if (why === undefined && !write && code?.startsWith('SQLITE_READONLY')) why = accessProblem(path, true) && `uid ${process.getuid?.() ?? -1} may not write in ${dirname(path)}, where SQLite keeps the log's shared-memory file`;
  if (!why) return cause as Error;
  const err = new Error(`cannot open ${path}: ${why}`) as Error & { code: string };
  err.code = 'SQLITE_CANTOPEN';
  return err;
}
