import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from '@capulator/host';
import type { TestBroker } from '../../../libs/events/src/testing/kafka-broker';
import { fixtureImages } from '../../fixtures/images';
import { gatewayApi, policyYaml, reapContainers, TestCluster, until, type BusProcess } from './cluster';

const POLICY = policyYaml('secured', { action: 'allow', audit: 'all' });

/**
 * A cluster secured as production ones are: TLS to the broker (a CA of its own), SCRAM-SHA-512
 * users, ACLs enforced. The topics are inside capulator's trust boundary (docs/scale-out.md): the
 * broker's ACLs are what keeps anyone else from writing them. Gateways and workers connect with
 * the `capulator` user's password from CAPULATOR_KAFKA_PASSWORD; an auditor reads with a
 * read-only user; a client without the CA, the password or the ACLs gets nothing in.
 */
describe('a Kafka cluster with TLS, SASL and ACLs', () => {
  const cluster = new TestCluster();
  let broker: TestBroker;
  let gw: BusProcess;
  let worker: BusProcess;
  let token: string;
  const reap: string[] = [];
  const fx = fixtureImages();
  const asUser = (user: 'capulator' | 'reader' | 'admin', password = broker.secured!.passwords[user]) => ({ CAPULATOR_KAFKA_PASSWORD: password });
  const cli = (home: string, args: string[], env: NodeJS.ProcessEnv) =>
    spawnSync(process.execPath, [join(repoRoot(__dirname), 'bin', 'capulator'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_BUS: '', CAPULATOR_KAFKA_PASSWORD: '', ...env },
      timeout: 60_000,
    });

  before(async () => {
    ({ broker, token } = await cluster.start({ secured: true }));
    const wh = cluster.workerHome(fx.busyboxPing.dockerArchive, 'bb:1');
    gw = await cluster.serve('gateway', cluster.gatewayHomes[0], [], asUser('capulator'));
    worker = await cluster.serve('runtime', wh, ['--concurrency', '1'], asUser('capulator'));
  });

  after(() => cluster.stop({ afterProcesses: () => reapContainers(reap) }));

  it('runs a submitted run on a worker, with its output, and an auditor with read-only rights verifies the log', async () => {
    assert.equal((await gatewayApi(gw.url!, token, 'POST', '/v1/policies', POLICY)).status, 201);
    const r = await gatewayApi(gw.url!, token, 'POST', '/v1/runs', { image: 'bb:1', command: ['/bin/sh', '-c', 'echo over-tls; hostname x; exit 3'], policy: 'secured' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    reap.push(r.body.id);
    const run = await until(`run ${r.body.id} ended`, async () => {
      const s = await gatewayApi(gw.url!, token, 'GET', `/v1/runs/${r.body.id}`);
      return s.body.status === 'exited' || s.body.status === 'failed' ? s.body : undefined;
    }, 120_000);
    assert.equal(run.status, 'exited', JSON.stringify(run));
    assert.equal(run.exitCode, 3);
    const logs = await gatewayApi(gw.url!, token, 'GET', `/v1/runs/${r.body.id}/logs`);
    assert.match(String(logs.body), /over-tls/);
    // the gateway anchored the log's partition heads at the run's end (v2 anchors of kafka:capulator.events in its home) …
    const anchorFile = join(gw.home, 'anchors.jsonl');
    await until('the gateway anchored the Kafka log', () => (existsSync(anchorFile) && readFileSync(anchorFile, 'utf8').includes('"log":"kafka:capulator.events"') ? true : undefined), 30_000);
    // … and verify in that home checks them
    const inGateway = cli(gw.home, ['audit', 'verify', '--bus', broker.secured!.urlFor('reader')], asUser('reader'));
    assert.equal(inGateway.status, 0, inGateway.stderr);
    assert.match(inGateway.stdout, /agrees with \d+ anchor\(s\)/);
    // the auditor: read and describe only, through its own user
    const home = cluster.gatewayHomes[1];
    const verify = cli(home, ['audit', 'verify', '--bus', broker.secured!.urlFor('reader')], asUser('reader'));
    assert.equal(verify.status, 0, verify.stderr);
    assert.match(verify.stdout, /^ok: \d+ events in \d+ partitions of capulator\.events/m);
    const log = cli(home, ['audit', 'log', '--json', '--run', r.body.id, '--bus', broker.secured!.urlFor('reader')], asUser('reader'));
    assert.equal(log.status, 0, log.stderr);
    assert.ok(log.stdout.trim().split('\n').map((l) => JSON.parse(l)).some((e) => e.syscall === 'sethostname'), log.stdout);
  });

  it('keeps out a wrong password, a client that does not trust the CA, and a plaintext client, each with one line', () => {
    const home = cluster.gatewayHomes[1];
    const wrong = cli(home, ['audit', 'verify', '--bus', broker.secured!.urlFor('capulator')], asUser('capulator', 'not-the-password'));
    assert.equal(wrong.status, 1, wrong.stdout);
    assert.match(wrong.stderr, /^capulator: cannot read the event log on kafkas:\/\/.*: .*authentication failed/);
    assert.equal(wrong.stderr.trim().split('\n').length, 1, wrong.stderr);
    const noCa = cli(home, ['audit', 'verify', '--bus', `kafkas://${broker.brokers[0]}?user=capulator`], asUser('capulator'));
    assert.equal(noCa.status, 1, noCa.stdout);
    assert.match(noCa.stderr, /^capulator: cannot read the event log on .*certificate/);
    assert.equal(noCa.stderr.trim().split('\n').length, 1, noCa.stderr);
    const plain = cli(home, ['audit', 'verify', '--bus', `kafka://${broker.brokers[0]}`], {});
    assert.equal(plain.status, 1, plain.stdout);
    assert.equal(plain.stderr.trim().split('\n').length, 1, plain.stderr);
    // the serve side: bad input is refused before anything connects (exit 2), the password never echoed
    const pw = cli(home, ['serve', '--bus', `${broker.secured!.urlFor('capulator')}&password=hunter2`, '--role', 'gateway', '--http', '127.0.0.1:0', '--grpc', 'off'], {});
    assert.equal(pw.status, 2, pw.stderr);
    assert.match(pw.stderr, /^capulator: --bus: the Kafka password does not go in the URL/);
    assert.doesNotMatch(pw.stderr, /hunter2/);
  });

  it('refuses the read-only user a write to the command and event topics (the ACLs are what guards the trust boundary)', async () => {
    const kafka = (user: 'reader' | 'capulator') =>
      new Kafka({
        clientId: `secured-spec-${user}`,
        brokers: broker.brokers,
        ssl: { ca: [readFileSync(broker.secured!.caFile, 'utf8')] },
        sasl: { mechanism: 'scram-sha-512', username: user, password: broker.secured!.passwords[user] },
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
      });
    const p = kafka('reader').producer();
    await p.connect();
    try {
      for (const topic of ['capulator.commands', 'capulator.events', 'capulator.input']) {
        await assert.rejects(p.send({ topic, messages: [{ value: '{"forged":true}' }] }), /authorization failed|Not authorized/i, topic);
      }
    } finally {
      await p.disconnect();
    }
    // nothing forged reached the log (a record that is not a proposal fails verify), checked as the capulator user too
    const ok = cli(cluster.gatewayHomes[1], ['audit', 'verify', '--bus', broker.secured!.urlFor('capulator')], asUser('capulator'));
    assert.equal(ok.status, 0, ok.stderr);
  });
});
