import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { StoredEvent } from '@capulator/events';
import { runEvents } from '../../../../test/fixtures/events';
import { fixtureImages } from '../../../../test/fixtures/images';

/**
 * `capulator run` through `capulator serve`'s run socket: bin/capulator → the native client →
 * the daemon prepares the run → the client runs runc. Real runc, agent and SQLite store.
 *
 * The client's PATH holds runc and no node: a run that the client handed back to the Node CLI
 * (the cold path) fails with "cannot run node", so these runs are the daemon's.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');
const RUNC_ROOT = '/run/capulator/runc';

let home: string; // served by the daemon
let coldHome: string; // no daemon: the cold path
let rootfs: string;
let noNode: string; // a PATH with runc only
let serve: ChildProcess;
const tag = Math.random().toString(16).slice(2, 8);

const withDaemon = (args: string[], cwd = repo) =>
  spawnSync(bin, args, { encoding: 'utf8', cwd, env: { ...process.env, CAPULATOR_HOME: home, PATH: noNode } });
const cold = (args: string[], cwd = repo) => spawnSync(bin, args, { encoding: 'utf8', cwd, env: { ...process.env, CAPULATOR_HOME: coldHome } });

const stream = runEvents;

async function until<T>(what: string, f: () => T | undefined | false, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A client started in the background, its output collected. */
function start(args: string[]) {
  const child = spawn(bin, args, { env: { ...process.env, CAPULATOR_HOME: home, PATH: noNode } });
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, out, done };
}

const containers = () => spawnSync('runc', ['--root', RUNC_ROOT, 'list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);

describe('capulator run through capulator serve (the run socket)', () => {
  before(async () => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-sock-'));
    coldHome = mkdtempSync(join(tmpdir(), 'capulator-sock-cold-'));
    noNode = join(home, 'path');
    mkdirSync(noNode);
    const runc = spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(runc, join(noNode, 'runc'));
    serve = spawn(bin, ['serve', '--http', 'off', '--grpc', 'off', '--log-level', 'silent'], { env: { ...process.env, CAPULATOR_HOME: home, DAEMON_ONLY: 'the daemon’s' }, stdio: ['ignore', 'pipe', 'inherit'] });
    await until('the run socket', () => existsSync(join(home, 'run.sock')));
  });
  after(async () => {
    if (serve.exitCode === null) {
      const exited = new Promise((r) => serve.once('exit', r));
      serve.kill('SIGTERM');
      await exited;
    }
    rmSync(home, { recursive: true, force: true });
    rmSync(coldHome, { recursive: true, force: true });
  });

  it('is a socket only its owner may use', () => {
    assert.equal(statSync(join(home, 'run.sock')).mode & 0o777, 0o600);
  });

  describe('when the program writes and exits non-zero', () => {
    it('passes stdout, stderr and the exit code through, as the cold path does', () => {
      const args = ['run', '--no-store', rootfs, '--', '/bin/sh', '-c', 'echo hi; echo err >&2; exit 3'];
      const r = withDaemon(args);
      assert.equal(r.status, 3, r.stderr);
      assert.equal(r.stdout, 'hi\n');
      assert.equal(r.stderr, 'err\n');
      const c = cold(args);
      assert.deepEqual([c.status, c.stdout, c.stderr], [r.status, r.stdout, r.stderr]);
    });
  });

  describe('when the run is recorded', () => {
    it('records the same events as a cold run, paths relative to the client', async () => {
      const id = `sock-ping-${tag}`;
      // relative --policy and rootfs: resolved against the client's cwd, not the daemon's
      const args = ['run', '--id', id, '--policy', 'examples/policies/ping.yaml', relative(repo, rootfs), '--', '/bin/ping', '-c1', '127.0.0.1'];
      const r = withDaemon(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /1 received/);
      const c = cold(args);
      assert.equal(c.status, 0, c.stderr);
      const [viaDaemon, viaCold] = [await stream(home, id), await stream(coldHome, id)];
      const types = viaDaemon.map((e) => e.type);
      // the agent's decisions come in its order; the kernel record's checks come from another
      // source, so where they fall between the agent's is timing, not behaviour
      const fromKernel = (e: StoredEvent) => (e.payload as { source?: string }).source === 'kernel';
      const agentTypes = (events: StoredEvent[]) => events.filter((e) => !fromKernel(e)).map((e) => e.type);
      assert.deepEqual(agentTypes(viaDaemon), agentTypes(viaCold));
      // the kernel's checks: the same ones (identical checks of a thread are aggregated per 20 ms
      // window, so how many lines they make is timing too)
      const kernelKinds = (events: StoredEvent[]) => [...new Set(events.filter(fromKernel).map((e) => { const p = e.payload as { syscall: string; capability?: string; kernel?: { result: string } }; return `${p.syscall}:${p.capability}:${p.kernel?.result}`; }))].sort();
      assert.deepEqual(kernelKinds(viaDaemon), kernelKinds(viaCold));
      assert.deepEqual([types[0], types[1], types[types.length - 1]], ['RunRequested', 'RunStarted', 'RunExited']);
      assert.ok(types.includes('PrivilegeChecked'));
      const shape = (events: StoredEvent[]) => [...new Set(events.map((e) => `${e.type}:${Object.keys(e.payload as object).sort().join(',')}`))].sort();
      assert.deepEqual(shape(viaDaemon), shape(viaCold));
      const exited = viaDaemon[viaDaemon.length - 1].payload as { exitCode: number; lostEvents: number };
      assert.equal(exited.exitCode, 0);
      assert.equal(exited.lostEvents, 0);
      // and the audit log sees the decisions
      const log = spawnSync(bin, ['audit', 'log', '--run', id, '--json'], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
      assert.equal(log.status, 0, log.stderr);
      const lines = log.stdout.trim().split('\n').map((l) => JSON.parse(l) as { runId?: string; run?: string; ruleId?: string });
      assert.equal(lines.length, types.filter((t) => !t.startsWith('Run')).length);
      assert.ok(lines.some((l) => l.ruleId === 'ping-raw'));
    });
  });

  describe('when the container is killed by a signal', () => {
    it('exits 128+N and records it', async () => {
      const id = `sock-kill-${tag}`;
      const c = start(['run', '--id', id, rootfs, '--', '/bin/sh', '-c', 'echo up; sleep 30']);
      await until('the container', () => c.out.stdout.includes('up'));
      spawnSync('runc', ['--root', RUNC_ROOT, 'kill', `capulator-${id}`, 'KILL']);
      const r = await c.done;
      assert.equal(r.code, 137, c.out.stderr);
      const ev = await stream(home, id);
      assert.deepEqual(ev[ev.length - 1].payload as object, { ...(ev[ev.length - 1].payload as object), exitCode: 137, signal: 'SIGKILL' });
    });
    it('forwards SIGTERM to the container', async () => {
      const c = start(['run', '--no-store', rootfs, '--', '/bin/sh', '-c', 'trap "echo term; exit 42" TERM; echo up; while :; do sleep 0.05; done']);
      await until('the container', () => c.out.stdout.includes('up'));
      c.child.kill('SIGTERM');
      const r = await c.done;
      assert.equal(r.code, 42, c.out.stderr);
      assert.equal(c.out.stdout, 'up\nterm\n');
    });
  });

  describe('when the agent dies mid-run', () => {
    it('the daemon kills the container and the client exits 125, as cold', async () => {
      const id = `sock-agent-${tag}`;
      const c = start(['run', '--id', id, rootfs, '--', '/bin/sh', '-c', 'echo up; sleep 30']);
      await until('the container', () => c.out.stdout.includes('up'));
      // the daemon's agent for this run (a child of the daemon; a spare's command line names no run,
      // so its pid is read where the runtime keeps it for recovery)
      const sup = join(home, 'runs', id, 'supervisor.json');
      const agent = await until('the agent of the run', () => {
        const pid = existsSync(sup) ? (JSON.parse(readFileSync(sup, 'utf8')) as { agent?: { pid: number } }).agent?.pid : undefined;
        return pid && readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(serve.pid) ? pid : undefined;
      });
      assert.ok(agent, 'the agent of the run');
      process.kill(Number(agent), 'SIGKILL');
      const r = await c.done;
      assert.equal(r.code, 125);
      assert.match(c.out.stderr, new RegExp(`capulator: run ${id} failed: the agent died while the container ran`));
      assert.ok(!containers().includes(`capulator-${id}`));
      const events = await stream(home, id);
      // one terminal event: the run reads as failed with its stage, never as exited
      assert.deepEqual(events.filter((e) => e.type === 'RunExited' || e.type === 'RunFailed').map((e) => e.type), ['RunFailed']);
      const failed = events.find((e) => e.type === 'RunFailed')!.payload as { stage: string };
      assert.equal(failed.stage, 'agent');
    });
  });

  describe('when the input is bad', () => {
    it('a bad policy file is exit 2 with the cold path’s located message', () => {
      const dir = mkdtempSync(join(tmpdir(), 'capulator-sock-policy-'));
      try {
        writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: capulator/v1\nname: bad\nrules:\n  - id: r1\n    bogus: 1\n');
        const args = ['run', '--no-store', '--policy', 'bad.yaml', rootfs, '--', '/bin/true'];
        const r = withDaemon(args, dir);
        assert.equal(r.status, 2);
        assert.match(r.stderr, new RegExp(`^capulator: ${join(dir, 'bad.yaml')}:\\d+:\\d+: `));
        assert.equal(r.stderr, cold(args, dir).stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
    it('-e NAME takes the value from the client’s environment, never the daemon’s (the client runs it on the cold path)', () => {
      const r = spawnSync(bin, ['run', '--no-store', '-e', 'FROM_CLIENT', '-e', 'DAEMON_ONLY', '-e', 'SET=1', rootfs, '--', '/bin/sh', '-c', 'echo "$FROM_CLIENT|${DAEMON_ONLY-unset}|$SET"'], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home, FROM_CLIENT: 'the client’s' },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'the client’s|unset|1\n');
      const bad = withDaemon(['run', '--no-store', '-e', 'BAD-NAME', rootfs, '--', '/bin/true']);
      assert.deepEqual([bad.status, bad.stderr], [2, "capulator: --env BAD-NAME: want K=V, or K for this shell's value of K\n"]);
    });
    it('-t with no terminal (a pipe, cron, CI): a pty is relayed, as for a server’s -t runs; through the daemon the client runs it cold', () => {
      // setsid: no controlling terminal, which runc's own -t needs (before: exit 125, "open /dev/tty")
      const prog = ['run', '--no-store', '-t', rootfs, '--', '/bin/sh', '-c', 'test -t 0 && test -t 1 && echo on-a-terminal; echo to-stderr >&2; exit 4'];
      for (const homeDir of [home, coldHome]) {
        const r = spawnSync('setsid', ['-w', bin, ...prog], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: homeDir }, stdio: ['ignore', 'pipe', 'pipe'] });
        assert.equal(r.status, 4, r.stderr);
        // one stream, as from a terminal (CRLF)
        assert.equal(r.stdout, 'on-a-terminal\r\nto-stderr\r\n', homeDir);
      }
      // -i: this process's stdin goes to the terminal
      const i = spawnSync('setsid', ['-w', bin, 'run', '--no-store', '-it', rootfs, '--', '/bin/sh', '-c', 'read l; echo "got $l"'], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: coldHome },
        input: 'a-line\n',
      });
      assert.equal(i.status, 0, i.stderr);
      assert.match(i.stdout, /got a-line\r\n/);
    });
    it('a usage error is printed by the cold path (commander’s own text)', () => {
      const args = ['run', '--bogus', rootfs];
      const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
      const c = cold(args);
      assert.equal(r.status, 2);
      assert.deepEqual([r.status, r.stdout, r.stderr], [c.status, c.stdout, c.stderr]);
    });
  });

  describe('when two runs go at once', () => {
    it('both run side by side', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'capulator-sock-both-'));
      try {
        // each waits (at most 10 s) for the other's file: only concurrent runs both succeed
        const wait = (me: string, other: string) => `touch /x/${me}; i=0; while [ ! -e /x/${other} ]; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done; echo ${me}`;
        const a = start(['run', '--no-store', '--mount', `${dir}:/x`, rootfs, '--', '/bin/sh', '-c', wait('a', 'b')]);
        const b = start(['run', '--no-store', '--mount', `${dir}:/x`, rootfs, '--', '/bin/sh', '-c', wait('b', 'a')]);
        const [ra, rb] = await Promise.all([a.done, b.done]);
        assert.equal(ra.code, 0, a.out.stderr);
        assert.equal(rb.code, 0, b.out.stderr);
        assert.deepEqual([a.out.stdout, b.out.stdout], ['a\n', 'b\n']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('when the client is killed mid-run', () => {
    it('the daemon stops the container and records the run failed', async () => {
      const id = `sock-gone-${tag}`;
      const c = start(['run', '--id', id, rootfs, '--', '/bin/sh', '-c', 'echo up; sleep 30']);
      await until('the container', () => c.out.stdout.includes('up'));
      assert.ok(containers().includes(`capulator-${id}`));
      c.child.kill('SIGKILL');
      await c.done;
      const ev = await until('the run to be recorded', () => {
        const e = spawnSync(process.execPath, ['-e', `
          const { SqliteEventStore, runStream } = require(${JSON.stringify(join(repo, 'dist/libs/events/src'))});
          (async () => { const s = SqliteEventStore.open(process.argv[1]); const t = [];
            for await (const e of s.readStream(runStream(process.argv[2]))) t.push(e.type); await s.close(); console.log(t.join(',')); })();`, join(home, 'events.db'), id], { encoding: 'utf8' }).stdout.trim();
        return e.endsWith('RunFailed') && e;
      });
      assert.ok(!ev.split(',').includes('RunExited'), ev);
      assert.ok(!containers().includes(`capulator-${id}`));
      assert.ok(!readdirSync(join(home, 'runs')).includes(id));
      const failed = (await stream(home, id)).find((e) => e.type === 'RunFailed')!.payload as { reason: string };
      assert.match(failed.reason, /client went away/);
      // and the daemon still serves
      const r = withDaemon(['run', '--no-store', rootfs, '--', '/bin/sh', '-c', 'echo still']);
      assert.equal(r.stdout, 'still\n', r.stderr);
    });
  });

  describe('when the daemon does not handle it', () => {
    it('--server goes to the Node CLI', () => {
      const r = withDaemon(['run', '--server', 'http://127.0.0.1:1', '--token', 't', rootfs, '--', '/bin/true']);
      assert.equal(r.status, 70);
      assert.match(r.stderr, /^capulator: cannot run node: /);
    });
  });

  describe('when no daemon serves the home', () => {
    it('the client runs the Node CLI (the cold path)', () => {
      const args = ['run', '--no-store', rootfs, '--', '/bin/sh', '-c', 'echo cold; exit 5'];
      const r = cold(args);
      assert.equal(r.status, 5, r.stderr);
      assert.equal(r.stdout, 'cold\n');
      const viaClient = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: coldHome, PATH: noNode } });
      assert.equal(viaClient.status, 70);
      assert.match(viaClient.stderr, /^capulator: cannot run node: /);
      assert.ok(!existsSync(join(coldHome, 'run.sock')));
    });
  });

  describe('when a daemon was killed and left its socket', () => {
    it('the client takes the cold path, and the next daemon replaces the socket', async () => {
      const h = mkdtempSync(join(tmpdir(), 'capulator-sock-stale-'));
      const start = () => spawn(bin, ['serve', '--http', 'off', '--grpc', 'off'], { env: { ...process.env, CAPULATOR_HOME: h }, stdio: 'ignore' });
      const stop = async (d: ChildProcess, sig: NodeJS.Signals) => {
        const exited = new Promise((r) => d.once('exit', r));
        d.kill(sig);
        await exited;
      };
      try {
        const first = start();
        await until('the run socket', () => existsSync(join(h, 'run.sock')));
        await stop(first, 'SIGKILL');
        assert.ok(existsSync(join(h, 'run.sock')));
        const args = ['run', '--no-store', rootfs, '--', '/bin/sh', '-c', 'echo ok'];
        const stale = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: h, PATH: noNode } });
        assert.equal(stale.status, 70);
        assert.match(stale.stderr, /^capulator: cannot run node: /);
        const second = start();
        try {
          await until('a run through the new daemon', () => {
            const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: h, PATH: noNode } });
            return r.status === 0 && r.stdout === 'ok\n';
          });
        } finally {
          await stop(second, 'SIGTERM');
        }
      } finally {
        rmSync(h, { recursive: true, force: true });
      }
    });
  });

  describe('when the daemon stops', () => {
    it('exits 0 on SIGTERM and removes its socket', async () => {
      const exited = new Promise<number | null>((r) => serve.once('exit', (code) => r(code)));
      serve.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(!existsSync(join(home, 'run.sock')));
    });
  });
});
