import { join } from 'node:path';
import { ImageStore, ImageStoreError, registrySourceOf, type ResolvedImage } from '../../../runtime/src/images';
import { parsePlatform, pullImage, RegistryError } from '../../../runtime/src/registry';
import { DomainError, DomainErrorCode } from '../errors/domain.error';
import { SERVED_REPOSITORY, type ImageCatalog, type ImageView } from '../images/image-catalog';

const IMAGE_CODES: Record<string, DomainErrorCode> = {
  IMAGE_NOT_FOUND: 'not_found',
  AMBIGUOUS_REF: 'validation_failed',
  BAD_REF: 'validation_failed',
  BAD_ARCHIVE: 'unprocessable',
  DIGEST_MISMATCH: 'unprocessable',
  UNSAFE_LAYER: 'unprocessable',
  UNSUPPORTED: 'unprocessable',
  LIMIT_EXCEEDED: 'payload_too_large',
  LOCK_TIMEOUT: 'unavailable',
};

const REGISTRY_CODES: Record<string, DomainErrorCode> = {
  BAD_REFERENCE: 'validation_failed',
  BAD_PLATFORM: 'validation_failed',
  NO_MATCHING_PLATFORM: 'not_found',
  MANIFEST_UNKNOWN: 'not_found',
  BLOB_UNKNOWN: 'upstream_failed',
  UNAUTHORIZED: 'upstream_failed',
  DENIED: 'upstream_failed',
  DIGEST_MISMATCH: 'upstream_failed',
  SIZE_MISMATCH: 'upstream_failed',
  UNSUPPORTED_MEDIA_TYPE: 'unprocessable',
  BAD_MANIFEST: 'upstream_failed',
  HTTP_ERROR: 'upstream_failed',
  NETWORK: 'upstream_failed',
  TLS: 'upstream_failed',
  LOCK_TIMEOUT: 'unavailable',
};

/** Store and registry errors become domain errors here, once. */
export function imageDomainError(err: unknown): unknown {
  if (err instanceof ImageStoreError) return new DomainError(IMAGE_CODES[err.code] ?? 'internal', err.message, { imageError: err.code });
  if (err instanceof RegistryError) return new DomainError(REGISTRY_CODES[err.code] ?? 'upstream_failed', err.message, { registryError: err.code });
  return err;
}

export function toImageView(i: ResolvedImage): ImageView {
  return { digest: i.digest, refs: i.refs, platform: i.platform, layers: i.layers.length };
}

/** apps/runtime's ImageStore and pullImage behind the ImageCatalog port. */
export class RuntimeImageCatalog implements ImageCatalog {
  private readonly store: ImageStore;

  constructor(private readonly home: string) {
    this.store = new ImageStore(join(home, 'images'));
  }

  async importArchive(path: string, opts: { tag?: string }): Promise<ImageView[]> {
    try {
      return (await this.store.importArchive(path, opts)).map(toImageView);
    } catch (err) {
      throw imageDomainError(err);
    }
  }

  list(): ImageView[] {
    return this.store.list().map(toImageView);
  }

  sourceOf(ref: string): { ref: string; digest: string } | undefined {
    let image: ResolvedImage;
    try {
      image = this.store.resolve(ref);
    } catch {
      return undefined; // not here: the worker must have it (or the run fails at its image stage)
    }
    const src = registrySourceOf(image);
    if (src) return { ref: src, digest: image.digest };
    // from an archive: this gateway serves it (GET /v2/capulator/images/…)
    if (image.servedManifest && this.servedAt) return { ref: `${this.servedAt}/${SERVED_REPOSITORY}@${image.servedManifest}`, digest: image.digest };
    return undefined;
  }

  private servedAt: string | undefined;

  serveAt(address: string): void {
    this.servedAt = address;
  }

  servedBlob(digest: string): { path: string; size: number; manifest: boolean } | undefined {
    return this.store.servedBlob(digest);
  }

  async pull(ref: string, opts: { platform?: string }): Promise<ImageView> {
    try {
      const image = await pullImage(this.store, ref, {
        ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}),
        stagingDir: join(this.home, 'pull-staging'),
      });
      return toImageView(image);
    } catch (err) {
      throw imageDomainError(err);
    }
  }
}
