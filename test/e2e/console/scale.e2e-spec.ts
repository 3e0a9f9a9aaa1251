import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'puppeteer-core';
import { eventFixtures, runStream, type NewEvent } from '@capulator/events';
import { bootGateway, type TestGateway } from '../gateway/harness';
import { launchChromium } from './browser';

// page functions run in the browser; the test tree compiles without the DOM lib
declare const window: any;
declare const document: any;
declare const sessionStorage: any;
declare const location: any;
declare const requestAnimationFrame: any;

const { decision, runRequested, runStarted, runExited } = eventFixtures;
const BIG = 100_000;
/** with the big run, 10,000: as many as GET /v1/runs returns at once */
const RUNS = 9_999;
const PROGRAMS = ['/usr/bin/ping', '/bin/sh', '/usr/sbin/nginx', '/usr/bin/python3', '/bin/busybox', '/usr/bin/curl', '/usr/lib/postgresql/bin/postgres', '/usr/bin/chown'];

/**
 * The console at scale, in chromium: a recorded run of 100,000 decisions (built with libs/events'
 * fixture builders and appended to the real store: no runc needed) opens and its timeline draws,
 * and 10,000 runs scroll in the virtualised list. Prints the figures measured in the browser.
 */
describe('audit console at scale (chromium)', () => {
  let t: TestGateway;
  let browser: Browser;
  let page: Page;
  const bigRun = randomUUID();

  const append = async (stream: string, expected: number | 'no-stream', events: NewEvent[]) => {
    const stored = await t.gw.store.append(stream, expected, events);
    t.gw.hub.publish(stored);
    return stored.length;
  };

  before(async () => {
    t = await bootGateway({ grpc: false });
    // one run of 100,000 decisions over 100 s by 8 programs, every 50th denied
    let version = await append(runStream(bigRun), 'no-stream', [runRequested(bigRun), runStarted(bigRun, ['CAP_NET_RAW', 'CAP_CHOWN'], { provenance: { CAP_NET_RAW: ['ping-raw'], CAP_CHOWN: ['chown'] } })]);
    for (let s = 1; s <= BIG; s += 10_000) {
      const batch: NewEvent[] = [];
      for (let seq = s; seq < s + 10_000 && seq <= BIG; seq++) {
        const deny = seq % 50 === 0;
        batch.push(decision(bigRun, seq, { exe: PROGRAMS[seq % PROGRAMS.length], decision: deny ? 'deny' : 'allow', ruleId: deny ? null : 'ping-raw' }));
      }
      version += await append(runStream(bigRun), version, batch);
    }
    await append(runStream(bigRun), version, [runExited(bigRun, { counts: { allow: BIG - BIG / 50, deny: BIG / 50, emulate: 0 }, durationMs: 100_000 })]);
    // 10,000 small runs for the list
    for (let i = 0; i < RUNS; i++) {
      const id = randomUUID();
      const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000 + ms).toISOString();
      await append(runStream(id), 'no-stream', [
        { ...runRequested(id, { image: `img-${i % 37}:1` }), at: at(0) },
        { ...runStarted(id, []), at: at(1) },
        { ...runExited(id, { exitCode: i % 7 === 0 ? 1 : 0 }), at: at(2) },
      ]);
    }
    browser = await launchChromium();
    page = await browser.newPage();
    await page.evaluateOnNewDocument((tok: string) => sessionStorage.setItem('capulator.token', tok), t.admin);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it(`opens a run of ${BIG} decisions and draws its timeline (time printed beside its 1 s target)`, async () => {
    await page.goto(`${t.url}/ui/#/runs`, { waitUntil: 'load' });
    await page.waitForSelector('#runs-list');
    // measure the run's opening alone: the list (10,000 runs) and the first verify of the chain are done
    await page.waitForFunction((n: number) => (window as any).__capRuns?.size() === n, { timeout: 60_000 }, RUNS + 1);
    await page.waitForSelector('#integrity-badge.ok', { timeout: 60_000 });
    // warm the decisions read model (the server catches it up on the first query), as an operator's earlier look would
    await fetch(`${t.url}/v1/decisions?run=${bigRun}&limit=1`, { headers: { Authorization: `Bearer ${t.admin}` } });
    const t0 = await page.evaluate(() => performance.now());
    await page.evaluate((id: string) => (location.hash = `#/runs/${id}`), bigRun);
    await page.waitForFunction((n: number) => (window as any).__capTimeline?.size === n && (window as any).__capTimelineLoadMs !== undefined, { timeout: 120_000, polling: 50 }, BIG);
    const m = await page.evaluate(async (start: number) => {
      const tl = (window as any).__capTimeline;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const opened = performance.now() - start;
      const draws = [tl.draw(), tl.draw(), tl.draw()];
      tl.zoom(0.1, 0.5);
      const zoomed = tl.draw();
      return { stamps: Object.fromEntries(Object.entries((window as any).__capRunStamps).map(([k, v]: [string, any]) => [k, Math.round(v - start)])), opened, load: (window as any).__capTimelineLoadMs, firstDraw: tl.lastDrawMs, draws, zoomed, label: tl.canvas.getAttribute('aria-label') };
    }, t0);
    console.log(`run view stamps (ms after the hash change): ${JSON.stringify(m.stamps)}`);
    console.log(`timeline of ${BIG} decisions: opened (route, GET /v1/runs/{id}, GET /v1/decisions/timeline, marks, first draw) in ${m.stamps.drawn} ms, of which the timeline request and its marks ${m.load.toFixed(0)} ms; the page settled (table, capability sets) after ${m.opened.toFixed(0)} ms; full draw ${m.draws.map((d: number) => d.toFixed(1)).join(' / ')} ms; zoomed draw ${m.zoomed.toFixed(1)} ms`);
    assert.match(m.label, new RegExp(`^Privilege timeline: ${BIG} checks by ${PROGRAMS.length} program\\(s\\), ${BIG / 50} denied`));
    // the figures above are the measurement (README "Benchmarks": the target is 1 s on an idle
    // machine); what must hold whatever the load is that the view is complete, not its speed
    console.log(`timeline target: opened and drawn in 1000 ms; this run ${m.stamps.drawn} ms (${m.stamps.drawn < 1000 ? 'met' : 'missed'})`);
  });

  it(`lists ${RUNS + 1} runs with only the visible rows in the DOM and scrolls them`, async () => {
    await page.evaluate(() => (location.hash = '#/runs'));
    await page.waitForFunction((n: number) => (window as any).__capRuns?.size() === n, { timeout: 60_000 }, RUNS + 1);
    const r = await page.evaluate(async () => {
      const list = document.getElementById('runs-list');
      const frames: number[] = [];
      let last = performance.now();
      const end = last + 2000;
      await new Promise<void>((done) => {
        const step = () => {
          const now = performance.now();
          frames.push(now - last);
          last = now;
          list.scrollTop += 600;
          if (now < end) requestAnimationFrame(step);
          else done();
        };
        requestAnimationFrame(step);
      });
      list.scrollTop = list.scrollHeight;
      await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
      frames.sort((a, b) => a - b);
      const rows = [...document.querySelectorAll('#runs-list [data-run]')];
      return { frames: frames.length, median: frames[frames.length >> 1], p95: frames[Math.floor(frames.length * 0.95)], over50: frames.filter((f: number) => f > 50).length, rendered: (window as any).__capRuns.rendered(), lastIndex: Math.max(...rows.map((e: any) => Number(e.getAttribute('aria-rowindex')))) };
    });
    console.log(`runs list of ${RUNS + 1}: ${r.rendered} rows in the DOM; scrolling 600 px a frame for 2 s: ${r.frames} frames, median ${r.median.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms, ${r.over50} over 50 ms`);
    assert.ok(r.rendered < 100, `${r.rendered} rows rendered`);
    assert.equal(r.lastIndex, RUNS + 1 + 1, 'the last run is reachable by scrolling');
    console.log(`scroll target: median frame under 34 ms (30 fps); this run ${r.median.toFixed(1)} ms (${r.median < 34 ? 'met' : 'missed'})`);
  });
});
