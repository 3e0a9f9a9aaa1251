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
      const notBool = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', policy: 'deny-all', workload: { tty: 'yes' } });
      assert.equal(notBool.status, 400, JSON.stringify(notBool.body));
      assert.match(JSON.stringify(notBool.body.error), /tty must be a boolean/);
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

  describe('when it is interactive (-i)', () => {
    const logsOf = async (id: string) => {
      const logs = await request(t.url).get(`/v1/runs/${id}/logs`).set(auth).buffer(true).parse((res, cb) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (s += c));
        res.on('end', () => cb(null, s));
      });
      return parseSseText(logs.body as string)
        .filter((e) => e.event === 'stdout')
        .map((e) => (e.data as unknown as { text: string }).text)
        .join('');
    };
    const stdin = (id: string, body: Buffer | string, query = '') => request(t.url).post(`/v1/runs/${id}/stdin${query}`).set(auth).set('Content-Type', 'application/octet-stream').send(Buffer.from(body));

    it("feeds what POST /v1/runs/{id}/stdin sends to the program's stdin, in order, and eof=1 closes it", async () => {
      const r = await request(t.url)
        .post('/v1/runs')
        .set(auth)
        .send({ image: 'bb:1', command: ['/bin/sh', '-c', 'while read l; do echo "got $l"; done; echo eof'], policy: 'deny-all', workload: { interactive: true } })
        .expect(202);
      // sent at once: what arrives before the run starts waits for it
      await stdin(r.body.id, 'one\ntwo\n').expect(204);
      await stdin(r.body.id, 'three\n', '?eof=1').expect(204);
      const run = await ended(r.body.id);
      assert.equal(run.status, 'exited', JSON.stringify(run));
      assert.equal(run.exitCode, 0);
      assert.equal(await logsOf(r.body.id), 'got one\ngot two\ngot three\neof\n');
      // the run has ended: nothing more is taken
      const late = await stdin(r.body.id, 'four\n');
      assert.equal(late.status, 409, JSON.stringify(late.body));
    });

    it('passes more than the server holds at once (the request waits for the program to read it)', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sh', '-c', 'sleep 1; wc -c'], policy: 'deny-all', workload: { interactive: true } }).expect(202);
      const big = Buffer.alloc(900 * 1024, 'x');
      await stdin(r.body.id, big).expect(204);
      await stdin(r.body.id, big, '?eof=true').expect(204);
      const run = await ended(r.body.id);
      assert.equal(run.exitCode, 0, JSON.stringify(run));
      assert.equal((await logsOf(r.body.id)).trim(), String(2 * big.length));
    });

    it('answers a write the program never reads with 409 once the run has ended, not never', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sleep', '1'], policy: 'deny-all', workload: { interactive: true } }).expect(202);
      // the first MiB may still fit in the pipe to runc; the next waits for a reader that never comes
      const statuses: number[] = [];
      for (let i = 0; i < 4 && !statuses.includes(409); i++) statuses.push((await stdin(r.body.id, Buffer.alloc(1024 * 1024, 'y'))).status);
      assert.equal(statuses[statuses.length - 1], 409, statuses.join(' '));
      assert.equal((await ended(r.body.id)).exitCode, 0);
    });

    it('refuses stdin for a run without -i (409), another content type (415), more than 1 MiB (413), and without runs:write (403)', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sleep', '5'], policy: 'deny-all' }).expect(202);
      const plain = await stdin(r.body.id, 'x');
      assert.equal(plain.status, 409, JSON.stringify(plain.body));
      assert.match(plain.body.error.message, /not started with -i/);
      // one request at a time per run, so what a client sends arrives in its order
      const i0 = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sh', '-c', 'sleep 2; wc -c'], policy: 'deny-all', workload: { interactive: true } }).expect(202);
      // the first MiB fits in the pipe to runc; the second waits until `wc` reads
      await stdin(i0.body.id, Buffer.alloc(1024 * 1024, 'a')).expect(204);
      const [a, b] = await Promise.all([stdin(i0.body.id, Buffer.alloc(1024 * 1024, 'a')), new Promise((res) => setTimeout(res, 300)).then(() => stdin(i0.body.id, 'b'))]);
      assert.equal(a.status, 204);
      assert.equal(b.status, 409, JSON.stringify(b.body));
      assert.match(b.body.error.message, /another stdin request/);
      await stdin(i0.body.id, '', '?eof=1').expect(204);
      assert.equal((await ended(i0.body.id)).exitCode, 0);
      assert.equal((await logsOf(i0.body.id)).trim(), String(2 * 1024 * 1024));
      const json = await request(t.url).post(`/v1/runs/${r.body.id}/stdin`).set(auth).send({ text: 'x' });
      assert.equal(json.status, 415, JSON.stringify(json.body));
      const i = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/cat'], policy: 'deny-all', workload: { interactive: true } }).expect(202);
      const tooBig = await stdin(i.body.id, Buffer.alloc(1024 * 1024 + 1, 'z'));
      assert.equal(tooBig.status, 413, JSON.stringify(tooBig.body));
      const reader = await request(t.url).post(`/v1/runs/${i.body.id}/stdin`).set({ Authorization: `Bearer ${t.token('runs:read')}` }).set('Content-Type', 'application/octet-stream').send(Buffer.from('x'));
      assert.equal(reader.status, 403);
      await stdin(i.body.id, 'last\n', '?eof=1').expect(204);
      assert.equal((await ended(i.body.id)).exitCode, 0);
      assert.equal(await logsOf(i.body.id), 'last\n');
      await request(t.url).delete(`/v1/runs/${r.body.id}`).set(auth).expect(202);
      await ended(r.body.id);
    });
  });
  describe('when a token other than the submitter\'s stops, feeds or resizes a run', () => {
    it('is refused (403) unless it has runs:admin; the submitter and runs:admin may, and the run names its submitter', async () => {
      const as = (tk: string) => ({ Authorization: `Bearer ${tk}` });
      const owner = t.token('runs:write', 'runs:read');
      const other = t.token('runs:write', 'runs:read');
      const operator = t.token('runs:write', 'runs:admin');
      const r = await request(t.url)
        .post('/v1/runs')
        .set(as(owner))
        .send({ image: 'bb:1', command: ['/bin/sh', '-c', 'read l; echo "got $l"; sleep 30'], policy: 'deny-all', workload: { interactive: true, tty: true } })
        .expect(202);
      const id = r.body.id as string;
      const mine = (await request(t.url).get(`/v1/runs/${id}`).set(as(other)).expect(200)).body;
      assert.match(mine.requestedBy, /^t\d+$/, 'the run names the token that submitted it');
      const refused = [
        await request(t.url).post(`/v1/runs/${id}/stdin`).set(as(other)).set('Content-Type', 'application/octet-stream').send(Buffer.from('evil\n')),
        await request(t.url).post(`/v1/runs/${id}/resize`).set(as(other)).send({ rows: 10, cols: 10 }),
        await request(t.url).delete(`/v1/runs/${id}`).set(as(other)),
      ];
      for (const x of refused) {
        assert.equal(x.status, 403, JSON.stringify(x.body));
        assert.match(x.body.error.message, /submitted by another token.*runs:admin/);
      }
      await request(t.url).post(`/v1/runs/${id}/resize`).set(as(owner)).send({ rows: 30, cols: 90 }).expect(204);
      await request(t.url).post(`/v1/runs/${id}/stdin`).set(as(owner)).set('Content-Type', 'application/octet-stream').send(Buffer.from('hello\n')).expect(204);
      const output = async () =>
        String(
          (
            await request(t.url).get(`/v1/runs/${id}/logs`).set(auth).buffer(true).parse((res, cb) => {
              let b = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (b += c));
              res.on('end', () => cb(null, b));
            })
          ).body,
        );
      await until('the program to read what its submitter sent', async () => (/got hello/.test(await output()) ? true : undefined));
      await request(t.url).delete(`/v1/runs/${id}`).set(as(operator)).expect(202);
      const end = await ended(id);
      assert.notEqual(end.exitCode, 0, 'stopped, not ended by itself');
      assert.doesNotMatch(await output(), /evil/);
    });
  });
});
