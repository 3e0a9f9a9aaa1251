/** What the audit record's storage said, in strerror(3) words; undefined when the error is not a storage failure. */
export function storageErrorText(e: unknown): string | undefined {
  const err = e as { code?: unknown; message?: unknown } | undefined;
  const code = typeof err?.code === 'string' ? err.code : '';
  if (code === 'ENOSPC' || code === 'SQLITE_FULL') return 'No space left on device';
  if (code === 'EDQUOT') return 'Disk quota exceeded';
  if (code === 'EROFS' || code === 'SQLITE_READONLY' || code.startsWith('SQLITE_READONLY_')) return 'Read-only file system';
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') return typeof err?.message === 'string' ? err.message : 'cannot open the database file';
  if (code === 'EIO' || code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR_') || code === 'SQLITE_CORRUPT') return 'Input/output error';
  return undefined;
}

/** The one-line reason of a run stopped because its record could not be written. */
export function auditFailureReason(text: string, stopped = true): string {
  return `the audit record cannot be written (${text})${stopped ? '; container stopped' : ''}`;
}

/** Exit status of a command other than `run` when the store cannot be written or read (EX_IOERR). */
export const STORAGE_FAILED_EXIT = 74;
