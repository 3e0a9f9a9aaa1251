import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { NewEvent } from '@capulator/events';
import { repoRoot } from '@capulator/host';
import { capabilitySets, compileForContainer, load } from '@capulator/policy';
import { ImageStore, ImageStoreError, type ResolvedImage } from '../../../runtime/src/images';
import { resolveUser, RunError, Runner } from '../../../runtime/src/run';
import type { RunFn, RunRequest } from '../runs/run-executor';

export interface RuntimeOptions {
  home: string;
  runc?: string;
  /** runc --root (default /run/capulator/runc, the runner's) */
  runcRoot?: string;
}

/** The user a container starts as, read from the image's layers (top first) like the runner does. */
function imageUser(image: ResolvedImage): { uid: number; gid: number } {
  const user = image.config.User;
  if (!user) return { uid: 0, gid: 0 };
  for (const layer of [...image.layers].reverse()) {
    if (existsSync(join(layer, 'etc', 'passwd'))) return resolveUser(layer, user);
  }
  return resolveUser(image.layers[image.layers.length - 1] ?? '/nonexistent', user);
}

/** A queue between the runner's callbacks and the executor's async iteration. */
class EventQueue {
  private items: NewEvent[] = [];
  private wake: (() => void) | undefined;

  push(e: NewEvent): void {
    this.items.push(e);
    this.wake?.();
  }

  take(): NewEvent[] {
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
 * The in-process runtime: apps/runtime's Runner (runc + the native agent) behind the RunFn
 * the InProcessExecutor drives. Resolves the image, compiles the policy for this container,
 * starts it, and yields RunStarted, the decision events (in agent order, batched) and
 * RunExited or RunFailed. Stopping kills the container (runc kill --all KILL).
 */
export function runtimeRunFn(opts: RuntimeOptions): RunFn {
  const images = new ImageStore(join(opts.home, 'images'));
  const runner = new Runner({ home: opts.home, repo: repoRoot(), ...(opts.runc ? { runc: opts.runc } : {}), ...(opts.runcRoot ? { runcRoot: opts.runcRoot } : {}) });
  const runc = opts.runc ?? 'runc';
  const runcRoot = opts.runcRoot ?? '/run/capulator/runc';
  const now = () => new Date().toISOString();

  return async function* run(req: RunRequest, { signal }): AsyncIterable<NewEvent | NewEvent[]> {
    const failed = (stage: 'image' | 'policy' | 'start' | 'agent' | 'runtime', reason: string): NewEvent<'RunFailed'> => ({
      type: 'RunFailed',
      at: now(),
      payload: { runId: req.runId, reason, stage },
    });
    if (signal.aborted) {
      yield failed('runtime', 'stopped before it started');
      return;
    }
    let image: ResolvedImage;
    try {
      image = images.resolve(req.image);
    } catch (err) {
      yield failed('image', err instanceof ImageStoreError ? err.message : `cannot resolve image ${req.image}: ${(err as Error).message}`);
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
    let user: { uid: number; gid: number };
    try {
      user = imageUser(image);
    } catch (err) {
      yield failed('image', (err as Error).message);
      return;
    }
    const container = { uid: user.uid, gid: user.gid, image: image.refs[0] ?? image.digest, labels };
    const caps = capabilitySets(policy, container);
    const table = compileForContainer(policy, { image: container.image, labels });

    const queue = new EventQueue();
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
      command: req.command,
      env: req.env,
      mounts: req.mounts.map((m) => ({ source: m.source, destination: m.destination, readonly: m.readonly })),
      table: { text: table.text, hash: table.hash, policy: table.policy, version: table.version },
      policy: req.policy,
      capabilities: caps.sets,
      learn: req.learn,
      stdio: 'pipe',
      onStarted: (info) => {
        started = true;
        queue.push({
          type: 'RunStarted',
          at: now(),
          payload: { runId: req.runId, imageDigest: image.digest, user: info.user, capabilities: caps.sets, provenance, policy: req.policy, pid: info.pid },
        });
        if (signal.aborted) kill();
      },
      onDecision: (d) => queue.push(d),
    });
    let outcome: { ok: true; r: Awaited<typeof result> } | { ok: false; err: unknown } | undefined;
    const settled = result.then(
      (r) => (outcome = { ok: true, r }),
      (err) => (outcome = { ok: false, err }),
    );
    try {
      while (!outcome || queue.size > 0) {
        await queue.waitFor(settled);
        const batch = queue.take();
        if (batch.length > 0) yield batch;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (!outcome.ok) {
      const err = outcome.err;
      yield failed(err instanceof RunError ? err.stage : 'runtime', (err as Error)?.message ?? String(err));
      return;
    }
    const r = outcome.r;
    if (r.status === 'failed') {
      yield failed(r.failure?.stage ?? 'runtime', r.failure?.reason ?? 'the run failed');
      return;
    }
    yield {
      type: 'RunExited',
      at: now(),
      payload: {
        runId: req.runId,
        exitCode: r.exitCode,
        signal: r.signal,
        counts: r.counts,
        lostEvents: r.lostEvents,
        ...(r.lostEvents > 0 ? { lostReason: 'decision events the agent numbered did not arrive' } : {}),
        durationMs: r.durationMs,
      },
    };
  };
}
