import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { globError, globMatch, pctEncode } from '@capulator/policy';
import { agentBinary } from './agent-process';

/**
 * libs/policy's linear-time glob matcher against the agent's fnmatch(3) (glibc, flags 0), through
 * the agent itself: one table rule per (pattern, input) pair, `m exe PATTERN` + `w syscall gN`,
 * and one `eval` request per pair with that exe. The rule decides exactly when fnmatch matches.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');

// characters that make fnmatch interesting, plus a multi-byte letter (bytes, not UTF-16 units)
const PAT = ['a', 'b', '/', '-', ']', '[', '!', '^', '\\', '*', '?', 'é', '.', ':', '='];
const patternArb = fc.array(fc.constantFrom(...PAT), { minLength: 0, maxLength: 14 }).map((a) => a.join(''));
const inputArb = fc.array(fc.constantFrom('a', 'b', '/', '-', ']', '[', '!', '^', '\\', 'é', '.', 'c'), { minLength: 0, maxLength: 16 }).map((a) => a.join(''));

/** A string built from the pattern (so that matches are common), then maybe mutated. */
function instance(p: string, pick: number[]): string {
  let out = '';
  let k = 0;
  const next = () => pick[k++ % pick.length];
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*') out += ['', 'a', 'ab/', 'b-]'][next() % 4];
    else if (c === '?') out += ['a', '/', 'é'][next() % 3];
    else if (c === '\\' && i + 1 < p.length) out += p[++i];
    else out += c;
  }
  if (next() % 3 === 0 && out.length > 0) out = out.slice(0, next() % out.length) + 'b' + out.slice((next() % out.length) + 1);
  return out;
}

function tableOf(patterns: string[]): string {
  const L = ['CAPTABLE 1', 'policy glob-differential 1', 'default deny 1 0 all'];
  patterns.forEach((p, i) => L.push(`rule ${i} r${i} allow 0 0 all`, `m exe ${pctEncode(p)}`, `w syscall g${i}`));
  const body = L.join('\n') + '\n';
  return `${body}end ${createHash('sha256').update(body).digest('hex')}\n`;
}

describe('glob matching (libs/policy) against the agent fnmatch', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-globdiff-'));
  });

  describe('when matching generated patterns and inputs', () => {
    it('decides every pair as glibc fnmatch(pattern, input, 0) does', () => {
      const pairs: Array<[string, string]> = [
        ['[a\\-z]', '-'], ['[a\\-z]', 'q'], ['[a-]', '-'], ['[]a]', ']'], ['[!]a]', 'b'], ['[^a]', 'a'], ['[]-a]', '^'],
        ['[a-b-c]', '-'], ['[--0]', '/'], ['[\\]]', ']'], ['*/*/*/x', 'a/b/c/x'], ['?', 'é'], ['??', 'é'], ['[é]', 'é'],
        ['*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(150)], ['[[]', '['], ['a[', 'a['], ['\\*', '*'], ['\\*', 'a'],
      ];
      const gen = fc.sample(fc.tuple(patternArb, fc.array(fc.nat(), { minLength: 3, maxLength: 6 }), inputArb, fc.boolean()), { numRuns: 6000, seed: 0x61ab });
      for (const [p, pick, other, useOther] of gen) pairs.push([p, useOther ? other : instance(p, pick)]);
      const valid = pairs.filter(([p, s]) => p.length > 0 && globError(p) === undefined && Buffer.byteLength(s) < 200 && Buffer.byteLength(p) < 200);
      assert.ok(valid.length > 3000, `only ${valid.length} valid patterns`);
      const tp = join(dir, 'globs.table');
      writeFileSync(tp, tableOf(valid.map(([p]) => p)));
      const input = valid.map(([, s], i) => `syscall=g${i} @exe=${encodeURIComponent(s)}`).join('\n') + '\n';
      const r = spawnSync(agentBinary(repo), ['eval', tp], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.equal(r.status, 0, r.stderr);
      const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ruleId: string | null });
      assert.equal(answers.length, valid.length);
      const diffs: string[] = [];
      let matched = 0;
      valid.forEach(([p, s], i) => {
        const agent = answers[i].ruleId === `r${i}`;
        if (agent) matched++;
        if (agent !== globMatch(p, s)) diffs.push(`${JSON.stringify(p)} vs ${JSON.stringify(s)}: agent ${agent}`);
      });
      assert.deepEqual(diffs.slice(0, 20), []);
      assert.ok(matched > 500 && matched < valid.length - 500, `${matched} of ${valid.length} matched: not a useful mix`);
    });
  });
});
