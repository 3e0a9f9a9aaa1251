import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { credentialsFor, dockerConfigDir } from './auth';
import { RegistryClient } from './client';
import { downloadBlob, fetchSmallBlob, lockBlob } from './blobs';
import { Descriptor, ImageManifest, MANIFEST_ACCEPT, parseManifest } from './manifest';
import { formatPlatform, hostPlatform, Platform, selectPlatform } from './platform';
import { DOCKER_HUB, ImageReference, parseReference } from './reference';
import { RegistryError } from './registry.errors';
import { prepareLayerBlob } from './layers';

/** What a pull needs from the image store (apps/runtime/src/images ImageStore satisfies it). */
export interface PullStore<R = unknown> {
  hasBlob(digest: string): boolean;
  putLayer(digest: string, blobPath: string, mediaType: string): Promise<void>;
  putImage(manifest: unknown, config: unknown, tags: string[]): R;
}

export type LayerState = 'waiting' | 'cached' | 'downloading' | 'verifying' | 'storing' | 'done';

export type PullProgress =
  | { kind: 'resolved'; ref: string; manifestDigest: string; platform: Platform; layers: Array<{ digest: string; size: number; mediaType: string }> }
  | { kind: 'layer'; digest: string; state: LayerState; bytes: number; total: number }
  | { kind: 'retry'; digest: string; reason: string; resumeAt: number }
  | { kind: 'done'; ref: string; imageDigest: string };

export interface PullOptions {
  /** Wanted platform (default: the host's, linux/<arch>). */
  platform?: Platform;
  /** Hosts (`host` or `host:port`) allowed over plain HTTP / unverified TLS. Loopback always is. */
  insecureRegistries?: readonly string[];
  /** Docker client config dir for credentials (default `$DOCKER_CONFIG` or ~/.docker). */
  dockerConfig?: string;
  /** Where blobs are downloaded and verified before entering the store; shared across processes
   *  (the CLI uses $CAPULATOR_HOME/pull-staging; default: a per-user dir under the temp dir). */
  stagingDir?: string;
  /** Tags to record; default: the reference's own tag (none when pulled by digest). */
  tags?: string[];
  onProgress?: (p: PullProgress) => void;
  timeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
  /** Parallel layer downloads (default 3). */
  concurrency?: number;
}

/** Layers being fetched in this process, per store, so concurrent pulls share the work. */
const inFlight = new WeakMap<object, Map<string, Promise<void>>>();

/** The tag a pulled image is recorded under: `host:port/name:tag`, or `name:tag` for Docker Hub. */
export function tagForStore(ref: ImageReference): string | undefined {
  if (!ref.tag) return undefined;
  if (ref.registry === DOCKER_HUB) {
    const short = ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
    return `${short}:${ref.tag}`;
  }
  return `${ref.registry}/${ref.repository}:${ref.tag}`;
}

/**
 * Pulls `refText` from its registry into `store`: resolves an index to the wanted platform,
 * fetches config and layers (each verified against its digest before the store sees it,
 * layers already in the store skipped, concurrent pulls of one blob sharing one download),
 * and records the image. Returns what `store.putImage` returns (a ResolvedImage).
 */
export async function pullImage<R>(store: PullStore<R>, refText: string, opts: PullOptions = {}): Promise<R> {
  const ref = parseReference(refText);
  const want = opts.platform ?? hostPlatform();
  const credentials = credentialsFor(ref.registry, opts.dockerConfig ?? dockerConfigDir());
  const client = new RegistryClient(ref.registry, {
    insecureRegistries: opts.insecureRegistries, credentials, timeoutMs: opts.timeoutMs, attempts: opts.attempts, backoffMs: opts.backoffMs,
  });
  const stagingDir = opts.stagingDir ?? join(tmpdir(), `capulator-pull-${process.getuid?.() ?? 0}`);
  mkdirSync(stagingDir, { recursive: true });
  const emit = opts.onProgress ?? (() => undefined);

  const { manifest, digest: manifestDigest, platform } = await resolveManifest(client, ref, want);
  emit({ kind: 'resolved', ref: ref.canonical, manifestDigest, platform, layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })) });

  const configBytes = await fetchSmallBlob(client, ref.repository, manifest.config.digest);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new RegistryError('BAD_MANIFEST', `${ref.canonical}: image config ${manifest.config.digest} is not JSON`);
  }
  const cfgPlatform: Platform = { os: String(config.os ?? ''), architecture: String(config.architecture ?? ''), variant: config.variant as string | undefined };
  if (cfgPlatform.architecture && cfgPlatform.architecture !== want.architecture) {
    throw new RegistryError('NO_MATCHING_PLATFORM', `${ref.canonical} is built for ${formatPlatform(cfgPlatform)} only, not ${formatPlatform(want)}`);
  }

  let flights = inFlight.get(store);
  if (!flights) inFlight.set(store, (flights = new Map()));
  const jobs = manifest.layers.map((layer) => () => {
    let job = flights!.get(layer.digest);
    if (!job) {
      job = ensureLayer(store, client, ref, layer, stagingDir, emit, opts).finally(() => flights!.delete(layer.digest));
      flights!.set(layer.digest, job);
    } else {
      emit({ kind: 'layer', digest: layer.digest, state: 'waiting', bytes: 0, total: layer.size });
      job = job.then(() => emit({ kind: 'layer', digest: layer.digest, state: 'done', bytes: layer.size, total: layer.size }));
    }
    return job;
  });
  await runLimited(jobs, opts.concurrency ?? 3);

  const tags = opts.tags ?? (tagForStore(ref) ? [tagForStore(ref)!] : []);
  // The exact config bytes: the store checks them against manifest.config.digest again.
  const image = store.putImage(manifest, configBytes, tags);
  emit({ kind: 'done', ref: ref.canonical, imageDigest: manifest.config.digest });
  return image;
}

async function resolveManifest(client: RegistryClient, ref: ImageReference, want: Platform): Promise<{ manifest: ImageManifest; digest: string; platform: Platform }> {
  const top = await client.getManifest(ref.repository, ref.reference, MANIFEST_ACCEPT);
  const parsed = parseManifest(top.body, top.mediaType, ref.canonical);
  if (parsed.kind === 'image') {
    return { manifest: parsed.manifest, digest: top.digest, platform: want };
  }
  // Attestation manifests (buildkit) carry platform unknown/unknown: never candidates.
  const entries = parsed.index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  const chosen = selectPlatform(entries, want);
  if (!chosen) {
    const have = [...new Set(entries.map((m) => formatPlatform(m.platform!)))];
    throw new RegistryError('NO_MATCHING_PLATFORM', `${ref.canonical} has no build for ${formatPlatform(want)}; it has ${have.length ? have.join(', ') : 'no platform-tagged builds'}`);
  }
  const child = await client.getManifest(ref.repository, chosen.digest, MANIFEST_ACCEPT);
  const p2 = parseManifest(child.body, child.mediaType, `${ref.canonical} (${formatPlatform(chosen.platform!)})`);
  if (p2.kind !== 'image') throw new RegistryError('BAD_MANIFEST', `${ref.canonical}: index entry ${chosen.digest} is itself an index`);
  return { manifest: p2.manifest, digest: chosen.digest, platform: chosen.platform! };
}

async function ensureLayer(store: PullStore<unknown>, client: RegistryClient, ref: ImageReference, layer: Descriptor, stagingDir: string, emit: (p: PullProgress) => void, opts: PullOptions): Promise<void> {
  const total = layer.size;
  if (store.hasBlob(layer.digest)) {
    emit({ kind: 'layer', digest: layer.digest, state: 'cached', bytes: total, total });
    return;
  }
  emit({ kind: 'layer', digest: layer.digest, state: 'waiting', bytes: 0, total });
  const release = await lockBlob(stagingDir, layer.digest, () => store.hasBlob(layer.digest));
  if (!release) {
    emit({ kind: 'layer', digest: layer.digest, state: 'cached', bytes: total, total });
    return;
  }
  let blob: string | undefined;
  let prepared: { path: string; mediaType: string; cleanup: () => void } | undefined;
  try {
    if (store.hasBlob(layer.digest)) {
      emit({ kind: 'layer', digest: layer.digest, state: 'cached', bytes: total, total });
      return;
    }
    emit({ kind: 'layer', digest: layer.digest, state: 'downloading', bytes: 0, total });
    blob = await downloadBlob({
      client, repository: ref.repository, digest: layer.digest, size: layer.size, stagingDir,
      attempts: opts.attempts, backoffMs: opts.backoffMs,
      onBytes: (bytes) => emit({ kind: 'layer', digest: layer.digest, state: 'downloading', bytes, total }),
      onRetry: (reason, resumeAt) => emit({ kind: 'retry', digest: layer.digest, reason, resumeAt }),
    });
    emit({ kind: 'layer', digest: layer.digest, state: 'storing', bytes: total, total });
    prepared = await prepareLayerBlob(blob, layer.mediaType);
    await store.putLayer(layer.digest, prepared.path, prepared.mediaType);
    emit({ kind: 'layer', digest: layer.digest, state: 'done', bytes: total, total });
  } finally {
    prepared?.cleanup();
    if (blob && existsSync(blob)) unlinkSync(blob);
    release();
  }
}

async function runLimited(jobs: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < jobs.length && firstError === undefined) {
      const job = jobs[next++];
      try {
        await job();
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
  if (firstError !== undefined) throw firstError;
}
