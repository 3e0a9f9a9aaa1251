import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { status, type ServiceError } from '@grpc/grpc-js';
import request from 'supertest';
import { bearer, bootGateway, call, fixtureImages, grpcClient, PING_POLICY, until, type GrpcClient, type TestGateway } from './harness';

function errorDetails(err: ServiceError): { code: string; details?: Array<{ field?: string; location?: string }> } {
  return JSON.parse(String(err.metadata.get('capulator-error')[0]));
}

async function rejects(p: Promise<unknown>, code: status): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    assert.equal((err as ServiceError).code, code, (err as Error).message);
    return err as ServiceError;
  }
  assert.fail(`expected gRPC status ${status[code]}`);
}

function watch(client: GrpcClient, req: unknown, md: ReturnType<typeof bearer>): Promise<Array<{ type: string; position: number; payloadJson: string }>> {
  return new Promise((resolve, reject) => {
    const out: Array<{ type: string; position: number; payloadJson: string }> = [];
    const s = client.WatchRun(req, md);
    s.on('data', (e: { type: string; position: number; payloadJson: string }) => out.push(e));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}

type Chunk = { seq: number; stream: string; text: string; end: boolean; truncated: boolean };
function logs(client: GrpcClient, req: unknown, md: ReturnType<typeof bearer>): Promise<Chunk[]> {
  return new Promise((resolve, reject) => {
    const out: Chunk[] = [];
    const s = client.RunLogs(req, md);
    s.on('data', (c: Chunk) => out.push(c));
    s.on('error', reject);
    s.on('end', () => resolve(out));
  });
}

describe('gateway gRPC API', () => {
  let t: TestGateway;
  let client: GrpcClient;
  let md: ReturnType<typeof bearer>;
  before(async () => {
    t = await bootGateway();
    client = grpcClient(t.gw.grpcAddress!);
    md = bearer(t.admin);
    await request(t.url).post('/v1/images?tag=bb:1').set('Authorization', `Bearer ${t.admin}`).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().busyboxPing.dockerArchive)).expect(201);
  });
  after(async () => {
    client?.close();
    await t?.close();
  });

  describe('when authenticating', () => {
    it('answers UNAUTHENTICATED without a token and PERMISSION_DENIED without the scope', async () => {
      await rejects(call(client, 'ListRuns', {}, bearer('cap_bogus')), status.UNAUTHENTICATED);
      const { Metadata } = await import('@grpc/grpc-js');
      await rejects(call(client, 'ListRuns', {}, new Metadata()), status.UNAUTHENTICATED);
      await rejects(call(client, 'SubmitRun', { image: 'bb:1' }, bearer(t.token('runs:read'))), status.PERMISSION_DENIED);
    });
  });

  describe('when publishing a policy', () => {
    it('returns the new version, and INVALID_ARGUMENT with located lint errors for a bad one', async () => {
      const r = await call(client, 'PublishPolicy', { yaml: PING_POLICY }, md);
      assert.deepEqual([r.name, r.version], ['ping', 1]);
      assert.match(r.hash, /^sha256:/);
      const err = await rejects(call(client, 'PublishPolicy', { yaml: PING_POLICY.replace('PRIV_NETINET_RAW', 'PRIV_BOGUS') }, md), status.INVALID_ARGUMENT);
      const d = errorDetails(err);
      assert.equal(d.code, 'policy_invalid');
      assert.equal(d.details![0].location, 'policy.yaml:7:18');
    });
  });

  describe('when submitting and following a run', () => {
    it('SubmitRun, WatchRun (stream to RunExited), GetRun and ListRuns agree', async () => {
      const sub = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/sh', '-c', 'exit 5'], policy: 'ping@1', env: { A: 'b' } }, md);
      assert.equal(sub.status, 'queued');
      const events = await watch(client, { id: sub.id }, md);
      assert.deepEqual([events[0].type, events[events.length - 1].type], ['RunRequested', 'RunExited']);
      assert.equal(JSON.parse(events[0].payloadJson).env.includes('A=b'), true);
      const resumed = await watch(client, { id: sub.id, after: events[0].position }, md);
      assert.deepEqual(resumed.map((e) => e.position), events.slice(1).map((e) => e.position));
      const run = await call(client, 'GetRun', { id: sub.id }, md);
      assert.equal(run.status, 'exited');
      assert.equal(run.exitCode, 5);
      assert.equal(run.policy.name, 'ping');
      const list = await call(client, 'ListRuns', { status: 'exited', limit: 10 }, md);
      assert.ok(list.runs.some((x: { id: string }) => x.id === sub.id));
    });

    it("RunLogs streams the program's stdout and stderr (followed to the end, then resumed after a chunk)", async () => {
      const sub = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/sh', '-c', 'echo out1; echo err1 >&2; sleep 1; echo out2'], policy: 'ping@1' }, md);
      const followed = await logs(client, { id: sub.id, follow: true }, md);
      const last = followed[followed.length - 1];
      assert.deepEqual([last.end, last.truncated], [true, false]);
      const chunks = followed.slice(0, -1);
      assert.equal(chunks.filter((c) => c.stream === 'stdout').map((c) => c.text).join(''), 'out1\nout2\n');
      assert.equal(chunks.filter((c) => c.stream === 'stderr').map((c) => c.text).join(''), 'err1\n');
      const resumed = await logs(client, { id: sub.id, after: chunks[0].seq }, md);
      assert.deepEqual(resumed.slice(0, -1).map((c) => c.seq), chunks.slice(1).map((c) => c.seq));
      await rejects(logs(client, { id: '00000000-0000-4000-8000-000000000000' }, md), status.NOT_FOUND);
    });

    it('SubmitRun takes the workload flags as POST /v1/runs does: applied, recorded, refused with the flag\'s reason, bounded by scopes', async () => {
      const workload = { user: '1000:1000', workdir: '/tmp', hostname: 'web1', memory: '64m', pidsLimit: '50', readOnly: true, tmpfs: ['/tmp'] };
      const sub = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/sh', '-c', 'hostname; id -u; pwd; touch /x 2>/dev/null || echo read-only'], policy: 'ping@1', workload }, md);
      const out = await logs(client, { id: sub.id, follow: true }, md);
      assert.equal(out.filter((c) => c.stream === 'stdout').map((c) => c.text).join(''), 'web1\n1000\n/tmp\nread-only\n');
      const events = await watch(client, { id: sub.id }, md);
      const requested = JSON.parse(events[0].payloadJson) as { workload: Record<string, unknown> };
      assert.deepEqual(
        { ...requested.workload, tmpfs: undefined },
        { memory: 64 * 1024 * 1024, pidsLimit: 50, user: '1000:1000', workdir: '/tmp', readOnly: true, tmpfs: undefined, hostname: 'web1' },
      );
      assert.equal((await call(client, 'GetRun', { id: sub.id }, md)).exitCode, 0);
      const bad = await rejects(call(client, 'SubmitRun', { image: 'bb:1', workload: { memory: '5x' } }, md), status.INVALID_ARGUMENT);
      assert.match(JSON.stringify(errorDetails(bad)), /--memory 5x: want a size/);
      await rejects(call(client, 'SubmitRun', { image: 'bb:1', workload: { network: 'bridge' } }, bearer(t.token('runs:write'))), status.PERMISSION_DENIED);
      await rejects(call(client, 'SubmitRun', { image: 'bb:1', workload: { publish: ['127.0.0.1:18081:80'] } }, bearer(t.token('runs:write'))), status.PERMISSION_DENIED);
    });

    it('WriteStdin feeds an interactive run its stdin, in order, and eof closes it', async () => {
      const sub = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/sh', '-c', 'while read l; do echo "got $l"; done; echo eof'], policy: 'ping@1', workload: { interactive: true } }, md);
      const write = (msgs: Array<{ id: string; data?: Buffer; eof?: boolean }>, meta = md) =>
        new Promise<{ written: number }>((resolve, reject) => {
          const s = client.WriteStdin(meta, (err: Error | null, res: { written: number }) => (err ? reject(err) : resolve(res)));
          for (const m of msgs) s.write(m);
          s.end();
        });
      assert.equal(Number((await write([{ id: sub.id, data: Buffer.from('one\n') }, { id: sub.id, data: Buffer.from('two\n'), eof: true }])).written), 8);
      const out = await logs(client, { id: sub.id, follow: true }, md);
      assert.equal(out.filter((c) => c.stream === 'stdout').map((c) => c.text).join(''), 'got one\ngot two\neof\n');
      // ended: FAILED_PRECONDITION; another run's id in the same call, a run without -i, no scope
      await rejects(write([{ id: sub.id, data: Buffer.from('x') }]), status.FAILED_PRECONDITION);
      const plain = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/true'], policy: 'ping@1' }, md);
      await rejects(write([{ id: plain.id, data: Buffer.from('x') }]), status.FAILED_PRECONDITION);
      await rejects(write([{ id: 'nope', data: Buffer.from('x') }]), status.INVALID_ARGUMENT);
      await rejects(write([{ id: plain.id, data: Buffer.from('x') }], bearer(t.token('runs:read'))), status.PERMISSION_DENIED);
    });

    it('Workload.tty runs the program on a terminal whose size ResizeTty sets', async () => {
      // the size set while the run is queued is the one it starts with, a later one changes the
      // terminal's size (which of the two the first is depends on how soon the run starts: both are
      // printed). The program polls its size and prints each change; a poll that fails is skipped:
      // busybox's stty fails now and then in such a run ("stty: standard input", 2 runs of 12), as it
      // does under plain runc with a terminal (`runc run` of the same rootfs in script(1): every call)
      const sub = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/sh', '-c', 'tty; last=; i=0; while [ $i -lt 60 ]; do if s=$(stty size 2>/dev/null) && [ -n "$s" ] && [ "$s" != "$last" ]; then echo "$s"; last=$s; fi; sleep 0.1; i=$((i+1)); done; exit 9'], policy: 'ping@1', workload: { tty: true } }, md);
      await call(client, 'ResizeTty', { id: sub.id, rows: 33, cols: 91 }, md);
      const text = async () => (await logs(client, { id: sub.id }, md)).map((c) => c.text ?? '').join('');
      await until('the first size', async () => (/33 91/.test(await text()) ? true : undefined));
      await call(client, 'ResizeTty', { id: sub.id, rows: 44, cols: 132 }, md);
      await until('the second size', async () => (/44 132/.test(await text()) ? true : undefined));
      const out = await logs(client, { id: sub.id, follow: true }, md);
      // a terminal: one stream, lines end in \r\n
      assert.equal(out.filter((c) => c.stream === 'stderr').length, 0);
      // /dev/pts/0 and the sizes in order: 24 80 only before 33 91 (a run that started first), each once
      assert.match(out.map((c) => c.text).join(''), /^\/dev\/pts\/0\r\n(24 80\r\n)?33 91\r\n44 132\r\n$/);
      assert.equal((await call(client, 'GetRun', { id: sub.id }, md)).exitCode, 9);
      await rejects(call(client, 'ResizeTty', { id: sub.id, rows: 10, cols: 10 }, md), status.FAILED_PRECONDITION);
      await rejects(call(client, 'ResizeTty', { id: sub.id, rows: 0, cols: 10 }, md), status.INVALID_ARGUMENT);
      await rejects(call(client, 'ResizeTty', { id: sub.id, rows: 10, cols: 10 }, bearer(t.token('runs:read'))), status.PERMISSION_DENIED);
    });

    it('validates like HTTP: INVALID_ARGUMENT with field details', async () => {
      const err = await rejects(call(client, 'SubmitRun', { command: ['x'], policy: 'bad ref', env: { 'NO SPACES': 'x' } }, md), status.INVALID_ARGUMENT);
      const fields = errorDetails(err).details!.map((d) => d.field).sort();
      assert.deepEqual(fields, ['env', 'image', 'policy']);
      await rejects(call(client, 'GetRun', { id: 'nope' }, md), status.INVALID_ARGUMENT);
      await rejects(call(client, 'GetRun', { id: '00000000-0000-4000-8000-000000000000' }, md), status.NOT_FOUND);
      await rejects(call(client, 'ListRuns', { status: 'sleeping' }, md), status.INVALID_ARGUMENT);
      await rejects(watch(client, { id: '00000000-0000-4000-8000-000000000000' }, md), status.NOT_FOUND);
    });

    it('StopRun kills a running run; stopping it again is FAILED_PRECONDITION', async () => {
      const sub = await call(client, 'SubmitRun', { image: 'bb:1', command: ['/bin/sleep', '30'], policy: 'ping' }, md);
      await until('running', async () => ((await call(client, 'GetRun', { id: sub.id }, md)).status === 'running' ? true : undefined));
      const stopped = await call(client, 'StopRun', { id: sub.id }, md);
      assert.equal(stopped.id, sub.id);
      const run = await until('ended', async () => {
        const r = await call(client, 'GetRun', { id: sub.id }, md);
        return r.status === 'exited' || r.status === 'failed' ? r : undefined;
      });
      assert.equal(run.exitCode, 137);
      await rejects(call(client, 'StopRun', { id: sub.id }, md), status.FAILED_PRECONDITION);
    });
  });

  describe('when replaying', () => {
    it('returns the what-if report, and INVALID_ARGUMENT when both or neither policy is given', async () => {
      const r = await call(client, 'Replay', { policyYaml: PING_POLICY.replace('action: allow', 'action: deny') }, md);
      const report = JSON.parse(r.reportJson);
      assert.equal(report.examined, r.examined);
      assert.equal(typeof r.wouldDeny, 'number');
      await rejects(call(client, 'Replay', {}, md), status.INVALID_ARGUMENT);
      await rejects(call(client, 'Replay', { policy: 'ping', policyYaml: PING_POLICY }, md), status.INVALID_ARGUMENT);
    });
  });
});
