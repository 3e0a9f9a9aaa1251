/**
 * A run id: it names the run's directory, its container (capulator-ID), its output file and its
 * stream. One rule for the CLI, the runner, the bus and the files (this module imports nothing, so
 * the commands that only check an id load nothing else).
 */
export const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The one-line complaint about a run id that is not one, or undefined for a good one. */
export function runIdProblem(id: string): string | undefined {
  return RUN_ID.test(id) ? undefined : `run id "${id}" must match ${RUN_ID.source}`;
}
