import { createHash, Hash } from 'node:crypto';
import { createReadStream, createWriteStream, closeSync, existsSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient, pullScope } from './client';
import { isTransientError, sleep } from './http';
import { RegistryError } from './registry.errors';

export interface DownloadOptions {
  client: RegistryClient;
  repository: string;
  digest: string;
  /** Size from the manifest: the download must be exactly this long. */
  size?: number;
  stagingDir: string;
  /** Called as bytes arrive: bytes so far (including a resumed prefix), total if known. */
  onBytes?: (bytes: number, total: number | undefined) => void;
  /** Called when a broken download is resumed or restarted. */
  onRetry?: (reason: string, resumeAt: number) => void;
  attempts?: number;
  backoffMs?: number;
}

export function digestHex(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new RegistryError('UNSUPPORTED_MEDIA_TYPE', `unsupported digest ${digest} (only sha256)`);
  return m[1];
}

async function hashFile(path: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

/**
 * Downloads one blob into `stagingDir/<hex>.partial`, resuming with an HTTP Range request after
 * a broken connection (or restarting when the server ignores the range), then verifies size and
 * sha256 digest. Only a verified blob is renamed to `<hex>.blob`, whose path is returned; a blob
 * that fails verification is deleted and never returned. The caller holds the blob's lock.
 */
export async function downloadBlob(o: DownloadOptions): Promise<string> {
  const hex = digestHex(o.digest);
  mkdirSync(o.stagingDir, { recursive: true });
  const partial = join(o.stagingDir, `${hex}.partial`);
  const done = join(o.stagingDir, `${hex}.blob`);
  const attempts = o.attempts ?? 6;
  const backoff = o.backoffMs ?? 200;
  let freshRestarts = 0;
  for (let attempt = 1; ; attempt++) {
    let offset = existsSync(partial) ? statSync(partial).size : 0;
    if (o.size !== undefined && offset > o.size) {
      unlinkSync(partial);
      offset = 0;
    }
    try {
      const h = createHash('sha256');
      if (offset > 0) await hashFile(partial, h);
      const res = await o.client.get(`/v2/${o.repository}/blobs/${o.digest}`, { range: offset > 0 ? offset : undefined, scope: pullScope(o.repository) });
      if (offset > 0) {
        const cr = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (res.status !== 206 || !cr || Number(cr[1]) !== offset) {
          // The server sent the whole blob: start over.
          o.onRetry?.('server ignored the range request; restarting', 0);
          if (existsSync(partial)) unlinkSync(partial);
          return await receive(o, res, partial, done, createHash('sha256'), 0, false);
        }
      }
      return await receive(o, res, partial, done, h, offset, offset > 0);
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'DIGEST_MISMATCH' && (err as RestartableMismatch).resumed && freshRestarts++ === 0) {
        o.onRetry?.('digest mismatch after resume; downloading again from the start', 0);
        continue;
      }
      if (attempt >= attempts || !isTransientError(err)) throw err;
      const at = existsSync(partial) ? statSync(partial).size : 0;
      o.onRetry?.(`${(err as Error).message}; retrying`, at);
      await sleep(backoff * 2 ** (attempt - 1));
    }
  }
}

type RestartableMismatch = RegistryError & { resumed?: boolean };

function receive(o: DownloadOptions, res: Awaited<ReturnType<RegistryClient['get']>>, partial: string, done: string, h: Hash, offset: number, resumed: boolean): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const out = createWriteStream(partial, { flags: offset > 0 ? 'a' : 'w' });
    let bytes = offset;
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      res.body.destroy();
      out.destroy();
      // A stream that broke mid-body is a transient failure: the next attempt resumes.
      reject(Object.assign(err instanceof Error ? err : new Error(String(err)), { transient: !(err instanceof RegistryError) }));
    };
    res.body.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (o.size !== undefined && bytes > o.size) {
        fail(new RegistryError('SIZE_MISMATCH', `blob ${o.digest} is larger than the ${o.size} bytes its manifest states: refused`));
        return;
      }
      h.update(chunk);
      if (!out.write(chunk)) {
        res.body.pause();
        out.once('drain', () => res.body.resume());
      }
      o.onBytes?.(bytes, o.size);
    });
    res.body.on('aborted', () => fail(Object.assign(new Error('connection closed mid-blob'), { code: 'ECONNRESET' })));
    res.body.on('error', fail);
    out.on('error', fail);
    res.body.on('end', () => {
      if (failed) return;
      out.end(() => {
        if (failed) return;
        if (!res.body.complete) {
          fail(Object.assign(new Error('connection closed mid-blob'), { code: 'ECONNRESET' }));
          return;
        }
        if (o.size !== undefined && bytes < o.size) {
          fail(Object.assign(new Error(`blob ${o.digest} ended after ${bytes} of ${o.size} bytes`), { code: 'ECONNRESET' }));
          return;
        }
        const got = 'sha256:' + h.digest('hex');
        if (got !== o.digest) {
          try { unlinkSync(partial); } catch { /* already gone */ }
          failed = true;
          const err: RestartableMismatch = new RegistryError('DIGEST_MISMATCH', `blob ${o.digest} from ${o.client.registry}/${o.repository} has digest ${got}: refused (the registry's copy is corrupt or was tampered with)`);
          err.resumed = resumed;
          reject(err);
          return;
        }
        renameSync(partial, done);
        resolve(done);
      });
    });
  });
}

/** Reads a small blob (an image config) into memory and verifies its digest. */
export async function fetchSmallBlob(client: RegistryClient, repository: string, digest: string, limit = 8 << 20): Promise<Buffer> {
  // client.get already retries failed requests; this retries a body that broke mid-way.
  const res = await client.withRetry(async () => {
    const r = await client.get(`/v2/${repository}/blobs/${digest}`, { scope: pullScope(repository) });
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of r.body) {
      n += (c as Buffer).length;
      if (n > limit) throw new RegistryError('SIZE_MISMATCH', `blob ${digest} is larger than ${limit} bytes`);
      chunks.push(c as Buffer);
    }
    if (!r.body.complete) throw Object.assign(new Error('connection closed mid-blob'), { code: 'ECONNRESET' });
    return Buffer.concat(chunks);
  }, 3);
  const got = 'sha256:' + createHash('sha256').update(res).digest('hex');
  if (got !== digest) throw new RegistryError('DIGEST_MISMATCH', `blob ${digest} from ${client.registry}/${repository} has digest ${got}: refused`);
  return res;
}

/**
 * A lock file per blob in the staging dir, so two processes pulling the same blob fetch it
 * once. Returns a release function, or `null` when `isDone()` turned true while waiting (the
 * other process finished the job). A lock whose owner process is gone is taken over.
 */
export async function lockBlob(stagingDir: string, digest: string, isDone: () => boolean, timeoutMs = 30 * 60_000): Promise<(() => void) | null> {
  mkdirSync(stagingDir, { recursive: true });
  const path = join(stagingDir, `${digestHex(digest)}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try { unlinkSync(path); } catch { /* already gone */ }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (isDone()) return null;
    let owner = NaN;
    try { owner = Number(readFileSync(path, 'utf8')); } catch { continue; }
    if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
      try { unlinkSync(path); } catch { /* someone else took it over */ }
      continue;
    }
    if (Date.now() > deadline) throw new RegistryError('LOCK_TIMEOUT', `gave up waiting for another pull of ${digest} (lock ${path})`);
    // Waiting on another process: poll the lock file with a deadline.
    await sleep(100);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
