import { compile, load, type PolicyError } from '@capulator/policy';
import type { PolicyEngine, PolicyLintError } from './policy-engine';

function toLintError(e: PolicyError): PolicyLintError {
  return {
    code: e.code,
    message: e.message,
    location: `${e.location.file}:${e.location.line}:${e.location.col}`,
    line: e.location.line,
    col: e.location.col,
    severity: e.severity,
  };
}

/** libs/policy behind the PolicyEngine port. Includes are refused (no resolver over the API). */
export class LibPolicyEngine implements PolicyEngine {
  lint(yaml: string, file: string) {
    const r = load(yaml, file);
    const errors = r.errors.map(toLintError);
    const warnings = (r.warnings ?? []).map(toLintError);
    if (!r.policy || errors.length > 0) return { errors, warnings };
    const table = compile(r.policy);
    return {
      policy: { name: r.policy.name, description: r.policy.description, hash: table.hash },
      errors,
      warnings,
    };
  }
}
