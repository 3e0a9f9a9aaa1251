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
}
