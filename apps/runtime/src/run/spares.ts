/**
 * Helper processes started before a run needs them ("spares"): the kernel record, whose BPF program
 * takes ~75 ms to load and verify, and the agent, whose start from a large Node process is a fork
 * of that process (~4 ms of the daemon's main thread at 60 MB, by --cpu-prof). A spare is started
 * with its arguments still to come: the kernel record waits for its run's cgroup on stdin
 * (`serve --cgroup -`), the agent for its command line (`serve --args-from-stdin`,
 * agent/PROTOCOL.md "Spares"). Both end with this process (PR_SET_PDEATHSIG, or stdin closed)
 * until a run takes them.
 *
 * `capulator serve` keeps SPARES of each ready, started again as runs take them; a kernel record is
 * also given back after its run and serves a later one (its program stays loaded:
 * agent/PROTOCOL.md), so the pool settles at what the runs at once need and stops loading.
 * bin/capulator starts one of each for a `run` without a daemon (startEarly), so they load while
 * Node loads the CLI. This module imports only Node's own modules, so that costs nothing measurable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, constants, existsSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';

export type SpareKind = 'kernel-record' | 'agent';

/** How each kind is started as a spare. */
export const SPARE_ARGS: Readonly<Record<SpareKind, readonly string[]>> = {
  'kernel-record': ['serve', '--cgroup', '-', '--events-fd', '3'],
  agent: ['serve', '--args-from-stdin'],
};

/** Spares kept per kind and binary by a process that keeps them (keepSpares). */
export const SPARES = 2;
/**
 * At most this many idle kernel records per binary once runs give theirs back: the pool grows to
 * the number of runs at once (each took one while new ones were started), and no further.
 */
export const MAX_IDLE = 8;

const pools = new Map<string, ChildProcess[]>();
const kept = new Map<string, { kind: SpareKind; binary: string }>();
const keyOf = (kind: SpareKind, binary: string) => `${kind}\0${binary}`;
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
const streams = (c: ChildProcess) => [c.stdin, c.stderr, c.stdio[3]] as Array<Socket | null>;

/** The kernel record binary: $CAPULATOR_KERNEL_RECORD, else agent/build/capulator-kernel-record; undefined when not built. */
export function kernelRecordBinary(repo: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const p = env.CAPULATOR_KERNEL_RECORD && env.CAPULATOR_KERNEL_RECORD !== '' ? env.CAPULATOR_KERNEL_RECORD : join(repo, 'agent', 'build', 'capulator-kernel-record');
  return existsSync(p) ? p : undefined;
}

/** The agent binary path ($CAPULATOR_AGENT, else agent/build/capulator-agent), existing or not. */
export function agentBinaryPath(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.CAPULATOR_AGENT && env.CAPULATOR_AGENT !== '' ? env.CAPULATOR_AGENT : join(repo, 'agent', 'build', 'capulator-agent');
}

/** Starts a spare: stdin, stderr and fd 3 piped; it keeps nothing of this process alive until taken. */
function startSpare(kind: SpareKind, binary: string): ChildProcess {
  return pool(kind, binary, spawn(binary, [...SPARE_ARGS[kind]], { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], detached: true }));
}

/** A spare into its pool, keeping nothing of this process alive until taken. */
function pool(kind: SpareKind, binary: string, c: ChildProcess): ChildProcess {
  c.on('error', () => undefined);
  c.stdin?.on('error', () => undefined);
  c.unref();
  for (const s of streams(c)) s?.unref?.();
  const key = keyOf(kind, binary);
  c.once('exit', () => {
    const l = pools.get(key);
    if (l?.includes(c)) l.splice(l.indexOf(c), 1);
  });
  const l = pools.get(key) ?? [];
  l.push(c);
  pools.set(key, l);
  return c;
}

/**
 * The oldest live spare of this kind (the likeliest to be loaded), for a run; its streams keep
 * this process alive again, as a child started for the run would. Undefined when there is none.
 */
export function takeSpare(kind: SpareKind, binary: string): ChildProcess | undefined {
  const l = pools.get(keyOf(kind, binary)) ?? [];
  while (l.length > 0) {
    const c = l.shift()!;
    if (!alive(c)) continue;
    c.ref();
    for (const s of streams(c)) s?.ref?.();
    return c;
  }
  return undefined;
}

/** Keeps SPARES of this kind ready from now on (now, and again after each run: replenishSpares). */
export function keepSpares(kind: SpareKind, binary: string | undefined): void {
  if (!binary || !existsSync(binary)) return;
  kept.set(keyOf(kind, binary), { kind, binary });
  fill(kind, binary);
}

/**
 * Starts what replaces the spares runs took: each kind back to SPARES idle ones (a record that was
 * lost is replaced here too, at the next run). A kernel record is also given back after its run
 * (giveBack) and serves a later one, so with runs one after another no new one is loaded, and with
 * several at once the pool grows to their number.
 */
export function replenishSpares(): void {
  if (kept.size === 0) return;
  setImmediate(() => {
    for (const { kind, binary } of kept.values()) fill(kind, binary);
  });
}

/** Whether this process keeps spares of this kind and binary (keepSpares). */
export function keepsSpares(kind: SpareKind, binary: string): boolean {
  return kept.has(keyOf(kind, binary));
}

/**
 * A spare given back after its run (a kernel record that ended its run with `end` and waits for
 * the next): it keeps this process alive no more, and is the next taken. False when this process
 * keeps no spares of the kind, or the spare has died: the caller ends it.
 */
export function giveBack(kind: SpareKind, binary: string, c: ChildProcess): boolean {
  if (!keepsSpares(kind, binary) || !alive(c)) return false;
  const key = keyOf(kind, binary);
  const l = (pools.get(key) ?? []).filter(alive);
  if (l.length >= MAX_IDLE) return false;
  c.unref();
  for (const s of streams(c)) s?.unref?.();
  if (!l.includes(c)) l.unshift(c);
  pools.set(key, l);
  return true;
}

function fill(kind: SpareKind, binary: string): void {
  const l = (pools.get(keyOf(kind, binary)) ?? []).filter(alive);
  pools.set(keyOf(kind, binary), l);
  for (let n = l.length; n < SPARES; n++) startSpare(kind, binary);
}

/** Stops keeping spares, and ends those started. */
export function dropSpares(): void {
  kept.clear();
  for (const l of pools.values()) for (const c of l) if (alive(c)) c.kill('SIGKILL');
  pools.clear();
}

/**
 * bin/capulator, for a `run` without a daemon (`local`): one spare of each kind, started before
 * the CLI loads; or taken over from agent/build/capulator-run, which starts them before it execs
 * Node when no daemon takes the run (adoptEarly). Called too when it did but this command is not
 * such a run: they are ended.
 */
export function startEarly(repo: string, local = true): void {
  const krec = kernelRecordBinary(repo);
  const agent = agentBinaryPath(repo);
  const adopted = { 'kernel-record': adoptEarly('kernel-record', krec, local), agent: adoptEarly('agent', agent, local) };
  if (!local) return;
  if (!adopted['kernel-record'] && krec && (existsSync('/sys/fs/cgroup/unified/cgroup.procs') || existsSync('/sys/fs/cgroup/cgroup.procs'))) startSpare('kernel-record', krec);
  if (!adopted.agent && existsSync(agent)) startSpare('agent', agent);
}

/** The variables naming the spares capulator-run started (agent/src/run-client.c early_spares): `pid,stdin,stderr,fd3,binary`. */
const EARLY_SPARE_VARS: Readonly<Record<SpareKind, string>> = {
  'kernel-record': 'CAPULATOR_EARLY_KERNEL_RECORD',
  agent: 'CAPULATOR_EARLY_AGENT',
};

/**
 * Takes the spare of this kind that capulator-run started before it exec'd Node into this
 * process's pool (the kernel record then loads while Node starts: ~100 ms earlier than startSpare
 * could start it). Only a child of this process, whose fds were left to it, is adopted; the
 * variable leaves the environment either way. Ended instead when this process will not run
 * (`local` false) or its binary is not `binary`.
 */
function adoptEarly(kind: SpareKind, binary: string | undefined, local: boolean): boolean {
  const v = process.env[EARLY_SPARE_VARS[kind]];
  delete process.env[EARLY_SPARE_VARS[kind]];
  const m = v ? /^(\d+),(\d+),(\d+),(\d+),(.+)$/.exec(v) : null;
  if (!m) return false;
  const [pid, stdinFd, stderrFd, eventsFd] = [1, 2, 3, 4].map((i) => Number(m[i]));
  if (procStat(pid)?.ppid !== process.pid) return false; // not this process's: neither are those fds
  const same = (a: string, b: string) => {
    try {
      return realpathSync(a) === realpathSync(b);
    } catch {
      return false;
    }
  };
  let fds: number[] = [];
  try {
    if (!local || !binary || !same(binary, m[5])) throw new Error('not taken');
    // opened again through /proc: this process's own descriptors, closed on exec (the inherited
    // ones are not, and every child would inherit them); O_NONBLOCK: never wait for the other end
    fds = [
      openSync(`/proc/self/fd/${stdinFd}`, constants.O_WRONLY | constants.O_NONBLOCK),
      openSync(`/proc/self/fd/${stderrFd}`, constants.O_RDONLY | constants.O_NONBLOCK),
      openSync(`/proc/self/fd/${eventsFd}`, constants.O_RDONLY | constants.O_NONBLOCK),
    ];
    pool(kind, binary, new AdoptedChild(pid, fds[0], fds[1], fds[2]) as unknown as ChildProcess);
    return true;
  } catch {
    for (const fd of fds) closeSync(fd);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    return false;
  } finally {
    for (const fd of [stdinFd, stderrFd, eventsFd]) {
      try {
        closeSync(fd);
      } catch {
        /* not open */
      }
    }
  }
}

/** state, parent and (once it has exited) wait status of a process, from /proc/PID/stat; undefined when gone. */
function procStat(pid: number): { state: string; ppid: number; status: number } | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    return { state: f[0], ppid: Number(f[1]), status: Number(f[49] ?? 0) }; // field 52: exit_code
  } catch {
    return undefined;
  }
}

/**
 * A child this process did not spawn (Node cannot wait for it), as much of a ChildProcess as the
 * kernel record and the spares use: its stdin, stderr and fd 3 as sockets, `kill`, and `exit` and
 * `close` once both of its output pipes have closed and it has exited (its wait status read from
 * /proc while it is a zombie; it is reaped when this process ends).
 */
class AdoptedChild extends EventEmitter {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly stdin: Socket;
  readonly stderr: Socket;
  readonly stdio: [Socket, null, Socket, Socket];

  constructor(
    readonly pid: number,
    stdinFd: number,
    stderrFd: number,
    eventsFd: number,
  ) {
    super();
    this.stdin = new Socket({ fd: stdinFd, readable: false, writable: true });
    this.stderr = new Socket({ fd: stderrFd, readable: true, writable: false });
    const events = new Socket({ fd: eventsFd, readable: true, writable: false });
    this.stdio = [this.stdin, null, this.stderr, events];
    for (const s of this.stdio) s?.on('error', () => undefined);
    let open = 2;
    const closed = () => --open === 0 && this.reap(0);
    this.stderr.once('close', closed);
    events.once('close', closed);
  }

  private reap(tries: number): void {
    const st = procStat(this.pid);
    if (st && st.state !== 'Z' && st.state !== 'X' && tries < 5000) {
      setTimeout(() => this.reap(tries + 1), 1);
      return;
    }
    const status = st?.status ?? 0;
    const sig = status & 0x7f;
    if (sig) this.signalCode = (Object.keys(osConstants.signals) as NodeJS.Signals[]).find((n) => osConstants.signals[n] === sig) ?? 'SIGKILL';
    else this.exitCode = (status >> 8) & 0xff;
    this.emit('exit', this.exitCode, this.signalCode);
    this.emit('close', this.exitCode, this.signalCode);
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.exitCode !== null || this.signalCode !== null) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** the streams keep this process alive or not (spares.ts refs and unrefs them); there is no process handle */
  ref(): void {}
  unref(): void {}
}
