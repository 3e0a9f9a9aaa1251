import { Command, CommanderError } from 'commander';
import { chmodSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { signalName } from '@capulator/abi';
import type { EventStore } from '@capulator/events';
import type { RuncExit } from '../../../runtime/src/run';
import { CliError } from '../cli-error';
import { registerRunCommands, type RunHost } from './run.command';

/**
 * The run socket of `capulator serve`: `$CAPULATOR_HOME/run.sock`, where the native client
 * (agent/src/run-client.c, what `bin/capulator run` execs) hands a `capulator run` to this warm
 * process. The daemon parses the client's argv with the same commander definition as the cold
 * path, prepares the run (policy, image, overlay, agent, bundle) and tells the client which
 * `runc run` to exec with its own stdio; the client reports runc's end, the daemon records the
 * run and answers the exit status. docs/run-socket.md describes the protocol.
 *
 * Trust: the socket is mode 0600 in the home directory (0700), both owned by the daemon's user
 * (root): whoever can connect can run any container, exactly like whoever can run `capulator
 * run`. The client checks the same ownership before it trusts an `exec` answer.
 */
export const RUN_SOCKET_PROTOCOL = 1;
export const RUN_SOCKET_NAME = 'run.sock';
const MAX_LINE = 1 << 20;

export interface RunSocket {
  path: string;
  /** stops accepting clients and waits (at most `graceMs`) for the runs in progress */
  close(graceMs?: number): Promise<void>;
}

class Fallback extends Error {}

/** Another live daemon already serves this home's run socket. */
export class RunSocketBusy extends CliError {}

export async function listenRunSocket(opts: { home: string; store?: EventStore }): Promise<RunSocket> {
  const path = join(opts.home, RUN_SOCKET_NAME);
  if (Buffer.byteLength(path) > 107) throw new CliError(`run socket ${path}: the path is longer than a unix socket address allows (107 bytes)`);
  await removeStale(path);
  const active = new Set<Promise<void>>();
  const server = createServer((sock) => {
    const done = serveClient(sock, opts.store)
      .catch((e: Error) => {
        // a fault here must not take the daemon (and the other runs) down
        process.stderr.write(`capulator: run socket: ${e?.stack ?? String(e)}\n`);
        sock.destroy();
      })
      .finally(() => active.delete(done));
    active.add(done);
  });
  // created 0600 (no window with a wider mode), then checked
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    throw new CliError(`cannot listen on ${path}: ${(e as Error).message}`);
  } finally {
    process.umask(umask);
  }
  server.on('error', (e) => process.stderr.write(`capulator: run socket ${path}: ${e.message}\n`));
  chmodSync(path, 0o600);
  const ino = lstatSync(path).ino;
  return {
    path,
    close: async (graceMs = 10_000) => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        /* already gone */
      }
      await Promise.race([Promise.all(active), new Promise((r) => setTimeout(r, graceMs).unref())]);
    },
  };
}

/** A socket left by a daemon that is gone is removed; one that still answers is an error. */
async function removeStale(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new CliError(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new RunSocketBusy(`another capulator serve already listens on ${path}`);
  unlinkSync(path);
}

interface RunMessage {
  type: 'run';
  version: number;
  argv: string[];
  cwd: string;
  tty?: boolean;
  /** whether the client has a controlling terminal (runc's -t needs one); absent: yes */
  ctty?: boolean;
}

/** One client: one `capulator run`. */
async function serveClient(sock: Socket, store: EventStore | undefined): Promise<void> {
  const send = (m: object) => {
    if (!sock.destroyed && sock.writable) sock.write(JSON.stringify(m) + '\n');
  };
  const incoming: object[] = [];
  let wake: (() => void) | undefined;
  let gone = false;
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        incoming.push(JSON.parse(line) as object);
      } catch {
        incoming.push({ type: 'malformed' });
      }
    }
    if (buf.length > MAX_LINE) sock.destroy();
    wake?.();
  });
  sock.on('error', () => undefined); // the client went away: 'close' follows
  sock.on('close', () => {
    gone = true;
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown> | undefined> => {
    while (incoming.length === 0 && !gone) await new Promise<void>((r) => (wake = r));
    return incoming.shift() as Record<string, unknown> | undefined;
  };

  const req = (await next()) as Partial<RunMessage> | undefined;
  if (!req) return;
  if (req.type !== 'run' || req.version !== RUN_SOCKET_PROTOCOL) {
    // another protocol version: the client's own `capulator run` does it
    send({ type: 'fallback', reason: `protocol ${String(req.version)} (this daemon speaks ${RUN_SOCKET_PROTOCOL})` });
    sock.end();
    return;
  }
  if (!Array.isArray(req.argv) || !req.argv.every((a) => typeof a === 'string') || typeof req.cwd !== 'string' || !isAbsolute(req.cwd)) {
    send({ type: 'stderr', data: 'capulator: the run client sent a malformed request\n' });
    send({ type: 'exit', code: 70 });
    sock.end();
    return;
  }

  // runc, started by the client: `exec` out, `started` {pid} and `exited` {code, signal} back
  let runc: { resolve: (e: RuncExit) => void; pid?: number; since?: string } | undefined;
  const follow = (async () => {
    for (;;) {
      const m = await next();
      if (!m) break;
      if (m.type === 'started' && runc && Number.isInteger(m.pid) && (m.pid as number) > 0) {
        runc.pid = m.pid as number;
        runc.since = procStart(runc.pid);
      } else if (m.type === 'exited' && runc) {
        const sig = typeof m.signal === 'number' ? ((signalName(m.signal) ?? null) as NodeJS.Signals | null) : null;
        runc.resolve({ code: typeof m.code === 'number' ? m.code : null, signal: sig });
        runc = undefined;
      }
    }
    if (runc) {
      const r = runc;
      await stopOrphan(r.pid, r.since);
      r.resolve({ code: null, signal: null, lost: 'the run client went away while the container ran (killed?)' });
    }
  })();
  let code = 0;
  const host: RunHost = {
    cwd: req.cwd,
    stderr: (data) => send({ type: 'stderr', data }),
    exit: (c) => (code = c),
    store,
    terminal: req.ctty !== false,
    launch: (bin, args, o) =>
      new Promise<RuncExit>((resolve) => {
        if (gone) return resolve({ code: null, signal: null, lost: 'the run client went away before runc started' });
        runc = { resolve };
        send({ type: 'exec', argv: [bin, ...args], ...(o.stdinNull ? { stdin: 'null' } : {}) });
      }),
    fallback: (reason) => {
      throw new Fallback(reason);
    },
  };
  // the cold path's own definition and checks; what commander itself would print (usage
  // errors, help) is left to the cold path so it prints exactly that
  const program = new Command().enablePositionalOptions().exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  registerRunCommands(program, host);
  try {
    await program.parseAsync(['run', ...req.argv], { from: 'user' });
    send({ type: 'exit', code });
  } catch (e) {
    if (e instanceof Fallback || e instanceof CommanderError) send({ type: 'fallback', reason: e.message });
    else if (e instanceof CliError) {
      send({ type: 'stderr', data: `capulator: ${e.message}\n` });
      send({ type: 'exit', code: e.exitCode });
    } else {
      send({ type: 'stderr', data: `capulator: internal error: ${(e as Error)?.stack ?? String(e)}\n` });
      send({ type: 'exit', code: 70 });
    }
  }
  sock.end();
  await follow;
}

/** The start time of a process (field 22 of /proc/PID/stat), to tell it from a later one with its pid. */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' ? undefined : f[19];
  } catch {
    return undefined;
  }
}

/**
 * The client is gone and its runc (which dies with it: PR_SET_PDEATHSIG) may still be exiting:
 * kill it if it is still the same process and wait until it no longer runs, so the runner's
 * `runc kill` and `delete` meet no runc that could still create the container.
 */
async function stopOrphan(pid: number | undefined, since: string | undefined): Promise<void> {
  if (!pid || !since) return;
  const deadline = Date.now() + 5000;
  while (procStart(pid) === since && Date.now() < deadline) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
