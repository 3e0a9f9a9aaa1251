import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { endCommand, type FailStage, type NewEvent, type RunCommand } from '@capulator/events';
import { repoRoot } from '@capulator/host';
import { capabilitySets, compileForContainer, load } from '@capulator/policy';
import { ImageNotFound, ImageStore, ImageStoreError, type ResolvedImage } from '../images';
import { pullImage, RegistryError } from '../registry';
import { resolveUser, RunError, Runner } from './runner';
import { runOutput } from './run-output';
import { runInput } from './run-input';
import { workloadFromRecord } from './workload';
import type { RunOrder as RunRequest, WorkerRunFn as RunFn } from '../worker/commands';

export interface RuntimeOptions {
  home: string;
  runc?: string;
  /** runc --root (default /run/capulator/runc, the runner's) */
  runcRoot?: string;
}

/** The user a container starts as (`--user`, else the image's User), read from the image's layers (top first) like the runner does. */
function imageUser(image: ResolvedImage, override?: string): { uid: number; gid: number } {
  const user = override ?? image.config.User;
  if (!user) return { uid: 0, gid: 0 };
  for (const layer of [...image.layers].reverse()) {
    if (existsSync(join(layer, 'etc', 'passwd'))) return resolveUser(layer, user);
  }
  return resolveUser(image.layers[image.layers.length - 1] ?? '/nonexistent', user);
}

/**
 * The run's image from this runtime's store; one it lacks is pulled from the registry the
 * submitting gateway named (RunRequested.imageSource, pinned by manifest digest: every blob is
 * verified on the way in) and must then have the config digest the gateway saw.
 */
async function resolveOrFetch(images: ImageStore, req: RunRequest, home: string): Promise<ResolvedImage> {
  try {
    return images.resolve(req.imageSource?.digest ?? req.image);
  } catch (err) {
    if (!(err instanceof ImageNotFound) || !req.imageSource) throw err;
  }
  const src = req.imageSource;
  const got = await pullImage(images, src.ref, { stagingDir: join(home, 'pull-staging'), tags: [] });
  if (got.digest !== src.digest) {
    throw new RegistryError('DIGEST_MISMATCH', `image ${req.image}: ${src.ref} holds config ${got.digest}, the gateway submitted ${src.digest}`);
  }
  return got;
}

/** A queue of run commands between the runner's callbacks and the executor's async iteration. */
class CommandQueue {
  private items: RunCommand[] = [];
  private wake: (() => void) | undefined;

  push(c: RunCommand): void {
    this.items.push(c);
    this.wake?.();
  }

  /** A decision joins the RecordDecisions at the tail of the queue (one append for many). */
  decision(e: NewEvent): void {
    const last = this.items[this.items.length - 1];
    if (last?.type === 'RecordDecisions') last.events.push(e as never);
    else this.push({ type: 'RecordDecisions', events: [e as never] });
  }

  take(): RunCommand[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  get size(): number {
    return this.items.length;
  }

  waitFor(done: Promise<unknown>): Promise<void> {
    if (this.items.length > 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
      done.then(this.wake, this.wake);
    });
  }
}

/**
 * The runtime's RunFn: the Runner (runc + the native agent) behind the gateway's
 * InProcessExecutor (`capulator serve`) and the Kafka RuntimeWorker (apps/runtime/src/main.ts). Resolves the image, compiles the policy for this container,
 * starts it, and yields RunStarted, the decision events (in agent order, batched) and
 * RunExited or RunFailed. Stopping kills the container (runc kill --all KILL).
 */
export function runtimeRunFn(opts: RuntimeOptions): RunFn {
  const images = new ImageStore(join(opts.home, 'images'));
  const runner = new Runner({ home: opts.home, repo: repoRoot(), longLived: true, ...(opts.runc ? { runc: opts.runc } : {}), ...(opts.runcRoot ? { runcRoot: opts.runcRoot } : {}) });
  const runc = opts.runc ?? 'runc';
  const runcRoot = opts.runcRoot ?? '/run/capulator/runc';
  const now = () => new Date().toISOString();

  return async function* run(req: RunRequest, { signal }): AsyncIterable<RunCommand> {
    const failed = (stage: FailStage, reason: string): RunCommand => ({ type: 'FailRun', at: now(), stage, reason });
    // the output of this run, for GET /v1/runs/{id}/logs (complete when this generator ends);
    // its stdin (-i, POST /v1/runs/{id}/stdin) is dropped then
    try {
      yield* runContainer(req, signal, failed);
    } finally {
      runOutput.end(req.runId);
      runInput.release(req.runId);
    }
  };

  async function* runContainer(req: RunRequest, signal: AbortSignal, failed: (stage: FailStage, reason: string) => RunCommand): AsyncIterable<RunCommand> {
    if (signal.aborted) {
      yield failed('runtime', 'stopped before it started');
      return;
    }
    let image: ResolvedImage;
    try {
      image = await resolveOrFetch(images, req, opts.home);
    } catch (err) {
      yield failed('image', err instanceof ImageStoreError || err instanceof RegistryError ? err.message : `cannot resolve image ${req.image}: ${(err as Error).message}`);
      return;
    }
    // mount sources were resolved (realpath) and checked at submission: a path that resolves
    // differently now had a component swapped for a symlink since, and is refused
    for (const m of req.mounts) {
      let now: string | undefined;
      try {
        now = realpathSync(m.source);
      } catch {
        now = undefined;
      }
      if (now !== m.source) {
        yield failed('start', `bind-mount source ${m.source} ${now === undefined ? 'no longer exists' : `now resolves to ${now}`}; refused`);
        return;
      }
    }
    const loaded = load(req.policyYaml ?? '', `${req.policy.name}.yaml`);
    if (!loaded.policy || loaded.errors.length > 0) {
      yield failed('policy', `policy ${req.policy.name}@${req.policy.version} does not load: ${loaded.errors.map((e) => `${e.location.line}:${e.location.col} ${e.message}`).join('; ')}`);
      return;
    }
    const policy = req.learn ? { ...loaded.policy, learn: true } : loaded.policy;
    const labels = (image.config as { Labels?: Record<string, string> }).Labels ?? {};
    // network, limits, user, … as the request recorded them (RunRequested.workload)
    const workload = workloadFromRecord(req.workload);
    let user: { uid: number; gid: number };
    try {
      user = imageUser(image, workload.user);
    } catch (err) {
      yield failed('image', (err as Error).message);
      return;
    }
    const container = { uid: user.uid, gid: user.gid, image: image.refs[0] ?? image.digest, labels };
    const caps = capabilitySets(policy, container);
    const table = compileForContainer(policy, { image: container.image, labels });

    const queue = new CommandQueue();
    let started = false;
    const kill = () => spawnSync(runc, ['--root', runcRoot, 'kill', '--all', `capulator-${req.runId}`, 'KILL'], { stdio: 'ignore' });
    const onAbort = () => {
      if (started) kill();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const provenance: Record<string, string[]> = {};
    for (const [cap, grants] of Object.entries(caps.provenance)) provenance[cap] = grants.map((g) => g.ruleId ?? g.source);

    const result = runner.run({
      id: req.runId,
      image: { ref: req.image, digest: image.digest, layers: image.layers, platform: image.platform, config: image.config },
      // RunRequested's command: empty for the image's entrypoint
      command: req.command.length > 0 ? req.command : undefined,
      args: req.args,
      env: req.env,
      mounts: req.mounts.map((m) => ({ source: m.source, destination: m.destination, readonly: m.readonly })),
      workload,
      table: { text: table.text, hash: table.hash, policy: table.policy, version: table.version },
      policy: req.policy,
      capabilities: caps.sets,
      kernelSets: caps,
      learn: req.learn,
      stdio: 'pipe',
      // -i: what clients send (POST /v1/runs/{id}/stdin) is the program's stdin; else /dev/null
      ...(workload.interactive ? { stdin: runInput.readable(req.runId) } : {}),
      // -t: the window size clients set (POST /v1/runs/{id}/resize)
      ...(workload.tty ? { terminal: runInput.terminal(req.runId) } : {}),
      onOutput: (stream, text) => runOutput.write(req.runId, stream, text),
      onStarted: (info) => {
        started = true;
        // the sets the host granted (info.capabilities), not the requested ones
        queue.push({ type: 'StartRun', at: now(), imageDigest: image.digest, user: info.user, granted: info.capabilities, provenance, policy: req.policy, pid: info.pid, mechanisms: info.mechanisms });
        if (signal.aborted) kill();
      },
      onDecision: (d) => queue.decision(d),
    });
    let outcome: { ok: true; r: Awaited<typeof result> } | { ok: false; err: unknown } | undefined;
    const settled = result.then(
      (r) => (outcome = { ok: true, r }),
      (err) => (outcome = { ok: false, err }),
    );
    try {
      while (!outcome || queue.size > 0) {
        await queue.waitFor(settled);
        for (const c of queue.take()) yield c;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (!outcome.ok) {
      const err = outcome.err;
      yield failed(err instanceof RunError ? err.stage : 'runtime', (err as Error)?.message ?? String(err));
      return;
    }
    yield endCommand(outcome.r, now());
  }
}
