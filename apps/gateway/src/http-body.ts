import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Request } from 'express';
import { PayloadTooLarge } from './errors/domain.error';

/**
 * Streams a request body to `path`, refusing it (PayloadTooLarge, file removed) as soon as it
 * passes `limit` bytes — by Content-Length before reading, or by counting when it is chunked.
 */
export async function streamBodyToFile(req: Request, path: string, limit: number): Promise<number> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new PayloadTooLarge(limit);
  }
  const out = createWriteStream(path, { mode: 0o600 });
  let size = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          req.unpipe(out);
          req.resume();
          reject(new PayloadTooLarge(limit));
        }
      });
      req.on('error', reject);
      req.on('aborted', () => reject(new Error('upload aborted')));
      out.on('error', reject);
      out.on('finish', resolve);
      req.pipe(out);
    });
    return size;
  } catch (err) {
    out.destroy();
    await rm(path, { force: true });
    throw err;
  }
}

/** Reads a whole request body of at most `limit` bytes (PayloadTooLarge beyond it, by Content-Length or by counting). */
export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new PayloadTooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (req.readableEnded) return Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new PayloadTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
    req.on('end', resolve);
  });
  return Buffer.concat(chunks, size);
}
