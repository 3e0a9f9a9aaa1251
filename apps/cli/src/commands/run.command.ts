import { Command, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, openSync, statSync, type WriteStream } from 'node:fs';
import { setPriority } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { homePaths, repoRoot, fsErrorText } from '@capulator/host';
import { capabilitySets, compileForContainer, formatError, type Policy } from '@capulator/policy';
import {
  Anchorer,
  anchorPaths,
  endCommand,
  loadRun,
  publishPolicy,
  RunWriter,
  SqliteEventStore,
  type CapabilitySets,
  type EventStore,
  type PolicyRef,
} from '@capulator/events';
import {
  auditFailureReason,
  EntrypointError,
  recoverOrphans,
  resolveUser,
  RunError,
  Runner,
  storageErrorText,
  type AgentDecision,
  type AuditFailureAction,
  type BindMount,
  type RuncLauncher,
  type RunImage,
  runArgv,
} from '../../../runtime/src/run';
import { CliError } from '../cli-error';
import { afterDashes } from '../argv';
import { addWorkloadOptions, envFromFlags, envFromHost, serverWorkload, workloadFrom, workloadRecord, type WorkloadFlags } from './run-workload-options';
import { loadPolicyFileTextCached, readPolicyFile } from '../policy-file';
import { runIdProblem } from '../../../runtime/src/run/run-id';
import { hasControllingTerminal } from '../terminal';

interface RunOptions extends WorkloadFlags {
  policy?: string;
  learn?: boolean;
  id?: string;
  /** docker's name for --id */
  name?: string;
  entrypoint?: string;
  mount: string[];
  volume: string[];
  env: string[];
  keep?: boolean;
  eventsJson?: string;
  store: boolean;
  server?: string;
  token?: string;
  detach?: boolean;
  onAuditFailure: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];
const FROM_POLICY =
  "a run's privileges come from its policy, not from flags: a rule grants one (capulator abi map: a capability's privileges; examples/policies), and capulator run --policy FILE runs with it";
/** docker run's flags that set privilege, and why there are none here */
const PRIVILEGE_FLAGS = [
  { option: '--cap-add <capability>', key: 'capAdd', name: '--cap-add', why: FROM_POLICY },
  { option: '--cap-drop <capability>', key: 'capDrop', name: '--cap-drop', why: FROM_POLICY },
  { option: '--privileged', key: 'privileged', name: '--privileged', why: FROM_POLICY },
  { option: '--security-opt <option>', key: 'securityOpt', name: '--security-opt', why: "the seccomp filter and no_new_privs are the policy's (capulator policy explain FILE shows them); AppArmor and SELinux labels are not set" },
] as const;

/** --entrypoint as run-argv.ts takes it: '' for none */
const entrypointOf = (o: RunOptions): string[] | undefined => (o.entrypoint === undefined ? undefined : o.entrypoint === '' ? [] : [o.entrypoint]);

/** Exit status of `capulator run` when the run itself failed (agent died, runc could not start it), as docker's 125. */
export const RUN_FAILED_EXIT = 125;

/**
 * Where a `capulator run` is carried out: in this process (the cold path: paths relative to our
 * cwd, runc spawned with our stdio), or in `capulator serve` for the native client on its run
 * socket (run-socket.ts: the client's cwd, runc started by the client, the daemon's open store).
 */
export interface RunHost {
  cwd: string;
  stderr(text: string): void;
  exit(code: number): void;
  /** starts runc elsewhere (default: spawned here with this process's stdio and signals) */
  launch?: RuncLauncher;
  /** an open store to record into (default: the home's store, opened for this run) */
  store?: EventStore;
  /** what it cannot do itself (--server): `capulator run` in a process of its own does it */
  fallback?(reason: string): never;
  /**
   * Whether the process that runs runc has a controlling terminal, which runc needs for -t (it
   * opens /dev/tty); default: this process's. Without one, a -t run's terminal is the agent
   * binary's pty relay (agent/src/pty.c), as for a server's -t runs, here in the cold path.
   */
  terminal?: boolean;
}

const thisProcess: RunHost = {
  get cwd() {
    return process.cwd();
  },
  stderr: (text) => process.stderr.write(text),
  exit: (code) => (process.exitCode = code),
};

export function registerRunCommands(program: Command, host: RunHost = thisProcess): void {
  const cmd = program
    .command('run')
    .description('run a command from an image (or a rootfs directory) with every use of privilege decided by a policy')
    .argument('<image>', 'image reference (tag, digest, digest prefix) or a rootfs directory')
    .argument('[command...]', "command and arguments (after the image, or after --), after the image's Entrypoint, as docker's; default: the image's Cmd")
    .passThroughOptions()
    .option('--policy <file>', 'policy YAML (default: examples/policies/default.yaml)')
    .option('--learn', 'learn mode: allow and record everything')
    .option('--id <name>', 'run id (default: random)')
    .option('--entrypoint <program>', "run PROGRAM instead of the image's Entrypoint (then the command given, not the image's Cmd), as docker's; '' for none")
    .option('--name <name>', "run id, as docker's --name (the same as --id)")
    .option('--mount <src:dst[:ro]>', 'bind mount (repeatable)', collect, [])
    .option('-v, --volume <src:dst[:ro]>', "bind mount, as docker's -v (repeatable; a host path: there are no named volumes)", collect, [])
    .option('-e, --env <K=V>', 'environment variable (repeatable)', collect, [])
    .option('--keep', 'keep the run directory (bundle, upper layer) afterwards')
    .option('--events-json <file>', 'write decision events as JSON lines to FILE')
    .option('--no-store', 'do not record the run in the event store')
    .option('--on-audit-failure <action>', 'when the record cannot be written (disk full, I/O error): stop the container and fail the run, or continue counting the gap', 'stop')
    .option('--server <url>', 'submit to a capulator server (capulator serve) and follow the run there')
    .option('--token <token>', 'API token for --server (default: $CAPULATOR_TOKEN)')
    .option('-d, --detach', 'run in the background: print the run id once it started and return (capulator logs|wait|stop RUN, with --server too)');
  // docker's privilege flags: privilege comes from the policy here; said so, not "unknown option"
  for (const flag of PRIVILEGE_FLAGS) cmd.addOption(new Option(flag.option).hideHelp());
  addWorkloadOptions(cmd)
    .addHelpText('after', `
Exit status: the contained program's (128+N when killed by signal N); ${RUN_FAILED_EXIT} when the run
failed (agent died, runtime error); 2 for bad input (policy, image, command not runnable).

Examples:
  capulator run --policy examples/policies/ping.yaml capulator-test/busybox-ping -- ping -c1 127.0.0.1
  capulator run --learn --events-json ev.jsonl ./rootfs -- /bin/sh -c 'id; hostname'`)
    .action(async (image: string, words: string[], opts: RunOptions) => {
      const command = afterDashes(words);
      for (const flag of PRIVILEGE_FLAGS) if ((opts as unknown as Record<string, unknown>)[flag.key] !== undefined) throw new CliError(`${flag.name}: ${flag.why}`);
      if (opts.name !== undefined) {
        if (opts.id !== undefined && opts.id !== opts.name) throw new CliError(`--name ${opts.name} and --id ${opts.id}: one run id, please (--name is --id)`);
        opts.id = opts.name;
      }
      // before anything is recorded or made: the id names a directory, a container and a stream
      const badId = opts.id === undefined ? undefined : runIdProblem(opts.id);
      if (badId) throw new CliError(badId);
      if (image === '') throw new CliError('an image (name, digest, archive or rootfs directory) is required, not ""');
      // `-e NAME` takes NAME's value from the environment of whoever typed it: a daemon has its own,
      // never to be handed to a container, so the client runs such a run itself (the cold path)
      if (envFromHost(opts.env)) host.fallback?.('-e NAME (its value is in the client\'s environment)');
      if (opts.detach && !opts.server) {
        host.fallback?.('-d'); // the daemon's client: the cold path starts the supervisor
        const { runDetached } = await import('./run-detached');
        process.exitCode = await runDetached(opts.id);
        return;
      }
      // -t with no terminal where runc runs (a pipe, cron, CI): the cold path relays one
      if (opts.tty && !opts.server && host.launch && host.terminal === false) host.fallback?.('-t without a terminal');
      if (opts.server) {
        host.fallback?.('--server');
        const token = opts.token ?? process.env.CAPULATOR_TOKEN;
        if (!token) throw new CliError('--server needs --token T (or $CAPULATOR_TOKEN)');
        if (opts.mount.length || opts.volume.length) throw new CliError(`${opts.mount.length ? '--mount' : '--volume'} is not supported with --server yet: mounts name paths on the server`);
        // what only a run of this process can do: refused rather than dropped unsaid
        const local: [string, boolean, string][] = [
          [opts.name !== undefined ? '--name' : '--id', opts.id !== undefined, 'the server names its runs (the id is printed)'],
          ['--keep', !!opts.keep, "the run's directory is the server's"],
          ['--events-json', opts.eventsJson !== undefined, 'the server records the run (capulator audit log, GET /v1/runs/ID/events)'],
          ['--no-store', opts.store === false, 'the server records every run'],
          ['--on-audit-failure', cmd.getOptionValueSource('onAuditFailure') === 'cli', "the server's own setting applies"],
        ];
        for (const [flag, given, why] of local) if (given) throw new CliError(`${flag} is not supported with --server: ${why}`);
        if (opts.entrypoint === '') throw new CliError("--entrypoint '' is not supported with --server: give the program to run instead (--entrypoint PROGRAM)");
        if (opts.interactive && opts.detach) throw new CliError('-i with -d and --server: a detached run has nobody to send its stdin');
        // the other workload flags go as they were typed (the server parses them with the same parser);
        // --env-file is read here and sent as -e, as docker's client does
        // parsed here too: a bad flag is a local exit-2 error before anything is sent
        const { env: fileEnv } = workloadFrom(opts, process.cwd());
        const workload = serverWorkload(opts);
        const { runRemote } = await import('./remote-run');
        process.exitCode = await runRemote({
          server: opts.server,
          token,
          image,
          command,
          ...(opts.entrypoint ? { entrypoint: [opts.entrypoint] } : {}),
          env: [...fileEnv, ...envFromFlags(opts.env ?? [])],
          workload,
          // a local file is sent inline; otherwise it names a published policy (name or name@version)
          ...(opts.policy && existsSync(opts.policy) ? { policyFile: opts.policy } : opts.policy ? { policy: opts.policy } : {}),
          learn: opts.learn,
          detach: opts.detach,
          ...(opts.interactive ? { stdin: process.stdin } : {}),
          // -t: this terminal's size goes to the run's, and with -i its keys go raw (^C included), as docker's client does
          ...(opts.tty && process.stdout.isTTY ? { terminal: process.stdout } : {}),
          ...(opts.tty && opts.interactive && process.stdin.isTTY ? { raw: process.stdin } : {}),
        });
        return;
      }
      host.exit(await runCommand(image, command, opts, host));
    });
}

function parseMount(spec: string, cwd: string, flag = '--mount'): BindMount {
  if (flag === '--mount' && /^[a-z-]+=/.test(spec)) return parseMountFields(spec, cwd);
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1] || (parts[2] !== undefined && parts[2] !== 'ro' && parts[2] !== 'rw')) {
    throw new CliError(`${flag} ${spec}: want SRC:DST[:ro]`);
  }
  // docker's -v NAME:DST names a volume; here a source is always a host path
  if (flag === '--volume' && !parts[0].includes('/') && parts[0] !== '.' && parts[0] !== '..') throw new CliError(`${flag} ${spec}: ${parts[0]} is not a path (named volumes are not supported: give a host directory, e.g. ./${parts[0]})`);
  return bindMount(`${flag} ${spec}`, cwd, parts[0], parts[1], parts[2] === 'ro');
}

/** A bind mount of a host path that exists, to an absolute path; `what` names the flag in errors. */
function bindMount(what: string, cwd: string, from: string, destination: string, readonly: boolean): BindMount {
  const source = resolvePath(cwd, from);
  if (!existsSync(source)) throw new CliError(`${what}: ${source} does not exist`);
  if (!destination.startsWith('/')) throw new CliError(`${what}: the destination must be absolute`);
  return { source, destination, readonly };
}

/** docker's `--mount type=bind,source=SRC,target=DST[,readonly]` (its other types said why not) */
function parseMountFields(spec: string, cwd: string): BindMount {
  const f = new Map<string, string>();
  for (const kv of spec.split(',')) {
    const i = kv.indexOf('=');
    f.set(i < 0 ? kv : kv.slice(0, i), i < 0 ? 'true' : kv.slice(i + 1));
  }
  const type = f.get('type') ?? 'volume';
  if (type === 'tmpfs') throw new CliError(`--mount ${spec}: for a tmpfs, --tmpfs PATH[:OPTIONS]`);
  if (type !== 'bind') throw new CliError(`--mount ${spec}: only type=bind (a host path) is supported: type=bind,source=HOST-PATH,target=PATH`);
  const source = f.get('source') ?? f.get('src');
  const target = f.get('target') ?? f.get('destination') ?? f.get('dst');
  const ro = f.get('readonly') ?? f.get('ro');
  const known = new Set(['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro']);
  const unknown = [...f.keys()].find((k) => !known.has(k));
  if (unknown) throw new CliError(`--mount ${spec}: ${unknown} is not supported (type, source, target, readonly)`);
  if (!source || !target || (ro !== undefined && ro !== 'true' && ro !== 'false' && ro !== '1' && ro !== '0')) throw new CliError(`--mount ${spec}: want type=bind,source=SRC,target=DST[,readonly]`);
  return bindMount(`--mount ${spec}`, cwd, source, target, ro === 'true' || ro === '1');
}

function loadPolicy(file: string): { policy: Policy; yaml: string } {
  let yaml: string;
  try {
    yaml = readPolicyFile(file);
  } catch (e) {
    throw new CliError(`cannot read policy ${file}: ${(e as Error).message}`);
  }
  // a daemon runs the same policy files again and again: their parse is kept while they hold the same text
  const r = loadPolicyFileTextCached(file, yaml);
  if (!r.policy) throw new CliError(r.errors.length > 0 ? formatError(r.errors[0]) : `${file}: invalid policy`);
  return { policy: r.policy, yaml };
}

export async function resolveImage(ref: string, imagesDir: string, cwd: string): Promise<RunImage & { labels?: Record<string, string> }> {
  const dir = resolvePath(cwd, ref);
  const isDir = existsSync(dir) && statSync(dir).isDirectory();
  if (isDir || ref.startsWith('/') || ref.startsWith('./')) {
    if (!isDir) throw new CliError(`${ref}: not a rootfs directory`);
    return { ref: dir, layers: [dir], config: {} };
  }
  // the image store (apps/runtime/src/images); loaded lazily so `run DIR` does not pay for it
  const { ImageStore } = await import('../../../runtime/src/images');
  try {
    const img = new ImageStore(imagesDir).resolve(ref);
    return {
      ref,
      digest: img.digest,
      layers: img.layers,
      platform: img.platform,
      config: img.config,
      labels: img.config.Labels,
    };
  } catch (e) {
    throw new CliError(`image ${ref}: ${(e as Error).message}`);
  }
}

/** The uid/gid the container starts as, read from the image's top-most /etc/passwd. */
function imageUser(image: RunImage, override?: string): { uid: number; gid: number } {
  const spec = override ?? image.config.User;
  for (const layer of [...image.layers].reverse()) {
    if (!spec || existsSync(`${layer}/etc/passwd`) || /^\d+(:\d+)?$/.test(spec)) {
      try {
        return resolveUser(layer, spec);
      } catch (e) {
        if (layer === image.layers[0]) throw new CliError((e as Error).message);
      }
    }
  }
  return { uid: 0, gid: 0 };
}

export async function runCommand(imageRef: string, command: string[], opts: RunOptions, host: RunHost = thisProcess): Promise<number> {
  const paths = homePaths();
  const repo = repoRoot(__dirname);
  const policyFile = resolvePath(host.cwd, opts.policy ?? `${repo}/examples/policies/default.yaml`);
  const loaded = loadPolicy(policyFile);
  const policy: Policy = opts.learn ? { ...loaded.policy, learn: true } : loaded.policy;
  const mounts = [...opts.mount.map((m) => parseMount(m, host.cwd)), ...opts.volume.map((m) => parseMount(m, host.cwd, '--volume'))];
  const flagEnv = envFromFlags(opts.env);
  const { workload, env: fileEnv } = workloadFrom(opts, host.cwd);
  const relay = !!workload.tty && !host.launch && !(host.terminal ?? hasControllingTerminal());
  const env = [...fileEnv, ...flagEnv];
  const id = opts.id ?? randomBytes(6).toString('hex');
  if (opts.onAuditFailure !== 'stop' && opts.onAuditFailure !== 'continue') throw new CliError(`--on-audit-failure ${opts.onAuditFailure}: want stop or continue`);
  const onAuditFailure: AuditFailureAction = opts.onAuditFailure;

  const image = await resolveImage(imageRef, paths.images, host.cwd);
  const user = imageUser(image, workload.user);
  const container = { image: imageRef, labels: image.labels };
  const table = compileForContainer(policy, container);
  const caps = capabilitySets(policy, { uid: user.uid, gid: user.gid, ...container });
  const sets: CapabilitySets = caps.sets;

  let store: EventStore | undefined;
  let rec: RunWriter | undefined;
  let anchorer: Anchorer | undefined;
  const stopForAudit = new AbortController();
  let auditFailure: string | undefined;
  /** the run's end event could not be stored (`continue`): the run is left to recovery */
  let endLost = false;
  let policyRef: PolicyRef = { name: policy.name, version: 0, hash: table.hash };
  const now = () => new Date().toISOString();
  if (opts.store) {
    store = host.store ?? SqliteEventStore.open(paths.store);
    // a daemon recovers the runs it gave up (their record could not be written) once the store takes events again
    if (host.store) await recoverOrphans(paths.runs, store, (run, e) => host.stderr(`capulator: warning: run ${run} is not recovered yet: ${storageErrorText(e) ?? e.message}\n`));
    // the run's one writer: the lifecycle decider (libs/events/src/runs) says what each step appends
    const state = await loadRun(store, id);
    if (state.phase !== 'none') {
      if (store !== host.store) await store.close();
      throw new CliError(`run id ${id} already exists (${state.phase}); choose another --id`);
    }
    // the chain head is anchored outside events.db every so many events and at the run's end (docs/events.md "Anchors")
    const sqlite = store instanceof SqliteEventStore ? store : undefined;
    anchorer =
      sqlite &&
      new Anchorer(anchorPaths(paths.home), () => sqlite.head(), (m) => {
        // an anchor that cannot be written for lack of space or an I/O error is part of the audit record failing
        const storage = storageErrorText({ code: /\b(E[A-Z]+):/.exec(m)?.[1] });
        if (!storage) return host.stderr(`capulator: warning: run ${id}: ${m}\n`);
        auditFailure ??= storage;
        if (onAuditFailure === 'stop') stopForAudit.abort(auditFailureReason(storage));
      });
    // fail closed: when the store cannot take events the container is stopped (`stop`), or the gap counted (`continue`)
    rec = RunWriter.forStore(store, state, {
      onAppended: (stored) => anchorer?.appended(stored.length),
      onFailed: (e, events) => {
        const text = storageErrorText(e) ?? e.message;
        auditFailure ??= text;
        if (events.some((x) => x.type === 'RunExited' || x.type === 'RunFailed')) endLost = true;
        if (onAuditFailure === 'stop') stopForAudit.abort(auditFailureReason(text));
        return onAuditFailure;
      },
    });
  }
  let out: WriteStream | undefined;
  if (opts.eventsJson) {
    const file = resolvePath(host.cwd, opts.eventsJson);
    try {
      out = createWriteStream('', { fd: openSync(file, 'w', 0o600) });
    } catch (e) {
      if (store !== host.store) await store?.close();
      throw new CliError(`--events-json ${file}: ${fsErrorText(e)}`);
    }
    // a write error must not take the process (possibly a daemon serving other runs) down
    out.on('error', (e) => host.stderr(`capulator: warning: run ${id}: --events-json ${file}: ${e.message}\n`));
  }
  if (store) {
    const pub = await publishPolicy(store, { name: policy.name, yaml: loaded.yaml, hash: table.hash, description: policy.description }, now());
    policyRef = { name: policy.name, version: pub.version, hash: table.hash };
  }
  const wrec = workloadRecord(workload);
  // as docker run: the entrypoint (the image's or --entrypoint's), then the command given or the image's Cmd
  const argv = runArgv(image.config, { entrypoint: entrypointOf(opts), args: command });
  rec?.submit({
    type: 'RequestRun',
    at: now(),
    request: { runId: id, image: imageRef, command: argv, env, policy: policyRef, learn: !!opts.learn, mounts, ...(wrec ? { workload: wrec } : {}) },
  });

  // the agent writes each decision's payload; it is recorded (and dumped) as written, never re-serialised
  const onDecision = (d: AgentDecision) => {
    out?.write('{"type":"' + d.type + '",' + d.payloadText.slice(1) + '\n');
    rec?.submit({ type: 'RecordDecisions', events: [d] });
  };
  const provenance: Record<string, string[]> = {};
  for (const [cap, grants] of Object.entries(caps.provenance)) provenance[cap] = grants.map((g) => g.ruleId ?? g.source);

  const ignore = () => undefined;
  if (!host.launch) process.on('SIGINT', ignore); // runc forwards the terminal's ^C to the container; we stay to clean up
  // in a daemon (the run socket), ended runs' directories go in the background
  const runner = new Runner({ home: paths.home, repo, longLived: !!host.launch });
  try {
    const result = await runner.run({
      id,
      image,
      command: argv,
      env,
      mounts,
      workload,
      table,
      policy: policyRef,
      capabilities: sets,
      kernelSets: caps,
      learn: opts.learn,
      keep: opts.keep,
      // -t where this process has no terminal: the pty relay, its output (one stream, as a
      // terminal's) written here; with -i this process's stdin goes to it
      ...(relay
        ? {
            stdio: 'pipe' as const,
            onOutput: (stream: 'stdout' | 'stderr', text: string) => (stream === 'stdout' ? process.stdout : process.stderr).write(text),
            ...(workload.interactive ? { stdin: process.stdin } : {}),
            terminal: { size: () => ({ rows: 24, cols: 80 }), onResize: () => () => undefined },
          }
        : { stdio: 'inherit' as const }),
      launch: host.launch,
      onAuditFailure,
      stop: stopForAudit.signal,
      // the end is recorded while the run's spool still exists; when it cannot be, the run is left to recovery
      record: async (result) => {
        if (!rec) return undefined;
        const lost = result.lostEvents + rec.dropped;
        const end = endCommand({ ...result, lostEvents: lost }, now());
        const lostReason = rec.dropped > 0 ? `the event store could not take them (${auditFailure})` : result.lostReason;
        if (end.type === 'FailRun' && end.end && lostReason && lost > 0) end.end.lostReason = lostReason;
        if (end.type === 'ExitRun' && lostReason && lost > 0) end.exit.lostReason = lostReason;
        rec.submit(end);
        await rec.drain();
        if (rec.failed && onAuditFailure === 'stop') return { stage: 'audit' as const, reason: auditFailureReason(auditFailure ?? rec.failed.message) };
        return endLost ? { stage: 'audit' as const, reason: auditFailureReason(auditFailure!, false) } : undefined;
      },
      onDecision,
      onStarted: (s) => {
        // the container and its agent run at normal priority (spawned already); recording them
        // is not latency-critical, so it yields the CPU to them under contention (not in a
        // daemon, which serves other runs)
        if (!host.launch) {
          try {
            setPriority(10);
          } catch {
            /* not permitted: keep the default */
          }
        }
        if (s.unavailable.length > 0 && !opts.learn) {
          host.stderr(`capulator: warning: this host cannot grant ${s.unavailable.join(', ')} (not in its bounding set); the container runs without\n`);
        }
        // the sets the host granted (not the requested ones); the decider keeps provenance for those only
        rec?.submit({ type: 'StartRun', at: now(), imageDigest: image.digest ?? '', user: s.user, granted: s.capabilities, provenance, policy: policyRef, pid: s.pid, mechanisms: s.mechanisms });
      },
    });
    // one terminal event (RunExited, or RunFailed keeping the stage, the reason and what is known
    // of the end) was submitted by `record` above, before the run directory went; a record that
    // could not be written is not anchored (its failure is the one line the user sees)
    if (!rec?.failed) anchorer?.anchor();
    if (result.oomKilled) host.stderr(`capulator: run ${id}: oom: the kernel's OOM killer ended a process${opts.memory ? ` (memory limit ${opts.memory})` : ''}\n`);
    for (const a of result.artifacts ?? []) host.stderr(`capulator: run ${id}: ${result.signal}: core dumped, kept as ${a.name} (capulator cp ${id}:${a.name} .)\n`);
    if (out) await new Promise<void>((r) => out!.end(r));
    if (auditFailure && onAuditFailure === 'continue') host.stderr(`capulator: warning: run ${id}: ${auditFailureReason(auditFailure, false)}; ${rec?.dropped ?? 0} events not recorded\n`);
    if (result.status !== 'failed' && rec?.failed && onAuditFailure === 'stop') {
      host.stderr(`capulator: run ${id} failed: ${auditFailureReason(auditFailure ?? rec.failed.message, false)}\n`);
      return RUN_FAILED_EXIT;
    }
    if (result.status === 'failed') {
      host.stderr(`capulator: run ${id} failed: ${result.failure!.reason}\n`);
      return RUN_FAILED_EXIT;
    }
    return result.exitCode ?? RUN_FAILED_EXIT;
  } catch (e) {
    if (e instanceof EntrypointError || e instanceof RunError) {
      rec?.submit({ type: 'FailRun', at: now(), reason: e.message, stage: e instanceof RunError ? e.stage : 'image' });
      await rec?.drain();
      if (!rec?.failed) anchorer?.anchor();
      throw new CliError(e.message);
    }
    throw e;
  } finally {
    process.off('SIGINT', ignore);
    out?.destroy(); // closes the file on the paths that did not end it
    if (store !== host.store) await store?.close();
  }
}
