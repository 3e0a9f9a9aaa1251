import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { LogPrinter, lastLines, parseTail, type LogChunk } from './log-lines';

const out = (stream: 'stdout' | 'stderr', time: string, text: string): LogChunk => ({ stream, time, text });

describe('logs --tail and -t', () => {
  it('--tail takes a count of lines or all, and says what it wants otherwise', () => {
    assert.equal(parseTail('all'), undefined);
    assert.equal(parseTail('0'), 0);
    assert.equal(parseTail('25'), 25);
    for (const bad of ['-1', 'x', '1.5', '', '10000000000']) assert.throws(() => parseTail(bad), { message: `--tail ${bad}: want a number of lines, or all` });
  });

  it('the last lines are whole lines, though their parts came in several chunks with the other stream between', () => {
    const chunks = [
      out('stdout', 't1', 'one\ntw'),
      out('stderr', 't2', 'warn\n'),
      out('stdout', 't3', 'o\nthree\nfo'),
      out('stderr', 't4', 'partial err'),
    ];
    assert.deepEqual(lastLines(chunks, 100), [
      out('stdout', 't1', 'one\n'),
      out('stderr', 't2', 'warn\n'),
      out('stdout', 't1', 'two\n'),
      out('stdout', 't3', 'three\n'),
      out('stdout', 't3', 'fo'),
      out('stderr', 't4', 'partial err'),
    ]);
    assert.deepEqual(lastLines(chunks, 3).map((c) => c.text), ['three\n', 'fo', 'partial err']);
    assert.deepEqual(lastLines(chunks, 0), []);
    assert.deepEqual(lastLines([], 5), []);
  });

  it('keeps only what it needs of a long output, and still gives the last lines', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => out('stdout', `t${i}`, `line ${i}\n`));
    assert.deepEqual(lastLines(many, 2).map((c) => c.text), ['line 9998\n', 'line 9999\n']);
  });

  it('-t starts every line with its time, a line cut over chunks once', () => {
    const o = new PassThrough();
    const e = new PassThrough();
    const p = new LogPrinter(o, e, true);
    for (const c of [out('stdout', 'T1', 'a\nb\nc'), out('stderr', 'T2', 'x\n'), out('stdout', 'T3', 'c\nd\n'), out('stdout', 'T4', '')]) p.write(c);
    assert.equal(o.read().toString(), 'T1 a\nT1 b\nT1 cc\nT3 d\n');
    assert.equal(e.read().toString(), 'T2 x\n');
    const plain = new PassThrough();
    new LogPrinter(plain, plain).write(out('stdout', 'T1', 'as it came\n'));
    assert.equal(plain.read().toString(), 'as it came\n');
  });
});
