import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { load, PARSE_LIMITS, type LoadResult } from '@capulator/policy';
import { fsErrorText } from '@capulator/host';

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
    throw new PolicyFileError(fsErrorText(e), code);
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
    throw new PolicyFileError(fsErrorText(e));
  } finally {
    closeSync(fd);
  }
}

/** Loads a policy file; includes resolve relative to the including file and are read as bounded as the file itself. */
export function loadPolicyFileText(path: string, text: string): LoadResult {
  return loadWithIncludes(path, text).result;
}

function loadWithIncludes(path: string, text: string): { result: LoadResult; includes: Array<{ file: string; text: string | undefined }> } {
  const includes: Array<{ file: string; text: string | undefined }> = [];
  const result = load(text, path, (inc, from) => {
    const p = resolvePath(dirname(from), inc);
    try {
      const t = readPolicyFile(p);
      includes.push({ file: p, text: t });
      return { file: p, text: t };
    } catch (e) {
      if (e instanceof PolicyFileError && e.code === 'ENOENT') {
        includes.push({ file: p, text: undefined });
        return undefined;
      }
      throw e;
    }
  });
  return { result, includes };
}

/** Policies a long-lived process loaded, by path: the text and what its includes held then. */
const loadedPolicies = new Map<string, { text: string; includes: Array<{ file: string; text: string | undefined }>; result: LoadResult }>();
const LOADED_POLICIES_MAX = 64;

/**
 * loadPolicyFileText for a process that loads the same files again and again (`capulator serve`
 * running `capulator run`s): the result of the last load of `path` is reused while the file and
 * every file it includes hold the same text (each is read again; the YAML parse, ~2–5 ms, is
 * what is saved). The result is shared: callers must not change it.
 */
export function loadPolicyFileTextCached(path: string, text: string): LoadResult {
  const hit = loadedPolicies.get(path);
  if (hit && hit.text === text && hit.includes.every((i) => readOrUndefined(i.file) === i.text)) return hit.result;
  const { result, includes } = loadWithIncludes(path, text);
  if (!loadedPolicies.has(path) && loadedPolicies.size >= LOADED_POLICIES_MAX) loadedPolicies.delete(loadedPolicies.keys().next().value as string);
  loadedPolicies.set(path, { text, includes, result });
  return result;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readPolicyFile(file);
  } catch {
    return undefined;
  }
}
