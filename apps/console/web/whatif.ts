import { api, ApiError } from './api';
import { append, clear, fmtTime, h } from './dom';
import { policyLabel, type Run } from './runs';

interface DecisionChange { kind: 'decision'; position: number; runId: string; seq: number; exe: string; syscall: string; privileges: string[]; old: { decision: string; ruleId: string | null }; new: { decision: string; ruleId: string | null }; regression: boolean }
interface CapabilityChange { kind: 'capabilities'; runId: string; lost: string[]; gained: string[]; usedLost: string[]; regression: boolean }
interface Report {
  policy: { name: string; hash: string };
  examined: number;
  changed: number;
  wouldDeny: number;
  exitCode: number;
  summary: Record<string, number>;
  changes: Array<DecisionChange | CapabilityChange>;
  truncated: boolean;
}

/** Lint errors (422 policy_invalid) as a list of located messages. */
export function problemList(details: unknown): HTMLElement {
  // lint problems ({location, message, severity}) or field errors of a refused request ({field, messages})
  const list = Array.isArray(details) ? (details as Array<{ location?: string; message?: string; severity?: string; field?: string; messages?: string[] }>) : [];
  return h('ul', { class: 'problems' }, list.map((d) => h('li', { class: d.severity ?? 'error' }, d.field !== undefined ? `${d.field}: ${(d.messages ?? []).join('; ')}` : `${d.location ?? ''}: ${d.message ?? ''}`)));
}

/**
 * What-if: a published version or pasted YAML, replayed (POST /v1/replays) against the chosen
 * runs or all of them. The verdict is `audit replay`'s exit status: 1 when something allowed
 * before would now be denied.
 */
export function whatIfView(main: HTMLElement): () => void {
  const ac = new AbortController();
  const srcPublished = h('input', { type: 'radio', name: 'src', id: 'src-published', value: 'published', checked: true });
  const srcYaml = h('input', { type: 'radio', name: 'src', id: 'src-yaml', value: 'yaml' });
  const version = h('select', { id: 'whatif-policy', 'aria-label': 'Published policy version' });
  const yaml = h('textarea', { id: 'whatif-yaml', class: 'yaml', 'aria-label': 'Policy YAML', spellcheck: 'false', placeholder: 'apiVersion: capulator/v1\nkind: Policy\n…' });
  const allRuns = h('input', { type: 'checkbox', id: 'whatif-all', checked: true });
  const picker = h('div', { class: 'runpick', id: 'whatif-runs', role: 'group', 'aria-label': 'Runs to replay' }, 'loading runs…');
  const go = h('button', { type: 'submit', class: 'primary', id: 'whatif-run' }, 'Replay');
  const out = h('div', { id: 'whatif-result', 'aria-live': 'polite' });
  const form = h(
    'form',
    { id: 'whatif-form' },
    h(
      'div',
      { class: 'cols' },
      h(
        'fieldset',
        {},
        h('legend', {}, 'Candidate policy'),
        h('p', {}, srcPublished, h('label', { for: 'src-published' }, ' a published version: '), version),
        h('p', {}, srcYaml, h('label', { for: 'src-yaml' }, ' or this YAML:')),
        yaml,
      ),
      h('fieldset', {}, h('legend', {}, 'Replay against'), h('p', {}, allRuns, h('label', { for: 'whatif-all' }, ' every recorded run')), picker),
    ),
    h('p', {}, go),
  );
  main.append(h('h2', {}, 'What-if'), h('p', { class: 'meta' }, 'Every recorded decision and start-time capability computation of the chosen runs, decided again under the candidate policy. Nothing is published.'), form, out);
  yaml.addEventListener('input', () => (srcYaml.checked = true));
  version.addEventListener('change', () => (srcPublished.checked = true));

  api<{ policies: Array<{ name: string; versions: number[]; latest: number }> }>('/v1/policies', { signal: ac.signal })
    .then((res) => {
      clear(version);
      for (const p of res.policies) for (const v of [...p.versions].reverse()) version.append(h('option', { value: `${p.name}@${v}` }, `${p.name}@${v}${v === p.latest ? ' (latest)' : ''}`));
      if (res.policies.length === 0) version.append(h('option', { value: '' }, '(none published)'));
    })
    .catch(() => {});
  api<{ runs: Run[] }>('/v1/runs?limit=500', { signal: ac.signal })
    .then((res) => {
      clear(picker);
      for (const r of res.runs) {
        const cb = h('input', { type: 'checkbox', value: r.id, id: `pick-${r.id}`, 'data-run': r.id });
        cb.addEventListener('change', () => (allRuns.checked = false));
        picker.append(h('label', { for: `pick-${r.id}` }, cb, ` ${r.id.slice(0, 8)} ${r.status} ${r.image} ${policyLabel(r)} (${r.counts.allow}/${r.counts.deny}) ${fmtTime(r.requestedAt)}`));
      }
      if (res.runs.length === 0) picker.append('no runs recorded');
    })
    .catch(() => {});

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const runIds = allRuns.checked ? undefined : [...picker.querySelectorAll<HTMLInputElement>('input:checked')].map((c) => c.value);
    const body = { ...(srcYaml.checked ? { policyYaml: yaml.value } : { policy: version.value }), ...(runIds ? { runIds } : {}) };
    clear(out);
    out.append(h('p', { class: 'meta' }, 'replaying…'));
    go.disabled = true;
    try {
      const r = await api<Report>('/v1/replays', { method: 'POST', json: body, signal: ac.signal });
      clear(out);
      renderReport(out, r);
    } catch (e) {
      clear(out);
      out.append(h('p', { class: 'err', role: 'alert' }, `What-if refused: ${(e as Error).message}`));
      if (e instanceof ApiError && e.details) out.append(problemList(e.details));
    } finally {
      go.disabled = false;
    }
  });
  return () => ac.abort();
}

function renderReport(out: HTMLElement, r: Report): void {
  const decisions = r.changes.filter((c): c is DecisionChange => c.kind === 'decision');
  const capChanges = r.changes.filter((c): c is CapabilityChange => c.kind === 'capabilities');
  const denied = decisions.filter((c) => c.regression);
  const relaxed = decisions.filter((c) => !c.regression && c.old.decision !== c.new.decision);
  const lostUsed = capChanges.filter((c) => c.usedLost.length > 0);
  append(out, [
    h(
      'div',
      { class: `verdict ${r.exitCode === 0 ? 'pass' : 'fail'}`, id: 'whatif-verdict', 'data-exit': String(r.exitCode) },
      r.exitCode === 0
        ? `exit 0: nothing allowed before would be denied under ${r.policy.name} (${r.changed} changed of ${r.examined} examined)`
        : `exit ${r.exitCode}: ${r.wouldDeny} decision(s) allowed before would now be denied under ${r.policy.name} (${r.changed} changed of ${r.examined} examined)`,
    ),
    h('dl', { class: 'kv' }, Object.entries(r.summary ?? {}).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
    section('Would now be denied', 'whatif-denied', denied),
    section('Would be relaxed', 'whatif-relaxed', relaxed),
    h('h3', {}, `Runs that lose a capability they used (${lostUsed.length})`),
    lostUsed.length === 0
      ? h('p', { class: 'meta' }, 'none')
      : h('table', { class: 'grid', id: 'whatif-caps' }, h('thead', {}, h('tr', {}, ['run', 'used and lost', 'lost', 'gained'].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, lostUsed.map((c) => h('tr', {}, h('td', {}, h('a', { href: `#/runs/${c.runId}` }, c.runId.slice(0, 8))), h('td', { class: 'n-deny' }, c.usedLost.join(', ')), h('td', {}, c.lost.join(', ')), h('td', {}, c.gained.join(', ')))))),
    r.truncated ? h('p', { class: 'meta' }, 'Only the first 1000 changes are listed.') : null,
  ]);
}

function section(title: string, id: string, rows: DecisionChange[]): HTMLElement[] {
  return [
    h('h3', {}, `${title} (${rows.length})`),
    rows.length === 0
      ? h('p', { class: 'meta' }, 'none')
      : h(
          'div',
          { class: 'tablewrap' },
          h(
            'table',
            { class: 'grid', id },
            h('thead', {}, h('tr', {}, ['run', 'seq', 'program', 'syscall', 'privileges', 'before', 'after'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              rows.map((c) =>
                h('tr', {}, h('td', {}, h('a', { href: `#/runs/${c.runId}` }, c.runId.slice(0, 8))), h('td', {}, c.seq), h('td', {}, c.exe), h('td', {}, c.syscall), h('td', {}, c.privileges.join(', ')), h('td', { class: `n-${c.old.decision}` }, `${c.old.decision} (${c.old.ruleId ?? 'default'})`), h('td', { class: `n-${c.new.decision}` }, `${c.new.decision} (${c.new.ruleId ?? 'default'})`)),
              ),
            ),
          ),
        ),
  ];
}
