/**
 * Shapes of API answers that the console (apps/console/web) reads as well: types only, with no
 * imports, so the browser bundle can share them (esbuild erases them; apps/console/web's tsconfig
 * includes this file).
 */

export type RunViewStatus = 'queued' | 'running' | 'exited' | 'failed';

/** A run as the API shows it (HTTP, gRPC, the console), from libs/events' run summary. */
export interface RunView {
  id: string;
  status: RunViewStatus;
  image: string;
  imageDigest?: string;
  command: string[];
  policy: { name: string; version: number; hash: string } | null;
  learn: boolean;
  counts: { allow: number; deny: number; emulate: number };
  exitCode?: number | null;
  signal?: string | null;
  reason?: string;
  stage?: string;
  lostEvents?: number;
  requestedAt: string;
  /** the name of the token that submitted it */
  requestedBy?: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  position: number;
}

/** GET /v1/decisions/timeline: one run's decisions in columns. */
export interface RunTimeline {
  runId: string;
  count: number;
  /** the first decision's time; t[] counts ms from it */
  start: string | null;
  programs: string[];
  kinds: Array<{ type: string; syscall: string; privileges: string[]; capability: string | null; ruleId: string | null }>;
  position: number[];
  t: number[];
  program: number[];
  kind: number[];
  /** 0 allow, 1 emulate, 2 deny */
  outcome: number[];
}
