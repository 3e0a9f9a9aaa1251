/** Error codes of the image store; the CLI maps them to exit codes, the API to statuses. */
export type ImageErrorCode =
  | 'IMAGE_NOT_FOUND'      // no image has this tag, digest or prefix
  | 'AMBIGUOUS_REF'        // a digest prefix names more than one image
  | 'BAD_REF'              // not a tag, digest or prefix
  | 'BAD_ARCHIVE'          // not a docker-archive or OCI layout, or malformed JSON in it
  | 'DIGEST_MISMATCH'      // a blob, config or layer does not hash to the digest that names it
  | 'UNSAFE_LAYER'         // a layer entry breaks an extraction rule (see docs/images.md)
  | 'LIMIT_EXCEEDED'       // a size, entry-count or path-length limit
  | 'UNSUPPORTED'          // e.g. zstd layer without the zstd program, non-root whiteouts
  | 'LOCK_TIMEOUT'         // another process held the store lock too long
  | 'CONFLICT';            // a concurrent prune removed a layer this import relied on (retried)

export class ImageStoreError extends Error {
  constructor(readonly code: ImageErrorCode, message: string) {
    super(message);
    this.name = 'ImageStoreError';
  }
}

export class ImageNotFound extends ImageStoreError {
  constructor(readonly ref: string) {
    super('IMAGE_NOT_FOUND', `image not found: ${ref}`);
    this.name = 'ImageNotFound';
  }
}

/** The rule a hostile or malformed layer entry broke. */
export type UnsafeRule =
  | 'absolute-path' | 'dot-dot' | 'bad-name' | 'path-too-long' | 'too-deep'
  | 'symlink-in-path' | 'parent-not-directory'
  | 'hardlink-outside' | 'hardlink-through-symlink' | 'hardlink-to-symlink' | 'hardlink-missing-target' | 'hardlink-not-file'
  | 'bad-whiteout' | 'bad-tar' | 'unsupported-entry'
  | 'too-many-entries' | 'too-large';

/** Thrown by the extractor; the store wraps it with which image and layer. */
export class UnsafeEntryError extends ImageStoreError {
  constructor(readonly rule: UnsafeRule, readonly entry: string, detail: string) {
    super(rule === 'too-many-entries' || rule === 'too-large' ? 'LIMIT_EXCEEDED' : 'UNSAFE_LAYER', `entry ${JSON.stringify(entry)}: rule ${rule}: ${detail}`);
    this.name = 'UnsafeEntryError';
  }
}
