import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TextEvent, type DecisionOutcome, type DecisionPayload, type PolicyRef } from '@capulator/events';

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
}

export interface AgentReady { type: 'ready'; protocol: number; policy: string; version: string; hash: string; learn: boolean; pid: number }
export interface AgentAttached { type: 'attached'; pid: number; syncWakeUp: boolean }
export interface AgentExit { type: 'exit'; handled: number; events: number; dropped: number; abandoned: number; allow: number; deny: number; emulate: number }
export type AgentLine = AgentReady | AgentAttached | AgentExit;

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
  const p = env.CAPULATOR_AGENT && env.CAPULATOR_AGENT !== '' ? env.CAPULATOR_AGENT : join(repo, 'agent', 'build', 'capulator-agent');
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
  run: AgentRun;
  /** bytes of decision lines held while the runtime does not read (agent default 64 MiB) */
  eventsBuffer?: number;
}

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
  received = 0;
  /** lines that were neither a well-formed decision nor a control message */
  malformed = 0;
  bytesReceived = 0;
  stderr = '';
  private partial = '';

  private constructor(opts: AgentStart, private readonly onDecision: (d: AgentDecision) => void) {
    const { run } = opts;
    const args = ['serve', '--socket', opts.socketPath, '--table', opts.tablePath, '--events-fd', '3', '--run-id', run.runId];
    args.push('--policy-name', run.policy.name, '--policy-version', String(run.policy.version), '--policy-hash', run.policy.hash);
    if (opts.eventsBuffer !== undefined) args.push('--events-buffer', String(opts.eventsBuffer));
    if (opts.learn) args.push('--learn');
    if (opts.runcSetup) args.push('--runc-setup');
    // its own process group: a terminal's ^C goes to runc (which forwards it), never to the agent
    this.child = spawn(opts.binary, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      if (this.stderr.length < 65536) this.stderr += s;
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })));
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

  private feed(chunk: string): void {
    this.bytesReceived += chunk.length;
    const text = this.partial + chunk;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line === '') continue;
      if (line.charCodeAt(0) === 100 /* d */) {
        // a malformed line is not counted as received, so it shows as a lost event of the run
        const d = parseDecisionLine(line);
        if (d) {
          this.received++;
          this.onDecision(d);
        } else this.malformed++;
        continue;
      }
      let msg: AgentLine;
      try {
        msg = JSON.parse(line) as AgentLine;
      } catch {
        this.malformed++;
        continue;
      }
      if (msg.type === 'ready') {
        if (msg.protocol !== AGENT_PROTOCOL) {
          this.child.kill('SIGKILL');
          continue;
        }
        this.ready = msg;
        this.readyWaiter?.();
      } else if (msg.type === 'attached') {
        this.attached = msg;
        for (const w of this.attachWaiters.splice(0)) w();
      } else if (msg.type === 'exit') this.summary = msg;
    }
    this.partial = text.slice(start);
  }

  /** Decision events the agent numbered but the runtime never received. */
  lostEvents(): number {
    return this.summary ? Math.max(0, this.summary.events - this.received) : 0;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
