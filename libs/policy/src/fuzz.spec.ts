import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { load, type PolicyError } from './index';

function examples(): string[] {
  let dir = __dirname;
  while (!existsSync(join(dir, 'examples', 'policies'))) {
    const up = join(dir, '..');
    if (up === dir) throw new Error('examples/policies not found');
    dir = up;
  }
  const d = join(dir, 'examples', 'policies');
  return readdirSync(d).filter((f) => f.endsWith('.yaml')).sort().map((f) => readFileSync(join(d, f), 'utf8'));
}

const CODES = new Set([
  'YAML_SYNTAX', 'YAML_TOO_LARGE', 'YAML_TOO_DEEP', 'YAML_ALIAS_LIMIT', 'YAML_DUPLICATE_KEY', 'YAML_MULTIPLE_DOCUMENTS',
  'NOT_A_MAPPING', 'MISSING_FIELD', 'UNKNOWN_KEY', 'WRONG_TYPE', 'BAD_VALUE', 'BAD_API_VERSION', 'BAD_KIND', 'BAD_RANGE',
  'BAD_GLOB', 'BAD_ERRNO', 'BAD_RETURN', 'UNKNOWN_PRIVILEGE', 'UNKNOWN_CAPABILITY', 'UNKNOWN_SYSCALL', 'UNKNOWN_ARGUMENT',
  'GLOB_MATCHES_NOTHING', 'DUPLICATE_RULE_ID', 'RULE_SHADOWED', 'EMULATE_FD_RESULT', 'EMULATE_WITHOUT_SYSCALL',
  'FIELD_IGNORED', 'EXE_SCOPE_UNENFORCEABLE', 'INCLUDE_NO_RESOLVER', 'INCLUDE_NOT_FOUND', 'INCLUDE_CYCLE', 'LIMIT_EXCEEDED', 'INCLUDE_UNREADABLE', 'INCLUDE_NOT_A_POLICY', 'CONDITION_NOT_EVALUATED', 'CAPABILITY_UNMAPPED',
]);

function wellFormed(errs: PolicyError[], text: string): void {
  const lines = text.split(/\r\n|\r|\n/).length + 1;
  for (const e of errs) {
    assert.ok(CODES.has(e.code), `unknown code ${e.code}`);
    assert.ok(e.location.line >= 1 && e.location.line <= lines, `line ${e.location.line} of ${lines}: ${e.code}`);
    assert.ok(e.location.col >= 1, `col ${e.location.col}`);
    assert.ok(typeof e.message === 'string' && e.message.length > 0);
    assert.ok(e.severity === 'error' || e.severity === 'warning');
  }
}

const pieces = ['\n', ' ', '  ', '- ', ': ', '{', '}', '[', ']', ',', '&a ', '*a', '!!str ', '"', "'", '#', '|', '>', '\t', '---\n', '? ', 'PRIV_*', 'CAP_', '0-', '-1', '~', '%', '\\', '\u0000', '\ufeff', 'é', '🙂'];

const mutation = (base: string) =>
  fc
    .array(
      fc.record({
        at: fc.nat({ max: base.length }),
        del: fc.nat({ max: 8 }),
        ins: fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 6 })),
      }),
      { minLength: 1, maxLength: 6 },
    )
    .map((ops) => {
      let s = base;
      for (const o of ops) {
        const at = Math.min(o.at, s.length);
        s = s.slice(0, at) + o.ins + s.slice(at + o.del);
      }
      return s;
    });

describe('load (limits)', () => {
  describe('when a document repeats one mistake many times', () => {
    it('returns at most 200 findings', () => {
      const text = 'apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: x}\n' + Array.from({ length: 1000 }, (_, i) => `k${i}: 1`).join('\n');
      const r = load(text, 'many.yaml');
      assert.equal(r.errors.length, 200);
      assert.ok(r.errors.every((e) => e.code === 'UNKNOWN_KEY'));
    });
  });
});

describe('parse + check (fuzz)', () => {
  const bases = examples();

  describe('when given random strings', () => {
    it('never throws and returns well-formed errors', { timeout: 120_000 }, () => {
      fc.assert(
        fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.array(fc.constantFrom(...pieces), { maxLength: 80 }).map((a) => a.join(''))), (text) => {
          const r = load(text, 'fuzz.yaml', () => text);
          wellFormed([...r.errors, ...r.warnings], text);
          assert.equal(r.policy === undefined, r.errors.length > 0 || r.policy === undefined);
        }),
        { numRuns: 2000, seed: 42 },
      );
    });
  });

  describe('when given mutations of the example policies', () => {
    it('never throws, and a loaded policy has no errors', { timeout: 120_000 }, () => {
      fc.assert(
        fc.property(fc.constantFrom(...bases).chain((b) => mutation(b)), (text) => {
          const r = load(text, 'mut.yaml', (p) => (p === 'self.yaml' ? text : undefined));
          wellFormed([...r.errors, ...r.warnings], text);
          if (r.policy) assert.equal(r.errors.length, 0);
        }),
        { numRuns: 3000, seed: 7 },
      );
    });
  });
});
