import type { CapabilitySets } from '@capulator/abi';
export type { CapabilitySets };
import { CAP_NAMES, PRIV_LIST, capabilityNumber, capsOfPriv, privilege, privsOfCap } from './abi';
import { globMatch } from './glob';
import type { Policy, PolicyRule } from './model';
import { inRanges } from './ranges';
import { whenCovers } from './analyze';

/** The process of a container, as far as start-time computation can know it. */
export interface ContainerSubject {
  uid: number;
  gid: number;
  image?: string;
  labels?: Record<string, string>;
}


/** Why a capability was granted: the rule (or `defaults` / `learn`) and the privileges it allows. */
export interface CapabilityGrant {
  ruleId: string | null;
  source: 'rule' | 'defaults' | 'learn';
  privileges: string[];
}

export interface UntrappedPrivilege {
  capability: string;
  privilege: string;
  note: string;
}

export interface CapabilitySetsResult {
  sets: CapabilitySets;
  provenance: Record<string, CapabilityGrant[]>;
  untrapped: UntrappedPrivilege[];
}

/**
 * Syscalls a rule may name in `when.syscall` without listing privileges, and the capabilities
 * their privileged forms need. Used to bound what such a rule grants at start time (an allow rule
 * with neither privileges nor a syscall grants every capability).
 */
const SYSCALL_CAPS: Readonly<Record<string, readonly string[]>> = {
  capset: ['CAP_SETPCAP'],
  prctl: ['CAP_SETPCAP'],
  mknod: ['CAP_MKNOD'],
  mknodat: ['CAP_MKNOD'],
  setuid: ['CAP_SETUID'], setreuid: ['CAP_SETUID'], setresuid: ['CAP_SETUID'], setfsuid: ['CAP_SETUID'],
  setgid: ['CAP_SETGID'], setregid: ['CAP_SETGID'], setresgid: ['CAP_SETGID'], setfsgid: ['CAP_SETGID'], setgroups: ['CAP_SETGID'],
  socket: ['CAP_NET_RAW', 'CAP_NET_ADMIN'],
  bind: ['CAP_NET_BIND_SERVICE'],
  setsockopt: ['CAP_NET_RAW', 'CAP_NET_ADMIN'],
  chown: ['CAP_CHOWN'], fchown: ['CAP_CHOWN'], lchown: ['CAP_CHOWN'], fchownat: ['CAP_CHOWN'],
  chroot: ['CAP_SYS_CHROOT'],
  mount: ['CAP_SYS_ADMIN'], umount2: ['CAP_SYS_ADMIN'], pivot_root: ['CAP_SYS_ADMIN'],
  sethostname: ['CAP_SYS_ADMIN'], setdomainname: ['CAP_SYS_ADMIN'],
  settimeofday: ['CAP_SYS_TIME'], clock_settime: ['CAP_SYS_TIME'], adjtimex: ['CAP_SYS_TIME'], clock_adjtime: ['CAP_SYS_TIME'],
  reboot: ['CAP_SYS_BOOT'],
  kill: ['CAP_KILL'], tkill: ['CAP_KILL'], tgkill: ['CAP_KILL'],
  setpriority: ['CAP_SYS_NICE'], sched_setscheduler: ['CAP_SYS_NICE'], sched_setparam: ['CAP_SYS_NICE'], sched_setaffinity: ['CAP_SYS_NICE'],
  setrlimit: ['CAP_SYS_RESOURCE'], prlimit64: ['CAP_SYS_RESOURCE'],
  ptrace: ['CAP_SYS_PTRACE'],
  init_module: ['CAP_SYS_MODULE'], finit_module: ['CAP_SYS_MODULE'], delete_module: ['CAP_SYS_MODULE'],
  ioctl: ['CAP_NET_ADMIN'],
  swapon: ['CAP_SYS_ADMIN'], swapoff: ['CAP_SYS_ADMIN'], acct: ['CAP_SYS_PACCT'], iopl: ['CAP_SYS_RAWIO'], ioperm: ['CAP_SYS_RAWIO'],
  syslog: ['CAP_SYSLOG'],
};

/** Privileges a rule can allow for some request. */
export function privilegesReachedBy(rule: PolicyRule): readonly string[] {
  if (rule.privileges) return rule.privileges;
  if (rule.when.syscall !== undefined) {
    const caps = SYSCALL_CAPS[rule.when.syscall] ?? [];
    return [...new Set(caps.flatMap((c) => privsOfCap(c)))];
  }
  return PRIV_LIST.map((p) => p.name);
}

/**
 * The capabilities an allow rule grants through privilege `priv`: a privilege listed under
 * `privileges` grants every capability it maps to (any-of: PRIV_VFS_READ grants both DAC
 * capabilities, and explain shows what rides along); a privilege reached through `capabilities`
 * grants only the listed capability, so allowing CAP_DAC_OVERRIDE does not hand out
 * CAP_DAC_READ_SEARCH (open_by_handle_at).
 */
function capsGrantedVia(rule: PolicyRule, priv: string): string[] {
  const caps = capsOfPriv(priv);
  if (!rule.privileges) {
    const viaSyscall = rule.when.syscall !== undefined ? SYSCALL_CAPS[rule.when.syscall] : undefined;
    return viaSyscall ? caps.filter((c) => viaSyscall.includes(c)) : [...caps];
  }
  if (rule.listed.privileges.includes(priv)) return [...caps];
  return caps.filter((c) => rule.listed.capabilities.includes(c));
}

function processMatches(rule: PolicyRule, c: ContainerSubject): boolean {
  const m = rule.match;
  if (m.uid && !inRanges(m.uid, c.uid)) return false;
  if (m.gid && !inRanges(m.gid, c.gid)) return false;
  if (m.image && !(c.image !== undefined && m.image.some((g) => globMatch(g, c.image!)))) return false;
  if (m.labels && !m.labels.every(([k, v]) => c.labels?.[k] === v)) return false;
  return true;
}

/** Does the non-allowing rule `d` decide `priv` for every call the allow rule `a` would allow? */
function shadows(d: PolicyRule, a: PolicyRule | null, priv: number): boolean {
  if (d.privilegeIds && !d.privilegeIds.has(priv)) return false;
  if (a === null) return !d.match.exe && d.when.syscall === undefined && d.when.args.length === 0;
  if (d.match.exe) {
    if (!a.match.exe) return false;
    if (!d.match.exe.includes('*') && !a.match.exe.every((g) => d.match.exe!.includes(g))) return false;
  }
  return whenCovers(d.when, a.when);
}

/**
 * Start-time capability sets for a container's processes. A capability is granted when an allow
 * rule that can match a process of this container (uid, gid, image, labels; not exe, not when)
 * allows one of its mapped privileges and no earlier deny/emulate rule takes every such call
 * first. bounding = permitted = effective = the granted capabilities; inheritable and ambient are
 * empty (as Docker since 20.10: nothing rides across execve of unaware programs).
 */
export function capabilitySets(policy: Policy, container: ContainerSubject): CapabilitySetsResult {
  const grants = new Map<string, CapabilityGrant[]>();
  const grant = (cap: string, g: { ruleId: string | null; source: CapabilityGrant['source'] }, priv: string) => {
    const l = grants.get(cap) ?? [];
    let e = l.find((x) => x.ruleId === g.ruleId && x.source === g.source);
    if (!e) {
      e = { ...g, privileges: [] };
      l.push(e);
    }
    if (!e.privileges.includes(priv)) e.privileges.push(priv);
    grants.set(cap, l);
  };
  if (policy.learn) {
    for (const cap of CAP_NAMES) for (const p of privsOfCap(cap)) grant(cap, { ruleId: null, source: 'learn' }, p);
  } else {
    const reachable = policy.rules.filter((r) => processMatches(r, container));
    for (let i = 0; i < reachable.length; i++) {
      const a = reachable[i];
      if (a.action !== 'allow') continue;
      for (const pname of privilegesReachedBy(a)) {
        const p = privilege(pname);
        if (!p) continue;
        let shadowed = false;
        for (let j = 0; j < i && !shadowed; j++) if (reachable[j].action !== 'allow' && shadows(reachable[j], a, p.number)) shadowed = true;
        if (shadowed) continue;
        for (const cap of capsGrantedVia(a, p.name)) grant(cap, { ruleId: a.id, source: 'rule' }, p.name);
      }
    }
    if (policy.defaults.action === 'allow') {
      for (const p of PRIV_LIST) {
        if (reachable.some((d) => d.action !== 'allow' && shadows(d, null, p.number))) continue;
        for (const cap of capsOfPriv(p.name)) grant(cap, { ruleId: null, source: 'defaults' }, p.name);
      }
    }
  }
  const granted = CAP_NAMES.filter((c) => grants.has(c)).sort((a, b) => capabilityNumber(a)! - capabilityNumber(b)!);
  const provenance: Record<string, CapabilityGrant[]> = {};
  for (const c of granted) provenance[c] = grants.get(c)!;
  const untrapped: UntrappedPrivilege[] = [];
  for (const c of granted) {
    for (const pn of privsOfCap(c)) {
      const p = privilege(pn);
      if (p && !p.trappable) untrapped.push({ capability: c, privilege: p.name, note: p.untrappedNote ?? '' });
    }
  }
  return {
    sets: { bounding: [...granted], permitted: [...granted], effective: [...granted], inheritable: [], ambient: [] },
    provenance,
    untrapped,
  };
}
