import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anchorKey, readAnchors } from './anchor';
import { Anchorer } from './anchorer';

describe('Anchorer.anchorSoon (a server ending runs)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'capulator-anchorer-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('returns before the disk, coalesces ends that come while one anchor syncs, and ends on the latest head', async () => {
    const paths = { file: join(dir, 'anchors.jsonl'), key: join(dir, 'keys', 'anchor.key') };
    let head = { position: 0, hash: '0'.repeat(64) };
    const warnings: string[] = [];
    const a = new Anchorer(paths, () => head, (m) => warnings.push(m));
    a.anchorSoon(); // an empty log is not anchored
    for (let p = 1; p <= 50; p++) {
      head = { position: p, hash: p.toString(16).padStart(64, '0') };
      a.anchorSoon();
    }
    await a.settled();
    const { anchors, bad } = readAnchors(paths.file, anchorKey(paths.key, false)!);
    assert.deepEqual(bad, []);
    assert.deepEqual(warnings, []);
    // the first end is written at once; the 49 that came while it synced are one more anchor, of the last head
    assert.deepEqual(anchors.map((x) => x.position), [1, 50]);
    assert.equal(anchors[1].hash, head.hash);
    // an unchanged head is not anchored again
    a.anchorSoon();
    await a.settled();
    assert.equal(readFileSync(paths.file, 'utf8').trim().split('\n').length, 2);
  });

  it("anchors a partitioned log's moved heads as anchors of that log, one per partition", async () => {
    const paths = { file: join(dir, 'kafka-anchors.jsonl'), key: join(dir, 'keys3', 'anchor.key') };
    let heads = [{ position: 1, hash: 'a'.repeat(64) }, { position: 0, hash: '0'.repeat(64) }, { position: 3, hash: 'c'.repeat(64) }];
    const a = new Anchorer(paths, () => heads, () => assert.fail('no warning'), { log: 'kafka:capulator.events' });
    a.anchorSoon();
    await a.settled();
    heads = [{ position: 4, hash: 'd'.repeat(64) }, heads[1], heads[2]];
    a.anchorSoon();
    await a.settled();
    const got = readAnchors(paths.file, anchorKey(paths.key, false)!);
    assert.deepEqual(got.bad, []);
    // partition 1 (empty) never, partition 2 once (it did not move), partition 0 at 1 and again at 4
    assert.deepEqual(got.anchors.map((x) => [x.v, x.log, x.position]), [[2, 'kafka:capulator.events', 1], [2, 'kafka:capulator.events', 3], [2, 'kafka:capulator.events', 4]]);
    // without the log's name a partitioned log is not anchored (v1 anchors would be taken for the SQLite store's)
    const warnings: string[] = [];
    const nameless = new Anchorer(paths, () => heads, (m) => warnings.push(m));
    nameless.anchorSoon();
    await nameless.settled();
    assert.match(warnings[0] ?? '', /need its name/);
  });

  it('writes at most one round of anchors per interval; one that waits is written when it comes due, or at shutdown', async () => {
    const paths = { file: join(dir, 'paced.jsonl'), key: join(dir, 'keys4', 'anchor.key') };
    let head = { position: 1, hash: '1'.repeat(64) };
    const a = new Anchorer(paths, () => head, () => assert.fail('no warning'), { minIntervalMs: 400 });
    const lines = () => (existsSync(paths.file) ? readFileSync(paths.file, 'utf8').trim().split('\n').length : 0);
    a.anchorSoon();
    await a.settled();
    assert.equal(lines(), 1);
    head = { position: 2, hash: '2'.repeat(64) };
    a.anchorSoon();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(lines(), 1, 'not before the interval is over');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(lines(), 2, 'written when it came due, without anyone asking again');
    head = { position: 3, hash: '3'.repeat(64) };
    a.anchorSoon();
    await a.settled(); // shutdown: the waiting one now
    assert.deepEqual(readAnchors(paths.file, anchorKey(paths.key, false)!).anchors.map((x) => x.position), [1, 2, 3]);
  });

  it('reports a file it cannot write to warn, and goes on', async () => {
    // a directory where the anchor file should be: open fails (EISDIR)
    const blocked = { file: dir, key: join(dir, 'keys2', 'anchor.key') };
    const warnings: string[] = [];
    const a = new Anchorer(blocked, () => ({ position: 3, hash: 'a'.repeat(64) }), (m) => warnings.push(m));
    a.anchorSoon();
    await a.settled();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /cannot write an anchor to .*EISDIR/);
  });
});
