import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type { Browser, Page } from 'puppeteer-core';
import { bootGateway, DENY_ALL, fixtureImages, PING_POLICY, until, type TestGateway } from '../gateway/harness';
import { axeViolations, BROWSERS, launchBrowser, screenshotDir, watchPage } from './browser';

// page functions run in the browser; the test tree compiles without the DOM lib
declare const window: any;
declare const document: any;
declare const sessionStorage: any;
type HTMLElement = any;
type HTMLInputElement = any;
type HTMLCanvasElement = any;

/**
 * The audit console in Debian's chromium and Firefox ESR (headless, puppeteer-core: DevTools and
 * WebDriver BiDi) against a real gateway with real runs under runc (ping allowed and denied).
 * Needs root, runc, /usr/bin/chromium and /usr/bin/firefox-esr.
 */
for (const kind of BROWSERS) describe(`audit console (${kind})`, () => {
  let t: TestGateway;
  let browser: Browser;
  let page: Page;
  let seen: { csp: string[]; errors: string[] };
  let auth: { Authorization: string };
  let userToken: string;
  const shots = screenshotDir();
  const shot = async (name: string) => {
    const p = join(shots, `${kind}-${name}.png`);
    await page.screenshot({ path: p, fullPage: true });
    console.log(`console screenshot: ${p} (${statSync(p).size} bytes)`);
  };
  const serious = async (where: string) => {
    const v = (await axeViolations(page)).filter((x) => x.impact === 'serious' || x.impact === 'critical');
    assert.deepEqual(v, [], `axe-core on ${where}: ${JSON.stringify(v, null, 1)}`);
  };
  let allowedRun = '';

  before(async () => {
    t = await bootGateway({ grpc: false });
    auth = { Authorization: `Bearer ${t.admin}` };
    userToken = t.token('runs:read', 'audit:read', 'policies:write');
    await request(t.url).post('/v1/images?tag=bb:1').set(auth).set('Content-Type', 'application/x-tar').send(readFileSync(fixtureImages().busyboxPing.dockerArchive)).expect(201);
    await request(t.url).post('/v1/policies').set(auth).set('Content-Type', 'application/yaml').send(PING_POLICY).expect(201);
    browser = await launchBrowser(kind);
    page = await browser.newPage();
    seen = await watchPage(page);
    console.log(`console screenshots: ${shots}`);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('serves the console with a strict CSP, and without a token shows only the login', async () => {
    const res = await request(t.url).get('/ui').expect(200);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    // the style nonce is fresh per response and is the one the page reads
    const nonce = /style-src 'self' 'nonce-([A-Za-z0-9+/=]{24})'/.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.ok(res.text.includes(`<meta name="csp-nonce" content="${nonce}">`));
    assert.notEqual(/'nonce-([^']+)'/.exec(String((await request(t.url).get('/ui/')).headers['content-security-policy']))?.[1], nonce);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.doesNotMatch(res.text, /<script>|<script [^>]*>[^<]/, 'no inline script in index.html');
    const sizes: Record<string, number> = {};
    for (const f of ['app.js', 'app.css']) {
      const r = await request(t.url).get(`/ui/${f}`).set('Accept-Encoding', 'gzip').buffer(true).parse((res2, cb) => {
        let n = 0;
        res2.on('data', (c: Buffer) => (n += c.length));
        res2.on('end', () => cb(null, n));
      }).expect(200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      sizes[f] = Number(r.headers['content-length']);
    }
    console.log(`console transferred size (gzip): app.js ${sizes['app.js']} B, app.css ${sizes['app.css']} B, index.html ${(await request(t.url).get('/ui').set('Accept-Encoding', 'gzip')).headers['content-length']} B`);
    await request(t.url).get('/ui/../../package.json').expect(404);

    for (const hash of ['', '#/runs', '#/what-if', '#/policies']) {
      await page.goto(`${t.url}/ui/${hash}`, { waitUntil: 'networkidle0' });
      await page.waitForSelector('form.login');
      const visible = await page.evaluate(() => ({ nav: !!document.querySelector('nav'), rows: document.querySelectorAll('[data-run]').length, badge: !!document.getElementById('integrity-badge'), text: document.body.innerText }));
      assert.deepEqual([visible.nav, visible.rows, visible.badge], [false, 0, false], `${hash}: ${visible.text}`);
    }
    await shot('0-login');
    await serious('the login page');
    // a wrong token is refused at the login
    await page.type('#token', 'cap_not-a-token');
    await page.click('button[type=submit]');
    await page.waitForFunction(() => /not valid/.test(document.getElementById('login-error')?.textContent ?? ''));
    assert.equal(await page.$('nav'), null);
  });

  it('logs in (token kept out of the URL) and shows the runs list updating live as a run starts and ends', async () => {
    // a deep link survives the login
    await page.goto(`${t.url}/ui/#/runs`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('form.login');
    await page.type('#token', userToken);
    await page.click('button[type=submit]');
    await page.waitForSelector('#runs-list');
    await page.waitForFunction(() => document.getElementById('runs-live')?.textContent?.includes('live'));
    assert.ok(!page.url().includes(userToken), 'token in the URL');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('capulator.token')), userToken);
    // the run starts after the page is open: only the live stream can show it
    const r = await request(t.url).post('/v1/runs').set(auth).send({ image: 'bb:1', command: ['/bin/sh', '-c', 'ping -c1 -W1 127.0.0.1; sleep 2'], policy: 'ping' }).expect(202);
    allowedRun = r.body.id;
    await page.waitForSelector(`[data-run="${allowedRun}"][data-status="running"]`, { timeout: 30_000 });
    await shot('1-runs-running');
    await page.waitForSelector(`[data-run="${allowedRun}"][data-status="exited"]`, { timeout: 30_000 });
    const row = await page.$eval(`[data-run="${allowedRun}"]`, (el) => (el as HTMLElement).innerText);
    assert.match(row, /ping@1/);
    assert.match(row, /exit 0/);
    await shot('1-runs');
    await serious('the runs list');
  });

  it('opens the allowed run and finds the raw-socket check on the timeline, drawn in the allow colour', async () => {
    await page.click(`[data-run="${allowedRun}"] a`);
    await page.waitForSelector('#caps-table');
    await page.waitForFunction(() => ((window as any).__capTimeline?.size ?? 0) > 0);
    const caps = await page.$eval('#caps-table', (el) => (el as HTMLElement).innerText);
    assert.match(caps, /CAP_NET_RAW[^\n]*ping-raw/);
    await checkRawMark('allow', [0x1a, 0x7f, 0x37]);
    // the program's own output, as `capulator logs` shows it
    await page.waitForFunction(() => /1 packets transmitted, 1 packets received/.test(document.getElementById('run-output')?.textContent ?? ''), { timeout: 15_000 });
    assert.match(await page.$eval('#output-status', (el) => el.textContent ?? ''), /^\(\d+ bytes\)$/);
    await shot('2-run-allowed');
    await serious('a run');
  });

  it('opens a denied run (CAP_NET_RAW refused) and finds the denial on the timeline in red', async () => {
    const r = await request(t.url)
      .post('/v1/runs')
      .set(auth)
      .send({ image: 'bb:1', command: ['/bin/ping', '-c1', '-W1', '127.0.0.1'], policyYaml: PING_POLICY.replace('action: allow', 'action: deny').replace('name: ping', 'name: no-ping') })
      .expect(202);
    const run = await until('the denied run to end', async () => {
      const g = (await request(t.url).get(`/v1/runs/${r.body.id}`).set(auth)).body;
      return g.status === 'exited' || g.status === 'failed' ? g : undefined;
    }, 60_000);
    assert.equal(run.exitCode, 2, JSON.stringify(run));
    await page.goto(`${t.url}/ui/#/runs/${r.body.id}`, { waitUntil: 'networkidle0' });
    await page.waitForFunction(() => ((window as any).__capTimeline?.size ?? 0) > 0);
    // the capability sets above the timeline are in place (they move it down when they arrive)
    await page.waitForFunction(() => !(document.getElementById('run-caps')?.textContent ?? 'waiting').includes('waiting'));
    await checkRawMark('deny', [0xcf, 0x22, 0x2e]);
    await shot('3-run-denied');
  });

  /** Finds the CAP_NET_RAW / PRIV_NETINET_RAW mark, hovers it, reads its tooltip and the pixel under it. */
  async function checkRawMark(outcome: string, rgb: number[]): Promise<void> {
    // the page has its final layout (the decision table and the output below the timeline can add
    // a scrollbar, which narrows the canvas and moves its marks)
    await page.waitForSelector('#decisions-table');
    await page.waitForFunction(() => /bytes|no output/.test(document.getElementById('output-status')?.textContent ?? ''));
    // Live events can still widen the time range (the kernel's checks arrive on their own
    // stream), which moves every mark between finding one and hovering it: find it again and
    // hover again until the tooltip under the pointer names it, for at most 10 s.
    const deadline = Date.now() + 10_000;
    let last = '';
    for (;;) {
      const at = await page.evaluate((o) => {
        const tl = (window as any).__capTimeline;
        tl.draw();
        const hit = tl.locate((m: any) => /CAP_NET_RAW|PRIV_NETINET_RAW/.test(m.label) && m.outcome === o);
        if (!hit) return undefined;
        const r = (tl.canvas as HTMLCanvasElement).getBoundingClientRect();
        const dpr = window.devicePixelRatio || 1;
        const px = (tl.canvas as HTMLCanvasElement).getContext('2d')!.getImageData(Math.round(hit.x * dpr), Math.round(hit.y * dpr), 1, 1).data;
        return { x: r.left + hit.x, y: r.top + hit.y, label: hit.mark.label, px: [px[0], px[1], px[2]] };
      }, outcome);
      assert.ok(at, `no ${outcome} CAP_NET_RAW mark on the timeline`);
      assert.deepEqual(at.px, rgb, `the mark's pixel is not the ${outcome} colour`);
      await page.mouse.move(at.x, at.y);
      await page.waitForFunction(() => !document.getElementById('timeline-tip')?.hidden);
      last = await page.$eval('#timeline-tip', (el) => el.textContent ?? '');
      if (new RegExp(`^${outcome.toUpperCase()} at [^\n]*(CAP_NET_RAW|PRIV_NETINET_RAW)`, 'm').test(last)) return;
      if (Date.now() > deadline) assert.fail(`the tooltip at the ${outcome} mark does not name it: ${last}`);
      await page.mouse.move(0, 0);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  it('runs a what-if of the allowed run against deny-all and reports the denial with audit replay\'s verdict', async () => {
    await page.goto(`${t.url}/ui/#/what-if`, { waitUntil: 'networkidle0' });
    await page.waitForSelector(`#whatif-runs input[data-run="${allowedRun}"]`);
    await page.click('#whatif-yaml');
    await page.keyboard.type(DENY_ALL);
    await page.click(`#whatif-runs input[data-run="${allowedRun}"]`);
    assert.equal(await page.$eval('#whatif-all', (el) => (el as HTMLInputElement).checked), false);
    await page.click('#whatif-run');
    await page.waitForSelector('#whatif-verdict');
    const verdict = await page.$eval('#whatif-verdict', (el) => ({ exit: el.getAttribute('data-exit'), text: (el as HTMLElement).innerText }));
    const api = await request(t.url).post('/v1/replays').set(auth).send({ policyYaml: DENY_ALL, runIds: [allowedRun] }).expect(200);
    assert.equal(api.body.exitCode, 1);
    assert.equal(verdict.exit, String(api.body.exitCode));
    assert.match(verdict.text, new RegExp(`^exit 1: ${api.body.wouldDeny} decision`));
    const denied = await page.$eval('#whatif-denied', (el) => (el as HTMLElement).innerText);
    assert.match(denied, /socket[^\n]*PRIV_NETINET_RAW[^\n]*allow \(ping-raw\)[^\n]*deny \(default\)/);
    await shot('4-what-if');
    await serious('what-if');
  });

  it('marks an unknown privilege typed in the editor at its line and column, then publishes the fixed policy', async () => {
    await page.goto(`${t.url}/ui/#/policies`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.cm-content');
    await page.waitForFunction(() => /valid: ping/.test(document.getElementById('editor-status')?.textContent ?? ''));
    // put the cursor after PRIV_NETINET_RAW (line 7) and type a privilege that does not exist
    const at = await page.evaluate(() => {
      const v = (window as any).__capEditor.view;
      const doc = v.state.doc.toString();
      const pos = doc.indexOf('PRIV_NETINET_RAW') + 'PRIV_NETINET_RAW'.length;
      v.focus();
      v.dispatch({ selection: { anchor: pos } });
      const line = v.state.doc.lineAt(pos);
      return { line: line.number, col: pos - line.from + 1 };
    });
    await page.keyboard.type(', PRIV_RAW_SOCKET');
    await page.keyboard.press('Escape'); // close the completion list
    const diag = await page.waitForFunction(() => {
      const d = (window as any).__capEditor.diagnostics();
      return d.length > 0 ? d : undefined;
    }, { timeout: 10_000 });
    const diags = (await diag.jsonValue()) as Array<{ line: number; col: number; message: string; severity: string; from: number; to: number }>;
    assert.equal(diags.length, 1, JSON.stringify(diags));
    assert.equal(diags[0].severity, 'error');
    assert.equal(diags[0].line, at.line);
    assert.equal(diags[0].col, at.col + 2, JSON.stringify(diags[0])); // after ", "
    assert.match(diags[0].message, new RegExp(`^policy.yaml:${at.line}:${at.col + 2}: .*PRIV_RAW_SOCKET`));
    assert.equal(diags[0].to - diags[0].from, 'PRIV_RAW_SOCKET'.length);
    await page.waitForSelector('.cm-lintRange-error');
    await page.waitForSelector('.cm-lint-marker-error');
    assert.match(await page.$eval('#editor-problems', (el) => (el as HTMLElement).innerText), new RegExp(`policy.yaml:${at.line}:${at.col + 2}:`));
    await shot('5-editor-lint');
    await serious('the policy editor');
    // fix it through the completion list: select the bad name, type a real one, accept with Enter
    await page.evaluate((d) => {
      const v = (window as any).__capEditor.view;
      v.focus();
      v.dispatch({ selection: { anchor: d.from, head: d.to } });
    }, diags[0]);
    await page.keyboard.type('PRIV_NET_RA');
    await page.waitForFunction(() => [...document.querySelectorAll('.cm-tooltip-autocomplete li')].some((li: any) => li.textContent.startsWith('PRIV_NET_RAW')));
    const options = await page.$$eval('.cm-tooltip-autocomplete li', (lis) => lis.map((li) => li.textContent ?? ''));
    assert.match(options[0], /^PRIV_NET_RAW/, options.join(' | '));
    await new Promise((r) => setTimeout(r, 250)); // CodeMirror ignores Enter for 75 ms after the list opens
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (window as any).__capEditor.diagnostics().length === 0 && /valid: ping/.test(document.getElementById('editor-status')?.textContent ?? ''));
    const text = await page.evaluate(() => (window as any).__capEditor.view.state.doc.toString());
    assert.match(text, /privileges: \[PRIV_NETINET_RAW, PRIV_NET_RAW\]/);
    await page.click('#editor-publish');
    await page.waitForSelector('#editor-published');
    assert.match(await page.$eval('#editor-published', (el) => el.textContent ?? ''), /^published ping@2 /);
    const v2 = await request(t.url).get('/v1/policies/ping/versions/2').set(auth).expect(200);
    assert.equal(v2.body.yaml, text);
    const diff = await page.$eval('#editor-diff', (el) => el.textContent ?? '');
    assert.match(diff, /^- +privileges: \[PRIV_NETINET_RAW\]$/m);
    assert.match(diff, /^\+ +privileges: \[PRIV_NETINET_RAW, PRIV_NET_RAW\]$/m);
    await shot('6-editor-published');
  });

  it('explains the rule at the cursor: what it asks, what enforces it, and the capability it grants a root container', async () => {
    // the cursor still sits in rule ping-raw (the published text)
    await page.evaluate(() => {
      const v = (window as any).__capEditor.view;
      const pos = v.state.doc.toString().indexOf('action: allow');
      v.dispatch({ selection: { anchor: pos } });
    });
    await page.click('#editor-explain');
    await page.waitForSelector('#explain-rule');
    const rule = await page.$eval('#explain-rule', (el) => el.textContent ?? '');
    assert.match(rule, /^rule ping-raw \(allow PRIV_NET_RAW, PRIV_NETINET_RAW\) when any process — enforced by kernel \(sets\)$/);
    assert.equal(await page.$eval('#explain-rules tr[aria-current] th', (el) => el.textContent), 'ping-raw');
    assert.match(await page.$eval('#explain-caps', (el) => el.textContent ?? ''), /uid 0 starts with: CAP_NET_RAW$/);
    // a uid the API refuses is a located error, not a stack
    await page.$eval('#explain-uid', (el: any) => (el.value = '-1'));
    await page.click('#editor-explain');
    await page.waitForFunction(() => /Cannot explain: .*uid must be an integer/.test(document.getElementById('editor-explanation')?.textContent ?? ''));
    await page.$eval('#explain-uid', (el: any) => (el.value = '0'));
    await serious('the explanation');
  });

  it('reports the transferred size of the runs view and of the editor', async () => {
    const sizeOf = async (hash: string, ready: string) => {
      const p2 = await browser.newPage();
      await p2.evaluateOnNewDocument((tok: string) => sessionStorage.setItem('capulator.token', tok), userToken);
      await p2.goto(`${t.url}/ui/${hash}`, { waitUntil: 'load' });
      await p2.waitForSelector(ready);
      await new Promise((r) => setTimeout(r, 500));
      const entries = await p2.evaluate(() => (['navigation', 'resource'] as any[]).flatMap((k) => performance.getEntriesByType(k)).map((e: any) => ({ name: e.name as string, encodedBodySize: e.encodedBodySize as number })));
      await p2.close();
      const assets = entries.filter((e) => /\/ui\/([A-Za-z0-9-]+\.(js|css))?(#.*)?$/.test(e.name));
      return { body: assets.reduce((a: number, e: { encodedBodySize: number }) => a + e.encodedBodySize, 0), files: assets.length };
    };
    const runs = await sizeOf('#/runs', '#runs-list');
    const editor = await sizeOf('#/policies', '.cm-content');
    console.log(`console assets transferred (gzip bodies): runs view ${runs.body} B in ${runs.files} files; policy editor ${editor.body} B in ${editor.files} files`);
    assert.ok(runs.body > 0 && runs.body < 64 * 1024, `runs view assets ${runs.body} B`);
    assert.ok(editor.body < 400 * 1024, `editor assets ${editor.body} B`);
  });

  it('shows the integrity badge green on every page, and red once an event in the log is edited', async () => {
    for (const hash of ['#/runs', `#/runs/${allowedRun}`, '#/what-if', '#/policies']) {
      await page.goto(`${t.url}/ui/${hash}`, { waitUntil: 'networkidle0' });
      // the badge is asked again on every change of view: it shows the runs' anchor, not the login's state
      await page.waitForFunction(() => /^chain verified · \d+ events · anchored at \d+/.test(document.querySelector('#integrity-badge.ok')?.textContent ?? ''), { timeout: 15_000 });
    }
    const db = (t.gw.store as unknown as { db: { prepare(sql: string): { get(): { p: number }; run(...a: unknown[]): { changes: number } } } }).db;
    const p = db.prepare(`SELECT MIN(first_position) AS p FROM commits WHERE events LIKE '%"decision":"allow"%'`).get().p;
    assert.equal(db.prepare(`UPDATE commits SET events = replace(events, '"decision":"allow"', '"decision":"deny"') WHERE first_position = ?`).run(p).changes, 1);
    await new Promise((r) => setTimeout(r, 5_500)); // the server re-verifies at most every 5 s while the head stays
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#integrity-badge.bad', { timeout: 15_000 });
    assert.match(await page.$eval('#integrity-badge', (el) => el.textContent ?? ''), new RegExp(`^chain verify FAILED at position ${p}: changed`));
    await shot('7-integrity-failed');
  });

  it('loaded no script or style against the CSP and threw nothing', async () => {
    const csp = await page.evaluate(() => (window as any).__csp as string[]);
    assert.deepEqual([...csp, ...seen.csp], []);
    assert.deepEqual(seen.errors, []);
  });
});
