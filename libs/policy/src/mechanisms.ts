import { privsOfCap } from './abi';
import type { Action } from './model';
import { lookup, parseTable, type CompiledTable, type ParsedTable } from './table';

/**
 * Which enforcement mechanisms a compiled policy needs (issue 15 "pay the tax only where it buys
 * something"). The kernel enforces the capability sets by itself and the kernel record
 * (tp_btf/cap_capable) sees every capability check; a seccomp notification filter, with the
 * agent behind it, is needed only for what neither can do:
 * - argument-level refinement (`when:` conditions, rules naming a syscall);
 * - emulation (answering without running the call) and errnos other than the kernel's EPERM;
 * - rules for some users only, and denials for some programs only (file capabilities, which scope an
 *   allow to a program, know no uid and cannot take a capability away);
 * - recording capget/capset (they make no capability check: only the syscall itself shows them);
 * - learn mode (records every trapped call).
 * Every filter, even one trapping only capget, moves every syscall of the container to the slow
 * entry path (~43 ns each on Linux 6.18), so a policy that needs none of the above gets none.
 */
export interface SeccompNeed {
  needed: boolean;
  /** why, one short phrase per reason (empty when not needed) */
  reasons: string[];
}

function parsed(t: CompiledTable | ParsedTable): ParsedTable {
  if (Array.isArray((t as ParsedTable).rules)) return t as ParsedTable;
  const r = parseTable((t as CompiledTable).text);
  if (!r.table) throw new Error(`invalid compiled table: line ${r.errors[0]?.line}: ${r.errors[0]?.message}`);
  return r.table;
}

export function seccompNeed(table: CompiledTable | ParsedTable): SeccompNeed {
  const t = parsed(table);
  const reasons: string[] = [];
  if (t.learn) reasons.push('learn mode records every trapped call');
  if (t.defaults.action === 'emulate') reasons.push('the default emulates');
  if (t.defaults.action === 'deny' && t.defaults.errno !== 1) reasons.push(`the default denies with errno ${t.defaults.errno}, not the kernel's EPERM`);
  for (const r of t.rules) {
    const quiet = (r.syscall === 'capget' || r.syscall === 'capset') && r.conds.length === 0 && r.action === 'allow' && r.audit === 'none';
    if (quiet) continue; // "do not record capget/capset": needs nothing
    if (r.action === 'emulate') reasons.push(`rule ${r.id} emulates`);
    else if (r.action === 'deny' && r.errno !== 1) reasons.push(`rule ${r.id} denies with errno ${r.errno}, not the kernel's EPERM`);
    if (r.conds.length > 0) reasons.push(`rule ${r.id} has argument conditions`);
    if (r.syscall !== undefined) reasons.push(`rule ${r.id} names syscall ${r.syscall}`);
    // an allow for some programs is a file capability on the run's copy of them (the kernel enforces
    // it); a deny for some programs, or any rule for some users, only the agent can refine
    if (r.uid || r.gid) reasons.push(`rule ${r.id} applies to some users only`);
    else if ((r.exe || r.exeExact) && r.action !== 'allow') reasons.push(`rule ${r.id} ${r.action === 'deny' ? 'denies' : 'emulates'} for some programs only`);
  }
  for (const syscall of ['capget', 'capset']) {
    const d = lookup(t, { syscall, args: {} });
    if (d.audit || d.decision !== 'allow') reasons.push(`${syscall} is ${d.decision === 'allow' ? 'recorded' : d.decision + 'd'} (it makes no capability check; only a seccomp filter sees it)`);
  }
  const uniq = [...new Set(reasons)];
  return { needed: uniq.length > 0, reasons: uniq };
}

/** The policy's decision for a capability the kernel checked, for one subject. */
export interface CapabilityDecision {
  decision: Action;
  ruleId: string | null;
  privileges: string[];
  audit: boolean;
}

/**
 * The policy's decision for a kernel capability check (no syscall arguments are known): the
 * capability stands for several priv(9) privileges (libs/abi cap→priv map); it is allowed when
 * the policy allows any of them for this program and user (the kernel cannot tell which one the
 * check served), and denied when it denies them all. `ruleId` is the rule that decided (the first
 * allowing one, else the first denying one; null = the default).
 */
export function capabilityDecision(
  table: CompiledTable | ParsedTable,
  capability: string,
  subject: { exe: string; uid: number; gid: number },
): CapabilityDecision {
  const t = parsed(table);
  const privileges = [...privsOfCap(capability)];
  let denied: CapabilityDecision | undefined;
  for (const privilege of privileges) {
    const d = lookup(t, { privilege, exe: subject.exe, uid: subject.uid, gid: subject.gid });
    if (d.decision === 'allow') return { decision: 'allow', ruleId: d.ruleId, privileges, audit: d.audit };
    denied ??= { decision: d.decision, ruleId: d.ruleId, privileges, audit: d.audit };
  }
  return denied ?? { decision: t.defaults.action, ruleId: null, privileges, audit: t.defaults.audit !== 'none' };
}
