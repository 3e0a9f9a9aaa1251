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

export interface PolicyEngine {
  lint(yaml: string, file: string): { policy?: LintedPolicy; errors: PolicyLintError[]; warnings: PolicyLintError[] };
}
