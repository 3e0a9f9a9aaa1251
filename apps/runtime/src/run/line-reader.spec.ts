import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { LineReader, parseControlLine } from './line-reader';

describe('LineReader', () => {
  it('hands on complete lines across chunk boundaries, skips empty ones and keeps the unfinished tail', () => {
    const lines: string[] = [];
    const r = new LineReader((l) => lines.push(l));
    r.push('dec');
    r.push('ision\t1\n\n{"type":"re');
    assert.deepEqual(lines, ['decision\t1']);
    r.push('ady"}\nkcheck\t2');
    assert.deepEqual(lines, ['decision\t1', '{"type":"ready"}']);
    r.push('\n');
    assert.deepEqual(lines, ['decision\t1', '{"type":"ready"}', 'kcheck\t2']);
  });
});

describe('parseControlLine', () => {
  it('accepts a JSON object with a string type and refuses everything else', () => {
    assert.deepEqual(parseControlLine('{"type":"exit","lost":0}'), { type: 'exit', lost: 0 });
    for (const bad of ['{"type":1}', 'null', '[1]', '{not json', '"ready"']) assert.equal(parseControlLine(bad), undefined, bad);
  });
});
