import { compile, explainPolicy, load, type PolicyError } from '@capulator/policy';
import type { PolicyEngine, PolicyExplanation, PolicyLintError } from './policy-engine';

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

type LintResult = ReturnType<PolicyEngine['lint']>;

/**
 * libs/policy behind the PolicyEngine port. Includes are refused (no resolver over the API).
 * Results are cached by text (the same inline or default policy comes with many submissions;
 * a lint costs milliseconds, a lookup microseconds).
 */
export class LibPolicyEngine implements PolicyEngine {
  private readonly cache = new Map<string, LintResult>();

  constructor(private readonly cacheSize = 64) {}

  lint(yaml: string, file: string): LintResult {
    const key = `${file}\0${yaml}`;
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const r = this.lintUncached(yaml, file);
    if (yaml.length > 64 * 1024) return r; // keep the cache small
    if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, r);
    return r;
  }

  explain(yaml: string, file: string, subject: { uid: number; gid: number; image?: string }): { explanation?: PolicyExplanation; errors: PolicyLintError[] } {
    const r = load(yaml, file);
    const errors = r.errors.map(toLintError);
    if (!r.policy || errors.length > 0) return { errors };
    return { explanation: explainPolicy(r.policy, subject) as unknown as PolicyExplanation, errors };
  }

  private lintUncached(yaml: string, file: string): LintResult {
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
