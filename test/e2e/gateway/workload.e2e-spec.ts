import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { bootGateway, DENY_ALL, fixtureImages, parseSseText, until, type TestGateway } from './harness';

/**
 * `capulator run`'s workload flags over the HTTP API (`workload` in POST /v1/runs): parsed by the
 * runtime's one parser, recorded in RunRequested, applied by the runner, refused with the flag's
 * own reason, and bounded by the token's scopes (a bridge network needs runs:network, the host's
 * network runs:host-network). Real runs of busybox under runc.
 */
describe('POST /v1/runs with a workload', () => {
  let t: TestGateway;
  let auth: { Authorization: string };
  before(async () => {
    t = await bootGateway({ grpc: false });
    auth = { Authorization: `Bearer ${t.admin}` };
    await request(t.url).post('/v1/images?tag=bb:1').set(auth).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().busyboxPing.dockerArchive)).expect(201);
    await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'application/yaml').send(DENY_ALL).expect(201);
  });
  after(async () => {
    await t?.close();
  });

  const ended = (id: string) =>
    until(`run ${id} to end`, async () => {
      const g = (await request(t.url).get(`/v1/runs/${id}`).set(auth)).body;
      return g.status === 'exited' || g.status === 'failed' ? g : undefined;
    }, 60_000);

  describe('when it sets the user, working directory, host name and limits', () => {
    it('runs the program so, and records what it asked for in RunRequested', async () => {
      const workload = { user: '1000:1000', workdir: '/tmp', hostname: 'web1', memory: '64m', pidsLimit: '50', readOnly: true, tmpfs: ['/tmp'] };
      const r = await request(t.url)
        .post('/v1/runs')
        .set(auth)
        .send({ image: 'bb:1', command: ['/bin/sh', '-c', 'hostname; id -u; id -g; pwd; touch /x 2>&1 || echo read-only'], policy: 'deny-all', workload })
        .expect(202);
      const run = await ended(r.body.id);
      assert.equal(run.status, 'exited', JSON.stringify(run));
      assert.equal(run.exitCode, 0);
      const logs = await request(t.url).get(`/v1/runs/${r.body.id}/logs`).set(auth).buffer(true).parse((res, cb) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () => cb(null, s));
      });
      const out = parseSseText(logs.body as string)
        .filter((e) => e.event === 'stdout')
        .map((e) => (e.data as unknown as { text: string }).text)
        .join('');
      assert.match(out, /^web1\n1000\n1000\n\/tmp\n(touch: \/x: Read-only file system\n)?read-only\n$/);
      const ev = await request(t.url).get(`/v1/runs/${r.body.id}/events`).set(auth).buffer(true).parse((res, cb) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () => cb(null, s));
      });
      const requested = parseSseText(ev.body as string).find((e) => e.data.type === 'RunRequested')!.data.payload as { workload?: Record<string, unknown> };
      assert.deepEqual(requested.workload, { memory: 64 * 1024 * 1024, pidsLimit: 50, user: '1000:1000', workdir: '/tmp', readOnly: true, tmpfs: requested.workload!.tmpfs, hostname: 'web1' });
      assert.equal((requested.workload!.tmpfs as Array<{ destination: string }>)[0].destination, '/tmp');
    });
  });

  describe('when a value is not what the flag takes', () => {
    it('answers 400 with the flag\'s own reason, and no run is recorded', async () => {
      const before = (await request(t.url).get('/v1/runs').set(auth)).body.runs.length;
      for (const [workload, reason] of [
        [{ memory: '5x' }, /--memory 5x: want a size/],
        [{ network: 'overlay' }, /--network overlay: want one of none, bridge, host/],
        [{ publish: ['80:80'], network: 'none' }, /-p needs --network bridge/],
        [{ user: '' }, /user/],
      ] as const) {
        const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/true'], policy: 'deny-all', workload });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.match(JSON.stringify(r.body.error), reason);
      }
      const unknown = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', policy: 'deny-all', workload: { tty: true } });
      assert.equal(unknown.status, 400, 'no pty through the API');
      assert.equal((await request(t.url).get('/v1/runs').set(auth)).body.runs.length, before);
    });
  });

  describe('when it asks for a network', () => {
    it('needs runs:network for a bridge (and ports), runs:host-network for the host\'s', async () => {
      const submit = (tk: string, workload: unknown) => request(t.url).post('/v1/runs').set({ Authorization: `Bearer ${tk}` }).send({ image: 'no-such-image:1', policy: 'deny-all', workload });
      const write = t.token('runs:write');
      assert.equal((await submit(write, { network: 'bridge' })).status, 403);
      assert.equal((await submit(write, { publish: ['127.0.0.1:18080:80'] })).status, 403);
      assert.equal((await submit(write, { network: 'host' })).status, 403);
      assert.equal((await submit(t.token('runs:write', 'runs:network'), { network: 'host' })).status, 403);
      assert.equal((await submit(t.token('runs:write', 'runs:network'), { network: 'bridge' })).status, 202);
      assert.equal((await submit(t.token('runs:write', 'runs:host-network'), { network: 'host' })).status, 202);
      assert.equal((await submit(write, { network: 'none', memory: '32m' })).status, 202);
    });
  });
});
