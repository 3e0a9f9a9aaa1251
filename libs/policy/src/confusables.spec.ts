import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { load } from './index';
import { oddCharacter, printable } from './confusables';

const policy = (privilege: string) => `apiVersion: capulator/v1\nkind: Policy\nmetadata: {name: p}\nrules:\n  - id: a\n    privileges: [${privilege}]\n    action: allow\n`;
const message = (text: string) => {
  const r = load(text, 'p.yaml');
  const e = r.errors.find((x) => x.code === 'UNKNOWN_PRIVILEGE');
  assert.ok(e, JSON.stringify(r.errors));
  return e;
};

describe('names that are not what they seem', () => {
  describe('when a privilege holds a Cyrillic letter that looks Latin', () => {
    it('names the character and its column, and still suggests the Latin name', () => {
      // "    privileges: [" is 17 characters: the name starts at column 18; А is its 15th character
      const e = message(policy('PRIV_NETINET_R\u0410W'));
      assert.equal(e.location.col, 18);
      assert.match(e.message, /it contains U\+0410 CYRILLIC CAPITAL LETTER A at column 32 \(it looks like "A"\); did you mean PRIV_NETINET_RAW\?$/);
    });
  });
  describe('when the name is quoted', () => {
    it('counts the column from the first character inside the quotes', () => {
      const e = message(policy('"PRIV_NETINET_R\u0410W"'));
      assert.match(e.message, /at column 33 /);
    });
  });
  describe('when a privilege holds a control or zero-width character', () => {
    it('shows the character escaped, never raw, and names it', () => {
      const e = message(policy('"PRIV_NETINET\\u0000_RAW"'));
      assert.match(e.message, /^unknown privilege "PRIV_NETINET\\u\{0\}_RAW": it contains U\+0000 NUL at column 31; did you mean PRIV_NETINET_RAW\?$/);
      assert.ok(!e.message.includes('\u0000'));
      const z = message(policy('PRIV_NET\u200bINET_RAW'));
      assert.match(z.message, /U\+200B ZERO WIDTH SPACE at column 26/);
    });
  });
  describe('when a name is plain ASCII', () => {
    it('keeps the short hint', () => {
      const e = message(policy('PRIV_NETINET_RAX'));
      assert.match(e.message, /^unknown privilege "PRIV_NETINET_RAX"; did you mean PRIV_NETINET_RAW\?$/);
    });
  });
  it('describes Greek and fullwidth look-alikes and other scripts', () => {
    assert.deepEqual(oddCharacter('PRIV_\u039fK'), { index: 5, codePoint: 0x39f, description: 'U+039F GREEK CAPITAL LETTER OMICRON', looksLike: 'O' });
    assert.equal(oddCharacter('\uff30RIV')?.description, 'U+FF30 FULLWIDTH LATIN CAPITAL LETTER P');
    assert.equal(oddCharacter('PRIV_\u4e00')?.description, 'U+4E00 a Han character');
    assert.equal(oddCharacter('PRIV_OK'), undefined);
    assert.equal(printable('a\u202eb c'), 'a\\u{202e}b c');
  });
});
