import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

/**
 * Resolves `path` (absolute, as seen inside the container) to a host path under `rootfs`,
 * following symlinks the way the container would see them: absolute link targets restart at
 * the rootfs, `..` never climbs above it. Returns undefined when a component is missing or
 * there are too many links (a loop).
 */
export function resolveInRootfs(rootfs: string, path: string, followLast = true): string | undefined {
  const todo = posix.normalize('/' + path).split('/').filter((c) => c !== '');
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = posix.join(rootfs, ...done, c);
    let st;
    try {
      st = lstatSync(host);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink() && (followLast || todo.length > 0)) {
      if (++hops > 40) return undefined;
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter((x) => x !== ''));
      continue;
    }
    done.push(c);
  }
  return posix.join(rootfs, ...done);
}
