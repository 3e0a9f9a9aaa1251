/**
 * What-if replay speed and memory, against a bare read of the same events, in one run.
 *   node dist/bench/replay.bench.js [--events N] [--db PATH] [--keep]
 * Builds (or reuses, with --db) a store of N recorded decisions over many runs, catches the read
 * models up, then times side by side:
 *   - a bare read of the events from the log (readAllSync: decode + JSON.parse),
 *   - a bare read of the decisions read model (the rows replay streams),
 *   - the what-if replay under a real policy (@capulator/policy evaluate + start capabilities),
 * printing RSS at the start, middle and end of the replay. Rates are per wall-clock second and per
 * CPU second (the latter is less sensitive to other processes on the machine).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, capabilitySets, evaluate, type DecisionRequest } from '@capulator/policy';
import { eventFixtures, ReadModelProjector, SqliteEventStore, whatIf, type NewEvent, type PolicyUnderTest } from '@capulator/events';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const N = Number(arg('--events') ?? 1_000_000);
const PER_RUN = 10_000;

/** Allows everything recorded: the common CI case, where nothing changes. */
const SAME = `apiVersion: capulator/v1
kind: Policy
metadata: { name: same, description: allows what was recorded }
defaults: { action: deny, audit: all }
rules:
  - id: ping-raw
    match: { exe: ["/usr/bin/ping"] }
    privileges: [PRIV_NETINET_RAW]
    action: allow
  - id: web
    privileges: [PRIV_NETINET_RESERVEDPORT]
    action: allow
  - id: chown-ok
    privileges: [PRIV_VFS_CHOWN]
    action: allow
`;

const POLICY = `apiVersion: capulator/v1
kind: Policy
metadata: { name: bench, description: what-if target }
defaults: { action: deny, audit: all }
rules:
  - id: ping-raw
    match: { exe: ["/usr/bin/ping", "/bin/ping"] }
    privileges: [PRIV_NETINET_RAW]
    action: allow
  - id: web-ports
    privileges: [PRIV_NETINET_RESERVEDPORT]
    when: { port: "80,443" }
    action: allow
`;

const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
const rss = () => mb(process.memoryUsage().rss);

function timed<T>(fn: () => T): { value: T; ms: number; cpuMs: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, ms, cpuMs: (c.user + c.system) / 1000 };
}

function row(label: string, events: number, ms: number, cpuMs: number, extra = '') {
  const rate = (x: number) => Math.round((events / x) * 1000).toLocaleString('en-US').padStart(11);
  process.stdout.write(`${label.padEnd(40)} ${String(events).padStart(10)}  ${ms.toFixed(0).padStart(7)} ms ${rate(ms)}/s wall ${rate(cpuMs)}/s cpu  ${extra}\n`);
}

function decisions(runId: string, from: number, n: number): NewEvent[] {
  const out: NewEvent[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const seq = from + i;
    const k = seq % 5;
    const uid = seq % 3; // a few users, so requests repeat but not trivially
    out[i] =
      k === 0
        ? eventFixtures.decision(runId, seq, { subject: { pid: 7, tid: 7, uid, gid: 0, exe: '/usr/bin/ping' } })
        : k === 1
          ? eventFixtures.decision(runId, seq, { syscall: 'bind', nr: 49, args: { family: 'AF_INET', port: seq % 2 ? 80 : 8443 }, privileges: ['PRIV_NETINET_RESERVEDPORT'], capability: 'CAP_NET_BIND_SERVICE', exe: '/usr/sbin/nginx', ruleId: 'web' })
          : k === 2
            ? eventFixtures.decision(runId, seq, { syscall: 'chown', nr: 92, args: { uid: 33, gid: 33 }, privileges: ['PRIV_VFS_CHOWN'], capability: 'CAP_CHOWN', ruleId: 'chown-ok', exe: '/usr/sbin/nginx' })
            : k === 3
              ? eventFixtures.decision(runId, seq, { syscall: 'capget', nr: 125, args: {}, privileges: [], capability: null, ruleId: null })
              : eventFixtures.decision(runId, seq, { syscall: 'setuid', nr: 105, args: { uid: 33 }, privileges: ['PRIV_CRED_SETUID'], capability: 'CAP_SETUID', ruleId: null, decision: 'deny', exe: '/usr/sbin/nginx' });
  }
  return out;
}

async function main() {
  const given = arg('--db');
  const dir = given ? undefined : mkdtempSync(join(tmpdir(), 'capulator-bench-replay-'));
  const path = given ?? join(dir!, 'events.db');
  const fresh = !existsSync(path);
  process.stdout.write(`replay: ${N} recorded decisions, ${PER_RUN} per run, store ${path} (node ${process.version}), RSS ${rss()}\n`);
  const store = SqliteEventStore.open(path);
  try {
    const have = (await store.headPosition()) > 0;
    if (fresh || !have) {
      const g = timed(() => {
        let written = 0;
        for (let r = 0; written < N; r++) {
          const id = `b${r}`;
          store.appendSync([{ streamId: `run-${id}`, expectedVersion: 'no-stream', events: [eventFixtures.runRequested(id), eventFixtures.runStarted(id, ['CAP_NET_RAW', 'CAP_NET_BIND_SERVICE', 'CAP_CHOWN'])] }]);
          for (let s = 1; s <= PER_RUN && written < N; s += 1000) {
            const n = Math.min(1000, PER_RUN - s + 1, N - written);
            store.appendSync([{ streamId: `run-${id}`, expectedVersion: 'any', events: decisions(id, s, n) }]);
            written += n;
          }
          store.appendSync([{ streamId: `run-${id}`, expectedVersion: 'any', events: [eventFixtures.runExited(id)] }]);
        }
        return written;
      });
      row('generate (append, hash chain)', g.value, g.ms, g.cpuMs);
    }
    const projector = new ReadModelProjector(store);
    const p = timed(() => (process.argv.includes('--rebuild') ? projector.rebuild() : projector.catchUp()));
    if (p.value) row('project (catch up read models)', p.value, p.ms, p.cpuMs);
    const total = store.db.prepare('SELECT count(*) FROM rm_decisions').pluck().get() as number;

    const bareLog = timed(() => {
      let n = 0;
      for (const e of store.readAllSync(1, { batch: 5000, types: ['PrivilegeChecked', 'CapabilitiesQueried', 'CapabilitiesChangeRequested'] })) if (e.position) n++;
      return n;
    });
    row('bare read: events from the log', bareLog.value, bareLog.ms, bareLog.cpuMs);
    const bareRm = timed(() => {
      let n = 0;
      for (const r of store.db.prepare('SELECT position, req_id, decision, rule_id FROM rm_decisions ORDER BY position').raw().iterate() as IterableIterator<unknown[]>) if (r[0]) n++;
      return n;
    });
    row('bare read: decisions read model', bareRm.value, bareRm.ms, bareRm.cpuMs);

    const maxPos = (await store.headPosition()) || 1;
    const replay = (label: string, text: string) => {
      const loaded = load(text, 'bench.yaml');
      if (!loaded.policy) throw new Error('bench policy does not load');
      const policy = loaded.policy;
      let evaluations = 0;
      const put: PolicyUnderTest = {
        evaluate: (r) => {
          evaluations++;
          const d = evaluate(policy, { syscall: r.syscall, args: r.args, privilege: r.privilege, exe: r.exe, uid: r.uid, gid: r.gid, image: r.image, arch: r.arch } as DecisionRequest);
          return { decision: d.decision, ruleId: d.ruleId };
        },
        startCapabilities: (c) => capabilitySets(policy, c).sets.bounding,
      };
      const rssLog: string[] = [`start ${rss()}`];
      const w = timed(() =>
        whatIf(store.db, put, {}, (c) => {
          if (rssLog.length < 2 && c.kind === 'decision' && c.position >= maxPos / 2) rssLog.push(`middle (position ${c.position} of ${maxPos}) ${rss()}`);
        }),
      );
      rssLog.push(`end ${rss()}`);
      const v = w.value;
      row(label, v.decisions, w.ms, w.cpuMs, `${v.changed} changed, ${v.regressions} would deny, ${v.capabilityRegressions} runs lose a used capability, ${evaluations} evaluations (distinct requests)`);
      process.stdout.write(`  ${label} / bare read of the read model: ${(w.ms / bareRm.ms).toFixed(2)}× wall, ${(w.cpuMs / bareRm.cpuMs).toFixed(2)}× cpu; / bare read of the log: ${(w.ms / bareLog.ms).toFixed(2)}× wall\n`);
      process.stdout.write(`  RSS during replay: ${rssLog.join(', ')}\n`);
    };
    replay('what-if replay (policy changes nothing)', SAME);
    replay('what-if replay (30% of decisions change)', POLICY);
  } finally {
    await store.close();
    if (dir && !process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
  }
}

void main();
