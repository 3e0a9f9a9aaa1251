import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile, load, parseTable, TABLE_LIMITS, type Policy, type PolicyRule } from '@capulator/policy';
import { agentBinary } from './agent-process';

/**
 * One set of limits: for each TABLE_LIMITS bound, a policy at the limit loads, compiles, passes
 * libs/policy's table parser and the agent's; one past it is refused by `load` with
 * LIMIT_EXCEEDED at the rule, and its table (compiled anyway, by hand) is refused by both parsers.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const head = 'apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: limits}\nrules:\n';
const L = TABLE_LIMITS;

type Widen = (r: PolicyRule) => PolicyRule;
const CASES: Array<{ limit: string; policy: (n: number) => string; at: number; widen: Widen | 'rules' }> = [
  { limit: 'maxRules', at: L.maxRules, policy: (n) => head + Array.from({ length: n }, (_, i) => `  - {id: r${i}, match: {uid: ${i}}, action: allow}\n`).join(''), widen: 'rules' },
  { limit: 'maxExeGlobs', at: L.maxExeGlobs, policy: (n) => head + `  - {id: e, match: {exe: [${Array.from({ length: n }, (_, i) => `"/bin/p${i}*"`).join(', ')}]}, action: allow}\n`, widen: (r) => ({ ...r, match: { ...r.match, exe: [...r.match.exe!, '/x*'] } }) },
  { limit: 'maxRanges', at: L.maxRanges, policy: (n) => head + `  - {id: p, when: {syscall: bind, port: "${Array.from({ length: n }, (_, i) => String(i * 3)).join(',')}"}, action: allow}\n`, widen: (r) => ({ ...r, when: { ...r.when, args: r.when.args.map((c) => (c.kind === 'ranges' ? { ...c, ranges: [...c.ranges, [1000, 1000] as [number, number]] } : c)) } }) },
  { limit: 'maxValues', at: L.maxValues, policy: (n) => head + `  - {id: v, when: {syscall: ioctl, request: [${Array.from({ length: n }, (_, i) => `"SIOC${i}"`).join(', ')}]}, action: deny}\n`, widen: (r) => ({ ...r, when: { ...r.when, args: r.when.args.map((c) => (c.kind === 'values' ? { ...c, values: [...c.values, 'SIOCX'] } : c)) } }) },
  { limit: 'maxStringBytes', at: L.maxStringBytes, policy: (n) => head + `  - {id: s, match: {exe: ["/${'a'.repeat(n - 1)}"]}, action: allow}\n`, widen: (r) => ({ ...r, match: { ...r.match, exe: [r.match.exe![0] + 'a'] } }) },
  { limit: 'maxRuleIdBytes', at: L.maxRuleIdBytes, policy: (n) => head + `  - {id: ${'i'.repeat(n)}, action: allow}\n`, widen: (r) => ({ ...r, id: r.id + 'i' }) },
];

function agentAccepts(dir: string, text: string): boolean {
  const p = join(dir, `t-${Math.random().toString(36).slice(2)}.table`);
  writeFileSync(p, text);
  const r = spawnSync(agentBinary(repo), ['check-table', p], { encoding: 'utf8' });
  return r.status === 0;
}

describe('table limits (libs/policy and the agent)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hostile-limits-'));
  });

  for (const c of CASES) {
    describe(`when a policy reaches ${c.limit} (${c.at})`, () => {
      it('loads, and both table parsers take its table', () => {
        const l = load(c.policy(c.at), 'limits.yaml');
        assert.deepEqual(l.errors.map((e) => `${e.code} ${e.message}`), []);
        const t = compile(l.policy!);
        assert.deepEqual(parseTable(t.text).errors, []);
        assert.ok(agentAccepts(dir, t.text), 'the agent refused a table at the limit');
      });
      it('one past it: load refuses with a located LIMIT_EXCEEDED (or BAD_VALUE for ids), and the agent would too', () => {
        const l = load(c.policy(c.at + 1), 'limits.yaml');
        const e = l.errors[0];
        assert.ok(e, 'no error');
        assert.ok(e.code === 'LIMIT_EXCEEDED' || (c.limit === 'maxRuleIdBytes' && e.code === 'BAD_VALUE'), `${e.code}: ${e.message}`);
        assert.ok(e.location.line >= 5, `located at line ${e.location.line}`);
      });
      it('one past it, compiled anyway: both table parsers refuse the table', () => {
        const p = load(c.policy(c.at), 'limits.yaml').policy!;
        const over: Policy =
          c.widen === 'rules' ? { ...p, rules: [...p.rules, { ...p.rules[0], id: 'extra', index: p.rules.length }] } : { ...p, rules: [(c.widen as Widen)(p.rules[0])] };
        const t = compile(over);
        assert.notDeepEqual(parseTable(t.text).errors, [], 'libs/policy took it');
        assert.equal(agentAccepts(dir, t.text), false, 'the agent took it');
      });
    });
  }

  describe('when a when-condition would compile to a table line longer than the agent reads', () => {
    it('is LIMIT_EXCEEDED', () => {
      const globs = Array.from({ length: 16 }, (_, i) => `"/${'é'.repeat(120)}${i}*"`).join(', ');
      const l = load(head + `  - {id: long, when: {syscall: chroot, path: [${globs}]}, action: deny}\n`, 'limits.yaml');
      assert.deepEqual(l.errors.map((e) => e.code), ['LIMIT_EXCEEDED']);
      assert.match(l.errors[0].message, /line bytes/);
    });
  });

  describe('when a rule tests gids on setgroups', () => {
    it('is CONDITION_NOT_EVALUATED (the agent does not read the group list)', () => {
      const l = load(head + '  - {id: g, when: {syscall: setgroups, gids: "0-999"}, action: allow}\n', 'limits.yaml');
      assert.deepEqual(l.errors.map((e) => [e.code, e.location.line]), [['CONDITION_NOT_EVALUATED', 5]]);
    });
  });
});
