import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { eventFixtures as fx, SqliteEventStore, type NewEvent } from '@capulator/events';
import { fixtureImages } from '../../../../test/fixtures/images';

/** Anchors: `audit anchor`, and `audit verify` telling a deleted tail and a rebuilt chain from the anchored log. */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');

let base: string;
const homes: string[] = [];
const cap = (home: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_ANCHOR_KEY: '', CAPULATOR_ANCHOR_FILE: '', ...env, CAPULATOR_HOME: home } });
/** A copy of the anchored home to tamper with. */
function copyHome(): string {
  const h = mkdtempSync(join(tmpdir(), 'capulator-anchor-t-'));
  cpSync(base, h, { recursive: true });
  homes.push(h);
  return h;
}

async function recordRuns(store: SqliteEventStore, from: number, to: number): Promise<void> {
  for (let r = from; r < to; r++) {
    const id = `a${r}`;
    await store.append(`run-${id}`, 'no-stream', [fx.runRequested(id), fx.runStarted(id, ['CAP_NET_RAW'])]);
    await store.append(`run-${id}`, 2, Array.from({ length: 20 }, (_, i) => fx.decision(id, i + 1)));
    await store.append(`run-${id}`, 22, [fx.runExited(id)]);
  }
}

describe('audit anchor / verify against anchors', () => {
  let anchored: { position: number; hash: string };
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'capulator-anchor-'));
    const store = SqliteEventStore.open(join(base, 'events.db'));
    await recordRuns(store, 0, 5);
    await store.close();
    const r = cap(base, ['audit', 'anchor', '--json']);
    assert.equal(r.status, 0, r.stderr);
    anchored = JSON.parse(r.stdout);
    assert.equal(anchored.position, 5 * 23);
  });
  after(() => {
    for (const h of [base, ...homes]) rmSync(h, { recursive: true, force: true });
  });

  it('keeps the key apart from events.db, mode 0600, and appends one line per new head', () => {
    assert.equal(statSync(join(base, 'keys', 'anchor.key')).mode & 0o777, 0o600);
    const again = cap(base, ['audit', 'anchor']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /already anchored/);
    assert.equal(readFileSync(join(base, 'anchors.jsonl'), 'utf8').trim().split('\n').length, 1);
  });

  it('an untouched log verifies, naming the anchor', () => {
    const r = cap(copyHome(), ['audit', 'verify']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ok: 115 events, the chain is whole; head 115:${anchored.hash}; agrees with 1 anchor\\(s\\), the last at position 115 `));
  });

  it('events appended after the anchor verify too', async () => {
    const h = copyHome();
    const store = SqliteEventStore.open(join(h, 'events.db'));
    await recordRuns(store, 5, 6);
    await store.close();
    assert.equal(cap(h, ['audit', 'verify']).status, 0);
  });

  it('the last commit deleted and the head pointed at the one before: the missing tail is named', () => {
    const h = copyHome();
    const db = new Database(join(h, 'events.db'));
    const [first, hashes, streamId, firstVersion] = db.prepare('SELECT first_position, hashes, stream_id, first_version FROM commits ORDER BY first_position DESC LIMIT 1').raw().get() as [number, Buffer, string, number];
    const prevHashes = db.prepare('SELECT hashes FROM commits WHERE first_position < ? ORDER BY first_position DESC LIMIT 1').pluck().get(first) as Buffer;
    assert.ok(hashes.length > 0);
    db.prepare('DELETE FROM commits WHERE first_position = ?').run(first);
    db.prepare('UPDATE head SET position = ?, hash = ? WHERE id = 1').run(first - 1, prevHashes.subarray(prevHashes.length - 32).toString('hex'));
    db.prepare('UPDATE streams SET version = ? WHERE stream_id = ?').run(firstVersion - 1, streamId);
    db.close();
    // the chain's own checks pass: only the anchor tells
    const plain = cap(h, ['audit', 'verify'], { CAPULATOR_ANCHOR_FILE: join(h, 'no-anchors.jsonl'), CAPULATOR_ANCHOR_KEY: join(h, 'no-key') });
    assert.equal(plain.status, 0, plain.stderr);
    const r = cap(h, ['audit', 'verify']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `capulator: verify failed at position 115: event 115 is missing: the last anchor at position 115 (${(anchored as { at?: string }).at}) names hash ${anchored.hash}\n`);
  });

  it('the whole chain rebuilt with new hashes (one decision changed): detected at the anchor', async () => {
    const h = copyHome();
    const src = SqliteEventStore.open(join(base, 'events.db'), { readonly: true });
    rmSync(join(h, 'events.db'), { force: true });
    for (const x of ['-wal', '-shm']) rmSync(join(h, 'events.db' + x), { force: true });
    const forged = SqliteEventStore.open(join(h, 'events.db'));
    for await (const e of src.readAll(1)) {
      const payload = e.type === 'PrivilegeChecked' && e.position === 10 ? { ...(e.payload as object), decision: 'deny' } : e.payload;
      await forged.append(e.streamId, 'any', [{ type: e.type, at: e.at, payload } as NewEvent]);
    }
    await src.close();
    await forged.close();
    const r = cap(h, ['audit', 'verify']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^capulator: verify failed at position 115: the chain up to position 115 differs from the anchored one: the anchor of \S+ names hash [0-9a-f]{64}, the log has [0-9a-f]{64} \(the log was rewritten or rebuilt\)\n$/);
  });

  it('an edited anchor line or a missing key fails closed (exit 1); an exported anchor is checked too', () => {
    const h = copyHome();
    const file = join(h, 'anchors.jsonl');
    const a = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...a, position: 114 }) + '\n');
    const edited = cap(h, ['audit', 'verify']);
    assert.deepEqual([edited.status, edited.stderr], [1, `capulator: anchor file ${file} line 1 is not a validly signed anchor (edited or forged)\n`]);
    const h2 = copyHome();
    const exported = join(h2, 'exported.json');
    assert.equal(cap(h2, ['audit', 'anchor', '--export', exported]).status, 0);
    assert.equal(cap(h2, ['audit', 'verify', '--anchor', exported]).status, 0);
    // --anchor naming something that is not an anchor file: one line saying what it is not
    const notAnchors = cap(h2, ['audit', 'verify', '--anchor', '/etc/passwd']);
    assert.deepEqual([notAnchors.status, notAnchors.stderr], [2, 'capulator: --anchor /etc/passwd: not a file of anchors (one JSON object a line, as `capulator audit anchor` writes)\n']);
    const missing = cap(h2, ['audit', 'verify', '--anchor', join(h2, 'nope.json')]);
    assert.deepEqual([missing.status, missing.stderr], [2, `capulator: --anchor ${join(h2, 'nope.json')}: no such file or directory\n`]);
    rmSync(join(h2, 'keys', 'anchor.key'));
    const nokey = cap(h2, ['audit', 'verify']);
    assert.deepEqual([nokey.status, nokey.stderr], [1, `capulator: cannot check the anchors: the anchor key ${join(h2, 'keys', 'anchor.key')} is missing\n`]);
  });

  it('capulator run anchors the head at the run’s end', () => {
    const h = mkdtempSync(join(tmpdir(), 'capulator-anchor-run-'));
    homes.push(h);
    const rootfs = fixtureImages().rootfs;
    const r = cap(h, ['run', '--id', 'anchored-run', rootfs, '--', '/bin/true']);
    assert.equal(r.status, 0, r.stderr);
    const lines = readFileSync(join(h, 'anchors.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const v = cap(h, ['audit', 'verify', '--json']);
    assert.equal(JSON.parse(v.stdout).head.position, lines[lines.length - 1].position);
    assert.equal(v.status, 0);
  });
});
