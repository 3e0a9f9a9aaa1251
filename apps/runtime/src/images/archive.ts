import { createReadStream, createWriteStream, lstatSync, openSync, readSync, closeSync, readFileSync, statSync, Stats } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { ImageStoreError } from './image.errors';
import { checkEntryName, compressionOf } from './safe-extract';

/**
 * Read access to an image archive: a docker-archive or OCI layout, as a directory or a tar
 * (optionally gzip-compressed). Member names come from the archive (untrusted): they are only
 * looked up, never used to write anything.
 */
export interface ArchiveSource {
  readonly kind: 'dir' | 'tar';
  has(name: string): boolean;
  /** a small member (JSON), at most `max` bytes */
  readSmall(name: string, max?: number): Buffer;
  /** the member's bytes as a stream */
  open(name: string): Readable;
  /** the first bytes of a member */
  head(name: string, n: number): Buffer;
  size(name: string): number;
  /** sha256 hex of the member (computed once) */
  sha256(name: string): Promise<string>;
}

const SMALL_MAX = 16 * 1024 * 1024;

function normalizeMember(name: string): string | undefined {
  const c = checkEntryName(name, { maxPathBytes: 4096, maxDepth: 64 });
  return c.ok && c.parts.length > 0 ? c.parts.join('/') : undefined;
}

function badMember(name: string): never {
  throw new ImageStoreError('BAD_ARCHIVE', `the archive refers to ${JSON.stringify(name)}, which it does not contain (or is not a plain relative path)`);
}

async function hashStream(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of s) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** An OCI layout or unpacked docker save directory. Symlinks inside it are refused. */
export class DirSource implements ArchiveSource {
  readonly kind = 'dir' as const;
  private readonly hashes = new Map<string, Promise<string>>();
  constructor(readonly dir: string) {}

  private resolve(name: string): { path: string; st: Stats } | undefined {
    const n = normalizeMember(name);
    if (!n) return undefined;
    let cur = this.dir;
    let st: Stats | undefined;
    for (const part of n.split('/')) {
      cur = join(cur, part);
      try {
        st = lstatSync(cur);
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) throw new ImageStoreError('BAD_ARCHIVE', `${JSON.stringify(name)} in ${this.dir} goes through a symlink`);
    }
    return st && st.isFile() ? { path: cur, st } : undefined;
  }
  private must(name: string) {
    return this.resolve(name) ?? badMember(name);
  }
  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }
  size(name: string): number {
    return this.must(name).st.size;
  }
  readSmall(name: string, max = SMALL_MAX): Buffer {
    const m = this.must(name);
    if (m.st.size > max) throw new ImageStoreError('BAD_ARCHIVE', `${name} is larger than ${max} bytes`);
    return readFileSync(m.path);
  }
  open(name: string): Readable {
    return createReadStream(this.must(name).path);
  }
  head(name: string, n: number): Buffer {
    const fd = openSync(this.must(name).path, 'r');
    try {
      const b = Buffer.alloc(n);
      return b.subarray(0, readSync(fd, b, 0, n, 0));
    } finally {
      closeSync(fd);
    }
  }
  sha256(name: string): Promise<string> {
    const p = this.must(name).path;
    let h = this.hashes.get(p);
    if (!h) this.hashes.set(p, (h = hashStream(createReadStream(p))));
    return h;
  }
}

interface TarMember {
  offset: number;
  size: number;
  sha256: string;
}

/**
 * A tar archive, read in place: one pass records each regular member's data offset and
 * sha256; members are then read by offset. A gzip-compressed archive is first decompressed
 * into `spoolPath`.
 */
export class TarSource implements ArchiveSource {
  readonly kind = 'tar' as const;
  private constructor(readonly file: string, private readonly members: Map<string, TarMember>) {}

  static async open(file: string, spoolPath: string, maxBytes: number): Promise<TarSource> {
    let path = file;
    const fd = openSync(file, 'r');
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    closeSync(fd);
    const comp = compressionOf(head);
    if (comp === 'zstd') throw new ImageStoreError('UNSUPPORTED', `${file}: zstd-compressed archives are not supported; decompress it first (zstd -d)`);
    if (comp === 'gzip') {
      let n = 0;
      const limiter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          n += chunk.length;
          cb(n > maxBytes ? new ImageStoreError('LIMIT_EXCEEDED', `${file}: decompresses to more than ${maxBytes} bytes`) : null, chunk);
        },
      });
      try {
        await pipeline(createReadStream(file), createGunzip(), limiter, createWriteStream(spoolPath, { mode: 0o600 }));
      } catch (err) {
        if (err instanceof ImageStoreError) throw err;
        throw new ImageStoreError('BAD_ARCHIVE', `${file}: not a valid gzip stream: ${(err as Error).message}`);
      }
      path = spoolPath;
    }
    const members = new Map<string, TarMember>();
    const extract = tar.extract();
    const scan = (async () => {
      for await (const entry of extract) {
        const h = entry.header;
        const name = normalizeMember(h.name);
        if ((h.type === 'file' || h.type === 'contiguous-file') && name) {
          const hash = createHash('sha256');
          for await (const chunk of entry as AsyncIterable<Buffer>) hash.update(chunk);
          members.set(name, { offset: entry.offset + 512, size: h.size ?? 0, sha256: hash.digest('hex') });
        } else {
          for await (const _ of entry as AsyncIterable<Buffer>) void _;
        }
      }
    })();
    try {
      await Promise.all([pipeline(createReadStream(path), extract), scan]);
    } catch (err) {
      extract.destroy();
      throw new ImageStoreError('BAD_ARCHIVE', `${file}: not a readable tar archive: ${(err as Error).message}`);
    }
    // entry.offset is where the member's own header starts (after any PAX / GNU long-name
    // blocks), so its data starts one block later. Every member read later is digest-checked.
    return new TarSource(path, members);
  }

  private must(name: string): TarMember {
    const n = normalizeMember(name);
    return (n && this.members.get(n)) || badMember(name);
  }
  has(name: string): boolean {
    const n = normalizeMember(name);
    return !!n && this.members.has(n);
  }
  size(name: string): number {
    return this.must(name).size;
  }
  readSmall(name: string, max = SMALL_MAX): Buffer {
    const m = this.must(name);
    if (m.size > max) throw new ImageStoreError('BAD_ARCHIVE', `${name} is larger than ${max} bytes`);
    const b = Buffer.alloc(m.size);
    const fd = openSync(this.file, 'r');
    try {
      let off = 0;
      while (off < m.size) {
        const n = readSync(fd, b, off, m.size - off, m.offset + off);
        if (n === 0) break;
        off += n;
      }
    } finally {
      closeSync(fd);
    }
    return b;
  }
  open(name: string): Readable {
    const m = this.must(name);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1 });
  }
  head(name: string, n: number): Buffer {
    const m = this.must(name);
    const b = Buffer.alloc(Math.min(n, m.size));
    const fd = openSync(this.file, 'r');
    try {
      return b.subarray(0, readSync(fd, b, 0, b.length, m.offset));
    } finally {
      closeSync(fd);
    }
  }
  async sha256(name: string): Promise<string> {
    return this.must(name).sha256;
  }
}

export async function openArchive(path: string, spoolPath: string, maxBytes: number): Promise<ArchiveSource> {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    throw new ImageStoreError('BAD_ARCHIVE', `${path}: no such file or directory`);
  }
  if (st.isDirectory()) return new DirSource(path);
  if (!st.isFile()) throw new ImageStoreError('BAD_ARCHIVE', `${path}: not a file or directory`);
  return TarSource.open(path, spoolPath, maxBytes);
}
