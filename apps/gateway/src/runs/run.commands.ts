import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Command, CommandHandler, EventBus, EventsHandler, type ICommandHandler, type IEventHandler } from '@nestjs/cqrs';
import {
  BatchingAppender,
  decide,
  evolve,
  type Anchorer,
  expectedVersionOf,
  initialRunState,
  runStream,
  type EventStore,
  type EventTypes,
  type NewEvent,
  type StoredEvent,
} from '@capulator/events';
import { RUN_LIFECYCLE_TYPES, RunExited, RunFailed, toDomainEvent } from '../../../../libs/events/src/nest/cqrs';
import { EventHub } from '../store/event-hub';
import { EVENT_STORE, RUN_ANCHORER, RUN_EXECUTOR } from '../store/tokens';
import type { RunExecutor } from './run-executor';

/**
 * The gateway's run commands on @nestjs/cqrs' CommandBus. Each handler is a thin shell around the
 * run decider (libs/events/src/runs/run.decider.ts): decide against the run's state, append with
 * the expected version, hand what was stored to the hub (read models, watchers) — and, live, to
 * the EventBus (RunLifecycleBridge below), which routes by the events' stable `type`.
 */

/** Request a run: RunRequested on a new stream, then the run goes to the executor (in process or Kafka). */
export class RequestRunCommand extends Command<{ version: number }> {
  constructor(
    readonly request: EventTypes['RunRequested'],
    readonly policyYaml: string | undefined,
  ) {
    super();
  }
}

@CommandHandler(RequestRunCommand)
@Injectable()
export class RequestRunHandler implements ICommandHandler<RequestRunCommand> {
  private readonly appender: BatchingAppender;

  constructor(
    @Inject(EVENT_STORE) store: EventStore,
    @Inject(RUN_EXECUTOR) private readonly executor: RunExecutor,
    private readonly hub: EventHub,
  ) {
    // group commit: concurrent submissions share one transaction
    this.appender = new BatchingAppender(store);
  }

  async execute(c: RequestRunCommand): Promise<{ version: number }> {
    const { runId } = c.request;
    // a new run id: the state is the empty stream's, and 'no-stream' makes the store refuse a reused id
    let state = initialRunState(runId);
    const stored = await this.append(runId, state.version, decide({ type: 'RequestRun', at: new Date().toISOString(), request: c.request }, state));
    state = stored.reduce(evolve, state);
    try {
      await this.executor.submit({ ...c.request, ...(c.policyYaml !== undefined ? { policyYaml: c.policyYaml } : {}) });
    } catch (err) {
      // the executor refused it (queue full, shutting down): the run fails here, once
      await this.append(runId, state.version, decide({ type: 'FailRun', at: new Date().toISOString(), stage: 'runtime', reason: (err as Error).message }, state));
      throw err;
    }
    return { version: state.version };
  }

  private async append(runId: string, version: number, events: NewEvent[]): Promise<StoredEvent[]> {
    const stored = await this.appender.append({ streamId: runStream(runId), expectedVersion: expectedVersionOf(version), events });
    this.hub.publish(stored);
    return stored;
  }
}

/**
 * Live run lifecycle events (appended here or by a worker elsewhere, seen through the hub) go on
 * the EventBus as domain events. The hub's catch-up at start is a replay and is not published:
 * replay feeds projections only.
 */
@Injectable()
export class RunLifecycleBridge implements OnModuleInit {
  constructor(
    private readonly hub: EventHub,
    private readonly bus: EventBus,
  ) {}

  onModuleInit(): void {
    this.hub.listen((e) => {
      if (this.hub.isReady && RUN_LIFECYCLE_TYPES.has(e.type)) this.bus.publish(toDomainEvent(e));
    });
  }
}

/**
 * Each run's one terminal event, as it happens (routed by `type`, so events from Kafka workers
 * count too): logged, and on the embedded store the chain head is anchored outside events.db
 * (libs/events/src/anchor; docs/events.md "Anchors").
 */
@EventsHandler(RunExited, RunFailed)
@Injectable()
export class RunEndedHandler implements IEventHandler<RunExited | RunFailed> {
  private readonly log = new Logger('runs');
  readonly ended = { exited: 0, failed: 0 };

  constructor(@Inject(RUN_ANCHORER) private readonly anchorer: Anchorer | null) {}

  handle(e: RunExited | RunFailed): void {
    this.anchorer?.anchorSoon();
    if (e.type === 'RunFailed') {
      const p = e.payload as EventTypes['RunFailed'];
      this.ended.failed++;
      this.log.log({ msg: 'run failed', runId: p.runId, stage: p.stage, reason: p.reason, position: e.meta?.position });
    } else {
      const p = e.payload as EventTypes['RunExited'];
      this.ended.exited++;
      this.log.log({ msg: 'run exited', runId: p.runId, exitCode: p.exitCode, signal: p.signal, lostEvents: p.lostEvents, position: e.meta?.position });
    }
  }
}
