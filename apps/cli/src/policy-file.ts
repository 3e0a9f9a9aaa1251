import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { load, PARSE_LIMITS, type LoadResult } from '@capulator/policy';

/** A policy file that cannot be read as one: the message names the file, never its contents. */
export class PolicyFileError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads a policy (or included) file, bounded: only a regular file (opened non-blocking, so a FIFO
 * cannot stall us, then checked with fstat), at most PARSE_LIMITS.maxBytes, valid UTF-8.
 */
export function readPolicyFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PolicyFileError(code === 'ENOENT' ? 'ENOENT: no such file' : code === 'EACCES' ? 'EACCES: permission denied' : `cannot open (${code ?? (e as Error).message})`, code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new PolicyFileError(`${kindOf(st)}, not a regular file`);
    const max = PARSE_LIMITS.maxBytes;
    if (st.size > max) throw new PolicyFileError(`${st.size} bytes; a policy is at most ${max} (1 MiB)`);
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > max) throw new PolicyFileError(`more than ${max} bytes; a policy is at most 1 MiB`);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n));
    } catch {
      throw new PolicyFileError('not UTF-8 text');
    }
  } catch (e) {
    if (e instanceof PolicyFileError) throw e;
    throw new PolicyFileError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** Loads a policy file; includes resolve relative to the including file and are read as bounded as the file itself. */
export function loadPolicyFileText(path: string, text: string): LoadResult {
  return load(text, path, (inc, from) => {
    const p = resolvePath(dirname(from), inc);
    try {
      return { file: p, text: readPolicyFile(p) };
    } catch (e) {
      if (e instanceof PolicyFileError && e.code === 'ENOENT') return undefined;
      throw e;
    }
  });
}
