import { capsOfPriv, privilege } from './abi';
import { capabilitySets, privilegesReachedBy, type CapabilitySetsResult, type ContainerSubject } from './capsets';
import type { Policy, PolicyRule } from './model';

/**
 * Which layer of the decision model (DESIGN.md) enforces a rule:
 * - `kernel-sets`: the container's capability sets (a capability no rule grants is absent, so
 *   Linux refuses it; a granted one is held container-wide);
 * - `kernel-file-capability`: the grant travels with the programs `match.exe` names (file
 *   capabilities on the run's copy of each);
 * - `agent-refine`: the seccomp agent decides trapped calls by their arguments (`when`);
 * - `agent-emulate`: the agent answers the call itself;
 * - `agent-deny`: the agent refuses trapped calls the sets would let through;
 * - `recorded-only`: no layer can enforce it (the privilege is not trapped); the kernel's record
 *   shows its use.
 */
export type EnforcementLayer = 'kernel-sets' | 'kernel-file-capability' | 'agent-refine' | 'agent-emulate' | 'agent-deny' | 'recorded-only';

export interface Enforcement {
  layer: EnforcementLayer;
  /** e.g. "kernel (file capability on /usr/bin/ping)" */
  text: string;
  /** programs (file capability), argument names (refine), or privileges (agent-deny, recorded-only) */
  detail: string[];
}

export interface RuleEnforcement {
  ruleId: string;
  action: PolicyRule['action'];
  enforcedBy: Enforcement[];
}

const TEXT: Record<EnforcementLayer, (d: string[]) => string> = {
  'kernel-sets': () => 'kernel (sets)',
  'kernel-file-capability': (d) => `kernel (file capability on ${d.join(', ')})`,
  'agent-refine': (d) => `agent (argument refinement: ${d.join(', ')})`,
  'agent-emulate': () => 'agent (emulate)',
  'agent-deny': (d) => `agent (deny: ${d.join(', ')})`,
  'recorded-only': (d) => `recorded only / not enforceable (${d.join(', ')})`,
};

const layer = (l: EnforcementLayer, detail: string[] = []): Enforcement => ({ layer: l, text: TEXT[l](detail), detail });

/** "kernel (sets); agent (argument refinement: port)" */
export function enforcementText(e: readonly Enforcement[]): string {
  return e.map((x) => x.text).join('; ') || 'nothing (the rule grants and decides nothing here)';
}

/**
 * Which layers enforce each rule of `policy` for a container of `container` (uid 0 by default).
 * Rules whose uid/gid/image/labels cannot match the container are enforced by nothing for it.
 */
export function ruleEnforcement(policy: Policy, container: ContainerSubject = { uid: 0, gid: 0 }, caps?: CapabilitySetsResult): RuleEnforcement[] {
  const c = caps ?? capabilitySets(policy, container);
  const held = new Set(c.sets.bounding);
  return policy.rules.map((r) => {
    const out: Enforcement[] = [];
    if (r.action === 'emulate') out.push(layer('agent-emulate'));
    else if (r.action === 'allow') {
      const wide = Object.values(c.provenance).some((gs) => gs.some((g) => g.ruleId === r.id && !g.exe));
      const program = c.programs.find((p) => p.ruleId === r.id);
      const viaProgram = Object.values(c.provenance).some((gs) => gs.some((g) => g.ruleId === r.id && g.exe));
      if (wide) out.push(layer('kernel-sets'));
      else if (program) out.push(layer('kernel-file-capability', program.exe));
      else if (viaProgram) out.push(layer('kernel-sets')); // the same capability is also granted container-wide
      // a file capability does not know uids: whoever runs the program holds it
      const ids = program ? (['uid', 'gid'] as const).filter((k) => r.match[k] !== undefined) : [];
      if (r.when.args.length > 0 || ids.length > 0 || (r.when.syscall !== undefined && (wide || program || viaProgram))) {
        const reached = privilegesReachedBy(r);
        const untrapped = reached.filter((p) => privilege(p)?.trappable === false && capsOfPriv(p).some((x) => held.has(x)));
        const names = [...ids, ...(r.when.args.length > 0 ? r.when.args.map((a) => a.name) : r.when.syscall !== undefined ? ['syscall'] : [])];
        if (reached.some((p) => privilege(p)?.trappable !== false)) out.push(layer('agent-refine', names));
        if (untrapped.length > 0) out.push(layer('recorded-only', untrapped));
      }
    } else {
      // deny: the kernel refuses what no set holds; what a set holds only the agent can refuse
      const reached = privilegesReachedBy(r);
      const heldPrivs = reached.filter((p) => capsOfPriv(p).some((x) => held.has(x)));
      if (heldPrivs.length < reached.length || reached.length === 0) out.push(layer('kernel-sets'));
      const trapped = heldPrivs.filter((p) => privilege(p)?.trappable !== false);
      const untrapped = heldPrivs.filter((p) => privilege(p)?.trappable === false);
      if (trapped.length > 0) out.push(layer('agent-deny', abbreviate(trapped)));
      if (untrapped.length > 0) out.push(layer('recorded-only', abbreviate(untrapped)));
    }
    return { ruleId: r.id, action: r.action, enforcedBy: out };
  });
}

function abbreviate(l: string[]): string[] {
  return l.length > 4 ? [...l.slice(0, 4), `… ${l.length} privileges`] : l;
}
