import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectKafkaEventStore, type KafkaEventStore } from '@capulator/events';
import { ImageStore } from '../../../apps/runtime/src/images';
import { fixtureImages } from '../../fixtures/images';
import { skopeoPush, startRegistry, type TestRegistry } from '../../fixtures/registry';
import { capulator, gatewayApi, policyYaml, reapContainers, runStreamOf, TestCluster, until, type BusProcess } from './cluster';

const POLICY = policyYaml('fetched', { action: 'deny', audit: 'all' });

/**
 * A runtime worker that never imported an image runs it: the gateway pulled it from a registry
 * and names that registry in the run, pinned by manifest digest; the worker pulls it (every blob
 * verified) and checks its config digest. An image the gateway got from an archive is served by
 * the gateway itself (GET /v2/capulator/images/…, token scope images:read): the worker fetches it
 * from there with the same client, with the token in its docker config.json.
 */
describe('a Kafka worker runs an image it never imported', () => {
  const cluster = new TestCluster();
  let reg: TestRegistry;
  let gw: BusProcess;
  let worker: BusProcess;
  let store: KafkaEventStore;
  let token: string;
  let runsOnly: string;
  const reap: string[] = [];
  const fx = fixtureImages();

  const api = (method: string, path: string, body?: unknown) => gatewayApi(gw.url!, token, method, path, body);
  const streamOf = (id: string) => runStreamOf(store, id);
  const ended = (id: string) =>
    until(`run ${id} ended`, async () => {
      const r = await api('GET', `/v1/runs/${id}`);
      return r.body.status === 'exited' || r.body.status === 'failed' ? r.body : undefined;
    }, 120_000);

  before(async () => {
    reg = await startRegistry();
    await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${reg.host}/test/bb:1`);
    ({ token } = await cluster.start());
    const gh = cluster.gatewayHomes[0];
    const wh = cluster.newHome('bare-worker');
    // the gateway also has an image from an archive, which no registry holds
    capulator(gh, ['image', 'import', '--tag', 'archived:1', fx.whiteout.dockerArchive]);
    const reader = capulator(gh, ['token', 'create', '--name', 'worker-images', '--scopes', 'images:read']).trim().split('\n').pop()!.trim();
    runsOnly = capulator(gh, ['token', 'create', '--name', 'runs-only', '--scopes', 'runs:read']).trim().split('\n').pop()!.trim();
    gw = await cluster.serve('gateway', gh);
    // the worker's credentials for the gateway's /v2/, as `docker login` would write them
    const dockerConfig = join(wh, 'docker');
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [new URL(gw.url!).host]: { username: 'worker', password: reader } } }));
    worker = await cluster.serve('runtime', wh, ['--concurrency', '1'], { DOCKER_CONFIG: dockerConfig });
    store = await connectKafkaEventStore({ brokers: cluster.broker.brokers });
    assert.equal((await api('POST', '/v1/policies', POLICY)).status, 201);
    const pulled = await api('POST', '/v1/images/pull', { ref: `${reg.host}/test/bb:1` });
    assert.equal(pulled.status, 201, JSON.stringify(pulled.body));
  });

  after(() =>
    cluster.stop({
      afterProcesses: async () => {
        await store?.close();
        reapContainers(reap);
      },
      afterBroker: () => reg?.close(),
    }),
  );

  it('pulls it from the registry the gateway named, checks its digest, and runs it', async () => {
    assert.deepEqual(new ImageStore(join(worker.home, 'images')).list(), [], 'the worker starts with no image');
    const r = await api('POST', '/v1/runs', { image: `${reg.host}/test/bb:1`, command: ['/bin/sh', '-c', 'exit 7'], policy: 'fetched' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    reap.push(r.body.id);
    const run = await ended(r.body.id);
    assert.equal(run.status, 'exited', JSON.stringify(run));
    assert.equal(run.exitCode, 7);
    const requested = (await streamOf(r.body.id)).find((e) => e.type === 'RunRequested')!.payload as { imageSource?: { ref: string; digest: string } };
    assert.match(requested.imageSource?.ref ?? '', new RegExp(`^${reg.host.replace(/\./g, '\\.')}/test/bb@sha256:[0-9a-f]{64}$`));
    assert.equal(requested.imageSource?.digest, fx.busyboxPing.digest);
    const started = (await streamOf(r.body.id)).find((e) => e.type === 'RunStarted')!.payload as { imageDigest: string };
    assert.equal(started.imageDigest, fx.busyboxPing.digest);
    assert.deepEqual(new ImageStore(join(worker.home, 'images')).list().map((i) => i.digest), [fx.busyboxPing.digest]);
  });

  it('fetches an image the gateway got from an archive from the gateway itself, every digest checked', async () => {
    const r = await api('POST', '/v1/runs', { image: 'archived:1', command: ['/bin/sh', '-c', 'exit 4'], policy: 'fetched' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    reap.push(r.body.id);
    const run = await ended(r.body.id);
    assert.equal(run.status, 'exited', JSON.stringify(run));
    assert.equal(run.exitCode, 4);
    const requested = (await streamOf(r.body.id)).find((e) => e.type === 'RunRequested')!.payload as { imageSource?: { ref: string; digest: string } };
    assert.match(requested.imageSource?.ref ?? '', new RegExp(`^${new URL(gw.url!).host.replace(/\./g, '\\.')}/capulator/images@sha256:[0-9a-f]{64}$`));
    assert.equal(requested.imageSource?.digest, fx.whiteout.digest);
    assert.ok(new ImageStore(join(worker.home, 'images')).list().some((i) => i.digest === fx.whiteout.digest), 'the worker has it now');
  });

  it('serves /v2/ only to tokens with images:read (401 with a Basic challenge without one, 403 without the scope), and only what it holds', async () => {
    const v2 = (path: string, auth?: string) => fetch(new URL(path, gw.url!), auth ? { headers: { authorization: auth } } : {});
    const anon = await v2('/v2/');
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    assert.equal((await v2('/v2/', `Bearer ${runsOnly}`)).status, 403);
    assert.equal((await v2('/v2/', `Basic ${Buffer.from(`x:${token}`).toString('base64')}`)).status, 200);
    const unknown = await v2(`/v2/capulator/images/blobs/sha256:${'0'.repeat(64)}`, `Bearer ${token}`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0].code, 'BLOB_UNKNOWN');
    assert.equal((await v2(`/v2/capulator/images/manifests/latest`, `Bearer ${token}`)).status, 404);
  });
});
