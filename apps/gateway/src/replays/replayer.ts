/** The what-if replay behind POST /v1/replays and gRPC Replay; the adapter knows libs/events. */
export interface ReplayRequest {
  /** the candidate policy's YAML (inline or fetched from the catalog) */
  policyYaml: string;
  runIds?: string[];
  /** ISO time or global position: only history after it */
  since?: string;
}

export interface Replayer {
  /** runs off the event loop; `signal` cancels it (the caller went away) */
  whatIf(req: ReplayRequest, signal?: AbortSignal): Promise<ReplayReport>;
}

/** The report; `wouldDeny` > 0 means something allowed before would now be denied. */
export interface ReplayReport {
  policy: { name: string; hash: string };
  examined: number;
  changed: number;
  wouldDeny: number;
  [key: string]: unknown;
}
