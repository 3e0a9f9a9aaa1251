import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Anchors: the chain head, signed and kept outside the event store, so that `audit verify` can
 * tell a deleted tail or a rebuilt chain (which pass the chain's own checks) from the log as it
 * was. An anchor is `{v, position, hash, at, mac}`, `mac` = HMAC-SHA256 under a key that lives
 * apart from events.db (`$CAPULATOR_HOME/keys/anchor.key`, mode 0600, or $CAPULATOR_ANCHOR_KEY),
 * appended as one JSON line to an append-only file (`$CAPULATOR_HOME/anchors.jsonl` or
 * $CAPULATOR_ANCHOR_FILE). Store-agnostic: the checks take positions and hashes only.
 */
export interface Anchor {
  /** 1: the home's SQLite store; 2: the log named by `log` */
  v: 1 | 2;
  /** v2: the log this witnesses, `kafka:TOPIC` (one anchor per partition; the position names the partition) */
  log?: string;
  /** the head position anchored */
  position: number;
  /** the chain hash at that position */
  hash: string;
  at: string;
  mac: string;
}

/** The `log` of a Kafka event log's anchors (v2): one per partition, the position naming the partition. */
export function kafkaAnchorLog(topic: string): string {
  return `kafka:${topic}`;
}

export interface AnchorPaths {
  key: string;
  file: string;
}

/** Where the key and the anchor file are: env overrides, else under the home directory. */
export function anchorPaths(home: string, env: NodeJS.ProcessEnv = process.env): AnchorPaths {
  return {
    key: env.CAPULATOR_ANCHOR_KEY?.trim() || join(home, 'keys', 'anchor.key'),
    file: env.CAPULATOR_ANCHOR_FILE?.trim() || join(home, 'anchors.jsonl'),
  };
}

export class AnchorError extends Error {}

/** Reads the key (creating it, 32 random bytes hex, mode 0600 in a 0700 directory, when `create`). */
export function anchorKey(path: string, create: boolean): Buffer | undefined {
  try {
    accessSync(dirname(path), constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new AnchorError(`the anchor key ${path} cannot be reached by uid ${process.getuid?.()} (${dirname(path)}: permission denied); run as the user that owns this home`);
  }
  if (!existsSync(path)) {
    if (!create) return undefined;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // written whole beside it, then linked in: a full disk leaves no torn key behind
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeSync(fd, randomBytes(32).toString('hex') + '\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(tmp, path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process created it first
      }
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) throw new AnchorError(`anchor key ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new AnchorError(`anchor key ${path}: want 64 hex digits`);
  return Buffer.from(text, 'hex');
}

const macOf = (key: Buffer, a: Pick<Anchor, 'position' | 'hash' | 'at' | 'log'>) =>
  createHmac('sha256', key)
    .update(a.log === undefined ? `capulator-anchor v1\n${a.position}\n${a.hash}\n${a.at}` : `capulator-anchor v2\n${a.log}\n${a.position}\n${a.hash}\n${a.at}`)
    .digest('hex');

/** An anchor of the home's SQLite store, or (`log`) of another log such as `kafka:TOPIC`. */
export function signAnchor(key: Buffer, head: { position: number; hash: string }, at: string, log?: string): Anchor {
  const a = { position: head.position, hash: head.hash, at, ...(log === undefined ? {} : { log }) };
  return { v: log === undefined ? 1 : 2, ...a, mac: macOf(key, a) };
}

export function anchorValid(key: Buffer, a: Anchor): boolean {
  if (!((a?.v === 1 && a.log === undefined) || (a?.v === 2 && typeof a.log === 'string' && /^[^\n]+$/.test(a.log)))) return false;
  if (!Number.isSafeInteger(a.position) || typeof a.hash !== 'string' || typeof a.at !== 'string' || typeof a.mac !== 'string' || !/^[0-9a-f]{64}$/.test(a.mac)) return false;
  return timingSafeEqual(Buffer.from(macOf(key, a), 'hex'), Buffer.from(a.mac, 'hex'));
}

/** Appends one anchor line (O_APPEND, fsync'd). */
export function appendAnchor(file: string, a: Anchor): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const fd = openSync(file, 'a', 0o600);
  try {
    writeSync(fd, JSON.stringify(a) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** appendAnchor of one or more anchors (one write) on the thread pool: the event loop never waits for the disk. */
export async function appendAnchorAsync(file: string, anchors: Anchor[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const fh = await open(file, 'a', 0o600);
  try {
    await fh.write(anchors.map((a) => JSON.stringify(a) + '\n').join(''));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Signs the head (of `log`, default the home's store) and appends it to the anchor file (creating the key on first use). */
export function writeAnchor(paths: AnchorPaths, head: { position: number; hash: string }, o: { at?: string; key?: Buffer; log?: string } = {}): Anchor {
  const a = signAnchor(o.key ?? anchorKey(paths.key, true)!, head, o.at ?? new Date().toISOString(), o.log);
  appendAnchor(paths.file, a);
  return a;
}

export interface LoadedAnchors {
  /** anchors whose signature holds, in file order */
  anchors: Anchor[];
  /** lines that are not a validly signed anchor (forged, edited or torn) */
  bad: Array<{ line: number; text: string }>;
}

export function readAnchors(file: string, key: Buffer): LoadedAnchors {
  const out: LoadedAnchors = { anchors: [], bad: [] };
  if (!existsSync(file)) return out;
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let a: Anchor | undefined;
    try {
      a = JSON.parse(text) as Anchor;
    } catch {
      a = undefined;
    }
    if (a && anchorValid(key, a)) out.anchors.push(a);
    else out.bad.push({ line: i + 1, text: text.slice(0, 120) });
  });
  return out;
}

export type AnchorProblemKind = 'anchor-truncated' | 'anchor-rewritten';

/**
 * Checks a chain against anchors while a verifier walks it: `see(position, hash)` for every event
 * in order, then `end(lastPosition)`. Each returns a problem or undefined.
 */
export class AnchorCheck {
  private readonly byPosition = new Map<number, Anchor>();
  private readonly last: Anchor | undefined;

  constructor(anchors: Anchor[]) {
    for (const a of anchors) this.byPosition.set(a.position, a);
    this.last = anchors.reduce<Anchor | undefined>((m, a) => (!m || a.position > m.position ? a : m), undefined);
  }

  get latest(): Anchor | undefined {
    return this.last;
  }

  see(position: number, hash: string): { position: number; kind: AnchorProblemKind; message: string } | undefined {
    const a = this.byPosition.get(position);
    if (!a || a.hash === hash) return undefined;
    return {
      position,
      kind: 'anchor-rewritten',
      message: `the chain up to position ${position} differs from the anchored one: the anchor of ${a.at} names hash ${a.hash}, the log has ${hash} (the log was rewritten or rebuilt)`,
    };
  }

  end(lastPosition: number): { position: number; kind: AnchorProblemKind; message: string } | undefined {
    const a = this.last;
    if (!a || a.position <= lastPosition) return undefined;
    const from = lastPosition + 1;
    return {
      position: from,
      kind: 'anchor-truncated',
      message: `${from === a.position ? `event ${from} is` : `events ${from}–${a.position} are`} missing: the last anchor at position ${a.position} (${a.at}) names hash ${a.hash}`,
    };
  }
}
