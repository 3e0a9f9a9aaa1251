import { TABLE_LIMITS } from './limits';
import { createHash } from 'node:crypto';
import { describeNode, type AstMap, type AstNode, type AstScalar, type PolicyAst } from './ast';
import { CAP_NAMES, PRIV_LIST, PRIV_NAMES, canonicalCapability, capsOfPriv, isKnownSyscall, privilege, privsOfCap } from './abi';
import { ERRNO, MAX_ERRNO } from './errno';
import { globCovers, globError, globMatch, isGlob } from './glob';
import {
  ACTIONS,
  AUDIT_LEVELS,
  type Action,
  type ArgCondition,
  type AuditLevel,
  type Policy,
  type PolicyDefaults,
  type PolicyRule,
} from './model';
import { printable } from './confusables';
import { MAX_ERRORS, didYouMean, policyError, sortErrors, type PolicyError, type PolicyErrorCode, type SourceLocation } from './policy.errors';
import { parseRanges, rangesCover, UINT32_MAX } from './ranges';

export const API_VERSION = 'capulator/v1';
export const KIND = 'Policy';

const TOP_KEYS = ['apiVersion', 'kind', 'metadata', 'defaults', 'learn', 'include', 'rules'];
const METADATA_KEYS = ['name', 'description', 'version', 'labels'];
const DEFAULTS_KEYS = ['action', 'audit', 'errno', 'return'];
const RULE_KEYS = ['id', 'description', 'match', 'privileges', 'capabilities', 'when', 'action', 'errno', 'return', 'audit'];
const MATCH_KEYS = ['exe', 'uid', 'gid', 'image', 'labels'];

type ArgSpec =
  | { kind: 'ranges'; max: number; doc: string }
  | { kind: 'values'; prefixes?: string[]; doc: string }
  | { kind: 'globs'; doc: string }
  | { kind: 'caps'; doc: string };

/** The decoded argument names of docs/contracts.md, and what a condition on each looks like. */
export const WHEN_ARGS: Readonly<Record<string, ArgSpec>> = {
  family: { kind: 'values', prefixes: ['AF_'], doc: 'socket address family, e.g. AF_INET' },
  type: { kind: 'values', prefixes: ['SOCK_'], doc: 'socket type without flags, e.g. SOCK_RAW' },
  protocol: { kind: 'ranges', max: 65535, doc: 'socket protocol number' },
  port: { kind: 'ranges', max: 65535, doc: 'port ranges, e.g. "80,443" or "1-1023"' },
  addr: { kind: 'values', doc: 'address as text' },
  level: { kind: 'values', prefixes: ['SOL_', 'IPPROTO_'], doc: 'setsockopt level, e.g. SOL_IP' },
  option: { kind: 'values', doc: 'setsockopt option, e.g. IP_RECVERR' },
  uid: { kind: 'ranges', max: UINT32_MAX, doc: 'target uid ranges' },
  gid: { kind: 'ranges', max: UINT32_MAX, doc: 'target gid ranges' },
  uids: { kind: 'ranges', max: UINT32_MAX, doc: 'setres*uid targets: every one must be in range' },
  gids: { kind: 'ranges', max: UINT32_MAX, doc: 'setres*gid/setgroups targets: every one must be in range' },
  mode: { kind: 'ranges', max: UINT32_MAX, doc: 'mknod mode (decimal) ranges' },
  path: { kind: 'globs', doc: 'path globs' },
  target_pid: { kind: 'ranges', max: UINT32_MAX, doc: 'target pid ranges' },
  signal: { kind: 'ranges', max: 64, doc: 'signal number ranges' },
  request: { kind: 'values', doc: 'ioctl request name, e.g. SIOCSIFFLAGS' },
  resource: { kind: 'values', prefixes: ['RLIMIT_'], doc: 'rlimit name, e.g. RLIMIT_NOFILE' },
  option_name: { kind: 'values', prefixes: ['PR_'], doc: 'prctl option, e.g. PR_CAPBSET_DROP' },
  caps: { kind: 'caps', doc: 'capset: capabilities being added; every one must be listed' },
};

/** Syscalls whose result is a file descriptor or a new process: emulating them would hand back a fake one. */
const FD_RESULT_SYSCALLS = new Set(['socket', 'socketpair', 'open', 'openat', 'openat2', 'open_by_handle_at', 'accept', 'accept4', 'clone', 'clone3', 'fork', 'vfork', 'execve', 'execveat', 'bpf', 'perf_event_open']);
const SOCKET_PRIVILEGES = new Set(['PRIV_NETINET_RAW', 'PRIV_NET_RAW', 'PRIV_NETBLUETOOTH_RAW']);

export interface IncludeRef {
  path: string;
  location: SourceLocation;
}

/** What one file contributes, after its own checks. */
export interface AnalyzedDocument {
  file: string;
  name?: string;
  description?: string;
  version?: string;
  learn: boolean;
  defaults: PolicyDefaults;
  setsDefaults?: SourceLocation;
  setsLearn?: SourceLocation;
  includes: IncludeRef[];
  rules: PolicyRule[];
}

class Ctx {
  errors: PolicyError[] = [];
  constructor(readonly file: string) {}
  err(code: PolicyErrorCode, message: string, loc: SourceLocation): void {
    if (this.errors.length < MAX_ERRORS * 4) this.errors.push(policyError(code, message, loc, 'error'));
  }
  warn(code: PolicyErrorCode, message: string, loc: SourceLocation): void {
    if (this.errors.length < MAX_ERRORS * 4) this.errors.push(policyError(code, message, loc, 'warning'));
  }
  map(n: AstNode, what: string): AstMap | undefined {
    if (n.kind === 'map') return n;
    this.err('WRONG_TYPE', `${what} must be a mapping, not ${describeNode(n)}`, n.loc);
    return undefined;
  }
  keys(m: AstMap, allowed: string[], where: string): void {
    for (const e of m.entries) {
      if (!allowed.includes(e.key)) {
        this.err('UNKNOWN_KEY', `unknown key "${printable(e.key)}" in ${where}${didYouMean(e.key, allowed, e.keyLoc.col)} (allowed: ${allowed.join(', ')})`, e.keyLoc);
      }
    }
  }
  str(n: AstNode, what: string): string | undefined {
    if (n.kind === 'scalar' && typeof n.value === 'string') return n.value;
    if (n.kind === 'scalar' && typeof n.value === 'number' && what.endsWith('(name)')) return String(n.value);
    this.err('WRONG_TYPE', `${what} must be a string, not ${describeNode(n)}`, n.loc);
    return undefined;
  }
  /** A string or a list of strings. */
  strings(n: AstNode, what: string): Array<{ value: string; loc: SourceLocation; valueCol: number }> | undefined {
    const items = n.kind === 'seq' ? n.items : [n];
    if (n.kind === 'seq' && n.items.length === 0) {
      this.err('BAD_VALUE', `${what} is an empty list; list at least one value or remove the key`, n.loc);
      return undefined;
    }
    const out = [];
    for (const it of items) {
      if (it.kind === 'scalar' && (typeof it.value === 'string' || typeof it.value === 'number') && String(it.value) !== '') out.push({ value: String(it.value), loc: it.loc, valueCol: it.loc.col + (it.quoted ? 1 : 0) });
      else {
        this.err('WRONG_TYPE', `${what} must be a string or a list of strings; found ${describeNode(it)}`, it.loc);
        return undefined;
      }
    }
    return out;
  }
}

function scalarValue(n: AstNode): AstScalar['value'] | undefined {
  return n.kind === 'scalar' ? n.value : undefined;
}

function rangesOf(ctx: Ctx, n: AstNode, what: string, max: number) {
  let raw: unknown;
  if (n.kind === 'scalar') raw = n.value;
  else if (n.kind === 'seq') raw = n.items.map((i) => (i.kind === 'scalar' ? i.value : undefined));
  else {
    ctx.err('WRONG_TYPE', `${what} must be a number or a range string like "0-999,65534", not a mapping`, n.loc);
    return undefined;
  }
  const r = parseRanges(raw, max);
  if (r.error) {
    ctx.err('BAD_RANGE', `${what}: ${r.error}`, n.loc);
    return undefined;
  }
  return r.ranges;
}

function errnoOf(ctx: Ctx, n: AstNode): number | undefined {
  const v = scalarValue(n);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 1 && v <= MAX_ERRNO) return v;
    ctx.err('BAD_ERRNO', `errno ${v} is out of range; use a name like EPERM or EACCES, or a number 1-${MAX_ERRNO}`, n.loc);
    return undefined;
  }
  if (typeof v === 'string') {
    const up = v.toUpperCase();
    if (ERRNO[up] !== undefined) return ERRNO[up];
    ctx.err('BAD_ERRNO', `unknown errno "${v}"${didYouMean(up, Object.keys(ERRNO))}`, n.loc);
    return undefined;
  }
  ctx.err('BAD_ERRNO', `errno must be a name like EPERM or a number, not ${describeNode(n)}`, n.loc);
  return undefined;
}

function returnOf(ctx: Ctx, n: AstNode): number | undefined {
  const v = scalarValue(n);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= -2147483648 && v <= 2147483647) return v;
  ctx.err('BAD_RETURN', `return must be an integer between -2147483648 and 2147483647, not ${describeNode(n)}`, n.loc);
  return undefined;
}

function enumOf<T extends string>(ctx: Ctx, n: AstNode, what: string, allowed: readonly T[]): T | undefined {
  const v = scalarValue(n);
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  const shown = typeof v === 'string' ? `"${v}"` : describeNode(n);
  ctx.err('BAD_VALUE', `${what} is ${shown}; expected one of ${allowed.join(', ')}${typeof v === 'string' ? didYouMean(v, allowed) : ''}`, n.loc);
  return undefined;
}

function globsOf(ctx: Ctx, n: AstNode, what: string): string[] | undefined {
  const items = ctx.strings(n, what);
  if (!items) return undefined;
  let ok = true;
  for (const it of items) {
    const e = globError(it.value);
    if (e) {
      ctx.err('BAD_GLOB', `${what} "${it.value}": ${e}`, it.loc);
      ok = false;
    }
  }
  return ok ? items.map((i) => i.value) : undefined;
}

/** rule ids and policy names: as long as the agent's table takes (TABLE_LIMITS) */
const ID_RE = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,${TABLE_LIMITS.maxRuleIdBytes - 1}}$`);

function analyzeDefaults(ctx: Ctx, n: AstNode): PolicyDefaults {
  const d: PolicyDefaults = { action: 'deny', errno: 1, return: 0, audit: 'all' };
  const m = ctx.map(n, 'defaults');
  if (!m) return d;
  ctx.keys(m, DEFAULTS_KEYS, 'defaults');
  for (const e of m.entries) {
    if (e.key === 'action') d.action = enumOf(ctx, e.value, 'defaults.action', ACTIONS) ?? d.action;
    else if (e.key === 'audit') d.audit = enumOf(ctx, e.value, 'defaults.audit', AUDIT_LEVELS) ?? d.audit;
    else if (e.key === 'errno') d.errno = errnoOf(ctx, e.value) ?? d.errno;
    else if (e.key === 'return') d.return = returnOf(ctx, e.value) ?? d.return;
  }
  return d;
}

/** A list of privilege or capability names: exact names (canonicalised) and globs over the catalogue. */
const NAME_LISTS = {
  privileges: { noun: 'privilege', names: PRIV_NAMES, canonical: (v: string) => privilege(v)?.name, unknown: 'UNKNOWN_PRIVILEGE' },
  capabilities: { noun: 'capability', names: CAP_NAMES, canonical: canonicalCapability, unknown: 'UNKNOWN_CAPABILITY' },
} as const;

function analyzeNames(ctx: Ctx, n: AstNode, key: keyof typeof NAME_LISTS): string[] | undefined {
  const { noun, names, canonical, unknown } = NAME_LISTS[key];
  const items = ctx.strings(n, key);
  if (!items) return undefined;
  const out: string[] = [];
  for (const { value, loc, valueCol } of items) {
    if (isGlob(value)) {
      const ge = globError(value);
      if (ge) {
        ctx.err('BAD_GLOB', `${noun} glob "${value}": ${ge}`, loc);
        continue;
      }
      const hits = names.filter((x) => globMatch(value.toUpperCase(), x));
      if (hits.length === 0) ctx.err('GLOB_MATCHES_NOTHING', `${noun} glob "${value}" matches no ${noun}${didYouMean(value.replace(/[*?[\]\\]/g, ''), names)}`, loc);
      out.push(...hits);
    } else {
      const c = canonical(value);
      if (!c) ctx.err(unknown, `unknown ${noun} "${printable(value)}"${didYouMean(value, names, valueCol)}`, loc);
      else out.push(c);
    }
  }
  return out;
}

function analyzeWhen(ctx: Ctx, n: AstNode): PolicyRule['when'] | undefined {
  const m = ctx.map(n, 'when');
  if (!m) return undefined;
  const when: { syscall?: string; args: ArgCondition[] } = { args: [] };
  const allowed = ['syscall', ...Object.keys(WHEN_ARGS)];
  for (const e of m.entries) {
    if (e.key === 'syscall') {
      const s = ctx.str(e.value, 'when.syscall');
      if (s === undefined) continue;
      if (!isKnownSyscall(s)) ctx.err('UNKNOWN_SYSCALL', `unknown syscall "${s}"`, e.value.loc);
      else when.syscall = s;
      continue;
    }
    const spec = WHEN_ARGS[e.key];
    if (!spec) {
      ctx.err('UNKNOWN_ARGUMENT', `unknown argument "${e.key}" in when${didYouMean(e.key, allowed)} (arguments: ${allowed.join(', ')})`, e.keyLoc);
      continue;
    }
    const what = `when.${e.key}`;
    if (spec.kind === 'ranges') {
      const r = rangesOf(ctx, e.value, what, spec.max);
      if (r) when.args.push({ name: e.key, kind: 'ranges', ranges: r });
    } else if (spec.kind === 'globs') {
      const g = globsOf(ctx, e.value, what);
      if (g) when.args.push({ name: e.key, kind: 'globs', globs: g });
    } else if (spec.kind === 'caps') {
      const caps = analyzeNames(ctx, e.value, 'capabilities');
      if (caps) when.args.push({ name: e.key, kind: 'values', values: [...new Set(caps)] });
    } else {
      const items = ctx.strings(e.value, what);
      if (!items) continue;
      let ok = true;
      for (const it of items) {
        if (spec.prefixes && !spec.prefixes.some((p) => it.value.startsWith(p))) {
          ctx.err('BAD_VALUE', `${what} "${it.value}" should start with ${spec.prefixes.join(' or ')} (${spec.doc})`, it.loc);
          ok = false;
        }
      }
      if (ok) when.args.push({ name: e.key, kind: 'values', values: [...new Set(items.map((i) => i.value))] });
    }
  }
  when.args.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return when;
}

function analyzeRule(ctx: Ctx, n: AstNode, index: number, defaults: PolicyDefaults): PolicyRule | undefined {
  const m = ctx.map(n, `rules[${index}]`);
  if (!m) return undefined;
  const errorsBefore = ctx.errors.filter((e) => e.severity === 'error').length;
  ctx.keys(m, RULE_KEYS, 'a rule');
  const get = (k: string) => m.entries.find((e) => e.key === k);
  let ok = true;
  const idE = get('id');
  let id = `#${index}`;
  if (!idE) {
    ctx.err('MISSING_FIELD', `rule ${index + 1} has no "id"; give it a short name like "ping-raw"`, m.loc);
    ok = false;
  } else {
    const s = ctx.str(idE.value, 'rule id (name)');
    if (s !== undefined && !ID_RE.test(s)) {
      ctx.err('BAD_VALUE', `rule id "${s.slice(0, 60)}" must be 1-${TABLE_LIMITS.maxRuleIdBytes} characters of letters, digits, ".", "_", ":" or "-", starting with a letter or digit`, idE.value.loc);
      ok = false;
    } else if (s === undefined) ok = false;
    else id = s;
  }
  const actE = get('action');
  let action: Action = 'deny';
  if (!actE) {
    ctx.err('MISSING_FIELD', `rule ${idE ? `"${id}"` : index + 1} has no "action"; write action: allow, deny or emulate`, m.loc);
    ok = false;
  } else {
    const a = enumOf(ctx, actE.value, 'action', ACTIONS);
    if (a) action = a;
    else ok = false;
  }
  let description: string | undefined;
  const descE = get('description');
  if (descE) description = ctx.str(descE.value, 'description');

  const match: PolicyRule['match'] = {};
  const matchE = get('match');
  if (matchE) {
    const mm = ctx.map(matchE.value, 'match');
    if (mm) {
      ctx.keys(mm, MATCH_KEYS, 'match');
      for (const e of mm.entries) {
        if (e.key === 'uid' || e.key === 'gid') {
          const r = rangesOf(ctx, e.value, `match.${e.key}`, UINT32_MAX);
          if (r) match[e.key] = r;
          else ok = false;
        } else if (e.key === 'exe' || e.key === 'image') {
          const g = globsOf(ctx, e.value, `match.${e.key}`);
          if (g) match[e.key] = [...new Set(g)];
          else ok = false;
        } else if (e.key === 'labels') {
          const lm = ctx.map(e.value, 'match.labels');
          if (!lm) continue;
          const labels: Array<[string, string]> = [];
          for (const le of lm.entries) {
            const v = scalarValue(le.value);
            if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') labels.push([le.key, String(v)]);
            else ctx.err('WRONG_TYPE', `label "${le.key}" must have a string value, not ${describeNode(le.value)}`, le.value.loc);
          }
          labels.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
          match.labels = labels;
        }
      }
    } else ok = false;
  }

  let privs: string[] | null = null;
  let explicitCaps: string[] = [];
  let listedPrivs: string[] = [];
  const privE = get('privileges');
  const capE = get('capabilities');
  if (privE) {
    const p = analyzeNames(ctx, privE.value, 'privileges');
    if (p) {
      privs = p;
      listedPrivs = [...new Set(p)];
    } else ok = false;
  }
  if (capE) {
    const c = analyzeNames(ctx, capE.value, 'capabilities');
    if (c) {
      explicitCaps = c;
      privs = [...(privs ?? []), ...c.flatMap((cap) => privsOfCap(cap))];
    } else ok = false;
  }

  let when: PolicyRule['when'] = { args: [] };
  const whenE = get('when');
  if (whenE) {
    const w = analyzeWhen(ctx, whenE.value);
    if (w) when = w;
  }

  let errno = action === 'deny' ? defaults.errno : 1;
  let ret = action === 'emulate' ? defaults.return : 0;
  const errnoE = get('errno');
  if (errnoE) {
    const e = errnoOf(ctx, errnoE.value);
    if (e !== undefined) errno = e;
    if (action !== 'deny') ctx.warn('FIELD_IGNORED', `errno is used only by action: deny; rule "${id}" is ${action}`, errnoE.keyLoc);
  }
  const retE = get('return');
  if (retE) {
    const r = returnOf(ctx, retE.value);
    if (r !== undefined) ret = r;
    if (action !== 'emulate') ctx.warn('FIELD_IGNORED', `return is used only by action: emulate; rule "${id}" is ${action}`, retE.keyLoc);
  }
  let audit: AuditLevel = defaults.audit;
  const auditE = get('audit');
  let auditSet = false;
  if (auditE) {
    const a = enumOf(ctx, auditE.value, 'audit', AUDIT_LEVELS);
    if (a) {
      audit = a;
      auditSet = true;
    }
  }

  // Privileges: canonical, unique, ordered by number.
  let privileges: string[] | null = null;
  if (privs) {
    const uniq = [...new Set(privs)];
    uniq.sort((a, b) => (privilege(a)?.number ?? 0) - (privilege(b)?.number ?? 0));
    privileges = uniq;
  }
  let capabilities: string[] | null = null;
  if (privileges) {
    const caps = new Set(explicitCaps);
    for (const p of privileges) for (const c of capsOfPriv(p)) caps.add(c);
    capabilities = CAP_NAMES.filter((c) => caps.has(c));
  }

  // Emulate where it makes no sense.
  if (action === 'emulate') {
    const fdSyscall = when.syscall !== undefined && FD_RESULT_SYSCALLS.has(when.syscall);
    const sockPriv = when.syscall === undefined && privileges !== null && privileges.some((p) => SOCKET_PRIVILEGES.has(p));
    if (fdSyscall || sockPriv) {
      ctx.err(
        'EMULATE_FD_RESULT',
        `rule "${id}" emulates ${fdSyscall ? when.syscall + '()' : 'socket creation'}, which returns a file descriptor or process: a made-up return value would be used as one; use allow or deny`,
        actE!.value.loc,
      );
    } else if (when.syscall === undefined) {
      ctx.warn('EMULATE_WITHOUT_SYSCALL', `rule "${id}" emulates without when.syscall: one return value is applied to every syscall it matches; name the syscall`, actE!.value.loc);
    }
  }
  // Exe-scoped deny/emulate on privileges the agent cannot see per call. (An exe-scoped allow is
  // enforced by the kernel: the capability becomes a file capability of those programs.)
  if (match.exe && privileges && action !== 'allow') {
    const untrapped = privileges.filter((p) => privilege(p)?.trappable === false);
    if (untrapped.length > 0) {
      ctx.warn(
        'EXE_SCOPE_UNENFORCEABLE',
        `rule "${id}" is limited to some programs (match.exe) but ${untrapped.slice(0, 3).join(', ')}${untrapped.length > 3 ? ` and ${untrapped.length - 3} more` : ''} cannot be trapped per call; the programs it names can use it wherever the container holds it`,
        get('match')!.keyLoc,
      );
    }
  }
  void auditSet;
  // A rule with any error is left out, so that it cannot cause follow-on findings (shadowing).
  if (!ok || ctx.errors.filter((e) => e.severity === 'error').length > errorsBefore) return undefined;
  return {
    index,
    id,
    description,
    location: m.loc,
    action,
    errno,
    return: ret,
    audit,
    match,
    privileges,
    privilegeIds: privileges ? new Set(privileges.map((p) => privilege(p)!.number)) : null,
    capabilities,
    capabilitySet: capabilities ? new Set(capabilities) : null,
    when,
    listed: { privileges: listedPrivs, capabilities: [...new Set(explicitCaps)] },
  };
}

/** Checks one document (no include resolution) and builds its rules. */
export function analyzeDocument(ast: PolicyAst): { errors: PolicyError[]; doc?: AnalyzedDocument } {
  const ctx = new Ctx(ast.file);
  const root = ast.root;
  if (root.kind !== 'map') {
    ctx.err('NOT_A_MAPPING', `a policy is a YAML mapping starting with "apiVersion: ${API_VERSION}", not ${describeNode(root)}`, root.loc);
    return { errors: ctx.errors };
  }
  ctx.keys(root, TOP_KEYS, 'the policy');
  const get = (k: string) => root.entries.find((e) => e.key === k);
  const doc: AnalyzedDocument = { file: ast.file, learn: false, defaults: { action: 'deny', errno: 1, return: 0, audit: 'all' }, includes: [], rules: [] };

  const av = get('apiVersion');
  if (!av) ctx.err('MISSING_FIELD', `missing "apiVersion: ${API_VERSION}"`, root.loc);
  else if (scalarValue(av.value) !== API_VERSION) ctx.err('BAD_API_VERSION', `apiVersion is ${describeNode(av.value)}; expected ${API_VERSION}`, av.value.loc);
  const kind = get('kind');
  if (!kind) ctx.err('MISSING_FIELD', `missing "kind: ${KIND}"`, root.loc);
  else if (scalarValue(kind.value) !== KIND) ctx.err('BAD_KIND', `kind is ${describeNode(kind.value)}; expected ${KIND}`, kind.value.loc);

  const md = get('metadata');
  if (!md) ctx.err('MISSING_FIELD', 'missing "metadata" with at least a "name"', root.loc);
  else {
    const mm = ctx.map(md.value, 'metadata');
    if (mm) {
      ctx.keys(mm, METADATA_KEYS, 'metadata');
      const name = mm.entries.find((e) => e.key === 'name');
      if (!name) ctx.err('MISSING_FIELD', 'metadata has no "name"', mm.loc);
      else {
        const s = ctx.str(name.value, 'metadata.name (name)');
        if (s !== undefined && !ID_RE.test(s)) ctx.err('BAD_VALUE', `metadata.name "${s.slice(0, 60)}" must be 1-${TABLE_LIMITS.maxPolicyNameBytes} letters, digits, ".", "_", ":" or "-"`, name.value.loc);
        else doc.name = s;
      }
      for (const e of mm.entries) {
        if (e.key === 'description') doc.description = ctx.str(e.value, 'metadata.description');
        else if (e.key === 'version') {
          const s = ctx.str(e.value, 'metadata.version (name)');
          if (s !== undefined && !ID_RE.test(s)) ctx.err('BAD_VALUE', `metadata.version "${s.slice(0, 60)}" must be letters, digits, ".", "_", ":" or "-"`, e.value.loc);
          else doc.version = s;
        } else if (e.key === 'labels') ctx.map(e.value, 'metadata.labels');
      }
    }
  }
  const defaults = get('defaults');
  if (defaults) {
    doc.defaults = analyzeDefaults(ctx, defaults.value);
    doc.setsDefaults = defaults.keyLoc;
  }
  const learn = get('learn');
  if (learn) {
    const v = scalarValue(learn.value);
    if (typeof v !== 'boolean') ctx.err('WRONG_TYPE', `learn must be true or false, not ${describeNode(learn.value)}`, learn.value.loc);
    else doc.learn = v;
    doc.setsLearn = learn.keyLoc;
  }
  const inc = get('include');
  if (inc) {
    const items = ctx.strings(inc.value, 'include');
    if (items) doc.includes = items.map((i) => ({ path: i.value, location: i.loc }));
  }
  const rules = get('rules');
  if (rules) {
    if (rules.value.kind !== 'seq') {
      if (!(rules.value.kind === 'scalar' && rules.value.value === null)) ctx.err('WRONG_TYPE', `rules must be a list, not ${describeNode(rules.value)}`, rules.value.loc);
    } else {
      rules.value.items.forEach((r, i) => {
        const rule = analyzeRule(ctx, r, i, doc.defaults);
        if (rule) doc.rules.push(rule);
      });
    }
  }
  return { errors: ctx.errors, doc };
}

// ---- cross-rule checks -------------------------------------------------------------

/** Every string some glob of `inner` matches is matched by a glob of `outer` (undefined: no condition, anything). */
function globsInside(inner: readonly string[] | undefined, outer: readonly string[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((g) => outer.some((o) => o === g || globCovers(o, g)));
}

/** True when every request `later` matches is also matched by `earlier` (conservative: may say false). */
export function ruleCovers(earlier: PolicyRule, later: PolicyRule): boolean {
  const a = earlier.match;
  const b = later.match;
  if (a.uid && !(b.uid && rangesCover(a.uid, b.uid))) return false;
  if (a.gid && !(b.gid && rangesCover(a.gid, b.gid))) return false;
  if (!globsInside(b.exe, a.exe)) return false;
  if (!globsInside(b.image, a.image)) return false;
  if (a.labels && !(b.labels && a.labels.every(([k, v]) => b.labels!.some(([k2, v2]) => k === k2 && v === v2)))) return false;
  if (earlier.privilegeIds) {
    if (!later.privilegeIds) return false;
    for (const p of later.privilegeIds) if (!earlier.privilegeIds.has(p)) return false;
    for (const c of later.capabilitySet!) if (!earlier.capabilitySet!.has(c)) return false;
  } else if (!later.privilegeIds && later.when.syscall !== undefined && earlier.when.syscall === undefined) {
    return false; // `later` also decides unprivileged calls of its syscall; `earlier` does not
  }
  return whenCovers(earlier.when, later.when);
}

export function whenCovers(a: PolicyRule['when'], b: PolicyRule['when']): boolean {
  if (a.syscall !== undefined && a.syscall !== b.syscall) return false;
  for (const ca of a.args) {
    const cb = b.args.find((x) => x.name === ca.name);
    if (!cb || cb.kind !== ca.kind) return false;
    if (ca.kind === 'ranges' && cb.kind === 'ranges' && !rangesCover(ca.ranges, cb.ranges)) return false;
    if (ca.kind === 'values' && cb.kind === 'values' && !cb.values.every((v) => ca.values.includes(v))) return false;
    if (ca.kind === 'globs' && cb.kind === 'globs' && !globsInside(cb.globs, ca.globs)) return false;
  }
  return true;
}

export function crossRuleChecks(rules: readonly PolicyRule[]): PolicyError[] {
  const errors: PolicyError[] = [];
  const seen = new Map<string, PolicyRule>();
  for (const r of rules) {
    const prev = seen.get(r.id);
    if (prev) {
      errors.push(policyError('DUPLICATE_RULE_ID', `rule id "${r.id}" is already used at ${prev.location.file}:${prev.location.line}:${prev.location.col}; ids must be unique (decisions name them)`, r.location));
    } else seen.set(r.id, r);
  }
  for (let j = 0; j < rules.length; j++) {
    for (let i = 0; i < j; i++) {
      if (ruleCovers(rules[i], rules[j])) {
        const e = rules[i];
        errors.push(
          policyError(
            'RULE_SHADOWED',
            `rule "${rules[j].id}" can never match: rule "${e.id}" (${e.location.file}:${e.location.line}) comes first and matches everything it would; move it above or narrow "${e.id}"`,
            rules[j].location,
            'warning',
          ),
        );
        break;
      }
    }
  }
  return errors;
}

/** All static errors and warnings of one document, sorted by location. Includes are not followed. */
export function check(ast: PolicyAst): PolicyError[] {
  try {
    const { errors, doc } = analyzeDocument(ast);
    return sortErrors(doc ? [...errors, ...crossRuleChecks(doc.rules)] : errors).slice(0, MAX_ERRORS);
  } catch (err) {
    return [policyError('YAML_TOO_DEEP', `policy could not be checked: ${(err as Error)?.message ?? String(err)}`, { file: ast.file, line: 1, col: 1 })];
  }
}

// ---- assembling a Policy -----------------------------------------------------------

export function policyVersion(p: Omit<Policy, 'version' | 'files'>): string {
  const canon = JSON.stringify({
    name: p.name,
    learn: p.learn,
    defaults: p.defaults,
    rules: p.rules.map((r) => ({
      id: r.id,
      action: r.action,
      errno: r.errno,
      return: r.return,
      audit: r.audit,
      match: r.match,
      privileges: r.privileges,
      capabilities: r.capabilities,
      when: r.when,
    })),
  });
  return createHash('sha256').update(canon).digest('hex').slice(0, 16);
}

/** Freezes the policy deeply (plain objects and arrays; the Sets inside rules are private indexes). */
export function freezePolicy(p: Policy): Policy {
  const deep = (o: unknown): void => {
    if (o === null || typeof o !== 'object' || Object.isFrozen(o) || o instanceof Set || o instanceof Map) return;
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deep(v);
  };
  deep(p);
  return p;
}

export { PRIV_LIST };
