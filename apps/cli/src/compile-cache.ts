/**
 * A V8 code cache for the CLI's own modules (Node 20 has no module.enableCompileCache): each
 * process would otherwise parse and compile ~1 MB of JavaScript (181 modules for `capulator run`)
 * before doing anything. Modules under the repository are compiled with the code V8 produced for
 * them in an earlier process, kept in one file beside the built code (dist/.compile-cache/).
 *
 * An entry is used only for the same source text (sha1 of it) and the same Node version; V8 checks
 * the data itself too and rejects what does not fit, and a rejected entry is simply rebuilt. The
 * cache lives in dist/, as writable as the code it caches, and is used only if this user owns its
 * directory and nobody else may write there: a cache others could write would be code they chose.
 * Anything that goes wrong (no permission, a torn file) just means compiling as before.
 */
import * as crypto from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join, sep } from 'node:path';
import { Script } from 'node:vm';

/** sha1 in hex; one-shot where Node has it (>= 20.12): ~1 ms less than a Hash object over the 1.6 MB bundle. */
const oneShot = (crypto as unknown as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
const sha1 = (text: string): string => (oneShot ? oneShot('sha1', text, 'hex') : crypto.createHash('sha1').update(text).digest('hex'));

interface Entry {
  hash: string;
  data: Buffer;
}

const MAGIC = 'capulator-compile-cache 1 ';
/** Past this, the cache is rebuilt from what this process loaded rather than growing further. */
const MAX_ENTRIES = 2000;

type Compile = (this: NodeModule, content: string, filename: string, format?: string) => unknown;
interface ModuleInternals {
  prototype: { _compile: Compile };
  wrap(content: string): string;
  _resolveFilename(request: string, parent: NodeModule, isMain: boolean, options?: { paths?: string[] }): string;
  _extensions: NodeJS.RequireExtensions;
  _cache: NodeJS.Dict<NodeModule>;
}

/** What the cache did in this process: modules compiled from cached code, and compiled anew. */
export interface CompileCacheStats {
  hits: number;
  misses: number;
}

/**
 * Installs the cache for modules under `root` (the repository); undefined when it cannot be used.
 * `name`: the cache file in `dir` (`NAME.bin`): a process that loads few files (the CLI's bundle)
 * reads a file of its own rather than the one every module's code is in.
 */
export function installCompileCache(root: string, dir = join(root, 'dist', '.compile-cache'), name = 'modules'): CompileCacheStats | undefined {
  if (!usableDir(dir) || !/^[a-z]+$/.test(name)) return undefined;
  const stats: CompileCacheStats = { hits: 0, misses: 0 };
  const file = join(dir, `${name}.bin`);
  const header = `${MAGIC}${process.version} ${process.arch}\n`;
  const entries = load(file, header);
  const fresh = new Map<string, { hash: string; script: Script }>();
  const M = Module as unknown as ModuleInternals;
  const original = M.prototype._compile;
  const prefix = root.endsWith(sep) ? root : root + sep;

  M.prototype._compile = function (this: NodeModule, content: string, filename: string, format?: string): unknown {
    // CommonJS only: an ES module reached by require() (Node 20.19 loads .mjs so) goes its own way,
    // and import() needs the loader's own callback, which a vm.Script does not carry
    if (!filename.startsWith(prefix) || (format !== undefined && format !== 'commonjs') || !/\.c?js$/.test(filename) || content.includes('import(')) {
      return original.call(this, content, filename, format);
    }
    const hash = sha1(content);
    const hit = entries.get(filename);
    const cachedData = hit && hit.hash === hash ? hit.data : undefined;
    const script = new Script(M.wrap(content), { filename, cachedData });
    if (cachedData === undefined || script.cachedDataRejected) {
      fresh.set(filename, { hash, script });
      stats.misses++;
    } else stats.hits++;
    const fn = script.runInThisContext({ displayErrors: true }) as (...a: unknown[]) => unknown;
    const mod = this;
    const req = ((id: string) => mod.require(id)) as NodeJS.Require;
    req.resolve = ((request: string, options?: { paths?: string[] }) => M._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
    req.main = require.main;
    req.extensions = M._extensions;
    req.cache = M._cache;
    return fn.call(mod.exports, mod.exports, req, mod, filename, dirname(filename));
  };

  process.once('exit', () => {
    if (fresh.size === 0) return;
    // made at exit, so the functions this run compiled lazily are in it too
    for (const [filename, f] of fresh) {
      try {
        entries.set(filename, { hash: f.hash, data: f.script.createCachedData() });
      } catch {
        entries.delete(filename);
      }
    }
    if (entries.size > MAX_ENTRIES) for (const k of [...entries.keys()].slice(0, entries.size - MAX_ENTRIES)) entries.delete(k);
    save(file, header, entries);
  });
  return stats;
}

function usableDir(dir: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return false;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The file: the header line, a JSON index line ([filename, hash, length] in order), then the data back to back. */
function load(file: string, header: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  let buf: Buffer;
  try {
    // checked and read through one descriptor: the file read is the file checked
    const fd = openSync(file, 'r');
    try {
      const st = fstatSync(fd);
      if (st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) return entries;
      buf = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    return entries;
  }
  try {
    if (buf.toString('latin1', 0, header.length) !== header) return entries;
    const nl = buf.indexOf(10, header.length);
    if (nl < 0) return entries;
    const index = JSON.parse(buf.toString('utf8', header.length, nl)) as Array<[string, string, number]>;
    let off = nl + 1;
    for (const [filename, hash, len] of index) {
      if (off + len > buf.length) return new Map();
      entries.set(filename, { hash, data: buf.subarray(off, off + len) });
      off += len;
    }
  } catch {
    return new Map();
  }
  return entries;
}

function save(file: string, header: string, entries: Map<string, Entry>): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const index = [...entries].map(([filename, e]) => [filename, e.hash, e.data.length]);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, header + JSON.stringify(index) + '\n');
      for (const e of entries.values()) writeSync(fd, e.data);
    } finally {
      closeSync(fd);
    }
    // whole or not at all, whoever else writes it at the same time
    renameSync(tmp, file);
  } catch {
    /* not written: the next process compiles as this one did */
  }
}
