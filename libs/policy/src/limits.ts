/**
 * The compiled table's limits, defined once. The native agent's parser gets them from
 * agent/src/limits.generated.h (generated from this file by apps/runtime/src/run/agent-limits.ts;
 * a spec fails when the header drifts); libs/policy's table parser reads them here, and `load`
 * (lint, compile, publish, runs) refuses a policy whose table would cross one, with
 * LIMIT_EXCEEDED at the rule (or field) that crosses it. Byte counts are UTF-8 bytes after
 * percent-decoding.
 */
export const TABLE_LIMITS = Object.freeze({
  /** the whole table file */
  maxBytes: 4 * 1024 * 1024,
  /** one table line, without its newline */
  maxLineBytes: 8191,
  /** lines in a table (libs/policy's parser only: the agent is bounded by maxBytes) */
  maxLines: 200_000,
  maxRules: 4096,
  /** comma-separated ranges in one uid/gid/when condition (after merging overlaps) */
  maxRanges: 64,
  /** exe globs in one rule */
  maxExeGlobs: 32,
  /** privileges of one rule after globs and capabilities are expanded */
  maxRulePrivileges: 256,
  /** capabilities of one rule after expansion */
  maxRuleCapabilities: 64,
  /** `when` argument conditions in one rule (besides `syscall`) */
  maxConditions: 16,
  /** alternatives in one string or glob condition */
  maxValues: 16,
  /** one exe glob, when value or when glob */
  maxStringBytes: 255,
  maxRuleIdBytes: 127,
  maxPolicyNameBytes: 127,
  maxPolicyVersionBytes: 63,
  /** a `when` argument name or syscall name */
  maxNameBytes: 63,
});

export type TableLimit = keyof typeof TABLE_LIMITS;
