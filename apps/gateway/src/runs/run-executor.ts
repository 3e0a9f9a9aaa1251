import type { EventTypes, RunCommand } from '@capulator/events';

/**
 * What the gateway hands the runtime: the RunRequested payload plus the policy text the
 * runtime compiles. The same shape travels as the Kafka command (keyed by runId) later.
 */
export interface RunRequest extends Omit<EventTypes['RunRequested'], 'requestedBy'> {
  requestedBy?: string;
  /** the YAML of the policy named in `policy` (published or inline) */
  policyYaml?: string;
}

/**
 * The runtime behind the gateway. submit() resolves once the run is accepted (queued), never
 * after it ran; the run's events (RunStarted, decisions, RunExited/RunFailed) reach the event
 * store, where the gateway reads them. Adapters: in-process (InProcessExecutor, `capulator
 * serve`), Kafka later (`--bus kafka://…`, `--role gateway|runtime`): submit publishes the
 * command on the bus, stop publishes a stop command, the worker appends the events.
 */
export interface RunExecutor {
  submit(req: RunRequest): Promise<void>;
  /**
   * For an executor whose queue the gateway bounds (the Kafka bus: the queue is the command
   * topic): the most runs that may wait, cluster-wide, before submissions are refused with 503.
   */
  readonly maxQueued?: number;
  /**
   * runs execute on other machines (the Kafka bus): a run names where its image can be fetched,
   * and stdin and sizes reach it only once it has started (the worker that has it answers; the
   * caller waits for RunStarted before writeStdin and resizeTty)
   */
  readonly remote?: boolean;
  /** true when the run was queued or running here and is being stopped */
  stop(runId: string): Promise<boolean>;
  /**
   * Appends to the stdin of an interactive (-i) run queued or running here, in order (`eof`:
   * then closes it); resolves once taken. False when the run is not here.
   */
  writeStdin(runId: string, data: Buffer, eof: boolean): Promise<boolean>;
  /** Sets the window size of a -t run queued or running here. False when the run is not here. */
  resizeTty(runId: string, size: { rows: number; cols: number }): boolean;
  /** Told when a run's terminal event is in the log (the Kafka bus: its output ends, waiting stdin is refused). */
  runEnded?(runId: string): void;
  close(): Promise<void>;
}

/**
 * One run, executed in this process: yields the run's lifecycle commands in order (StartRun,
 * RecordDecisions batches, then ExitRun or FailRun); the executor decides each against the run's
 * state (libs/events/src/runs/run.decider.ts) and appends the events to `run-<id>` with the
 * expected version. `signal` aborts when the run is stopped; the runner must then kill the
 * container and still yield ExitRun (or FailRun).
 */
export type RunFn = (req: RunRequest, opts: { signal: AbortSignal }) => AsyncIterable<RunCommand>;
