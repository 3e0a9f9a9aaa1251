import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { DecisionPayload, PolicyRef } from '@capulator/events';

/** One decision line of the agent (agent/PROTOCOL.md): DecisionPayload minus runId/policy/at, plus tNs. */
export type AgentDecision = Omit<DecisionPayload, 'runId' | 'policy' | 'at'> & { type: 'decision'; tNs: number };
export interface AgentReady { type: 'ready'; protocol: number; policy: string; version: string; hash: string; learn: boolean; pid: number }
export interface AgentAttached { type: 'attached'; pid: number; syncWakeUp: boolean }
export interface AgentExit { type: 'exit'; handled: number; events: number; abandoned: number; allow: number; deny: number; emulate: number }
export type AgentLine = AgentDecision | AgentReady | AgentAttached | AgentExit;

export const AGENT_PROTOCOL = 1;

/** The agent binary: $CAPULATOR_AGENT, else agent/build/capulator-agent of the repository. */
export function agentBinary(repo: string, env: NodeJS.ProcessEnv = process.env): string {
  const p = env.CAPULATOR_AGENT && env.CAPULATOR_AGENT !== '' ? env.CAPULATOR_AGENT : join(repo, 'agent', 'build', 'capulator-agent');
  if (!existsSync(p)) throw new Error(`the agent is not built (${p}); run npm run build`);
  return p;
}

/** The runtime's side of a decision: the payload of CapabilitiesQueried / CapabilitiesChangeRequested / PrivilegeChecked. */
export function toDecisionPayload(d: AgentDecision, runId: string, policy: PolicyRef): DecisionPayload {
  const { type: _t, tNs, ...rest } = d;
  void _t;
  return { ...rest, runId, policy, at: new Date(Math.floor(tNs / 1e6)).toISOString() };
}

/** Which event type a decision is recorded as. */
export function decisionEventType(d: { syscall: string; args: Record<string, unknown> }): 'CapabilitiesQueried' | 'CapabilitiesChangeRequested' | 'PrivilegeChecked' {
  if (d.syscall === 'capget') return 'CapabilitiesQueried';
  if (d.syscall === 'prctl') {
    const o = d.args.option_name;
    return o === 'PR_CAPBSET_READ' || o === 'PR_GET_SECUREBITS' || o === 'PR_GET_KEEPCAPS' ? 'CapabilitiesQueried' : 'CapabilitiesChangeRequested';
  }
  if (d.syscall === 'capset') return 'CapabilitiesChangeRequested';
  return 'PrivilegeChecked';
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
  bytesReceived = 0;
  stderr = '';
  private partial = '';

  private constructor(binary: string, socketPath: string, tablePath: string, learn: boolean, private readonly onDecision: (d: AgentDecision) => void) {
    const args = ['serve', '--socket', socketPath, '--table', tablePath, '--events-fd', '3'];
    if (learn) args.push('--learn');
    // its own process group: a terminal's ^C goes to runc (which forwards it), never to the agent
    this.child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
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
  static start(opts: { binary: string; socketPath: string; tablePath: string; learn: boolean; onDecision: (d: AgentDecision) => void }): Promise<AgentProcess> {
    const a = new AgentProcess(opts.binary, opts.socketPath, opts.tablePath, opts.learn, opts.onDecision);
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

  /** Resolves when runc has handed the notify fd over. */
  whenAttached(): Promise<void> {
    if (this.attached) return Promise.resolve();
    return new Promise((r) => this.attachWaiters.push(r));
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
      let msg: AgentLine;
      try {
        msg = JSON.parse(line) as AgentLine;
      } catch {
        continue;
      }
      if (msg.type === 'decision') {
        this.received++;
        this.onDecision(msg);
      } else if (msg.type === 'ready') {
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
