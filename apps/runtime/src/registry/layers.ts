import { spawn } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import { layerCompression } from './manifest';
import { RegistryError } from './registry.errors';

export const PLAIN_TAR = 'application/vnd.oci.image.layer.v1.tar';

/**
 * Turns a verified layer blob into something the image store unpacks: gzip and plain tar go
 * as they are; zstd (which Node 20's zlib lacks) is decompressed with the `zstd` program into
 * a plain tar beside the blob. `cleanup` removes what this created.
 */
export async function prepareLayerBlob(blobPath: string, mediaType: string): Promise<{ path: string; mediaType: string; cleanup: () => void }> {
  if (layerCompression(mediaType) !== 'zstd') return { path: blobPath, mediaType, cleanup: () => undefined };
  const out = `${blobPath}.tar`;
  await decompressZstd(blobPath, out);
  return { path: out, mediaType: PLAIN_TAR, cleanup: () => { if (existsSync(out)) unlinkSync(out); } };
}

export function decompressZstd(src: string, dst: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('zstd', ['-d', '-q', '-f', '-o', dst, src], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString('utf8'); });
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT'
      ? new RegistryError('UNSUPPORTED_MEDIA_TYPE', 'this image has zstd layers and the `zstd` program is not installed (apt-get install zstd)')
      : e));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        if (existsSync(dst)) unlinkSync(dst);
        reject(new RegistryError('UNSUPPORTED_MEDIA_TYPE', `zstd could not decompress layer ${src}: ${err.trim() || `exit ${code}`}`));
      }
    });
  });
}
