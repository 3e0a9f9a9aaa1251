import { api, sse } from './api';
import { clear, fmtTime, h } from './dom';

/** A run as GET /v1/runs/{id} answers (the gateway's own type). */
export type { RunView as Run } from '../../gateway/src/api-shapes';
import type { RunView as Run } from '../../gateway/src/api-shapes';

const ROW = 28;

export function policyLabel(r: Run): string {
  return r.policy ? `${r.policy.name}@${r.policy.version}` : '';
}
export function outcomeLabel(r: Run): string {
  if (r.status === 'failed') return `failed${r.stage ? ` (${r.stage})` : ''}: ${r.reason ?? ''}`;
  if (r.status === 'exited') return r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`;
  return '';
}

/**
 * The runs list: GET /v1/runs (up to 10,000) merged with GET /v1/runs/live (SSE), newest first.
 * Only the rows in view exist in the DOM (a fixed row height, a sizer the full height, rows
 * placed absolutely), so 10,000 runs scroll like 30.
 */
export function runsView(main: HTMLElement): () => void {
  const ac = new AbortController();
  const runs = new Map<string, Run>();
  let ordered: Run[] = [];
  let filtered: Run[] = [];
  const q = h('input', { type: 'search', id: 'runs-q', placeholder: 'id, image, policy, command…', 'aria-label': 'Search runs' });
  const status = h(
    'select',
    { id: 'runs-status', 'aria-label': 'Status' },
    h('option', { value: '' }, 'any'),
    ['queued', 'running', 'exited', 'failed'].map((s) => h('option', { value: s }, s)),
  );
  const denied = h('input', { type: 'checkbox', id: 'runs-denied' });
  const count = h('span', { class: 'meta', id: 'runs-count', 'aria-live': 'polite' }, 'loading…');
  const live = h('span', { class: 'meta', id: 'runs-live' }, 'connecting…');
  const sizer = h('div', { class: 'sizer' });
  const list = h('div', { class: 'vlist', id: 'runs-list', role: 'table', 'aria-label': 'Runs', 'aria-rowcount': '0', tabindex: '0' });
  const head = h(
    'div',
    { class: 'row head', role: 'row' },
    ['status', 'run', 'image', 'policy', 'allow / deny / emul.', 'lost', 'exit or failure', 'requested'].map((c) => h('span', { role: 'columnheader' }, c)),
  );
  list.append(head, sizer);
  main.append(
    h('h2', {}, 'Runs'),
    h(
      'div',
      { class: 'filters' },
      h('label', { for: 'runs-q' }, 'Search', q),
      h('label', { for: 'runs-status' }, 'Status', status),
      h('label', { for: 'runs-denied' }, 'With denials', denied),
      count,
      live,
    ),
    list,
  );

  const matches = (r: Run): boolean => {
    if (status.value && r.status !== status.value) return false;
    if (denied.checked && r.counts.deny === 0) return false;
    const s = q.value.trim().toLowerCase();
    if (!s) return true;
    return [r.id, r.image, policyLabel(r), r.command.join(' '), r.status, r.reason ?? ''].some((x) => x.toLowerCase().includes(s));
  };
  const refilter = () => {
    filtered = ordered.filter(matches);
    count.textContent = `${filtered.length} of ${ordered.length} runs`;
    list.setAttribute('aria-rowcount', String(filtered.length + 1));
    sizer.style.height = `${filtered.length * ROW}px`;
    paint(true);
  };
  const resort = () => {
    ordered = [...runs.values()].sort((a, b) => (a.requestedAt < b.requestedAt ? 1 : a.requestedAt > b.requestedAt ? -1 : a.id < b.id ? -1 : 1));
    refilter();
  };
  let painted = '';
  const paint = (force = false) => {
    const top = Math.max(0, Math.floor((list.scrollTop) / ROW) - 5);
    const n = Math.ceil(list.clientHeight / ROW) + 10;
    const key = `${top}:${n}`;
    if (!force && key === painted) return;
    painted = key;
    clear(sizer);
    for (let i = top; i < Math.min(filtered.length, top + n); i++) {
      const r = filtered[i];
      const row = h(
        'div',
        { class: 'row', role: 'row', tabindex: '0', 'aria-rowindex': String(i + 2), 'data-run': r.id, 'data-status': r.status },
        h('span', { role: 'cell', class: `st st-${r.status}` }, r.status),
        h('span', { role: 'cell', title: r.id }, h('a', { href: `#/runs/${r.id}` }, r.id.slice(0, 8))),
        h('span', { role: 'cell', title: r.image }, r.image),
        h('span', { role: 'cell' }, policyLabel(r), r.learn ? ' (learn)' : ''),
        h('span', { role: 'cell' }, h('span', { class: 'n-allow' }, r.counts.allow), ' / ', h('span', { class: r.counts.deny ? 'n-deny' : '' }, r.counts.deny), ' / ', h('span', { class: 'n-emulate' }, r.counts.emulate)),
        h('span', { role: 'cell', class: r.lostEvents ? 'n-deny' : '' }, r.lostEvents ?? 0),
        h('span', { role: 'cell', title: outcomeLabel(r) }, outcomeLabel(r)),
        h('span', { role: 'cell' }, fmtTime(r.requestedAt)),
      );
      row.style.transform = `translateY(${i * ROW}px)`;
      row.addEventListener('click', (ev) => {
        if ((ev.target as Element).tagName !== 'A') location.hash = `#/runs/${r.id}`;
      });
      row.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') location.hash = `#/runs/${r.id}`;
      });
      sizer.append(row);
    }
  };
  let raf = 0;
  list.addEventListener('scroll', () => {
    if (!raf) raf = requestAnimationFrame(() => ((raf = 0), paint()));
  });
  q.addEventListener('input', refilter);
  status.addEventListener('change', refilter);
  denied.addEventListener('change', refilter);

  // keep, per run, the view with the higher position (the list and the stream may cross)
  const merge = (r: Run) => {
    const old = runs.get(r.id);
    if (old && old.position > r.position) return false;
    runs.set(r.id, r);
    return true;
  };
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      resort();
    });
  };
  // subscribe first, then read the list: nothing falls between
  sse(
    '/v1/runs/live',
    (m) => {
      if (m.event === 'run' && merge(m.data as Run)) schedule();
    },
    ac.signal,
    { onOpen: () => (live.textContent = '● live') },
  );
  api<{ runs: Run[] }>('/v1/runs?limit=10000', { signal: ac.signal })
    .then((res) => {
      for (const r of res.runs) merge(r);
      resort();
    })
    .catch((e) => {
      if (!ac.signal.aborted) count.textContent = `cannot list runs: ${(e as Error).message}`;
    });
  (window as any).__capRuns = { size: () => runs.size, rendered: () => sizer.childElementCount };
  return () => ac.abort();
}
