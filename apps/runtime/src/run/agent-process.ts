import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { TextEvent, type DecisionOutcome, type DecisionPayload, type PolicyRef } from '@capulator/events';
import { LineReader, parseControlLine } from './line-reader';
import { agentBinaryPath, takeSpare } from './spares';

export type DecisionEventType = 'CapabilitiesQueried' | 'CapabilitiesChangeRequested' | 'PrivilegeChecked';
const DECISION_TYPES: ReadonlySet<string> = new Set<DecisionEventType>(['CapabilitiesQueried', 'CapabilitiesChangeRequested', 'PrivilegeChecked']);
const COUNTS: Readonly<Record<string, DecisionOutcome | null>> = { allow: 'allow', deny: 'deny', emulate: 'emulate', '-': null };

/**
 * One decision of the agent (agent/PROTOCOL.md "Decision lines"): the event as the agent wrote it,
 * its payload text passed to the store untouched (parsed only if someone reads `payload`), and
 * the outcome it counts as (null for a call abandoned by its caller).
 */
export class AgentDecision extends TextEvent<DecisionEventType> {
  constructor(type: DecisionEventType, at: string, payloadText: string, readonly count: DecisionOutcome | null) {
    super(type, at, payloadText);
  }
  override get payload(): DecisionPayload {
    return super.payload;
  }
  /**
   * seq, thread and syscall number, read from the payload's fixed start (`{"seq":N,"key":"TGID:TID:NR:…`,
   * PROTOCOL.md "Decision lines") without parsing the rest: the kernel record joins every decision
   * by them, and a full parse per decision was a fifth of the runtime's CPU on a busy run.
   */
  joinFacts(): { seq: number; tid: number; nr: number } {
    const t = this.payloadText;
    const m = JOIN_FACTS.exec(t.length > 96 ? t.slice(0, 96) : t);
    if (m) return { seq: Number(m[1]), tid: Number(m[3]), nr: Number(m[4]) };
    const p = this.payload;
    return { seq: p.seq, tid: p.subject.tid, nr: p.nr };
  }
}
const JOIN_FACTS = /^\{"seq":(\d+),"key":"(\d+):(\d+):(\d+):/;

export interface AgentReady {
  type: 'ready';
  protocol: number;
  policy: string;
  version: string;
  hash: string;
  learn: boolean;
  pid: number;
  /** how the subject cache learns of thread exits (PROTOCOL.md "Subjects"), and why not by BPF */
  exitWatch?: 'bpf' | 'pidfd';
  exitWatchError?: string;
}
export interface AgentAttached { type: 'attached'; pid: number; syncWakeUp: boolean }
export interface AgentExit { type: 'exit'; handled: number; events: number; dropped: number; abandoned: number; allow: number; deny: number; emulate: number; auditFailed?: string; unmounted?: true }
/** The agent could not write its spool (PROTOCOL.md "Spool"); with action `stop` it has stopped the container. */
export interface AgentAuditFailed { type: 'audit-failed'; errno: number; error: string; action: 'stop' | 'continue' }
export type AgentLine = AgentReady | AgentAttached | AgentExit | AgentAuditFailed;

export const AGENT_PROTOCOL = 2;

/** Parses one decision line: `decision TAB EventType TAB count TAB at TAB payload-JSON`. */
export function parseDecisionLine(line: string): AgentDecision | undefined {
  const t1 = line.indexOf('\t');
  const t2 = line.indexOf('\t', t1 + 1);
  const t3 = line.indexOf('\t', t2 + 1);
  const t4 = line.indexOf('\t', t3 + 1);
  if (t4 < 0 || line.slice(0, t1) !== 'decision') return undefined;
  const type = line.slice(t1 + 1, t2);
  const count = COUNTS[line.slice(t2 + 1, t3)];
  const at = line.slice(t3 + 1, t4);
  if (!DECISION_TYPES.has(type) || count === undefined || at.length !== 24 || line.charCodeAt(t4 + 1) !== 123 || line.charCodeAt(line.length - 1) !== 125) return undefined;
  return new AgentDecision(type as DecisionEventType, at, line.slice(t4 + 1), count);
}

/** The agent binary: $CAPULATOR_AGENT, else agent/build/capulator-agent of the repository. */
export function agentBinary(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  const p = agentBinaryPath(repo, env);
  if (!existsSync(p)) throw new Error(`the agent is not built (${p}); run npm run build`);
  return p;
}

/** What the agent writes into every decision: the run and the policy version deciding it. */
export interface AgentRun {
  runId: string;
  policy: PolicyRef;
}

export interface AgentStart {
  binary: string;
  socketPath: string;
  tablePath: string;
  learn: boolean;
  /** runc installs the filter before its own setup (noNewPrivileges off): let that through unrecorded */
  runcSetup?: boolean;
  /** the container's rootfs mount: the agent detaches it once every process of the container is gone (its exit line says `unmounted`) */
  unmount?: string;
  /** overlayfs options: the agent mounts the rootfs (`unmount`) with them before it is ready */
  mountOverlay?: string;
  run: AgentRun;
  /** bytes of decision lines held while the runtime does not read (agent default 64 MiB) */
  eventsBuffer?: number;
  /**
   * The run's spool and count file (PROTOCOL.md "Spool"): decision lines are appended to the
   * spool, which this process tails, instead of the pipe, so they outlive this process.
   */
  spool?: { path: string; count: string; onAuditFailure?: AuditFailureAction };
}

/** What the agent does when its spool cannot be written: stop the container (default) or go on, counting the gap. */
export type AuditFailureAction = 'stop' | 'continue';

/**
 * A running capulator-agent: listening on the seccomp listener socket before runc starts,
 * streaming decision lines on a pipe (its fd 3).
 */
export class AgentProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ready?: AgentReady;
  attached?: AgentAttached;
  summary?: AgentExit;
  auditFailed?: AgentAuditFailed;
  private readonly spool?: SpoolTail;
  private tailTimer?: NodeJS.Timeout;
  private tailing = false;
  received = 0;
  /** lines that were neither a well-formed decision nor a control message */
  malformed = 0;
  bytesReceived = 0;
  stderr = '';
  /** the unterminated tail of what was read, per source: the pipe (0) and the spool (1) */
  /** Line framing per source: [0] the agent's pipe, [1] the spool tail. */
  private readonly readers = [new LineReader((l) => this.onLine(l)), new LineReader((l) => this.onLine(l))];

  private constructor(opts: AgentStart, private readonly onDecision: (d: AgentDecision) => void) {
    const { run } = opts;
    const args = ['serve', '--socket', opts.socketPath, '--table', opts.tablePath, '--events-fd', '3', '--run-id', run.runId];
    args.push('--policy-name', run.policy.name, '--policy-version', String(run.policy.version), '--policy-hash', run.policy.hash);
    if (opts.eventsBuffer !== undefined) args.push('--events-buffer', String(opts.eventsBuffer));
    if (opts.learn) args.push('--learn');
    if (opts.spool) {
      args.push('--spool', opts.spool.path, '--count', opts.spool.count, '--on-audit-failure', opts.spool.onAuditFailure ?? 'stop');
      this.spool = new SpoolTail(opts.spool.path);
    }
    if (opts.runcSetup) args.push('--runc-setup');
    if (opts.unmount) args.push('--unmount', opts.unmount);
    if (opts.unmount && opts.mountOverlay) args.push('--mount-overlay', opts.mountOverlay);
    // a spare (spares.ts) takes its command line on stdin; else one is started now. Either way in
    // its own process group: a terminal's ^C goes to runc (which forwards it), never to the agent
    const spare = args.every((a) => a !== '') ? takeSpare('agent', opts.binary) : undefined;
    if (spare) spare.stdin!.end(args.join('\0') + '\0\0');
    this.child = spare ?? spawn(opts.binary, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      if (this.stderr.length < 65536) this.stderr += s;
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
        // everything the agent wrote is in the spool now: read it to the end
        this.stopTail();
        if (this.spool) this.drainSpool();
        this.spool?.close();
        resolve({ code, signal });
      }),
    );
    const events = this.child.stdio[3] as Readable;
    events.setEncoding('utf8');
    events.on('data', (chunk: string) => this.feed(chunk));
  }

  /** Starts the agent and resolves once it listens (its `ready` line), or rejects if it dies first. */
  static start(opts: AgentStart & { onDecision: (d: AgentDecision) => void }): Promise<AgentProcess> {
    const a = new AgentProcess(opts, opts.onDecision);
    return new Promise((resolve, reject) => {
      a.readyWaiter = () => resolve(a);
      a.exited.then(({ code, signal }) => {
        if (!a.ready) reject(new Error(`the agent exited before it was ready (${signal ?? code}): ${a.stderr.trim().split('\n').pop() ?? ''}`));
      });
      a.child.on('error', reject);
    });
  }

  private readyWaiter?: () => void;
  private attachWaiters: Array<() => void> = [];

  /**
   * Calls `fn` when runc has handed the notify fd over: synchronously, while reading the
   * `attached` line and before any decision line after it, so what `fn` records comes first.
   */
  onAttached(fn: () => void): void {
    if (this.attached) fn();
    else this.attachWaiters.push(fn);
  }

  private feed(chunk: string, from: 0 | 1 = 0): void {
    this.bytesReceived += chunk.length;
    this.readers[from].push(chunk);
  }

  private onLine(line: string): void {
    if (line.charCodeAt(0) === 100 /* d */) {
      // a malformed line is not counted as received, so it shows as a lost event of the run
      const d = parseDecisionLine(line);
      if (d) {
        this.received++;
        this.onDecision(d);
      } else this.malformed++;
      return;
    }
    const msg = parseControlLine<AgentLine>(line);
    if (!msg) {
      this.malformed++;
      return;
    }
    if (msg.type === 'ready') {
      if (msg.protocol !== AGENT_PROTOCOL) {
        this.child.kill('SIGKILL');
        return;
      }
      this.ready = msg;
      this.readyWaiter?.();
    } else if (msg.type === 'attached') {
      this.attached = msg;
      for (const w of this.attachWaiters.splice(0)) w();
      // decisions exist only after this line: tail the spool from here on, so what the
      // attach waiters record comes before the first decision
      this.startTail();
    } else if (msg.type === 'exit') this.summary = msg;
    else if (msg.type === 'audit-failed') {
      if (!this.auditFailed) {
        this.auditFailed = msg;
        for (const w of this.auditWaiters.splice(0)) w(msg);
      }
    }
  }

  private auditWaiters: Array<(f: AgentAuditFailed) => void> = [];
  /** Calls `fn` once if the agent reports that it cannot write its spool. */
  onAuditFailed(fn: (f: AgentAuditFailed) => void): void {
    if (this.auditFailed) fn(this.auditFailed);
    else this.auditWaiters.push(fn);
  }

  private startTail(): void {
    if (!this.spool || this.tailing) return;
    this.tailing = true;
    const tick = () => {
      const n = this.drainSpool();
      // busy: read again right after the event loop's turn; idle: every 10 ms
      this.tailTimer = n > 0 ? setTimeout(tick, 0) : setTimeout(tick, 10);
    };
    tick();
  }

  private stopTail(): void {
    if (this.tailTimer) clearTimeout(this.tailTimer);
    this.tailTimer = undefined;
  }

  /** Feeds what the spool holds beyond what was read (at most 16 MiB at a time); returns the bytes read. */
  private drainSpool(): number {
    let total = 0;
    for (let chunk = this.spool!.read(); chunk !== ''; chunk = this.spool!.read()) {
      this.feed(chunk, 1);
      total += chunk.length;
      if (total >= 16 << 20 && this.child.exitCode === null && this.child.signalCode === null) break;
    }
    return total;
  }

  /**
   * The agent's own count when it has not said it (it died): the `decided` of its count file
   * (PROTOCOL.md "Spool"), else what was received.
   */
  agentCount(): { events: number; dropped: number } {
    if (this.summary) return { events: this.summary.events, dropped: this.summary.dropped };
    const c = this.spool ? readCountFile(this.spool.countPath) : undefined;
    return c ? { events: c.decided, dropped: c.dropped } : { events: this.received, dropped: 0 };
  }

  /** Decision events the agent numbered but the runtime never received. */
  lostEvents(): number {
    return Math.max(0, this.agentCount().events - this.received);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Reads a file as it grows, from where the last read ended (the agent's spool). */
export class SpoolTail {
  private fd?: number;
  private pos = 0;
  private readonly buf = Buffer.allocUnsafe(1 << 20);

  constructor(readonly path: string, from = 0) {
    this.pos = from;
  }

  get countPath(): string {
    return this.path.replace(/\.spool$/, '') + '.count';
  }

  /** The next text (up to 1 MiB), '' at the current end of the file. */
  read(): string {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.path, 'r');
      } catch {
        return '';
      }
    }
    const n = readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
    this.pos += n;
    // the agent writes ASCII only (every other byte is escaped as \u00XX): latin1 is exact and cheapest
    return n > 0 ? this.buf.toString('latin1', 0, n) : '';
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface CountFile {
  decided: number;
  dropped: number;
  auditErrno: number;
  done: boolean;
}

/** The agent's count file (agent/src/spool.h): magic, decided, dropped, audit errno, done; little-endian u64s. */
export function readCountFile(path: string): CountFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const b = Buffer.alloc(40);
    if (readSync(fd, b, 0, 40, 0) < 40 || b.toString('latin1', 0, 8) !== 'capcnt1\n') return undefined;
    return { decided: Number(b.readBigUInt64LE(8)), dropped: Number(b.readBigUInt64LE(16)), auditErrno: Number(b.readBigUInt64LE(24)), done: b.readBigUInt64LE(32) === 1n };
  } finally {
    closeSync(fd);
  }
}
