import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { repoRoot } from '@capulator/host';
import { runStream, SqliteEventStore } from '@capulator/events';
import { fixtureImages, parseSseText, until } from './harness';

/**
 * `capulator serve` killed with runs queued and running, then started again on the same home:
 * nothing stays `queued` or `running` for ever. The running run is recovered (stopped, recorded
 * failed); the queued one, which died with the server's in-memory queue and never ran, is recorded
 * failed as an orphan by the restarted server (a server that stops in order does the same for its
 * queue). Each with exactly one terminal event. The runs' output outlives the server too
 * (GET /v1/runs/{id}/logs reads it back from $CAPULATOR_HOME/logs), as `docker logs` outlives a
 * daemon restart.
 */
const CLI = join(repoRoot(__dirname), 'bin', 'capulator');

interface Served {
  proc: ChildProcess;
  url: string;
}

async function serve(home: string): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--http', '127.0.0.1:0', '--grpc', 'off', '--concurrency', '1', '--log-level', 'warn'], {
    env: { ...process.env, CAPULATOR_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const url = await until('serve to listen', () => /serving http (\S+)/.exec(out)?.[1], 30_000);
  return { proc, url };
}

async function stopped(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await exited;
}

describe('capulator serve killed with runs queued and running', () => {
  let home: string;
  let token: string;
  let server: Served | undefined;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'capulator-restart-'));
    const created = spawnSync(process.execPath, [CLI, 'token', 'create', '--name', 'me', '--scopes', '*'], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
    assert.equal(created.status, 0, created.stderr);
    token = created.stdout.trimEnd().split('\n').pop()!;
  });
  after(async () => {
    if (server) await stopped(server.proc, 'SIGTERM');
    rmSync(home, { recursive: true, force: true });
  });

  it('leaves neither queued nor running after a restart: the queued run failed as an orphan, the running one recovered, one end each; their output is still there', async () => {
    server = await serve(home);
    const auth = `Bearer ${token}`;
    await request(server.url).post('/v1/images?tag=bb:1').set('Authorization', auth).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().busyboxPing.dockerArchive)).expect(201);
    const submit = async (command: string[]) => (await request(server!.url).post('/v1/runs').set('Authorization', auth).send({ image: 'bb:1', command }).expect(202)).body.id as string;
    const status = async (id: string) => (await request(server!.url).get(`/v1/runs/${id}`).set('Authorization', auth).expect(200)).body as { status: string; reason?: string; stage?: string };
    const logs = async (id: string) => {
      const r = await request(server!.url).get(`/v1/runs/${id}/logs?follow=1`).set('Authorization', auth).buffer(true).parse((res, cb) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => cb(null, text));
      });
      assert.equal(r.status, 200);
      const msgs = parseSseText(String(r.body)) as unknown as Array<{ event: string; data: { text?: string } }>;
      assert.equal(msgs[msgs.length - 1]?.event, 'end', 'the stream ends (follow=1 of a run that has ended)');
      return { stdout: msgs.filter((m) => m.event === 'stdout').map((m) => m.data.text).join(''), stderr: msgs.filter((m) => m.event === 'stderr').map((m) => m.data.text).join('') };
    };
    const done = await submit(['/bin/sh', '-c', 'echo hello; echo oops >&2']);
    await until('the first run to end', async () => ((await status(done)).status === 'exited' ? true : undefined), 60_000);
    const busy = await submit(['/bin/sh', '-c', 'echo started; exec sleep 60']);
    const queued = await submit(['/bin/true']);
    await until('the busy run to start', async () => ((await status(busy)).status === 'running' ? true : undefined));
    await until('the busy run to write', async () => (existsSync(join(home, 'logs', `${busy}.jsonl`)) && readFileSync(join(home, 'logs', `${busy}.jsonl`), 'utf8').includes('started') ? true : undefined));
    assert.equal((await status(queued)).status, 'queued', 'concurrency 1: the second run waits');

    await stopped(server.proc, 'SIGKILL');
    server = await serve(home);

    const busyEnd = await until('the running run to be recovered', async () => ((await status(busy)).status === 'failed' ? status(busy) : undefined), 30_000);
    const queuedEnd = await until('the queued run to be settled', async () => ((await status(queued)).status === 'failed' ? status(queued) : undefined), 30_000);
    assert.match(queuedEnd.reason ?? '', /^orphaned: the server that queued it stopped before it started; it never ran$/);
    assert.equal(queuedEnd.stage, 'runtime');
    assert.ok(busyEnd.reason, 'the recovered run says why it failed');

    // the output written before the kill, read back by the new server
    assert.deepEqual(await logs(done), { stdout: 'hello\n', stderr: 'oops\n' });
    assert.deepEqual(await logs(busy), { stdout: 'started\n', stderr: '' });
    assert.deepEqual(await logs(queued), { stdout: '', stderr: '' });

    // one terminal event each, and the queued run never started
    const store = SqliteEventStore.open(join(home, 'events.db'), { readonly: true });
    try {
      for (const [id, want] of [
        [busy, ['RunRequested', 'RunStarted']],
        [queued, ['RunRequested', 'RunFailed']],
      ] as const) {
        const lifecycle: string[] = [];
        for await (const e of store.readStream(runStream(id))) if (/^Run/.test(e.type)) lifecycle.push(e.type);
        assert.deepEqual(lifecycle.slice(0, want.length), [...want], `${id}: ${lifecycle.join(' ')}`);
        assert.equal(lifecycle.filter((t) => t === 'RunExited' || t === 'RunFailed').length, 1, `${id}: ${lifecycle.join(' ')}`);
      }
    } finally {
      await store.close();
    }
    // the killed server's running container and run directory are gone
    const runs = join(home, 'runs');
    assert.deepEqual(existsSync(runs) ? readdirSync(runs).filter((d) => d === busy) : [], []);
    assert.equal(existsSync(`/run/capulator/runc/capulator-${busy}`), false);
  });
});
