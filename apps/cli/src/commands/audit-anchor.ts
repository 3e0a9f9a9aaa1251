import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { anchorKey, anchorPaths, anchorValid, AnchorError, readAnchors, writeAnchor, type Anchor, type AnchorPaths, type SqliteEventStore } from '@capulator/events';
import { homePaths } from '@capulator/host';
import { CliError } from '../cli-error';
import { printJson } from '../output';

/** `--anchors FILE` / `--anchor-key FILE` (else $CAPULATOR_ANCHOR_FILE / $CAPULATOR_ANCHOR_KEY, else the home's). */
export function addAnchorOptions(cmd: Command): Command {
  return cmd
    .option('--anchors <file>', 'the anchor file (default $CAPULATOR_ANCHOR_FILE or $CAPULATOR_HOME/anchors.jsonl)')
    .option('--anchor-key <file>', 'the anchor key (default $CAPULATOR_ANCHOR_KEY or $CAPULATOR_HOME/keys/anchor.key)');
}

export function resolveAnchorPaths(o: { anchors?: string; anchorKey?: string }): AnchorPaths {
  const p = anchorPaths(homePaths().home);
  return { key: o.anchorKey ?? p.key, file: o.anchors ?? p.file };
}

export interface VerifyAnchors {
  anchors: Anchor[];
  /** what verify says about them when ok */
  note: string;
}

/**
 * The anchors `audit verify` checks the chain against: every validly signed line of the anchor
 * file, plus an exported anchor (`--anchor FILE`). A line that is not validly signed, or anchors
 * without their key, fail closed (exit 1): the witness itself was tampered with or is missing.
 */
export function anchorsForVerify(o: { anchors?: string; anchorKey?: string; anchor?: string }): VerifyAnchors {
  const paths = resolveAnchorPaths(o);
  const haveFile = existsSync(paths.file);
  let key: Buffer | undefined;
  try {
    key = anchorKey(paths.key, false);
  } catch (err) {
    throw new CliError((err as Error).message, 1);
  }
  if (!key) {
    if (haveFile || o.anchor) throw new CliError(`cannot check the anchors: the anchor key ${paths.key} is missing`, 1);
    return { anchors: [], note: 'no anchors yet: a deleted tail or a rebuilt chain cannot be detected (see `capulator audit anchor`)' };
  }
  const loaded = readAnchors(paths.file, key);
  if (loaded.bad.length > 0) throw new CliError(`anchor file ${paths.file} line ${loaded.bad[0].line} is not a validly signed anchor (edited or forged)`, 1);
  const anchors = loaded.anchors;
  if (o.anchor) {
    let a: Anchor;
    try {
      a = JSON.parse(readFileSync(o.anchor, 'utf8')) as Anchor;
    } catch (err) {
      throw new CliError(`--anchor ${o.anchor}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!anchorValid(key, a)) throw new CliError(`--anchor ${o.anchor}: not a validly signed anchor for this key`, 1);
    anchors.push(a);
  }
  const last = anchors.reduce<Anchor | undefined>((m, a) => (!m || a.position > m.position ? a : m), undefined);
  return { anchors, note: last ? `agrees with ${anchors.length} anchor(s), the last at position ${last.position} (${last.at})` : 'no anchors yet: a deleted tail cannot be detected' };
}

/** `audit anchor [--export FILE]`: verify against the anchors so far, then anchor the head. */
export function registerAnchorCommand(audit: Command, open: () => SqliteEventStore): void {
  addAnchorOptions(
    audit
      .command('anchor')
      .description('verify the log, then sign its head and append it to the anchor file (kept apart from events.db); --export writes that anchor to FILE too')
      .option('--export <file>', 'also write the anchor (JSON) to FILE, to keep it elsewhere; `audit verify --anchor FILE` checks against it')
      .option('--json', 'print the anchor as JSON'),
  ).action(async (o: { anchors?: string; anchorKey?: string; export?: string; json?: boolean }) => {
    const { anchors } = anchorsForVerify(o);
    const store = open();
    try {
      const r = store.verify({ anchors });
      if (!r.ok) throw new CliError(`not anchored: verify failed at position ${r.problem!.position}: ${r.problem!.message}`, 1);
      const paths = resolveAnchorPaths(o);
      let a: Anchor;
      const latest = anchors.find((x) => x.position === r.head.position && x.hash === r.head.hash);
      try {
        a = latest ?? writeAnchor(paths, r.head);
      } catch (err) {
        throw new CliError(err instanceof AnchorError ? err.message : `cannot write the anchor: ${(err as Error).message}`, 1);
      }
      if (o.export) {
        try {
          writeFileSync(o.export, JSON.stringify(a) + '\n', { mode: 0o644 });
        } catch (err) {
          throw new CliError(`--export ${o.export}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      if (o.json) printJson(a);
      else process.stdout.write(`anchored: position ${a.position} hash ${a.hash} at ${a.at}${latest ? ' (already anchored)' : ''} in ${paths.file}${o.export ? `; exported to ${o.export}` : ''}\n`);
    } finally {
      await store.close();
    }
  });
}
