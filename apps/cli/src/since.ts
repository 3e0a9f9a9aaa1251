import { CliError } from './cli-error';

const UNIT_MS = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 } as const;

/**
 * `--since` (audit log, audit replay, logs): an ISO 8601 / RFC 3339 time, or a duration back from
 * `now` (30s, 10m, 2h, 7d). Epoch milliseconds; a located error otherwise.
 */
export function parseSince(v: string, now = Date.now()): number {
  const rel = /^(\d{1,9})([smhd])$/.exec(v);
  if (rel) return now - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS];
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw new CliError(`--since ${v}: want a time (2026-01-02T03:04:05Z) or a duration (30s, 10m, 2h, 7d)`);
}
