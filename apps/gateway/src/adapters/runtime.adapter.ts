import type { NewEvent } from '@capulator/events';
import type { RunFn, RunRequest } from '../runs/run-executor';

/**
 * The in-process runtime. Until apps/runtime/src/run lands, every run fails at the runtime
 * stage with a clear reason (the gateway's queue, events and read models are real).
 */
export function runtimeRunFn(_home: string): RunFn {
  return async function* run(req: RunRequest): AsyncIterable<NewEvent> {
    yield {
      type: 'RunFailed',
      at: new Date().toISOString(),
      payload: { runId: req.runId, reason: 'this build has no runner (apps/runtime/src/run is not available)', stage: 'runtime' },
    };
  };
}
