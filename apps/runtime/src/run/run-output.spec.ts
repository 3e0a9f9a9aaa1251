import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_LOG_FILES_MAX, RUN_OUTPUT_MAX_BYTES, RUN_OUTPUT_MAX_RUNS, RunOutputHub, type OutputChunk } from './run-output';

function readAll(hub: RunOutputHub, runId: string, after = 0, ended = true): { chunks: OutputChunk[]; ended: boolean } {
  const chunks: OutputChunk[] = [];
  let done = false;
  hub.read(runId, after, true, (c) => chunks.push(c), () => (done = true), ended);
  return { chunks, ended: done };
}

describe('RunOutputHub', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-output-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('with a directory (a server restarted)', () => {
    it("reads a run's output back from its file, numbered as it was, in docker's json-file lines", () => {
      const before = new RunOutputHub();
      before.persist(dir);
      before.write('r1', 'stdout', 'one\n');
      before.write('r1', 'stderr', 'two\n');
      before.write('r1', 'stdout', 'three');
      before.end('r1');
      const line = JSON.parse(readFileSync(join(dir, 'r1.jsonl'), 'utf8').split('\n')[1]);
      assert.deepEqual(Object.keys(line), ['log', 'stream', 'time', 'seq']);
      assert.equal(statSync(join(dir, 'r1.jsonl')).mode & 0o777, 0o600);

      const after = new RunOutputHub();
      after.persist(dir);
      const all = readAll(after, 'r1');
      assert.deepEqual(all.chunks.map((c) => [c.seq, c.stream, c.text]), [[1, 'stdout', 'one\n'], [2, 'stderr', 'two\n'], [3, 'stdout', 'three']]);
      assert.equal(all.ended, true);
      assert.deepEqual(readAll(after, 'r1', 2).chunks.map((c) => c.text), ['three'], 'resumes after a chunk number');
      assert.equal(after.truncated('r1'), false);
    });

    it('ends a follow at once for an ended run nobody here writes (read back, or none kept), and waits for one that is not ended', () => {
      const before = new RunOutputHub();
      before.persist(dir);
      before.write('cut', 'stdout', 'before the crash\n'); // never ended: the server was killed
      const after = new RunOutputHub();
      after.persist(dir);
      const cut = readAll(after, 'cut');
      assert.deepEqual([cut.chunks.map((c) => c.text), cut.ended], [['before the crash\n'], true]);
      assert.equal(readAll(after, 'none').ended, true);
      assert.equal(readAll(after, 'queued', 0, false).ended, false, 'a run not ended may still write');
    });

    it('keeps at most RUN_OUTPUT_MAX_RUNS ended runs in memory however many old runs are read', () => {
      const hub = new RunOutputHub();
      hub.persist(dir);
      for (let i = 0; i < RUN_OUTPUT_MAX_RUNS + 10; i++) readAll(hub, `old${i}`);
      assert.equal(hub.has('old0'), false, 'the oldest read went');
      assert.equal(hub.has(`old${RUN_OUTPUT_MAX_RUNS + 9}`), true);
    });

    it('goes on numbering a run that writes again after a restart (a worker still running it)', () => {
      const before = new RunOutputHub();
      before.persist(dir);
      before.write('w', 'stdout', 'a');
      before.write('w', 'stdout', 'b');
      const after = new RunOutputHub();
      after.persist(dir);
      after.write('w', 'stdout', 'c');
      after.end('w');
      const again = new RunOutputHub();
      again.persist(dir);
      assert.deepEqual(readAll(again, 'w').chunks.map((c) => [c.seq, c.text]), [[1, 'a'], [2, 'b'], [3, 'c']]);
    });

    it('keeps the file near the bound kept in memory: rewritten to the newest window, read back truncated as memory is', () => {
      const hub = new RunOutputHub();
      hub.persist(dir);
      const piece = 'x'.repeat(64 * 1024 - 1) + '\n';
      const n = Math.ceil((3 * RUN_OUTPUT_MAX_BYTES) / piece.length);
      for (let i = 0; i < n; i++) hub.write('big', 'stdout', piece);
      hub.end('big');
      assert.ok(statSync(join(dir, 'big.jsonl')).size <= 2 * RUN_OUTPUT_MAX_BYTES + 2 * piece.length, `file size ${statSync(join(dir, 'big.jsonl')).size}`);
      const back = new RunOutputHub();
      back.persist(dir);
      const mem = readAll(hub, 'big').chunks.map((c) => c.seq);
      assert.deepEqual(readAll(back, 'big').chunks.map((c) => c.seq), mem);
      assert.equal(mem[mem.length - 1], n);
      assert.equal(back.truncated('big'), true);
    });

    it(`keeps the files of the newest ${RUN_LOG_FILES_MAX} ended runs`, () => {
      // files of runs ended before this process, oldest first by their times
      const old = Date.now() / 1000 - 10_000;
      for (let i = 0; i < RUN_LOG_FILES_MAX; i++) {
        const f = join(dir, `old${i}.jsonl`);
        writeFileSync(f, JSON.stringify({ log: 'x', stream: 'stdout', time: '', seq: 1 }) + '\n');
        utimesSync(f, old + i, old + i);
      }
      const hub = new RunOutputHub();
      hub.persist(dir);
      hub.write('new1', 'stdout', 'y');
      hub.end('new1');
      hub.write('new2', 'stdout', 'z');
      hub.end('new2');
      const names = readdirSync(dir);
      assert.equal(names.length, RUN_LOG_FILES_MAX);
      assert.ok(!existsSync(join(dir, 'old0.jsonl')) && !existsSync(join(dir, 'old1.jsonl')), 'the two oldest went');
      assert.ok(existsSync(join(dir, 'old2.jsonl')) && existsSync(join(dir, 'new1.jsonl')) && existsSync(join(dir, 'new2.jsonl')));
    });

    it('keeps the output in memory, and says so once, when the file cannot be written', () => {
      const warnings: string[] = [];
      const hub = new RunOutputHub();
      hub.persist(dir, (m) => warnings.push(m));
      rmSync(dir, { recursive: true });
      writeFileSync(dir, ''); // the directory is now a file: every open fails
      hub.write('r', 'stdout', 'a');
      hub.write('r', 'stdout', 'b');
      hub.end('r');
      assert.deepEqual(readAll(hub, 'r').chunks.map((c) => c.text), ['a', 'b']);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /^run r: its output is no longer kept on disk/);
      rmSync(dir);
      mkdirSync(dir);
    });
  });
});
