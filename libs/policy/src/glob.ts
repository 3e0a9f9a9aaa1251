/**
 * Globs as fnmatch(3) with flags 0 in the C locale (the native agent calls exactly that): `*`
 * matches any run of bytes including `/`, `?` one byte, `[abc]`, `[a-z]`, `[!x]` / `[^x]` a
 * set, `\` escapes the next character (inside brackets too: `[a\-z]` is the three bytes a, -, z).
 * Patterns and inputs are compared as UTF-8 bytes, as the agent sees them.
 *
 * Matching is O(pattern × input) with no backtracking beyond the last `*` (a `*` matches
 * anything, so the earliest match of each segment between stars is the right one): a pattern
 * with many stars against a long path decides in microseconds, where a regular expression or
 * glibc's recursive fnmatch takes exponential time.
 *
 * `globError` refuses what the two implementations could read differently: an unterminated
 * `[`, `[:class:]`, `[.sym.]`, `[=equiv=]`, a backwards range and a trailing lone backslash.
 */
export function isGlob(s: string): boolean {
  return /[*?[\\]/.test(s);
}

const STAR = -1;
const ANY = -2;
/** tokens: a byte (>= 0), STAR, ANY, or -(3 + k) for the k-th set */
export interface CompiledGlob {
  readonly source: string;
  readonly tokens: Int32Array;
  readonly sets: readonly Uint8Array[];
  /** the pattern without any special character: matching is equality */
  readonly literal: string | undefined;
}

class GlobSyntaxError extends Error {}

function utf8(s: string): Uint8Array {
  return Buffer.from(s, 'utf8');
}

const OPEN = 0x5b;
const CLOSE = 0x5d;
const BSL = 0x5c;
const DASH = 0x2d;

/** Parses a bracket expression starting at `pb[start] === '['`, exactly as glibc's fnmatch does. */
function parseBracket(pb: Uint8Array, start: number, set: Uint8Array): { end: number; neg: boolean } {
  let p = start + 1;
  const n = pb.length;
  const neg = pb[p] === 0x21 || pb[p] === 0x5e;
  if (neg) p++;
  if (p >= n) throw new GlobSyntaxError(`"[" at position ${start + 1} is never closed by "]"`);
  let c = pb[p++];
  for (;;) {
    if (c === BSL) {
      if (p >= n) throw new GlobSyntaxError(`"[" at position ${start + 1} is never closed by "]"`);
      c = pb[p++];
    } else if (c === OPEN && (pb[p] === 0x3a || pb[p] === 0x2e || pb[p] === 0x3d)) {
      throw new GlobSyntaxError('character classes like [:alpha:] (and [.x.], [=x=]) are not supported; list the characters');
    }
    const cold = c;
    if (p >= n) throw new GlobSyntaxError(`"[" at position ${start + 1} is never closed by "]"`);
    c = pb[p++];
    if (c === DASH && p < n && pb[p] !== CLOSE) {
      let cend = pb[p++];
      if (cend === BSL) {
        if (p >= n) throw new GlobSyntaxError(`"[" at position ${start + 1} is never closed by "]"`);
        cend = pb[p++];
      } else if (cend === OPEN && (pb[p] === 0x3a || pb[p] === 0x2e || pb[p] === 0x3d)) {
        throw new GlobSyntaxError('character classes like [:alpha:] (and [.x.], [=x=]) are not supported; list the characters');
      }
      if (cend < cold) throw new GlobSyntaxError('a range inside [...] is backwards; write the low character first, e.g. [a-z]');
      for (let x = cold; x <= cend; x++) set[x] = 1;
      if (p >= n) throw new GlobSyntaxError(`"[" at position ${start + 1} is never closed by "]"`);
      c = pb[p++];
    } else set[cold] = 1;
    if (c === CLOSE) return { end: p - 1, neg };
  }
}

function parse(glob: string): CompiledGlob {
  const pb = utf8(glob);
  const toks: number[] = [];
  const sets: Uint8Array[] = [];
  let special = false;
  for (let i = 0; i < pb.length; i++) {
    const c = pb[i];
    if (c === 0x2a) {
      special = true;
      if (toks[toks.length - 1] !== STAR) toks.push(STAR);
    } else if (c === 0x3f) {
      special = true;
      toks.push(ANY);
    } else if (c === BSL) {
      special = true;
      if (i === pb.length - 1) throw new GlobSyntaxError('ends with a lone backslash');
      toks.push(pb[++i]);
    } else if (c === OPEN) {
      special = true;
      const set = new Uint8Array(256);
      const { end, neg } = parseBracket(pb, i, set);
      if (neg) for (let x = 0; x < 256; x++) set[x] ^= 1;
      sets.push(set);
      toks.push(-(3 + sets.length - 1));
      i = end;
    } else toks.push(c);
  }
  return Object.freeze({ source: glob, tokens: Int32Array.from(toks), sets, literal: special ? undefined : glob });
}

export function globError(glob: string): string | undefined {
  if (glob === '') return 'is empty';
  try {
    parse(glob);
    return undefined;
  } catch (e) {
    if (e instanceof GlobSyntaxError) return e.message;
    throw e;
  }
}

const cache = new Map<string, CompiledGlob>();

/** The compiled form of a valid glob (throws on one `globError` refuses). Cached. */
export function compileGlob(glob: string): CompiledGlob {
  let g = cache.get(glob);
  if (!g) {
    g = parse(glob);
    if (cache.size > 4096) cache.clear();
    cache.set(glob, g);
  }
  return g;
}

/** `s` as a string of byte values (UTF-8), so charCodeAt gives bytes. ASCII strings are returned as is. */
function bytesOf(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.from(s, 'utf8').toString('latin1');
  return s;
}

export function matchCompiled(g: CompiledGlob, input: string): boolean {
  if (g.literal !== undefined) return g.literal === input;
  const s = bytesOf(input);
  const t = g.tokens;
  const m = t.length;
  const n = s.length;
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < n) {
    if (p < m) {
      const k = t[p];
      if (k === STAR) {
        starP = ++p;
        starI = i;
        continue;
      }
      if (k >= 0 ? k === s.charCodeAt(i) : k === ANY || g.sets[-k - 3][s.charCodeAt(i)] === 1) {
        p++;
        i++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    i = ++starI;
  }
  while (p < m && t[p] === STAR) p++;
  return p === m;
}

/** fnmatch(glob, s, 0) === 0 for a glob `globError` accepts; false for one it refuses. */
export function globMatch(glob: string, s: string): boolean {
  let g: CompiledGlob;
  try {
    g = compileGlob(glob);
  } catch (e) {
    if (e instanceof GlobSyntaxError) return false;
    throw e;
  }
  return matchCompiled(g, s);
}

/** The bytes one non-star token matches, as a 256-entry set. */
function tokenSet(g: CompiledGlob, k: number): Uint8Array {
  if (k >= 0) {
    const s = new Uint8Array(256);
    s[k] = 1;
    return s;
  }
  return k === ANY ? new Uint8Array(256).fill(1) : g.sets[-k - 3];
}

/**
 * True when every string `inner` matches, `outer` matches too (for shadowing: a later rule's glob
 * inside an earlier rule's). Sound but not complete: it compares token by token, so an inclusion
 * that needs a star split differently may be missed (`*?` inside `?*`); shadowing is then not
 * reported, never wrongly reported. O(|outer| × |inner|) by dynamic programming over the pair of
 * positions: no backtracking blow-up however many stars.
 */
export function globCovers(outer: string, inner: string): boolean {
  let o: CompiledGlob, n: CompiledGlob;
  try {
    o = compileGlob(outer);
    n = compileGlob(inner);
  } catch (e) {
    if (e instanceof GlobSyntaxError) return false;
    throw e;
  }
  const a = o.tokens;
  const b = n.tokens;
  const memo = new Int8Array((a.length + 1) * (b.length + 1)); // 0 unknown, 1 yes, 2 no
  // iterative over positions from the end: covers(j, i) = inner[i..] ⊆ outer[j..]
  for (let j = a.length; j >= 0; j--) {
    for (let i = b.length; i >= 0; i--) {
      const at = (jj: number, ii: number) => memo[jj * (b.length + 1) + ii] === 1;
      let yes: boolean;
      if (j === a.length) yes = i === b.length;
      else if (a[j] === STAR) {
        // the star matches nothing, or it absorbs what inner's next token matches (a star too)
        yes = at(j + 1, i) || (i < b.length && at(j, i + 1));
      } else if (i === b.length || b[i] === STAR) yes = false;
      else {
        const os = tokenSet(o, a[j]);
        const is = tokenSet(n, b[i]);
        let sub = true;
        for (let x = 0; x < 256 && sub; x++) if (is[x] === 1 && os[x] !== 1) sub = false;
        yes = sub && at(j + 1, i + 1);
      }
      memo[j * (b.length + 1) + i] = yes ? 1 : 2;
    }
  }
  return memo[0] === 1;
}
