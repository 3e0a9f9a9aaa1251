import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { anchorKey, anchorPaths, anchorValid, AnchorError, kafkaAnchorLog, partitionOfPosition, readAnchors, writeAnchor, type Anchor, type AnchorPaths, type SqliteEventStore } from '@capulator/events';
import { fsErrorText, homePaths } from '@capulator/host';
import { CliError } from '../cli-error';
import { printJson } from '../output';
import { addLogBusOption, openKafkaLog, resolveBus } from './event-log';

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

/** Anchors of a Kafka log as the heads its verify checks (a partition's head must reach each, with that hash). */
export function anchoredHeads(anchors: Anchor[], partitions: number): Array<{ partition: number; position: number; hash: string }> {
  return anchors.map((a) => ({ partition: partitionOfPosition(a.position, partitions), position: a.position, hash: a.hash }));
}

/**
 * The anchors `audit verify` checks the chain against: every validly signed line of the anchor
 * file for this log (`log`: undefined for the home's SQLite store, `kafka:TOPIC` for a Kafka
 * log), plus the exported anchors of `--anchor FILE`. A line that is not validly signed, or
 * anchors without their key, fail closed (exit 1): the witness itself was tampered with or is missing.
 */
export function anchorsForVerify(o: { anchors?: string; anchorKey?: string; anchor?: string }, log?: string): VerifyAnchors {
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
  const anchors = loaded.anchors.filter((a) => a.log === log);
  if (o.anchor) {
    let exported: Anchor[];
    try {
      exported = readFileSync(o.anchor, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Anchor);
    } catch (err) {
      throw new CliError(`--anchor ${o.anchor}: ${err instanceof SyntaxError ? 'not a file of anchors (one JSON object a line, as `capulator audit anchor` writes)' : fsErrorText(err)}`);
    }
    for (const a of exported) {
      if (!anchorValid(key, a)) throw new CliError(`--anchor ${o.anchor}: not a validly signed anchor for this key`, 1);
      if (a.log !== log) throw new CliError(`--anchor ${o.anchor}: an anchor of ${a.log ?? 'a SQLite store'}, not of ${log ?? 'this SQLite store'}`, 1);
      anchors.push(a);
    }
  }
  const last = anchors.reduce<Anchor | undefined>((m, a) => (!m || a.position > m.position ? a : m), undefined);
  return { anchors, note: last ? `agrees with ${anchors.length} anchor(s), the last at position ${last.position} (${last.at})` : 'no anchors yet: a deleted tail cannot be detected' };
}

/** Writes anchors to `--export FILE` (one JSON line each). */
function exportAnchors(file: string, anchors: Anchor[]): void {
  try {
    writeFileSync(file, anchors.map((a) => JSON.stringify(a) + '\n').join(''), { mode: 0o644 });
  } catch (err) {
    throw new CliError(`--export ${file}: ${fsErrorText(err)}`);
  }
}

/**
 * `audit anchor --bus kafka://…`: verify every partition against its anchors so far, then sign
 * each partition's head (v2 anchors of `kafka:TOPIC`) into this home's anchor file.
 */
async function anchorKafka(bus: string, o: { anchors?: string; anchorKey?: string; export?: string; json?: boolean }): Promise<void> {
  const store = await openKafkaLog(bus);
  try {
    const log = kafkaAnchorLog(store.topic);
    const { anchors } = anchorsForVerify(o, log);
    const parts = await store.verify(anchoredHeads(anchors, store.partitions));
    const bad = parts.find((p) => p.problems.length > 0);
    if (bad) throw new CliError(`not anchored: verify failed in partition ${bad.partition}: ${bad.problems[0]}`, 1);
    const paths = resolveAnchorPaths(o);
    const out: Array<{ anchor: Anchor; partition: number; already: boolean }> = [];
    for (const p of parts) {
      if (p.head.position === 0) continue;
      const latest = anchors.find((x) => x.position === p.head.position && x.hash === p.head.hash);
      try {
        out.push({ anchor: latest ?? writeAnchor(paths, p.head, { log }), partition: p.partition, already: latest !== undefined });
      } catch (err) {
        throw new CliError(err instanceof AnchorError ? err.message : `cannot write the anchor: ${(err as Error).message}`, 1);
      }
    }
    if (o.export) exportAnchors(o.export, out.map((x) => x.anchor));
    if (o.json) printJson(out.map((x) => x.anchor));
    else {
      for (const { anchor: a, partition, already } of out) process.stdout.write(`anchored: ${log} partition ${partition} position ${a.position} hash ${a.hash} at ${a.at}${already ? ' (already anchored)' : ''}\n`);
      process.stdout.write(`${out.length} partition head(s) anchored in ${paths.file}${o.export ? `; exported to ${o.export}` : ''}\n`);
    }
  } finally {
    await store.close();
  }
}

/** `audit anchor [--export FILE] [--bus kafka://…]`: verify against the anchors so far, then anchor the head (on Kafka: each partition's). */
export function registerAnchorCommand(audit: Command, open: () => SqliteEventStore): void {
  addLogBusOption(addAnchorOptions(
    audit
      .command('anchor')
      .description('verify the log, then sign its head (on Kafka: each partition\'s) and append it to the anchor file (kept apart from the log); --export writes the anchors to FILE too')
      .option('--export <file>', 'also write the anchors (JSON lines) to FILE, to keep them elsewhere; `audit verify --anchor FILE` checks against them')
      .option('--json', 'print the anchor as JSON'),
  )).action(async (o: { anchors?: string; anchorKey?: string; export?: string; json?: boolean; bus?: string }) => {
    const bus = resolveBus(o.bus);
    if (bus) return anchorKafka(bus, o);
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
      if (o.export) exportAnchors(o.export, [a]);
      if (o.json) printJson(a);
      else process.stdout.write(`anchored: position ${a.position} hash ${a.hash} at ${a.at}${latest ? ' (already anchored)' : ''} in ${paths.file}${o.export ? `; exported to ${o.export}` : ''}\n`);
    } finally {
      await store.close();
    }
  });
}
