import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { bootGateway, fixtureImages, parseSseText, PING_POLICY, until, type TestGateway } from './harness';

/** Real runs: runc + the native agent, through the gateway's in-process runtime. Needs root. */
describe('gateway runs under runc', () => {
  let t: TestGateway;
  let auth: { Authorization: string };
  before(async () => {
    t = await bootGateway({ grpc: false });
    auth = { Authorization: `Bearer ${t.admin}` };
    await request(t.url).post('/v1/images?tag=bb:1').set(auth).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().busyboxPing.dockerArchive)).expect(201);
    await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'application/yaml').send(PING_POLICY).expect(201);
  });
  after(async () => t?.close());

  const text = (res: any, cb: (err: Error | null, body: any) => void) => {
    let s = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (s += c));
    res.on('end', () => cb(null, s));
  };

  describe('when a program uses a privilege the policy allows', () => {
    it('records the decision and the exit code, visible over SSE, the run view and the audit query', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sh', '-c', 'ping -c1 -W1 127.0.0.1 >/dev/null; exit 3'], policy: 'ping' }).expect(202);
      const sse = await request(t.url).get(`/v1/runs/${r.body.id}/events`).set(auth).buffer(true).parse(text).expect(200);
      const events = parseSseText(sse.body);
      const types = events.map((e) => e.event);
      assert.deepEqual([types[0], types[1], types[types.length - 1]], ['RunRequested', 'RunStarted', 'RunExited']);
      const checked = events.find((e) => e.event === 'PrivilegeChecked');
      assert.ok(checked, `no PrivilegeChecked in ${types.join(',')}`);
      assert.equal(checked.data.payload.decision, 'allow');
      assert.equal(checked.data.payload.ruleId, 'ping-raw');
      assert.deepEqual((checked.data.payload as { policy: { name: string; version: number } }).policy.name, 'ping');
      const run = (await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth).expect(200)).body;
      assert.equal(run.status, 'exited');
      assert.equal(run.exitCode, 3);
      assert.ok(run.counts.allow >= 1);
      const d = await request(t.url).get(`/v1/decisions?run=${r.body.id}&privilege=PRIV_NETINET_RAW`).set(auth).expect(200);
      assert.ok(d.body.decisions.length >= 1);
      assert.equal(d.body.decisions[0].ruleId, 'ping-raw');
      const metrics = (await request(t.url).get('/metrics').set(auth).expect(200)).text;
      assert.match(metrics, /capulator_trapped_call_latency_seconds_count [1-9]/);
      // the run's end went over the EventBus (RunEndedHandler): the head is anchored outside events.db
      const exitedAt = events[events.length - 1].data.position;
      const anchors = await until('an anchor at or after the run end', () => {
        try {
          const lines = readFileSync(join(t.home, 'anchors.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { position: number });
          return lines.some((a) => a.position >= exitedAt) ? lines : undefined;
        } catch {
          return undefined;
        }
      });
      assert.ok(anchors.length >= 1);
    });
  });

  describe('when a program uses a privilege the policy denies', () => {
    it('records a deny and the what-if of the allowing policy reports no regression', async () => {
      const r = await request(t.url)
        .post('/v1/runs')
        .set(auth)
        .send({ image: 'bb:1', command: ['/bin/ping', '-c1', '-W1', '127.0.0.1'], policyYaml: PING_POLICY.replace('action: allow', 'action: deny').replace('name: ping', 'name: no-ping') })
        .expect(202);
      const run = await until('run exited', async () => {
        const g = (await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth)).body;
        return g.status === 'exited' || g.status === 'failed' ? g : undefined;
      });
      assert.equal(run.status, 'exited');
      // CAP_NET_RAW is absent from the sets, so the kernel refuses ping's raw socket (recorded by the
      // kernel record when it runs); ping fails with its own message and status
      assert.equal(run.exitCode, 2, JSON.stringify(run));
      const rep = await request(t.url).post('/v1/replays').set(auth).send({ policy: 'ping', runIds: [r.body.id] }).expect(200);
      assert.ok(rep.body.changed >= 1);
      assert.equal(rep.body.wouldDeny, 0);
      const back = await request(t.url).post('/v1/replays').set(auth).send({ policyYaml: PING_POLICY.replace('action: allow', 'action: deny'), runIds: [] }).expect(200);
      assert.ok(back.body.examined >= 1);
    });
  });

  describe('when a running run is stopped', () => {
    it('kills the container and the run ends', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sleep', '30'], policy: 'ping@1' }).expect(202);
      await until('running', async () => ((await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth)).body.status === 'running' ? true : undefined));
      const t0 = Date.now();
      await request(t.url).delete(`/v1/runs/${r.body.id}`).set(auth).expect(202);
      const run = await until('ended', async () => {
        const g = (await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth)).body;
        return g.status === 'exited' || g.status === 'failed' ? g : undefined;
      });
      assert.ok(Date.now() - t0 < 10_000);
      assert.equal(run.status, 'exited');
      assert.equal(run.exitCode, 137);
    });
  });
});
