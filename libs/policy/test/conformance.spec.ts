import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { capabilitySets, compile, evaluate, load, lookup, programSets, ruleEnforcement, type Decision, type DecisionRequest } from '@capulator/policy';

/**
 * Runs every YAML conformance case under libs/policy/test/cases. A case has
 *   note:     what it pins down
 *   policy:   the policy text (file name "policy.yaml")
 *   files:    optional {name: text} the include resolver serves
 *   input:    one of {lint: true} | {evaluate: [request…]} | {caps: {uid, gid, image?, labels?, exe?}}
 *             | {enforcement: {uid, gid, …}}
 *   want:     {errors: [{code, line, col, severity?}…]} | [decision subset…]
 *             | {sets…, grantedBy?, programs?, securebits?, noNewPrivileges?, fileCapabilities?}
 *             | {ruleId: [layer…]} (enforcement: the layer codes, in order)
 * A caps case with `exe` asserts the sets of that program (file capabilities applied).
 * Evaluate cases are also run through the compiled table (lookup must agree).
 */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'libs', 'policy', 'test', 'cases'))) {
    const up = join(dir, '..');
    if (up === dir) throw new Error('cannot find libs/policy/test/cases');
    dir = up;
  }
  return dir;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : n.endsWith('.yaml') ? [join(dir, n)] : []))
    .sort();
}

interface Case {
  note: string;
  policy: string;
  files?: Record<string, string>;
  input: {
    lint?: true;
    evaluate?: DecisionRequest[];
    caps?: { uid: number; gid: number; image?: string; labels?: Record<string, string>; exe?: string };
    enforcement?: { uid: number; gid: number; image?: string; labels?: Record<string, string> };
  };
  want: unknown;
}

const casesDir = join(repoRoot(), 'libs', 'policy', 'test', 'cases');
const files = walk(casesDir);

function subset(actual: Decision, want: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(want)) out[k] = (actual as unknown as Record<string, unknown>)[k];
  return out;
}

describe('policy conformance cases', () => {
  it('has at least 25 cases', () => assert.ok(files.length >= 25, `${files.length} cases`));
  for (const f of files) {
    const name = relative(casesDir, f);
    const c = parseYaml(readFileSync(f, 'utf8')) as Case;
    describe(`when ${name}: ${c.note}`, () => {
      const resolver = (p: string) => c.files?.[p];
      const r = load(c.policy, 'policy.yaml', resolver);
      if (c.input.lint) {
        it('reports exactly the wanted findings (codes and positions)', () => {
          const want = (c.want as { errors: Array<{ code: string; line: number; col: number; severity?: string; file?: string }> }).errors;
          const got = [...r.errors, ...r.warnings]
            .sort((a, b) => a.location.line - b.location.line || a.location.col - b.location.col || (a.code < b.code ? -1 : 1))
            .map((e, i) => {
              const w = want[i] ?? {};
              const o: Record<string, unknown> = { code: e.code, line: e.location.line, col: e.location.col };
              if ('severity' in w) o.severity = e.severity;
              if ('file' in w) o.file = e.location.file;
              return o;
            });
          assert.deepEqual(got, want);
          assert.equal(r.policy === undefined, want.some((w) => (w.severity ?? 'error') === 'error') && r.errors.length > 0);
        });
      }
      if (c.input.evaluate) {
        it('decides every request as wanted, by evaluate and by the compiled table', () => {
          assert.ok(r.policy, `policy does not load: ${JSON.stringify(r.errors)}`);
          const table = compile(r.policy);
          const want = c.want as Array<Record<string, unknown>>;
          assert.equal(want.length, c.input.evaluate!.length);
          c.input.evaluate!.forEach((req, i) => {
            const d = evaluate(r.policy!, req);
            assert.deepEqual(subset(d, want[i]), want[i], `request ${i}: ${JSON.stringify(req)}`);
            assert.deepEqual(lookup(table, req), d, `table disagrees on request ${i}`);
          });
        });
      }
      if (c.input.caps) {
        it('computes the wanted capability sets', () => {
          assert.ok(r.policy, `policy does not load: ${JSON.stringify(r.errors)}`);
          const got = capabilitySets(r.policy, c.input.caps!);
          const want = c.want as Record<string, unknown>;
          const sets = c.input.caps!.exe !== undefined ? programSets(got, c.input.caps!.exe) : { ...got.sets, fileCapabilities: [] };
          for (const k of ['bounding', 'permitted', 'effective', 'inheritable', 'ambient', 'fileCapabilities'] as const) {
            if (k in want) assert.deepEqual(sets[k], want[k], k);
          }
          if ('securebits' in want) assert.deepEqual(got.securebits, want.securebits);
          if ('noNewPrivileges' in want) assert.equal(got.noNewPrivileges, want.noNewPrivileges);
          if ('programs' in want) assert.deepEqual(got.programs.map((p) => ({ rule: p.ruleId, exe: p.exe, capabilities: p.capabilities })), want.programs);
          if (want.grantedBy) {
            const by: Record<string, Array<string | null>> = {};
            for (const [cap, gs] of Object.entries(got.provenance)) by[cap] = gs.map((g) => (g.source === 'rule' ? g.ruleId : g.source));
            assert.deepEqual(by, want.grantedBy);
          }
          if (want.untrapped) assert.deepEqual([...new Set(got.untrapped.map((u) => u.privilege))].sort(), want.untrapped);
        });
      }
      if (c.input.enforcement) {
        it('names the layers that enforce each rule', () => {
          assert.ok(r.policy, `policy does not load: ${JSON.stringify(r.errors)}`);
          const got: Record<string, string[]> = {};
          for (const e of ruleEnforcement(r.policy, c.input.enforcement!)) got[e.ruleId] = e.enforcedBy.map((x) => x.layer);
          assert.deepEqual(got, c.want);
        });
      }
    });
  }
});
