import { TABLE_LIMITS } from './limits';
import type { PolicyRule } from './model';
import { policyError, type PolicyError, type SourceLocation } from './policy.errors';
import { ruleLines } from './table';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * What the native agent would refuse or could not evaluate, found before it runs: every
 * TABLE_LIMITS bound (one LIMIT_EXCEEDED per rule, at the rule), and conditions the agent never
 * has the argument for (CONDITION_NOT_EVALUATED).
 */
export function agentChecks(rules: readonly PolicyRule[], name: string | undefined, version: string | undefined, at: SourceLocation): PolicyError[] {
  const L = TABLE_LIMITS;
  const errors: PolicyError[] = [];
  if (name !== undefined && bytes(name) > L.maxPolicyNameBytes) errors.push(policyError('LIMIT_EXCEEDED', `metadata.name is ${bytes(name)} bytes; the agent takes at most ${L.maxPolicyNameBytes}`, at));
  if (version !== undefined && bytes(version) > L.maxPolicyVersionBytes) errors.push(policyError('LIMIT_EXCEEDED', `metadata.version is ${bytes(version)} bytes; the agent takes at most ${L.maxPolicyVersionBytes}`, at));
  if (rules.length > L.maxRules) {
    errors.push(policyError('LIMIT_EXCEEDED', `the policy has ${rules.length} rules (with its includes); the agent loads at most ${L.maxRules}`, rules[L.maxRules].location));
  }
  for (const r of rules) {
    const over = (what: string, n: number, max: number) => errors.push(policyError('LIMIT_EXCEEDED', `rule "${r.id}": ${what} ${n}; the agent takes at most ${max}`, r.location));
    const problems = errors.length;
    if (bytes(r.id) > L.maxRuleIdBytes) over('id bytes', bytes(r.id), L.maxRuleIdBytes);
    else if ((r.match.exe?.length ?? 0) > L.maxExeGlobs) over('exe globs', r.match.exe!.length, L.maxExeGlobs);
    else if ((r.privileges?.length ?? 0) > L.maxRulePrivileges) over('privileges (after expanding globs and capabilities)', r.privileges!.length, L.maxRulePrivileges);
    else if ((r.capabilities?.length ?? 0) > L.maxRuleCapabilities) over('capabilities', r.capabilities!.length, L.maxRuleCapabilities);
    else if (r.when.args.length > L.maxConditions) over('when conditions', r.when.args.length, L.maxConditions);
    else if ((r.match.uid?.length ?? 0) > L.maxRanges) over('uid ranges', r.match.uid!.length, L.maxRanges);
    else if ((r.match.gid?.length ?? 0) > L.maxRanges) over('gid ranges', r.match.gid!.length, L.maxRanges);
    if (errors.length > problems) continue;
    for (const c of r.when.args) {
      if (c.kind === 'ranges' && c.ranges.length > L.maxRanges) over(`when.${c.name} ranges`, c.ranges.length, L.maxRanges);
      else if (c.kind !== 'ranges') {
        const vs = c.kind === 'values' ? c.values : c.globs;
        if (vs.length > L.maxValues) over(`when.${c.name} alternatives`, vs.length, L.maxValues);
        const long = vs.find((v) => bytes(v) > L.maxStringBytes);
        if (long !== undefined) over(`when.${c.name} "${long.slice(0, 40)}…" bytes`, bytes(long), L.maxStringBytes);
      }
    }
    const longExe = r.match.exe?.find((g) => bytes(g) > L.maxStringBytes);
    if (longExe !== undefined) over(`exe "${longExe.slice(0, 40)}…" bytes`, bytes(longExe), L.maxStringBytes);
    if (errors.length > problems) continue;
    const longest = Math.max(...ruleLines(r, r.index, undefined).map(bytes));
    if (longest > L.maxLineBytes) over('compiled table line bytes', longest, L.maxLineBytes);
    if (r.when.syscall !== undefined && (r.when.syscall === 'setgroups' || r.when.syscall === 'setgroups32') && r.when.args.some((c) => c.name === 'gids')) {
      errors.push(policyError('CONDITION_NOT_EVALUATED', `rule "${r.id}": the agent does not read setgroups' group list, so "gids" never holds there; decide setgroups by privilege (PRIV_CRED_SETGROUPS) or uid instead`, r.location));
    }
  }
  return errors;
}
