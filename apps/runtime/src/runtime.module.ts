import { Inject, Injectable, Module, type DynamicModule } from '@nestjs/common';
import { Command, CommandHandler, EventBus, EventsHandler, type ICommandHandler, type IEventHandler } from '@nestjs/cqrs';
import type { EventTypes, RunCommand, StoredEvent } from '@capulator/events';
import type { RunOrder, WorkerRunFn } from './worker/commands';
import { capulatorCqrsModule, RUN_LIFECYCLE_TYPES, RunClaimed, RunExited, RunFailed, RunStarted, toDomainEvent } from '../../../libs/events/src/nest/cqrs';

export const RUNTIME_LOG = Symbol('RUNTIME_LOG');
export const RUN_FN = Symbol('RUN_FN');
export type RuntimeLog = (rec: Record<string, unknown>) => void;

/**
 * What the worker appended goes on @nestjs/cqrs' EventBus as domain events (routed by `type`).
 * Only this process's own, live appends: nothing read back from the store is published.
 */
@Injectable()
export class RuntimeEvents {
  constructor(private readonly bus: EventBus) {}

  appended(stored: StoredEvent[]): void {
    for (const e of stored) if (RUN_LIFECYCLE_TYPES.has(e.type)) this.bus.publish(toDomainEvent(e));
  }
}

/** One JSON log line per lifecycle step of the runs this worker executes, and counts of outcomes. */
@EventsHandler(RunClaimed, RunStarted, RunExited, RunFailed)
@Injectable()
export class RunLifecycleLogger implements IEventHandler<RunClaimed | RunStarted | RunExited | RunFailed> {
  readonly counts = { claimed: 0, started: 0, exited: 0, failed: 0 };

  constructor(@Inject(RUNTIME_LOG) private readonly log: RuntimeLog) {}

  handle(e: RunClaimed | RunStarted | RunExited | RunFailed): void {
    const at = { runId: (e.payload as { runId: string }).runId, position: e.meta?.position };
    switch (e.type) {
      case 'RunClaimed':
        this.counts.claimed++;
        return this.log({ msg: 'run claimed', ...at });
      case 'RunStarted': {
        const p = e.payload as EventTypes['RunStarted'];
        this.counts.started++;
        return this.log({ msg: 'run started', ...at, pid: p.pid, permitted: p.capabilities.permitted });
      }
      case 'RunExited': {
        const p = e.payload as EventTypes['RunExited'];
        this.counts.exited++;
        return this.log({ msg: 'run exited', ...at, exitCode: p.exitCode, signal: p.signal, lostEvents: p.lostEvents });
      }
      default: {
        const p = e.payload as EventTypes['RunFailed'];
        this.counts.failed++;
        return this.log({ msg: 'run failed', ...at, stage: p.stage, reason: p.reason });
      }
    }
  }
}

/**
 * Execute one run here (the worker dispatches it on the CommandBus once it holds the claim): the
 * result is the run's lifecycle commands (StartRun, RecordDecisions…, ExitRun/FailRun), which the
 * worker decides and appends with the expected version.
 */
export class ExecuteRunCommand extends Command<AsyncIterable<RunCommand>> {
  constructor(
    readonly order: RunOrder,
    readonly signal: AbortSignal,
  ) {
    super();
  }
}

@CommandHandler(ExecuteRunCommand)
@Injectable()
export class ExecuteRunHandler implements ICommandHandler<ExecuteRunCommand> {
  constructor(@Inject(RUN_FN) private readonly run: WorkerRunFn) {}

  async execute(c: ExecuteRunCommand): Promise<AsyncIterable<RunCommand>> {
    return this.run(c.order, { signal: c.signal });
  }
}

/** The runtime worker's Nest context: @nestjs/cqrs routing by the events' stable `type`. */
@Module({})
export class RuntimeModule {
  static forRoot(log: RuntimeLog, run: WorkerRunFn): DynamicModule {
    return {
      module: RuntimeModule,
      imports: [capulatorCqrsModule()],
      providers: [{ provide: RUNTIME_LOG, useValue: log }, { provide: RUN_FN, useValue: run }, RuntimeEvents, RunLifecycleLogger, ExecuteRunHandler],
    };
  }
}
