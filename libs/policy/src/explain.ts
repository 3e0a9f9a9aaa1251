import { capabilitySets, type CapabilitySetsResult, type ContainerSubject } from './capsets';
import { ruleEnforcement, type Enforcement } from './enforcement';
import type { Policy, PolicyRule } from './model';

/** "uid 0; exe /usr/bin/ping; syscall bind; port 80-443", or "any process": what a rule asks of a request. */
export function describeRule(r: PolicyRule): string {
  const ranges = (rs: ReadonlyArray<readonly [number, number]>) => rs.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
  const parts: string[] = [];
  if (r.match.uid) parts.push(`uid ${ranges(r.match.uid)}`);
  if (r.match.gid) parts.push(`gid ${ranges(r.match.gid)}`);
  if (r.match.exe) parts.push(`exe ${r.match.exe.join('|')}`);
  if (r.match.image) parts.push(`image ${r.match.image.join('|')}`);
  if (r.match.labels) parts.push(`labels ${r.match.labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (r.when.syscall) parts.push(`syscall ${r.when.syscall}`);
  for (const c of r.when.args) parts.push(`${c.name} ${c.kind === 'ranges' ? ranges(c.ranges) : c.kind === 'values' ? c.values.join('|') : c.globs.join('|')}`);
  return parts.join('; ') || 'any process';
}

export interface ExplainedRule {
  index: number;
  id: string;
  action: PolicyRule['action'];
  /** the privileges it names ('any' when it names none) */
  privileges: string[] | 'any';
  conditions: string;
  /** which layer enforces it for this container (kernel sets, file capability, agent, or recorded only) */
  enforcedBy: Enforcement[];
  /** where the rule starts in its file */
  location: { file: string; line: number; col: number };
}

export interface PolicyExplanation {
  policy: { name: string; version: string; learn: boolean; defaults: Policy['defaults'] };
  subject: ContainerSubject;
  rules: ExplainedRule[];
  capabilities: CapabilitySetsResult;
}

/**
 * `policy explain` without a privilege: every rule with what it asks and the layer that enforces
 * it for a container of `subject`, and the capability sets that container starts with (with the
 * rule behind each grant). The CLI and the gateway (the console's editor) both answer from this.
 */
export function explainPolicy(p: Policy, subject: ContainerSubject = { uid: 0, gid: 0 }): PolicyExplanation {
  const capabilities = capabilitySets(p, subject);
  const enforced = new Map(ruleEnforcement(p, subject, capabilities).map((e) => [e.ruleId, e.enforcedBy]));
  return {
    policy: { name: p.name, version: p.version, learn: p.learn, defaults: p.defaults },
    subject,
    rules: p.rules.map((r) => ({
      index: r.index,
      id: r.id,
      action: r.action,
      privileges: r.privileges ? [...r.privileges] : 'any',
      conditions: describeRule(r),
      enforcedBy: enforced.get(r.id) ?? [],
      location: { file: r.location.file, line: r.location.line, col: r.location.col },
    })),
    capabilities,
  };
}
