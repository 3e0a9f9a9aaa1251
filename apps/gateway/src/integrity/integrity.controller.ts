import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { anchorKey, anchorPaths, readAnchors, SqliteEventStore, type Anchor, type EventStore, type VerifyResult } from '@capulator/events';
import { runVerifyJob, type VerifyJob } from './integrity.worker';
import { RequireScope } from '../auth/auth.decorators';
import { EVENT_STORE, GATEWAY_OPTIONS } from '../store/tokens';
import type { GatewayOptions } from '../gateway.options';

export interface IntegrityStatus {
  /** false when the log is not the embedded SQLite store (verify walks events.db) */
  available: boolean;
  ok: boolean;
  checked: number;
  head: { position: number; hash: string };
  problem?: VerifyResult['problem'];
  /** the newest validly signed anchor, when there is one */
  lastAnchor?: Anchor;
  /** anchor-file lines whose signature does not hold */
  badAnchors: number;
  verifiedAt: string;
}

/**
 * `audit verify` over HTTP: walks the hash chain (and checks it against the signed anchors). The
 * result is kept for MAX_AGE_MS while the head does not move, so pages polling it cost at most
 * one walk per 5 s; the walk runs in a worker thread (integrity.worker.ts).
 */
@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/integrity')
export class IntegrityController {
  private cached: { key: string; at: number; status: IntegrityStatus } | undefined;
  /** a cached result is reused for this long while the head stays (an edit inside the log leaves the head alone) */
  static readonly MAX_AGE_MS = 5_000;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(GATEWAY_OPTIONS) private readonly options: GatewayOptions,
  ) {}

  @Get()
  @RequireScope('audit:read')
  @ApiOperation({ summary: "The chain's verify status and the last anchor (what `capulator audit verify` reports)" })
  @ApiOkResponse({ schema: { type: 'object' } })
  async status(): Promise<IntegrityStatus> {
    const at = new Date().toISOString();
    if (!(this.store instanceof SqliteEventStore)) {
      return { available: false, ok: true, checked: 0, head: { position: 0, hash: '' }, badAnchors: 0, verifiedAt: at };
    }
    const head = this.store.head();
    const paths = anchorPaths(this.options.home);
    let loaded: { anchors: Anchor[]; bad: Array<{ line: number; text: string }> } = { anchors: [], bad: [] };
    try {
      const key = anchorKey(paths.key, false);
      if (key) loaded = readAnchors(paths.file, key);
    } catch (err) {
      loaded = { anchors: [], bad: [{ line: 0, text: (err as Error).message }] };
    }
    const cacheKey = `${head.position}:${head.hash}:${loaded.anchors.length}:${loaded.bad.length}`;
    if (this.cached?.key === cacheKey && Date.now() - this.cached.at < IntegrityController.MAX_AGE_MS) return this.cached.status;
    const r = await this.verify(loaded.anchors);
    const lastAnchor = loaded.anchors[loaded.anchors.length - 1];
    const status: IntegrityStatus = {
      available: true,
      ok: r.ok && loaded.bad.length === 0,
      checked: r.checked,
      head: r.head,
      ...(r.problem ? { problem: r.problem } : loaded.bad.length > 0 ? { problem: { position: 0, kind: 'anchor-rewritten' as const, message: `${loaded.bad.length} anchor line(s) do not carry a valid signature (first: line ${loaded.bad[0].line})` } } : {}),
      ...(lastAnchor ? { lastAnchor } : {}),
      badAnchors: loaded.bad.length,
      verifiedAt: at,
    };
    this.cached = { key: cacheKey, at: Date.now(), status };
    return status;
  }

  private running: Promise<VerifyResult> | undefined;

  /** One walk at a time (concurrent pages share it), in a worker thread (inline for an in-memory store). */
  private verify(anchors: Anchor[]): Promise<VerifyResult> {
    const store = this.store as SqliteEventStore;
    if (store.db.memory) return Promise.resolve(runVerifyJob(store, { dbPath: '', anchors }));
    return (this.running ??= new Promise<VerifyResult>((resolve, reject) => {
      const job: VerifyJob = { dbPath: store.db.name, anchors };
      const worker = new Worker(join(__dirname, 'integrity.worker.js'), { workerData: { verifyJob: job } });
      worker.once('message', (m: VerifyResult) => resolve(m));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the verify worker exited (${code})`)));
    }).finally(() => (this.running = undefined)));
  }
}
