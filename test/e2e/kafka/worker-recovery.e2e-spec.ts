import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectKafkaEventStore, runStream, SqliteEventStore, type KafkaEventStore, type StoredEvent } from '@capulator/events';
import { dockerArchiveOf, tarOf } from '../../../apps/runtime/src/images/testing/archives';
import { readCountFile } from '../../../apps/runtime/src/run/agent-process';
import { gatewayApi, reapContainers, runStreamOf, TestCluster, until, type BusProcess } from './cluster';

const DECISION_TYPES = new Set(['PrivilegeChecked', 'CapabilitiesQueried', 'CapabilitiesChangeRequested']);
const POLICY = `apiVersion: capulator/v1
kind: Policy
metadata: { name: loop }
defaults: { action: deny, audit: all }
rules:
  - id: capget
    when: { syscall: capget }
    action: allow
`;

/**
 * A runtime worker SIGKILLed in the middle of a run with thousands of trapped calls, then started
 * again in the same home: the run's agent stops the container when its worker goes, and the
 * restarted worker's recovery puts every decision of the run's spool on the Kafka log (not in a
 * local events.db) and closes the run failed, before it takes new work.
 */
describe('a runtime worker on Kafka killed mid-run and started again', () => {
  const cluster = new TestCluster();
  let gw: BusProcess;
  let worker: BusProcess | undefined;
  let store: KafkaEventStore;
  let token: string;
  let work: string;
  const reap: string[] = [];

  const api = (method: string, path: string, body?: unknown) => gatewayApi(gw.url!, token, method, path, body);
  const streamOf = (id: string) => runStreamOf(store, id);

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'capulator-wrec-'));
    const bin = join(work, 'capget-loop');
    const cc = spawnSync('gcc', ['-O2', '-static', '-o', bin, join(__dirname, '../../../../test/fixtures/run/capget-loop.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const layer = await tarOf([
      ...['proc/', 'dev/', 'sys/', 'tmp/'].map((name) => ({ name, type: 'directory' as const, mode: 0o755 })),
      { name: 'capget-loop', data: readFileSync(bin), mode: 0o755 },
    ]);
    const archive = join(work, 'loop.tar');
    writeFileSync(archive, await dockerArchiveOf([layer]));
    ({ token } = await cluster.start());
    const wh = cluster.workerHome(archive, 'loop:1');
    gw = await cluster.serve('gateway', cluster.gatewayHomes[0]);
    worker = await cluster.serve('runtime', wh, ['--concurrency', '1']);
    store = await connectKafkaEventStore({ brokers: cluster.broker.brokers });
    const p = await api('POST', '/v1/policies', POLICY);
    assert.equal(p.status, 201, JSON.stringify(p.body));
  });

  after(async () => {
    await cluster.stop({
      afterProcesses: async () => {
        await store?.close();
        reapContainers(reap);
      },
    });
    rmSync(work, { recursive: true, force: true });
  });

  /**
   * Submits a run of many trapped calls, SIGKILLs its worker after 3000 decisions and waits for
   * the agent's trailer (it stops the container when its worker goes): the run's id, the dead
   * worker's home and run directory, and the agent's own count of decisions.
   */
  async function killMidRun(): Promise<{ id: string; home: string; dir: string; counted: number }> {
    const r = await api('POST', '/v1/runs', { image: 'loop:1', command: ['/capget-loop', '1000000'], policy: 'loop' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.id as string;
    reap.push(id);
    const home = worker!.home;
    const dir = join(home, 'runs', id);
    await until('3000 decisions', () => {
      const c = readCountFile(join(dir, 'decisions.count'));
      return c !== undefined && c.decided >= 3000 ? true : undefined;
    }, 90_000);
    await worker!.kill();
    worker = undefined;
    await until('the agent wrote its trailer', () => (readCountFile(join(dir, 'decisions.count'))?.done ? true : undefined), 30_000);
    return { id, home, dir, counted: readCountFile(join(dir, 'decisions.count'))!.decided };
  }

  /** Every decision the agent counted is on the log, 1..N, none twice, and the run has one end. */
  async function wholeRecord(id: string, counted: number): Promise<StoredEvent[]> {
    const events = await streamOf(id);
    const decisions = events.filter((e) => DECISION_TYPES.has(e.type));
    assert.deepEqual(decisions.map((e) => (e.payload as { seq: number }).seq), decisions.map((_, i) => i + 1), 'decisions 1..N, none twice');
    assert.equal(decisions.length, counted, 'every decision the agent counted is on the log');
    assert.equal(events.filter((e) => e.type === 'RunExited' || e.type === 'RunFailed').length, 1, events.map((e) => e.type).join(','));
    return events;
  }

  it('puts every decision of the spool on the Kafka log and closes the run failed, once', async () => {
    const { id, home, dir, counted } = await killMidRun();
    worker = await cluster.serve('runtime', home, ['--concurrency', '1']);
    assert.match(worker.errors(), new RegExp(`recovered run ${id} \\(supervisor died \\(pid \\d+\\)\\): ${counted} of the agent's ${counted} decisions recorded`));
    // the home's own events.db (its image import) holds nothing of the run
    const local = SqliteEventStore.open(join(home, 'events.db'), { readonly: true });
    const localRun: StoredEvent[] = [];
    for await (const e of local.readStream(runStream(id))) localRun.push(e);
    await local.close();
    assert.deepEqual(localRun.map((e) => e.type), [], 'nothing of the run in a local events.db');
    assert.ok(!existsSync(dir), 'the run directory is gone');

    const events = await wholeRecord(id, counted);
    const ends = events.filter((e) => e.type === 'RunExited' || e.type === 'RunFailed');
    const failed = ends[0].payload as { stage: string; reason: string; lostEvents: number };
    assert.equal(ends[0].type, 'RunFailed');
    assert.equal(failed.stage, 'runtime');
    assert.match(failed.reason, /^supervisor died \(pid \d+\)$/);
    assert.equal(failed.lostEvents, 0);
    // the gateway tells it the same
    const view = await until('failed on the gateway', async () => {
      const v = await api('GET', `/v1/runs/${id}`);
      return v.body.status === 'failed' ? v.body : undefined;
    });
    assert.match(view.reason, /^supervisor died/);
  });

  it('when another worker recorded the run lost first, puts the spool\'s missing decisions after its end, with RunRecordCompleted', async () => {
    const { id, home, dir, counted } = await killMidRun();
    // a second worker takes the dead one's partitions, reads the command again, finds its claimant gone
    const oh = cluster.workerHome(join(work, 'loop.tar'), 'loop:1');
    await cluster.serve('runtime', oh, ['--concurrency', '1']);
    const lost = await until('the run recorded lost by the other worker', async () => {
      const evs = await streamOf(id);
      const end = evs.find((e) => e.type === 'RunFailed');
      return end ? evs : undefined;
    }, 120_000);
    const end = lost.find((e) => e.type === 'RunFailed')!.payload as { reason: string };
    assert.match(end.reason, /^worker lost: /);
    const before = lost.filter((e) => DECISION_TYPES.has(e.type)).length;
    assert.ok(before < counted, `${before} of ${counted} decisions on the log before recovery`);

    worker = await cluster.serve('runtime', home, ['--concurrency', '1']);
    assert.match(worker.errors(), new RegExp(`recovered run ${id} \\(.*\\): ${counted} of the agent's ${counted} decisions recorded \\(${counted - before} of them added after the run's end`));
    assert.ok(!existsSync(dir), 'the run directory is gone');
    const events = await wholeRecord(id, counted);
    const last = events[events.length - 1];
    assert.equal(last.type, 'RunRecordCompleted');
    assert.deepEqual(last.payload, { runId: id, recovered: counted - before, lostEvents: 0 });
    const view = await until('the gateway folds the recovered record', async () => {
      const v = await api('GET', `/v1/runs/${id}`);
      const c = v.body.counts ?? {};
      return v.body.lostEvents === undefined && c.allow + c.deny + c.emulate === counted ? v.body : undefined;
    });
    assert.equal(view.status, 'failed');
    assert.match(view.reason, /^worker lost: /);
  });
});
