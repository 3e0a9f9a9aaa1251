import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { check, load, parse, PARSE_LIMITS } from './index';

const HEADER = 'apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: t}\n';

describe('parse', () => {
  describe('when the text is well-formed', () => {
    it('returns an AST whose nodes carry 1-based line and column', () => {
      const r = parse(HEADER + 'rules:\n  - id: a\n    action: allow\n', 'p.yaml');
      assert.deepEqual(r.errors, []);
      assert.ok(r.ast && r.ast.root.kind === 'map');
      const rules = r.ast.root.entries.find((e) => e.key === 'rules')!;
      assert.deepEqual(rules.keyLoc, { file: 'p.yaml', line: 4, col: 1 });
      assert.equal(rules.value.kind, 'seq');
      if (rules.value.kind === 'seq') assert.deepEqual(rules.value.items[0].loc, { file: 'p.yaml', line: 5, col: 5 });
    });
  });

  describe('when the text is larger than 1 MiB', () => {
    it('refuses it without parsing', () => {
      const big = HEADER + '# ' + 'x'.repeat(PARSE_LIMITS.maxBytes) + '\n';
      const r = parse(big, 'big.yaml');
      assert.equal(r.ast, undefined);
      assert.deepEqual(r.errors.map((e) => [e.code, e.location.line, e.location.col]), [['YAML_TOO_LARGE', 1, 1]]);
    });
    it('counts bytes, not characters', () => {
      const r = parse('# ' + 'é'.repeat(PARSE_LIMITS.maxBytes / 2 + 1));
      assert.equal(r.errors[0]?.code, 'YAML_TOO_LARGE');
    });
  });

  describe('when block nesting is deeper than 32', () => {
    it('reports YAML_TOO_DEEP at the node that crosses the limit', () => {
      let text = HEADER + 'rules:\n';
      for (let i = 0; i < 40; i++) text += ' '.repeat(2 + i * 2) + `k${i}:\n`;
      const r = parse(text, 'deep.yaml');
      assert.equal(r.errors.length, 1);
      assert.equal(r.errors[0].code, 'YAML_TOO_DEEP');
      assert.equal(r.errors[0].location.line, 4 + 32);
    });
  });

  describe('when flow nesting is enormous', () => {
    it('answers without recursing into the YAML parser', () => {
      const r = parse('a: ' + '['.repeat(200_000) + ']'.repeat(200_000));
      assert.equal(r.errors[0].code, 'YAML_TOO_DEEP');
      assert.deepEqual([r.errors[0].location.line, r.errors[0].location.col], [1, 4 + 64]);
    });
  });

  describe('when aliases expand exponentially', () => {
    it('refuses the document with YAML_ALIAS_LIMIT', () => {
      let text = HEADER + 'x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n';
      for (let i = 1; i < 9; i++) text += `x${i}: &x${i} [${Array(10).fill(`*x${i - 1}`).join(', ')}]\n`;
      const r = parse(text);
      assert.equal(r.errors[0].code, 'YAML_ALIAS_LIMIT');
    });
    it('accepts a few aliases and expands them', () => {
      const r = load(HEADER + 'rules:\n  - id: a\n    match: {exe: &sh /bin/sh}\n    privileges: [PRIV_VFS_CHOWN]\n    action: allow\n  - id: b\n    match: {exe: *sh}\n    privileges: [PRIV_VFS_CHROOT]\n    action: allow\n');
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.policy!.rules[1].match.exe, ['/bin/sh']);
    });
  });

  describe('when the text has more lines or items than any policy', () => {
    it('refuses it before parsing, at the line that crosses the limit', () => {
      const r = parse('rules:\n' + '- 1\n'.repeat(PARSE_LIMITS.maxItems + 10));
      assert.deepEqual(r.errors.map((e) => [e.code, e.location.line]), [['YAML_TOO_LARGE', PARSE_LIMITS.maxItems + 1]]);
      const flow = parse('a: [' + '1,'.repeat(PARSE_LIMITS.maxItems + 10) + ']');
      assert.equal(flow.errors[0].code, 'YAML_TOO_LARGE');
    });
  });

  describe('when a mapping has a duplicate among many keys', () => {
    it('finds it (in linear time) at the second occurrence', () => {
      const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}: 1`);
      keys.push('k7: 2');
      const r = parse(keys.join('\n'));
      assert.deepEqual(r.errors.map((e) => [e.code, e.location.line, e.location.col]), [['YAML_DUPLICATE_KEY', 20_001, 1]]);
    });
  });

  describe('when there are two documents', () => {
    it('says so', () => {
      assert.equal(parse(HEADER + '---\n' + HEADER).errors[0].code, 'YAML_MULTIPLE_DOCUMENTS');
    });
  });
});

describe('check', () => {
  describe('when a document has several problems', () => {
    it('returns all of them sorted by position', () => {
      const ast = parse('kind: Nope\nmetadata: {name: x}\nbogus: 1\napiVersion: v0\n', 'x.yaml').ast!;
      const errs = check(ast);
      assert.deepEqual(errs.map((e) => `${e.location.line}:${e.location.col}:${e.code}`), ['1:7:BAD_KIND', '3:1:UNKNOWN_KEY', '4:13:BAD_API_VERSION']);
      assert.match(errs[1].message, /unknown key "bogus"/);
    });
  });
  describe('when a name is misspelt', () => {
    it('suggests the closest known name', () => {
      const r = load(HEADER + 'rules:\n  - id: a\n    privileges: [PRIV_VFS_CHWON]\n    action: allow\n');
      assert.match(r.errors[0].message, /did you mean PRIV_VFS_CHOWN\?/);
    });
  });
});
