import { Platform } from './platform';
import { RegistryError } from './registry.errors';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** What a pull asks the manifests endpoint for, most specific last does not matter: the registry picks. */
export const MANIFEST_ACCEPT = [MT.ociIndex, MT.dockerList, MT.ociManifest, MT.dockerManifest];

export interface Descriptor { mediaType: string; digest: string; size: number; platform?: Platform; urls?: string[]; annotations?: Record<string, string> }
export interface ImageManifest { schemaVersion: 2; mediaType?: string; config: Descriptor; layers: Descriptor[]; annotations?: Record<string, string> }
export interface ImageIndex { schemaVersion: 2; mediaType?: string; manifests: Descriptor[] }

const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export type LayerCompression = 'none' | 'gzip' | 'zstd';

export function layerCompression(mediaType: string): LayerCompression {
  if (/zstd$/.test(mediaType)) return 'zstd';
  if (/gzip$/.test(mediaType)) return 'gzip';
  return 'none';
}

export function isIndex(mediaType: string): boolean {
  return mediaType === MT.ociIndex || mediaType === MT.dockerList;
}

/** Parses and checks a manifest body as an index or an image manifest. */
export function parseManifest(body: Buffer, mediaType: string, what: string): { kind: 'index'; index: ImageIndex } | { kind: 'image'; manifest: ImageManifest } {
  if (mediaType === MT.dockerSchema1 || mediaType === MT.dockerSchema1Signed) {
    throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `${what} is a Docker schema 1 manifest, which capulator does not pull (push it again with a current client)`);
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError('BAD_MANIFEST', `${what}: manifest is not JSON`);
  }
  const mt = (j.mediaType as string | undefined) ?? mediaType;
  if (isIndex(mt) || (Array.isArray(j.manifests) && !j.layers)) {
    if (!Array.isArray(j.manifests)) throw new RegistryError('BAD_MANIFEST', `${what}: index without manifests`);
    for (const d of j.manifests as Descriptor[]) checkDescriptor(d, what);
    return { kind: 'index', index: j as unknown as ImageIndex };
  }
  if (mt === MT.ociManifest || mt === MT.dockerManifest || (j.config && Array.isArray(j.layers))) {
    const m = j as unknown as ImageManifest;
    if (j.schemaVersion !== 2) throw new RegistryError('BAD_MANIFEST', `${what}: schemaVersion ${String(j.schemaVersion)}, want 2`);
    checkDescriptor(m.config, what);
    if (!Array.isArray(m.layers)) throw new RegistryError('BAD_MANIFEST', `${what}: manifest without layers`);
    for (const l of m.layers) {
      checkDescriptor(l, what);
      if (!LAYER_TYPES.has(l.mediaType)) throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `${what}: layer ${l.digest} has media type ${l.mediaType}, which is not an image layer`);
    }
    return { kind: 'image', manifest: m };
  }
  throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `${what}: unsupported manifest media type ${mt || '(none)'}`);
}

function checkDescriptor(d: Descriptor, what: string): void {
  if (!d || typeof d.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest) || typeof d.size !== 'number' || d.size < 0 || !Number.isSafeInteger(d.size)) {
    throw new RegistryError('BAD_MANIFEST', `${what}: bad descriptor ${JSON.stringify(d)?.slice(0, 120)}`);
  }
}
