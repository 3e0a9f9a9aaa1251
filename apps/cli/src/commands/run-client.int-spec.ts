import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasControllingTerminal } from '../terminal';

/**
 * The native client of `capulator run` (agent/src/run-client.c) against a scripted daemon:
 * this test listens on the run socket itself and answers as it likes, including malformed and
 * fuzzed lines. Built with AddressSanitizer + UBSan (make -C agent asan): every answer must end
 * in an exit status, never a crash or a sanitizer report.
 *
 * The client's PATH is empty, so its cold path (exec node) fails with exit 70: a fallback is
 * visible as "cannot run node".
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const client = join(repo, 'agent/build/capulator-run-asan');
const SANITIZER_EXIT = 99;

let home: string;
let emptyPath: string;
let server: Server;
/** what the scripted daemon does with the next connection */
let script: (sock: Socket, request: Record<string, unknown>) => void = () => undefined;
let connections = 0;

function listen(): Promise<void> {
  server = createServer((sock) => {
    connections++;
    let buf = '';
    let started = false;
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (s: string) => {
      buf += s;
      const nl = buf.indexOf('\n');
      if (started || nl < 0) return;
      started = true;
      const request = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      script(sock, request);
    });
  });
  return new Promise((r) => server.listen(join(home, 'run.sock'), r));
}

function runClient(args: string[], opts: { cwd?: string } = {}): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(client, ['run', ...args], {
    cwd: opts.cwd ?? home,
    env: { CAPULATOR_HOME: home, PATH: emptyPath, ASAN_OPTIONS: `detect_leaks=0:exitcode=${SANITIZER_EXIT}`, UBSAN_OPTIONS: `halt_on_error=1:exitcode=${SANITIZER_EXIT}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((r) => child.on('close', (status, signal) => r({ status, signal, stdout, stderr })));
}

/** lines in, then the socket closed */
const answer = (...lines: string[]) => (sock: Socket) => sock.end(lines.map((l) => l + '\n').join(''));

describe('the run client (agent/build/capulator-run) against a scripted daemon', () => {
  before(async () => {
    const m = spawnSync('make', ['-s', '-C', join(repo, 'agent'), 'asan'], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    home = mkdtempSync(join(tmpdir(), 'capulator-client-'));
    emptyPath = join(home, 'empty');
    mkdirSync(emptyPath);
    await listen();
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(home, { recursive: true, force: true });
  });

  describe('when it asks for a run', () => {
    it('sends its argv byte for byte, its cwd, whether stdin is a terminal and whether it has a controlling one', async () => {
      let req: Record<string, unknown> = {};
      script = (sock, r) => {
        req = r;
        answer('{"type":"exit","code":0}')(sock);
      };
      const argv = ['--id', 'x', 'a "quoted" \\ back', 'line\nbreak\ttab\x01', 'café 😀', ''];
      const r = await runClient(argv);
      assert.equal(r.status, 0, r.stderr);
      // the client's controlling terminal is this process's (runc's -t opens /dev/tty)
      assert.deepEqual(req, { type: 'run', version: 1, argv, cwd: home, tty: false, ctty: hasControllingTerminal() });
    });
  });

  describe('when the daemon answers', () => {
    it('writes stderr text as sent (escapes, surrogate pairs) and exits with the code', async () => {
      script = answer('{"type":"stderr","data":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/\\n"}', '{"unknown":[1,{"a":null}],"type":"exit","code":7}');
      const r = await runClient(['img']);
      assert.equal(r.stderr, 'café 😀 "q" \\ /\n');
      assert.equal(r.status, 7);
    });
    it('runs exec as its child with its own stdio and reports the exit status', async () => {
      const seen: Record<string, unknown>[] = [];
      script = (sock) => {
        let buf = '';
        sock.on('data', (s: string) => {
          buf += s;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const m = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
            buf = buf.slice(nl + 1);
            seen.push(m);
            if (m.type === 'exited') sock.end('{"type":"exit","code":9}\n');
          }
        });
        sock.write(JSON.stringify({ type: 'exec', argv: ['/bin/sh', '-c', 'echo out; echo err >&2; exit 4'] }) + '\n');
      };
      const r = await runClient(['img']);
      assert.equal(r.status, 9, r.stderr);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
      assert.equal(seen[0].type, 'started');
      assert.ok(Number.isInteger(seen[0].pid));
      assert.deepEqual(seen[1], { type: 'exited', code: 4, signal: null });
    });
    it('reports a signal that ended runc by number', async () => {
      let exited: Record<string, unknown> | undefined;
      script = (sock) => {
        sock.on('data', (s: string) => {
          for (const l of s.split('\n').filter(Boolean)) {
            const m = JSON.parse(l) as Record<string, unknown>;
            if (m.type === 'exited') {
              exited = m;
              sock.end('{"type":"exit","code":143}\n');
            }
          }
        });
        sock.write(JSON.stringify({ type: 'exec', argv: ['/bin/sh', '-c', 'kill -TERM $$'] }) + '\n');
      };
      const r = await runClient(['img']);
      assert.equal(r.status, 143, r.stderr);
      assert.deepEqual(exited, { type: 'exited', code: null, signal: 15 });
    });
    it('fallback runs the cold path', async () => {
      script = answer('{"type":"fallback","reason":"--server"}');
      const r = await runClient(['img']);
      assert.equal(r.status, 70);
      assert.match(r.stderr, /^capulator: cannot run node: /);
    });
    it('a malformed line is exit 125 with one line', async () => {
      script = answer('{"type":"exit","code":');
      const r = await runClient(['img']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /^capulator: capulator serve sent a malformed message/);
    });
    it('a connection lost before the exit status is exit 125', async () => {
      script = answer('{"type":"stderr","data":"partial\\n"}');
      const r = await runClient(['img']);
      assert.equal(r.status, 125);
      assert.equal(r.stderr, 'partial\ncapulator: lost the connection to capulator serve (before the container ran); the run\'s state is unknown\n');
    });
  });

  describe('when the answers are fuzzed', () => {
    it('always ends in an exit status, never a crash or a sanitizer report', async () => {
      const seeds = [
        '{"type":"stderr","data":"a\\u00e9\\ud83d\\ude00\\n"}',
        '{"type":"exit","code":3}',
        '{"type":"exit","code":3,"x":[[{"y":"\\""}]]}',
        '{"type":"exec","argv":[]}',
        '{"type":"fallback","reason":"r"}',
      ];
      let seed = 1;
      const rnd = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      const mutate = (s: string) => {
        const b = Buffer.from(s);
        for (let k = 1 + rnd(4); k > 0; k--) {
          const op = rnd(4);
          const i = rnd(b.length);
          if (op === 0) b[i] = rnd(256);
          else if (op === 1) b[i] = '"\\{}[],:u0'.charCodeAt(rnd(10));
          else if (op === 2) return b.subarray(0, i).toString('latin1');
          else return s.slice(0, i) + '[{'.repeat(rnd(50)) + s.slice(i);
        }
        return b.toString('latin1');
      };
      const allowed = new Set([0, 3, 70, 125]);
      for (let i = 0; i < 150; i++) {
        const line = mutate(seeds[rnd(seeds.length)]).replace(/\n/g, ' ');
        script = (sock) => sock.end(Buffer.from(line + '\n', 'latin1'));
        const r = await runClient(['img']);
        assert.equal(r.signal, null, `${JSON.stringify(line)}: killed by ${r.signal}`);
        assert.notEqual(r.status, SANITIZER_EXIT, `${JSON.stringify(line)}: ${r.stderr}`);
        let asked = false; // a line that still reads as an exit status
        try {
          const m = JSON.parse(line) as { type?: string; code?: number };
          asked = m.type === 'exit' && m.code === r.status;
        } catch {
          /* not JSON */
        }
        assert.ok(allowed.has(r.status!) || asked, `${JSON.stringify(line)}: exit ${r.status} ${r.stderr}`);
      }
    });
  });

  describe('when the socket is not this user’s', () => {
    it('warns and takes the cold path without connecting', async () => {
      const before = connections;
      chownSync(join(home, 'run.sock'), 65534, 65534);
      try {
        const r = await runClient(['img']);
        assert.equal(r.status, 70);
        assert.match(r.stderr, /^capulator: warning: not using .*run\.sock: it and .* must belong to uid 0/);
        assert.match(r.stderr, /capulator: cannot run node: /);
        assert.equal(connections, before);
      } finally {
        chownSync(join(home, 'run.sock'), 0, 0);
      }
    });
  });
});
