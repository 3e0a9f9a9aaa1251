import { ensureTopics } from '@capulator/events';
import type { Admin } from 'kafkajs';
import type { EventTypes, RunCommand } from '@capulator/events';
import { RUN_ID } from '../run/run-id';

/** Commands travel here, keyed by run id: a run's RunRequested and StopRun land on one partition. */
export const COMMANDS_TOPIC = 'capulator.commands';
/** Commands that could not be handled after the bounded retries (or could not be parsed). */
export const DLQ_TOPIC = 'capulator.commands.dlq';
/** The runtime workers' consumer group. */
export const RUNTIME_GROUP = 'capulator-runtime';
export const DEFAULT_COMMAND_PARTITIONS = 8;

/** What the worker needs to execute one run: RunRequested plus the policy text to compile. */
export interface RunOrder extends Omit<EventTypes['RunRequested'], 'requestedBy'> {
  requestedBy?: string;
  policyYaml?: string;
}

/**
 * One run, executed here: yields the run's lifecycle commands in order (StartRun, RecordDecisions,
 * then ExitRun or FailRun), which the worker decides and appends; `signal` aborts when the run is
 * stopped, and the function must still yield ExitRun or FailRun.
 * The gateway's RunFn (apps/gateway/src/runs/run-executor.ts) has this shape.
 */
export type WorkerRunFn = (req: RunOrder, opts: { signal: AbortSignal }) => AsyncIterable<RunCommand>;

/** Version 1 of the command envelope (JSON, UTF-8). */
export type BusCommand =
  | { v: 1; kind: 'RunRequested'; at: string; run: RunOrder }
  | { v: 1; kind: 'StopRun'; at: string; runId: string };

export class BadCommand extends Error {}

export function encodeCommand(c: BusCommand): Buffer {
  return Buffer.from(JSON.stringify(c), 'utf8');
}

const isStr = (x: unknown): x is string => typeof x === 'string' && x.length > 0;

/** Parses and checks a command; throws BadCommand (a poison message: dead-lettered at once). */
export function decodeCommand(value: Buffer | null): BusCommand {
  if (!value || value.length === 0) throw new BadCommand('empty message');
  let c: any;
  try {
    c = JSON.parse(value.toString('utf8'));
  } catch {
    throw new BadCommand('not JSON');
  }
  if (!c || typeof c !== 'object' || c.v !== 1) throw new BadCommand(`unsupported command version ${JSON.stringify(c?.v)}`);
  if (c.kind === 'StopRun') {
    if (!isStr(c.runId) || !RUN_ID.test(c.runId)) throw new BadCommand('StopRun: bad runId');
    return c as BusCommand;
  }
  if (c.kind === 'RunRequested') {
    const r = c.run;
    if (!r || typeof r !== 'object' || !isStr(r.runId) || !RUN_ID.test(r.runId)) throw new BadCommand('RunRequested: bad runId');
    if (!isStr(r.image) || !Array.isArray(r.command) || !Array.isArray(r.env) || !Array.isArray(r.mounts)) throw new BadCommand('RunRequested: bad run');
    if (r.args !== undefined && (!Array.isArray(r.args) || !r.args.every((a: unknown) => typeof a === 'string'))) throw new BadCommand('RunRequested: bad args');
    if (!r.policy || !isStr(r.policy.name) || typeof r.policy.version !== 'number') throw new BadCommand('RunRequested: bad policy');
    if (r.imageSource !== undefined) {
      const src = r.imageSource;
      if (!src || typeof src !== 'object' || !isStr(src.ref) || !/@sha256:[0-9a-f]{64}$/.test(src.ref) || !isStr(src.digest) || !/^sha256:[0-9a-f]{64}$/.test(src.digest)) {
        throw new BadCommand('RunRequested: bad imageSource (want {ref: "host/repo@sha256:…", digest: "sha256:…"})');
      }
    }
    return c as BusCommand;
  }
  throw new BadCommand(`unknown command kind ${JSON.stringify(c.kind)}`);
}

export const commandKey = (c: BusCommand): string => (c.kind === 'StopRun' ? c.runId : c.run.runId);

/** Creates the command topic (N partitions) and the dead-letter topic when missing. */
export async function ensureCommandTopics(admin: Admin, partitions = DEFAULT_COMMAND_PARTITIONS, topic = COMMANDS_TOPIC, dlq = DLQ_TOPIC): Promise<void> {
  // the helper waits out another process creating the same topics at the same time
  await ensureTopics(admin, [
    { topic, numPartitions: partitions },
    { topic: dlq, numPartitions: 1 },
  ]);
}
