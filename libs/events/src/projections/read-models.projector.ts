import type Database from 'better-sqlite3';
import type { StoredEvent } from '../contracts';
import type { ReadAllOptions } from '../store';
import { evolveImage, evolvePolicyVersion, type ImageRow } from './catalog.projection';
import { requestKey, toDecision } from './decisions.projection';
import { evolveRunSummary, isDecisionType, runIdOf, type RunSummary } from './run-summary.projection';

const TABLES = `
CREATE TABLE IF NOT EXISTS projection_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rm_runs (
  run_id TEXT PRIMARY KEY, status TEXT NOT NULL, image TEXT, policy TEXT, exit_code INTEGER, signal TEXT,
  requested_at TEXT, started_at TEXT, ended_at TEXT, duration_ms INTEGER,
  allow INTEGER NOT NULL, deny INTEGER NOT NULL, emulate INTEGER NOT NULL, lost_events INTEGER NOT NULL,
  summary TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rm_runs_status ON rm_runs (status);
CREATE TABLE IF NOT EXISTS rm_requests (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, type TEXT NOT NULL, syscall TEXT NOT NULL, args TEXT NOT NULL,
  privileges TEXT NOT NULL, privilege TEXT, capability TEXT, exe TEXT NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
  image TEXT, arch TEXT
);
CREATE INDEX IF NOT EXISTS rm_requests_exe ON rm_requests (exe);
CREATE INDEX IF NOT EXISTS rm_requests_privilege ON rm_requests (privilege);
CREATE INDEX IF NOT EXISTS rm_requests_capability ON rm_requests (capability);
CREATE TABLE IF NOT EXISTS rm_decisions (
  position INTEGER PRIMARY KEY, run_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, req_id INTEGER NOT NULL,
  decision TEXT NOT NULL, rule_id TEXT, policy_name TEXT NOT NULL, policy_version INTEGER NOT NULL,
  errno INTEGER, ret INTEGER, answered_by TEXT, latency_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_decisions_run ON rm_decisions (run_id, seq);
CREATE INDEX IF NOT EXISTS rm_decisions_req ON rm_decisions (req_id);
CREATE INDEX IF NOT EXISTS rm_decisions_at ON rm_decisions (at);
CREATE TABLE IF NOT EXISTS rm_policies (
  name TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL, description TEXT, published_at TEXT NOT NULL,
  position INTEGER NOT NULL, PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rm_images (
  digest TEXT PRIMARY KEY, tags TEXT NOT NULL, platform TEXT NOT NULL, size_bytes INTEGER NOT NULL, source TEXT NOT NULL,
  imported_at TEXT NOT NULL, position INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Bump when the read-model tables or evolve functions change: the projector then rebuilds them. */
export const READ_MODEL_VERSION = 4;

export const READ_MODEL_TABLES = ['rm_runs', 'rm_requests', 'rm_decisions', 'rm_policies', 'rm_images'] as const;
export const PROJECTIONS = ['runs', 'decisions', 'policies', 'images'] as const;

/**
 * Folds the log into the read models (runs, decisions, policies, images) in the store's own file.
 * Each page of events is applied in one transaction together with the checkpoints, so a crash
 * leaves rows and checkpoint in step; re-applying an event at or before the checkpoint is a no-op.
 * Never publishes anything: replay feeds projections only.
 */
/** Where read models live and the log they fold: the SQLite store, or a snapshot of another log (foldReadModels). */
export interface ProjectionSource {
  readonly db: Database.Database;
  readAllSync(fromPosition?: number, opts?: ReadAllOptions): Iterable<StoredEvent>;
}

export class ReadModelProjector {
  private readonly db: Database.Database;
  private reqIds = new Map<string, number>();
  private readonly st;
  private readonly applyPage: (events: StoredEvent[]) => void;

  constructor(private readonly store: ProjectionSource, private readonly pageSize = 5000) {
    this.db = store.db;
    this.db.exec('CREATE TABLE IF NOT EXISTS projection_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
    const version = this.db.prepare("SELECT value FROM projection_meta WHERE key = 'version'").pluck().get();
    if (version !== String(READ_MODEL_VERSION)) {
      // Read models are disposable: a new shape is folded again from the log on the next catch-up.
      this.db.exec(`DROP TABLE IF EXISTS projection_checkpoints; ${READ_MODEL_TABLES.map((t) => `DROP TABLE IF EXISTS ${t};`).join(' ')}`);
      this.db.prepare("INSERT OR REPLACE INTO projection_meta (key, value) VALUES ('version', ?)").run(String(READ_MODEL_VERSION));
    }
    this.db.exec(TABLES);
    const db = this.db;
    this.st = {
      checkpoint: db.prepare("SELECT min(position) FROM projection_checkpoints").pluck(),
      checkpointCount: db.prepare('SELECT count(*) FROM projection_checkpoints').pluck(),
      setCheckpoint: db.prepare('INSERT INTO projection_checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position'),
      getRun: db.prepare('SELECT summary FROM rm_runs WHERE run_id = ?').pluck(),
      putRun: db.prepare(
        `INSERT INTO rm_runs (run_id, status, image, policy, exit_code, signal, requested_at, started_at, ended_at, duration_ms, allow, deny, emulate, lost_events, summary)
         VALUES (@runId, @status, @image, @policy, @exitCode, @signal, @requestedAt, @startedAt, @endedAt, @durationMs, @allow, @deny, @emulate, @lostEvents, @summary)
         ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, image = excluded.image, policy = excluded.policy, exit_code = excluded.exit_code,
           signal = excluded.signal, requested_at = excluded.requested_at, started_at = excluded.started_at, ended_at = excluded.ended_at,
           duration_ms = excluded.duration_ms, allow = excluded.allow, deny = excluded.deny, emulate = excluded.emulate,
           lost_events = excluded.lost_events, summary = excluded.summary`,
      ),
      getReq: db.prepare('SELECT id FROM rm_requests WHERE key = ?').pluck(),
      putReq: db.prepare(
        'INSERT INTO rm_requests (key, type, syscall, args, privileges, privilege, capability, exe, uid, gid, image, arch) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)',
      ),
      putDecision: db.prepare('INSERT OR IGNORE INTO rm_decisions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)'),
      putPolicy: db.prepare('INSERT OR IGNORE INTO rm_policies VALUES (?,?,?,?,?,?)'),
      getImage: db.prepare('SELECT * FROM rm_images WHERE digest = ?'),
      putImage: db.prepare('INSERT OR REPLACE INTO rm_images VALUES (?,?,?,?,?,?,?)'),
    };
    // IMMEDIATE: the write lock is taken first (waiting under busy_timeout); a deferred transaction
    // that read first could not upgrade while a run is being recorded (SQLITE_BUSY at once)
    const tx = db.transaction((events: StoredEvent[]) => this.applyInTx(events));
    this.applyPage = (events) => {
      try {
        tx.immediate(events);
      } catch (err) {
        this.reqIds.clear(); // ids cached in the rolled-back transaction do not exist
        throw err;
      }
    };
  }

  /** The position every read model has reached (0 before the first catch-up). */
  checkpoint(): number {
    if ((this.st.checkpointCount.get() as number) < PROJECTIONS.length) return 0;
    return (this.st.checkpoint.get() as number | null) ?? 0;
  }

  /** Applies every event after the checkpoint; returns how many events were read. */
  catchUp(): number {
    let n = 0;
    let page: StoredEvent[] = [];
    for (const e of this.store.readAllSync(this.checkpoint() + 1, { batch: this.pageSize })) {
      page.push(e);
      if (page.length >= this.pageSize) {
        this.applyPage(page);
        n += page.length;
        page = [];
      }
    }
    if (page.length) {
      this.applyPage(page);
      n += page.length;
    }
    return n;
  }

  /** Applies events (idempotent by position; events at or before the checkpoint are skipped). */
  apply(events: StoredEvent[]): void {
    this.applyPage(events);
  }

  /** Drops every read model and folds the whole log again from position 0. */
  rebuild(): number {
    this.db.exec(`DROP TABLE IF EXISTS projection_checkpoints; ${READ_MODEL_TABLES.map((t) => `DROP TABLE IF EXISTS ${t};`).join(' ')}`);
    this.db.exec(TABLES);
    this.reqIds = new Map();
    return this.catchUp();
  }

  private applyInTx(events: StoredEvent[]): void {
    const from = this.checkpoint();
    const runs = new Map<string, RunSummary | undefined>();
    const run = (id: string) => {
      if (!runs.has(id)) {
        const json = this.st.getRun.get(id) as string | undefined;
        runs.set(id, json ? (JSON.parse(json) as RunSummary) : undefined);
      }
      return runs.get(id);
    };
    let last = from;
    for (const e of events) {
      if (e.position <= from) continue;
      last = e.position;
      const runId = runIdOf(e);
      if (runId !== null) {
        const before = run(runId);
        runs.set(runId, evolveRunSummary(before, e));
        if (isDecisionType(e.type)) this.putDecision(e, before?.image ?? before?.imageDigest ?? null);
        continue;
      }
      const pol = evolvePolicyVersion(e);
      if (pol) {
        this.st.putPolicy.run(pol.name, pol.version, pol.hash, pol.description, pol.publishedAt, pol.position);
        continue;
      }
      if (e.type === 'ImageImported') {
        const digest = (e.payload as { digest: string }).digest;
        const row = this.st.getImage.get(digest) as any;
        const prev: ImageRow | undefined = row
          ? { digest: row.digest, tags: JSON.parse(row.tags), platform: row.platform, sizeBytes: row.size_bytes, source: row.source, importedAt: row.imported_at, position: row.position }
          : undefined;
        const next = evolveImage(prev, e);
        if (next && next !== prev) this.st.putImage.run(next.digest, JSON.stringify(next.tags), next.platform, next.sizeBytes, next.source, next.importedAt, next.position);
      }
    }
    for (const s of runs.values()) {
      if (!s) continue;
      this.st.putRun.run({
        runId: s.runId, status: s.status, image: s.imageDigest ?? s.image, policy: s.policy ? `${s.policy.name}@${s.policy.version}` : null,
        exitCode: s.exitCode, signal: s.signal, requestedAt: s.requestedAt, startedAt: s.startedAt, endedAt: s.endedAt,
        durationMs: s.durationMs, allow: s.counts.allow, deny: s.counts.deny, emulate: s.counts.emulate, lostEvents: s.lostEvents,
        summary: JSON.stringify(s),
      });
    }
    if (last > from) for (const name of PROJECTIONS) this.st.setCheckpoint.run(name, last);
  }

  private putDecision(e: StoredEvent, image: string | null): void {
    const { request: r, record: d } = toDecision(e, image);
    const key = requestKey(r);
    let id = this.reqIds.get(key);
    if (id === undefined) {
      id = this.st.getReq.get(key) as number | undefined;
      if (id === undefined) {
        id = Number(
          this.st.putReq.run(key, r.type, r.syscall, JSON.stringify(r.args), JSON.stringify(r.privileges), r.privileges[0] ?? null, r.capability, r.exe, r.uid, r.gid, r.image, r.arch)
            .lastInsertRowid,
        );
      }
      if (this.reqIds.size > 100_000) this.reqIds.clear();
      this.reqIds.set(key, id);
    }
    this.st.putDecision.run(d.position, d.runId, d.seq, d.at, id, d.decision, d.ruleId, d.policyName, d.policyVersion, d.errno, d.ret, d.answeredBy, d.latencyNs);
  }

  /** Every read-model row, in a stable order (for comparisons: rebuild == live). */
  dump(): Record<string, unknown[]> {
    const out: Record<string, unknown[]> = {};
    for (const t of READ_MODEL_TABLES) out[t] = this.db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all();
    out.projection_checkpoints = this.db.prepare('SELECT * FROM projection_checkpoints ORDER BY name').all();
    return out;
  }

  runSummary(runId: string): RunSummary | undefined {
    const json = this.st.getRun.get(runId) as string | undefined;
    return json ? (JSON.parse(json) as RunSummary) : undefined;
  }
}
