import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { compile, compileForContainer, load, lookup, parseTable, pctDecode, pctEncode } from './index';

const POLICY = `apiVersion: capulator/v1
kind: Policy
metadata: {name: my-policy, version: "7"}
defaults: {action: deny, audit: denials, errno: EACCES}
rules:
  - id: ping
    match: {exe: ["/usr/bin/ping", "/opt/my app/*"], uid: "0-999,65534"}
    privileges: [PRIV_NETINET_RAW]
    action: allow
  - id: web
    match: {image: "nginx:*", labels: {tier: web}}
    privileges: [PRIV_NETINET_RESERVEDPORT]
    when: {syscall: bind, port: "80,443"}
    action: allow
  - id: recverr
    when: {syscall: setsockopt, level: SOL_IP, option: [IP_RECVERR]}
    action: emulate
    return: 0
`;

function rehash(body: string): string {
  return `${body}end ${createHash('sha256').update(body).digest('hex')}\n`;
}

describe('compile', () => {
  const policy = load(POLICY, 'p.yaml').policy!;

  describe('when a policy is compiled', () => {
    it('writes the fixed line format, percent-encoding strings, with a sha256 over everything before `end`', () => {
      const t = compile(policy);
      const lines = t.text.trimEnd().split('\n');
      assert.deepEqual(lines.slice(0, 9), [
        'CAPTABLE 1',
        'policy my-policy 7',
        'default deny 13 0 denials',
        'rule 0 ping allow 1 0 denials',
        'm uid 0-999,65534-65534',
        'm exe /usr/bin/ping',
        'm exe /opt/my%20app/*',
        'p 497',
        'c 13',
      ]);
      assert.ok(lines.includes('w port 80-80,443-443'));
      assert.ok(lines.includes('w syscall setsockopt'));
      assert.ok(lines.includes('w level =SOL_IP'));
      assert.ok(lines.includes('m image nginx:*'));
      assert.ok(lines.includes('m label tier=web'));
      const body = t.text.slice(0, t.text.lastIndexOf('end '));
      assert.equal(t.hash, 'sha256:' + createHash('sha256').update(body).digest('hex'));
      assert.equal(lines[lines.length - 1], 'end ' + t.hash.slice(7));
    });
    it('is deterministic', () => assert.equal(compile(policy).text, compile(load(POLICY, 'p.yaml').policy!).text));
  });

  describe('when compiled for one container', () => {
    it('drops rules that cannot match its image or labels and keeps no image/label lines', () => {
      const other = compileForContainer(policy, { image: 'redis:7', labels: { tier: 'web' } });
      assert.equal(other.rules, 2);
      assert.ok(!other.text.includes('web'));
      const nginx = compileForContainer(policy, { image: 'nginx:1.27', labels: { tier: 'web' } });
      assert.equal(nginx.rules, 3);
      assert.ok(!/^m (image|label)/m.test(nginx.text));
      assert.equal(lookup(nginx, { syscall: 'bind', args: { port: 80 }, uid: 33 }).ruleId, 'web');
    });
  });
});

describe('parseTable', () => {
  const good = compile(load(POLICY, 'p.yaml').policy!).text;

  describe('when the table is intact', () => {
    it('parses it', () => assert.deepEqual(parseTable(good).errors, []));
  });
  describe('when a byte is changed', () => {
    it('reports a hash mismatch on the end line', () => {
      const bad = good.replace('allow', 'deny');
      const r = parseTable(bad);
      assert.equal(r.table, undefined);
      assert.match(r.errors[0].message, /hash mismatch/);
      assert.equal(r.errors[0].line, bad.trimEnd().split('\n').length);
    });
  });
  describe('when records are malformed (with a correct hash)', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['wrong header', 'CAPTABLE 2\npolicy a 1\ndefault deny 1 0 all\n', /CAPTABLE 1/],
      ['bad action', 'CAPTABLE 1\npolicy a 1\ndefault maybe 1 0 all\n', /default/],
      ['match before rule', 'CAPTABLE 1\npolicy a 1\ndefault deny 1 0 all\nm uid 0-0\n', /before the first rule/],
      ['backwards range', 'CAPTABLE 1\npolicy a 1\ndefault deny 1 0 all\nrule 0 r allow 1 0 all\nm uid 9-1\n', /bad ranges/],
      ['rule index gap', 'CAPTABLE 1\npolicy a 1\ndefault deny 1 0 all\nrule 1 r allow 1 0 all\n', /index must be 0/],
      ['unknown record', 'CAPTABLE 1\npolicy a 1\ndefault deny 1 0 all\nrule 0 r allow 1 0 all\nz 1\n', /unknown record/],
      ['bad percent escape', 'CAPTABLE 1\npolicy a%zz 1\ndefault deny 1 0 all\n', /policy/],
      ['p without c', 'CAPTABLE 1\npolicy a 1\ndefault deny 1 0 all\nrule 0 r allow 1 0 all\np 1\n', /go together/],
    ];
    for (const [name, body, re] of cases) {
      it(`rejects ${name}`, () => {
        const r = parseTable(rehash(body));
        assert.equal(r.table, undefined);
        assert.match(r.errors[0]?.message ?? '', re);
      });
    }
    it('rejects a table without the end line', () => assert.match(parseTable('CAPTABLE 1\n').errors[0].message, /end/));
  });
  describe('when given arbitrary text', () => {
    it('never throws', () => {
      fc.assert(
        fc.property(fc.string({ maxLength: 400 }), (s) => {
          parseTable(s);
          parseTable(rehash(s));
        }),
        { numRuns: 1000, seed: 3 },
      );
    });
  });
});

describe('pctEncode', () => {
  describe('when any string is encoded', () => {
    it('yields only 0x21-0x7e and decodes back', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
          const e = pctEncode(s);
          assert.match(e, /^[\x21-\x7e]*$/);
          assert.equal(pctDecode(e), s);
        }),
        { numRuns: 1000, seed: 5 },
      );
    });
  });
});
