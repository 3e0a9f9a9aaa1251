import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import request from 'supertest';
import { bootGateway, DENY_ALL, fixtureImages, parseSseText, PING_POLICY, until, type TestGateway } from './harness';

const MISSING_IMAGE = 'no-such-image:1';
const PING_V2 = PING_POLICY.replace('[PRIV_NETINET_RAW]', '[PRIV_NETINET_RAW, PRIV_NET_RAW]');

describe('gateway HTTP API', () => {
  let t: TestGateway;
  let auth: { Authorization: string };
  before(async () => {
    t = await bootGateway();
    auth = { Authorization: `Bearer ${t.admin}` };
  });
  after(async () => t?.close());

  describe('when checking health and metrics', () => {
    it('answers /healthz and /readyz without a token', async () => {
      await request(t.url).get('/healthz').expect(200, { status: 'ok' });
      const r = await request(t.url).get('/readyz').expect(200);
      assert.equal(r.body.status, 'ready');
    });

    it('serves Prometheus text on /metrics to a token holder only', async () => {
      await request(t.url).get('/metrics').expect(401);
      const r = await request(t.url).get('/metrics').set(auth).expect(200);
      assert.match(r.headers['content-type'], /^text\/plain;/);
      assert.match(r.headers['content-type'], /version=0\.0\.4/);
      for (const name of ['capulator_runs_submitted_total', 'capulator_decisions_total{decision="deny"}', 'capulator_trapped_call_latency_seconds_bucket{le="+Inf"}', 'capulator_event_lag_seconds']) {
        assert.ok(r.text.includes(name), `missing ${name}`);
      }
    });
  });

  describe('when authenticating', () => {
    it('refuses a request without a token (401)', async () => {
      const r = await request(t.url).get('/v1/runs').expect(401);
      assert.equal(r.body.error.code, 'unauthenticated');
    });

    it('refuses a bad token (401)', async () => {
      await request(t.url).get('/v1/runs').set('Authorization', 'Bearer cap_not-a-real-token').expect(401);
      await request(t.url).get('/v1/runs').set('Authorization', `Basic ${t.admin}`).expect(401);
    });

    it('refuses a token without the scope (403) and accepts one with it', async () => {
      const reader = t.token('runs:read');
      const r = await request(t.url).post('/v1/runs').set('Authorization', `Bearer ${reader}`).send({ image: MISSING_IMAGE }).expect(403);
      assert.equal(r.body.error.code, 'forbidden');
      assert.match(r.body.error.message, /runs:write/);
      await request(t.url).get('/v1/runs').set('Authorization', `Bearer ${reader}`).expect(200);
      await request(t.url).get('/v1/decisions').set('Authorization', `Bearer ${reader}`).expect(403);
    });
  });

  describe('when validating requests', () => {
    it('refuses unknown fields and wrong types, field by field (400)', async () => {
      const r = await request(t.url)
        .post('/v1/runs')
        .set(auth)
        .send({ image: 42, command: 'ls', env: { 'BAD KEY': 'x' }, learn: 'yes', bogus: true, mounts: [{ source: 'rel', destination: '/d', extra: 1 }] })
        .expect(400);
      assert.equal(r.body.error.code, 'validation_failed');
      const fields = new Map<string, string[]>(r.body.error.details.map((d: { field: string; messages: string[] }) => [d.field, d.messages]));
      for (const f of ['image', 'command', 'env', 'learn', 'bogus', 'mounts.0.source', 'mounts.0.extra']) assert.ok(fields.has(f), `no error for ${f}: ${JSON.stringify(r.body)}`);
      assert.ok(fields.get('bogus')!.some((m) => /should not exist/.test(m)));
    });

    it('refuses a missing image and a malformed policy reference', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ policy: 'a b' }).expect(400);
      const fields = r.body.error.details.map((d: { field: string }) => d.field).sort();
      assert.deepEqual(fields, ['image', 'policy']);
    });

    it('refuses malformed JSON (400) and a bad run id (400)', async () => {
      await request(t.url).post('/v1/runs').set(auth).set('Content-Type', 'application/json').send('{"image":').expect(400);
      const r = await request(t.url).get('/v1/runs/not-a-uuid').set(auth).expect(400);
      assert.equal(r.body.error.details[0].field, 'id');
    });

    it('refuses unknown query parameters', async () => {
      const r = await request(t.url).get('/v1/runs?colour=red').set(auth).expect(400);
      assert.equal(r.body.error.details[0].field, 'colour');
      await request(t.url).get('/v1/decisions?decision=maybe').set(auth).expect(400);
    });

    it('refuses a JSON body over 1 MiB (413)', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'x', policyYaml: 'a'.repeat(1024 * 1024 + 10) }).expect(413);
      assert.equal(r.body.error.code, 'payload_too_large');
    });

    it('refuses a YAML body over 1 MiB (413)', async () => {
      await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'application/yaml').send('# ' + 'x'.repeat(1024 * 1024 + 10)).expect(413);
    });
  });

  describe('when submitting runs', () => {
    it('accepts a run (202) and the read model follows it to failed when the image is missing', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: MISSING_IMAGE, command: ['/bin/true'], policyYaml: DENY_ALL }).expect(202);
      assert.equal(r.body.status, 'queued');
      assert.match(r.body.id, /^[0-9a-f-]{36}$/);
      const run = await until('run failed', async () => {
        const g = await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth).expect(200);
        return g.body.status === 'failed' ? g.body : undefined;
      });
      assert.equal(run.stage, 'image');
      assert.match(run.reason, /no-such-image/);
      assert.deepEqual(run.counts, { allow: 0, deny: 0, emulate: 0 });
      assert.deepEqual(run.policy.name, 'deny-all');
      const list = await request(t.url).get('/v1/runs?status=failed').set(auth).expect(200);
      assert.ok(list.body.runs.some((x: { id: string }) => x.id === r.body.id));
    });

    it('answers 404 for an unknown run and 409 when stopping a finished one', async () => {
      await request(t.url).get('/v1/runs/00000000-0000-4000-8000-000000000000').set(auth).expect(404);
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: MISSING_IMAGE }).expect(202);
      await until('run ended', async () => ((await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth)).body.status === 'failed' ? true : undefined));
      const s = await request(t.url).delete(`/v1/runs/${r.body.id}`).set(auth).expect(409);
      assert.equal(s.body.error.code, 'illegal_state');
    });

    it('refuses a run naming an unpublished policy (404)', async () => {
      await request(t.url).post('/v1/runs').set(auth).send({ image: MISSING_IMAGE, policy: 'never-published@3' }).expect(404);
    });
  });

  describe('when following events over SSE', () => {
    it('streams history and ends after the terminal event; resumes after Last-Event-ID', async () => {
      const r = await request(t.url).post('/v1/runs').set(auth).send({ image: MISSING_IMAGE }).expect(202);
      const all = await request(t.url).get(`/v1/runs/${r.body.id}/events`).set(auth).buffer(true).parse(textParser).expect(200);
      assert.match(all.headers['content-type'], /^text\/event-stream/);
      const events = parseSseText(all.body as string);
      assert.deepEqual(events.map((e) => e.event), ['RunRequested', 'RunFailed']);
      assert.equal(events[0].id, String(events[0].data.position));
      const resumed = await request(t.url).get(`/v1/runs/${r.body.id}/events`).set(auth).set('Last-Event-ID', events[0].id).buffer(true).parse(textParser).expect(200);
      assert.deepEqual(parseSseText(resumed.body as string).map((e) => e.event), ['RunFailed']);
      const past = await request(t.url).get(`/v1/runs/${r.body.id}/events`).set(auth).set('Last-Event-ID', events[1].id).buffer(true).parse(textParser).expect(200);
      assert.deepEqual(parseSseText(past.body as string), []);
      await request(t.url).get(`/v1/runs/${r.body.id}/events`).set(auth).set('Last-Event-ID', 'abc').expect(400);
    });
  });

  describe('when publishing policies', () => {
    it('publishes versions (201), lists and reads them, and refuses a non-YAML content type (415)', async () => {
      const v1 = await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'application/yaml').send(PING_POLICY).expect(201);
      assert.deepEqual([v1.body.name, v1.body.version], ['ping', 1]);
      assert.match(v1.body.hash, /^sha256:[0-9a-f]{64}$/);
      const v2 = await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'text/yaml').send(PING_V2).expect(201);
      assert.equal(v2.body.version, 2);
      // the same compiled policy (only the description differs) is not a new version
      const same = await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'text/yaml').send(PING_V2.replace('raw ICMP only', 'raw ICMP')).expect(201);
      assert.equal(same.body.version, 2);
      const list = await request(t.url).get('/v1/policies').set(auth).expect(200);
      assert.deepEqual(list.body.policies.find((p: { name: string }) => p.name === 'ping').versions, [1, 2]);
      const got = await request(t.url).get('/v1/policies/ping/versions/1').set(auth).expect(200);
      assert.equal(got.body.yaml, PING_POLICY);
      await request(t.url).get('/v1/policies/ping/versions/9').set(auth).expect(404);
      await request(t.url).post('/v1/policies').set(auth).send({ yaml: PING_POLICY }).expect(415);
      await request(t.url).post('/v1/policies').set('Authorization', `Bearer ${t.token('runs:write')}`).set('Content-Type', 'application/yaml').send(PING_POLICY).expect(403);
    });

    it('answers 422 with lint errors located file:line:col', async () => {
      const bad = PING_POLICY.replace('PRIV_NETINET_RAW', 'PRIV_NETINET_RAWW');
      const r = await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'application/yaml').send(bad).expect(422);
      assert.equal(r.body.error.code, 'policy_invalid');
      const e = r.body.error.details[0];
      assert.equal(e.code, 'UNKNOWN_PRIVILEGE');
      assert.equal(e.location, 'policy.yaml:7:18');
      assert.deepEqual([e.line, e.col], [7, 18]);
    });
  });

  describe('when querying decisions and replaying', () => {
    it('returns the audit query shape and a what-if report', async () => {
      const d = await request(t.url).get('/v1/decisions?decision=deny&since=2020-01-01T00:00:00Z').set(auth).expect(200);
      assert.ok(Array.isArray(d.body.decisions));
      assert.equal(d.body.truncated, false);
      const rep = await request(t.url).post('/v1/replays').set(auth).send({ policyYaml: DENY_ALL }).expect(200);
      for (const k of ['examined', 'changed', 'wouldDeny', 'summary', 'changes']) assert.ok(k in rep.body, `report lacks ${k}`);
      await request(t.url).post('/v1/replays').set(auth).send({ policyYaml: DENY_ALL, policy: 'ping' }).expect(400);
      await request(t.url).post('/v1/replays').set(auth).send({ policy: 'ping@1', runIds: ['nope'] }).expect(400);
      const bad = await request(t.url).post('/v1/replays').set(auth).send({ policyYaml: 'kind: [' }).expect(422);
      assert.equal(bad.body.error.code, 'policy_invalid');
    });
  });

  describe('when serving the OpenAPI document', () => {
    it('lists every route at /openapi.json and serves the UI at /docs', async () => {
      const r = await request(t.url).get('/openapi.json').expect(200);
      assert.equal(r.body.openapi.startsWith('3.'), true);
      for (const p of ['/v1/runs', '/v1/runs/{id}', '/v1/runs/{id}/events', '/v1/decisions', '/v1/policies', '/v1/policies/{name}/versions/{version}', '/v1/replays', '/v1/images', '/v1/images/pull']) {
        assert.ok(r.body.paths[p], `missing ${p}`);
      }
      assert.ok(r.body.components.schemas.SubmitRunDto.properties.image);
      assert.ok(r.body.components.securitySchemes.bearer);
      const ui = await request(t.url).get('/docs').redirects(1).expect(200);
      assert.match(ui.text, /swagger/i);
    });
  });

  describe('when managing images', () => {
    it('imports an uploaded docker archive (201) and lists it; refuses other content types (415) and a bad pull (400)', async () => {
      const archive = fixtureImages().busyboxPing.dockerArchive;
      const r = await request(t.url).post('/v1/images?tag=up:1').set(auth).set('Content-Type', 'application/x-tar').send(readFileSync(archive)).expect(201);
      assert.deepEqual(r.body.images[0].refs, ['up:1']);
      assert.match(r.body.images[0].digest, /^sha256:/);
      const l = await request(t.url).get('/v1/images').set(auth).expect(200);
      assert.ok(l.body.images.some((i: { refs: string[] }) => i.refs.includes('up:1')));
      await request(t.url).post('/v1/images').set(auth).set('Content-Type', 'text/plain').send('hello').expect(415);
      const bad = await request(t.url).post('/v1/images').set(auth).set('Content-Type', 'application/x-tar').send(Buffer.from('not a tar at all')).expect(422);
      assert.equal(bad.body.error.code, 'unprocessable');
      await request(t.url).post('/v1/images/pull').set(auth).send({ ref: 'x', platform: 'not a platform' }).expect(400);
      void statSync;
      void createReadStream;
    });
  });
});

describe('gateway image upload limit', () => {
  let t: TestGateway;
  before(async () => {
    t = await bootGateway({ imageUploadLimit: 64 * 1024, grpc: false });
  });
  after(async () => t?.close());

  it('refuses an upload over the configured cap (413) and leaves no temp file', async () => {
    const r = await request(t.url).post('/v1/images').set('Authorization', `Bearer ${t.admin}`).set('Content-Type', 'application/x-tar').send(Buffer.alloc(65 * 1024)).expect(413);
    assert.equal(r.body.error.code, 'payload_too_large');
    const { readdirSync, existsSync } = await import('node:fs');
    const tmp = `${t.home}/tmp`;
    assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], []);
  });
});

function textParser(res: any, cb: (err: Error | null, body: any) => void): void {
  let s = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => (s += c));
  res.on('end', () => cb(null, s));
}
