/**
 * Globs as fnmatch(3) with flags 0 (the C agent uses exactly that): `*` matches any run of
 * characters including `/`, `?` one character, `[abc]`, `[a-z]`, `[!x]` / `[^x]` a set,
 * `\` escapes the next character. Character classes (`[:alpha:]`) and unterminated `[` are
 * refused by `globError` so the two implementations cannot disagree.
 */
export function isGlob(s: string): boolean {
  return /[*?[\\]/.test(s);
}

export function globError(glob: string): string | undefined {
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      if (i === glob.length - 1) return 'ends with a lone backslash';
      i++;
    } else if (c === '[') {
      const end = bracketEnd(glob, i);
      if (end < 0) return `"[" at position ${i + 1} is never closed by "]"`;
      if (glob.slice(i, end + 1).includes('[:')) return 'character classes like [:alpha:] are not supported; list the characters';
      i = end;
    }
  }
  try {
    globToRegExp(glob);
  } catch {
    return 'a range inside [...] is backwards; write the low character first, e.g. [a-z]';
  }
  return undefined;
}

/** Index of the `]` closing the bracket expression opened at `start`, or -1. */
function bracketEnd(g: string, start: number): number {
  let i = start + 1;
  if (g[i] === '!' || g[i] === '^') i++;
  if (g[i] === ']') i++;
  for (; i < g.length; i++) {
    if (g[i] === '\\') i++;
    else if (g[i] === ']') return i;
  }
  return -1;
}

const reSpecial = /[\\^$.*+?()[\]{}|\-/]/g;
const esc = (c: string) => c.replace(reSpecial, '\\$&');

export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\') re += esc(glob[++i] ?? '\\');
    else if (c === '[') {
      const end = bracketEnd(glob, i);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let j = i + 1;
      let neg = false;
      if (glob[j] === '!' || glob[j] === '^') {
        neg = true;
        j++;
      }
      let cls = '';
      const body: string[] = [];
      for (; j < end; j++) {
        if (glob[j] === '\\') j++;
        body.push(glob[j]);
      }
      for (let k = 0; k < body.length; k++) {
        if (body[k + 1] === '-' && k + 2 < body.length) {
          cls += `${esc(body[k])}-${esc(body[k + 2])}`;
          k += 2;
        } else cls += esc(body[k]);
      }
      re += neg ? `[^${cls}]` : `[${cls}]`;
      i = end;
    } else re += esc(c);
  }
  return new RegExp(re + '$', 's');
}

const cache = new Map<string, RegExp>();
export function globMatch(glob: string, s: string): boolean {
  let re = cache.get(glob);
  if (!re) {
    re = globToRegExp(glob);
    if (cache.size > 4096) cache.clear();
    cache.set(glob, re);
  }
  return re.test(s);
}
