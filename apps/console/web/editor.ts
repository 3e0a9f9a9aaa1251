import { EditorView, basicSetup } from 'codemirror';
import { yaml as yamlLang } from '@codemirror/lang-yaml';
import { linter, lintGutter, forEachDiagnostic, type Diagnostic } from '@codemirror/lint';
import { autocompletion, type CompletionContext, type CompletionResult, type Completion } from '@codemirror/autocomplete';
import { hoverTooltip } from '@codemirror/view';
import type { Text } from '@codemirror/state';
import { PRIVILEGES } from '../../../libs/abi/src/privileges';
import { CAPABILITIES } from '../../../libs/abi/src/capabilities';
import { api, ApiError } from './api';
import { append, clear, h } from './dom';
import { problemList } from './whatif';

/** Property names of the policy JSON Schema (libs/policy/src/schema.ts), put in by the build. */
declare const __POLICY_KEYS__: Record<string, { paths: string[]; description: string; values: string[] }>;

interface LintProblem { code: string; message: string; location: string; line: number; col: number; severity: 'error' | 'warning' }
interface LintResult { ok: boolean; policy?: { name: string; hash: string }; errors: LintProblem[]; warnings: LintProblem[] }

const NAMES: Completion[] = [
  ...PRIVILEGES.map((p) => ({ label: p.name, type: 'constant', detail: p.trappable ? 'privilege' : 'privilege (kernel record only)', info: p.comment || p.section })),
  ...CAPABILITIES.map((c) => ({ label: c.name, type: 'constant', detail: `capability ${c.number}`, info: c.summary })),
];
const DESCRIBE = new Map(NAMES.map((n) => [n.label, `${n.label} — ${n.detail}\n${n.info as string}`]));
const KEYS: Completion[] = Object.entries(__POLICY_KEYS__).map(([k, v]) => ({ label: k, type: 'property', detail: v.paths.map((p) => p || '(top)').join(', '), info: v.description || undefined, apply: `${k}: ` }));
const VALUES: Completion[] = [...new Set(Object.values(__POLICY_KEYS__).flatMap((v) => v.values))].map((v) => ({ label: v, type: 'enum' }));

export const TEMPLATE = `apiVersion: capulator/v1
kind: Policy
metadata: { name: ping, description: raw ICMP only }
defaults: { action: deny, audit: all }
rules:
  - id: ping-raw
    privileges: [PRIV_NETINET_RAW]
    action: allow
`;

/** Privilege and capability names (with their descriptions from libs/abi), schema keys and enum values. */
function complete(ctx: CompletionContext): CompletionResult | null {
  const word = ctx.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
  if (!word && !ctx.explicit) return null;
  const from = word ? word.from : ctx.pos;
  const text = word?.text ?? '';
  const line = ctx.state.doc.lineAt(ctx.pos);
  const before = line.text.slice(0, from - line.from);
  const isKey = /^\s*(-\s+)?$/.test(before) || /[{,]\s*$/.test(before);
  if (/^(PRIV|CAP)/.test(text) || /(privileges|capabilities|caps)\s*:/.test(before)) return { from, options: NAMES, validFor: /^[A-Z_0-9]*$/ };
  return { from, options: isKey ? KEYS : [...VALUES, ...NAMES], validFor: /^[A-Za-z_0-9]*$/ };
}

const hover = hoverTooltip((view, pos) => {
  const line = view.state.doc.lineAt(pos);
  let s = pos - line.from, e = s;
  while (s > 0 && /[A-Z0-9_]/.test(line.text[s - 1])) s--;
  while (e < line.text.length && /[A-Z0-9_]/.test(line.text[e])) e++;
  const d = DESCRIBE.get(line.text.slice(s, e));
  if (!d) return null;
  return { pos: line.from + s, end: line.from + e, above: true, create: () => ({ dom: h('div', { class: 'cm-doc' }, d) }) };
});

function offset(doc: Text, lineNo: number, col: number): number {
  const l = doc.line(Math.min(Math.max(1, lineNo), doc.lines));
  return Math.min(l.to, l.from + Math.max(0, col - 1));
}

/** A small line diff (LCS) for "what this version changes". */
export function lineDiff(a: string, b: string): Array<[' ' | '+' | '-', string]> {
  const x = a.split('\n'), y = b.split('\n');
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out: Array<[' ' | '+' | '-', string]> = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) out.push(['-', x[i++]]);
    else out.push(['+', y[j++]]);
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

/**
 * The policy editor: CodeMirror 6 with YAML highlighting, completion and hover for privilege and
 * capability names, lint markers from POST /v1/policies/lint as you type, publish (POST
 * /v1/policies) and the diff against the version before.
 */
export function editorView(main: HTMLElement, _arg?: string): () => void {
  const ac = new AbortController();
  const load = h('select', { id: 'editor-load', 'aria-label': 'Load a published version' }, h('option', { value: '' }, 'load a published version…'));
  const status = h('p', { id: 'editor-status', class: 'meta', 'aria-live': 'polite' }, 'checking…');
  const problems = h('div', { id: 'editor-problems' });
  const publish = h('button', { type: 'button', class: 'primary', id: 'editor-publish' }, 'Publish');
  const note = h('input', { id: 'editor-note', placeholder: 'version note (kept in metadata.description when given)', 'aria-label': 'Version note', size: 50 });
  const result = h('div', { id: 'editor-result', 'aria-live': 'polite' });
  const host = h('div', { class: 'editor', id: 'editor' });
  const explainUid = h('input', { id: 'explain-uid', value: '0', size: 6, inputmode: 'numeric', 'aria-label': 'Container uid' });
  const explainBtn = h('button', { type: 'button', id: 'editor-explain' }, 'Explain');
  const explainOut = h('div', { id: 'editor-explanation', 'aria-live': 'polite' });
  main.append(
    h('h2', {}, 'Policy editor'),
    h('div', { class: 'filters' }, load),
    host,
    status,
    problems,
    h('div', { class: 'filters' }, note, publish),
    result,
    h('h3', {}, 'Explain'),
    h('p', { class: 'meta' }, 'What each rule asks, which layer enforces it (the kernel, a file capability, the agent, or only the record), and the capability sets a container of this uid starts with — as ', h('code', {}, 'capulator policy explain'), '. The rule at the cursor is shown first.'),
    h('div', { class: 'filters' }, h('label', {}, 'uid ', explainUid), explainBtn),
    explainOut,
  );
  let last: LintResult | undefined;
  const showProblems = (r: LintResult) => {
    last = r;
    clear(problems);
    const all = [...r.errors, ...r.warnings];
    status.textContent = r.ok ? `valid: ${r.policy?.name} ${r.policy?.hash.slice(0, 19)}…${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''}` : `${r.errors.length} error(s)`;
    status.className = r.ok ? 'meta' : 'err';
    if (all.length) problems.append(problemList(all));
  };
  const lintSource = linter(
    async (view): Promise<Diagnostic[]> => {
      const doc = view.state.doc;
      try {
        const r = await api<LintResult>('/v1/policies/lint', { method: 'POST', yaml: doc.toString(), signal: ac.signal });
        showProblems(r);
        return [...r.errors, ...r.warnings].map((p) => {
          const from = offset(doc, p.line, p.col);
          const wordEnd = /^[A-Za-z0-9_@.*-]+/.exec(doc.sliceString(from, Math.min(doc.length, from + 200)));
          return { from, to: from + (wordEnd ? wordEnd[0].length : 0), severity: p.severity, message: `${p.location}: ${p.message}`, source: p.code };
        });
      } catch (e) {
        status.textContent = `lint unavailable: ${(e as Error).message}`;
        return [];
      }
    },
    { delay: 300 },
  );
  const view = new EditorView({
    doc: TEMPLATE,
    parent: host,
    extensions: [
      // CodeMirror's theme goes in a <style> element: it carries the nonce the CSP allows
      EditorView.cspNonce.of(document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? ''),
      basicSetup,
      yamlLang(),
      lintGutter(),
      lintSource,
      autocompletion({ override: [complete] }),
      hover,
      EditorView.contentAttributes.of({ 'aria-label': 'Policy YAML' }),
    ],
  });
  (window as any).__capEditor = {
    view,
    diagnostics: () => {
      const out: Array<{ from: number; to: number; line: number; col: number; message: string; severity: string }> = [];
      forEachDiagnostic(view.state, (d, from, to) => {
        const l = view.state.doc.lineAt(from);
        out.push({ from, to, line: l.number, col: from - l.from + 1, message: d.message, severity: d.severity });
      });
      return out;
    },
    lastLint: () => last,
  };

  api<{ policies: Array<{ name: string; versions: number[] }> }>('/v1/policies', { signal: ac.signal })
    .then((res) => {
      for (const p of res.policies) for (const v of [...p.versions].reverse()) load.append(h('option', { value: `${p.name}/${v}` }, `${p.name}@${v}`));
    })
    .catch(() => {});
  load.addEventListener('change', async () => {
    if (!load.value) return;
    const [name, v] = load.value.split('/');
    const got = await api<{ yaml: string }>(`/v1/policies/${encodeURIComponent(name)}/versions/${v}`, { signal: ac.signal });
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: got.yaml } });
  });

  publish.addEventListener('click', async () => {
    clear(result);
    publish.disabled = true;
    try {
      let text = view.state.doc.toString();
      if (note.value.trim()) text = withNote(text, note.value.trim());
      const r = await api<{ name: string; version: number; hash: string; warnings: LintProblem[] }>('/v1/policies', { method: 'POST', yaml: text, signal: ac.signal });
      result.append(h('p', { id: 'editor-published', role: 'status' }, `published ${r.name}@${r.version} (${r.hash.slice(0, 19)}…)`));
      if (r.version > 1) {
        const prev = await api<{ yaml: string }>(`/v1/policies/${encodeURIComponent(r.name)}/versions/${r.version - 1}`, { signal: ac.signal });
        const diff = lineDiff(prev.yaml, text);
        const pre = h('pre', { class: 'diff', id: 'editor-diff', 'aria-label': `changes from ${r.name}@${r.version - 1}` });
        append(pre, diff.filter(([k]) => k !== ' ' || true).map(([k, l]) => h('span', { class: k === '+' ? 'add' : k === '-' ? 'del' : '' }, `${k} ${l}\n`)));
        result.append(h('h3', {}, `Changes from ${r.name}@${r.version - 1}`), pre);
      }
    } catch (e) {
      result.append(h('p', { class: 'err', role: 'alert' }, `Not published: ${(e as Error).message}`));
      if (e instanceof ApiError && e.details) result.append(problemList(e.details));
    } finally {
      publish.disabled = false;
    }
  });
  explainBtn.addEventListener('click', async () => {
    clear(explainOut);
    const cursorLine = view.state.doc.lineAt(view.state.selection.main.head).number;
    try {
      const r = await api<{ ok: boolean; errors: LintProblem[]; explanation?: Explanation }>(`/v1/policies/explain?uid=${encodeURIComponent(explainUid.value.trim())}`, { method: 'POST', yaml: view.state.doc.toString(), signal: ac.signal });
      if (!r.explanation) {
        explainOut.append(h('p', { class: 'err', role: 'alert' }, 'The policy does not load; fix the errors above first.'), problemList(r.errors));
        return;
      }
      explainOut.append(explanationView(r.explanation, cursorLine));
    } catch (e) {
      explainOut.append(h('p', { class: 'err', role: 'alert' }, `Cannot explain: ${(e as Error).message}`));
      if (e instanceof ApiError && e.details) explainOut.append(problemList(e.details));
    }
  });
  return () => {
    ac.abort();
    view.destroy();
  };
}

interface Explanation {
  policy: { name: string; defaults: { action: string; audit: string } };
  subject: { uid: number; gid: number };
  rules: Array<{ id: string; action: string; privileges: string[] | 'any'; conditions: string; enforcedBy: Array<{ text: string }>; location: { line: number } }>;
  capabilities: { sets: Record<string, string[]>; provenance: Record<string, Array<{ source: string; ruleId?: string; exe?: string[] }>> };
}

/** The rule at the cursor (the last one starting at or above it), the table of all rules, and the sets. */
function explanationView(x: Explanation, cursorLine: number): HTMLElement {
  const enforced = (r: Explanation['rules'][number]) => r.enforcedBy.map((e) => e.text).join('; ') || 'nothing for this container';
  const privs = (r: Explanation['rules'][number]) => (r.privileges === 'any' ? 'any' : r.privileges.length > 4 ? `${r.privileges.slice(0, 4).join(', ')}, … (${r.privileges.length})` : r.privileges.join(', '));
  const at = [...x.rules].reverse().find((r) => r.location.line <= cursorLine);
  const grants = (cap: string) => (x.capabilities.provenance[cap] ?? []).map((g) => (g.source === 'rule' ? `rule ${g.ruleId}` : g.source) + (g.exe ? ` (file capability of ${g.exe.join(', ')})` : '')).join('; ');
  const effective = x.capabilities.sets.effective ?? [];
  return h(
    'div',
    {},
    at
      ? h('p', { id: 'explain-rule' }, h('strong', {}, `rule ${at.id}`), ` (${at.action} ${privs(at)}) when ${at.conditions} — enforced by ${enforced(at)}`)
      : h('p', { id: 'explain-rule' }, `The cursor is above the rules: defaults decide (${x.policy.defaults.action}, audit ${x.policy.defaults.audit}).`),
    h(
      'div',
      { class: 'tablewrap' },
      h(
        'table',
        { class: 'grid', id: 'explain-rules' },
        h('thead', {}, h('tr', {}, ['rule', 'action', 'privileges', 'conditions', 'enforced by'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, x.rules.map((r) => h('tr', r === at ? { 'aria-current': 'true', class: 'current' } : {}, h('th', { scope: 'row' }, r.id), h('td', {}, r.action), h('td', {}, privs(r)), h('td', {}, r.conditions), h('td', {}, enforced(r))))),
      ),
    ),
    h('p', { id: 'explain-caps' }, `A container of uid ${x.subject.uid} starts with: ${effective.join(', ') || 'no capabilities'}`),
    effective.length ? h('ul', {}, effective.map((c) => h('li', {}, `${c}: ${grants(c)}`))) : null,
  );
}

/** Puts the version note in metadata.description (a flow or block metadata mapping). */
function withNote(text: string, noteText: string): string {
  const q = JSON.stringify(noteText);
  if (/^metadata:\s*\{/m.test(text)) {
    return /^metadata:\s*\{[^}]*\bdescription:/m.test(text)
      ? text.replace(/^(metadata:\s*\{[^}]*\bdescription:\s*)("[^"]*"|[^,}]*)/m, `$1${q}`)
      : text.replace(/^(metadata:\s*\{)/m, `$1 description: ${q},`);
  }
  if (/^metadata:\s*$/m.test(text)) {
    return /^metadata:\s*\n(\s+[^\n]*\n)*?\s+description:/m.test(text)
      ? text.replace(/^(\s+description:\s*).*$/m, `$1${q}`)
      : text.replace(/^metadata:\s*$/m, `metadata:\n  description: ${q}`);
  }
  return text;
}
