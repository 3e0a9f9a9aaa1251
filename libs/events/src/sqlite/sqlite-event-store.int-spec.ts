import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from './sqlite-event-store';
import { runEventStoreContract } from '../testing/event-store.contract';
import { decision, runRequested } from '../testing/fixtures';
import { chainHash, envelopeText } from '../hash';
import type { StoredEvent } from '../contracts';

function tmpStore(): { dir: string; path: string; store: SqliteEventStore } {
  const dir = mkdtempSync(join(tmpdir(), 'capulator-events-'));
  const path = join(dir, 'events.db');
  return { dir, path, store: SqliteEventStore.open(path) };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

runEventStoreContract('SQLite', async () => {
  const { dir, path, store } = tmpStore();
  return {
    store,
    connect: async () => SqliteEventStore.open(path),
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteEventStore', () => {
  describe('when the file is opened', () => {
    it('uses WAL with synchronous NORMAL', async () => {
      const { dir, store } = tmpStore();
      try {
        assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
        assert.equal(store.db.pragma('synchronous', { simple: true }), 1);
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('when an old schema version was written', () => {
    let t: ReturnType<typeof tmpStore>;
    before(() => {
      t = tmpStore();
    });
    after(async () => {
      await t.store.close();
      rmSync(t.dir, { recursive: true, force: true });
    });

    it('upcasts v0 on read and never rewrites the stored bytes', async () => {
      await t.store.append('run-a', 'no-stream', [runRequested('a')]);
      const head = t.store.head();
      // A v0 PrivilegeChecked, as an old release wrote it: `privilege` and `rule`, no answeredBy.
      const v0 = { runId: 'a', seq: 1, key: 'a:1', at: '2025-01-01T00:00:00.000Z', subject: { pid: 1, tid: 1, uid: 0, gid: 0, exe: '/bin/ping' },
        arch: 'x86_64', syscall: 'socket', nr: 41, args: {}, privilege: 'PRIV_NETINET_RAW', capability: 'CAP_NET_RAW', decision: 'deny', rule: 'no-raw',
        policy: { name: 'p', version: 1, hash: 'sha256:x' } };
      const text = JSON.stringify(v0);
      const pos = head.position + 1;
      const hash = Buffer.from(chainHash(head.hash, envelopeText(pos, JSON.stringify('run-a'), 2, 'PrivilegeChecked', 0, v0.at, text)), 'hex');
      const line = `PrivilegeChecked\t0\t${v0.at}\t${text}`;
      const raw = t.store.db;
      raw.prepare('INSERT INTO commits VALUES (?,?,?,?,?,?)').run(pos, pos, 'run-a', 2, line, hash);
      raw.prepare("UPDATE streams SET version = 2 WHERE stream_id = 'run-a'").run();
      raw.prepare('UPDATE head SET position = ?, hash = ?').run(pos, hash.toString('hex'));

      const [e] = (await collect(t.store.readStream('run-a', 2))) as StoredEvent<'PrivilegeChecked'>[];
      assert.equal(e.schemaVersion, 2);
      assert.equal(e.payload.source, 'agent'); // v1 → v2: only the agent wrote decisions before the kernel record
      assert.deepEqual(e.payload.privileges, ['PRIV_NETINET_RAW']);
      assert.equal(e.payload.ruleId, 'no-raw');
      assert.equal(e.payload.answeredBy, 'errno');
      assert.equal((e.payload as unknown as Record<string, unknown>).privilege, undefined);
      assert.equal(raw.prepare('SELECT events FROM commits WHERE first_position = ?').pluck().get(pos), line);
      assert.equal(t.store.verify().ok, true);
    });

    it('upcasts a v0 RunExited (no loss accounting) to lostEvents 0', async () => {
      const head = t.store.head();
      const p = { runId: 'a', exitCode: 0, signal: null, counts: { allow: 0, deny: 1, emulate: 0 }, durationMs: 5 };
      const text = JSON.stringify(p);
      const pos = head.position + 1;
      const at = '2025-01-01T00:00:01.000Z';
      const hash = Buffer.from(chainHash(head.hash, envelopeText(pos, JSON.stringify('run-a'), 3, 'RunExited', 0, at, text)), 'hex');
      t.store.db.prepare('INSERT INTO commits VALUES (?,?,?,?,?,?)').run(pos, pos, 'run-a', 3, `RunExited\t0\t${at}\t${text}`, hash);
      t.store.db.prepare("UPDATE streams SET version = 3 WHERE stream_id = 'run-a'").run();
      t.store.db.prepare('UPDATE head SET position = ?, hash = ?').run(pos, hash.toString('hex'));
      const all = await collect(t.store.readAll(pos));
      assert.deepEqual(all[0].payload, { lostEvents: 0, ...p });
    });
  });

  describe('when the log is tampered with', () => {
    // Five single-event commits on two streams, then one 3-event commit: positions 1..8.
    async function seeded() {
      const t = tmpStore();
      await t.store.append('run-a', 'no-stream', [decision('a', 1)]);
      await t.store.append('run-b', 'no-stream', [decision('b', 1)]);
      await t.store.append('run-a', 1, [decision('a', 2)]);
      await t.store.append('run-a', 2, [decision('a', 3)]);
      await t.store.append('run-b', 1, [decision('b', 2)]);
      await t.store.append('run-b', 2, [decision('b', 3), decision('b', 4), decision('b', 5)]);
      assert.equal(t.store.verify().ok, true);
      return t;
    }
    const cases: Array<[string, string, number, string]> = [
      ['an event is edited', "UPDATE commits SET events = replace(events, '\"decision\":\"allow\"', '\"decision\":\"deny\"') WHERE first_position = 3", 3, 'changed'],
      ['an event inside a multi-event commit is edited', "UPDATE commits SET events = replace(events, '\"seq\":4', '\"seq\":9') WHERE first_position = 6", 7, 'changed'],
      ['a time is edited', "UPDATE commits SET events = replace(events, '2026-01-01T00:00:00.003Z\t', '2026-01-01T00:00:00.009Z\t') WHERE first_position = 4", 4, 'changed'],
      ['an event is deleted', 'DELETE FROM commits WHERE first_position = 2', 2, 'missing'],
      ['a stream event is deleted and later positions renumbered', 'DELETE FROM commits WHERE first_position = 3; UPDATE commits SET first_position = first_position - 1, last_position = last_position - 1 WHERE first_position > 3', 3, 'missing'],
      ['two events of one stream are swapped', 'UPDATE commits SET first_position = -3, last_position = -3 WHERE first_position = 3; UPDATE commits SET first_position = 3, last_position = 3 WHERE first_position = 4; UPDATE commits SET first_position = 4, last_position = 4 WHERE first_position = -3', 3, 'reordered'],
      ['two events of different streams are swapped', 'UPDATE commits SET first_position = -2, last_position = -2 WHERE first_position = 2; UPDATE commits SET first_position = 2, last_position = 2 WHERE first_position = 3; UPDATE commits SET first_position = 3, last_position = 3 WHERE first_position = -2', 2, 'changed'],
      ['the tail is truncated', 'DELETE FROM commits WHERE first_position >= 5', 5, 'truncated'],
      ['the tail is truncated and the head rewritten to match', "DELETE FROM commits WHERE first_position >= 6; UPDATE head SET position = 5", 5, 'head-mismatch'],
    ];
    for (const [when, sql, position, kind] of cases) {
      it(`names the first bad position when ${when}`, async () => {
        const t = await seeded();
        try {
          t.store.db.exec(sql);
          const r = t.store.verify();
          assert.equal(r.ok, false);
          assert.equal(r.problem?.position, position, r.problem?.message);
          assert.equal(r.problem?.kind, kind, r.problem?.message);
        } finally {
          await t.store.close();
          rmSync(t.dir, { recursive: true, force: true });
        }
      });
    }
    it('detects truncation that also rewrote the head, given the head recorded earlier', async () => {
      const t = await seeded();
      try {
        const recorded = t.store.verify().head;
        const h5 = (t.store.db.prepare('SELECT hashes FROM commits WHERE first_position = 5').pluck().get() as Buffer).toString('hex');
        t.store.db.exec('DELETE FROM commits WHERE first_position >= 6');
        t.store.db.prepare('UPDATE head SET position = 5, hash = ?').run(h5);
        assert.equal(t.store.verify().ok, true);
        const r = t.store.verify({ expectHead: recorded });
        assert.equal(r.ok, false);
        assert.equal(r.problem?.kind, 'truncated');
        assert.equal(r.problem?.position, 6);
      } finally {
        await t.store.close();
        rmSync(t.dir, { recursive: true, force: true });
      }
    });
  });
});
