import { capsOfPriv, classifySyscall, privilege } from './abi';
import type { ArgValue, DecisionRequest } from './model';

/** A request after classification: what both `evaluate` and `lookup` match rules against. */
export interface PreparedRequest {
  privileges: string[];
  privilegeIds: number[];
  /** Capabilities the request concerns when it carries no privilege (capset `caps`, capability prctls). */
  capabilities: string[];
  capability: string | null;
  unprivileged: boolean;
  syscall?: string;
  args: Record<string, ArgValue>;
}

export const NO_ARGS: Record<string, ArgValue> = Object.freeze({}) as Record<string, ArgValue>;

const EMPTY: string[] = Object.freeze([]) as unknown as string[];
const byPrivilege = new Map<string, { privileges: string[]; privilegeIds: number[]; capability: string | null }>();

/** Classification of a privilege request, memoised per name (a pure function of the name). */
export function privilegeInfo(name: string): { privileges: string[]; privilegeIds: number[]; capability: string | null } {
  let v = byPrivilege.get(name);
  if (!v) {
    const p = privilege(name);
    const caps = p ? capsOfPriv(p.name) : [];
    v = {
      privileges: Object.freeze([p ? p.name : name]) as unknown as string[],
      privilegeIds: Object.freeze(p ? [p.number] : []) as unknown as number[],
      capability: caps.length > 0 ? caps[0] : null,
    };
    if (byPrivilege.size < 10_000) byPrivilege.set(name, v);
  }
  return v;
}

export function prepareRequest(req: DecisionRequest): PreparedRequest {
  const args = req.args ?? NO_ARGS;
  if (typeof req.privilege === 'string') {
    const info = privilegeInfo(req.privilege);
    return {
      privileges: info.privileges,
      privilegeIds: info.privilegeIds,
      capabilities: EMPTY,
      capability: info.capability,
      unprivileged: false,
      syscall: req.syscall,
      args,
    };
  }
  if (typeof req.syscall !== 'string') {
    return { privileges: [], privilegeIds: [], capabilities: [], capability: null, unprivileged: false, args };
  }
  const subject =
    req.subject ??
    (typeof req.uid === 'number' && typeof req.gid === 'number'
      ? { uid: req.uid, euid: req.uid, suid: req.uid, gid: req.gid, egid: req.gid, sgid: req.gid }
      : undefined);
  const c = classifySyscall(req.arch ?? 'x86_64', req.syscall, args, subject);
  if (c.unprivileged) {
    return { privileges: c.privileges, privilegeIds: [], capabilities: [], capability: c.capability, unprivileged: true, syscall: req.syscall, args };
  }
  const ids: number[] = [];
  const names: string[] = [];
  for (const n of c.privileges) {
    const p = privilege(n);
    names.push(p ? p.name : n);
    if (p) ids.push(p.number);
  }
  // A capability with no privilege in this request (e.g. CAP_SETPCAP for PR_CAPBSET_DROP) is matched by capability.
  const caps = names.length === 0 && c.capability ? [c.capability] : [];
  return { privileges: names, privilegeIds: ids, capabilities: caps, capability: c.capability, unprivileged: false, syscall: req.syscall, args };
}
