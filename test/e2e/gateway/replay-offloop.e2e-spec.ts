import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { eventFixtures, SqliteEventStore, type NewEvent } from '@capulator/events';
import { bootGateway, type TestGateway } from './harness';

/** What-if replays run in a worker thread: the gateway keeps answering while one runs. */
const N = 40_000;
const CANDIDATE = `apiVersion: capulator/v1
kind: Policy
metadata: { name: candidate }
defaults: { action: deny, audit: all }
rules:
  - { id: stars, match: { exe: "*/*/*/*/*/*/*/*/*/x" }, privileges: [PRIV_NETINET_RAW], action: allow }
`;

describe('POST /v1/replays (off the event loop)', () => {
  let t: TestGateway;
  let dir: string;
  let auth: Record<string, string>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hostile-replay-'));
    const store = SqliteEventStore.open(join(dir, 'events.db'));
    // many distinct deep paths: every recorded request is evaluated again
    for (let run = 0; run < N / 10_000; run++) {
      const id = `00000000-0000-4000-8000-00000000000${run}`;
      const evs: NewEvent[] = [eventFixtures.runRequested(id), eventFixtures.runStarted(id, ['CAP_NET_RAW'])];
      for (let s = 1; s <= 10_000; s++) evs.push(eventFixtures.decision(id, s, { exe: `/deep${'/d'.repeat(s % 200)}/p${run}-${s}` }));
      evs.push(eventFixtures.runExited(id));
      await store.append(`run-${id}`, 'no-stream', evs);
    }
    t = await bootGateway({ store, replayTimeoutMs: 120_000 });
    auth = { Authorization: `Bearer ${t.admin}` };
    // catch the read models up once (that part runs on the gateway's thread)
    const first = await request(t.url).post("/v1/replays").set(auth).send({ policyYaml: CANDIDATE, runIds: ["00000000-0000-4000-8000-000000000000"] });
    assert.equal(first.status, 200, JSON.stringify(first.body));
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('when a long replay runs', () => {
    it('answers /healthz while it runs, and the replay still completes', async () => {
      let replayDone = false;
      const started = Date.now();
      const replay = request(t.url).post('/v1/replays').set(auth).send({ policyYaml: CANDIDATE }).then((r) => {
        replayDone = true;
        return r;
      });
      const health: Array<{ ms: number; duringReplay: boolean }> = [];
      await new Promise((r) => setTimeout(r, 50));
      while (!replayDone && Date.now() - started < 60_000) {
        const t0 = Date.now();
        await request(t.url).get('/healthz').expect(200);
        health.push({ ms: Date.now() - t0, duringReplay: !replayDone });
        await new Promise((r) => setTimeout(r, 20));
      }
      const r = await replay;
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.examined, N);
      const during = health.filter((h) => h.duringReplay);
      assert.ok(during.length >= 2, `the replay took ${Date.now() - started} ms; /healthz answered ${during.length} times while it ran`);
      const slow = during.filter((h) => h.ms > 1000);
      assert.deepEqual(slow, [], 'a /healthz during the replay took over a second');
    });
  });

  describe('when the replay passes its timeout', () => {
    it('is cancelled with 503', async () => {
      const t2 = await bootGateway({ store: t.gw.store, replayTimeoutMs: 1 });
      try {
        const r = await request(t2.url).post('/v1/replays').set({ Authorization: `Bearer ${t2.admin}` }).send({ policyYaml: CANDIDATE }).expect(503);
        assert.match(r.body.error.message, /cancelled/);
      } finally {
        await t2.close();
      }
    });
  });
});
