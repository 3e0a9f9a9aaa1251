import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import request from 'supertest';
import { runStream } from '@capulator/events';
import { SCOPES } from '../../../apps/gateway/src/auth/scopes';
import { startGateway } from '../../../apps/gateway/src/gateway.app';
import { bearer, bootGateway, call, DENY_ALL, grpcClient, type GrpcClient, type TestGateway } from './harness';

/**
 * Every route, HTTP and gRPC, with a token of each scope: allowed exactly when the scope table of
 * docs/api.md says so. And what a run may do on the host: learn mode, inline policies and bind
 * mounts need their own scopes; mounts come only from --allow-mount directories.
 */
const ID = '00000000-0000-4000-8000-000000000001';
const MISSING = 'capulator-test/not-there:1';
type Need = string[][]; // any one of these scope sets (all scopes of the set needed)
const one = (s: string): Need => [[s]];

interface Route {
  name: string;
  need: Need | 'any';
  http?: (t: TestGateway, auth: Record<string, string>) => Promise<number>;
  grpc?: (c: GrpcClient, token: string) => Promise<number>;
}

const code = (p: Promise<unknown>) => p.then(() => grpcStatus.OK, (e: { code: number }) => e.code);

const ROUTES: Route[] = [
  { name: 'POST /v1/runs', need: one('runs:write'), http: async (t, a) => (await request(t.url).post('/v1/runs').set(a).send({ image: MISSING })).status },
  { name: 'POST /v1/runs learn', need: [['runs:write', 'runs:learn']], http: async (t, a) => (await request(t.url).post('/v1/runs').set(a).send({ image: MISSING, learn: true })).status },
  { name: 'POST /v1/runs policyYaml', need: [['runs:write', 'runs:inline-policy']], http: async (t, a) => (await request(t.url).post('/v1/runs').set(a).send({ image: MISSING, policyYaml: DENY_ALL })).status },
  { name: 'DELETE /v1/runs/{id}', need: one('runs:write'), http: async (t, a) => (await request(t.url).delete(`/v1/runs/${ID}`).set(a)).status },
  { name: 'GET /v1/runs', need: one('runs:read'), http: async (t, a) => (await request(t.url).get('/v1/runs').set(a)).status },
  { name: 'GET /v1/runs/{id}', need: one('runs:read'), http: async (t, a) => (await request(t.url).get(`/v1/runs/${ID}`).set(a)).status },
  { name: 'GET /v1/runs/{id}/events', need: one('runs:read'), http: async (t, a) => (await request(t.url).get(`/v1/runs/${ID}/events`).set(a)).status },
  { name: 'GET /v1/images', need: one('runs:read'), http: async (t, a) => (await request(t.url).get('/v1/images').set(a)).status },
  { name: 'GET /v1/decisions', need: one('audit:read'), http: async (t, a) => (await request(t.url).get('/v1/decisions').set(a)).status },
  { name: 'POST /v1/replays', need: one('audit:read'), http: async (t, a) => (await request(t.url).post('/v1/replays').set(a).send({ policyYaml: DENY_ALL })).status },
  { name: 'GET /v1/policies', need: one('audit:read'), http: async (t, a) => (await request(t.url).get('/v1/policies').set(a)).status },
  { name: 'GET /v1/policies/{n}/versions/{v}', need: one('audit:read'), http: async (t, a) => (await request(t.url).get('/v1/policies/deny-all/versions/1').set(a)).status },
  { name: 'POST /v1/policies', need: one('policies:write'), http: async (t, a) => (await request(t.url).post('/v1/policies').set(a).set('Content-Type', 'application/yaml').send(DENY_ALL)).status },
  { name: 'POST /v1/images', need: one('images:write'), http: async (t, a) => (await request(t.url).post('/v1/images').set(a).set('Content-Type', 'application/x-tar').send(Buffer.from('not a tar'))).status },
  { name: 'POST /v1/images/pull', need: one('images:write'), http: async (t, a) => (await request(t.url).post('/v1/images/pull').set(a).send({ ref: 'x', platform: 'bad' })).status },
  { name: 'POST /v1/policies/lint', need: one('audit:read'), http: async (t, a) => (await request(t.url).post('/v1/policies/lint').set(a).set('Content-Type', 'application/yaml').send(DENY_ALL)).status },
  { name: 'POST /v1/policies/explain', need: one('audit:read'), http: async (t, a) => (await request(t.url).post('/v1/policies/explain?uid=1000').set(a).set('Content-Type', 'application/yaml').send(DENY_ALL)).status },
  { name: 'GET /v1/integrity', need: one('audit:read'), http: async (t, a) => (await request(t.url).get('/v1/integrity').set(a)).status },
  { name: 'GET /v1/decisions/timeline', need: one('audit:read'), http: async (t, a) => (await request(t.url).get(`/v1/decisions/timeline?run=${ID}`).set(a)).status },
  { name: 'GET /v1/runs/{id}/logs', need: one('runs:read'), http: async (t, a) => (await request(t.url).get(`/v1/runs/${ID}/logs`).set(a)).status },
  { name: 'GET /metrics', need: 'any', http: async (t, a) => (await request(t.url).get('/metrics').set(a)).status },
  { name: 'gRPC SubmitRun', need: one('runs:write'), grpc: (c, tk) => code(call(c, 'SubmitRun', { image: MISSING }, bearer(tk))) },
  { name: 'gRPC SubmitRun learn', need: [['runs:write', 'runs:learn']], grpc: (c, tk) => code(call(c, 'SubmitRun', { image: MISSING, learn: true }, bearer(tk))) },
  { name: 'gRPC SubmitRun policyYaml', need: [['runs:write', 'runs:inline-policy']], grpc: (c, tk) => code(call(c, 'SubmitRun', { image: MISSING, policyYaml: DENY_ALL }, bearer(tk))) },
  { name: 'gRPC StopRun', need: one('runs:write'), grpc: (c, tk) => code(call(c, 'StopRun', { id: ID }, bearer(tk))) },
  {
    name: 'gRPC RunLogs',
    need: one('runs:read'),
    grpc: (c, tk) =>
      new Promise((resolve) => {
        const s = c.RunLogs({ id: ID }, bearer(tk));
        s.on('data', () => undefined);
        s.on('error', (e: { code: number }) => resolve(e.code));
        s.on('end', () => resolve(grpcStatus.OK));
      }),
  },
  { name: 'gRPC GetRun', need: one('runs:read'), grpc: (c, tk) => code(call(c, 'GetRun', { id: ID }, bearer(tk))) },
  { name: 'gRPC ListRuns', need: one('runs:read'), grpc: (c, tk) => code(call(c, 'ListRuns', {}, bearer(tk))) },
  {
    name: 'gRPC WatchRun',
    need: one('runs:read'),
    grpc: (c, tk) =>
      new Promise((resolve) => {
        const s = c.WatchRun({ id: ID }, bearer(tk));
        s.on('data', () => undefined);
        s.on('error', (e: { code: number }) => resolve(e.code));
        s.on('end', () => resolve(grpcStatus.OK));
      }),
  },
  { name: 'gRPC PublishPolicy', need: one('policies:write'), grpc: (c, tk) => code(call(c, 'PublishPolicy', { yaml: DENY_ALL }, bearer(tk))) },
  { name: 'gRPC Replay', need: one('audit:read'), grpc: (c, tk) => code(call(c, 'Replay', { policyYaml: DENY_ALL }, bearer(tk))) },
];

function allowed(scopes: string[], need: Need | 'any'): boolean {
  if (need === 'any' || scopes.includes('*')) return true;
  return need.some((set) => set.every((s) => scopes.includes(s)));
}

describe('token scopes', () => {
  let t: TestGateway;
  let client: GrpcClient;
  let allowDir: string;
  before(async () => {
    allowDir = mkdtempSync(join(tmpdir(), 'hostile-allow-'));
    mkdirSync(join(allowDir, 'data'));
    symlinkSync('/etc', join(allowDir, 'escape'));
    t = await bootGateway({ allowMounts: [allowDir] });
    client = grpcClient(t.gw.grpcAddress!);
  });
  after(async () => {
    client?.close();
    await t?.close();
    rmSync(allowDir, { recursive: true, force: true });
  });

  const tokenSets: string[][] = [...SCOPES.map((s) => [s]), ['runs:write', 'runs:learn'], ['runs:write', 'runs:inline-policy'], ['runs:learn', 'runs:inline-policy', 'runs:mount']];

  describe('when every route is called with each scope', () => {
    it('allows exactly what the scope table says (HTTP and gRPC)', async () => {
      const wrong: string[] = [];
      for (const scopes of tokenSets) {
        const tk = t.token(...scopes);
        for (const r of ROUTES) {
          const want = allowed(scopes, r.need);
          if (r.http) {
            const st = await r.http(t, { Authorization: `Bearer ${tk}` });
            if ((st === 403) === want || st === 401 || st >= 500) wrong.push(`[${scopes}] ${r.name}: HTTP ${st}, want ${want ? 'allowed' : '403'}`);
          }
          if (r.grpc) {
            const st = await r.grpc(client, tk);
            if ((st === grpcStatus.PERMISSION_DENIED) === want || st === grpcStatus.UNAUTHENTICATED || st === grpcStatus.INTERNAL) wrong.push(`[${scopes}] ${r.name}: gRPC ${st}, want ${want ? 'allowed' : 'PERMISSION_DENIED'}`);
          }
        }
      }
      assert.deepEqual(wrong, []);
    });
    it('refuses a missing or forged token on every route (401 / UNAUTHENTICATED)', async () => {
      for (const r of ROUTES) {
        if (r.http) assert.equal(await r.http(t, { Authorization: 'Bearer cap_forged' }), 401, r.name);
        if (r.grpc) assert.equal(await r.grpc(client, 'cap_forged'), grpcStatus.UNAUTHENTICATED, r.name);
      }
    });
  });

  describe('when a run asks for bind mounts', () => {
    const submit = (tk: string, mounts: unknown[]) => request(t.url).post('/v1/runs').set({ Authorization: `Bearer ${tk}` }).send({ image: MISSING, mounts });
    it('needs runs:mount', async () => {
      const r = await submit(t.token('runs:write'), [{ source: join(allowDir, 'data'), destination: '/d' }]);
      assert.equal(r.status, 403);
      assert.match(r.body.error.message, /runs:mount/);
      const g = await code(call(client, 'SubmitRun', { image: MISSING, mounts: [{ source: join(allowDir, 'data'), destination: '/d' }] }, bearer(t.token('runs:write'))));
      assert.equal(g, grpcStatus.PERMISSION_DENIED);
    });
    it('refuses /, the state directory, anything above or below it, other host paths and symlink escapes, even with *', async () => {
      for (const source of ['/', '/etc', t.home, join(t.home, 'tokens.json'), join(t.home, '..'), join(allowDir, 'escape'), join(allowDir, 'escape/passwd'), join(allowDir, 'data/../..')]) {
        const r = await submit(t.admin, [{ source, destination: '/d' }]);
        assert.ok(r.status === 403 || r.status === 400, `${source}: ${r.status} ${JSON.stringify(r.body)}`);
      }
      const g = await code(call(client, 'SubmitRun', { image: MISSING, mounts: [{ source: t.home, destination: '/d' }] }, bearer(t.admin)));
      assert.equal(g, grpcStatus.PERMISSION_DENIED);
    });
    it('accepts a source under an allowed directory, resolved and read-only unless asked', async () => {
      const tk = t.token('runs:write', 'runs:mount');
      const r = await submit(tk, [{ source: join(allowDir, 'data'), destination: '/d' }, { source: join(allowDir, 'data/.'), destination: '/w', readonly: false }]).expect(202);
      const events: Array<{ type: string; payload: { mounts: Array<{ source: string; readonly: boolean }> } }> = [];
      for await (const e of t.gw.store.readStream(runStream(r.body.id))) events.push(e as never);
      const mounts = events.find((e) => e.type === 'RunRequested')!.payload.mounts;
      assert.deepEqual(mounts.map((m) => [m.source, m.readonly]), [[join(allowDir, 'data'), true], [join(allowDir, 'data'), false]]);
    });
  });

  describe('when the server is started with an --allow-mount that overlaps its state directory', () => {
    it('refuses to start', async () => {
      const home = mkdtempSync(join(tmpdir(), 'hostile-home-'));
      try {
        for (const dir of [home, tmpdir(), '/']) {
          await assert.rejects(startGateway({ home, http: { host: '127.0.0.1', port: 0 }, grpc: false, logLevel: 'silent', allowMounts: [dir] }), /overlaps the state directory/);
        }
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });
  });
});
