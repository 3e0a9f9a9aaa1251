/**
 * A tiny reader of C header constants, for tests that check libs/abi's tables against the
 * installed kernel/glibc headers. Pure: it is handed the header text.
 *
 * It understands object-like `#define NAME value` (integer literals in any base with U/L
 * suffixes, references to other names, + - | << >> ~ and parentheses) and `NAME = value,` enum
 * entries. Conditionals are ignored (the first definition wins), which is good enough for
 * headers whose alternatives define the same value or that the caller filters.
 */
export function parseCDefines(text: string, into: Map<string, string> = new Map()): Map<string, string> {
  const clean = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '').replace(/\\\n/g, ' ');
  for (const line of clean.split('\n')) {
    const d = /^\s*#\s*define\s+([A-Za-z_]\w*)(?!\()\s+(.+?)\s*$/.exec(line);
    if (d) {
      if (!into.has(d[1])) into.set(d[1], d[2]);
      continue;
    }
    const e = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*([^,]+?)\s*,?\s*$/.exec(line);
    if (e && !into.has(e[1])) into.set(e[1], e[2]);
  }
  return into;
}

/** Evaluates a constant's value to a number, or undefined when it is not a plain integer expression. */
export function evalCDefine(defs: Map<string, string>, name: string, depth = 0): number | undefined {
  const v = defs.get(name);
  if (v === undefined || depth > 20) return undefined;
  let expr = v.replace(/\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b/g, '$1');
  let failed = false;
  expr = expr.replace(/\b[A-Za-z_]\w*\b/g, (id) => {
    const n = evalCDefine(defs, id, depth + 1);
    if (n === undefined) failed = true;
    return String(n);
  });
  if (failed) return undefined;
  expr = expr.replace(/\b0([0-7]+)\b/g, (_, o: string) => String(parseInt(o, 8)));
  if (!/^[\s\dxXa-fA-F()+\-|&~<>*]*$/.test(expr)) return undefined;
  try {
    const r = Function(`"use strict"; return (${expr});`)() as unknown;
    return typeof r === 'number' && Number.isFinite(r) ? r : undefined;
  } catch {
    return undefined;
  }
}
