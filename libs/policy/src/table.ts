import { createHash } from 'node:crypto';
import { capabilityNumber, privilege } from './abi';
import { compileGlob, globError, globMatch, matchCompiled, type CompiledGlob } from './glob';
import { auditFor, type Action, type AuditLevel, type Decision, type DecisionRequest, type Policy, type PolicyRule } from './model';
import { TABLE_LIMITS } from './limits';
import { formatRanges, inRanges, normalizeRanges, type Ranges } from './ranges';
import { NO_ARGS, prepareRequest, privilegeInfo, type PreparedRequest } from './request';

export const TABLE_FORMAT = 1;

/** The compiled decision table the native agent loads (format: docs/contracts.md). */
export interface CompiledTable {
  format: 1;
  /** `sha256:<hex>` of every byte before the `end` line (the same hex is on that line). */
  hash: string;
  text: string;
  policy: string;
  version: string;
  rules: number;
}

// ---- encoding ----------------------------------------------------------------------

export function pctEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b >= 0x21 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function pctDecode(s: string): string | undefined {
  if (!/^(?:[\x21-\x24\x26-\x7e]|%[0-9A-Fa-f]{2})*$/.test(s)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(s.charCodeAt(i));
  }
  const buf = Buffer.from(bytes);
  const str = buf.toString('utf8');
  return Buffer.from(str, 'utf8').equals(buf) ? str : undefined;
}

// ---- compile -----------------------------------------------------------------------

export interface ContainerSelector {
  image?: string;
  labels?: Record<string, string>;
}

/** The table lines of one rule (exported for the limit checks, which measure them). */
export function ruleLines(r: PolicyRule, index: number, container: ContainerSelector | undefined): string[] {
  const L: string[] = [];
  L.push(`rule ${index} ${pctEncode(r.id)} ${r.action} ${r.errno} ${r.return} ${r.audit}`);
  if (r.match.uid) L.push(`m uid ${formatRanges(r.match.uid)}`);
  if (r.match.gid) L.push(`m gid ${formatRanges(r.match.gid)}`);
  for (const g of r.match.exe ?? []) L.push(`m exe ${pctEncode(g)}`);
  if (!container) {
    for (const g of r.match.image ?? []) L.push(`m image ${pctEncode(g)}`);
    for (const [k, v] of r.match.labels ?? []) L.push(`m label ${pctEncode(k).replace(/=/g, '%3D')}=${pctEncode(v)}`);
  }
  if (r.privileges) {
    L.push(['p', ...r.privileges.map((p) => String(privilege(p)!.number))].join(' '));
    L.push(['c', ...r.capabilities!.map((c) => String(capabilityNumber(c)!))].join(' '));
  }
  if (r.when.syscall !== undefined) L.push(`w syscall ${pctEncode(r.when.syscall)}`);
  for (const c of r.when.args) {
    if (c.kind === 'ranges') L.push(`w ${c.name} ${formatRanges(c.ranges)}`);
    else if (c.kind === 'values') L.push(`w ${c.name} ${c.values.map((v) => '=' + pctEncode(v)).join(' ')}`);
    else L.push(`w ${c.name} ${c.globs.map((g) => '~' + pctEncode(g)).join(' ')}`);
  }
  return L;
}

function globsMatchAny(globs: readonly string[], s: string | undefined): boolean {
  return s !== undefined && globs.some((g) => globMatch(g, s));
}

/** Can `r` match some process of this container? (image/labels only; unknown image matches no image condition) */
export function ruleFitsContainer(r: PolicyRule, c: ContainerSelector): boolean {
  if (r.match.image && !globsMatchAny(r.match.image, c.image)) return false;
  if (r.match.labels && !r.match.labels.every(([k, v]) => c.labels?.[k] === v)) return false;
  return true;
}

function build(policy: Policy, container: ContainerSelector | undefined): CompiledTable {
  const lines: string[] = [`CAPTABLE ${TABLE_FORMAT}`, `policy ${pctEncode(policy.name)} ${pctEncode(policy.version)}`];
  const d = policy.defaults;
  lines.push(`default ${d.action} ${d.errno} ${d.return} ${d.audit}`);
  if (policy.learn) lines.push('learn');
  const rules = container ? policy.rules.filter((r) => ruleFitsContainer(r, container)) : policy.rules;
  rules.forEach((r, i) => lines.push(...ruleLines(r, i, container)));
  const body = lines.join('\n') + '\n';
  const hex = createHash('sha256').update(body, 'utf8').digest('hex');
  return Object.freeze({ format: 1 as const, hash: `sha256:${hex}`, text: `${body}end ${hex}\n`, policy: policy.name, version: policy.version, rules: rules.length });
}

/** The whole policy as a table (image/label conditions kept as `m image`/`m label` lines). */
export function compile(policy: Policy): CompiledTable {
  return build(policy, undefined);
}

/** The table for one container: rules that cannot match its image/labels are left out. */
export function compileForContainer(policy: Policy, container: ContainerSelector): CompiledTable {
  return build(policy, container);
}

// ---- parse -------------------------------------------------------------------------

type TCond = { name: string; ranges?: Ranges; values?: string[]; globs?: CompiledGlob[] };
interface TRule {
  index: number;
  id: string;
  action: Action;
  errno: number;
  ret: number;
  audit: AuditLevel;
  uid?: Ranges;
  gid?: Ranges;
  exe?: CompiledGlob[];
  /** exe patterns without glob characters, compared as strings (fnmatch of a literal is equality) */
  exeExact?: Set<string>;
  image?: CompiledGlob[];
  labels?: Array<[string, string]>;
  privs: Set<number> | null;
  caps: Set<number> | null;
  syscall?: string;
  conds: TCond[];
}

export interface ParsedTable {
  format: 1;
  policy: string;
  version: string;
  hash: string;
  learn: boolean;
  defaults: { action: Action; errno: number; ret: number; audit: AuditLevel };
  rules: TRule[];
  /** priv id → rules that can decide it (explicit or covering any privilege), in order */
  byPriv: Map<number, TRule[]>;
  byCap: Map<number, TRule[]>;
  /** the same lists without rules that need a `w syscall` (for requests that name no syscall) */
  byPrivNoSyscall: Map<number, TRule[]>;
  anyRulesNoSyscall: TRule[];
  /** rules with no p/c lines (cover any privileged operation) */
  anyRules: TRule[];
  /** syscall → rules with no p/c and that `w syscall`: the only ones deciding unprivileged calls */
  unprivBySyscall: Map<string, TRule[]>;
}

export interface TableError {
  line: number;
  message: string;
}

const ACTIONS = new Set(['allow', 'deny', 'emulate']);
const AUDITS = new Set(['all', 'denials', 'none']);
const NUM = /^(0|[1-9][0-9]{0,9})$/;
const INT = /^-?(0|[1-9][0-9]{0,9})$/;
const ARG_NAME = /^[a-z_]{1,32}$/;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function parseRangeList(s: string): Ranges | undefined {
  const out: Array<[number, number]> = [];
  for (const part of s.split(',')) {
    const m = /^(0|[1-9][0-9]{0,9})-(0|[1-9][0-9]{0,9})$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    if (lo > hi || hi > 4294967295) return undefined;
    out.push([lo, hi]);
  }
  return normalizeRanges(out);
}

/** Parses and validates a table (bounded, line-oriented, like the agent's parser). */
export function parseTable(text: string): { table?: ParsedTable; errors: TableError[] } {
  const errors: TableError[] = [];
  const fail = (line: number, message: string) => ({ errors: [...errors, { line, message }] });
  if (typeof text !== 'string' || text.length > TABLE_LIMITS.maxBytes) return fail(1, 'table is too large');
  if (!text.endsWith('\n')) return fail(1, 'table must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length > TABLE_LIMITS.maxLines) return fail(1, 'table has too many lines');
  if (lines[0] !== `CAPTABLE ${TABLE_FORMAT}`) return fail(1, `first line must be "CAPTABLE ${TABLE_FORMAT}"`);
  const last = lines[lines.length - 1];
  const em = /^end ([0-9a-f]{64})$/.exec(last);
  if (!em) return fail(lines.length, 'last line must be "end <sha256 hex>"');
  const body = text.slice(0, text.length - last.length - 1);
  const hex = createHash('sha256').update(body, 'utf8').digest('hex');
  if (hex !== em[1]) return fail(lines.length, `hash mismatch: content hashes to ${hex}`);
  const pol = /^policy (\S+) (\S+)$/.exec(lines[1] ?? '');
  const name = pol ? pctDecode(pol[1]) : undefined;
  const version = pol ? pctDecode(pol[2]) : undefined;
  if (!pol || name === undefined || version === undefined) return fail(2, 'second line must be "policy <name> <version>"');
  if (bytes(name) > TABLE_LIMITS.maxPolicyNameBytes || bytes(version) > TABLE_LIMITS.maxPolicyVersionBytes) return fail(2, 'policy name or version too long');
  const dm = /^default (\S+) (\S+) (\S+) (\S+)$/.exec(lines[2] ?? '');
  if (!dm || !ACTIONS.has(dm[1]) || !NUM.test(dm[2]) || !INT.test(dm[3]) || !AUDITS.has(dm[4])) return fail(3, 'third line must be "default <action> <errno> <return> <audit>"');
  const t: ParsedTable = {
    format: 1,
    policy: name,
    version,
    hash: `sha256:${hex}`,
    learn: false,
    defaults: { action: dm[1] as Action, errno: Number(dm[2]), ret: Number(dm[3]), audit: dm[4] as AuditLevel },
    rules: [],
    byPriv: new Map(),
    byCap: new Map(),
    byPrivNoSyscall: new Map(),
    anyRulesNoSyscall: [],
    anyRules: [],
    unprivBySyscall: new Map(),
  };
  let i = 3;
  if (lines[i] === 'learn') {
    t.learn = true;
    i++;
  }
  let cur: TRule | undefined;
  for (; i < lines.length - 1; i++) {
    const ln = i + 1;
    const line = lines[i];
    if (Buffer.byteLength(line) > TABLE_LIMITS.maxLineBytes) return fail(ln, 'line too long');
    const f = line.split(' ');
    const kw = f[0];
    if (kw === 'rule') {
      if (f.length !== 7) return fail(ln, 'rule line needs 6 fields');
      const id = pctDecode(f[2]);
      if (!NUM.test(f[1]) || Number(f[1]) !== t.rules.length) return fail(ln, `rule index must be ${t.rules.length}`);
      if (id === undefined || id === '' || bytes(id) > TABLE_LIMITS.maxRuleIdBytes) return fail(ln, 'bad rule id');
      if (!ACTIONS.has(f[3]) || !NUM.test(f[4]) || !INT.test(f[5]) || !AUDITS.has(f[6])) return fail(ln, 'bad rule action/errno/return/audit');
      if (t.rules.length >= TABLE_LIMITS.maxRules) return fail(ln, 'too many rules');
      cur = { index: t.rules.length, id, action: f[3] as Action, errno: Number(f[4]), ret: Number(f[5]), audit: f[6] as AuditLevel, privs: null, caps: null, conds: [] };
      t.rules.push(cur);
      continue;
    }
    if (!cur) return fail(ln, `"${kw.slice(0, 20)}" before the first rule`);
    if (kw === 'm') {
      if (f.length !== 3) return fail(ln, 'm line needs 2 fields');
      const [, what, val] = f;
      if (what === 'uid' || what === 'gid') {
        if (cur[what]) return fail(ln, `duplicate m ${what}`);
        const r = parseRangeList(val);
        if (!r || val.split(',').length > TABLE_LIMITS.maxRanges) return fail(ln, 'bad ranges');
        cur[what] = r;
      } else if (what === 'exe' || what === 'image') {
        const g = pctDecode(val);
        if (g === undefined || g === '' || bytes(g) > TABLE_LIMITS.maxStringBytes || globError(g)) return fail(ln, `bad ${what} glob`);
        if (what === 'exe' && (cur.exe?.length ?? 0) + (cur.exeExact?.size ?? 0) >= TABLE_LIMITS.maxExeGlobs) return fail(ln, 'too many exe globs');
        if (what === 'exe' && !/[*?[\\]/.test(g)) (cur.exeExact ??= new Set()).add(g);
        else (cur[what] ??= []).push(compileGlob(g));
      } else if (what === 'label') {
        const eq = val.indexOf('=');
        const k = eq > 0 ? pctDecode(val.slice(0, eq)) : undefined;
        const v = eq > 0 ? pctDecode(val.slice(eq + 1)) : undefined;
        if (k === undefined || v === undefined) return fail(ln, 'bad label');
        (cur.labels ??= []).push([k, v]);
      } else return fail(ln, `unknown match "${what.slice(0, 20)}"`);
    } else if (kw === 'p' || kw === 'c') {
      const set = new Set<number>();
      if (f.length - 1 > (kw === 'p' ? TABLE_LIMITS.maxRulePrivileges : TABLE_LIMITS.maxRuleCapabilities)) return fail(ln, `too many numbers in ${kw} line`);
      for (const n of f.slice(1)) {
        if (!NUM.test(n)) return fail(ln, `bad number in ${kw} line`);
        set.add(Number(n));
      }
      if (kw === 'p') {
        if (cur.privs) return fail(ln, 'duplicate p line');
        cur.privs = set;
      } else {
        if (cur.caps) return fail(ln, 'duplicate c line');
        cur.caps = set;
      }
    } else if (kw === 'w') {
      if (f.length < 3 || !ARG_NAME.test(f[1])) return fail(ln, 'bad w line');
      if (f[1] === 'syscall') {
        const s = pctDecode(f[2]);
        if (f.length !== 3 || s === undefined || bytes(s) > TABLE_LIMITS.maxNameBytes || cur.syscall !== undefined) return fail(ln, 'bad w syscall');
        cur.syscall = s;
        continue;
      }
      if (cur.conds.length >= TABLE_LIMITS.maxConditions) return fail(ln, 'too many when conditions');
      if ((f[2].startsWith('=') || f[2].startsWith('~')) && f.length - 2 > TABLE_LIMITS.maxValues) return fail(ln, 'too many values');
      const cond: TCond = { name: f[1] };
      if (f[2].startsWith('=')) {
        cond.values = [];
        for (const tok of f.slice(2)) {
          const v = tok.startsWith('=') ? pctDecode(tok.slice(1)) : undefined;
          if (v === undefined || bytes(v) > TABLE_LIMITS.maxStringBytes) return fail(ln, 'bad value');
          cond.values.push(v);
        }
      } else if (f[2].startsWith('~')) {
        cond.globs = [];
        for (const tok of f.slice(2)) {
          const g = tok.startsWith('~') ? pctDecode(tok.slice(1)) : undefined;
          if (g === undefined || bytes(g) > TABLE_LIMITS.maxStringBytes || globError(g)) return fail(ln, 'bad glob');
          cond.globs.push(compileGlob(g));
        }
      } else {
        if (f.length !== 3) return fail(ln, 'bad ranges');
        const r = parseRangeList(f[2]);
        if (!r || f[2].split(',').length > TABLE_LIMITS.maxRanges) return fail(ln, 'bad ranges');
        cond.ranges = r;
      }
      cur.conds.push(cond);
    } else return fail(ln, `unknown record "${kw.slice(0, 20)}"`);
  }
  // Index: per privilege id / capability number, the rules that can decide it, in order.
  for (const r of t.rules) {
    if ((r.privs === null) !== (r.caps === null)) return fail(1, `rule ${r.index}: p and c lines go together`);
  }
  const privIds = new Set<number>();
  const capIds = new Set<number>();
  for (const r of t.rules) {
    r.privs?.forEach((p) => privIds.add(p));
    r.caps?.forEach((c) => capIds.add(c));
    if (!r.privs) {
      t.anyRules.push(r);
      if (r.syscall !== undefined) {
        const l = t.unprivBySyscall.get(r.syscall) ?? [];
        l.push(r);
        t.unprivBySyscall.set(r.syscall, l);
      }
    }
  }
  for (const p of privIds) {
    t.byPriv.set(p, t.rules.filter((r) => !r.privs || r.privs.has(p)));
    t.byPrivNoSyscall.set(p, t.byPriv.get(p)!.filter((r) => r.syscall === undefined));
  }
  t.anyRulesNoSyscall = t.anyRules.filter((r) => r.syscall === undefined);
  for (const c of capIds) t.byCap.set(c, t.rules.filter((r) => !r.caps || r.caps.has(c)));
  return { table: t, errors };
}

// ---- lookup ------------------------------------------------------------------------

const parsedCache = new WeakMap<object, ParsedTable>();

let lastTable: object | undefined;
let lastParsed: ParsedTable | undefined;

function tableOf(table: CompiledTable | ParsedTable): ParsedTable {
  if (table === lastTable) return lastParsed!;
  if (Array.isArray((table as ParsedTable).rules)) return table as ParsedTable;
  const ct = table as CompiledTable;
  let p = parsedCache.get(ct);
  if (!p) {
    const r = parseTable(ct.text);
    if (!r.table) throw new Error(`invalid compiled table: line ${r.errors[0]?.line}: ${r.errors[0]?.message}`);
    p = r.table;
    parsedCache.set(ct, p);
  }
  lastTable = ct;
  lastParsed = p;
  return p;
}

function condOk(c: TCond, v: unknown): boolean {
  if (v === undefined) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (!condOk(c, x)) return false;
    return true;
  }
  if (c.ranges) return typeof v === 'number' && Number.isInteger(v) && inRanges(c.ranges, v);
  if (typeof v !== 'string') return false;
  if (c.values) return c.values.includes(v);
  return c.globs!.some((g) => matchCompiled(g, v));
}

function subjectOk(r: TRule, syscall: string | undefined, args: Record<string, unknown>, req: DecisionRequest): boolean {
  if (r.syscall !== undefined && r.syscall !== syscall) return false;
  if (r.uid !== undefined && !(typeof req.uid === 'number' && inRanges(r.uid, req.uid))) return false;
  if (r.gid !== undefined && !(typeof req.gid === 'number' && inRanges(r.gid, req.gid))) return false;
  for (let i = 0; i < r.conds.length; i++) if (!condOk(r.conds[i], args[r.conds[i].name])) return false;
  if (r.exe !== undefined || r.exeExact !== undefined) {
    const exe = req.exe;
    if (typeof exe !== 'string') return false;
    let hit = r.exeExact !== undefined && r.exeExact.has(exe);
    if (!hit && r.exe !== undefined) for (let i = 0; i < r.exe.length; i++) if (matchCompiled(r.exe[i], exe)) { hit = true; break; }
    if (!hit) return false;
  }
  if (r.image) {
    const img = req.image;
    if (typeof img !== 'string' || !r.image.some((g) => matchCompiled(g, img))) return false;
  }
  if (r.labels) {
    const l = req.labels;
    if (!l) return false;
    for (const [k, v] of r.labels) if (l[k] !== v) return false;
  }
  return true;
}

function candidates(t: ParsedTable, q: PreparedRequest): TRule[] {
  if (q.unprivileged) return (q.syscall !== undefined && t.unprivBySyscall.get(q.syscall)) || [];
  if (q.privilegeIds.length === 1) return t.byPriv.get(q.privilegeIds[0]) ?? t.anyRules;
  if (q.privilegeIds.length > 1) return t.rules.filter((r) => !r.privs || q.privilegeIds.some((p) => r.privs!.has(p)));
  if (q.capabilities.length > 0) {
    const nums = q.capabilities.map((c) => capabilityNumber(c)).filter((n): n is number => n !== undefined);
    if (nums.length === 1) return t.byCap.get(nums[0]) ?? t.anyRules;
    return t.rules.filter((r) => !r.caps || nums.some((c) => r.caps!.has(c)));
  }
  return t.anyRules;
}

/** Decides a request by reading the compiled table, as the native agent does. Agrees with `evaluate`. */
export function lookup(table: CompiledTable | ParsedTable, request: DecisionRequest): Decision {
  const t = tableOf(table);
  if (typeof request.privilege === 'string' && !t.learn) return lookupPrivilege(t, request, request.privilege);
  const q = prepareRequest(request);
  if (t.learn) return { decision: 'allow', ruleId: null, privileges: q.privileges, capability: q.capability, audit: true };
  const list = candidates(t, q);
  for (let i = 0; i < list.length; i++) {
    const r = list[i];
    if (!subjectOk(r, q.syscall, q.args, request)) continue;
    const d: Decision = { decision: r.action, ruleId: r.id, privileges: q.privileges, capability: q.capability, audit: auditFor(r.audit, r.action) };
    if (r.action === 'deny') d.errno = r.errno;
    if (r.action === 'emulate') d.return = r.ret;
    return d;
  }
  if (q.unprivileged) return { decision: 'allow', ruleId: null, privileges: [], capability: q.capability, audit: t.defaults.audit !== 'none' };
  const dd = t.defaults;
  const d: Decision = { decision: dd.action, ruleId: null, privileges: q.privileges, capability: q.capability, audit: auditFor(dd.audit, dd.action) };
  if (dd.action === 'deny') d.errno = dd.errno;
  if (dd.action === 'emulate') d.return = dd.ret;
  return d;
}

/** The agent's hot path: a request already classified to one privilege. */
function lookupPrivilege(t: ParsedTable, request: DecisionRequest, name: string): Decision {
  const info = privilegeInfo(name);
  const noSys = request.syscall === undefined;
  const list =
    info.privilegeIds.length === 1
      ? (noSys ? t.byPrivNoSyscall : t.byPriv).get(info.privilegeIds[0]) ?? (noSys ? t.anyRulesNoSyscall : t.anyRules)
      : noSys
        ? t.anyRulesNoSyscall
        : t.anyRules;
  const args = request.args ?? NO_ARGS;
  for (let i = 0; i < list.length; i++) {
    const r = list[i];
    if (!subjectOk(r, request.syscall, args, request)) continue;
    const d: Decision = { decision: r.action, ruleId: r.id, privileges: info.privileges, capability: info.capability, audit: auditFor(r.audit, r.action) };
    if (r.action === 'deny') d.errno = r.errno;
    if (r.action === 'emulate') d.return = r.ret;
    return d;
  }
  const dd = t.defaults;
  const d: Decision = { decision: dd.action, ruleId: null, privileges: info.privileges, capability: info.capability, audit: auditFor(dd.audit, dd.action) };
  if (dd.action === 'deny') d.errno = dd.errno;
  if (dd.action === 'emulate') d.return = dd.ret;
  return d;
}
