import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { capabilitySets, evaluate, formatError, globError, globMatch, type DecisionRequest, type Policy } from '@capulator/policy';
import {
  decisionLog,
  foldEvents,
  kafkaAnchorLog,
  isDecisionType,
  ReadModelProjector,
  SqliteEventStore,
  whatIf,
  whatIfExitCode,
  type DecisionLogFilter,
  type DecisionLogRow,
  type KafkaEventStore,
  type PolicyUnderTest,
  type StoredEvent,
  type WhatIfChange,
} from '@capulator/events';
import { homePaths, fsErrorText } from '@capulator/host';
import { CliError } from '../cli-error';
import { printJson, printTable } from '../output';
import { loadPolicyFile } from './policy.command';
import { registerPolicyEventCommands } from './policy-events.command';
import { addLogBusOption, openKafkaLog, openReadModels, openSqliteLog, resolveBus, storeOpenError } from './event-log';
import { addAnchorOptions, anchoredHeads, anchorsForVerify, registerAnchorCommand } from './audit-anchor';
import { parseSince } from '../since';

/** Opens the embedded store ($CAPULATOR_HOME/events.db) and brings its read models up to date. */
export function openStore(): { store: SqliteEventStore; projector: ReadModelProjector } {
  let store: SqliteEventStore;
  const path = homePaths().store;
  try {
    store = SqliteEventStore.open(path);
  } catch (err) {
    throw storeOpenError(path, err);
  }
  const projector = new ReadModelProjector(store);
  projector.catchUp();
  return { store, projector };
}

/** Adapts a loaded @capulator/policy Policy to what-if replay. */
export function policyUnderTest(policy: Policy): PolicyUnderTest {
  return {
    evaluate: (r) => {
      const d = evaluate(policy, { syscall: r.syscall, args: r.args, privilege: r.privilege, exe: r.exe, uid: r.uid, gid: r.gid, image: r.image, arch: r.arch } as DecisionRequest);
      return { decision: d.decision, ruleId: d.ruleId };
    },
    startCapabilities: (c) => capabilitySets(policy, c).sets.bounding,
  };
}

/** Loads a policy file for replay: bad file or errors → exit 2 with the first error. */
export function loadPolicyForReplay(file: string): Policy {
  const r = loadPolicyFile(file);
  if (!r.policy) {
    for (const e of r.errors) process.stderr.write(formatError(e) + '\n');
    throw new CliError(`${file}: the policy has ${r.errors.length} error(s)`, 2);
  }
  return r.policy;
}

/** `--since` as the store compares it: an ISO time. */
const sinceIso = (v: string | undefined): string | undefined => (v === undefined ? undefined : new Date(parseSince(v)).toISOString());

const LOG_HEADERS = ['POSITION', 'TIME', 'RUN', 'SEQ', 'EXE', 'SYSCALL', 'PRIVILEGE', 'CAPABILITY', 'DECISION', 'RULE', 'ANSWER'];
/** A kernel-record row (PrivilegeChecked source 'kernel'): its answer is the kernel's result. */
const isKernelRow = (r: DecisionLogRow) => r.answeredBy === 'granted' || r.answeredBy === 'refused';
/** A capability stands for many privileges: the table shows the first two and how many more (--json has them all). */
const privCell = (p: string[]) => (p.length === 0 ? '-' : p.length <= 2 ? p.join(',') : `${p.slice(0, 2).join(',')},…+${p.length - 2}`);
const logCells = (r: DecisionLogRow) => [
  r.position, r.at, r.runId, r.seq, r.exe, r.syscall, privCell(r.privileges), r.capability, r.decision, r.ruleId ?? '(default)',
  isKernelRow(r) ? `kernel ${r.answeredBy}` : r.answeredBy ?? '-',
];

/**
 * `audit log --follow` on Kafka: the decisions appended after the snapshot (`last`, the highest
 * position folded in each partition), printed as they are folded, until SIGINT/SIGTERM. Each
 * batch of new decisions goes through read models of its own (the same rows and filters as
 * the snapshot's), sorted by position: a partition that lags adds its events when it catches up.
 */
async function followKafka(store: KafkaEventStore, last: number[], filter: DecisionLogFilter, print: (r: DecisionLogRow) => void): Promise<void> {
  await new Promise<void>((resolve) => {
    let batch: StoredEvent[] = [];
    const flush = () => {
      const rm = foldEvents(batch.sort((a, b) => a.position - b.position), last.length);
      batch = [];
      try {
        for (const r of decisionLog(rm.db, filter)) print(r);
      } finally {
        rm.close();
      }
    };
    const sub = store.subscribe(last, (e) => {
      if (isDecisionType(e.type) && batch.push(e) === 1) setImmediate(flush);
    });
    const stop = () => void sub.close().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/**
 * One story per call: a kernel check joined to the agent's decision of the same call (same run and
 * seq) is shown right after that decision instead of at its own position (it is stored later).
 */
export function storyOrder(rows: DecisionLogRow[]): DecisionLogRow[] {
  const agentAt = new Map<string, number>();
  rows.forEach((r, i) => {
    if (!isKernelRow(r) && r.seq > 0) agentAt.set(`${r.runId}\u0000${r.seq}`, i);
  });
  const keyed = rows.map((r, i) => {
    const a = isKernelRow(r) && r.seq > 0 ? agentAt.get(`${r.runId}\u0000${r.seq}`) : undefined;
    return { r, k: a !== undefined && a < i ? a : i, i };
  });
  keyed.sort((x, y) => x.k - y.k || x.i - y.i);
  return keyed.map((x) => x.r);
}

function changeLine(c: WhatIfChange): string {
  if (c.kind === 'decision') {
    const rule = (x: string | null) => x ?? 'default';
    return (
      `position ${c.position}  run ${c.runId}  seq ${c.seq}  ${c.exe}  ${c.syscall}  ${c.privileges.join(',') || '(unprivileged)'}  ` +
      `${c.old.decision} (${rule(c.old.ruleId)}) → ${c.new.decision} (${rule(c.new.ruleId)})${c.regression ? '  WOULD DENY' : ''}`
    );
  }
  const parts = [...c.lost.map((x) => '-' + x), ...c.gained.map((x) => '+' + x)].join(' ');
  return `run ${c.runId}  start capabilities ${parts}${c.usedLost.length ? `  WOULD DENY (used: ${c.usedLost.join(', ')})` : ''}`;
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('The event log: log, verify, replay (what-if), rebuild');

  addLogBusOption(audit
    .command('log'))
    .description('recorded decisions (capget, capset, privilege checks), oldest first')
    .option('--run <id>', 'only this run')
    .addOption(new Option('--decision <d>', 'only this decision').choices(['allow', 'deny', 'emulate']))
    .option('--privilege <P>', 'only checks of this priv(9) privilege')
    .option('--capability <C>', 'only checks needing this capability')
    .option('--exe <glob>', 'only these programs (glob: *, ?, [...])')
    .option('--since <T>', 'only at or after T (ISO time or 30s/10m/2h/7d ago)')
    .option('--follow', 'keep printing new decisions as they are recorded (Ctrl-C to stop)')
    .option('--json', 'JSON lines, one decision per line')
    .action(async (o: { run?: string; decision?: 'allow' | 'deny' | 'emulate'; privilege?: string; capability?: string; exe?: string; since?: string; follow?: boolean; json?: boolean; bus?: string }) => {
      const exe = o.exe;
      const bad = exe !== undefined ? globError(exe) : undefined;
      if (bad) throw new CliError(`--exe ${bad}`);
      const filter: DecisionLogFilter = {
        runId: o.run, decision: o.decision, privilege: o.privilege?.toUpperCase(), capability: o.capability?.toUpperCase(),
        exeMatches: exe !== undefined ? (e) => globMatch(exe, e) : undefined, since: sinceIso(o.since),
      };
      const rm = await openReadModels(o.bus, { follow: o.follow });
      const store = { db: rm.db, subscribe: rm.sqlite ? rm.sqlite.subscribe.bind(rm.sqlite) : () => ({ close: async () => undefined }), close: () => rm.close() };
      const projector = rm.projector;
      try {
        let last = 0;
        // The table is aligned over the first rows; past that it streams with those widths.
        let rows: DecisionLogRow[] | undefined = o.follow || o.json ? undefined : [];
        let widths: number[] | undefined;
        const streamRow = (r: DecisionLogRow) => {
          const cells = logCells(r).map((c) => (c === null || c === undefined ? '-' : String(c)));
          process.stdout.write(cells.map((c, i) => (widths && i < cells.length - 1 ? c.padEnd(widths[i]) : c)).join('  ').trimEnd() + '\n');
        };
        for (const r of decisionLog(store.db, filter)) {
          last = r.position;
          if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
          else if (!rows) streamRow(r);
          else {
            rows.push(r);
            if (rows.length === 5000) {
              printTable(LOG_HEADERS, storyOrder(rows).map(logCells));
              widths = LOG_HEADERS.map((h, i) => Math.max(h.length, ...rows!.map((x) => String(logCells(x)[i] ?? '-').length)));
              rows = undefined;
            }
          }
        }
        if (rows) printTable(LOG_HEADERS, storyOrder(rows).map(logCells));
        if (!o.follow) return;
        if (!o.json && last === 0) process.stdout.write(LOG_HEADERS.join('  ') + '\n');
        const print = (r: DecisionLogRow) => process.stdout.write((o.json ? JSON.stringify(r) : logCells(r).join('  ')) + '\n');
        if (rm.kafka) {
          await followKafka(rm.kafka.store, rm.kafka.last, filter, print);
          return;
        }
        last = Math.max(last, projector.checkpoint());
        await new Promise<void>((resolve) => {
          const sub = store.subscribe(projector.checkpoint() + 1, () => {
            projector.catchUp();
            for (const r of decisionLog(store.db, { ...filter, afterPosition: last })) {
              last = r.position;
              print(r);
            }
          });
          const stop = () => void sub.close().then(resolve);
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      } finally {
        await store.close();
      }
    });

  addLogBusOption(addAnchorOptions(
    audit
      .command('verify')
      .description('check the hash chain of the whole log (on Kafka: every partition), and against the signed anchors of its head (a deleted tail, a rebuilt chain); exit 1 naming the first bad position')
      .option('--expect-head <POSITION:HASH>', 'a head printed by an earlier verify (detects truncation that rewrote the head); on Kafka PARTITION:POSITION:HASH, comma-separated')
      .option('--anchor <file>', 'also check against this exported anchor (`audit anchor --export`)')
      .option('--json', 'machine-readable output'),
  )).action(async (o: { expectHead?: string; json?: boolean; anchors?: string; anchorKey?: string; anchor?: string; bus?: string }) => {
      const bus = resolveBus(o.bus);
      if (bus) return verifyKafka(bus, o);
      let expectHead: { position: number; hash: string } | undefined;
      if (o.expectHead !== undefined) {
        const m = /^(\d+):([0-9a-f]{64})$/.exec(o.expectHead);
        if (!m) throw new CliError('--expect-head: want POSITION:HASH (64 hex digits)');
        expectHead = { position: Number(m[1]), hash: m[2] };
      }
      const anchored = anchorsForVerify(o);
      const store = await openSqliteLog();
      try {
        const r = store.verify({ expectHead, anchors: anchored.anchors });
        if (o.json) printJson({ ...r, anchors: anchored.anchors.length });
        else if (r.ok) process.stdout.write(`ok: ${r.checked} events, the chain is whole; head ${r.head.position}:${r.head.hash}; ${anchored.note}\n`);
        if (!r.ok) {
          if (o.json) process.exitCode = 1;
          else throw new CliError(`verify failed at position ${r.problem!.position}: ${r.problem!.message}`, 1);
        }
      } finally {
        await store.close();
      }
    });

  registerAnchorCommand(audit, () => SqliteEventStore.open(homePaths().store));

  addLogBusOption(audit
    .command('replay'))
    .description('what-if: re-evaluate recorded decisions and start-time capabilities under another policy; exit 1 if anything allowed would be denied')
    .requiredOption('--policy <file>', 'the policy to replay under')
    .option('--run <id...>', 'only these runs')
    .option('--since <T>', 'only decisions at or after T (ISO time or 30s/10m/2h/7d ago)')
    .option('--json', 'JSON lines: one per change, then a summary')
    .action(async (o: { policy: string; run?: string[]; since?: string; json?: boolean; bus?: string }) => {
      if (o.run && o.since) throw new CliError('--run and --since cannot be combined');
      const since = sinceIso(o.since);
      const policy = loadPolicyForReplay(o.policy);
      const store = await openReadModels(o.bus);
      try {
        if (o.run) {
          const known = store.db.prepare('SELECT 1 FROM rm_runs WHERE run_id = ?').pluck();
          for (const id of o.run) if (!known.get(id)) throw new CliError(`no run ${id} in the log`);
        }
        const summary = whatIf(store.db, policyUnderTest(policy), { runIds: o.run, since }, (c) => {
          process.stdout.write((o.json ? JSON.stringify(c) : changeLine(c)) + '\n');
        });
        const code = whatIfExitCode(summary);
        if (o.json) process.stdout.write(JSON.stringify({ kind: 'summary', policy: { name: policy.name, version: policy.version }, ...summary, exitCode: code }) + '\n');
        else {
          process.stdout.write(
            `replayed ${summary.decisions} decisions (${summary.distinctRequests} distinct requests) under ${policy.name} (version ${policy.version}): ` +
              `${summary.changed} would change — ${summary.regressions} allowed before would now be denied, ${summary.relaxed} would be relaxed` +
              `${summary.ruleOnly ? `, ${summary.ruleOnly} same decision by another rule` : ''}; ` +
              `${summary.runs} runs' start capabilities: ${summary.capabilityChanges} changed, ${summary.capabilityRegressions} lose a capability they used\n`,
          );
        }
        process.exitCode = code;
      } finally {
        await store.close();
      }
    });

  addLogBusOption(audit
    .command('rebuild')
    .description('drop the read models (runs, decisions, policies, images) and fold the log again from position 0 (on Kafka: into memory, every partition)')
    .option('--json', 'machine-readable output'))
    .action(async (o: { json?: boolean; bus?: string }) => {
      const store = await openReadModels(o.bus);
      try {
        const projector = store.projector;
        const t0 = process.hrtime.bigint();
        const n = projector.rebuild();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const counts = Object.fromEntries(
          (['rm_runs', 'rm_decisions', 'rm_policies', 'rm_images'] as const).map((t) => [t.slice(3), store.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number]),
        );
        if (o.json) printJson({ events: n, ms, ...counts });
        else {
          process.stdout.write(`rebuilt from ${n} events in ${ms.toFixed(0)} ms\n`);
          printTable(['READ MODEL', 'ROWS'], Object.entries(counts));
        }
      } finally {
        await store.close();
      }
    });

  const policy = program.commands.find((c) => c.name() === 'policy');
  if (policy) registerPolicyEventCommands(policy);
}

/** Reads a file for a command, or exits 2 naming it. */
export function readFileOrFail(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${fsErrorText(err)}`);
  }
}

/** `audit verify --bus kafka://…`: every partition's chain, witnesses and records; exit 1 on any problem. */
async function verifyKafka(bus: string, o: { expectHead?: string; json?: boolean; anchors?: string; anchorKey?: string; anchor?: string }): Promise<void> {
  const expect: Array<{ partition: number; position: number; hash: string }> = [];
  for (const part of (o.expectHead ?? '').split(',').filter(Boolean)) {
    const m = /^(\d+):(\d+):([0-9a-f]{64})$/.exec(part);
    if (!m) throw new CliError('--expect-head: on Kafka want PARTITION:POSITION:HASH[,…] (64 hex digits)');
    expect.push({ partition: Number(m[1]), position: Number(m[2]), hash: m[3] });
  }
  const store = await openKafkaLog(bus);
  try {
    // this home's signed anchors of the log (audit anchor --bus), each a partition's head that must still be there
    const anchored = anchorsForVerify(o, kafkaAnchorLog(store.topic));
    const parts = await store.verify([...expect, ...anchoredHeads(anchored.anchors, store.partitions)]);
    const ok = parts.every((p) => p.problems.length === 0);
    const events = parts.reduce((n, p) => n + p.events, 0);
    if (o.json) printJson({ ok, bus, topic: store.topic, partitions: parts.length, checked: events, results: parts });
    else {
      for (const p of parts) {
        process.stdout.write(
          `partition ${p.partition}: ${p.events} events, ${p.proposals} proposals (${p.rejected} rejected), ${p.witnesses} witnesses checked; head ${p.head.position}:${p.head.hash}` +
            (p.problems.length ? `  PROBLEM: ${p.problems[0]}${p.problems.length > 1 ? ` (+${p.problems.length - 1} more)` : ''}` : '') +
            '\n',
        );
      }
      if (ok) process.stdout.write(`ok: ${events} events in ${parts.length} partitions of ${store.topic}, every chain is whole; heads ${parts.map((p) => `${p.partition}:${p.head.position}:${p.head.hash}`).join(',')}; ${anchored.note}\n`);
    }
    if (!ok) {
      const bad = parts.find((p) => p.problems.length > 0)!;
      if (o.json) process.exitCode = 1;
      else throw new CliError(`verify failed in partition ${bad.partition}: ${bad.problems[0]}`, 1);
    }
  } finally {
    await store.close();
  }
}
