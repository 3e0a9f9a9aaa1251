import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { ImageStoreError } from './image.errors';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock between processes sharing one store: a lock file created with O_EXCL
 * holding the owner's pid. A lock whose owner is no longer alive (same pid namespace) or is
 * this very process (critical sections are synchronous, so it cannot be ours and live) is
 * stale and taken over. Critical sections are short (index update, renames) and never await.
 */
export class StoreLock {
  constructor(private readonly path: string, private readonly timeoutMs = 120_000) {}

  withLock<T>(fn: () => T): T {
    this.acquire();
    try {
      return fn();
    } finally {
      try {
        unlinkSync(this.path);
      } catch {
        /* already gone */
      }
    }
  }

  private acquire(): void {
    const deadline = Date.now() + this.timeoutMs;
    let delay = 2;
    for (;;) {
      try {
        const fd = openSync(this.path, 'wx', 0o600);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let owner = NaN;
      try {
        owner = parseInt(readFileSync(this.path, 'utf8'), 10);
      } catch {
        continue; // released meanwhile
      }
      if (Number.isInteger(owner) && (owner === process.pid || !alive(owner))) {
        try {
          unlinkSync(this.path);
        } catch {
          /* someone else took it over first */
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new ImageStoreError('LOCK_TIMEOUT', `the image store is locked by process ${Number.isNaN(owner) ? '?' : owner} (${this.path})`);
      }
      Atomics.wait(sleeper, 0, 0, delay);
      delay = Math.min(delay * 2, 50);
    }
  }
}
