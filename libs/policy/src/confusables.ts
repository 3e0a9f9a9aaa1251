/**
 * Names in policies, flags and API bodies are ASCII. A name that is not usually hides a
 * character the reader cannot see (a control character, a zero-width space) or one that looks
 * like a Latin letter (Cyrillic А, Greek Ο, fullwidth Ａ). "did you mean PRIV_NETINET_RAW?" is
 * no help when the input looks identical; these helpers name the character and where it is.
 */

const C0 = ['NUL', 'START OF HEADING', 'START OF TEXT', 'END OF TEXT', 'END OF TRANSMISSION', 'ENQUIRY', 'ACKNOWLEDGE', 'BELL', 'BACKSPACE', 'CHARACTER TABULATION', 'LINE FEED', 'LINE TABULATION', 'FORM FEED', 'CARRIAGE RETURN', 'SHIFT OUT', 'SHIFT IN', 'DATA LINK ESCAPE', 'DEVICE CONTROL ONE', 'DEVICE CONTROL TWO', 'DEVICE CONTROL THREE', 'DEVICE CONTROL FOUR', 'NEGATIVE ACKNOWLEDGE', 'SYNCHRONOUS IDLE', 'END OF TRANSMISSION BLOCK', 'CANCEL', 'END OF MEDIUM', 'SUBSTITUTE', 'ESCAPE', 'INFORMATION SEPARATOR FOUR', 'INFORMATION SEPARATOR THREE', 'INFORMATION SEPARATOR TWO', 'INFORMATION SEPARATOR ONE'];
const CYRILLIC = ['A', 'BE', 'VE', 'GHE', 'DE', 'IE', 'ZHE', 'ZE', 'I', 'SHORT I', 'KA', 'EL', 'EM', 'EN', 'O', 'PE', 'ER', 'ES', 'TE', 'U', 'EF', 'HA', 'TSE', 'CHE', 'SHA', 'SHCHA', 'HARD SIGN', 'YERU', 'SOFT SIGN', 'E', 'YU', 'YA'];
const GREEK = ['ALPHA', 'BETA', 'GAMMA', 'DELTA', 'EPSILON', 'ZETA', 'ETA', 'THETA', 'IOTA', 'KAPPA', 'LAMDA', 'MU', 'NU', 'XI', 'OMICRON', 'PI', 'RHO', 'FINAL SIGMA', 'SIGMA', 'TAU', 'UPSILON', 'PHI', 'CHI', 'PSI', 'OMEGA'];
const NAMED: Record<number, string> = {
  0x7f: 'DELETE',
  0xa0: 'NO-BREAK SPACE',
  0xad: 'SOFT HYPHEN',
  0x200b: 'ZERO WIDTH SPACE',
  0x200c: 'ZERO WIDTH NON-JOINER',
  0x200d: 'ZERO WIDTH JOINER',
  0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK',
  0x2060: 'WORD JOINER',
  0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0xfeff: 'ZERO WIDTH NO-BREAK SPACE',
  0x2010: 'HYPHEN',
  0x2011: 'NON-BREAKING HYPHEN',
  0x2013: 'EN DASH',
  0x2014: 'EM DASH',
  0x0131: 'LATIN SMALL LETTER DOTLESS I',
  0x0130: 'LATIN CAPITAL LETTER I WITH DOT ABOVE',
};
/** Cyrillic and Greek letters drawn like a Latin one. */
const LOOKS_LIKE: Record<number, string> = {
  0x410: 'A', 0x412: 'B', 0x415: 'E', 0x41a: 'K', 0x41c: 'M', 0x41d: 'H', 0x41e: 'O', 0x420: 'P', 0x421: 'C', 0x422: 'T', 0x425: 'X', 0x406: 'I', 0x405: 'S', 0x408: 'J',
  0x430: 'a', 0x435: 'e', 0x43e: 'o', 0x440: 'p', 0x441: 'c', 0x443: 'y', 0x445: 'x', 0x456: 'i', 0x455: 's', 0x458: 'j',
  0x391: 'A', 0x392: 'B', 0x395: 'E', 0x396: 'Z', 0x397: 'H', 0x399: 'I', 0x39a: 'K', 0x39c: 'M', 0x39d: 'N', 0x39f: 'O', 0x3a1: 'P', 0x3a4: 'T', 0x3a5: 'Y', 0x3a7: 'X',
  0x3bf: 'o', 0x3bd: 'v', 0x131: 'i', 0x130: 'I', 0x2010: '-', 0x2011: '-', 0x2013: '-', 0x2014: '-',
};

const hex = (cp: number) => 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');

/** The Unicode name of a character, for the ones a policy author is likely to meet; otherwise its script. */
export function characterName(cp: number): string {
  if (cp < 0x20) return C0[cp];
  if (NAMED[cp]) return NAMED[cp];
  if (cp >= 0x410 && cp <= 0x42f) return `CYRILLIC CAPITAL LETTER ${CYRILLIC[cp - 0x410]}`;
  if (cp >= 0x430 && cp <= 0x44f) return `CYRILLIC SMALL LETTER ${CYRILLIC[cp - 0x430]}`;
  if (cp >= 0x391 && cp <= 0x3a9 && cp !== 0x3a2) return `GREEK CAPITAL LETTER ${GREEK[cp - 0x391]}`;
  if (cp >= 0x3b1 && cp <= 0x3c9) return `GREEK SMALL LETTER ${GREEK[cp - 0x3b1]}`;
  if (cp >= 0xff21 && cp <= 0xff3a) return `FULLWIDTH LATIN CAPITAL LETTER ${String.fromCharCode(cp - 0xff21 + 65)}`;
  if (cp >= 0xff41 && cp <= 0xff5a) return `FULLWIDTH LATIN SMALL LETTER ${String.fromCharCode(cp - 0xff41 + 97)}`;
  const ch = String.fromCodePoint(cp);
  for (const script of ['Cyrillic', 'Greek', 'Armenian', 'Cherokee', 'Han', 'Arabic', 'Hebrew'])
    if (new RegExp(`\\p{Script=${script}}`, 'u').test(ch)) return `a ${script} character`;
  if (/\p{Cf}/u.test(ch)) return 'an invisible formatting character';
  if (/\p{Z}/u.test(ch)) return 'a space character';
  if (/\p{Cc}/u.test(ch)) return 'a control character';
  return 'a character outside ASCII';
}

/** The Latin letter a character is drawn like, if it is one of the usual look-alikes. */
function lookalike(cp: number): string | undefined {
  if (LOOKS_LIKE[cp]) return LOOKS_LIKE[cp];
  if (cp >= 0xff01 && cp <= 0xff5e) return String.fromCharCode(cp - 0xff01 + 0x21);
  return undefined;
}

const isOdd = (cp: number) => cp < 0x20 || cp >= 0x7f;

export interface OddCharacter {
  /** Index (in UTF-16 code units) of the first character that is not printable ASCII. */
  index: number;
  codePoint: number;
  /** e.g. "U+0410 CYRILLIC CAPITAL LETTER A" */
  description: string;
  /** the Latin letter it is drawn like, if any */
  looksLike?: string;
}

/** The first character of `word` that is not printable ASCII, described. */
export function oddCharacter(word: string): OddCharacter | undefined {
  for (let i = 0; i < word.length; ) {
    const cp = word.codePointAt(i)!;
    if (isOdd(cp)) {
      const like = lookalike(cp);
      const name = characterName(cp);
      return { index: i, codePoint: cp, description: `${hex(cp)} ${name}`, ...(like ? { looksLike: like } : {}) };
    }
    i += cp > 0xffff ? 2 : 1;
  }
  return undefined;
}

/** `word` with look-alikes replaced by the Latin letters they imitate and invisible characters dropped (for suggestions only). */
export function unconfuse(word: string): string {
  let out = '';
  for (const ch of word) {
    const cp = ch.codePointAt(0)!;
    if (!isOdd(cp)) out += ch;
    else {
      const like = lookalike(cp);
      if (like) out += like;
    }
  }
  return out;
}

/** A name as it may be shown in a one-line message: control and invisible characters escaped. */
export function printable(word: string): string {
  return word.replace(/[\p{Cc}\p{Cf}\p{Z}]/gu, (c) => (c === ' ' ? c : `\\u{${c.codePointAt(0)!.toString(16)}}`));
}
