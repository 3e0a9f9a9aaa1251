export type RegistryErrorCode =
  | 'BAD_REFERENCE'
  | 'BAD_PLATFORM'
  | 'NO_MATCHING_PLATFORM'
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BAD_MANIFEST'
  | 'HTTP_ERROR'
  | 'NETWORK'
  | 'TLS'
  | 'LOCK_TIMEOUT';

/** Every failure of a registry pull: a stable `code` and a one-line message. */
export class RegistryError extends Error {
  constructor(readonly code: RegistryErrorCode, message: string, readonly status?: number) {
    super(message);
    this.name = 'RegistryError';
  }
}
