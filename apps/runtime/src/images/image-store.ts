import {
  closeSync, createReadStream, createWriteStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync,
  statSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveSource, openArchive } from './archive';
import { ImageNotFound, ImageStoreError, UnsafeEntryError } from './image.errors';
import { digestPrefix, isDigest, normalizeTag, tagError } from './refs';
import { Compression, compressionOf, DEFAULT_LIMITS, ExtractBudget, ExtractLimits, extractLayer, openLayerStream } from './safe-extract';
import { StoreLock } from './store-lock';

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageConfigSubset {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

/** docs/contracts.md "Image store". */
export interface ResolvedImage {
  /** sha256:… of the image config (the image id) */
  digest: string;
  /** tags naming it */
  refs: string[];
  platform: ImagePlatform;
  config: ImageConfigSubset;
  /** absolute paths of the unpacked layer directories, bottom first (overlayfs lowerdirs reversed) */
  layers: string[];
  /** diff_ids (uncompressed layer digests), bottom first, one per config layer */
  diffIds: string[];
  /** sum of the uncompressed layer sizes */
  sizeBytes: number;
  importedAt: string;
  /** the archive path or registry reference it came from */
  source: string;
  /** the digest of the manifest it came with (registry pulls and OCI layouts) */
  manifestDigest?: string;
  /**
   * An image imported from an archive: the digest of the OCI manifest this store made for it,
   * whose config and layer blobs (the archive's own bytes) it keeps, so it can be served to
   * another machine as a registry serves it (the gateway's /v2/, docs/images.md "Serving").
   */
  servedManifest?: string;
}

export interface StoreLimits extends ExtractLimits {
  /** entries across all layers of one import */
  maxTotalEntries: number;
  /** uncompressed bytes across all layers of one import */
  maxTotalBytes: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = {
  ...DEFAULT_LIMITS,
  maxTotalEntries: 2_000_000,
  maxTotalBytes: 64 * 1024 ** 3,
};

/**
 * Limits from the environment (all optional, plain integers):
 * CAPULATOR_IMAGE_MAX_LAYER_BYTES, CAPULATOR_IMAGE_MAX_LAYER_ENTRIES,
 * CAPULATOR_IMAGE_MAX_TOTAL_BYTES, CAPULATOR_IMAGE_MAX_TOTAL_ENTRIES, CAPULATOR_IMAGE_MAX_PATH_BYTES.
 */
export function limitsFromEnv(env: Record<string, string | undefined>): Partial<StoreLimits> {
  const out: Partial<StoreLimits> = {};
  const map: Array<[string, keyof StoreLimits]> = [
    ['CAPULATOR_IMAGE_MAX_LAYER_BYTES', 'maxBytes'], ['CAPULATOR_IMAGE_MAX_LAYER_ENTRIES', 'maxEntries'],
    ['CAPULATOR_IMAGE_MAX_TOTAL_BYTES', 'maxTotalBytes'], ['CAPULATOR_IMAGE_MAX_TOTAL_ENTRIES', 'maxTotalEntries'],
    ['CAPULATOR_IMAGE_MAX_PATH_BYTES', 'maxPathBytes'],
  ];
  for (const [name, key] of map) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (!/^\d{1,16}$/.test(v)) throw new ImageStoreError('BAD_REF', `${name} must be a positive integer, not ${JSON.stringify(v)}`);
    out[key] = Number(v);
  }
  return out;
}

export interface ImportOptions {
  /** tag for the imported image (the archive must hold exactly one image) */
  tag?: string;
  /** called with each warning (skipped device nodes, …) */
  onWarning?: (message: string) => void;
}

/** Data of the ImageImported event (libs/events EventTypes['ImageImported']). */
export function imageImportedPayload(img: ResolvedImage) {
  return { digest: img.digest, tags: img.refs, layers: img.diffIds, platform: img.platform, sizeBytes: img.sizeBytes, source: img.source };
}

interface IndexImage {
  digest: string;
  refs: string[];
  platform: ImagePlatform;
  config: ImageConfigSubset;
  diffIds: string[];
  /** compressed blob digest of each layer when known (OCI, registry) */
  layerBlobs: Array<string | null>;
  manifestDigest?: string;
  /** the OCI manifest this store made for an archive import (its blobs kept under blobs/) */
  servedManifest?: string;
  /** the blobs that manifest names besides the config (layer blobs as the archive held them) */
  servedBlobs?: string[];
  sizeBytes: number;
  importedAt: string;
  source: string;
}

interface IndexLayer {
  size: number;
  entries: number;
}

interface StoreIndex {
  version: 1;
  images: Record<string, IndexImage>;
  /** unpacked layers by diff_id */
  layers: Record<string, IndexLayer>;
  /** compressed blob digest → diff_id */
  blobs: Record<string, string>;
}

/** One image found in an archive, before anything is written. */
interface PlannedImage {
  configBytes: Buffer;
  configDigest: string;
  manifestDigest?: string;
  tags: string[];
  layers: Array<{ member: string; diffId: string; blobDigest?: string; blobSize?: number }>;
  /** set for archive imports: the manifest made for serving it, and the layer blobs it names */
  served?: { manifest: string; blobs: string[] };
}

const MT_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MT_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER_MEDIA_TYPES: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};
const MT_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const HEX64 = /^[0-9a-f]{64}$/;

function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new ImageStoreError('BAD_ARCHIVE', `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

function hostArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/** Writes a file atomically: temp file in the same directory, fsync, rename, fsync the directory. */
function writeAtomic(path: string, data: Buffer | string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(join(path, '..'));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A content-addressed image store under `root` ($CAPULATOR_HOME/images):
 *
 *   index.json                  images (tags, platform, config, diff_ids), layers, blob → diff_id
 *   blobs/sha256/<hex>          image configs and manifests (exact bytes)
 *   layers/sha256/<hex>/fs/     one unpacked layer per diff_id, overlay whiteouts in place
 *   layers/sha256/<hex>/layer.json
 *   tmp/<pid>-<rand>/           staging of an import in progress (removed on success or failure)
 *   lock                        held while the index or layers/ change (pid inside)
 *
 * Plain class, no Nest: the CLI uses it directly.
 */
export class ImageStore {
  readonly limits: StoreLimits;
  private readonly lock: StoreLock;

  constructor(readonly root: string, opts: { limits?: Partial<StoreLimits>; lockTimeoutMs?: number } = {}) {
    this.limits = { ...DEFAULT_STORE_LIMITS, ...opts.limits };
    for (const d of ['blobs/sha256', 'layers/sha256', 'tmp']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    this.lock = new StoreLock(join(root, 'lock'), opts.lockTimeoutMs);
  }

  // ---- reading -------------------------------------------------------------------------

  private readIndex(): StoreIndex {
    const p = join(this.root, 'index.json');
    if (!existsSync(p)) return { version: 1, images: {}, layers: {}, blobs: {} };
    const idx = parseJson<StoreIndex>(readFileSync(p), p);
    idx.images ??= {};
    idx.layers ??= {};
    idx.blobs ??= {};
    return idx;
  }

  private writeIndex(idx: StoreIndex): void {
    writeAtomic(join(this.root, 'index.json'), JSON.stringify(idx, null, 1) + '\n');
  }

  layerDir(diffId: string): string {
    return join(this.root, 'layers', 'sha256', diffId.replace(/^sha256:/, ''));
  }

  private toResolved(img: IndexImage): ResolvedImage {
    // A layer listed twice is kept only at its topmost place: every file of the lower copy is
    // in the upper one, so the merged view is the same, and overlayfs refuses repeated lowerdirs.
    const layers: string[] = [];
    const seen = new Set<string>();
    for (let i = img.diffIds.length - 1; i >= 0; i--) {
      if (seen.has(img.diffIds[i])) continue;
      seen.add(img.diffIds[i]);
      layers.unshift(join(this.layerDir(img.diffIds[i]), 'fs'));
    }
    return {
      digest: img.digest, refs: [...img.refs], platform: img.platform, config: img.config, layers,
      diffIds: [...img.diffIds], sizeBytes: img.sizeBytes, importedAt: img.importedAt, source: img.source,
      ...(img.manifestDigest ? { manifestDigest: img.manifestDigest } : {}),
      ...(img.servedManifest ? { servedManifest: img.servedManifest } : {}),
    };
  }

  list(): ResolvedImage[] {
    return Object.values(this.readIndex().images)
      .sort((a, b) => (a.importedAt < b.importedAt ? 1 : a.importedAt > b.importedAt ? -1 : a.digest < b.digest ? -1 : 1))
      .map((i) => this.toResolved(i));
  }

  /** A tag (`name` ⇒ `name:latest`), a full `sha256:…` digest or a unique prefix of ≥ 12 hex digits. */
  resolve(ref: string): ResolvedImage {
    return this.toResolved(this.find(this.readIndex(), ref));
  }

  private find(idx: StoreIndex, ref: string): IndexImage {
    if (isDigest(ref)) {
      const img = idx.images[ref];
      if (!img) throw new ImageNotFound(ref);
      return img;
    }
    const tag = normalizeTag(ref);
    if (tag) {
      const img = Object.values(idx.images).find((i) => i.refs.includes(tag));
      if (img) return img;
    }
    const prefix = digestPrefix(ref);
    if (prefix) {
      const hits = Object.values(idx.images).filter((i) => i.digest.slice(7).startsWith(prefix));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1) throw new ImageStoreError('AMBIGUOUS_REF', `${ref} matches ${hits.length} images: ${hits.map((h) => shortDigest(h.digest)).join(', ')}`);
    }
    if (!tag && !prefix) throw new ImageStoreError('BAD_REF', `${JSON.stringify(ref)} is not an image tag, digest or digest prefix (12+ hex digits)`);
    throw new ImageNotFound(ref);
  }

  // ---- import ------------------------------------------------------------------------

  /** Imports a docker-archive (`docker save`) or OCI image layout (directory or tar). */
  async importArchive(path: string, opts: ImportOptions = {}): Promise<ResolvedImage[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.importOnce(path, opts);
      } catch (err) {
        if (!(err instanceof ImageStoreError && err.code === 'CONFLICT') || attempt >= 3) throw err;
      }
    }
  }

  private async importOnce(path: string, opts: ImportOptions): Promise<ResolvedImage[]> {
    let tag: string | undefined;
    if (opts.tag !== undefined) {
      tag = normalizeTag(opts.tag);
      if (!tag) throw new ImageStoreError('BAD_REF', `${JSON.stringify(opts.tag)} is not a valid image name[:tag]`);
    }
    const staging = this.newStaging();
    try {
      const src = await openArchive(path, join(staging, 'archive.tar'), this.limits.maxTotalBytes);
      const plans = this.plan(src, path);
      if (plans.length === 0) throw new ImageStoreError('BAD_ARCHIVE', `${path}: the archive holds no image`);
      if (tag) {
        if (plans.length !== 1) throw new ImageStoreError('BAD_REF', `--tag needs an archive with one image; ${path} holds ${plans.length}`);
        plans[0].tags = [tag];
      }
      const budget: ExtractBudget = { entries: this.limits.maxTotalEntries, bytes: this.limits.maxTotalBytes };
      const staged = new Map<string, { dir: string; size: number; entries: number }>();
      const known = this.readIndex();
      for (let n = 0; n < plans.length; n++) {
        const p = plans[n];
        for (let i = 0; i < p.layers.length; i++) {
          const l = p.layers[i];
          const where = `image ${shortDigest(p.configDigest)}${p.tags[0] ? ` (${p.tags[0]})` : ''} layer ${i + 1}/${p.layers.length} (${l.diffId})`;
          if (l.blobDigest) {
            const got = 'sha256:' + (await src.sha256(l.member));
            if (got !== l.blobDigest) throw new ImageStoreError('DIGEST_MISMATCH', `${where}: blob ${l.member} hashes to ${got}, the manifest says ${l.blobDigest}`);
            if (l.blobSize !== undefined && src.size(l.member) !== l.blobSize) {
              throw new ImageStoreError('DIGEST_MISMATCH', `${where}: blob ${l.member} is ${src.size(l.member)} bytes, the manifest says ${l.blobSize}`);
            }
          }
          if (staged.has(l.diffId) || (known.layers[l.diffId] && existsSync(this.layerDir(l.diffId)))) continue;
          const dir = join(staging, 'layers', l.diffId.slice(7));
          const res = await this.unpack(src.open(l.member), compressionOf(src.head(l.member, 4)), dir, budget, where);
          if (res.diffId !== l.diffId) {
            throw new ImageStoreError('DIGEST_MISMATCH', `${where}: the uncompressed layer hashes to ${res.diffId}, the config's diff_id is ${l.diffId}`);
          }
          for (const w of res.warnings) opts.onWarning?.(`${where}: ${w}`);
          staged.set(l.diffId, { dir, size: res.bytes, entries: res.entries });
        }
      }
      // the archive's own layer bytes and a manifest naming them: what serving the image needs
      const blobs = new Map<string, string>(); // digest → staged copy
      for (const p of plans) p.served = await this.stageServedForm(src, p, staging, blobs);
      const now = new Date().toISOString();
      return this.lock.withLock(() => {
        const idx = this.readIndex();
        for (const [digest, file] of blobs) {
          const dst = join(this.root, 'blobs', 'sha256', digest.slice(7));
          if (!existsSync(dst)) renameSync(file, dst);
        }
        // a layer that was present when we skipped unpacking it may have been pruned since
        for (const p of plans) {
          for (const l of p.layers) {
            if (!staged.has(l.diffId) && !existsSync(this.layerDir(l.diffId))) {
              throw new ImageStoreError('CONFLICT', `layer ${l.diffId} was removed by a concurrent prune; import again`);
            }
          }
        }
        this.commitLayers(idx, staged);
        return plans.map((p) => {
          const layerBlobs = p.layers.map((l) => l.blobDigest ?? null);
          for (const l of p.layers) if (l.blobDigest) idx.blobs[l.blobDigest] = l.diffId;
          return this.commitImage(idx, p, layerBlobs, now, path);
        });
      });
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /**
   * Copies each layer blob of `p` as the archive holds it (hashed on the way: the copy must be
   * what the digest names) and makes an OCI manifest for it, both staged in `blobs` by digest.
   */
  private async stageServedForm(src: ArchiveSource, p: PlannedImage, staging: string, blobs: Map<string, string>): Promise<{ manifest: string; blobs: string[] }> {
    const dir = join(staging, 'blobs');
    mkdirSync(dir, { recursive: true });
    const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
    for (const l of p.layers) {
      const digest = l.blobDigest ?? 'sha256:' + (await src.sha256(l.member));
      const comp = compressionOf(src.head(l.member, 4));
      layers.push({ mediaType: LAYER_MEDIA_TYPES[comp], digest, size: src.size(l.member) });
      if (blobs.has(digest) || existsSync(join(this.root, 'blobs', 'sha256', digest.slice(7)))) continue;
      const file = join(dir, digest.slice(7));
      const h = createHash('sha256');
      await pipeline(src.open(l.member), new Transform({ transform: (c: Buffer, _e, cb) => (h.update(c), cb(null, c)) }), createWriteStream(file, { mode: 0o644 }));
      const got = 'sha256:' + h.digest('hex');
      if (got !== digest) throw new ImageStoreError('DIGEST_MISMATCH', `layer ${l.member}: its copy hashes to ${got}, not ${digest}`);
      blobs.set(digest, file);
    }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MT_OCI_MANIFEST, config: { mediaType: MT_OCI_CONFIG, digest: p.configDigest, size: p.configBytes.length }, layers }),
    );
    const mdigest = 'sha256:' + sha256(manifest);
    if (!blobs.has(mdigest)) {
      const file = join(dir, mdigest.slice(7));
      writeFileSync(file, manifest, { mode: 0o644 });
      blobs.set(mdigest, file);
    }
    return { manifest: mdigest, blobs: [...new Set(layers.map((l) => l.digest))] };
  }

  /**
   * A blob this store serves (docs/images.md "Serving"): an image's config, or the manifest made
   * for an archive import and the layer blobs it names. The path and size, or undefined.
   */
  servedBlob(digest: string): { path: string; size: number; manifest: boolean } | undefined {
    if (!isDigest(digest)) return undefined;
    const idx = this.readIndex();
    let manifest = false;
    let known = false;
    for (const img of Object.values(idx.images)) {
      if (img.servedManifest === digest) manifest = known = true;
      else if (img.digest === digest || img.servedBlobs?.includes(digest)) known = true;
    }
    const path = join(this.root, 'blobs', 'sha256', digest.slice(7));
    if (!known || !existsSync(path)) return undefined;
    return { path, size: statSync(path).size, manifest };
  }

  private newStaging(): string {
    const dir = join(this.root, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  }

  /** Unpacks one layer into `dir`/fs and writes `dir`/layer.json; wraps errors with `where`. */
  private async unpack(blob: Readable, comp: Compression, dir: string, budget: ExtractBudget, where: string) {
    mkdirSync(join(dir, 'fs'), { recursive: true, mode: 0o755 });
    const { stream, done } = openLayerStream(blob, comp);
    try {
      const res = await extractLayer(stream, join(dir, 'fs'), { limits: this.limits, budget });
      await done();
      writeFileSync(join(dir, 'layer.json'), JSON.stringify({ diffId: res.diffId, size: res.bytes, entries: res.entries, whiteouts: res.whiteouts, opaqueDirs: res.opaqueDirs, warnings: res.warnings }, null, 1) + '\n');
      return res;
    } catch (err) {
      stream.destroy();
      await done().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      if (err instanceof UnsafeEntryError) throw new ImageStoreError(err.code, `${where}: ${err.message}`);
      if (err instanceof ImageStoreError) throw new ImageStoreError(err.code, `${where}: ${err.message}`);
      throw new ImageStoreError('BAD_ARCHIVE', `${where}: ${(err as Error).message}`);
    }
  }

  /** Moves staged layers into layers/ (under the lock); a layer another import stored first wins. */
  private commitLayers(idx: StoreIndex, staged: Map<string, { dir: string; size: number; entries: number }>): void {
    for (const [diffId, s] of staged) {
      const dst = this.layerDir(diffId);
      if (!existsSync(dst)) renameSync(s.dir, dst);
      idx.layers[diffId] ??= { size: s.size, entries: s.entries };
    }
    if (staged.size) fsyncDir(join(this.root, 'layers', 'sha256'));
  }

  private commitImage(idx: StoreIndex, p: PlannedImage, layerBlobs: Array<string | null>, now: string, source: string, storeConfigBlob = true): ResolvedImage {
    const cfgPath = join(this.root, 'blobs', 'sha256', p.configDigest.slice(7));
    if (storeConfigBlob && !existsSync(cfgPath)) writeAtomic(cfgPath, p.configBytes);
    const cfg = parseJson<Record<string, any>>(p.configBytes, 'image config');
    const c = (cfg.config ?? {}) as Record<string, unknown>;
    const config: ImageConfigSubset = {};
    for (const k of ['Entrypoint', 'Cmd', 'Env', 'WorkingDir', 'User', 'Labels'] as const) {
      if (c[k] !== undefined && c[k] !== null) (config as Record<string, unknown>)[k] = c[k];
    }
    const prev = idx.images[p.configDigest];
    for (const t of p.tags) {
      for (const other of Object.values(idx.images)) other.refs = other.refs.filter((r) => r !== t);
    }
    const img: IndexImage = {
      digest: p.configDigest,
      refs: [...new Set([...(prev?.refs ?? []), ...p.tags])].sort(),
      platform: { os: String(cfg.os ?? 'linux'), architecture: String(cfg.architecture ?? ''), ...(cfg.variant ? { variant: String(cfg.variant) } : {}) },
      config,
      diffIds: p.layers.map((l) => l.diffId),
      layerBlobs,
      ...(p.manifestDigest ? { manifestDigest: p.manifestDigest } : {}),
      ...(p.served ? { servedManifest: p.served.manifest, servedBlobs: p.served.blobs } : prev?.servedManifest ? { servedManifest: prev.servedManifest, servedBlobs: prev.servedBlobs } : {}),
      sizeBytes: p.layers.reduce((s, l) => s + (idx.layers[l.diffId]?.size ?? 0), 0),
      importedAt: prev?.importedAt ?? now,
      source,
    };
    idx.images[p.configDigest] = img;
    this.writeIndex(idx);
    return this.toResolved(img);
  }

  /** Reads the archive's manifests into import plans (no writes). */
  private plan(src: ArchiveSource, path: string): PlannedImage[] {
    if (src.has('index.json') && src.has('oci-layout')) return samePlansOnce(this.planOci(src, path));
    if (src.has('manifest.json')) return samePlansOnce(this.planDocker(src, path));
    throw new ImageStoreError('BAD_ARCHIVE', `${path}: neither a docker-archive (manifest.json) nor an OCI image layout (oci-layout, index.json)`);
  }

  private planDocker(src: ArchiveSource, path: string): PlannedImage[] {
    const manifest = parseJson<Array<{ Config?: string; RepoTags?: string[] | null; Layers?: string[] }>>(src.readSmall('manifest.json'), `${path}: manifest.json`);
    if (!Array.isArray(manifest)) throw new ImageStoreError('BAD_ARCHIVE', `${path}: manifest.json is not a list`);
    return manifest.map((m, n) => {
      if (typeof m.Config !== 'string' || !Array.isArray(m.Layers)) throw new ImageStoreError('BAD_ARCHIVE', `${path}: manifest.json entry ${n + 1} lacks Config or Layers`);
      const configBytes = src.readSmall(m.Config);
      const configDigest = 'sha256:' + sha256(configBytes);
      const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(m.Config);
      if (named && named[1] !== configDigest.slice(7)) {
        throw new ImageStoreError('DIGEST_MISMATCH', `${path}: config ${m.Config} hashes to ${configDigest}`);
      }
      const diffIds = this.diffIdsOf(configBytes, m.Layers.length, `${path}: image ${n + 1}`);
      const tags: string[] = [];
      for (const t of m.RepoTags ?? []) {
        const nt = typeof t === 'string' ? normalizeTag(t) : undefined;
        if (!nt) throw new ImageStoreError('BAD_REF', `${path}: manifest.json entry ${n + 1}: tag ${JSON.stringify(t)} is not valid: ${typeof t === 'string' ? tagError(t) : 'a tag is a string'}`);
        tags.push(nt);
      }
      return {
        configBytes, configDigest, tags,
        layers: m.Layers.map((member, i) => {
          const b = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(member);
          return { member, diffId: diffIds[i], ...(b ? { blobDigest: `sha256:${b[1]}` } : {}) };
        }),
      };
    });
  }

  private diffIdsOf(configBytes: Buffer, nLayers: number, what: string): string[] {
    const cfg = parseJson<{ rootfs?: { diff_ids?: unknown } }>(configBytes, `${what}: config`);
    const ids = cfg.rootfs?.diff_ids;
    if (!Array.isArray(ids) || ids.some((d) => typeof d !== 'string' || !isDigest(d))) {
      throw new ImageStoreError('BAD_ARCHIVE', `${what}: config rootfs.diff_ids missing or not sha256 digests`);
    }
    if (ids.length !== nLayers) throw new ImageStoreError('BAD_ARCHIVE', `${what}: ${nLayers} layers but ${ids.length} diff_ids in the config`);
    return ids as string[];
  }

  private ociBlob(src: ArchiveSource, desc: { digest?: unknown; size?: unknown }, what: string): { member: string; bytes?: Buffer } {
    const d = String(desc.digest ?? '');
    if (!isDigest(d)) throw new ImageStoreError('BAD_ARCHIVE', `${what}: unsupported digest ${JSON.stringify(desc.digest)} (sha256 only)`);
    const member = `blobs/sha256/${d.slice(7)}`;
    if (!src.has(member)) throw new ImageStoreError('BAD_ARCHIVE', `${what}: blob ${d} is missing`);
    return { member };
  }

  private ociSmall(src: ArchiveSource, desc: { digest?: unknown; size?: unknown }, what: string): Buffer {
    const { member } = this.ociBlob(src, desc, what);
    const bytes = src.readSmall(member);
    const got = 'sha256:' + sha256(bytes);
    if (got !== desc.digest) throw new ImageStoreError('DIGEST_MISMATCH', `${what}: blob ${desc.digest} hashes to ${got}`);
    if (typeof desc.size === 'number' && desc.size !== bytes.length) throw new ImageStoreError('DIGEST_MISMATCH', `${what}: blob ${desc.digest} is ${bytes.length} bytes, the descriptor says ${desc.size}`);
    return bytes;
  }

  private planOci(src: ArchiveSource, path: string): PlannedImage[] {
    type Desc = { mediaType?: string; digest?: string; size?: number; platform?: ImagePlatform; annotations?: Record<string, string> };
    const index = parseJson<{ manifests?: Desc[] }>(src.readSmall('index.json'), `${path}: index.json`);
    if (!Array.isArray(index.manifests)) throw new ImageStoreError('BAD_ARCHIVE', `${path}: index.json has no manifests`);
    const plans: PlannedImage[] = [];
    const addManifest = (desc: Desc, tagFrom: Desc, what: string) => {
      const mbytes = this.ociSmall(src, desc, what);
      const m = parseJson<{ config?: Desc; layers?: Desc[]; manifests?: Desc[]; mediaType?: string }>(mbytes, `${what}: manifest`);
      if (Array.isArray(m.manifests)) {
        // a nested index: the host platform's manifest
        const arch = hostArch();
        const hit = m.manifests.find((d) => d.platform?.os === 'linux' && d.platform.architecture === arch);
        if (!hit) {
          const have = m.manifests.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => `${d.platform!.os}/${d.platform!.architecture}`);
          throw new ImageStoreError('BAD_ARCHIVE', `${what}: no linux/${arch} image in the index (it has ${have.join(', ') || 'none'})`);
        }
        addManifest(hit, tagFrom, `${what} (linux/${arch})`);
        return;
      }
      if (!m.config || !Array.isArray(m.layers)) throw new ImageStoreError('BAD_ARCHIVE', `${what}: manifest lacks config or layers`);
      const configBytes = this.ociSmall(src, m.config, `${what}: config`);
      const diffIds = this.diffIdsOf(configBytes, m.layers.length, what);
      const layers = m.layers.map((l, i) => {
        const { member } = this.ociBlob(src, l, `${what}: layer ${i + 1}`);
        return { member, diffId: diffIds[i], blobDigest: String(l.digest), ...(typeof l.size === 'number' ? { blobSize: l.size } : {}) };
      });
      const a = tagFrom.annotations ?? {};
      const tags: string[] = [];
      const full = a['io.containerd.image.name'] ?? (a['org.opencontainers.image.ref.name']?.match(/[:/]/) ? a['org.opencontainers.image.ref.name'] : undefined);
      const nt = full ? normalizeTag(full) : undefined;
      if (full && !nt) throw new ImageStoreError('BAD_REF', `${what}: image name ${JSON.stringify(full)} is not a valid tag: ${tagError(full)}`);
      if (nt) tags.push(nt);
      plans.push({ configBytes, configDigest: String(m.config.digest), manifestDigest: String(desc.digest), tags, layers });
    };
    index.manifests.forEach((d, i) => {
      if (d.mediaType === MT_OCI_INDEX || d.mediaType === MT_DOCKER_LIST || d.platform?.os === 'unknown') {
        if (d.mediaType === MT_OCI_INDEX || d.mediaType === MT_DOCKER_LIST) addManifest(d, d, `${path}: index entry ${i + 1}`);
        return; // attestation manifests (unknown/unknown) are not images
      }
      addManifest(d, d, `${path}: index entry ${i + 1}`);
    });
    return plans;
  }

  // ---- registry pulls ------------------------------------------------------------------

  /** Whether a layer with this compressed (or uncompressed) digest is already unpacked. */
  hasBlob(digest: string): boolean {
    const idx = this.readIndex();
    const diffId = idx.blobs[digest] ?? (idx.layers[digest] ? digest : undefined);
    return !!diffId && existsSync(this.layerDir(diffId));
  }

  /**
   * Unpacks a layer blob the caller has verified against `digest` (the registry client does;
   * for zstd it hands over the decompressed tar). The diff_id is computed here and checked
   * against the config in putImage.
   */
  async putLayer(digest: string, blobPath: string, mediaType: string): Promise<void> {
    void mediaType; // compression is recognised from the bytes
    if (this.hasBlob(digest)) return;
    const staging = this.newStaging();
    try {
      const fd = openSync(blobPath, 'r');
      const head = Buffer.alloc(4);
      const n = readSync(fd, head, 0, 4, 0);
      closeSync(fd);
      const dir = join(staging, 'layer');
      const budget: ExtractBudget = { entries: this.limits.maxTotalEntries, bytes: this.limits.maxTotalBytes };
      const res = await this.unpack(createReadStream(blobPath), compressionOf(head.subarray(0, n)), dir, budget, `layer ${digest}`);
      this.lock.withLock(() => {
        const idx = this.readIndex();
        this.commitLayers(idx, new Map([[res.diffId, { dir, size: res.bytes, entries: res.entries }]]));
        idx.blobs[digest] = res.diffId;
        this.writeIndex(idx);
      });
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /**
   * Records a pulled image whose layers were stored with putLayer. `config` is best given as
   * its exact bytes (Buffer/string, verified against manifest.config.digest); a parsed object
   * is trusted to be what the caller verified.
   */
  putImage(manifest: unknown, config: unknown, tags: string[]): ResolvedImage {
    const m = manifest as { config?: { digest?: string }; layers?: Array<{ digest?: string }> };
    const cfgDigest = String(m?.config?.digest ?? '');
    if (!isDigest(cfgDigest) || !Array.isArray(m.layers)) throw new ImageStoreError('BAD_ARCHIVE', 'putImage: manifest lacks config or layers');
    let configBytes: Buffer;
    if (Buffer.isBuffer(config) || typeof config === 'string') {
      configBytes = Buffer.isBuffer(config) ? config : Buffer.from(config);
      const got = 'sha256:' + sha256(configBytes);
      if (got !== cfgDigest) throw new ImageStoreError('DIGEST_MISMATCH', `image config hashes to ${got}, the manifest says ${cfgDigest}`);
    } else {
      configBytes = Buffer.from(JSON.stringify(config));
    }
    const diffIds = this.diffIdsOf(configBytes, m.layers.length, `image ${shortDigest(cfgDigest)}`);
    const normTags = tags.map((t) => {
      const nt = normalizeTag(t);
      if (!nt) throw new ImageStoreError('BAD_REF', `${JSON.stringify(t)} is not a valid image name[:tag]`);
      return nt;
    });
    const mbytes = Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest));
    return this.lock.withLock(() => {
      const idx = this.readIndex();
      m.layers!.forEach((l, i) => {
        // an uncompressed layer blob is its own diff_id: a layer unpacked by another image counts (hasBlob)
        const have = idx.blobs[String(l.digest)] ?? (idx.layers[String(l.digest)] ? String(l.digest) : undefined);
        if (have !== diffIds[i]) {
          throw new ImageStoreError('DIGEST_MISMATCH', `image ${shortDigest(cfgDigest)} layer ${i + 1} (${l.digest}): ${have ? `unpacks to ${have}, the config's diff_id is ${diffIds[i]}` : 'not stored (putLayer first)'}`);
        }
      });
      const exact = Buffer.isBuffer(config) || typeof config === 'string';
      const plan: PlannedImage = {
        configBytes, configDigest: cfgDigest, manifestDigest: 'sha256:' + sha256(mbytes), tags: normTags,
        layers: m.layers!.map((l, i) => ({ member: '', diffId: diffIds[i], blobDigest: String(l.digest) })),
      };
      // a parsed config re-serialised would not hash to its digest: then it lives in the index only
      return this.commitImage(idx, plan, m.layers!.map((l) => String(l.digest)), new Date().toISOString(), 'registry', exact);
    });
  }

  // ---- removal -------------------------------------------------------------------------

  /**
   * Removes a tag, or an image. A tag of an image that has other tags is only untagged;
   * a digest (or the image's last tag) removes the image. Layers stay until prune().
   */
  remove(ref: string): { untagged: string[]; deleted: string | null } {
    return this.lock.withLock(() => {
      const idx = this.readIndex();
      const img = this.find(idx, ref);
      const tag = !isDigest(ref) ? normalizeTag(ref) : undefined;
      if (tag && img.refs.includes(tag) && img.refs.length > 1) {
        img.refs = img.refs.filter((r) => r !== tag);
        this.writeIndex(idx);
        return { untagged: [tag], deleted: null };
      }
      delete idx.images[img.digest];
      this.writeIndex(idx);
      rmSync(join(this.root, 'blobs', 'sha256', img.digest.slice(7)), { force: true });
      return { untagged: img.refs, deleted: img.digest };
    });
  }

  /**
   * Removes layers no image references, their blob mappings, and staging left by dead imports.
   * A layer a mounted overlay still reads (a running container whose image was removed, as docker
   * keeps an image's layers while a container uses them) stays, and is said in `inUse`.
   */
  prune(): { layers: string[]; bytes: number; staging: number; inUse: string[] } {
    return this.lock.withLock(() => {
      const idx = this.readIndex();
      const used = new Set(Object.values(idx.images).flatMap((i) => i.diffIds));
      const mounted = layersMounted(join(this.root, 'layers', 'sha256'));
      const inUse = [...mounted].filter((d) => !used.has(d)).sort();
      for (const d of mounted) used.add(d);
      const removed: string[] = [];
      let bytes = 0;
      for (const hex of readdirSync(join(this.root, 'layers', 'sha256'))) {
        const diffId = `sha256:${hex}`;
        if (HEX64.test(hex) && used.has(diffId)) continue;
        bytes += idx.layers[diffId]?.size ?? 0;
        rmSync(join(this.root, 'layers', 'sha256', hex), { recursive: true, force: true });
        delete idx.layers[diffId];
        removed.push(diffId);
      }
      for (const d of Object.keys(idx.layers)) if (!used.has(d)) delete idx.layers[d];
      for (const [b, d] of Object.entries(idx.blobs)) if (!used.has(d)) delete idx.blobs[b];
      const kept = new Set(Object.values(idx.images).flatMap((i) => [i.digest, ...(i.servedManifest ? [i.servedManifest] : []), ...(i.servedBlobs ?? [])]));
      for (const hex of readdirSync(join(this.root, 'blobs', 'sha256'))) {
        if (!kept.has(`sha256:${hex}`)) rmSync(join(this.root, 'blobs', 'sha256', hex), { force: true });
      }
      let staging = 0;
      for (const name of readdirSync(join(this.root, 'tmp'))) {
        const pid = parseInt(name, 10);
        if (pid === process.pid || (Number.isInteger(pid) && pidAlive(pid))) continue; // may be in progress
        rmSync(join(this.root, 'tmp', name), { recursive: true, force: true });
        staging++;
      }
      this.writeIndex(idx);
      return { layers: removed.sort(), bytes, staging, inUse };
    });
  }

  /** Bytes used on disk by an unpacked layer (du-like, for ls). */
  static diskUsage(dir: string): number {
    let total = 0;
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) total += statSync(p).size;
      }
    };
    walk(dir);
    return total;
  }
}

/**
 * The layers (diffIds) under `layersDir` that a mounted overlay reads, from this process's mount
 * table (the runtime's: where runs mount their root filesystems, and file-caps its views). Paths in
 * mountinfo escape space, tab, newline and backslash as octal.
 */
function layersMounted(layersDir: string): Set<string> {
  const found = new Set<string>();
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return found;
  }
  const esc = layersDir.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`) + '/';
  for (const line of info.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || !line.startsWith('overlay ', sep + 3)) continue;
    for (let at = line.indexOf(esc, sep); at >= 0; at = line.indexOf(esc, at + esc.length)) {
      const hex = line.slice(at + esc.length, at + esc.length + 64);
      if (HEX64.test(hex)) found.add(`sha256:${hex}`);
    }
  }
  return found;
}

/**
 * An archive may list the same image more than once (docker-archive manifest entries, OCI index
 * entries): each image is imported and recorded once, with the union of its tags.
 */
function samePlansOnce(plans: PlannedImage[]): PlannedImage[] {
  const byImage = new Map<string, PlannedImage>();
  for (const p of plans) {
    const key = `${p.configDigest} ${p.manifestDigest ?? ''} ${p.layers.map((l) => `${l.member}=${l.diffId}`).join(',')}`;
    const seen = byImage.get(key);
    if (!seen) byImage.set(key, { ...p, tags: [...new Set(p.tags)] });
    else for (const t of p.tags) if (!seen.tags.includes(t)) seen.tags.push(t);
  }
  return [...byImage.values()];
}

/**
 * Where another machine can fetch this image from: the registry repository of one of its tags
 * (a pulled image's tags are `host[:port]/repo:tag`), pinned by its manifest digest. Undefined for
 * an image that did not come from a registry (an archive: nothing to fetch it from).
 */
export function registrySourceOf(image: ResolvedImage): string | undefined {
  if (image.source !== 'registry' || !image.manifestDigest) return undefined;
  for (const tag of image.refs) {
    const slash = tag.indexOf('/');
    if (slash < 0) continue;
    const host = tag.slice(0, slash);
    // a registry host has a dot or a port, or is localhost (Docker's rule for the first component)
    if (!/[.:]/.test(host) && host !== 'localhost') continue;
    const repo = tag.slice(0, tag.lastIndexOf(':') > slash ? tag.lastIndexOf(':') : tag.length);
    return `${repo}@${image.manifestDigest}`;
  }
  return undefined;
}
