import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type { Browser, Page } from 'puppeteer-core';
import { bootGateway, fixtureImages, PING_POLICY, until, type TestGateway } from '../gateway/harness';
import { axeViolations, launchChromium, screenshotDir, watchPage } from './browser';

// page functions run in the browser; the test tree compiles without the DOM lib
declare const window: any;
declare const document: any;
declare const sessionStorage: any;
type HTMLElement = any;
type HTMLInputElement = any;
type HTMLCanvasElement = any;

/**
 * The audit console in Debian's chromium (headless, puppeteer-core) against a real gateway with
 * real runs under runc (ping allowed and denied). Needs root, runc and /usr/bin/chromium.
 */
describe('audit console (chromium)', () => {
  let t: TestGateway;
  let browser: Browser;
  let page: Page;
  let seen: { csp: string[]; errors: string[] };
  let auth: { Authorization: string };
  let userToken: string;
  const shots = screenshotDir();
  const shot = async (name: string) => {
    const p = join(shots, `${name}.png`);
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
    browser = await launchChromium();
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
    await checkRawMark('deny', [0xcf, 0x22, 0x2e]);
    await shot('3-run-denied');
  });

  /** Finds the CAP_NET_RAW / PRIV_NETINET_RAW mark, hovers it, reads its tooltip and the pixel under it. */
  async function checkRawMark(outcome: string, rgb: number[]): Promise<void> {
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
    const tip = await page.$eval('#timeline-tip', (el) => el.textContent ?? '');
    assert.match(tip, new RegExp(`^${outcome.toUpperCase()} at [^\n]*(CAP_NET_RAW|PRIV_NETINET_RAW)`, 'm'));
  }

  it('loaded no script or style against the CSP and threw nothing', async () => {
    const csp = await page.evaluate(() => (window as any).__csp as string[]);
    assert.deepEqual([...csp, ...seen.csp], []);
    assert.deepEqual(seen.errors, []);
  });
});
