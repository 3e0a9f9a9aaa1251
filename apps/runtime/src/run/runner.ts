import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { CAPABILITIES, signalName, type Arch } from '@capulator/abi';
import type { CapabilitySets, PolicyRef, RunFailureStage, RunMechanisms } from '@capulator/events';
import { seccompNeed } from '@capulator/policy';
import { agentBinary, AgentProcess, type AgentDecision, type AuditFailureAction } from './agent-process';
import { auditFailureReason } from './audit-failure';
import { COUNT_FILE, orphanRun, processStart, releaseSupervisor, SPOOL_FILE, thisProcess, writeSupervisor, type Supervisor } from './supervision';
import { checkEntrypoint } from './entrypoint-check';
import { runArgv } from './run-argv';
import { collectCores, CORE_SIGNALS, corePattern, oomKilled, type RunArtifact } from './artifacts';
import { applyKernelSets, checkSetupEnds, kernelSetsTool, runcCommand, type RunKernelSets } from './file-caps';
import { releaseNetwork, setupNetwork, type NetworkSetup } from './network';
import { buildOciSpec, ociSpecJson, type BindMount } from './oci-spec';
import { resolveInRootfs } from './rootfs-path';
import { buildSeccompProfile, seccompPlan } from './seccomp-profile';
import { cgroupV2Root, decidedSyscalls, KernelChecks, kernelRecordBinary, KernelRecordProcess } from './kernel-record';
import { defaultWorkload, resources, rlimits, type WorkloadOptions } from './workload';
import type { RunTerminal } from './run-input';
import { replenishSpares } from './spares';
import { runIdProblem } from './run-id';

/** The image of a run: unpacked layers (bottom first) or one rootfs directory, and its config. */
export interface RunImage {
  ref: string;
  digest?: string;
  layers: string[];
  platform?: { os: string; architecture: string };
  config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; User?: string };
}

/** The compiled table (libs/policy CompiledTable) the agent loads. */
export interface RunTable {
  text: string;
  hash: string;
  policy: string;
  version: string;
}

export interface RunRequest {
  id?: string;
  image: RunImage;
  /** the entrypoint, replacing the image's, whose Cmd is then not used (docker run --entrypoint; [] for none); absent: the image's (run-argv.ts) */
  command?: string[];
  /** the arguments after the entrypoint, replacing the image's Cmd (docker run IMAGE ARG…) */
  args?: string[];
  env?: string[];
  mounts?: BindMount[];
  table: RunTable;
  /** the policy version named in every decision event (default: the table's policy, version 0) */
  policy?: PolicyRef;
  capabilities: CapabilitySets;
  /** per-program grants (file capabilities), securebits and noNewPrivileges (libs/policy capabilitySets) */
  kernelSets?: RunKernelSets;
  learn?: boolean;
  keep?: boolean;
  /** network, limits, user, workdir, … (workload.ts; default: defaultWorkload()) */
  workload?: WorkloadOptions;
  /** 'inherit' passes the container's stdio through; 'pipe' collects stdout/stderr into the result (or gives it to onOutput) */
  stdio?: 'inherit' | 'pipe';
  /** with stdio 'pipe': the output as it comes, instead of collecting it into the result */
  onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
  /** with stdio 'pipe' and an interactive workload (-i): the container's stdin (else /dev/null) */
  stdin?: Readable;
  /**
   * with stdio 'pipe' and a -t workload: the window's size and its changes. runc is then given a
   * pseudo-terminal of this process as its console (`capulator-agent pty`), since a server has
   * none of its own; the program's output comes as one stream (stdout), as from a terminal.
   */
  terminal?: RunTerminal;
  onDecision?: (d: AgentDecision) => void;
  /** called once the container process runs (after runc handed the notify fd to the agent) */
  onStarted?: (info: StartedInfo) => void;
  /**
   * Starts `runc ARGS…` somewhere else (the native client of `capulator serve`, with its own
   * stdio) instead of spawning it here; `stdio` is then unused.
   */
  launch?: RuncLauncher;
  /** what to do when the record cannot be written (the agent's spool, or the store): stop the container (default) or continue, counting the gap */
  onAuditFailure?: AuditFailureAction;
  /** aborted by the recorder when the store cannot take events (reason: the one-line reason): the container is stopped */
  stop?: AbortSignal;
  /**
   * Records the run's end before its directory (and spool) is removed; returns a failure when it
   * could not, and the run is then left to recovery (docs/events.md).
   */
  record?: (result: RunResult) => Promise<{ stage: RunFailureStage; reason: string } | undefined>;
}

/** How `runc run` ended; `lost` says why its end is unknown (whoever ran it went away). */
export interface RuncExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  lost?: string;
}

/** Runs `runc` with `args` and resolves when it has exited (and no longer runs). */
/** `stdinNull`: the command's stdin is /dev/null (a run without -i), else the launcher's own */
export type RuncLauncher = (runc: string, args: string[], opts: { stdinNull: boolean }) => Promise<RuncExit>;

export interface StartedInfo {
  pid: number;
  user: { uid: number; gid: number };
  containerId: string;
  /** the seccomp agent's pid; 0 when the run has no seccomp filter */
  agentPid: number;
  /** how the agent's subject cache learns of thread exits (agent/PROTOCOL.md "Subjects"); undefined without an agent */
  exitWatch?: 'bpf' | 'pidfd';
  /** which mechanisms record and enforce this run */
  mechanisms: RunMechanisms;
  /** the sets the container got: the requested ones minus what this host's bounding set lacks */
  capabilities: CapabilitySets;
  /** requested capabilities the host cannot grant (not in the runtime's own bounding set) */
  unavailable: string[];
}

/** The capabilities this process may hand to a container (its bounding set). */
export function hostBoundingSet(): Set<string> {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const mask = m ? BigInt('0x' + m[1]) : 0n;
  return new Set(CAPABILITIES.filter((c) => (mask >> BigInt(c.number)) & 1n).map((c) => c.name));
}

/** The requested sets limited to what the host can grant, and what had to be left out. */
export function limitToHost(sets: CapabilitySets, host: Set<string>): { sets: CapabilitySets; unavailable: string[] } {
  const unavailable = new Set<string>();
  const f = (l: string[]) => l.filter((c) => (host.has(c) ? true : (unavailable.add(c), false)));
  return {
    sets: { bounding: f(sets.bounding), permitted: f(sets.permitted), effective: f(sets.effective), inheritable: f(sets.inheritable), ambient: f(sets.ambient) },
    unavailable: [...unavailable].sort(),
  };
}

export interface RunResult {
  id: string;
  containerId: string;
  status: 'exited' | 'failed';
  exitCode: number | null;
  signal: string | null;
  failure?: { stage: RunFailureStage; reason: string };
  counts: { allow: number; deny: number; emulate: number };
  events: number;
  lostEvents: number;
  lostReason?: string;
  durationMs: number;
  /** the kernel's OOM killer killed a process of the container (known when a memory limit was set) */
  oomKilled?: boolean;
  /** core dumps and other files kept after the run ($CAPULATOR_HOME/artifacts/RUN/) */
  artifacts?: RunArtifact[];
  /** the container's addresses on the bridge */
  addresses?: string[];
  stdout?: string;
  stderr?: string;
}

export class RunError extends Error {
  constructor(readonly stage: 'image' | 'start' | 'policy', message: string) {
    super(message);
  }
}

/** in a run's directory: `{command, args}` that starts runc for it (read by `capulator exec`) */
export const EXEC_FILE = 'runc.json';
/** largest /etc/passwd or /etc/group of an image that is read */
const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;

/** Parses a `user` of an image config against the image's /etc/passwd and /etc/group. */
export function resolveUser(rootfs: string, user: string | undefined): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':');
  const read = (p: string) => {
    const host = resolveInRootfs(rootfs, p);
    try {
      // a regular file of sane size only: an image's FIFO or device here must not block or flood the runtime
      if (!host || !statSync(host).isFile() || statSync(host).size > MAX_ACCOUNT_FILE) return [];
      return readFileSync(host, 'utf8').split('\n').map((l) => l.split(':'));
    } catch {
      return [];
    }
  };
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = read('/etc/passwd').find((r) => r[2] === u);
    if (row) gid = Number(row[3]);
  } else {
    const row = read('/etc/passwd').find((r) => r[0] === u);
    if (!row) throw new RunError('image', `user ${u} is not in the image's /etc/passwd`);
    uid = Number(row[2]);
    gid = Number(row[3]);
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = read('/etc/group').find((r) => r[0] === g);
      if (!row) throw new RunError('image', `group ${g} is not in the image's /etc/group`);
      gid = Number(row[2]);
    }
  }
  return { uid, gid: gid ?? 0 };
}

/**
 * Runs one container under runc with a capulator-agent deciding its trapped syscalls. Plain
 * class, no Nest: `capulator run` starts it directly so the start path stays short.
 */
export class Runner {
  constructor(
    private readonly opts: {
      home: string;
      repo: string;
      runc?: string;
      runcRoot?: string;
      /** bytes of decision lines the agent holds while the runtime does not read; past them it drops (counted) */
      agentEventsBuffer?: number;
      /**
       * This process outlives its runs (`capulator serve`): an ended run's directory is moved out of
       * runs/ at once and removed in the background, after the run is answered.
       */
      longLived?: boolean;
    },
  ) {
    // what a server killed while removing them left behind
    if (opts.longLived) void rm(this.endedDir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Where ended runs' directories wait for their removal (longLived). */
  private get endedDir(): string {
    return join(this.opts.home, 'tmp', 'ended-runs');
  }

  /** Removes an ended run's directory: at once, or (longLived) by a rename now and a removal in the background. */
  private discard(dir: string): void {
    if (this.opts.longLived) {
      try {
        mkdirSync(this.endedDir, { recursive: true, mode: 0o700 });
        const to = join(this.endedDir, `${basename(dir)}-${randomBytes(4).toString('hex')}`);
        renameSync(dir, to);
        void rm(to, { recursive: true, force: true }).catch(() => undefined);
        return;
      } catch {
        /* removed here instead */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }

  get runsDir(): string {
    return join(this.opts.home, 'runs');
  }

  async run(req: RunRequest): Promise<RunResult> {
    const t0 = Date.now();
    const trace = process.env.CAPULATOR_TRACE === '1' ? (what: string) => process.stderr.write(`capulator: trace +${Date.now() - t0}ms ${what}\n`) : () => undefined;
    const id = req.id ?? randomBytes(6).toString('hex');
    const bad = runIdProblem(id);
    if (bad) throw new RunError('start', bad);
    const runc = this.opts.runc ?? 'runc';
    const runcRoot = this.opts.runcRoot ?? '/run/capulator/runc';
    const containerId = `capulator-${id}`;
    const dir = join(this.runsDir, id);
    // runc's container names are the host's, not this home's: one left by a run of another home
    // (or of a home since removed) is not ours to delete
    if (existsSync(join(runcRoot, containerId))) {
      throw new RunError('start', `a container ${containerId} already exists (runc --root ${runcRoot} list); choose another --id, or remove it if it is stale: runc --root ${runcRoot} delete -f ${containerId}`);
    }
    mkdirSync(this.runsDir, { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch {
      throw new RunError('start', `run ${id} already exists (${dir})`);
    }
    const rootfs = join(dir, 'rootfs');
    const w = req.workload ?? defaultWorkload();
    const hostname = w.hostname ?? id.slice(0, 63);
    // from here until its end is recorded, the run can be recovered if this process dies
    const supervisor: Supervisor = { ...thisProcess(), runId: id, containerId, runc, runcRoot, rootfs, startedAt: new Date(t0).toISOString() };
    try {
      writeSupervisor(dir, supervisor);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    let mounted = false;
    let agent: AgentProcess | undefined;
    let krec: KernelRecordProcess | undefined;
    let cgroupDir: string | undefined;
    let runcStarted = false;
    /** set when the run's end could not be recorded: the directory (spool) stays for recovery */
    let orphaned: { stage: RunFailureStage; reason: string } | undefined;
    let result: RunResult | undefined;
    const cleanup = () => {
      agent?.kill();
      krec?.kill();
      // `runc run` removes the container when it returns; delete only what it left behind
      if (runcStarted && existsSync(join(runcRoot, containerId))) spawnSync(runc, ['--root', runcRoot, 'delete', '-f', containerId], { stdio: 'ignore' });
      const released = releaseNetwork(dir);
      for (const e of released.errors) process.stderr.write(`capulator: warning: run ${id}: releasing its network: ${e}\n`);
      // the agent unmounted it at its end (one syscall, not a spawned umount(8))
      if (mounted && !agent?.summary?.unmounted) {
        const u = spawnSync('umount', [rootfs], { stdio: 'ignore' });
        if (u.status !== 0) spawnSync('umount', ['-l', rootfs], { stdio: 'ignore' });
      }
      if (orphaned) {
        try {
          orphanRun(dir, orphaned);
        } catch {
          /* failure.json is gone: recovery sees this process end and says so */
        }
      }
      else if (!req.keep) this.discard(dir);
      else releaseSupervisor(dir);
      if (cgroupDir) {
        try {
          rmdirSync(cgroupDir); // runc removes it when it deletes the container; this is for the paths where it never ran
        } catch {
          /* gone already */
        }
      }
    };
    try {
      // rootfs: overlayfs of the image's layers + this run's upper dir
      if (req.image.layers.length === 0) throw new RunError('image', `image ${req.image.ref} has no layers`);
      for (const l of req.image.layers) if (!existsSync(l)) throw new RunError('image', `layer ${l} is missing`);
      mkdirSync(join(dir, 'upper'));
      mkdirSync(join(dir, 'work'));
      mkdirSync(rootfs);
      const lower = [...req.image.layers].reverse().join(':');
      const overlayOptions = `lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
      const need = req.learn ? { needed: true, reasons: ['learn mode records every trapped call'] } : seccompNeed({ text: req.table.text, hash: req.table.hash } as never);
      // a run with an agent: the agent mounts the overlay before it is ready (one spawn fewer);
      // otherwise mount(8), overlapping the kernel record's start
      const agentMounts = need.needed;
      const mountDone: Promise<{ status: number | null; stderr: string }> = agentMounts
        ? Promise.resolve({ status: 0, stderr: '' })
        : new Promise((resolve) => {
            const mp = spawn('mount', ['-t', 'overlay', 'overlay', '-o', overlayOptions, rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
            let err = '';
            mp.stderr!.setEncoding('utf8').on('data', (x: string) => (err += x));
            mp.on('error', (e) => resolve({ status: -1, stderr: e.message }));
            mp.on('close', (status) => resolve({ status, stderr: err }));
          });
      const tablePath = join(dir, 'policy.table');
      writeFileSync(tablePath, req.table.text, { mode: 0o600 });
      let socketPath = join(dir, 'agent.sock');
      if (Buffer.byteLength(socketPath) > 100) {
        mkdirSync('/run/capulator/sock', { recursive: true, mode: 0o700 });
        socketPath = `/run/capulator/sock/${id}.sock`;
      }
      const counts = { allow: 0, deny: 0, emulate: 0 };
      const binary = agentBinary(this.opts.repo);
      const policyRef = req.policy ?? { name: req.table.policy, version: 0, hash: req.table.hash };
      // the kernel record: a cgroup v2 group of our own (so its id is known before runc starts)
      const cgRoot = cgroupV2Root();
      const krecBinary = kernelRecordBinary(this.opts.repo);
      const cgroupsPath = `/capulator/${containerId}`;
      let started = false;
      const beforeStart: AgentDecision[] = [];
      let violation: string | undefined;
      let stopForViolation = (_reason: string) => undefined as void;
      let kchecks: KernelChecks | undefined;
      const deliver = (d: AgentDecision) => {
        if (d.count !== null) counts[d.count]++;
        req.onDecision?.(d);
      };
      const krecStart: Promise<{ k?: KernelRecordProcess; e?: Error }> =
        cgRoot && krecBinary
          ? (async () => {
              cgroupDir = join(cgRoot, cgroupsPath);
              mkdirSync(cgroupDir, { recursive: true });
              return KernelRecordProcess.start(krecBinary, cgroupDir, (c) => kchecks?.check(c));
            })().then(
              (k) => ({ k }),
              (e: Error) => ({ e }),
            )
          : Promise.resolve({ e: new Error(cgRoot ? 'capulator-kernel-record is not built' : 'no cgroup v2 hierarchy') });
      const krecResult = need.needed ? undefined : await krecStart;
      // no filter at all when nothing needs one and the kernel record runs; otherwise the agent
      const useAgent = need.needed || !krecResult?.k;
      const agentStart: Promise<{ a?: AgentProcess; e?: Error }> = !useAgent ? Promise.resolve({}) : AgentProcess.start({
        binary,
        socketPath,
        tablePath,
        learn: req.learn ?? false,
        runcSetup: req.kernelSets?.noNewPrivileges === false,
        unmount: rootfs,
        ...(agentMounts ? { mountOverlay: overlayOptions } : {}),
        eventsBuffer: this.opts.agentEventsBuffer,
        spool: { path: join(dir, SPOOL_FILE), count: join(dir, COUNT_FILE), onAuditFailure: req.onAuditFailure },
        run: { runId: id, policy: policyRef },
        onDecision: (d) => {
          kchecks?.agentDecision(d);
          deliver(d);
        },
      }).then(
        (a) => ({ a }),
        (e: Error) => ({ e }),
      );
      // the bridge (CNI ADD) is set up while the overlay mounts and the agent starts
      const netDone: Promise<{ n?: NetworkSetup; e?: Error }> =
        w.network === 'bridge'
          ? setupNetwork({ home: this.opts.home, runDir: dir, containerId, hostname, portMappings: w.publish }).then(
              (n) => ({ n }),
              (e: Error) => ({ e }),
            )
          : Promise.resolve({});
      const m = await mountDone;
      if (m.status === 0) mounted = true;
      const agentStarted = await agentStart;
      // whether or not the agent got that far, clean-up unmounts what may be mounted
      if (agentMounts) mounted = true;
      const net = await netDone;
      // both are known to the clean-up before either failure is thrown: a kernel record left
      // running would outlive the run (and keep a CLI waiting for it)
      const kr = krecResult ?? (await krecStart);
      krec = kr.k;
      if (useAgent && !agentStarted.a) throw new RunError('start', agentStarted.e!.message);
      agent = agentStarted.a;
      if (!krec && cgroupDir) {
        try {
          rmdirSync(cgroupDir);
        } catch {
          /* not empty or gone */
        }
        cgroupDir = undefined;
      }
      if (!agent && !krec) throw new RunError('start', `no mechanism can record this run: ${kr.e?.message ?? 'the kernel record did not start'}`);
      if (agent) writeSupervisor(dir, { ...supervisor, agent: { pid: agent.ready!.pid, start: processStart(agent.ready!.pid) ?? '' } });
      if (m.status !== 0) throw new RunError('start', `cannot mount the overlay: ${m.stderr.trim()}`);
      if (net.e) throw new RunError('start', `network: ${net.e.message}`);
      trace(`overlay mounted, ${agent ? 'agent' : 'no agent'}, ${krec ? 'kernel record' : 'no kernel record'} ready`);
      const mechanisms: RunMechanisms = {
        kernelRecord: krec ? 'tp_btf' : 'none',
        seccomp: agent ? 'notify' : 'none',
        ...(agent && need.reasons.length > 0 ? { seccompReasons: need.reasons } : {}),
        ...(!krec ? { kernelRecordUnavailable: kr.e?.message ?? 'unknown' } : {}),
      };

      const cfg = req.image.config;
      const argv = runArgv(cfg, { entrypoint: req.command, args: req.args });
      const env = mergeEnv(cfg.Env ?? [], req.env ?? [], hostname, w.tty === true);
      const cwd = w.workdir ?? (cfg.WorkingDir && cfg.WorkingDir.startsWith('/') ? cfg.WorkingDir : '/');
      const user = resolveUser(rootfs, w.user ?? cfg.User);
      const mounts = [...etcMounts(dir, hostname, net.n?.files ?? [], req.mounts ?? []), ...(req.mounts ?? [])];
      checkEntrypoint(rootfs, argv, env, cwd, req.image.platform?.architecture, 0, req.mounts ?? []);
      const limited = limitToHost(req.capabilities, hostBoundingSet());
      const setsTool = kernelSetsTool(binary);
      // no filter at all when the policy needs none and the kernel record runs (libs/policy seccompNeed)
      const seccomp = agent ? buildSeccompProfile(socketPath, process.arch, seccompPlan(req.table, limited.sets.bounding)) : undefined;
      if (req.kernelSets) {
        const k = req.kernelSets;
        try {
          if (seccomp) checkSetupEnds(k, seccomp.syscalls);
          const applied = applyKernelSets(rootfs, { programs: k.programs, inheritable: limited.sets.inheritable, noNewPrivileges: k.noNewPrivileges }, setsTool);
          for (const w of applied.warnings) process.stderr.write(`capulator: warning: ${w}\n`);
        } catch (e) {
          throw new RunError('start', (e as Error).message);
        }
      }
      const spec = buildOciSpec({
        rootfs,
        args: argv,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        hostname,
        capabilities: limited.sets,
        noNewPrivileges: req.kernelSets?.noNewPrivileges ?? true,
        seccomp,
        mounts,
        network: net.n ? { mode: 'path', path: net.n.netnsPath } : { mode: w.network === 'host' ? 'host' : 'none' },
        rlimits: rlimits(w.ulimits),
        resources: resources(w),
        readonlyRoot: w.readOnly,
        // -t: runc (in the foreground) makes the pty, copies it to its stdio, sets a terminal raw and passes window size changes on
        terminal: w.tty,
        tmpfs: w.tmpfs,
      });
      if (krec) (spec as { linux: { cgroupsPath?: string } }).linux.cgroupsPath = cgroupsPath;
      writeFileSync(join(dir, 'config.json'), ociSpecJson(spec));
      // how `capulator exec` starts runc for this container (the same wrapper: securebits)
      writeFileSync(join(dir, EXEC_FILE), JSON.stringify(runcCommand(runc, ['--root', runcRoot], req.kernelSets, setsTool)));
      if (krec) {
        kchecks = new KernelChecks({
          runId: id,
          policy: policyRef,
          tableText: req.table.text,
          arch: (process.arch === 'arm64' ? 'aarch64' : 'x86_64') as Arch,
          decided: decidedSyscalls(seccomp),
          // kernel checks reach the store after RunStarted, like the agent's decisions
          emit: (d) => (started ? deliver(d) : beforeStart.push(d)),
          onViolation: (p) => stopForViolation(`${p.subject.exe} (pid ${p.subject.pid}, uid ${p.subject.uid}) used ${p.capability} in ${p.syscall}: the kernel granted it, the policy denies it (${p.ruleId ?? 'default'})`),
        });
      }

      const pipe = !req.launch && req.stdio === 'pipe';
      runcStarted = true;
      // with a memory limit, runc keeps the stopped container (and its cgroup) until the cleanup's
      // `runc delete`, so the cgroup's oom_kill counter can be read after the exit
      const keepCgroup = w.memory !== undefined;
      const runcCmd = runcCommand(runc, ['--root', runcRoot, 'run', ...(keepCgroup ? ['--keep'] : []), '--bundle', dir, containerId], req.kernelSets, setsTool);
      let stdout = '';
      let stderr = '';
      let stopForwarding = () => undefined as void;
      let runcExit: Promise<RuncExit>;
      // set as soon as runc is known to be gone (its `exit`, before its pipes close): an agent
      // that ends after that is not a failure of the run
      let runcExited = false;
      if (req.launch) {
        // without -i the container's stdin is /dev/null (as docker's); the client runs runc with its own stdio
        runcExit = req.launch(runcCmd.command, runcCmd.args, { stdinNull: !w.interactive });
        void runcExit.then(() => (runcExited = true));
      } else {
        const input = pipe && w.interactive ? req.stdin : undefined;
        // -t without a terminal of our own: runc runs on a pty the agent binary makes and relays (fd 3: sizes)
        const pty = pipe && w.tty;
        const size = (pty && req.terminal?.size()) || { rows: 24, cols: 80 };
        const child = pty
          ? spawn(binary, ['pty', String(size.rows), String(size.cols), '--', runcCmd.command, ...runcCmd.args], { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'] })
          : spawn(runcCmd.command, runcCmd.args, { stdio: pipe ? [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] : [w.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
        child.on('exit', () => (runcExited = true));
        if (pty) {
          const sizes = child.stdio[3] as Writable;
          sizes.on('error', () => undefined);
          const off = req.terminal?.onResize((z) => sizes.write(`${z.rows} ${z.cols}\n`));
          child.on('close', () => off?.());
        }
        if (input) {
          // a program that exits without reading all of it: EPIPE, nothing to report
          child.stdin!.on('error', () => undefined);
          input.pipe(child.stdin!);
          child.on('close', () => input.unpipe(child.stdin!));
        }
        if (pipe) {
          const onOut = req.onOutput;
          child.stdout!.setEncoding('utf8').on('data', (s: string) => (onOut ? onOut('stdout', s) : (stdout += s)));
          child.stderr!.setEncoding('utf8').on('data', (s: string) => (onOut ? onOut('stderr', s) : (stderr += s)));
        }
        const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
        const onTerm = forward('SIGTERM');
        const onHup = forward('SIGHUP');
        process.on('SIGTERM', onTerm);
        process.on('SIGHUP', onHup);
        stopForwarding = () => {
          process.off('SIGTERM', onTerm);
          process.off('SIGHUP', onHup);
        };
        runcExit = new Promise<RuncExit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
      }
      const a = agent;
      const k = krec;
      // SIGKILL to every process of the container: at once through its cgroup v2 group when the run
      // has one (cgroup.kill, one write), then through runc (which starts a Go program: ~10 ms)
      const killAll = () => {
        if (cgroupDir) {
          try {
            writeFileSync(join(cgroupDir, 'cgroup.kill'), '1');
          } catch {
            /* gone already, or a kernel without cgroup.kill: runc below */
          }
        }
        spawnSync(runc, ['--root', runcRoot, 'kill', '--all', containerId, 'KILL'], { stdio: 'ignore' });
      };
      // a violation (a capability the kernel granted that the policy denies) stops the container
      stopForViolation = (reason) => {
        if (violation) return;
        violation = reason;
        killAll();
      };
      const onStarted = (pid: number) => {
        started = true;
        req.onStarted?.({ pid, user, containerId, agentPid: a?.ready?.pid ?? 0, exitWatch: a?.ready?.exitWatch, capabilities: limited.sets, unavailable: limited.unavailable, mechanisms });
        for (const d of beforeStart.splice(0)) deliver(d);
      };
      // synchronously with the `attached` line (or, with no filter, the program's first exec):
      // RunStarted is recorded before the first decision
      if (a) a.onAttached(() => onStarted(a.attached!.pid));
      else k!.onStarted(() => onStarted(k!.started!.pid));
      // fail closed: if the agent (or the kernel record) dies while the container runs, kill the container
      // (a normal agent exit — its `exit` line — only happens once every container process is gone)
      let agentDied = false;
      let stalled = false;
      let krecDied = false;
      // fail closed on audit failure: the agent stops the container itself when its spool cannot
      // be written; the store failing stops it here
      let auditStopped: string | undefined;
      const stopForAudit = (reason: string) => {
        if (auditStopped || runcExited) return;
        auditStopped = reason;
        killAll();
      };
      a?.onAuditFailed((f) => {
        if (f.action === 'stop') stopForAudit(auditFailureReason(f.error));
      });
      // a granted check the kernel record had no room for is a use of privilege nobody decided on
      // after the fact: the record is cut short, so fail closed as when the spool cannot be written
      k?.onLostGranted((n) => {
        if (req.onAuditFailure !== 'continue') stopForAudit(auditFailureReason(`the kernel record's ring buffer was full: ${n} granted capability check(s) not recorded`));
      });
      const onStop = () => stopForAudit(String(req.stop!.reason));
      if (req.stop?.aborted) onStop();
      else req.stop?.addEventListener('abort', onStop, { once: true });
      const watch = (a?.exited ?? Promise.resolve({ code: 0, signal: null })).then((e) => {
        if (a && !a.summary && !runcExited) {
          agentDied = true;
          killAll();
        }
        return e;
      });
      void k?.exited.then(() => {
        if (!k.summary && !runcExited) {
          krecDied = true;
          killAll();
        }
      });
      trace('runc started');
      // the spares this run took (kernel record, agent) are replaced while runc works: forking this
      // large process blocks it for a few ms, which the run does not wait on now (after the answer,
      // it delayed the next run's request)
      replenishSpares();
      const r = await runcExit;
      trace('runc exited');
      stopForwarding();
      if (r.lost) {
        // nobody waits for this container any more: stop it (the agent then sees the hang-up)
        killAll();
        if (a && !a.attached) a.kill();
      }
      // the agent exits when the notify fd hangs up; give it time to hand over buffered events
      // while they keep flowing, and stop it if it stalls
      for (; a; ) {
        const before = a.bytesReceived;
        const done = await Promise.race([a.exited.then(() => true), delay(5000).then(() => false)]);
        if (done) break;
        if (a.bytesReceived === before) {
          stalled = true;
          a.kill();
          break;
        }
      }
      await watch;
      // An agent that ends without its summary line died. Its death and the container's end can
      // come in either order (once the notify fd is gone the program's trapped calls fail fast
      // and it may exit first), so this is decided by the summary, not by which came first.
      if (a && !a.summary && !stalled) agentDied = true;
      trace('agent exited');
      if (k) {
        const diedBefore = k.child.exitCode !== null || k.child.signalCode !== null;
        await k.stop();
        if (diedBefore && !k.summary) krecDied = true;
        kchecks?.flush();
        if (!started) beforeStart.length = 0; // never started: nothing of the container's to record
        trace('kernel record exited');
      }
      const base = {
        id,
        containerId,
        counts,
        events: (a ? a.agentCount().events : 0) + (k?.received ?? 0),
        lostEvents: (a?.lostEvents() ?? 0) + (k?.lostEvents() ?? 0),
        ...(a?.auditFailed
          ? { lostReason: `the agent could not write its spool (${a.auditFailed.error})` }
          : agentDied
            ? { lostReason: 'decided by the agent but not yet in its spool when it died' }
            : k && k.lostEvents() > 0
              ? { lostReason: `the kernel record lost ${k.lostEvents()} check(s) (ring buffer full or lines not received)` }
              : {}),
        durationMs: Date.now() - t0,
        ...(pipe ? { stdout, stderr } : {}),
      };
      req.stop?.removeEventListener('abort', onStop);
      if (auditStopped) {
        return (result = { ...base, status: 'failed', exitCode: r.code, signal: null, failure: { stage: 'audit', reason: auditStopped } });
      }
      if (r.lost) {
        return (result = { ...base, status: 'failed', exitCode: r.code, signal: null, failure: { stage: 'runtime', reason: r.lost } });
      }
      if (violation) {
        return (result = { ...base, status: 'failed', exitCode: r.code, signal: null, failure: { stage: 'policy', reason: violation } });
      }
      if (krecDied && started) {
        return (result = { ...base, status: 'failed', exitCode: r.code, signal: null, failure: { stage: 'agent', reason: `the kernel record died while the container ran${k!.stderr ? ': ' + k!.stderr.trim() : ''}` } });
      }
      if (agentDied && a?.attached) {
        return (result = { ...base, status: 'failed', exitCode: r.code, signal: null, failure: { stage: 'agent', reason: `the agent died while the container ran${a.stderr ? ': ' + a.stderr.trim() : ''}` } });
      }
      if (a ? !a.attached : !started) {
        return (result = { ...base, status: 'failed', exitCode: r.code, signal: null, failure: { stage: 'runtime', reason: `runc failed to start the container (exit ${r.code})${pipe && stderr ? ': ' + stderr.trim().split('\n').pop() : ''}` } });
      }
      const code = r.code ?? 128 + 9;
      const signal = code > 128 && code < 160 ? signalName(code - 128) ?? `SIG${code - 128}` : null;
      // the kernel record sees every OOM kill in the group (a limit of the host's, of an ancestor
      // group, the host out of memory); the group's own counter, with --memory, is read too
      const oom = (k?.summary?.oomKills ?? 0) > 0 || (keepCgroup && oomKilled(runcRoot, containerId));
      // a core-dumping signal: the kernel wrote the core in the container (core_pattern `core` or a
      // path); a `|program` pattern hands it to that host program instead and nothing is left here
      const artifacts = signal && CORE_SIGNALS.has(signal) && !corePattern().startsWith('|') ? collectCores(join(dir, 'upper'), this.opts.home, id) : [];
      return (result = {
        ...base,
        status: 'exited',
        exitCode: code,
        signal,
        ...(oom ? { oomKilled: true } : {}),
        ...(artifacts.length > 0 ? { artifacts } : {}),
        ...(net.n ? { addresses: net.n.addresses } : {}),
      });
    } finally {
      // the end is recorded while the spool still exists: if that fails, recovery finishes it
      if (result && req.record) orphaned = await req.record(result).catch((e: Error) => ({ stage: 'audit' as const, reason: e.message }));
      trace('recorded');
      cleanup();
      trace('cleaned up');
    }
  }
}

/** The program's environment as docker makes it: PATH, HOSTNAME, TERM=xterm with -t, then the image's, then -e/--env-file. */
function mergeEnv(image: string[], extra: string[], hostname: string, tty: boolean): string[] {
  const out = new Map<string, string>();
  out.set('PATH', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  out.set('HOSTNAME', `HOSTNAME=${hostname}`);
  if (tty) out.set('TERM', 'TERM=xterm');
  for (const e of [...image, ...extra]) {
    const k = e.split('=')[0];
    out.set(k, e.includes('=') ? e : `${e}=`);
  }
  return [...out.values()];
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * The container's /etc/hostname (its UTS name, as docker writes it for every network), and the
 * bridge's /etc/hosts and /etc/resolv.conf: bind mounts of files in the run directory. A file the
 * user mounts at one of those paths (-v, --mount) is theirs instead, as with docker.
 */
function etcMounts(runDir: string, hostname: string, networkFiles: { source: string; destination: string }[], userMounts: BindMount[]): BindMount[] {
  const hostnameFile = join(runDir, 'hostname');
  writeFileSync(hostnameFile, `${hostname}\n`, { mode: 0o644 });
  const taken = new Set(userMounts.map((m) => posix.normalize(m.destination).replace(/(.)\/+$/, '$1')));
  return [{ source: hostnameFile, destination: '/etc/hostname' }, ...networkFiles]
    .filter((f) => !taken.has(f.destination))
    .map((f) => ({ ...f, readonly: false }));
}
