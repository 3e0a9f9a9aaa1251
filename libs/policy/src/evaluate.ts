import { globMatch } from './glob';
import { auditFor, type ArgCondition, type ArgValue, type Decision, type DecisionRequest, type Policy, type PolicyRule } from './model';
import { inRanges } from './ranges';
import { prepareRequest, type PreparedRequest } from './request';

function condHolds(c: ArgCondition, v: ArgValue | undefined): boolean {
  if (v === undefined) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (!condHolds(c, x)) return false;
    return true;
  }
  if (c.kind === 'ranges') return typeof v === 'number' && Number.isInteger(v) && inRanges(c.ranges, v);
  if (typeof v !== 'string') return false;
  if (c.kind === 'values') return c.values.includes(v);
  return c.globs.some((g) => globMatch(g, v));
}

/** Does `rule` decide `req`? (The subject fields come from the original request.) */
export function ruleMatches(rule: PolicyRule, q: PreparedRequest, req: DecisionRequest): boolean {
  if (rule.privilegeIds) {
    if (q.privilegeIds.length > 0) {
      let hit = false;
      for (const id of q.privilegeIds) if (rule.privilegeIds.has(id)) hit = true;
      if (!hit) return false;
    } else if (q.capabilities.length > 0) {
      let hit = false;
      for (const c of q.capabilities) if (rule.capabilitySet!.has(c)) hit = true;
      if (!hit) return false;
    } else return false;
  } else if (q.unprivileged && rule.when.syscall === undefined) return false;
  const w = rule.when;
  if (w.syscall !== undefined && w.syscall !== q.syscall) return false;
  const m = rule.match;
  if (m.uid && !(typeof req.uid === 'number' && inRanges(m.uid, req.uid))) return false;
  if (m.gid && !(typeof req.gid === 'number' && inRanges(m.gid, req.gid))) return false;
  for (const c of w.args) if (!condHolds(c, q.args[c.name])) return false;
  if (m.exe && !(typeof req.exe === 'string' && m.exe.some((g) => globMatch(g, req.exe!)))) return false;
  if (m.image && !(typeof req.image === 'string' && m.image.some((g) => globMatch(g, req.image!)))) return false;
  if (m.labels) {
    const l = req.labels;
    if (!l) return false;
    for (const [k, v] of m.labels) if (l[k] !== v) return false;
  }
  return true;
}

export function decisionOf(rule: PolicyRule, q: PreparedRequest): Decision {
  const d: Decision = { decision: rule.action, ruleId: rule.id, privileges: q.privileges, capability: q.capability, audit: auditFor(rule.audit, rule.action) };
  if (rule.action === 'deny') d.errno = rule.errno;
  if (rule.action === 'emulate') d.return = rule.return;
  return d;
}

/**
 * Decides one request: first matching rule, else `defaults`. Pure and deterministic; a deny is
 * a returned value. Unprivileged operations are allowed (ruleId null) unless a rule naming their
 * syscall decides otherwise; learn mode allows and records everything.
 */
const indexCache = new WeakMap<Policy, Map<number, PolicyRule[]>>();

/** Per privilege id, the rules that could decide it (listing it, or covering any privilege), in order. */
function rulesForPrivilege(policy: Policy, id: number): readonly PolicyRule[] {
  let idx = indexCache.get(policy);
  if (!idx) indexCache.set(policy, (idx = new Map()));
  let l = idx.get(id);
  if (!l) {
    l = policy.rules.filter((r) => !r.privilegeIds || r.privilegeIds.has(id));
    idx.set(id, l);
  }
  return l;
}

export function evaluate(policy: Policy, request: DecisionRequest): Decision {
  const q = prepareRequest(request);
  if (policy.learn) return { decision: 'allow', ruleId: null, privileges: q.privileges, capability: q.capability, audit: true };
  const rules = q.privilegeIds.length === 1 && !q.unprivileged ? rulesForPrivilege(policy, q.privilegeIds[0]) : policy.rules;
  for (let i = 0; i < rules.length; i++) {
    if (ruleMatches(rules[i], q, request)) return decisionOf(rules[i], q);
  }
  if (q.unprivileged) {
    return { decision: 'allow', ruleId: null, privileges: [], capability: q.capability, audit: policy.defaults.audit !== 'none' };
  }
  const d = policy.defaults;
  const out: Decision = { decision: d.action, ruleId: null, privileges: q.privileges, capability: q.capability, audit: auditFor(d.audit, d.action) };
  if (d.action === 'deny') out.errno = d.errno;
  if (d.action === 'emulate') out.return = d.return;
  return out;
}
