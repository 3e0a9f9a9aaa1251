import {
  closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, rmSync, symlinkSync, chmodSync, utimesSync, writeSync, Stats,
} from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { spawnSync } from 'node:child_process';
import { createHash, Hash } from 'node:crypto';
import * as tar from 'tar-stream';
import { ImageStoreError, UnsafeEntryError, UnsafeRule } from './image.errors';

/**
 * Extraction of one layer tar into a private staging directory, treating the tar as hostile.
 * The rules (docs/images.md has the user-facing version):
 *  - names: no NUL, not absolute, no `..` component; `.` components and trailing `/` dropped;
 *    total path ≤ maxPathBytes, each component ≤ 255 bytes, depth ≤ maxDepth;
 *  - every parent component is checked with lstat: a symlink in the path of an entry is refused
 *    (nothing is ever written "through" a link), a non-directory parent is refused, a missing
 *    one is created 0755 root:root;
 *  - an entry replaces whatever is at its path (removed first, never followed; files are opened
 *    O_CREAT|O_EXCL|O_NOFOLLOW); a directory entry over an existing directory only updates it;
 *  - hard links: the target is a path inside this layer, resolved like a name (no symlink in
 *    its path), and must already be a regular file;
 *  - symlinks are created as they are (their target is never followed while extracting);
 *  - device nodes are skipped with a warning, except a character device 0/0 (an overlay
 *    whiteout, as some exporters write them); FIFOs are skipped with a warning;
 *  - GNU sparse files (type 'S', or PAX `GNU.sparse.*` records) and entry types tar does not
 *    define (multi-volume, dumpdir, vendor types) refuse the layer (rule unsupported-entry), as
 *    containerd and Docker refuse types they do not handle: their data cannot be read as a file;
 *  - `.wh.NAME` becomes an overlay whiteout (char device 0/0) for NAME; `.wh..wh..opq` marks its
 *    directory opaque (xattr trusted.overlay.opaque=y); other `.wh..wh.*` names are skipped;
 *  - owners, permission bits (set-id and sticky bits included) and mtimes are kept;
 *    extended attributes in the tar (PAX SCHILY.xattr.*) are not applied;
 *  - limits: entries and uncompressed bytes per layer and across the import.
 */

export interface ExtractLimits {
  /** entries (headers) in one layer */
  maxEntries: number;
  /** uncompressed bytes of one layer tar */
  maxBytes: number;
  /** bytes in one path (name or hard-link target) */
  maxPathBytes: number;
  /** path components */
  maxDepth: number;
}

/** What is left for the whole import; decremented as layers are read. */
export interface ExtractBudget {
  entries: number;
  bytes: number;
}

export const DEFAULT_LIMITS: ExtractLimits = {
  maxEntries: 500_000,
  maxBytes: 16 * 1024 ** 3,
  maxPathBytes: 4096,
  maxDepth: 256,
};

export interface ExtractResult {
  /** sha256:… of the uncompressed tar stream (the diff_id) */
  diffId: string;
  entries: number;
  /** uncompressed tar bytes */
  bytes: number;
  /** bytes of regular file contents written */
  fileBytes: number;
  whiteouts: number;
  opaqueDirs: number;
  warnings: string[];
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** Recognises gzip and zstd by their magic bytes; anything else is taken as a plain tar. */
export function compressionOf(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export type NameCheck = { ok: true; parts: string[] } | { ok: false; rule: UnsafeRule; detail: string };

/** Validates and splits an entry name (or hard-link target) per the rules above. Pure. */
export function checkEntryName(name: string, limits: Pick<ExtractLimits, 'maxPathBytes' | 'maxDepth'> = DEFAULT_LIMITS): NameCheck {
  if (name.includes('\0')) return { ok: false, rule: 'bad-name', detail: 'contains a NUL byte' };
  if (Buffer.byteLength(name) > limits.maxPathBytes) return { ok: false, rule: 'path-too-long', detail: `longer than ${limits.maxPathBytes} bytes` };
  if (name.startsWith('/')) return { ok: false, rule: 'absolute-path', detail: 'absolute paths are not allowed in a layer' };
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { ok: false, rule: 'dot-dot', detail: 'a ".." component would leave the layer' };
  if (parts.length > limits.maxDepth) return { ok: false, rule: 'too-deep', detail: `more than ${limits.maxDepth} components` };
  for (const p of parts) {
    if (Buffer.byteLength(p) > 255) return { ok: false, rule: 'path-too-long', detail: 'a component is longer than 255 bytes' };
  }
  return { ok: true, parts };
}

interface TarEntry extends AsyncIterable<Buffer> {
  header: tar.Header;
  offset: number;
}

interface DeferredDir {
  rel: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

const O_CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** A counting, hashing, limit-enforcing pass-through for the uncompressed tar stream. */
class TarMeter extends Writable {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly maxBytes: number, private readonly forward: (chunk: Buffer, cb: (err?: Error | null) => void) => void, private readonly onEnd: () => void) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      cb(new UnsafeEntryError('too-large', '(stream)', `the uncompressed layer is larger than the limit of ${this.maxBytes} bytes`));
      return;
    }
    this.hash.update(chunk);
    this.forward(chunk, cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.onEnd();
    cb();
  }
}

/** Opens the uncompressed tar stream of a layer blob (gzip via zlib, zstd via the zstd program). */
export function openLayerStream(blob: Readable, compression: Compression): { stream: Readable; done: () => Promise<void> } {
  if (compression === 'gzip') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const zlib = require('node:zlib') as typeof import('node:zlib');
    const gunzip = zlib.createGunzip();
    blob.on('error', (e) => gunzip.destroy(e));
    return { stream: blob.pipe(gunzip), done: async () => undefined };
  }
  if (compression === 'zstd') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new ImageStoreError('UNSUPPORTED', 'this layer is zstd-compressed and the `zstd` program is not installed (apt-get install zstd)') : err));
      child.on('close', (code) => (code === 0 ? resolve() : reject(new ImageStoreError('BAD_ARCHIVE', `zstd could not decompress the layer: ${stderr.trim() || `exit ${code}`}`))));
    });
    exited.catch(() => undefined);
    blob.on('error', (e) => child.stdout.destroy(e));
    child.stdin.on('error', () => undefined); // EPIPE when we stop early
    blob.pipe(child.stdin);
    return { stream: child.stdout, done: () => exited };
  }
  return { stream: blob, done: async () => undefined };
}

/**
 * Extracts the tar read from `input` (already decompressed) into `target` (an existing,
 * empty, private directory). Throws UnsafeEntryError on the first broken rule; the caller
 * removes `target` then.
 */
export async function extractLayer(input: Readable, target: string, opts: { limits?: ExtractLimits; budget?: ExtractBudget } = {}): Promise<ExtractResult> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const budget = opts.budget ?? { entries: Number.MAX_SAFE_INTEGER, bytes: Number.MAX_SAFE_INTEGER };
  const maxBytes = Math.min(limits.maxBytes, budget.bytes);
  const maxEntries = Math.min(limits.maxEntries, budget.entries);
  const ex = new LayerWriter(target, limits);
  const extract = tar.extract();
  const meter = new TarMeter(
    maxBytes,
    (chunk, cb) => {
      if (extract.write(chunk)) cb();
      else extract.once('drain', () => cb());
    },
    () => extract.end(undefined as never),
  );
  let failure: unknown;
  const consumer = (async () => {
    try {
      for await (const entry of extract) {
        if (++ex.entries > maxEntries) {
          throw new UnsafeEntryError('too-many-entries', entry.header.name, `more than ${maxEntries} entries in the layer`);
        }
        await ex.entry(entry as unknown as TarEntry);
      }
    } catch (err) {
      failure ??= err;
      meter.destroy(err as Error);
      input.destroy();
    }
  })();
  try {
    await pipeline(input, meter);
  } catch (err) {
    failure ??= err;
    extract.destroy(err as Error);
  }
  await consumer;
  if (failure) {
    if (failure instanceof ImageStoreError) throw failure;
    throw new UnsafeEntryError('bad-tar', ex.current ?? '(header)', `not a valid tar stream: ${(failure as Error).message}`);
  }
  ex.finish();
  budget.entries -= ex.entries;
  budget.bytes -= meter.bytes;
  return {
    diffId: 'sha256:' + meter.hash.digest('hex'),
    entries: ex.entries,
    bytes: meter.bytes,
    fileBytes: ex.fileBytes,
    whiteouts: ex.whiteoutCount,
    opaqueDirs: ex.opaqueCount,
    warnings: ex.warnings,
  };
}

class LayerWriter {
  entries = 0;
  fileBytes = 0;
  whiteoutCount = 0;
  opaqueCount = 0;
  current: string | undefined;
  readonly warnings: string[] = [];
  /** relative paths known to be real directories (no symlink on the way) */
  private readonly dirs = new Set<string>(['']);
  private readonly deferredDirs = new Map<string, DeferredDir>();
  private readonly whiteouts = new Set<string>();
  private readonly opaques = new Set<string>();

  constructor(private readonly root: string, private readonly limits: ExtractLimits) {}

  private fail(rule: UnsafeRule, detail: string): never {
    throw new UnsafeEntryError(rule, this.current ?? '', detail);
  }

  private warn(msg: string): void {
    if (this.warnings.length < 100) this.warnings.push(`entry ${JSON.stringify(this.current)}: ${msg}`);
    else if (this.warnings.length === 100) this.warnings.push('(more warnings not shown)');
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Makes sure every component of `parts` is a real directory, creating missing ones. */
  private ensureDirs(parts: string[], ruleForSymlink: UnsafeRule = 'symlink-in-path'): void {
    let rel = '';
    for (const part of parts) {
      rel = rel === '' ? part : `${rel}/${part}`;
      if (this.dirs.has(rel)) continue;
      const st = lstatOrNull(this.abs(rel));
      if (st === null) {
        mkdirSync(this.abs(rel), { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        this.fail(ruleForSymlink, `"${rel}" is a symlink; nothing is written through a link`);
      } else if (!st.isDirectory()) {
        this.fail('parent-not-directory', `"${rel}" is not a directory`);
      }
      this.dirs.add(rel);
    }
  }

  /** Removes whatever is at `rel` (never following links) and forgets it as a directory. */
  private removeExisting(rel: string, st: Stats): void {
    if (st.isDirectory()) rmSync(this.abs(rel), { recursive: true, force: true });
    else rmSync(this.abs(rel), { force: true });
    this.forget(rel);
  }

  private forget(rel: string): void {
    this.dirs.delete(rel);
    const prefix = rel + '/';
    for (const d of this.dirs) if (d.startsWith(prefix)) this.dirs.delete(d);
    for (const d of this.deferredDirs.keys()) if (d === rel || d.startsWith(prefix)) this.deferredDirs.delete(d);
    for (const d of this.opaques) if (d === rel || d.startsWith(prefix)) this.opaques.delete(d);
  }

  private name(name: string): string[] {
    const c = checkEntryName(name, this.limits);
    if (!c.ok) this.fail(c.rule, c.detail);
    return c.parts;
  }

  async entry(entry: TarEntry): Promise<void> {
    const h = entry.header;
    this.current = h.name;
    const parts = this.name(h.name);
    const rel = parts.join('/');
    const base = parts[parts.length - 1] ?? '';
    const parentParts = parts.slice(0, -1);
    const mode = (h.mode ?? 0o644) & 0o7777;
    const uid = h.uid ?? 0;
    const gid = h.gid ?? 0;
    const mtime = h.mtime ?? new Date(0);

    if (h.pax && Object.keys(h.pax).some((k) => k.startsWith('GNU.sparse.'))) {
      this.fail('unsupported-entry', 'a GNU sparse file (PAX GNU.sparse.* records): sparse entries are not extracted; write the layer without --sparse');
    }
    if (base.startsWith('.wh.') && h.type !== 'directory') {
      await drain(entry);
      this.ensureDirs(parentParts);
      const parentRel = parentParts.join('/');
      if (base === '.wh..wh..opq') {
        this.opaques.add(parentRel);
        return;
      }
      if (base.startsWith('.wh..wh.')) {
        this.warn('an aufs metadata entry, skipped');
        return;
      }
      const victim = base.slice(4);
      if (victim === '' || victim === '.' || victim === '..') this.fail('bad-whiteout', 'a whiteout must name a file');
      this.whiteout(parentRel === '' ? victim : `${parentRel}/${victim}`);
      return;
    }
    if (parts.length === 0) {
      // the layer's root directory ("./"): nothing to create; its attributes come from the run
      await drain(entry);
      return;
    }
    // a later entry at a path cancels an earlier whiteout of it
    this.whiteouts.delete(rel);

    switch (h.type) {
      case 'directory': {
        await drain(entry);
        this.ensureDirs(parentParts);
        const st = lstatOrNull(this.abs(rel));
        if (st && !st.isDirectory()) this.removeExisting(rel, st);
        if (!st || !st.isDirectory()) mkdirSync(this.abs(rel), { mode: 0o700 });
        this.dirs.add(rel);
        this.deferredDirs.set(rel, { rel, mode, uid, gid, mtime });
        return;
      }
      case 'file':
      case 'contiguous-file': {
        this.ensureDirs(parentParts);
        const st = lstatOrNull(this.abs(rel));
        if (st) this.removeExisting(rel, st);
        const fd = openSync(this.abs(rel), O_CREATE_FILE, 0o600);
        try {
          let pos = 0;
          for await (const chunk of entry as AsyncIterable<Buffer>) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off, pos + off);
            pos += chunk.length;
          }
          this.fileBytes += pos;
          fchownSync(fd, uid, gid);
          fchmodSync(fd, mode); // after chown, which clears set-id bits
          futimesSync(fd, mtime, mtime);
        } finally {
          closeSync(fd);
        }
        return;
      }
      case 'symlink': {
        await drain(entry);
        const target = h.linkname ?? '';
        if (target === '' || target.includes('\0') || Buffer.byteLength(target) > this.limits.maxPathBytes) this.fail('bad-name', 'bad symlink target');
        this.ensureDirs(parentParts);
        const st = lstatOrNull(this.abs(rel));
        if (st) this.removeExisting(rel, st);
        symlinkSync(target, this.abs(rel));
        lchownSync(this.abs(rel), uid, gid);
        lutimesSync(this.abs(rel), mtime, mtime);
        return;
      }
      case 'link': {
        await drain(entry);
        const c = checkEntryName(h.linkname ?? '', this.limits);
        if (!c.ok) {
          const outside = c.rule === 'absolute-path' || c.rule === 'dot-dot';
          this.fail(outside ? 'hardlink-outside' : c.rule, `hard link target ${JSON.stringify(h.linkname)}: ${c.detail}`);
        }
        if (c.parts.length === 0) this.fail('hardlink-not-file', 'a hard link to the layer root');
        const targetRel = c.parts.join('/');
        if (targetRel === rel) return;
        // the target's parents must be real directories already present (no symlinks)
        let prel = '';
        for (const part of c.parts.slice(0, -1)) {
          prel = prel === '' ? part : `${prel}/${part}`;
          const pst = lstatOrNull(this.abs(prel));
          if (pst === null) this.fail('hardlink-missing-target', `hard link target ${JSON.stringify(h.linkname)} does not exist in the layer`);
          if (pst.isSymbolicLink()) this.fail('hardlink-through-symlink', `hard link target ${JSON.stringify(h.linkname)} goes through the symlink "${prel}"`);
          if (!pst.isDirectory()) this.fail('hardlink-missing-target', `"${prel}" is not a directory`);
        }
        const tst = lstatOrNull(this.abs(targetRel));
        if (tst === null) this.fail('hardlink-missing-target', `hard link target ${JSON.stringify(h.linkname)} does not exist in the layer`);
        if (tst.isSymbolicLink()) this.fail('hardlink-to-symlink', `hard link target ${JSON.stringify(h.linkname)} is a symlink`);
        if (!tst.isFile()) this.fail('hardlink-not-file', `hard link target ${JSON.stringify(h.linkname)} is not a regular file`);
        this.ensureDirs(parentParts);
        const st = lstatOrNull(this.abs(rel));
        if (st) this.removeExisting(rel, st);
        linkSync(this.abs(targetRel), this.abs(rel));
        return;
      }
      case 'character-device':
        await drain(entry);
        if ((h.devmajor ?? 0) === 0 && (h.devminor ?? 0) === 0) {
          this.ensureDirs(parentParts);
          this.whiteout(rel);
          return;
        }
        this.warn(`character device ${h.devmajor}:${h.devminor} skipped (device nodes are never created from images)`);
        return;
      case 'block-device':
        await drain(entry);
        this.warn(`block device ${h.devmajor}:${h.devminor} skipped (device nodes are never created from images)`);
        return;
      case 'fifo':
        await drain(entry);
        this.warn('FIFO skipped');
        return;
      default:
        this.fail('unsupported-entry', 'an entry type tar does not define for files (a GNU sparse file "S", a multi-volume or dumpdir entry, or a vendor type): its data cannot be read as a file');
    }
  }

  private whiteout(rel: string): void {
    const st = lstatOrNull(this.abs(rel));
    if (st) this.removeExisting(rel, st);
    this.whiteouts.add(rel);
  }

  /** Applies directory attributes (deepest first), then creates whiteouts and opaque markers. */
  finish(): void {
    this.current = undefined;
    const dirs = [...this.deferredDirs.values()].sort((a, b) => b.rel.split('/').length - a.rel.split('/').length);
    for (const d of dirs) {
      // re-check: the path must still be a real directory with no symlink on the way
      if (!this.isRealDir(d.rel)) continue;
      const p = this.abs(d.rel);
      lchownSync(p, d.uid, d.gid);
      chmodSync(p, d.mode);
    }
    const ops: Array<{ op: 'whiteout' | 'opaque'; path: string }> = [];
    for (const w of this.whiteouts) {
      const parent = w.split('/').slice(0, -1).join('/');
      if (!this.isRealDir(parent) || lstatOrNull(this.abs(w))) continue;
      ops.push({ op: 'whiteout', path: this.abs(w) });
    }
    for (const o of this.opaques) {
      if (!this.isRealDir(o) || o === '') continue;
      ops.push({ op: 'opaque', path: this.abs(o) });
    }
    this.whiteoutCount = ops.filter((o) => o.op === 'whiteout').length;
    this.opaqueCount = ops.length - this.whiteoutCount;
    if (ops.length) applyOverlayOps(ops);
    for (const d of dirs) {
      if (this.isRealDir(d.rel)) utimesSync(this.abs(d.rel), d.mtime, d.mtime);
    }
  }

  private isRealDir(rel: string): boolean {
    let cur = '';
    for (const part of rel === '' ? [] : rel.split('/')) {
      cur = cur === '' ? part : `${cur}/${part}`;
      const st = lstatOrNull(this.abs(cur));
      if (!st || !st.isDirectory()) return false;
    }
    return true;
  }
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _ of entry as AsyncIterable<Buffer>) void _;
}

/**
 * Node has neither mknod(2) nor setxattr(2): whiteouts (char 0/0) and opaque markers
 * (trusted.overlay.opaque=y) are made by one python3 process per layer. Paths were checked
 * (real directories, no symlinks) by the caller and live in a private staging directory.
 */
function applyOverlayOps(ops: Array<{ op: 'whiteout' | 'opaque'; path: string }>): void {
  const script = [
    'import json, os, stat, sys',
    'for o in json.load(sys.stdin):',
    '    if o["op"] == "whiteout":',
    '        os.mknod(o["path"], 0o600 | stat.S_IFCHR, os.makedev(0, 0))',
    '    else:',
    '        os.setxattr(o["path"], "trusted.overlay.opaque", b"y", follow_symlinks=False)',
  ].join('\n');
  const python = lstatOrNull('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(python, ['-c', script], { input: JSON.stringify(ops), encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const msg = r.error ? r.error.message : r.stderr.trim().split('\n').pop();
    throw new ImageStoreError('UNSUPPORTED', `cannot create overlay whiteouts (needs root: mknod and trusted.* xattrs): ${msg}`);
  }
}
