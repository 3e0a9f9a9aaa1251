/**
 * The one place libs/policy reads libs/abi. Everything else in this lib imports from here, so
 * a change in the abi surface is absorbed in one file.
 */
import {
  CAPABILITIES,
  PRIVILEGES,
  capabilitiesOfPrivilege,
  capabilityByName,
  classify,
  privilegeByName,
  privilegesOfCapability,
  syscallNumber,
  type Arch,
} from '@capulator/abi';

export type { Arch };

export interface PrivInfo {
  name: string;
  number: number;
  trappable: boolean;
  untrappedNote?: string;
}

export const PRIV_LIST: readonly PrivInfo[] = PRIVILEGES;
export const PRIV_NAMES: readonly string[] = PRIVILEGES.map((p) => p.name);
export const CAP_NAMES: readonly string[] = CAPABILITIES.map((c) => c.name);

const privByName = new Map(PRIVILEGES.map((p) => [p.name, p]));
const privByNumber = new Map(PRIVILEGES.map((p) => [p.number, p]));
const capNumber = new Map(CAPABILITIES.map((c) => [c.name, c.number]));
const capByNum = new Map(CAPABILITIES.map((c) => [c.number, c.name]));

/** Canonical privilege (aliases resolved, case-insensitive). */
export function privilege(name: string): PrivInfo | undefined {
  return privByName.get(name) ?? privilegeByName(name);
}
export function privilegeOfNumber(n: number): PrivInfo | undefined {
  return privByNumber.get(n);
}
export function capabilityNumber(name: string): number | undefined {
  return capNumber.get(name) ?? capabilityByName(name)?.number;
}
export function capabilityOfNumber(n: number): string | undefined {
  return capByNum.get(n);
}
export function canonicalCapability(name: string): string | undefined {
  return capabilityByName(name)?.name;
}

const privsOfCapCache = new Map<string, readonly string[]>();
export function privsOfCap(cap: string): readonly string[] {
  let v = privsOfCapCache.get(cap);
  if (!v) {
    v = Object.freeze(privilegesOfCapability(cap));
    privsOfCapCache.set(cap, v);
  }
  return v;
}
const capsOfPrivCache = new Map<string, readonly string[]>();
export function capsOfPriv(priv: string): readonly string[] {
  let v = capsOfPrivCache.get(priv);
  if (!v) {
    v = Object.freeze(capabilitiesOfPrivilege(priv));
    capsOfPrivCache.set(priv, v);
  }
  return v;
}

export function isKnownSyscall(name: string): boolean {
  return syscallNumber('x86_64', name) !== undefined || syscallNumber('aarch64', name) !== undefined;
}

export interface RequestClassification {
  privileges: string[];
  capability: string | null;
  unprivileged: boolean;
}

export function classifySyscall(
  arch: Arch,
  syscall: string,
  args: Record<string, unknown>,
  subject: { uid: number; euid: number; suid: number; gid: number; egid: number; sgid: number } | undefined,
): RequestClassification {
  try {
    const c = classify(arch, { syscall, args: args as never, subject } as never);
    return { privileges: [...c.privileges], capability: c.capability, unprivileged: c.unprivileged };
  } catch {
    return { privileges: [], capability: null, unprivileged: false };
  }
}
