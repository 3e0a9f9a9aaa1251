import { api, ApiError, setToken, token, whenUnauthenticated } from './api';
import { clear, h } from './dom';
import { integrityBadge } from './integrity';
import { runsView } from './runs';
import { runView } from './run';
import { whatIfView } from './whatif';

/** A view renders into `main` and returns a cleanup (stops its streams and timers). */
export type View = (main: HTMLElement, arg: string | undefined) => () => void;

/** The editor (CodeMirror, most of the bytes) is its own chunk, loaded when the view opens. */
const editorView: View = (main, arg) => {
  let stop: (() => void) | undefined;
  let gone = false;
  main.append('loading the editor…');
  void import('./editor').then((m) => {
    if (gone) return;
    main.textContent = '';
    stop = m.editorView(main, arg);
  });
  return () => {
    gone = true;
    stop?.();
  };
};

const routes: Array<{ re: RegExp; title: string; nav?: string; view: View }> = [
  { re: /^#\/runs\/?$/, title: 'Runs', nav: '#/runs', view: runsView },
  { re: /^#\/runs\/([0-9a-f-]{36})$/, title: 'Run', view: runView },
  { re: /^#\/what-if\/?$/, title: 'What-if', nav: '#/what-if', view: whatIfView },
  { re: /^#\/policies\/?$/, title: 'Policy editor', nav: '#/policies', view: editorView },
];

const app = document.getElementById('app')!;
let cleanup: (() => void) | undefined;

let badge: ReturnType<typeof integrityBadge> | undefined;

function loginPage(message?: string): void {
  cleanup?.();
  cleanup = undefined;
  badge?.stop();
  badge = undefined;
  clear(app);
  document.title = 'Log in · capulator';
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
  const err = h('p', { class: 'err', role: 'alert', id: 'login-error' }, message ?? '');
  const form = h(
    'form',
    { class: 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'capulator audit console'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { class: 'meta', id: 'token-help' }, 'A token from `capulator token create` (kept in this tab only, sent as an Authorization header).'),
    err,
    h('button', { type: 'submit', class: 'primary' }, 'Log in'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    try {
      // any valid token may read /metrics; it tells a bad token (401) from a valid one
      await api('/metrics', { tokenOverride: t });
      setToken(t);
      input.value = '';
      if (!/^#\/(runs|what-if|policies)/.test(location.hash)) location.hash = '#/runs';
      route();
    } catch (e) {
      err.textContent = e instanceof ApiError && e.status === 401 ? 'That token is not valid.' : `Cannot log in: ${(e as Error).message}`;
    }
  });
  app.append(h('main', { id: 'main' }, form));
  input.focus();
}

function route(): void {
  if (!token()) return loginPage();
  const hash = location.hash || '#/runs';
  const r = routes.find((x) => x.re.test(hash));
  if (!r) {
    location.hash = '#/runs';
    return;
  }
  cleanup?.();
  clear(app);
  if (badge) badge.refresh();
  else badge = integrityBadge();
  const badgeHost = h('div', { id: 'integrity' }, badge.el);
  const header = h(
    'header',
    { class: 'top' },
    h('h1', {}, 'capulator'),
    h(
      'nav',
      { 'aria-label': 'Views' },
      routes.filter((x) => x.nav).map((x) => h('a', { href: x.nav, ...(hash.startsWith(x.nav!) ? { 'aria-current': 'page' } : {}) }, x.title)),
    ),
    h('span', { class: 'spacer' }),
    badgeHost,
    h('button', { type: 'button', id: 'logout', onclick: () => { setToken(null); location.hash = ''; loginPage('Logged out.'); } }, 'Log out'),
  );
  const main = h('main', { id: 'main' });
  app.append(header, main);
  document.title = `${r.title} · capulator`;
  const m = r.re.exec(hash)!;
  const stopView = r.view(main, m[1]);
  cleanup = stopView;
}

whenUnauthenticated(() => {
  setToken(null);
  loginPage('The token was refused (revoked or wrong); log in again.');
});
window.addEventListener('hashchange', route);
route();
