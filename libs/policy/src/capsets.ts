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


/**
 * Why a capability was granted: the rule (or `defaults` / `learn`) and the privileges it allows.
 * `exe` is set when the grant travels with programs (file capabilities) instead of the container.
 */
export interface CapabilityGrant {
  ruleId: string | null;
  source: 'rule' | 'defaults' | 'learn';
  privileges: string[];
  exe?: string[];
}

/**
 * A per-program grant: an allow rule scoped by `match.exe`. The runtime gives `capabilities` as
 * file capabilities (`security.capability`, permitted + effective) to every regular file of the
 * run's copy of the image that the rule's exe globs match; the container's own sets hold them
 * only in the bounding set.
 */
export interface ProgramGrant {
  ruleId: string;
  exe: string[];
  capabilities: string[];
  privileges: string[];
}

/** Securebits the container starts with (prctl PR_SET_SECUREBITS). */
export type Securebit = 'noroot' | 'noroot_locked';

export interface UntrappedPrivilege {
  capability: string;
  privilege: string;
  note: string;
}

export interface CapabilitySetsResult {
  /** What a process of the container holds after it execs a program without file capabilities. */
  sets: CapabilitySets;
  provenance: Record<string, CapabilityGrant[]>;
  untrapped: UntrappedPrivilege[];
  /** Grants that travel with programs (file capabilities), not with the container. */
  programs: ProgramGrant[];
  /** SECBIT_NOROOT(+_LOCKED) when there are per-program grants: uid 0 gets no automatic capabilities. */
  securebits: Securebit[];
  /** On unless file capabilities must work (they are ignored under no_new_privs). */
  noNewPrivileges: boolean;
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
 * first. A grant from a rule scoped by `match.exe` travels with those programs (file
 * capabilities, see ProgramGrant) and is held by the container only in its bounding set; every
 * other grant is container-wide. The sets are what the kernel gives a process of uid
 * `container.uid` after execve (see startSets), so capget and `capsh --print` agree with them.
 */
export function capabilitySets(policy: Policy, container: ContainerSubject): CapabilitySetsResult {
  const grants = new Map<string, CapabilityGrant[]>();
  const grant = (cap: string, g: { ruleId: string | null; source: CapabilityGrant['source']; exe?: readonly string[] }, priv: string) => {
    const l = grants.get(cap) ?? [];
    let e = l.find((x) => x.ruleId === g.ruleId && x.source === g.source);
    if (!e) {
      e = { ruleId: g.ruleId, source: g.source, privileges: [], ...(g.exe ? { exe: [...g.exe] } : {}) };
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
        const exe = programScoped(a) ? a.match.exe : undefined;
        for (const cap of capsGrantedVia(a, p.name)) grant(cap, { ruleId: a.id, source: 'rule', exe }, p.name);
      }
    }
    if (policy.defaults.action === 'allow') {
      for (const p of PRIV_LIST) {
        if (reachable.some((d) => d.action !== 'allow' && shadows(d, null, p.number))) continue;
        for (const cap of capsOfPriv(p.name)) grant(cap, { ruleId: null, source: 'defaults' }, p.name);
      }
    }
  }
  const byNumber = (a: string, b: string) => capabilityNumber(a)! - capabilityNumber(b)!;
  const granted = CAP_NAMES.filter((c) => grants.has(c)).sort(byNumber);
  const provenance: Record<string, CapabilityGrant[]> = {};
  for (const c of granted) provenance[c] = grants.get(c)!;
  // container-wide: some grant without exe; per-program: only exe-scoped grants
  const wide = granted.filter((c) => grants.get(c)!.some((g) => !g.exe));
  const programs: ProgramGrant[] = [];
  for (const c of granted) {
    if (wide.includes(c)) continue;
    for (const g of grants.get(c)!) {
      let pg = programs.find((x) => x.ruleId === g.ruleId);
      if (!pg) programs.push((pg = { ruleId: g.ruleId!, exe: [...g.exe!], capabilities: [], privileges: [] }));
      pg.capabilities.push(c);
      for (const p of g.privileges) if (!pg.privileges.includes(p)) pg.privileges.push(p);
    }
  }
  const untrapped: UntrappedPrivilege[] = [];
  for (const c of granted) {
    for (const pn of privsOfCap(c)) {
      const p = privilege(pn);
      if (p && !p.trappable) untrapped.push({ capability: c, privilege: p.name, note: p.untrappedNote ?? '' });
    }
  }
  return { sets: startSets(container.uid, wide, granted, programs.length > 0), provenance, untrapped, programs, securebits: programs.length > 0 ? ['noroot', 'noroot_locked'] : [], noNewPrivileges: programs.length === 0 };
}

/**
 * An allow rule scoped to programs: its grant becomes file capabilities on those programs. A rule
 * whose exe globs match any path (`*`, `**`, `/*`, `/**`) is container-wide.
 */
function programScoped(r: PolicyRule): boolean {
  return !!r.match.exe && !r.match.exe.some((g) => g === '*' || g === '**' || g === '/*' || g === '/**');
}

/**
 * What a process holds after execve of a program without file capabilities (capabilities(7)):
 * P'(permitted) = (P(inh) & F(inh)) | (F(perm) & P(bnd)) | P'(ambient), and for uid 0 without
 * SECBIT_NOROOT the file sets count as all ones, so root gets its bounding set.
 * - root, no per-program grants: bounding = permitted = effective = the grants; inheritable and
 *   ambient empty (as Docker).
 * - non-root, or any per-program grant (SECBIT_NOROOT, so root's bounding set does not hand the
 *   per-program capabilities to every program): the container-wide grants ride in ambient (which
 *   needs them in inheritable too); bounding also holds the per-program capabilities, which only a
 *   file capability brings into a program's permitted set.
 */
function startSets(uid: number, wide: string[], bounding: string[], noRoot: boolean): CapabilitySets {
  if (uid === 0 && !noRoot) return { bounding: [...bounding], permitted: [...wide], effective: [...wide], inheritable: [], ambient: [] };
  return { bounding: [...bounding], permitted: [...wide], effective: [...wide], inheritable: [...wide], ambient: [...wide] };
}

/**
 * The sets of a process of the container running `exe` (a path after symlinks): the start sets,
 * plus the file capabilities of the per-program grants whose globs match it. Such a program gets
 * P'(permitted) = (P(inh) & F(inh)) | (F(perm) & P(bnd)); the runtime writes F(inh) = the
 * container-wide grants, so it keeps them, but its ambient set is cleared (capabilities(7)).
 */
export function programSets(r: CapabilitySetsResult, exe: string): CapabilitySets & { fileCapabilities: string[] } {
  const file = new Set(r.programs.filter((p) => p.exe.some((g) => globMatch(g, exe))).flatMap((p) => p.capabilities));
  if (file.size === 0) return { ...r.sets, fileCapabilities: [] };
  const wide = r.sets.inheritable; // per-program grants exist, so the container-wide ones ride in inheritable + ambient
  const perm = CAP_NAMES.filter((c) => wide.includes(c) || (file.has(c) && r.sets.bounding.includes(c))).sort((a, b) => capabilityNumber(a)! - capabilityNumber(b)!);
  return { bounding: [...r.sets.bounding], permitted: perm, effective: [...perm], inheritable: [...r.sets.inheritable], ambient: [], fileCapabilities: [...file].sort((a, b) => capabilityNumber(a)! - capabilityNumber(b)!) };
}
