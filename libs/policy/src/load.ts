import { API_VERSION, analyzeDocument, crossRuleChecks, freezePolicy, policyVersion, type AnalyzedDocument } from './analyze';
import type { Policy, PolicyRule } from './model';
import { parse } from './parse';
import { entry, type PolicyAst } from './ast';
import { agentChecks } from './limits-check';
import { TABLE_LIMITS } from './limits';
import { MAX_ERRORS, policyError, sortErrors, type PolicyError, type SourceLocation } from './policy.errors';

/**
 * Resolves an `include:` entry. Returns the included text (or `{file, text}` to name it),
 * or undefined when there is no such file. The lib itself does no I/O.
 */
export type IncludeResolver = (path: string, fromFile: string) => string | { file: string; text: string } | undefined;

export interface LoadResult {
  policy?: Policy;
  /** error-severity findings (the policy is absent when there are any) */
  errors: PolicyError[];
  warnings: PolicyError[];
}

export const MAX_INCLUDE_DEPTH = 8;
export const MAX_INCLUDED_FILES = 32;

/** parse → check → resolve includes → assemble an immutable Policy. Never throws. */
export function load(text: string, file = '<policy>', resolveInclude?: IncludeResolver): LoadResult {
  const all: PolicyError[] = [];
  let files = 0;
  const visit = (src: string, name: string, stack: string[], nested: boolean, from?: SourceLocation): { doc?: AnalyzedDocument; rules: PolicyRule[] } => {
    files++;
    const parsed = parse(src, name);
    // an included file that is not a capulator policy gets one error at the include, and none of
    // its own: its messages would quote a file that may be anything (/etc/shadow)
    if (nested && from && !looksLikePolicy(parsed.ast)) {
      all.push(policyError('INCLUDE_NOT_A_POLICY', `cannot include "${name}": not a capulator policy (a YAML mapping with apiVersion: ${API_VERSION})`, from));
      return { rules: [] };
    }
    all.push(...parsed.errors);
    if (!parsed.ast) return { rules: [] };
    const { errors, doc } = analyzeDocument(parsed.ast);
    all.push(...errors);
    if (!doc) return { rules: [] };
    if (nested) {
      if (doc.setsDefaults) all.push(policyError('FIELD_IGNORED', 'defaults of an included file are ignored; the including policy decides them', doc.setsDefaults, 'warning'));
      if (doc.setsLearn) all.push(policyError('FIELD_IGNORED', 'learn in an included file is ignored; set it in the including policy', doc.setsLearn, 'warning'));
    }
    const rules: PolicyRule[] = [];
    for (const inc of doc.includes) rules.push(...include(inc.path, inc.location, name, stack));
    rules.push(...doc.rules);
    return { doc, rules };
  };
  const include = (path: string, loc: SourceLocation, from: string, stack: string[]): PolicyRule[] => {
    if (!resolveInclude) {
      all.push(policyError('INCLUDE_NO_RESOLVER', `cannot include "${path}": no include resolver was given`, loc));
      return [];
    }
    if (stack.length >= MAX_INCLUDE_DEPTH || files >= MAX_INCLUDED_FILES) {
      all.push(policyError('INCLUDE_CYCLE', `includes nest too deep or too many files (at most ${MAX_INCLUDE_DEPTH} levels, ${MAX_INCLUDED_FILES} files)`, loc));
      return [];
    }
    let got: ReturnType<IncludeResolver>;
    try {
      got = resolveInclude(path, from);
    } catch (err) {
      all.push(policyError('INCLUDE_UNREADABLE', `cannot include "${path}": ${(err as Error)?.message ?? String(err)}`, loc));
      return [];
    }
    if (got === undefined) {
      all.push(policyError('INCLUDE_NOT_FOUND', `cannot include "${path}": no such file`, loc));
      return [];
    }
    const { file: incFile, text: incText } = typeof got === 'string' ? { file: path, text: got } : got;
    if (stack.includes(incFile)) {
      all.push(policyError('INCLUDE_CYCLE', `include cycle: ${[...stack.slice(stack.indexOf(incFile)), incFile].join(' → ')}`, loc));
      return [];
    }
    return visit(incText, incFile, [...stack, incFile], true, loc).rules;
  };

  let main: { doc?: AnalyzedDocument; rules: PolicyRule[] };
  try {
    main = visit(text, file, [file], false);
  } catch (err) {
    all.push(policyError('YAML_SYNTAX', `policy could not be loaded: ${(err as Error)?.message ?? String(err)}`, { file, line: 1, col: 1 }));
    main = { rules: [] };
  }
  const rules = main.rules.map((r, index) => ({ ...r, index }));
  all.push(...agentChecks(rules, main.doc?.name, main.doc?.version, { file, line: 1, col: 1 }));
  // the pairwise checks are quadratic: only for a rule count the agent accepts
  if (rules.length <= TABLE_LIMITS.maxRules) all.push(...crossRuleChecks(rules));
  const sorted = sortErrors(all).slice(0, MAX_ERRORS);
  const errors = sorted.filter((e) => e.severity === 'error');
  const warnings = sorted.filter((e) => e.severity === 'warning');
  if (errors.length > 0 || !main.doc || main.doc.name === undefined) return { errors, warnings };
  const doc = main.doc;
  const base = { name: doc.name!, description: doc.description, learn: doc.learn, defaults: doc.defaults, rules };
  const includedFiles = [file, ...new Set(rules.map((r) => r.location.file).filter((f) => f !== file))];
  const policy: Policy = { ...base, version: doc.version ?? policyVersion(base), files: includedFiles };
  return { policy: freezePolicy(policy), errors, warnings };
}

/** A YAML mapping whose apiVersion is ours (included files only get detailed errors then). */
function looksLikePolicy(ast: PolicyAst | undefined): boolean {
  if (!ast || ast.root.kind !== 'map') return false;
  const av = entry(ast.root, 'apiVersion');
  return av !== undefined && av.value.kind === 'scalar' && av.value.value === API_VERSION;
}
