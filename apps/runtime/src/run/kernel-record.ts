import { setPriority } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { capabilityByNumber, syscallName, type Arch } from '@capulator/abi';
import type { DecisionPayload, PolicyRef } from '@capulator/events';
import { capabilityDecision, parseTable, type ParsedTable } from '@capulator/policy';
import { AgentDecision } from './agent-process';
import type { SeccompProfile } from './seccomp-profile';
import { LineReader, parseControlLine } from './line-reader';
import { giveBack, keepsSpares, takeSpare } from './spares';

export { kernelRecordBinary } from './spares';

/**
 * The kernel-side record of a run (agent/PROTOCOL.md "Kernel record"): `capulator-kernel-record`
 * loads a tp_btf/cap_capable BPF program scoped to the run's cgroup v2 group and streams every
 * capability check of the container's programs, with the kernel's result. This module starts it,
 * reads its lines, and turns each check into a PrivilegeChecked event (`source: 'kernel'`).
 */
export const KERNEL_RECORD_PROTOCOL = 4;

export interface KernelReady { type: 'ready'; protocol: number; mechanism: string; cgroupId: number; pid: number }
export interface KernelStarted { type: 'started'; pid: number }
export interface KernelExit {
  type: 'exit';
  lines: number;
  checks: number;
  recorded: number;
  lost: number;
  noaudit: number;
  borrowed: number;
  setup: number;
  /** processes of the run's group the kernel's OOM killer chose, whatever the limit (absent before protocol 4's binaries had it) */
  oomKills?: number;
  started: boolean;
}
/** Said as soon as the ring had no room for a granted check: a use of privilege with no record. */
export interface KernelLost { type: 'lost'; granted: number; lost: number }
/** One `kcheck` line: identical checks of one thread aggregated (`count`). */
export interface KernelCheckLine {
  kseq: number;
  at: string;
  pid: number;
  tid: number;
  uid: number;
  gid: number;
  exe: string;
  nr: number;
  cap: number;
  result: 'granted' | 'refused';
  count: number;
}

/** The cgroup v2 hierarchy the record scopes by (bpf_get_current_cgroup_id is its inode number). */
export function cgroupV2Root(): string | undefined {
  for (const p of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) if (existsSync(join(p, 'cgroup.procs')) && existsSync(join(p, 'cgroup.subtree_control'))) return p;
  return undefined;
}

export class KernelRecordProcess {
  readonly child: ChildProcess;
  /** this run's record ended: its `exit` line came (the process may serve another run), or the process ended */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ready?: KernelReady;
  started?: KernelStarted;
  summary?: KernelExit;
  received = 0;
  malformed = 0;
  stderr = '';
  private readonly reader = new LineReader((l) => this.onLine(l));
  private readyWaiter?: () => void;
  private startWaiters: Array<() => void> = [];
  private lostGranted?: (granted: number) => void;
  private ended!: (e: { code: number | null; signal: NodeJS.Signals | null }) => void;
  /** the process serves runs one after another: `end` on its stdin ends this one (spares kept by this process) */
  private reusable = false;
  /** given back to the spares after this run: no longer this object's to stop or kill */
  private released = false;
  private readonly detach: () => void;

  /** `spare`: a record started ahead (spares.ts), loaded already and given its run's group on stdin */
  private constructor(
    readonly binary: string,
    cgroupDir: string,
    private onCheck: (c: KernelCheckLine) => void,
    spare?: ChildProcess,
  ) {
    this.child = spare ?? spawn(binary, ['serve', '--cgroup', cgroupDir, '--events-fd', '3'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
    const onError = () => undefined; // a spawn failure is the exit waited for below
    const onStderr = (s: string) => {
      if (this.stderr.length < 65536) this.stderr += s;
    };
    const onClose = (code: number | null, signal: NodeJS.Signals | null) => this.ended({ code, signal });
    const onEvents = (chunk: string) => this.reader.push(chunk);
    this.exited = new Promise((resolve) => (this.ended = resolve));
    this.child.on('error', onError);
    this.child.stderr!.setEncoding('utf8').on('data', onStderr);
    this.child.on('close', onClose);
    const events = this.child.stdio[3] as Readable;
    events.setEncoding('utf8').on('data', onEvents);
    this.detach = () => {
      this.child.off('error', onError);
      this.child.stderr!.off('data', onStderr);
      this.child.off('close', onClose);
      events.off('data', onEvents);
    };
  }

  /**
   * Starts the record and resolves once the program is attached to the run's group (`ready`), or
   * rejects if it cannot load. In a process that keeps a spare (keepKernelRecordSpare), the spare
   * is given the group: its program was loaded (and verified) ahead, so only the attach is left.
   */
  static async start(binary: string, cgroupDir: string, onCheck: (c: KernelCheckLine) => void): Promise<KernelRecordProcess> {
    const child = takeSpare('kernel-record', binary);
    if (child) {
      // a spare loads at nice 19 (beside runs: agent/src/kernel-record.c); the run's own record keeps up at the default
      try {
        if (child.pid !== undefined) setPriority(child.pid, 0);
      } catch {
        /* not permitted: it keeps nice 19 */
      }
      const spare = new KernelRecordProcess(binary, cgroupDir, onCheck, child);
      // a process that keeps spares gets it back after the run (stdin stays open for `end` and the
      // next run's group); otherwise stdin ends here and SIGTERM ends the record
      spare.reusable = keepsSpares('kernel-record', binary);
      if (spare.reusable) child.stdin!.write(`${cgroupDir}\n`);
      else child.stdin!.end(`${cgroupDir}\n`);
      try {
        return await spare.whenReady();
      } catch {
        spare.kill(); // a spare that failed: a fresh one below
      }
    }
    return new KernelRecordProcess(binary, cgroupDir, onCheck).whenReady();
  }

  private whenReady(): Promise<KernelRecordProcess> {
    return new Promise((resolve, reject) => {
      if (this.ready) return resolve(this);
      this.readyWaiter = () => resolve(this);
      void this.exited.then(({ code, signal }) => {
        if (!this.ready) reject(new Error(`the kernel record exited before it was ready (${signal ?? code}): ${this.stderr.trim().split('\n').pop() ?? ''}`));
      });
    });
  }

  /** Calls `fn` each time the ring had no room for granted checks (`granted`: how many so far this run). */
  onLostGranted(fn: (granted: number) => void): void {
    this.lostGranted = fn;
  }

  /** Calls `fn` once the container program's first exec was seen (before any of its checks is delivered). */
  onStarted(fn: () => void): void {
    if (this.started) fn();
    else this.startWaiters.push(fn);
  }

  private onLine(line: string): void {
    if (line.startsWith('kcheck\t')) {
      const tab = line.indexOf('\t', 7);
      try {
        const c = JSON.parse(line.slice(tab + 1)) as KernelCheckLine;
        this.received++;
        this.onCheck(c);
      } catch {
        this.malformed++;
      }
      return;
    }
    const msg = parseControlLine<KernelReady | KernelStarted | KernelExit | KernelLost>(line);
    if (!msg) {
      this.malformed++;
      return;
    }
    if (msg.type === 'ready') {
      if (msg.protocol !== KERNEL_RECORD_PROTOCOL) {
        this.child.kill('SIGKILL');
        return;
      }
      this.ready = msg;
      this.readyWaiter?.();
    } else if (msg.type === 'started') {
      this.started = msg;
      for (const w of this.startWaiters.splice(0)) w();
    } else if (msg.type === 'lost') {
      this.lostGranted?.(msg.granted);
    } else if (msg.type === 'exit') {
      this.summary = msg;
      // this run's record is complete (a process serving runs one after another goes on)
      this.ended({ code: 0, signal: null });
    }
  }

  /**
   * Drains what the program recorded and ends this run's record (its `exit` line carries the
   * counts). A reusable process is given back to the spares for the next run, its program still
   * loaded; any other is ended.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.released) return;
    const alive = () => this.child.exitCode === null && this.child.signalCode === null;
    if (this.reusable && alive() && !this.summary) {
      this.child.stdin!.write('end\n');
      const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
      if (this.summary && alive()) {
        this.detach();
        if (giveBack('kernel-record', this.binary, this.child)) {
          this.released = true;
          return;
        }
      }
    }
    if (alive()) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await new Promise<void>((resolve) => (alive() ? this.child.once('close', () => resolve()) : resolve()));
    await this.exited;
    clearTimeout(t);
  }

  /** Checks the kernel saw but the runtime never got: ring-buffer drops and lines not received. */
  lostEvents(): number {
    if (!this.summary) return 0;
    return this.summary.lost + Math.max(0, this.summary.lines - this.received);
  }

  kill(): void {
    if (this.released) return;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

}

/** Syscalls the seccomp filter traps whose decision the agent makes (execve is trapped only for its cache). */
export function decidedSyscalls(profile: SeccompProfile | undefined): { any: Set<string>; always: Set<string> } {
  const any = new Set<string>();
  const always = new Set<string>();
  for (const s of profile?.syscalls ?? []) {
    for (const n of s.names) {
      if (n === 'execve' || n === 'execveat') continue;
      any.add(n);
      if (!s.args || s.args.length === 0) always.add(n);
    }
  }
  return { any, always };
}

/** How long a check of a trapped syscall waits for the agent's decision of the same call. */
const JOIN_HOLD_MS = 100;

/**
 * Turns kernel checks into PrivilegeChecked events and finds violations. A check made inside a
 * syscall the agent decides is joined with that decision (its `seq`): the agent allowed the call
 * (a denied call never reaches the kernel's check), so it is no violation. Any other check the
 * kernel granted although the policy denies every privilege of the capability for that program and
 * user is a violation.
 */
export class KernelChecks {
  private readonly table: ParsedTable;
  /** per thread, its latest agent decisions (oldest first) */
  private readonly byTid = new Map<number, Array<{ nr: number; seq: number; at: string }>>();
  private pending: Array<{ c: KernelCheckLine; due: number }> = [];
  private timer?: NodeJS.Timeout;
  violations = 0;

  constructor(
    private readonly o: {
      runId: string;
      policy: PolicyRef;
      tableText: string;
      arch: Arch;
      decided: { any: Set<string>; always: Set<string> };
      emit: (d: AgentDecision) => void;
      onViolation: (p: DecisionPayload) => void;
    },
  ) {
    const r = parseTable(o.tableText);
    if (!r.table) throw new Error(`invalid compiled table: line ${r.errors[0]?.line}: ${r.errors[0]?.message}`);
    this.table = r.table;
  }

  /** An agent decision (its seq joins the kernel checks of the same call). */
  agentDecision(d: AgentDecision): void {
    const { seq, tid, nr } = d.joinFacts();
    let l = this.byTid.get(tid);
    if (!l) {
      if (this.byTid.size >= 4096) this.byTid.delete(this.byTid.keys().next().value!);
      this.byTid.set(tid, (l = []));
    }
    // the time is parsed only when a kernel check is joined with it
    l.push({ nr, seq, at: d.at });
    if (l.length > 64) l.shift();
  }

  check(c: KernelCheckLine): void {
    const name = c.nr >= 0 ? syscallName(this.o.arch, c.nr) : undefined;
    if (name && this.o.decided.any.has(name)) {
      this.pending.push({ c, due: Date.now() + JOIN_HOLD_MS });
      this.timer ??= setTimeout(() => this.release(false), JOIN_HOLD_MS + 5);
      return;
    }
    this.emit(c, name, undefined);
  }

  /** Emits every held check (at the end of the run, when the agent has said everything). */
  flush(): void {
    this.release(true);
  }

  private release(all: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    const keep: typeof this.pending = [];
    for (const x of this.pending) {
      if (!all && x.due > now) {
        keep.push(x);
        continue;
      }
      const name = syscallName(this.o.arch, x.c.nr);
      this.emit(x.c, name, this.join(x.c));
    }
    this.pending = keep;
    if (keep.length > 0) this.timer = setTimeout(() => this.release(false), Math.max(1, keep[0].due - now + 5));
  }

  /** The agent decision of the same call: the thread's latest one of that syscall made no later than the check (ms clocks). */
  private join(c: KernelCheckLine): number | undefined {
    const l = this.byTid.get(c.tid);
    if (!l) return undefined;
    const at = Date.parse(c.at);
    for (let i = l.length - 1; i >= 0; i--) if (l[i].nr === c.nr && Date.parse(l[i].at) <= at) return l[i].seq;
    return undefined;
  }

  private emit(c: KernelCheckLine, name: string | undefined, agentSeq: number | undefined): void {
    const capability = capabilityByNumber(c.cap)?.name ?? `CAP_${c.cap}`;
    const d = capabilityDecision(this.table, capability, { exe: c.exe, uid: c.uid, gid: c.gid });
    const decidedByAgent = agentSeq !== undefined || (name !== undefined && this.o.decided.always.has(name));
    // capset asks for CAP_SETPCAP on every call (cap_inh_is_capped) to learn whether the inheritable
    // set may grow beyond permitted: the check is not a use by itself, so it is recorded, never a violation
    const probe = capability === 'CAP_SETPCAP' && name === 'capset';
    const violation = c.result === 'granted' && d.decision !== 'allow' && !decidedByAgent && !probe;
    if (!d.audit && !violation) return;
    const payload: DecisionPayload = {
      runId: this.o.runId,
      seq: agentSeq ?? 0,
      key: `kernel:${c.kseq}`,
      at: c.at,
      subject: { pid: c.pid, tid: c.tid, uid: c.uid, gid: c.gid, exe: c.exe },
      arch: this.o.arch,
      syscall: name ?? (c.nr >= 0 ? `syscall_${c.nr}` : '-'),
      nr: c.nr,
      args: {},
      privileges: d.privileges,
      capability,
      decision: d.decision,
      ruleId: d.ruleId,
      policy: this.o.policy,
      answeredBy: c.result,
      latencyNs: 0,
      source: 'kernel',
      kernel: { result: c.result, count: c.count, kseq: c.kseq, ...(violation ? { violation: true } : {}) },
    };
    this.o.emit(new AgentDecision('PrivilegeChecked', c.at, JSON.stringify(payload), null));
    if (violation) {
      this.violations++;
      this.o.onViolation(payload);
    }
  }
}
