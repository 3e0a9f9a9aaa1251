/** Where something is in a policy source: 1-based line and column. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** The closed set of things `parse`, `check` and `load` report. Tests assert these codes. */
export type PolicyErrorCode =
  // input limits and YAML syntax
  | 'YAML_SYNTAX'
  | 'YAML_TOO_LARGE'
  | 'YAML_TOO_DEEP'
  | 'YAML_ALIAS_LIMIT'
  | 'YAML_DUPLICATE_KEY'
  | 'YAML_MULTIPLE_DOCUMENTS'
  // structure
  | 'NOT_A_MAPPING'
  | 'MISSING_FIELD'
  | 'UNKNOWN_KEY'
  | 'WRONG_TYPE'
  | 'BAD_VALUE'
  | 'BAD_API_VERSION'
  | 'BAD_KIND'
  | 'BAD_RANGE'
  | 'BAD_GLOB'
  | 'BAD_ERRNO'
  | 'BAD_RETURN'
  // names
  | 'UNKNOWN_PRIVILEGE'
  | 'UNKNOWN_CAPABILITY'
  | 'UNKNOWN_SYSCALL'
  | 'UNKNOWN_ARGUMENT'
  | 'GLOB_MATCHES_NOTHING'
  // rules
  | 'DUPLICATE_RULE_ID'
  | 'RULE_SHADOWED'
  | 'EMULATE_FD_RESULT'
  | 'EMULATE_WITHOUT_SYSCALL'
  | 'FIELD_IGNORED'
  | 'EXE_SCOPE_UNENFORCEABLE'
  | 'EXE_NOT_IN_IMAGE'
  | 'CAPABILITY_UNMAPPED'
  // what the native agent can load and evaluate
  | 'LIMIT_EXCEEDED'
  | 'CONDITION_NOT_EVALUATED'
  // includes
  | 'INCLUDE_NO_RESOLVER'
  | 'INCLUDE_NOT_FOUND'
  | 'INCLUDE_CYCLE'
  | 'INCLUDE_UNREADABLE'
  | 'INCLUDE_NOT_A_POLICY';

export type PolicySeverity = 'error' | 'warning';

export interface PolicyError {
  code: PolicyErrorCode;
  message: string;
  location: SourceLocation;
  severity: PolicySeverity;
}

export function policyError(
  code: PolicyErrorCode,
  message: string,
  location: SourceLocation,
  severity: PolicySeverity = 'error',
): PolicyError {
  return { code, message, location, severity };
}

/** At most this many findings are returned; the rest would only repeat the same mistake. */
export const MAX_ERRORS = 200;

/** Sorts by file, line, column, then code, so output is stable. */
export function sortErrors(errors: PolicyError[]): PolicyError[] {
  return [...errors].sort(
    (a, b) =>
      (a.location.file < b.location.file ? -1 : a.location.file > b.location.file ? 1 : 0) ||
      a.location.line - b.location.line ||
      a.location.col - b.location.col ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/** `file:line:col: severity: message [CODE]` — the one-line form the CLI prints. */
export function formatError(e: PolicyError): string {
  return `${e.location.file}:${e.location.line}:${e.location.col}: ${e.severity}: ${e.message} [${e.code}]`;
}

/** Levenshtein distance, bounded work (strings are short names). */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  const m = a.length;
  const n = b.length;
  if (m === 0) return n;
  if (n === 0) return m;
  let prev = new Array<number>(n + 1);
  let cur = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j;
  for (let i = 1; i <= m; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= n; j++) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[n];
}

/** The closest candidate (case-insensitive), if it is close enough to be a plausible typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length > 200) return undefined;
  const w = word.toUpperCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(w, c.toUpperCase());
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestD <= limit ? best : undefined;
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c ? `; did you mean ${c}?` : '';
}
