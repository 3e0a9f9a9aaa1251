/**
 * Decision events appended into SQLite with the hash chain, batched, as the runtime does.
 *   node dist/bench/event-append.bench.js [--events N] [--batch B] [--runs R] [--dir D]
 * Prints side by side, in one run: the CPU floor (serialise + hash only, no SQLite), appends
 * of B events to one run stream per transaction, and appendBatch of R run streams per transaction.
 */
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainHash, envelopeText, eventFixtures, GENESIS_HASH, SqliteEventStore, TextEvent, type NewEvent } from '@capulator/events';
import { parseDecisionLine, SpoolTail } from '../apps/runtime/src/run/agent-process';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('--events', 1_000_000);
const B = arg('--batch', 500);
const R = arg('--runs', 8);
const diIdx = process.argv.indexOf('--dir');
const base = diIdx >= 0 ? process.argv[diIdx + 1] : tmpdir();

/** Realistic decisions: a few programs, syscalls and outcomes, like a run's trapped calls. */
function decisions(runId: string, from: number, n: number): NewEvent[] {
  const out: NewEvent[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const seq = from + i;
    const k = seq % 4;
    out[i] =
      k === 0
        ? eventFixtures.decision(runId, seq)
        : k === 1
          ? eventFixtures.decision(runId, seq, { syscall: 'bind', nr: 49, args: { family: 'AF_INET', port: 80 }, privileges: ['PRIV_NETINET_RESERVEDPORT'], capability: 'CAP_NET_BIND_SERVICE', exe: '/usr/sbin/nginx', ruleId: 'web' })
          : k === 2
            ? eventFixtures.decision(runId, seq, { syscall: 'chown', nr: 92, args: { uid: 33, gid: 33 }, privileges: ['PRIV_VFS_CHOWN'], capability: 'CAP_CHOWN', decision: 'deny', errno: 1, ruleId: null, answeredBy: 'errno', exe: '/usr/sbin/nginx' })
            : eventFixtures.decision(runId, seq, { syscall: 'capget', nr: 125, args: {}, privileges: [], capability: null, ruleId: null });
  }
  return out;
}

function row(label: string, events: number, ms: number, cpuMs: number, extra = '') {
  const rate = (x: number) => Math.round((events / x) * 1000).toLocaleString('en-US').padStart(11);
  process.stdout.write(`${label.padEnd(46)} ${String(events).padStart(9)} events ${ms.toFixed(0).padStart(7)} ms ${rate(ms)}/s wall ${rate(cpuMs)}/s cpu  ${extra}\n`);
}
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

async function main() {
const dir = mkdtempSync(join(base, 'capulator-bench-append-'));
try {
  process.stdout.write(`event-append: ${N} decision events, batch ${B}, ${R} runs per appendBatch (node ${process.version})\n`);
  // Events are built outside the timed sections (the runtime receives them from the agent).
  const pre = decisions('floor', 1, Math.min(N, 200_000));
  let t = performance.now();
  let c = cpu();
  let prev = GENESIS_HASH;
  for (let i = 0; i < pre.length; i++) {
    const text = JSON.stringify(pre[i].payload);
    prev = chainHash(prev, envelopeText(i + 1, '"run-floor"', i + 1, pre[i].type, 1, pre[i].at, text));
  }
  row('CPU floor: JSON.stringify + sha256 chain', pre.length, performance.now() - t, cpu() - c);

  // One run stream, B events per transaction: payloads as objects (serialised by the store); as
  // the runtime records them, the agent's payload text passed through (TextEvent); and the whole
  // runtime ingest, from the agent's decision lines (parsed in the timed section) to the store.
  const asText = (evs: NewEvent[]) => evs.map((e) => new TextEvent(e.type, e.at, JSON.stringify(e.payload)));
  const asLines = (evs: NewEvent[]) =>
    evs.map((e) => `decision\t${e.type}\t${(e.payload as { decision: string }).decision}\t${e.at}\t${JSON.stringify(e.payload)}\n`).join('');
  const same = (x: unknown) => x as NewEvent[];
  const parseLines = (x: unknown) => {
    const text = x as string;
    const out: NewEvent[] = [];
    for (let start = 0, nl = text.indexOf('\n'); nl >= 0; start = nl + 1, nl = text.indexOf('\n', start)) {
      const d = parseDecisionLine(text.slice(start, nl));
      if (!d) throw new Error('bad line');
      out.push(d);
    }
    return out;
  };
  for (const [label, file, make, ingest] of [
    [`append: 1 run stream, ${B} per transaction`, 'one.db', (evs: NewEvent[]) => evs, same],
    [`append: agent text (TextEvent), ${B} per transaction`, 'text.db', asText, same],
    [`runtime ingest: agent lines → parse → append`, 'lines.db', asLines, parseLines],
  ] as Array<[string, string, (evs: NewEvent[]) => unknown, (x: unknown) => NewEvent[]]>) {
    const store = SqliteEventStore.open(join(dir, file));
    let appended = 0;
    let ms = 0;
    let cms = 0;
    let seq = 1;
    while (appended < N) {
      const n = Math.min(B, N - appended);
      const input = make(decisions('r1', seq, n));
      const t0 = performance.now();
      const c0 = cpu();
      store.appendSync([{ streamId: 'run-r1', expectedVersion: 'any', events: ingest(input) }]);
      ms += performance.now() - t0;
      cms += cpu() - c0;
      appended += n;
      seq += n;
    }
    const v = store.verify();
    row(label, appended, ms, cms, `file ${(statSync(join(dir, file)).size / 1e6).toFixed(0)} MB, verify ${v.ok ? 'ok' : 'FAILED'}`);
    await store.close();
    rmSync(join(dir, file), { force: true });
  }
  {
    // the runtime's ingest as it is now: the agent appends its lines to the run's spool; the
    // runtime tails the file (SpoolTail, 1 MiB reads), splits, parses and appends B per transaction
    const spool = join(dir, 'decisions.spool');
    for (let seq = 1; seq <= N; seq += 10_000) appendFileSync(spool, asLines(decisions('r1', seq, Math.min(10_000, N - seq + 1))));
    const store = SqliteEventStore.open(join(dir, 'spool.db'));
    const t0 = performance.now();
    const c0 = cpu();
    const tail = new SpoolTail(spool);
    let partial = '';
    let batch: NewEvent[] = [];
    let appended = 0;
    for (let chunk = tail.read(); chunk !== ''; chunk = tail.read()) {
      const text = partial + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; start = nl + 1, nl = text.indexOf('\n', start)) {
        const d = parseDecisionLine(text.slice(start, nl));
        if (!d) throw new Error('bad line');
        batch.push(d);
        if (batch.length === B) {
          store.appendSync([{ streamId: 'run-r1', expectedVersion: 'any', events: batch }]);
          appended += batch.length;
          batch = [];
        }
      }
      partial = text.slice(start);
    }
    if (batch.length > 0) store.appendSync([{ streamId: 'run-r1', expectedVersion: 'any', events: batch }]);
    appended += batch.length;
    tail.close();
    const ms = performance.now() - t0;
    const cms = cpu() - c0;
    const v = store.verify();
    row(`runtime ingest from the spool: tail → parse → append`, appended, ms, cms, `verify ${v.ok ? 'ok' : 'FAILED'}`);
    await store.close();
    rmSync(join(dir, 'spool.db'), { force: true });
    rmSync(spool, { force: true });
  }
  {
    const store = SqliteEventStore.open(join(dir, 'many.db'));
    let appended = 0;
    let ms = 0;
    let cms = 0;
    const seqs = new Array(R).fill(1);
    const per = Math.max(1, Math.floor(B / R));
    while (appended < N) {
      const reqs = [];
      for (let r = 0; r < R && appended < N; r++) {
        const n = Math.min(per, N - appended);
        reqs.push({ streamId: `run-m${r}`, expectedVersion: 'any' as const, events: decisions(`m${r}`, seqs[r], n) });
        seqs[r] += n;
        appended += n;
      }
      const t0 = performance.now();
      const c0 = cpu();
      store.appendSync(reqs);
      ms += performance.now() - t0;
      cms += cpu() - c0;
    }
    row(`appendBatch: ${R} run streams × ${per} per transaction`, appended, ms, cms);
    await store.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
}

void main();
