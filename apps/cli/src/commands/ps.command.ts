import { Command } from 'commander';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { foldInto, runDetails, runSummaries, SqliteEventStore, type EventStore, type RunSummary } from '@capulator/events';
import { homePaths } from '@capulator/host';
import { CliError } from '../cli-error';
import { printJson, printTable } from '../output';
import { addLogBusOption, openKafkaLog, resolveBus, storeOpenError } from './event-log';

/** The runs of the log: the home's SQLite store, or the Kafka log (--bus, CAPULATOR_BUS, the home's bus). */
async function openRuns(busFlag: string | undefined): Promise<{ runs: RunSummary[]; store: Pick<EventStore, 'readStream'> | undefined; close(): Promise<void> }> {
  const bus = resolveBus(busFlag);
  if (bus) {
    const store = await openKafkaLog(bus);
    const runs = new Map<string, RunSummary>();
    for await (const e of store.readAll(1)) foldInto(runs, e);
    return { runs: [...runs.values()], store, close: () => store.close() };
  }
  const store = openStoreReadOnly();
  return { runs: store ? runSummaries(store) : [], store, close: async () => store?.close() };
}

/**
 * `capulator ps` and `capulator inspect`: the runs as the log tells them, read through a read-only
 * connection (never the write lock: they work while runs are being recorded).
 */
export function openStoreReadOnly(): SqliteEventStore | undefined {
  const path = homePaths().store;
  if (!existsSync(path)) {
    try {
      accessSync(dirname(path), constants.X_OK);
    } catch (e) {
      // a home this user may not enter hides its log: say so rather than list no runs
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read ${dirname(path)}: uid ${process.getuid?.()} may not enter it`, 1);
    }
    return undefined;
  }
  try {
    return SqliteEventStore.open(path, { readonly: true });
  } catch (err) {
    throw storeOpenError(path, err);
  }
}

const isLive = (r: RunSummary) => r.status === 'queued' || r.status === 'running';

/** ms → 850ms, 12.3s, 4m05s, 2h10m */
export function formatDuration(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms)) return null;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** How long a run took, or has been going (from its start, else its request). */
function duration(r: RunSummary, now: number): number | null {
  if (r.durationMs !== null) return r.durationMs;
  const from = r.startedAt ?? r.requestedAt;
  if (!from) return null;
  const to = r.endedAt ? Date.parse(r.endedAt) : now;
  return Math.max(0, to - Date.parse(from));
}

/** One run as `ps --json` and `inspect --json` show it. */
export function runRecord(r: RunSummary, now = Date.now()) {
  return {
    id: r.runId,
    image: r.image,
    imageDigest: r.imageDigest,
    command: r.command,
    policy: r.policy ? `${r.policy.name}@${r.policy.version}` : null,
    status: r.status,
    exitCode: r.exitCode,
    signal: r.signal,
    oomKilled: r.oomKilled ?? false,
    artifacts: r.artifacts ?? [],
    failure: r.failStage ? { stage: r.failStage, reason: r.failReason } : null,
    decisions: r.counts,
    lostEvents: r.lostEvents,
    lostReason: r.lostReason,
    createdAt: r.requestedAt,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    durationMs: duration(r, now),
  };
}

const HEADERS = ['RUN ID', 'IMAGE', 'POLICY', 'STATUS', 'EXIT', 'SIGNAL', 'FAILED', 'ALLOW', 'DENY', 'EMULATE', 'LOST', 'CREATED', 'DURATION'];

export function registerPsCommands(program: Command): void {
  addLogBusOption(program
    .command('ps')
    .description('list runs: the ones queued or running; -a all of them (newest first)')
    .option('-a, --all', 'all runs, also those that ended')
    .option('-q, --quiet', 'only the run ids, one a line (as docker ps -q)')
    .option('-n, --last <n>', 'only the newest N runs (of those listed)', (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`--last ${v}: want a positive whole number`);
      return Number(v);
    })
    .option('--json', 'a JSON array'))
    .action(async (o: { all?: boolean; quiet?: boolean; last?: number; json?: boolean; bus?: string }) => {
      const opened = await openRuns(o.bus);
      const now = Date.now();
      try {
        const runs = opened.runs
          .filter((r) => o.all || isLive(r))
          .sort((a, b) => ((a.requestedAt ?? '') < (b.requestedAt ?? '') ? 1 : (a.requestedAt ?? '') > (b.requestedAt ?? '') ? -1 : a.runId < b.runId ? -1 : 1))
          .slice(0, o.last ?? Infinity);
        if (o.json) return printJson(runs.map((r) => runRecord(r, now)));
        if (o.quiet) {
          process.stdout.write(runs.map((r) => `${r.runId}\n`).join(''));
          return;
        }
        printTable(
          HEADERS,
          runs.map((r) => [
            r.runId,
            r.image,
            r.policy ? `${r.policy.name}@${r.policy.version}` : null,
            r.status,
            r.exitCode,
            r.oomKilled ? `${r.signal ?? ''} (oom)`.trim() : r.signal,
            r.failStage ? `${r.failStage}: ${r.failReason}` : null,
            r.counts.allow,
            r.counts.deny,
            r.counts.emulate,
            r.lostEvents,
            r.requestedAt,
            formatDuration(duration(r, now)),
          ]),
        );
      } finally {
        await opened.close();
      }
    });

  addLogBusOption(program
    .command('inspect')
    .description('one run in detail: request, status, failure, decisions, the capability sets it was granted and the rules that granted them')
    .argument('<run>', 'run id')
    .option('--json', 'JSON'))
    .action(async (id: string, o: { json?: boolean; bus?: string }) => {
      const opened = await openRuns(o.bus);
      const store = opened.store;
      try {
        const summary = opened.runs.find((r) => r.runId === id);
        if (!store || !summary) throw new CliError(`no such run: ${id}`);
        const d = await runDetails(store, summary);
        const caps = d.started?.capabilities ?? null;
        const provenance = d.started?.provenance ?? {};
        const record = {
          ...runRecord(summary),
          env: d.requested?.env ?? [],
          mounts: d.requested?.mounts ?? [],
          learn: summary.learn,
          user: d.started ? d.started.user : null,
          pid: d.started?.pid ?? null,
          capabilities: caps,
          grantedBy: provenance,
          capabilitiesUsed: summary.capabilitiesUsed,
          mechanisms: d.started?.mechanisms ?? null,
        };
        if (o.json) return printJson(record);
        const w = (k: string, v: unknown) => process.stdout.write(`${(k + ':').padEnd(14)}${v === null || v === undefined || v === '' ? '-' : String(v)}\n`);
        w('Run', record.id);
        w('Image', `${record.image ?? '-'}${record.imageDigest ? ` (${record.imageDigest})` : ''}`);
        w('Command', record.command.join(' '));
        w('Policy', `${record.policy ?? '-'}${summary.learn ? ' (learn)' : ''}`);
        w('Status', record.status);
        w('Exit code', record.exitCode);
        w('Signal', record.signal);
        if (record.failure) w('Failed', `${record.failure.stage}: ${record.failure.reason}`);
        w('Decisions', `allow ${record.decisions.allow}, deny ${record.decisions.deny}, emulate ${record.decisions.emulate}`);
        w('Lost events', `${record.lostEvents}${record.lostReason ? ` (${record.lostReason})` : ''}`);
        w('Created', record.createdAt);
        w('Started', record.startedAt);
        w('Ended', record.endedAt);
        w('Duration', formatDuration(record.durationMs));
        w('User', record.user ? `${record.user.uid}:${record.user.gid}` : null);
        const m = record.mechanisms;
        if (m) {
          w('Recorded by', `${m.kernelRecord === 'tp_btf' ? 'kernel record (tp_btf/cap_capable)' : `no kernel record${m.kernelRecordUnavailable ? ` (${m.kernelRecordUnavailable})` : ''}`}, ` +
            `${m.seccomp === 'notify' ? `seccomp agent (${(m.seccompReasons ?? []).join('; ') || 'notify'})` : 'no seccomp filter'}`);
        }
        if (caps) {
          process.stdout.write('Capabilities (granted by the host):\n');
          for (const set of ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const) {
            process.stdout.write(`  ${(set + ':').padEnd(13)}${caps[set].length ? caps[set].join(' ') : '(none)'}\n`);
          }
          const granted = Object.keys(provenance).sort();
          if (granted.length) {
            process.stdout.write('Granted by:\n');
            for (const c of granted) process.stdout.write(`  ${c.padEnd(22)}${provenance[c].join(', ')}\n`);
          }
        }
        w('Used', summary.capabilitiesUsed.join(' '));
      } finally {
        await opened.close();
      }
    });
}
