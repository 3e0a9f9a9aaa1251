import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type Document } from 'yaml';
import type { AstNode, PolicyAst } from './ast';
import { policyError, sortErrors, type PolicyError, type SourceLocation } from './policy.errors';

/** Input limits: a policy is a small hand-written file. */
export const PARSE_LIMITS = {
  maxBytes: 1024 * 1024,
  maxDepth: 32,
  maxAliases: 100,
  /** Nodes visited while expanding the document (aliases included): the "expanded size". */
  maxNodes: 100_000,
  /** Lines plus flow-collection items, counted before parsing (the YAML parser is slow on huge inputs). */
  maxItems: 50_000,
};

export interface ParseResult {
  ast?: PolicyAst;
  errors: PolicyError[];
}

class Abort extends Error {}

/** YAML text → AST with locations. Never throws: bad input comes back as errors. */
export function parse(text: string, file = '<policy>'): ParseResult {
  try {
    return parseUnsafe(text, file);
  } catch (err) {
    const deep = err instanceof RangeError;
    return {
      errors: [
        policyError(
          deep ? 'YAML_TOO_DEEP' : 'YAML_SYNTAX',
          deep ? `document is nested too deeply (at most ${PARSE_LIMITS.maxDepth} levels)` : `cannot parse YAML: ${(err as Error)?.message ?? String(err)}`,
          { file, line: 1, col: 1 },
        ),
      ],
    };
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Cheap pre-scan, before the YAML parser sees the text: flow nesting ([[[[…), which would
 * recurse inside the parser, and the number of lines and flow items, which bounds its work.
 * Returns the offset where a limit is crossed, and which one.
 */
function prescan(text: string, limit: number): { at: number; what: 'depth' | 'items' } | undefined {
  let depth = 0;
  let items = 0;
  let quote = '';
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n' || (ch === ',' && !quote && !comment)) {
      if (++items > PARSE_LIMITS.maxItems) return { at: i, what: 'items' };
    }
    if (comment) {
      if (ch === '\n') comment = false;
      continue;
    }
    if (quote) {
      if (ch === '\\' && quote === '"') i++;
      else if (ch === quote) quote = '';
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || /\s/.test(text[i - 1]))) comment = true;
    else if (ch === '[' || ch === '{') {
      depth++;
      if (depth > limit) return { at: i, what: 'depth' };
    } else if ((ch === ']' || ch === '}') && depth > 0) depth--;
  }
  return undefined;
}

function parseUnsafe(text: string, file: string): ParseResult {
  const start: SourceLocation = { file, line: 1, col: 1 };
  if (typeof text !== 'string') return { errors: [policyError('YAML_SYNTAX', 'policy text is not a string', start)] };
  const bytes = text.length * 3 <= PARSE_LIMITS.maxBytes ? text.length : utf8Length(text);
  if (bytes > PARSE_LIMITS.maxBytes) {
    return {
      errors: [policyError('YAML_TOO_LARGE', `policy is ${bytes} bytes; the limit is ${PARSE_LIMITS.maxBytes} (1 MiB)`, start)],
    };
  }
  const lineCounter = new LineCounter();
  const locOf = (offset: number | undefined): SourceLocation => {
    if (offset === undefined) return start;
    const p = lineCounter.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const pre = prescan(text, PARSE_LIMITS.maxDepth * 2);
  if (pre) {
    // lineCounter is filled by the parser; compute the position by hand here.
    const before = text.slice(0, pre.at);
    const line = before.split('\n').length;
    const col = pre.at - before.lastIndexOf('\n');
    return {
      errors: [
        pre.what === 'depth'
          ? policyError('YAML_TOO_DEEP', `document is nested too deeply (at most ${PARSE_LIMITS.maxDepth} levels)`, { file, line, col })
          : policyError('YAML_TOO_LARGE', `document has more than ${PARSE_LIMITS.maxItems} lines or list items; a policy is much smaller`, { file, line, col }),
      ],
    };
  }
  const doc = parseDocument(text, {
    lineCounter,
    schema: 'core',
    uniqueKeys: false, // checked below in linear time (the parser's own check is quadratic)
    prettyErrors: false,
    strict: true,
    intAsBigInt: false,
  }) as Document.Parsed;

  const errors: PolicyError[] = [];
  for (const e of doc.errors) {
    const code =
      e.code === 'DUPLICATE_KEY' ? 'YAML_DUPLICATE_KEY' : e.code === 'MULTIPLE_DOCS' ? 'YAML_MULTIPLE_DOCUMENTS' : 'YAML_SYNTAX';
    const msg = code === 'YAML_DUPLICATE_KEY' ? 'a key appears twice in the same mapping; keep one' : firstLine(e.message);
    errors.push(policyError(code, msg, locOf(e.pos?.[0])));
  }
  if (errors.length > 0) return { errors: sortErrors(dedupe(errors)) };

  let aliases = 0;
  let nodes = 0;
  const walk = (n: unknown, depth: number, expanding: Set<unknown>): AstNode => {
    if (++nodes > PARSE_LIMITS.maxNodes) {
      errors.push(
        aliases > 0
          ? policyError('YAML_ALIAS_LIMIT', `document expands to more than ${PARSE_LIMITS.maxNodes} nodes through aliases; refusing it (alias bomb?)`, start)
          : policyError('YAML_TOO_LARGE', `document has more than ${PARSE_LIMITS.maxNodes} values; a policy is much smaller`, start),
      );
      throw new Abort();
    }
    const range = (n as YamlNode | null)?.range;
    const loc = locOf(range?.[0]);
    if (depth > PARSE_LIMITS.maxDepth) {
      errors.push(policyError('YAML_TOO_DEEP', `document is nested too deeply (at most ${PARSE_LIMITS.maxDepth} levels)`, loc));
      throw new Abort();
    }
    if (isAlias(n)) {
      if (++aliases > PARSE_LIMITS.maxAliases) {
        errors.push(policyError('YAML_ALIAS_LIMIT', `more than ${PARSE_LIMITS.maxAliases} alias expansions; refusing the document (alias bomb?)`, loc));
        throw new Abort();
      }
      const target = n.resolve(doc);
      if (!target || expanding.has(target)) {
        errors.push(policyError('YAML_SYNTAX', `alias *${n.source} does not refer to a complete earlier anchor`, loc));
        throw new Abort();
      }
      const inner = new Set(expanding);
      inner.add(target);
      const resolved = walk(target, depth, inner);
      return relocate(resolved, loc);
    }
    if (isMap(n)) {
      const entries = [];
      const seen = new Set<string>();
      for (const pair of n.items) {
        const k = pair.key as YamlNode | null;
        const keyLoc = locOf(k?.range?.[0] ?? range?.[0]);
        let key: string;
        if (k === null || k === undefined) key = '';
        else if (isScalar(k)) key = String(k.value);
        else {
          errors.push(policyError('WRONG_TYPE', 'a mapping key must be a plain name, not a list or mapping', keyLoc));
          continue;
        }
        if (seen.has(key)) {
          errors.push(policyError('YAML_DUPLICATE_KEY', `key "${key.slice(0, 40)}" appears twice in the same mapping; keep one`, keyLoc));
          continue;
        }
        seen.add(key);
        const value =
          pair.value === null || pair.value === undefined
            ? { kind: 'scalar' as const, value: null, loc: keyLoc }
            : walk(pair.value, depth + 1, expanding);
        entries.push({ key, keyLoc, value });
      }
      return { kind: 'map', entries, loc };
    }
    if (isSeq(n)) {
      return { kind: 'seq', items: n.items.map((it) => (it === null ? { kind: 'scalar' as const, value: null, loc } : walk(it, depth + 1, expanding))), loc };
    }
    if (isScalar(n)) {
      const v = n.value;
      const value = v === null || v === undefined || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number' ? (v ?? null) : String(v);
      return n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE' ? { kind: 'scalar', value, loc, quoted: true } : { kind: 'scalar', value, loc };
    }
    return { kind: 'scalar', value: null, loc };
  };
  let root: AstNode;
  try {
    root = doc.contents === null ? { kind: 'scalar', value: null, loc: start } : walk(doc.contents, 1, new Set());
  } catch (err) {
    if (err instanceof Abort) return { errors: sortErrors(errors) };
    throw err;
  }
  if (errors.length > 0) return { errors: sortErrors(errors) };
  return { ast: { file, root }, errors: [] };
}

/** An alias expansion keeps the alias's own location for its top node (errors point at the use). */
function relocate(n: AstNode, loc: SourceLocation): AstNode {
  return { ...n, loc };
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+.*$/, '');
}

function dedupe(errors: PolicyError[]): PolicyError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.code}:${e.location.line}:${e.location.col}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
