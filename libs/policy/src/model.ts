import type { Ranges } from './ranges';
import type { SourceLocation } from './policy.errors';
import type { Arch } from './abi';

export type Action = 'allow' | 'deny' | 'emulate';
export type AuditLevel = 'all' | 'denials' | 'none';
export const ACTIONS: readonly Action[] = ['allow', 'deny', 'emulate'];
export const AUDIT_LEVELS: readonly AuditLevel[] = ['all', 'denials', 'none'];

/** One `when` argument condition. Array-valued request arguments must satisfy it element-wise. */
export type ArgCondition =
  | { name: string; kind: 'ranges'; ranges: Ranges }
  | { name: string; kind: 'values'; values: readonly string[] }
  | { name: string; kind: 'globs'; globs: readonly string[] };

export interface PolicyRule {
  /** Position in evaluation order (0-based, after includes are merged). */
  index: number;
  id: string;
  description?: string;
  location: SourceLocation;
  action: Action;
  errno: number;
  return: number;
  audit: AuditLevel;
  match: {
    uid?: Ranges;
    gid?: Ranges;
    exe?: readonly string[];
    image?: readonly string[];
    labels?: ReadonlyArray<readonly [string, string]>;
  };
  /** Privileges covered (names, by number); null = any privileged operation. */
  privileges: readonly string[] | null;
  privilegeIds: ReadonlySet<number> | null;
  /** Capabilities covered for requests that carry no privilege (capset, capability prctls); null = any. */
  capabilities: readonly string[] | null;
  capabilitySet: ReadonlySet<string> | null;
  when: { syscall?: string; args: readonly ArgCondition[] };
  /** What the rule listed: `privileges` (expanded globs) and `capabilities`, before expansion. */
  listed: { privileges: readonly string[]; capabilities: readonly string[] };
}

export interface PolicyDefaults {
  action: Action;
  errno: number;
  return: number;
  audit: AuditLevel;
}

/** A checked, resolved, immutable policy: what `load` returns and `evaluate` reads. */
export interface Policy {
  name: string;
  description?: string;
  /** Content version: sha256 over the canonical form (first 16 hex digits), or metadata.version. */
  version: string;
  learn: boolean;
  defaults: PolicyDefaults;
  rules: readonly PolicyRule[];
  /** Files the policy was assembled from (the main file first). */
  files: readonly string[];
}

export type ArgValue = number | string | boolean | readonly (number | string)[];

export interface DecisionRequest {
  syscall?: string;
  args?: Record<string, ArgValue>;
  privilege?: string;
  exe?: string;
  uid?: number;
  gid?: number;
  image?: string;
  labels?: Record<string, string>;
  arch?: Arch;
  /** Full credentials, when known (lets the classifier see "setuid to an id already held"). */
  subject?: { uid: number; euid: number; suid: number; gid: number; egid: number; sgid: number };
}

export interface Decision {
  decision: Action;
  ruleId: string | null;
  privileges: string[];
  capability: string | null;
  errno?: number;
  return?: number;
  audit: boolean;
}

export function auditFor(level: AuditLevel, decision: Action): boolean {
  return level === 'all' || (level === 'denials' && decision === 'deny');
}
