import { chainHash, envelopeText, GENESIS_HASH } from '../hash';
import { AnchorCheck, type Anchor, type AnchorProblemKind } from '../anchor/anchor';
import type { CommitRow, SqliteEventStore } from './sqlite-event-store';

export type VerifyProblemKind = 'missing' | 'reordered' | 'changed' | 'malformed' | 'truncated' | 'head-mismatch' | AnchorProblemKind;

export interface VerifyProblem {
  /** the first bad position */
  position: number;
  kind: VerifyProblemKind;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  /** events whose hash was recomputed and matched */
  checked: number;
  /** the last good position and its hash */
  head: { position: number; hash: string };
  problem?: VerifyProblem;
}

export interface VerifyOptions {
  /** a head hash recorded elsewhere (e.g. printed by an earlier verify): detects truncation that also rewrote the head row */
  expectHead?: { position: number; hash: string };
  /** signed anchors (already checked: anchor.ts readAnchors) the chain must agree with */
  anchors?: Anchor[];
}

/**
 * Walks the log from position 1, recomputing every hash from the stored bytes. Reports the first
 * problem only: a gap in positions (events removed), a stream version out of order (reordered), a
 * hash that does not match (an event changed, or moved), a log shorter than its recorded head
 * (truncated). Memory: one map entry per stream.
 */
export function verifyChain(store: SqliteEventStore, opts: VerifyOptions = {}): VerifyResult {
  let prev = GENESIS_HASH;
  let expected = 1;
  let checked = 0;
  const versions = new Map<string, number>();
  const anchors = new AnchorCheck(opts.anchors ?? []);
  const fail = (position: number, kind: VerifyProblemKind, message: string): VerifyResult => ({
    ok: false,
    checked,
    head: { position: expected - 1, hash: prev },
    problem: { position, kind, message },
  });
  for (const row of store.commitsFrom(1) as Generator<CommitRow>) {
    const [first, last, streamId, firstVersion, text, hashes] = row;
    if (first > expected) {
      return fail(expected, 'missing', `position${first - 1 > expected ? `s ${expected}–${first - 1} are` : ` ${expected} is`} missing (removed from the log)`);
    }
    if (first < expected) return fail(first, 'reordered', `position ${first} appears again after position ${expected - 1} (overlapping or reordered rows)`);
    const lines = text.split('\n');
    const n = last - first + 1;
    if (lines.length !== n || hashes.length !== 32 * n) {
      return fail(first, 'malformed', `commit at position ${first} holds ${lines.length} events and ${hashes.length / 32} hashes, expected ${n}`);
    }
    const known = versions.get(streamId) ?? 0;
    if (firstVersion > known + 1) {
      const later = store.db.prepare('SELECT first_position FROM commits WHERE stream_id = ? AND first_version <= ? AND first_version + last_position - first_position >= ?').pluck().get(streamId, known + 1, known + 1) as number | undefined;
      if (later !== undefined && later > first) {
        return fail(first, 'reordered', `stream ${streamId} version ${firstVersion} is at position ${first}, before version ${known + 1} at position ${later} (reordered)`);
      }
    }
    if (firstVersion !== known + 1) {
      return fail(
        first,
        firstVersion > known + 1 ? 'missing' : 'reordered',
        firstVersion > known + 1
          ? `stream ${streamId} jumps from version ${known} to ${firstVersion} (events removed)`
          : `stream ${streamId} version ${firstVersion} appears after version ${known} (reordered)`,
      );
    }
    const sid = JSON.stringify(streamId);
    for (let i = 0; i < n; i++) {
      const line = lines[i];
      const t1 = line.indexOf('\t');
      const t2 = line.indexOf('\t', t1 + 1);
      const t3 = line.indexOf('\t', t2 + 1);
      const position = first + i;
      if (t1 < 0 || t2 < 0 || t3 < 0) return fail(position, 'malformed', `event at position ${position} is not a well-formed record`);
      const h = chainHash(prev, envelopeText(position, sid, firstVersion + i, line.slice(0, t1), +line.slice(t1 + 1, t2), line.slice(t2 + 1, t3), line.slice(t3 + 1)));
      if (h !== hashes.toString('hex', 32 * i, 32 * i + 32)) {
        return fail(position, 'changed', `hash mismatch at position ${position} (stream ${streamId} version ${firstVersion + i}): the event was changed, or moved`);
      }
      prev = h;
      const off = anchors.see(position, prev);
      if (off) return fail(off.position, off.kind, off.message);
      if (opts.expectHead && position === opts.expectHead.position && prev !== opts.expectHead.hash) {
        return fail(position, 'head-mismatch', `hash at position ${position} differs from the expected head ${opts.expectHead.hash}`);
      }
      checked++;
      expected = position + 1;
    }
    versions.set(streamId, firstVersion + n - 1);
  }
  const cut = anchors.end(expected - 1);
  if (cut) return fail(cut.position, cut.kind, cut.message);
  const head = store.head();
  if (head.position > expected - 1) {
    return fail(expected, 'truncated', `the log ends at position ${expected - 1} but its head records position ${head.position} (events ${expected}–${head.position} removed)`);
  }
  if (head.position === expected - 1 && head.hash !== prev) {
    return fail(head.position, 'head-mismatch', `the head hash recorded for position ${head.position} does not match the chain`);
  }
  if (opts.expectHead) {
    const e = opts.expectHead;
    if (e.position > expected - 1) return fail(expected, 'truncated', `the log ends at position ${expected - 1}, expected at least ${e.position}`);
  }
  const okHead = { position: expected - 1, hash: prev };
  return { ok: true, checked, head: okHead };
}
