/**
 * What the gateway needs from libs/policy: lint a YAML text into a compiled policy identity.
 * The adapter (policy-engine.adapter.ts) is the only file that knows libs/policy's API.
 */
export interface LintedPolicy {
  name: string;
  description?: string;
  /** sha256:<hex> of the compiled table */
  hash: string;
}

export interface PolicyLintError {
  code: string;
  message: string;
  /** file:line:col */
  location: string;
  line: number;
  col: number;
  severity: 'error' | 'warning';
}

/** What `capulator policy explain --json` prints (libs/policy explainPolicy), for a container of uid/gid. */
export type PolicyExplanation = Record<string, unknown> & { rules: Array<{ id: string; location: { line: number } }> };

export interface PolicyEngine {
  lint(yaml: string, file: string): { policy?: LintedPolicy; errors: PolicyLintError[]; warnings: PolicyLintError[] };
  /** Every rule with what it asks and what enforces it, and the container's capability sets; errors when it does not load. */
  explain(yaml: string, file: string, subject: { uid: number; gid: number; image?: string }): { explanation?: PolicyExplanation; errors: PolicyLintError[] };
}
