import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { repoRoot } from '@capulator/host';
import { policyStream, WrongExpectedVersion, type EventStore, type PolicyRef } from '@capulator/events';
import { Conflict, DomainError, NotFound, PolicyInvalid, ValidationFailed } from '../errors/domain.error';
import { EventHub } from '../store/event-hub';
import { EVENT_STORE, POLICY_ENGINE } from '../store/tokens';
import { evolvePolicyCatalog, PolicyVersion } from './policy-catalog.projection';
import type { PolicyEngine, PolicyLintError } from './policy-engine';

/**
 * The policy used when a run names none: the same documented default as `capulator run`
 * (examples/policies/default.yaml: about what Docker grants, every decision recorded).
 */
export const DEFAULT_POLICY_FILE = join(repoRoot(__dirname), 'examples', 'policies', 'default.yaml');
let defaultYaml: string | undefined;
function defaultPolicyYaml(): string {
  return (defaultYaml ??= readFileSync(DEFAULT_POLICY_FILE, 'utf8'));
}

const REF_RE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:@([1-9][0-9]{0,8}))?$/;

/** Publishes and reads policy versions (stream `policy-<name>`, event PolicyPublished). */
@Injectable()
export class PoliciesService {
  private readonly log = new Logger('policies');
  private readonly catalog = new Map<string, PolicyVersion[]>();

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(POLICY_ENGINE) private readonly engine: PolicyEngine,
    private readonly hub: EventHub,
  ) {
    hub.listen((e) => evolvePolicyCatalog(this.catalog, e));
  }

  /** Lints without publishing (the console's live markers). */
  lint(yaml: string): { ok: boolean; policy?: { name: string; hash: string; description?: string }; errors: PolicyLintError[]; warnings: PolicyLintError[] } {
    const r = this.engine.lint(yaml, 'policy.yaml');
    const ok = !!r.policy && r.errors.length === 0;
    return { ok, ...(ok ? { policy: { name: r.policy!.name, hash: r.policy!.hash, ...(r.policy!.description ? { description: r.policy!.description } : {}) } } : {}), errors: r.errors, warnings: r.warnings };
  }

  /** `policy explain` over the API (the console's editor): the rules, what enforces each, and the container's sets. */
  explain(yaml: string, subject: { uid: number; gid: number; image?: string }): { ok: boolean; errors: PolicyLintError[]; explanation?: unknown } {
    const r = this.engine.explain(yaml, 'policy.yaml', subject);
    return { ok: r.errors.length === 0 && !!r.explanation, errors: r.errors, ...(r.explanation ? { explanation: r.explanation } : {}) };
  }

  /** Lints and publishes the next version of the policy the YAML names. */
  async publish(yaml: string, by?: string): Promise<{ name: string; version: number; hash: string; warnings: PolicyLintError[] }> {
    const r = this.engine.lint(yaml, 'policy.yaml');
    if (!r.policy || r.errors.length > 0) throw new PolicyInvalid(r.errors);
    const { name, hash, description } = r.policy;
    const current = this.catalog.get(name) ?? [];
    const latest = current[current.length - 1];
    if (latest && latest.hash === hash) {
      return { name, version: latest.version, hash, warnings: r.warnings };
    }
    const version = (latest?.version ?? 0) + 1;
    try {
      const stored = await this.store.append(policyStream(name), latest ? latest.version : 'no-stream', [
        { type: 'PolicyPublished', at: new Date().toISOString(), payload: { name, version, hash, yaml, ...(description ? { description } : {}) } },
      ]);
      this.hub.publish(stored);
    } catch (err) {
      if (err instanceof WrongExpectedVersion) throw new Conflict(`policy ${name} changed while publishing; retry`);
      throw err;
    }
    this.log.log({ msg: 'policy published', name, version, hash, by });
    return { name, version, hash, warnings: r.warnings };
  }

  list(): Array<{ name: string; latest: number; versions: number[]; hash: string; description?: string; publishedAt: string }> {
    return [...this.catalog.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, vs]) => {
        const l = vs[vs.length - 1];
        return { name, latest: l.version, versions: vs.map((v) => v.version), hash: l.hash, description: l.description, publishedAt: l.publishedAt };
      });
  }

  get(name: string, version?: number): PolicyVersion {
    const vs = this.catalog.get(name);
    const v = vs && (version === undefined ? vs[vs.length - 1] : vs.find((x) => x.version === version));
    if (!v) throw new NotFound('policy', version === undefined ? name : `${name}@${version}`);
    return v;
  }

  /** `name` (latest) or `name@version`. */
  resolve(ref: string): PolicyVersion {
    const m = REF_RE.exec(ref);
    if (!m) throw new ValidationFailed([{ field: 'policy', messages: ['policy must be "name" or "name@version"'] }]);
    return this.get(m[1], m[2] === undefined ? undefined : Number(m[2]));
  }

  /** The policy a run uses: a published one, an inline one (version 0), or the built-in default. */
  forRun(policy: string | undefined, policyYaml: string | undefined): { ref: PolicyRef; yaml: string } {
    if (policy !== undefined && policyYaml !== undefined) {
      throw new ValidationFailed([{ field: 'policy', messages: ['give policy or policyYaml, not both'] }]);
    }
    if (policy !== undefined) {
      const v = this.resolve(policy);
      return { ref: { name: v.name, version: v.version, hash: v.hash }, yaml: v.yaml };
    }
    const yaml = policyYaml ?? defaultPolicyYaml();
    const r = this.engine.lint(yaml, policyYaml !== undefined ? 'policyYaml' : DEFAULT_POLICY_FILE);
    if (!r.policy || r.errors.length > 0) {
      if (policyYaml === undefined) throw new DomainError('internal', 'the built-in default policy does not lint');
      throw new PolicyInvalid(r.errors);
    }
    return { ref: { name: r.policy.name, version: 0, hash: r.policy.hash }, yaml };
  }
}
