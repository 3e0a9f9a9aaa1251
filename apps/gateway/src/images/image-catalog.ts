/** What the gateway shows of an image (ResolvedImage without host paths). */
export interface ImageView {
  digest: string;
  refs: string[];
  platform: { os: string; architecture: string; variant?: string };
  layers: number;
}

/** The image store behind /v1/images; the adapter knows apps/runtime's ImageStore and pullImage. */
export interface ImageCatalog {
  importArchive(path: string, opts: { tag?: string }): Promise<ImageView[]>;
  list(): ImageView[];
  pull(ref: string, opts: { platform?: string }): Promise<ImageView>;
  /** Where another machine fetches the image `ref` names: its registry repository pinned by manifest digest, and its config digest; undefined when it did not come from a registry or is not here. */
  sourceOf(ref: string): { ref: string; digest: string } | undefined;
  /**
   * The address (`host:port`) at which this gateway serves its images (GET /v2/…), named in the
   * runs of images that came from an archive so that a worker lacking them fetches them here.
   */
  serveAt?(address: string): void;
  /** A blob served at /v2/ (docs/images.md "Serving"): a manifest made for an archive import, an image config or a layer blob it names. */
  servedBlob?(digest: string): { path: string; size: number; manifest: boolean } | undefined;
}

/** The repository name under which a gateway serves its images (`host:port/capulator/images@sha256:…`). */
export const SERVED_REPOSITORY = 'capulator/images';
