import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar-stream';

/** Test helpers: craft layer tars and docker archives byte by byte. */

export interface TarEntrySpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  devmajor?: number;
  devminor?: number;
}

const MTIME = new Date('2000-01-01T00:00:00Z');

export async function tarOf(entries: TarEntrySpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? undefined : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    const header = {
      name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: MTIME,
      size: type === 'file' ? data?.length ?? 0 : 0, linkname: e.linkname, devmajor: e.devmajor, devminor: e.devminor,
    };
    await new Promise<void>((res, rej) => {
      const cb = (err?: Error | null) => (err ? rej(err) : res());
      if (type === 'file') pack.entry(header, data ?? Buffer.alloc(0), cb);
      else pack.entry(header, cb).end(undefined as never);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function sha256hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A one-image docker archive (`docker save` layout) whose config matches the given layer tars. */
export async function dockerArchiveOf(layers: Buffer[], opts: { tag?: string; architecture?: string; diffIds?: string[]; repoTags?: unknown[]; copies?: number } = {}): Promise<Buffer> {
  const diffIds = opts.diffIds ?? layers.map((l) => 'sha256:' + sha256hex(l));
  const config = Buffer.from(JSON.stringify({
    architecture: opts.architecture ?? 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
  const cfgName = sha256hex(config) + '.json';
  const entries: TarEntrySpec[] = [{ name: cfgName, data: config }];
  const layerPaths: string[] = [];
  layers.forEach((l, i) => {
    const id = sha256hex(`${i}:${diffIds[i]}`);
    entries.push({ name: `${id}/`, type: 'directory' }, { name: `${id}/layer.tar`, data: l });
    layerPaths.push(`${id}/layer.tar`);
  });
  const entry = { Config: cfgName, RepoTags: opts.repoTags ?? (opts.tag ? [opts.tag] : []), Layers: layerPaths };
  entries.push({ name: 'manifest.json', data: JSON.stringify(Array.from({ length: opts.copies ?? 1 }, () => entry)) });
  return tarOf(entries);
}

/**
 * A listing of a tree (type, mode, owner, size, link target, content hash) — equal listings
 * mean equal trees. mtimes are left out unless asked for.
 */
export function treeListing(root: string, opts: { mtimes?: boolean; skip?: (rel: string) => boolean } = {}): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (opts.skip?.(r)) continue;
      const p = join(root, r);
      const st = lstatSync(p);
      const t = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : '?';
      let extra = '';
      if (st.isSymbolicLink()) extra = '->' + readlinkSync(p);
      else if (st.isFile()) extra = `${st.size}:${sha256hex(readFileSync(p)).slice(0, 16)}`;
      else if (st.isCharacterDevice()) extra = `rdev=${st.rdev}`;
      out.push(`${t} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${r} ${extra}${opts.mtimes && !st.isSymbolicLink() ? ' ' + st.mtime.toISOString() : ''}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** Writes an OCI image layout directory with one image made of the given layer blobs. */
export function writeOciLayout(dir: string, layers: Array<{ blob: Buffer; mediaType: string; diffId: string }>, opts: { name?: string } = {}): { configDigest: string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require('node:fs') as typeof import('node:fs');
  fs.mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const h = sha256hex(b);
    fs.writeFileSync(join(dir, 'blobs', 'sha256', h), b);
    return { digest: `sha256:${h}`, size: b.length };
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const cfg = put(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: layers.map((l) => ({ mediaType: l.mediaType, ...put(l.blob) })),
  }));
  const m = put(manifest);
  fs.writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, ...(opts.name ? { annotations: { 'io.containerd.image.name': opts.name } } : {}) }],
  }));
  return { configDigest: cfg.digest };
}
