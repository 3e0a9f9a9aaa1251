import { api, ApiError, sse } from './api';
import { clear, fmtTime, h } from './dom';
import { outcomeLabel, policyLabel, type Run } from './runs';
import { Timeline, type Mark } from './timeline';
import type { RunTimeline } from '../../gateway/src/api-shapes';

const DECISION_TYPES = new Set(['CapabilitiesQueried', 'CapabilitiesChangeRequested', 'PrivilegeChecked']);
/** rows of the decision table (the timeline shows them all) */
const TABLE_ROWS = 500;
const SETS = ['bounding', 'permitted', 'effective', 'inheritable', 'ambient'] as const;

type Columns = RunTimeline;

/** A decision as GET /v1/decisions returns it (the decisions read model). */
export interface DecisionRow {
  position: number;
  at: string;
  runId: string;
  seq: number;
  type: string;
  syscall: string;
  args: Record<string, unknown>;
  exe: string;
  uid: number;
  privileges: string[];
  capability: string | null;
  decision: 'allow' | 'deny' | 'emulate';
  ruleId: string | null;
  policy: string;
  errno: number | null;
  answeredBy: string;
}

function describe(d: { type: string; syscall: string; privileges: string[]; capability: string | null; ruleId: string | null; answeredBy?: string }): string {
  const what = d.type === 'PrivilegeChecked' ? d.syscall : `${d.type} (${d.syscall})`;
  return `${what} ${d.privileges.join(',')} ${d.capability ?? ''} rule ${d.ruleId ?? '(default)'}${d.answeredBy ? ` · ${d.answeredBy}` : ''}`;
}

function markOf(d: DecisionRow, start: number, violation = false): Mark {
  return { position: d.position, t: Date.parse(d.at) - start, exe: d.exe || '(unknown)', outcome: violation ? 'violation' : d.decision, label: describe(d) };
}

/**
 * One run: its header, capability sets with the rules that granted them (RunStarted), the
 * privilege timeline, and the decision table with `audit log`'s filters. A run still going is
 * followed over its SSE stream; an ended one reads its decisions in pages of 10,000.
 */
export function runView(main: HTMLElement, id?: string): () => void {
  const ac = new AbortController();
  const headBox = h('div', { id: 'run-head' }, 'loading…');
  const caps = h('div', { id: 'run-caps' }, h('p', { class: 'meta' }, 'waiting for RunStarted…'));
  const summary = h('p', { class: 'sr-only', id: 'timeline-summary', 'aria-live': 'polite' });
  const tl = new Timeline((t) => (summary.textContent = t));
  const tlStatus = h('span', { class: 'meta', id: 'timeline-status' });
  const table = h('div', { id: 'run-decisions' });
  const outStatus = h('span', { class: 'meta', id: 'output-status' });
  const output = h('pre', { class: 'output', id: 'run-output', tabindex: '0', 'aria-labelledby': 'output-title' });
  main.append(
    h('p', {}, h('a', { href: '#/runs' }, '← all runs')),
    h('h2', {}, 'Run ', h('code', {}, id ?? '')),
    headBox,
    h('h3', {}, 'Capability sets'),
    caps,
    h('h3', { id: 'timeline-title' }, 'Privilege timeline ', tlStatus),
    h(
      'div',
      { class: 'legend' },
      h('span', {}, h('span', { class: 'sw allow' }), 'allowed'),
      h('span', {}, h('span', { class: 'sw emulate' }), 'emulated'),
      h('span', {}, h('span', { class: 'sw deny' }), 'denied'),
      h('span', {}, h('span', { class: 'sw violation' }), 'violation (kernel granted, policy denies)'),
      h('span', {}, 'wheel/+/- zoom · drag/arrows pan · double-click/0 reset'),
    ),
    tl.el,
    summary,
    h('h3', {}, 'Decisions'),
    table,
    h('h3', { id: 'output-title' }, 'Output ', outStatus),
    output,
  );
  (window as any).__capTimeline = tl;
  let start = NaN;
  let run: Run | undefined;
  const seen = new Set<number>();

  const renderHead = (r: Run) => {
    clear(headBox);
    headBox.append(
      h(
        'dl',
        { class: 'kv' },
        h('dt', {}, 'status'), h('dd', { id: 'run-status', class: `st st-${r.status}` }, r.status),
        h('dt', {}, 'image'), h('dd', {}, r.image),
        h('dt', {}, 'command'), h('dd', {}, h('code', {}, r.command.join(' '))),
        h('dt', {}, 'policy'), h('dd', {}, policyLabel(r), r.learn ? ' (learn mode)' : ''),
        h('dt', {}, 'decisions'), h('dd', {}, h('span', { class: 'n-allow' }, `${r.counts.allow} allowed`), ', ', h('span', { class: 'n-deny' }, `${r.counts.deny} denied`), ', ', h('span', { class: 'n-emulate' }, `${r.counts.emulate} emulated`), r.lostEvents ? h('span', { class: 'n-deny' }, `, ${r.lostEvents} lost`) : null),
        h('dt', {}, 'outcome'), h('dd', {}, outcomeLabel(r) || '—'),
        h('dt', {}, 'requested / started / ended'), h('dd', {}, `${fmtTime(r.requestedAt)} / ${fmtTime(r.startedAt)} / ${fmtTime(r.endedAt)}`),
      ),
    );
  };
  const renderCaps = (p: { capabilities: Record<string, string[]>; provenance: Record<string, string[]>; user: { uid: number; gid: number }; mechanisms?: Record<string, unknown> }) => {
    clear(caps);
    const all = new Set<string>();
    for (const s of SETS) for (const c of p.capabilities[s] ?? []) all.add(c);
    const names = [...all].sort();
    caps.append(
      h('p', { class: 'meta' }, `uid ${p.user.uid}, gid ${p.user.gid}`, p.mechanisms ? ` · recorded by: kernel ${p.mechanisms.kernelRecord}, seccomp ${p.mechanisms.seccomp}` : ''),
      names.length === 0
        ? h('p', {}, 'No capabilities in any set.')
        : h(
            'div',
            { class: 'tablewrap' },
            h(
              'table',
              { class: 'grid', id: 'caps-table' },
              h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'capability'), SETS.map((s) => h('th', { scope: 'col' }, s)), h('th', { scope: 'col' }, 'granted by rule'))),
              h(
                'tbody',
                {},
                names.map((c) => h('tr', {}, h('th', { scope: 'row' }, c), SETS.map((s) => h('td', {}, (p.capabilities[s] ?? []).includes(c) ? '✓' : '')), h('td', {}, (p.provenance[c] ?? []).join(', ')))),
              ),
            ),
          ),
    );
  };

  const addRows = (rows: DecisionRow[], violations?: Set<number>) => {
    const fresh = rows.filter((d) => !seen.has(d.position));
    for (const d of fresh) seen.add(d.position);
    if (isNaN(start) && fresh.length) start = Date.parse(fresh[0].at);
    tl.add(fresh.map((d) => markOf(d, start, violations?.has(d.position))));
    tlStatus.textContent = `(${tl.size} marks)`;
  };

  const loadAll = async () => {
    const t0 = performance.now();
    // the columnar timeline (GET /v1/decisions/timeline): ~25 bytes a decision
    try {
      const c = await api<Columns>(`/v1/decisions/timeline?run=${id}`, { signal: ac.signal });
      const outcomes = ['allow', 'emulate', 'deny'] as const;
      const labels = c.kinds.map((k) => describe(k));
      const base = c.start ? Date.parse(c.start) : start;
      if (isNaN(start)) start = base;
      const shift = base - start;
      const marks: Mark[] = new Array(c.count);
      for (let i = 0; i < c.count; i++) {
        seen.add(c.position[i]);
        marks[i] = { position: c.position[i], t: c.t[i] + shift, exe: c.programs[c.program[i]] || '(unknown)', outcome: outcomes[c.outcome[i]] ?? 'allow', label: labels[c.kind[i]] };
      }
      tl.add(marks);
      tlStatus.textContent = `(${tl.size} marks)`;
      (window as any).__capTimelineLoadMs = performance.now() - t0;
      return;
    } catch (e) {
      if (ac.signal.aborted || !(e instanceof ApiError && e.status === 503)) throw e;
    }
    // another store: the decisions, 10,000 a page
    let after = 0;
    for (;;) {
      const res = await api<{ decisions: DecisionRow[]; truncated: boolean }>(`/v1/decisions?run=${id}&limit=10000${after ? `&since=${after}` : ''}`, { signal: ac.signal });
      addRows(res.decisions);
      if (!res.truncated || res.decisions.length === 0) break;
      after = res.decisions[res.decisions.length - 1].position;
    }
    (window as any).__capTimelineLoadMs = performance.now() - t0;
  };

  const follow = (live: boolean) => {
    const sc = new AbortController();
    ac.signal.addEventListener('abort', () => sc.abort());
    const buffer: DecisionRow[] = [];
    const violations = new Set<number>();
    let flush = 0;
    sse(
      `/v1/runs/${id}/events`,
      (m) => {
        const e = m.data as { position: number; type: string; payload: any; at: string };
        if (e.type === 'RunStarted') {
          renderCaps(e.payload);
          if (isNaN(start)) start = Date.parse(e.at);
          if (!live) sc.abort(); // an ended run: the timeline comes from the decisions pages
        } else if (DECISION_TYPES.has(e.type) && live) {
          const p = e.payload;
          if (p.kernel?.violation) violations.add(e.position);
          buffer.push({ position: e.position, at: p.at ?? e.at, runId: p.runId, seq: p.seq, type: e.type, syscall: p.syscall, args: p.args, exe: p.subject?.exe ?? '', uid: p.subject?.uid ?? 0, privileges: p.privileges ?? [], capability: p.capability ?? null, decision: p.decision, ruleId: p.ruleId ?? null, policy: `${p.policy?.name}@${p.policy?.version}`, errno: p.errno ?? null, answeredBy: p.answeredBy });
          flush ||= requestAnimationFrame(() => {
            flush = 0;
            addRows(buffer.splice(0), violations);
          });
        } else if (e.type === 'RunExited' || e.type === 'RunFailed') {
          if (e.type === 'RunFailed' && caps.textContent?.includes('waiting')) {
            clear(caps);
            caps.append(h('p', {}, 'The run failed before it started: no capability sets.'));
          }
          void api<Run>(`/v1/runs/${id}`, { signal: ac.signal }).then((r) => {
            run = r;
            renderHead(r);
            void loadTable();
          });
        }
      },
      sc.signal,
      { onEnd: () => {} },
    );
  };

  // the decision table, with the filters of `capulator audit log`
  const fDecision = h('select', { id: 'f-decision', 'aria-label': 'Decision' }, h('option', { value: '' }, 'any'), ['allow', 'deny', 'emulate'].map((d) => h('option', { value: d }, d)));
  const fPriv = h('input', { id: 'f-privilege', placeholder: 'PRIV_…', 'aria-label': 'Privilege' });
  const fCap = h('input', { id: 'f-capability', placeholder: 'CAP_…', 'aria-label': 'Capability' });
  const fExe = h('input', { id: 'f-exe', placeholder: '/bin/*', 'aria-label': 'Program (glob)' });
  const tableErr = h('p', { class: 'err', role: 'alert' });
  const tableBox = h('div', {});
  const loadTable = async () => {
    const qs = new URLSearchParams({ run: id!, limit: String(TABLE_ROWS) });
    if (fDecision.value) qs.set('decision', fDecision.value);
    if (fPriv.value.trim()) qs.set('privilege', fPriv.value.trim());
    if (fCap.value.trim()) qs.set('capability', fCap.value.trim());
    if (fExe.value.trim()) qs.set('exe', fExe.value.trim());
    tableErr.textContent = '';
    try {
      const res = await api<{ decisions: DecisionRow[]; truncated: boolean }>(`/v1/decisions?${qs}`, { signal: ac.signal });
      clear(tableBox);
      tableBox.append(
        h('p', { class: 'meta' }, res.truncated ? `the first ${res.decisions.length} decisions (narrow the filters, or use capulator audit log, for the rest)` : `${res.decisions.length} decisions`),
        h(
          'div',
          { class: 'tablewrap' },
          h(
            'table',
            { class: 'grid', id: 'decisions-table' },
            h('thead', {}, h('tr', {}, ['position', 'seq', 'time', 'program', 'syscall', 'privileges', 'capability', 'decision', 'rule', 'answered by'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              res.decisions.map((d) =>
                h('tr', {}, h('td', {}, d.position), h('td', {}, d.seq), h('td', {}, fmtTime(d.at)), h('td', {}, d.exe), h('td', {}, d.syscall), h('td', {}, d.privileges.join(', ')), h('td', {}, d.capability ?? ''), h('td', { class: `n-${d.decision}` }, d.decision), h('td', {}, d.ruleId ?? '(default)'), h('td', {}, d.answeredBy)),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      if (!ac.signal.aborted) tableErr.textContent = (e as Error).message;
    }
  };
  const filterForm = h(
    'form',
    { class: 'filters', id: 'decision-filters' },
    h('label', {}, 'Decision', fDecision),
    h('label', {}, 'Privilege', fPriv),
    h('label', {}, 'Capability', fCap),
    h('label', {}, 'Program', fExe),
    h('button', { type: 'submit' }, 'Filter'),
  );
  filterForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void loadTable();
  });
  table.append(filterForm, tableErr, tableBox);

  /** The program's stdout and stderr (GET /v1/runs/{id}/logs), followed while the run goes on. */
  const followOutput = (live: boolean) => {
    let bytes = 0;
    outStatus.textContent = live ? '(following)' : '';
    sse(
      `/v1/runs/${id}/logs${live ? '?follow=1' : ''}`,
      (m) => {
        if (m.event === 'end') {
          outStatus.textContent = `(${bytes} bytes${m.data?.truncated ? '; the oldest output went past the 4 MiB kept' : ''})`;
          if (bytes === 0) output.textContent = 'No output: the program wrote nothing (or it ran on a Kafka worker, whose output this server does not keep).';
          return;
        }
        const text = String(m.data?.text ?? '');
        bytes += text.length;
        output.append(m.event === 'stderr' ? h('span', { class: 'stderr' }, text) : text);
      },
      ac.signal,
      {
        onEnd: () => {},
        onRefused: (status) => {
          outStatus.textContent = '(no output kept)';
          output.textContent = status === 404 ? 'This server keeps no output for this run (runs of Kafka workers, or ended before the server started).' : `Cannot read the output (${status}).`;
        },
      },
    );
  };

  const stamps: Record<string, number> = { view: performance.now() };
  (window as any).__capRunStamps = stamps;
  api<Run>(`/v1/runs/${id}`, { signal: ac.signal })
    .then(async (r) => {
      stamps.run = performance.now();
      run = r;
      renderHead(r);
      const live = r.status === 'queued' || r.status === 'running';
      if (r.startedAt) start = Date.parse(r.startedAt);
      if (live) {
        follow(true);
      } else {
        // the timeline first (one request, nothing else competing for the server), then the rest
        await loadAll();
        stamps.timeline = performance.now();
        tl.draw();
        stamps.drawn = performance.now();
        follow(false);
        if (r.status === 'failed' && caps.textContent?.includes('waiting')) {
          clear(caps);
          caps.append(h('p', {}, 'The run failed before it started: no capability sets.'));
        }
      }
      void loadTable();
      followOutput(live);
    })
    .catch((e) => {
      if (!ac.signal.aborted) {
        clear(headBox);
        headBox.append(h('p', { class: 'err', role: 'alert' }, `Cannot read run: ${(e as Error).message}`));
      }
    });
  void run;
  return () => ac.abort();
}
