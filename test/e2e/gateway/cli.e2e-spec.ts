import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { runRemote } from '../../../apps/cli/src/commands/remote-run';
import { CliError } from '../../../apps/cli/src/cli-error';
import { repoRoot } from '@capulator/host';
import { fixtureImages, PING_POLICY, until } from './harness';

const CLI = join(repoRoot(__dirname), 'bin', 'capulator');

function capulator(home: string, ...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
}

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

describe('capulator token', () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'capulator-cli-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('when creating a token', () => {
    it('prints the token alone on the last line and stores only its hash (mode 0600)', () => {
      const r = capulator(home, 'token', 'create', '--name', 'ci', '--scopes', 'runs:read,runs:write');
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      const token = lines[lines.length - 1];
      assert.match(token, /^cap_[A-Za-z0-9_-]{43}$/);
      assert.ok(r.stdout.endsWith(token + '\n'));
      const file = join(home, 'tokens.json');
      const stored = readFileSync(file, 'utf8');
      assert.ok(!stored.includes(token.slice(4)), 'the token itself is stored');
      assert.match(stored, /"hash": "sha256:[0-9a-f]{64}"/);
      assert.equal(statSync(file).mode & 0o777, 0o600);
    });

    it('refuses an unknown scope and a duplicate name (exit 2, one line)', () => {
      const bad = capulator(home, 'token', 'create', '--name', 'x', '--scopes', 'runs:read,root');
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /^capulator: unknown scope "root"/);
      assert.equal(bad.stderr.trimEnd().split('\n').length, 1);
      const dup = capulator(home, 'token', 'create', '--name', 'ci', '--scopes', '*');
      assert.equal(dup.status, 2);
    });
  });

  describe('when listing and revoking', () => {
    it('lists names and scopes, never tokens, and revokes by name', () => {
      const ls = capulator(home, 'token', 'ls', '--json');
      assert.equal(ls.status, 0, ls.stderr);
      const rows = JSON.parse(ls.stdout) as Array<{ name: string; scopes: string[] }>;
      assert.deepEqual(rows.map((x) => [x.name, x.scopes]), [['ci', ['runs:read', 'runs:write']]]);
      assert.ok(!ls.stdout.includes('hash'));
      assert.equal(capulator(home, 'token', 'revoke', 'ci').status, 0);
      assert.equal(capulator(home, 'token', 'revoke', 'ci').status, 2);
      assert.deepEqual(JSON.parse(capulator(home, 'token', 'ls', '--json').stdout), []);
    });
  });
});

describe('capulator serve on an address it cannot listen on', () => {
  it('says which address, which flag and why in one line (exit 2), and ends: in use, no such host, for HTTP and gRPC', async () => {
    const home = mkdtempSync(join(tmpdir(), 'capulator-listen-'));
    // a port in use: this test's own listener
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const cases: Array<[string[], RegExp]> = [
        [['--http', `127.0.0.1:${port}`], new RegExp(`^capulator: cannot listen on 127\\.0\\.0\\.1:${port} \\(--http\\): .*EADDRINUSE`)],
        [['--http', '127.0.0.1:0', '--grpc', `127.0.0.1:${port}`], new RegExp(`^capulator: cannot listen on 127\\.0\\.0\\.1:${port} \\(--grpc\\): .*EADDRINUSE`)],
        [['--http', 'no-such-host.invalid:8080'], /^capulator: cannot listen on no-such-host\.invalid:8080 \(--http\): .*(ENOTFOUND|EAI_AGAIN)/],
        [['--http', '127.0.0.1:0', '--grpc', 'no-such-host.invalid:5000'], /^capulator: cannot listen on no-such-host\.invalid:5000 \(--grpc\): /],
      ];
      for (const [flags, want] of cases) {
        const r = spawnSync(process.execPath, [CLI, 'serve', '--no-run-socket', ...flags], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home }, timeout: 60_000 });
        assert.equal(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
        const ours = r.stderr.split('\n').filter((l) => l.startsWith('capulator:'));
        assert.equal(ours.length, 1, r.stderr);
        assert.match(ours[0], want);
        assert.ok(!/internal error|\n    at /.test(r.stderr), r.stderr);
      }
    } finally {
      taken.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('capulator serve with a remote run', () => {
  let home: string;
  let server: ChildProcess;
  let url: string;
  let token: string;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'capulator-serve-'));
    const created = capulator(home, 'token', 'create', '--name', 'me', '--scopes', '*');
    token = created.stdout.trimEnd().split('\n').pop()!;
    server = spawn(process.execPath, [CLI, 'serve', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--log-level', 'warn'], {
      env: { ...process.env, CAPULATOR_HOME: home },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    server.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    url = await until('serve to listen', () => /serving http (\S+)/.exec(out)?.[1], 30_000);
    await request(url).post('/v1/images?tag=bb:1').set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().busyboxPing.dockerArchive)).expect(201);
  });
  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(home, { recursive: true, force: true });
  });

  describe('when the program exits', () => {
    it("returns the program's exit code after following the run over SSE", async () => {
      const err = sink();
      const policyFile = join(home, 'ping.yaml');
      writeFileSync(policyFile, PING_POLICY);
      const code = await runRemote({ server: url, token, image: 'bb:1', command: ['/bin/sh', '-c', 'ping -c1 -W1 127.0.0.1 >/dev/null; exit 4'], policyFile, err, out: sink() });
      assert.equal(code, 4, err.text);
      assert.match(err.text, /exited with 4 \(allow [1-9]/);
    });

    it('prints each event as a JSON line with --json', async () => {
      const out = sink();
      const code = await runRemote({ server: url, token, image: 'bb:1', command: ['/bin/true'], json: true, out, err: sink() });
      assert.equal(code, 0);
      const types = out.text.trimEnd().split('\n').map((l) => JSON.parse(l).type);
      assert.deepEqual([types[0], types[types.length - 1]], ['RunRequested', 'RunExited']);
    });
  });

  describe('when submitted with `capulator run --server`', () => {
    it("follows the run and exits with the program's status", () => {
      const r = spawnSync(process.execPath, [CLI, 'run', '--server', url, '--token', token, 'bb:1', '--', '/bin/sh', '-c', 'exit 5'], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home },
      });
      assert.equal(r.status, 5, r.stderr);
      assert.match(r.stderr, /exited with 5/);
    });
    it("prints the program's stdout and stderr as it runs, and GET /v1/runs/{id}/logs gives them again", async () => {
      // 300 numbered lines (more than one pipe read), a pause, then a last line on each stream
      const script = 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done; echo oops >&2; sleep 1; echo last; echo last-err >&2; exit 3';
      const r = spawnSync(process.execPath, [CLI, 'run', '--server', url, '--token', token, 'bb:1', '--', '/bin/sh', '-c', script], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home },
        timeout: 120_000,
      });
      assert.equal(r.status, 3, r.stderr);
      const want = Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join('') + 'last\n';
      assert.equal(r.stdout, want);
      assert.match(r.stderr, /^oops\nlast-err\n/m);
      const id = /run (\S+) submitted/.exec(r.stderr)![1];
      const logs = await request(url).get(`/v1/runs/${id}/logs`).set('Authorization', `Bearer ${token}`).buffer(true).parse((res, cb) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => cb(null, text));
      });
      assert.equal(logs.status, 200);
      assert.match(String(logs.headers['content-type']), /text\/event-stream/);
      const msgs = String(logs.body).split('\n\n').filter((b) => b.trim()).map((b) => ({
        event: /^event: (.*)$/m.exec(b)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(b)![1]) as { stream?: string; text?: string; truncated?: boolean },
      }));
      assert.equal(msgs.filter((m) => m.event === 'stdout').map((m) => m.data.text).join(''), want);
      assert.equal(msgs.filter((m) => m.event === 'stderr').map((m) => m.data.text).join(''), 'oops\nlast-err\n');
      assert.deepEqual(msgs[msgs.length - 1], { event: 'end', data: { truncated: false } });
      // an unknown run: 404
      await request(url).get('/v1/runs/00000000-0000-4000-8000-000000000000/logs').set('Authorization', `Bearer ${token}`).expect(404);
    });

    it("makes the program's argv as docker run does, as locally: the image's Entrypoint, then the arguments given; --entrypoint drops the Cmd", async () => {
      // the image: Entrypoint [/bin/echo, entrypoint:], Cmd [default, cmd]
      await request(url).post('/v1/images?tag=ep:1').set('Authorization', `Bearer ${token}`).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().entrypoint.dockerArchive)).expect(201);
      const run = (...args: string[]) => {
        const r = spawnSync(process.execPath, [CLI, 'run', '--server', url, '--token', token, ...args], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home }, timeout: 120_000 });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      assert.equal(run('ep:1'), 'entrypoint: default cmd\n');
      assert.equal(run('ep:1', '--', 'given', 'args'), 'entrypoint: given args\n');
      assert.equal(run('--entrypoint', '/bin/echo', 'ep:1', '--', 'only'), 'only\n');
      assert.equal(run('--entrypoint', '/bin/echo', 'ep:1'), '\n');
      const none = spawnSync(process.execPath, [CLI, 'run', '--server', url, '--token', token, '--entrypoint', '', 'ep:1', '--', '/bin/true'], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
      assert.deepEqual([none.status, none.stderr], [2, "capulator: --entrypoint '' is not supported with --server: give the program to run instead (--entrypoint PROGRAM)\n"]);
      // the API's command and args: both together are the whole argv, as before args alone followed the image's Entrypoint
      const both = await request(url).post('/v1/runs').set('Authorization', `Bearer ${token}`).send({ image: 'ep:1', command: ['/bin/echo', 'a'], args: ['b'] }).expect(202);
      const view = await until('the run ended', async () => {
        const s = await request(url).get(`/v1/runs/${both.body.id}`).set('Authorization', `Bearer ${token}`);
        return s.body.status === 'exited' ? s.body : undefined;
      });
      assert.deepEqual(view.command, ['/bin/echo', 'a', 'b']);
      const logs = await request(url).get(`/v1/runs/${both.body.id}/logs`).set('Authorization', `Bearer ${token}`).buffer(true).parse((res, cb) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c));
        res.on('end', () => cb(null, t));
      });
      assert.match(String(logs.body), /"text":"a b\\n"/);
    });

    it('sends the workload flags (and --env-file, read here) with the run', () => {
      const envFile = join(home, 'run.env');
      writeFileSync(envFile, 'GREETING=hello from a file\n');
      const r = spawnSync(
        process.execPath,
        [CLI, 'run', '--server', url, '--token', token, '--hostname', 'remote1', '-u', '1000:1000', '-w', '/tmp', '--pids-limit', '64', '--env-file', envFile, 'bb:1', '--', '/bin/sh', '-c', 'hostname; id -u; pwd; echo "$GREETING"'],
        { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home }, timeout: 120_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'remote1\n1000\n/tmp\nhello from a file\n');
    });
    it("-i sends this command's stdin to the program's, to its end (as docker run -i)", () => {
      const input = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join('\n') + '\n';
      const r = spawnSync(process.execPath, [CLI, 'run', '--server', url, '--token', token, '-i', 'bb:1', '--', '/bin/sh', '-c', 'read a; read b; echo "$a"; echo "$b"; wc -l; echo end'], {
        input,
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home },
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'line 0\nline 1\n2998\nend\n');
      // a program that ends without reading: the command ends with it
      const q = spawnSync(process.execPath, [CLI, 'run', '--server', url, '--token', token, '-i', 'bb:1', '--', '/bin/sh', '-c', 'exit 3'], {
        input: 'x'.repeat(3 << 20),
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home },
        timeout: 120_000,
      });
      assert.equal(q.status, 3, q.stderr);
      assert.doesNotMatch(q.stderr, /warning/);
    });

    it('-it runs a shell on a real terminal through the server: window size, resize, ^C and the exit status as with docker', async () => {
      // a tmux server of its own: one window of a fixed size running the client, polled by its screen
      const sock = `capcli-${process.pid}`;
      const tmux = (...args: string[]) => spawnSync('tmux', ['-L', sock, ...args], { encoding: 'utf8', timeout: 10_000 });
      const screen = () => tmux('capture-pane', '-p', '-t', 't').stdout;
      const send = (...keys: string[]) => tmux('send-keys', '-t', 't', ...keys);
      const cmd = `CAPULATOR_HOME=${home} ${process.execPath} ${CLI} run --server ${url} --token ${token} -it bb:1 -- sh`;
      const t = tmux('new-session', '-d', '-s', 't', '-x', '100', '-y', '30', `${cmd}; echo "exit=$?"; sleep 30`);
      assert.equal(t.status, 0, t.stderr);
      try {
        await until('the prompt', () => (/^\/ #/m.test(screen()) ? true : undefined), 60_000);
        send('stty size; tty', 'Enter');
        // both lines: the screen is polled, and tty's line may come a poll after stty's
        await until('the size, and a terminal of its own', () => {
          const s = screen();
          return /^30 100$/m.test(s) && /^\/dev\/pts\/0$/m.test(s) ? true : undefined;
        }, 10_000);
        // the client's window changes: the run's follows (SIGWINCH)
        tmux('resize-window', '-t', 't', '-x', '120', '-y', '40');
        await new Promise((r) => setTimeout(r, 500));
        send('clear; stty size', 'Enter');
        await until('the new size', () => (/^40 120$/m.test(screen()) ? true : undefined), 10_000);
        // ^C goes to the program in the foreground, not to the client
        send('sleep 60', 'Enter');
        await new Promise((r) => setTimeout(r, 500));
        send('C-c');
        send('echo after-$((20+1)); exit 5', 'Enter');
        await until('the exit', () => (/^exit=5$/m.test(screen()) ? true : undefined), 30_000);
        assert.match(screen(), /^after-21\r?$/m, '^C stopped sleep, not the shell');
      } finally {
        tmux('kill-server');
      }
    });

    it('-t answers 409 for a resize of a run without a terminal, and 400 for a size out of range', async () => {
      const sub = await request(url).post('/v1/runs').set('Authorization', `Bearer ${token}`).send({ image: 'bb:1', command: ['/bin/sh', '-c', 'sleep 5'] }).expect(202);
      const id = sub.body.id as string;
      const no = await request(url).post(`/v1/runs/${id}/resize`).set('Authorization', `Bearer ${token}`).send({ rows: 40, cols: 120 });
      assert.equal(no.status, 409, JSON.stringify(no.body));
      assert.match(no.body.error.message, /not started with -t/);
      const bad = await request(url).post(`/v1/runs/${id}/resize`).set('Authorization', `Bearer ${token}`).send({ rows: 0, cols: 120 });
      assert.equal(bad.status, 400);
      await request(url).delete(`/v1/runs/${id}`).set('Authorization', `Bearer ${token}`).expect(202);
    });

    it('-d prints the run id once it started; logs, wait and stop --server manage it (as docker run -d, logs, wait, stop)', () => {
      const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_TOKEN: token }, timeout: 120_000 });
      const d = cli('run', '--server', url, '-d', 'bb:1', '--', '/bin/sh', '-c', 'echo started; echo warn >&2; sleep 2; echo done; exit 6');
      assert.equal(d.status, 0, d.stderr);
      assert.equal(d.stderr, '');
      const id = d.stdout.trim();
      assert.match(d.stdout, /^[0-9a-f-]{36}\n$/);
      // -f follows to the end of the output; without -f, what was kept so far
      const f = cli('logs', '--server', url, '-f', id);
      assert.equal(f.status, 0, f.stderr);
      assert.equal(f.stdout, 'started\ndone\n');
      assert.equal(f.stderr, 'warn\n');
      const t = cli('logs', '--server', url, '-t', id);
      assert.match(t.stdout, /^\d{4}-\d\d-\d\dT\S+Z started\n\S+ done\n$/);
      assert.equal(cli('logs', '--server', url, '--since', '2099-01-01T00:00:00Z', id).stdout, '');
      // --tail N: the last N lines of both streams together; with -f, then what follows (none: it ended)
      // (started and warn, written at once to two pipes, may be read in either order)
      const t2 = cli('logs', '--server', url, '--tail', '2', id);
      assert.equal(t2.status, 0, t2.stderr);
      assert.ok(['done\n|warn\n', 'started\ndone\n|'].includes(`${t2.stdout}|${t2.stderr}`), JSON.stringify([t2.stdout, t2.stderr]));
      const t3 = cli('logs', '--server', url, '--tail', '3', id);
      assert.deepEqual([t3.stdout, t3.stderr], ['started\ndone\n', 'warn\n']);
      const t1 = cli('logs', '--server', url, '-f', '-n', '1', id);
      assert.deepEqual([t1.status, t1.stdout, t1.stderr], [0, 'done\n', '']);
      const w = cli('wait', '--server', url, id);
      assert.equal(w.status, 0, w.stderr);
      assert.equal(w.stdout, '6\n');
      // stop: the server stops it at once, the command returns once its end is recorded
      const long = cli('run', '--server', url, '-d', 'bb:1', '--', 'sleep', '60');
      const lid = long.stdout.trim();
      const started = Date.now();
      const s = cli('stop', '--server', url, lid);
      assert.equal(s.status, 0, s.stderr);
      assert.equal(s.stdout, `${lid}\n`);
      assert.ok(Date.now() - started < 30_000);
      assert.equal(cli('wait', '--server', url, lid).stdout, '137\n');
      // a run that ended: exit 1, as locally; a grace time the server cannot honour, and no token: exit 2
      const again = cli('stop', '--server', url, lid);
      assert.equal(again.status, 1);
      assert.equal(again.stderr.split('\n').length, 2, again.stderr);
      assert.equal(cli('stop', '--server', url, '-t', '5', lid).status, 2);
      const noToken = spawnSync(process.execPath, [CLI, 'logs', '--server', url, id], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_TOKEN: '' } });
      assert.equal(noToken.status, 2);
      assert.match(noToken.stderr, /--server needs --token/);
      // a run that cannot start: its failure is this command's (125), as a local run -d's is
      const bad = cli('run', '--server', url, '-d', 'nope:1');
      assert.equal(bad.status, 125);
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /failed \(image\)/);
    });

    it('refuses --server without a token (exit 2, one line)', () => {
      const env: NodeJS.ProcessEnv = { ...process.env, CAPULATOR_HOME: home };
      delete env.CAPULATOR_TOKEN;
      const r = spawnSync(process.execPath, [CLI, 'run', '--server', url, 'bb:1'], { encoding: 'utf8', env });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--server needs --token/);
    });
  });

  describe('when the run cannot start or the server refuses', () => {
    it('returns 125 for a missing image, and a CliError for a bad token', async () => {
      const err = sink();
      assert.equal(await runRemote({ server: url, token, image: 'nope:1', command: [], err, out: sink() }), 125);
      assert.match(err.text, /failed \(image\)/);
      await assert.rejects(runRemote({ server: url, token: 'cap_wrong', image: 'bb:1', command: [], err: sink(), out: sink() }), (e: unknown) => e instanceof CliError && /missing or invalid bearer token/.test(e.message));
    });

    it('refuses a token revoked while the server runs', async () => {
      const created = capulator(home, 'token', 'create', '--name', 'short', '--scopes', 'runs:read');
      const t2 = created.stdout.trimEnd().split('\n').pop()!;
      await request(url).get('/v1/runs').set('Authorization', `Bearer ${t2}`).expect(200);
      assert.equal(capulator(home, 'token', 'revoke', 'short').status, 0);
      await request(url).get('/v1/runs').set('Authorization', `Bearer ${t2}`).expect(401);
    });
  });
});
