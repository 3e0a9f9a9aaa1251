import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { globCovers, globError, globMatch, load } from './index';

/** An independent reference: dynamic programming over (pattern token, input byte), brackets excluded. */
function dpMatch(pattern: string, input: string): boolean {
  const p: Array<number | 'star' | 'any'> = [];
  const pb = Buffer.from(pattern, 'utf8');
  for (let i = 0; i < pb.length; i++) {
    if (pb[i] === 0x2a) p.push('star');
    else if (pb[i] === 0x3f) p.push('any');
    else if (pb[i] === 0x5c) p.push(pb[++i]);
    else p.push(pb[i]);
  }
  const s = Buffer.from(input, 'utf8');
  let row = new Array<boolean>(s.length + 1).fill(false);
  row[0] = true;
  for (const t of p) {
    const next = new Array<boolean>(s.length + 1).fill(false);
    for (let j = 0; j <= s.length; j++) {
      if (t === 'star') next[j] = row[j] || (j > 0 && next[j - 1]);
      else if (j > 0) next[j] = row[j - 1] && (t === 'any' || t === s[j - 1]);
    }
    row = next;
  }
  return row[s.length];
}

function fastest(f: () => void): number {
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

describe('globMatch', () => {
  describe('when the pattern has many stars and the input is long', () => {
    // Not a speed measurement (bench/policy-eval.bench.ts measures it; fastest of 50 calls 0.06 ms on
    // an idle machine here, 1.06 ms once in a busy CI run): the bounds
    // are far above the matcher's time and far below a backtracking one's (9 stars against 4 KiB
    // would take ~4096^9 steps), so they fail only on a blow-up, never on a busy machine.
    it('decides a 9-star pattern against a 4 KiB path without backtracking blow-up', () => {
      const path = '/a'.repeat(2048);
      const pat = '*/*/*/*/*/*/*/*/*/x';
      assert.equal(globMatch(pat, path), false);
      assert.equal(globMatch(pat, path + '/x'), true);
      const ms = fastest(() => globMatch(pat, path));
      assert.ok(ms < 100, `${ms.toFixed(3)} ms`);
    });
    it('decides ?*?*…Q0 against every privilege name without backtracking blow-up', () => {
      const pat = '?*'.repeat(14) + 'Q0';
      const ms = fastest(() => {
        for (let i = 0; i < 200; i++) globMatch(pat, 'PRIV_NETINET_RESERVEDPORT_' + i);
      });
      assert.ok(ms < 500, `${ms.toFixed(3)} ms for 200 names`);
    });
  });

  describe('when compared with a dynamic-programming reference (no brackets)', () => {
    it('agrees on generated patterns and inputs', () => {
      const pat = fc.array(fc.constantFrom('a', 'b', '/', '*', '?', '\\*', '\\?', 'é', '\\\\'), { maxLength: 12 }).map((a) => a.join(''));
      const inp = fc.array(fc.constantFrom('a', 'b', '/', '*', '?', 'é', '\\'), { maxLength: 14 }).map((a) => a.join(''));
      fc.assert(fc.property(pat, inp, (p, s) => globMatch(p, s) === dpMatch(p, s)), { numRuns: 20_000, seed: 7 });
    });
  });

  describe('when a bracket escapes or ends with "-"', () => {
    it('reads it as fnmatch does', () => {
      assert.equal(globMatch('[a\\-z]', 'q'), false);
      assert.equal(globMatch('[a\\-z]', '-'), true);
      assert.equal(globMatch('[a-]', '-'), true);
      assert.equal(globMatch('[]a]', ']'), true);
      assert.equal(globMatch('[!a]', 'é'), false, 'é is two bytes: one byte set does not cover it');
      assert.equal(globMatch('[!a]?', 'é'), true);
    });
  });

  describe('when the pattern is malformed', () => {
    it('refuses what fnmatch reads differently', () => {
      for (const g of ['[a', '[!]', 'x\\', '[[:alpha:]]', '[[.a.]]', '[[=a=]]', '[z-a]', '[a-']) assert.ok(globError(g), g);
      for (const g of ['[[]', '[]]', '[a-]', '\\[', '*?[!a-c]']) assert.equal(globError(g), undefined, g);
    });
  });
});

describe('globCovers (shadowing between globs)', () => {
  /** every string over {a, b, /} up to length 5 */
  const words: string[] = [''];
  for (let len = 1, from = 0; len <= 5; len++) {
    const to = words.length;
    for (let i = from; i < to; i++) for (const c of ['a', 'b', '/']) words.push(words[i] + c);
    from = to;
  }
  it('says yes only when every string the inner glob matches, the outer matches too (exhaustive to length 5)', () => {
    const glob = fc.array(fc.constantFrom('a', 'b', '/', '*', '?', '[ab]', '[!a]'), { maxLength: 6 }).map((a) => a.join(''));
    let yes = 0;
    fc.assert(
      fc.property(glob, glob, (outer, inner) => {
        if (!globCovers(outer, inner)) return true;
        yes++;
        return words.every((w) => !globMatch(inner, w) || globMatch(outer, w));
      }),
      { numRuns: 20_000, seed: 11 },
    );
    assert.ok(yes > 500, `only ${yes} generated pairs were inclusions`);
  });
  it('finds the inclusions rules are written with', () => {
    for (const [outer, inner] of [
      ['/usr/bin/*', '/usr/bin/ping'],
      ['/usr/*', '/usr/bin/*'],
      ['*', '/usr/bin/p[io]ng'],
      ['/usr/bin/p?ng', '/usr/bin/p[io]ng'],
      ['*/ping', '/usr/*/ping'],
      ['registry.local/*', 'registry.local/team/*:1.*'],
      ['*a*', '*a*a*'],
      ['/usr/bin/ping', '/usr/bin/ping'],
    ])
      assert.equal(globCovers(outer, inner), true, `${inner} inside ${outer}`);
    for (const [outer, inner] of [
      ['/usr/bin/*', '/usr/*'],
      ['/usr/bin/ping', '/usr/bin/*'],
      ['/usr/bin/p[io]ng', '/usr/bin/p?ng'],
      ['*/ping', '/usr/bin/ping*'],
    ])
      assert.equal(globCovers(outer, inner), false, `${inner} not inside ${outer}`);
  });
  it('decides many stars on both sides without backtracking', () => {
    const outer = '*/'.repeat(40) + 'x';
    const inner = '*/'.repeat(60) + 'x';
    assert.equal(globCovers(outer, inner), true);
    assert.equal(globCovers(outer + 'y', inner), false);
  });
});

describe('load (privilege globs)', () => {
  describe('when a policy has pathological privilege globs', () => {
    it('analyses them in linear time', () => {
      const globs = Array.from({ length: 8 }, (_, i) => `"${'?*'.repeat(14)}Q${i}"`).join(', ');
      const text = `apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: p}\nrules:\n  - {id: a, privileges: [${globs}], action: allow}\n`;
      const t0 = Date.now();
      const r = load(text, 'p.yaml');
      assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
      assert.ok(r.errors.some((e) => e.code === 'GLOB_MATCHES_NOTHING'));
    });
  });
});
