import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { randomUUID } from 'node:crypto';
import { Observable } from 'rxjs';
import { evolveRunSummary, runStream, type EventStore, type RunStatus, type RunSummary, type StoredEvent } from '@capulator/events';
import { IllegalState, NotFound, NotYourRun, ValidationFailed } from '../errors/domain.error';
import { hasScope } from '../auth/scopes';
import { EventHub } from '../store/event-hub';
import { EVENT_STORE, GATEWAY_OPTIONS, IMAGE_CATALOG, RUN_EXECUTOR } from '../store/tokens';
import type { ImageCatalog } from '../images/image-catalog';
import type { GatewayOptions } from '../gateway.options';
import type { Principal } from '../auth/token-store';
import { authorizeRun, mountAllowList, type MountAllowList } from './run-authorization';
import { parseWorkload, workloadRecord, type WorkloadSpec } from '../../../runtime/src/run/workload';
import { PoliciesService } from '../policies/policies.service';
import { MetricsService } from '../metrics/metrics.service';
import type { RunExecutor } from './run-executor';
import { isTerminal, toRunView, type RunView } from './run-view';
import { RequestRunCommand } from './run.commands';
import { isLogUnavailable, Refusals } from './refusals';
import { isCommandLedger, OrphanRecovery } from './orphans';
import { QueueFull } from './in-process.executor';
import { DomainError } from '../errors/domain.error';

export interface SubmitRun {
  image: string;
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  policy?: string;
  policyYaml?: string;
  learn?: boolean;
  mounts?: Array<{ source: string; destination: string; readonly?: boolean }>;
  /** `capulator run`'s workload flags (network, ports, limits, user, …) in their own words */
  workload?: WorkloadSpec;
}

const TERMINAL_TYPES = new Set(['RunExited', 'RunFailed']);

/** Submits, stops and reads runs; the read model is folded from the hub. */
@Injectable()
export class RunsService implements OnModuleDestroy {
  private readonly log = new Logger('runs');
  private readonly runs = new Map<string, RunSummary>();
  private readonly mountsAllowed: MountAllowList;
  readonly refusals: Refusals;
  /** on the Kafka bus: runs whose command never reached the workers are recorded failed */
  readonly orphans: OrphanRecovery | undefined;
  /** runs by status, kept as the fold goes (the bus path's bounded queue reads `queued`) */
  private readonly statusCounts: Record<RunStatus, number> = { queued: 0, running: 0, exited: 0, failed: 0 };
  /** ids of the runs `queued` now (orphan recovery looks only at these) */
  private readonly queued = new Set<string>();

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(RUN_EXECUTOR) private readonly executor: RunExecutor,
    private readonly hub: EventHub,
    private readonly policies: PoliciesService,
    private readonly metrics: MetricsService,
    private readonly commands: CommandBus,
    @Inject(GATEWAY_OPTIONS) options: GatewayOptions,
    @Inject(IMAGE_CATALOG) private readonly images: ImageCatalog,
  ) {
    this.mountsAllowed = mountAllowList(options.allowMounts ?? [], options.home);
    this.refusals = new Refusals(store, (events) => hub.publish(events));
    hub.listen((e) => this.fold(e));
    if (isCommandLedger(executor)) {
      this.orphans = new OrphanRecovery(store, executor, (before) => this.queuedBefore(before), (events) => hub.publish(events));
      this.orphans.start();
    }
  }

  onModuleDestroy(): void {
    this.orphans?.stop();
  }

  /** Runs `queued` in the read model whose RunRequested is older than `before` (ms since the epoch). */
  private queuedBefore(before: number): string[] {
    const out: string[] = [];
    for (const id of this.queued) {
      const at = this.runs.get(id)?.requestedAt;
      if (at && Date.parse(at) < before) out.push(id);
    }
    return out;
  }

  private fold(e: StoredEvent): void {
    if (!e.streamId.startsWith('run-')) return;
    const id = e.streamId.slice(4);
    if (!this.runs.has(id) && e.type !== 'RunRequested') return;
    const before = this.runs.get(id);
    const after = evolveRunSummary(before, e);
    if (after && after !== before) {
      if (before) this.statusCounts[before.status]--;
      this.statusCounts[after.status]++;
      if (after.status === 'queued') this.queued.add(id);
      else this.queued.delete(id);
      this.runs.set(id, after);
      if (after.status !== 'queued') this.wakeStarted(id);
      if (isTerminal(after.status) && !(before && isTerminal(before.status))) this.executor.runEnded?.(id);
    }
  }

  /** callers waiting for a run to leave `queued` (stdin and sizes for runs on the bus) */
  private readonly startWaiters = new Map<string, Set<() => void>>();

  private wakeStarted(id: string): void {
    const ws = this.startWaiters.get(id);
    if (!ws) return;
    this.startWaiters.delete(id);
    for (const w of ws) w();
  }

  /** Resolves once the run is no longer queued (at once when it is not). */
  private untilStarted(id: string): Promise<void> {
    if (this.summary(id).status !== 'queued') return Promise.resolve();
    return new Promise<void>((resolve) => {
      let ws = this.startWaiters.get(id);
      if (!ws) this.startWaiters.set(id, (ws = new Set()));
      ws.add(resolve);
    });
  }

  /** `who`'s scopes bound what the run may do on the host (run-authorization.ts). */
  async submit(req: SubmitRun, who: Principal | undefined): Promise<{ id: string; status: RunStatus }> {
    let workload: ReturnType<typeof parseWorkload> | undefined;
    if (req.workload) {
      try {
        workload = parseWorkload(req.workload);
      } catch (e) {
        // the parser names the CLI flag (--memory 5x: …); the API field is workload.memory
        throw new ValidationFailed([{ field: 'workload', messages: [(e as Error).message] }]);
      }
    }
    const mounts = authorizeRun(who?.scopes ?? [], { ...req, ...(workload ? { network: workload.network } : {}) }, this.mountsAllowed);
    const wrec = workload ? workloadRecord(workload) : undefined;
    const requestedBy = who?.name;
    const { ref, yaml } = this.policies.forRun(req.policy, req.policyYaml);
    const runId = randomUUID();
    // docker run's --entrypoint (command) and ARG… (args): with an entrypoint, its arguments join it
    // (the whole argv, as workers read `command` before `args` existed); without, the args follow
    // the image's Entrypoint in place of its Cmd (run-argv.ts)
    const command = req.command?.length ? [...req.command, ...(req.args ?? [])] : [];
    const args = !req.command?.length && req.args?.length ? req.args : undefined;
    const env = Object.entries(req.env ?? {}).map(([k, v]) => `${k}=${v}`);
    // a worker elsewhere that lacks the image fetches it from the registry this gateway pulled it from
    const imageSource = this.executor.remote ? this.images.sourceOf(req.image) : undefined;
    const payload = { runId, image: req.image, command, ...(args ? { args } : {}), env, policy: ref, learn: req.learn ?? false, mounts, ...(wrec ? { workload: wrec } : {}), ...(imageSource ? { imageSource } : {}), ...(requestedBy ? { requestedBy } : {}) };
    // the bus path's bounded queue: runs requested and not started, cluster-wide, as this gateway folds them
    const limit = this.executor.maxQueued;
    if (limit !== undefined && this.statusCounts.queued >= limit) throw new QueueFull(limit);
    try {
      await this.commands.execute(new RequestRunCommand(payload, yaml));
    } catch (err) {
      // the log could not be reached (RunRequested may still land): 503, and the run is settled failed
      if (isLogUnavailable(err)) throw this.refusals.refuse(runId, err, true);
      // the bus did not take the command (the run is already recorded failed): 503 too
      if (limit !== undefined && !(err instanceof DomainError)) throw this.refusals.refuse(runId, err, false);
      throw err;
    }
    this.metrics.runSubmitted();
    this.log.log({ msg: 'run submitted', runId, image: req.image, policy: `${ref.name}@${ref.version}`, by: requestedBy });
    return { id: runId, status: 'queued' };
  }

  get(id: string): RunView {
    return toRunView(this.summary(id));
  }

  private summary(id: string): RunSummary {
    const r = this.runs.get(id);
    if (!r) throw new NotFound('run', id);
    return r;
  }

  /** Newest first (by request time, then id). */
  list(filter: { status?: RunStatus; limit?: number } = {}): RunView[] {
    const out: RunSummary[] = [];
    for (const r of this.runs.values()) if (!filter.status || r.status === filter.status) out.push(r);
    out.sort((a, b) => ((a.requestedAt ?? '') < (b.requestedAt ?? '') ? 1 : (a.requestedAt ?? '') > (b.requestedAt ?? '') ? -1 : a.runId < b.runId ? -1 : 1));
    return out.slice(0, filter.limit ?? 100).map(toRunView);
  }

  countsByStatus(): Record<RunStatus, number> {
    const c: Record<RunStatus, number> = { queued: 0, running: 0, exited: 0, failed: 0 };
    for (const r of this.runs.values()) c[r.status] += 1;
    return c;
  }

  /**
   * Throws unless `who` may stop, feed or resize run `id`: the token that submitted it, or one with
   * `runs:admin` (or `*`). No principal: a caller inside this process (it authenticated its own).
   */
  private mayControl(id: string, who: Principal | undefined, what: string): void {
    const r = this.summary(id);
    if (!who || hasScope(who.scopes, 'runs:admin')) return;
    if (r.requestedBy === undefined || r.requestedBy !== who.name) throw new NotYourRun(id, what);
  }

  async stop(id: string, who?: Principal): Promise<RunView> {
    this.mayControl(id, who, 'stop');
    const r = this.summary(id);
    if (isTerminal(r.status)) throw new IllegalState(`run ${id} has already ${r.status === 'exited' ? 'exited' : 'failed'}`);
    const stopped = await this.executor.stop(id);
    if (!stopped) throw new IllegalState(`run ${id} is not queued or running on this server`);
    return this.get(id);
  }

  /** Appends to an interactive run's stdin (`eof`: then closes it); resolves once the run's stdin has taken it. */
  async writeStdin(id: string, data: Buffer, eof: boolean, who?: Principal): Promise<void> {
    this.mayControl(id, who, 'send input to');
    await this.takingInput(id, 'interactive');
    if (!(await this.executor.writeStdin(id, data, eof))) throw new IllegalState(`run ${id} is not queued or running on this server`);
  }

  /** Sets the window size of a -t run (before its start on this server: the size it starts with). */
  async resizeTty(id: string, size: { rows: number; cols: number }, who?: Principal): Promise<void> {
    this.mayControl(id, who, 'resize');
    await this.takingInput(id, 'tty');
    if (!this.executor.resizeTty(id, size)) throw new IllegalState(`run ${id} is not queued or running on this server`);
  }

  /**
   * Resolves once the run can take input: not ended, requested with -i (-t), and, on the bus
   * (where the worker that has it answers), started.
   */
  private async takingInput(id: string, flag: 'interactive' | 'tty'): Promise<void> {
    const ended = (r: RunSummary) => new IllegalState(`run ${id} has already ${r.status === 'exited' ? 'exited' : 'failed'}`);
    let r = this.summary(id);
    if (isTerminal(r.status)) throw ended(r);
    if (!r[flag]) throw new IllegalState(flag === 'tty' ? `run ${id} was not started with -t (workload.tty): it has no terminal` : `run ${id} was not started with -i (workload.interactive): it takes no stdin`);
    if (this.executor.remote) {
      await this.untilStarted(id);
      r = this.summary(id);
      if (isTerminal(r.status)) throw ended(r);
    }
  }

  /**
   * Every run whose view changed, coalesced: the runs touched in each `everyMs` window are sent
   * once, at its end (lifecycle events and decision counts alike). Never completes.
   */
  watchAll(everyMs = 250): Observable<RunView> {
    return new Observable<RunView>((sub) => {
      const dirty = new Set<string>();
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        timer = undefined;
        for (const id of dirty) {
          const r = this.runs.get(id);
          if (r) sub.next(toRunView(r));
        }
        dirty.clear();
      };
      const stop = this.hub.listen((e) => {
        if (!e.streamId.startsWith('run-')) return;
        dirty.add(e.streamId.slice(4));
        timer ??= setTimeout(flush, everyMs);
      });
      return () => {
        stop();
        if (timer) clearTimeout(timer);
      };
    });
  }

  /**
   * The events of one run after a position (exclusive), then live ones, completing after
   * RunExited or RunFailed. Listens before reading history so nothing falls between.
   */
  watch(id: string, after = 0): Observable<StoredEvent> {
    this.summary(id);
    const stream = runStream(id);
    return new Observable<StoredEvent>((sub) => {
      let last = after;
      let live = false;
      let done = false;
      const buffered: StoredEvent[] = [];
      const emit = (e: StoredEvent) => {
        if (done || e.position <= last) return;
        last = e.position;
        sub.next(e);
        if (TERMINAL_TYPES.has(e.type)) {
          done = true;
          sub.complete();
        }
      };
      const stopListening = this.hub.listen((e) => {
        if (e.streamId !== stream) return;
        if (live) emit(e);
        else buffered.push(e);
      });
      (async () => {
        for await (const e of this.store.readStream(stream)) {
          if (done || sub.closed) return;
          emit(e);
        }
        for (const e of buffered.sort((a, b) => a.position - b.position)) emit(e);
        buffered.length = 0;
        live = true;
        // resumed after the run's last event: nothing more will come
        const now = this.runs.get(id);
        if (!done && now && isTerminal(now.status) && now.lastPosition <= last) {
          done = true;
          sub.complete();
        }
      })().catch((err) => sub.error(err));
      return () => {
        done = true;
        stopListening();
      };
    });
  }
}
