import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { repoRoot } from '../../fixtures/images';

// page functions run in the browser; the test tree compiles without the DOM lib
declare const window: any;
declare const document: any;
declare const sessionStorage: any;
type HTMLElement = any;
type HTMLInputElement = any;
type HTMLCanvasElement = any;

/** Debian's chromium (apt), never a downloaded browser. */
export const CHROMIUM = process.env.CAPULATOR_CHROMIUM ?? '/usr/bin/chromium';
/** Debian's Firefox ESR (apt), driven over WebDriver BiDi. */
export const FIREFOX = process.env.CAPULATOR_FIREFOX ?? '/usr/bin/firefox-esr';

export type BrowserKind = 'chromium' | 'firefox';
/** The browsers the console is tested in (both are installed by scripts/test.sh). */
export const BROWSERS: BrowserKind[] = ['chromium', 'firefox'];

export function launchBrowser(kind: BrowserKind): Promise<Browser> {
  if (kind === 'chromium') return launchChromium();
  if (!existsSync(FIREFOX)) throw new Error(`console tests: ${FIREFOX} is missing (apt-get install firefox-esr; scripts/test.sh installs it)`);
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    args: ['--width=1400', '--height=1000'],
    defaultViewport: { width: 1400, height: 1000 },
  });
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`console tests: ${CHROMIUM} is missing (apt-get install chromium; scripts/test.sh installs it)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // root on a test machine: chromium's own sandbox needs an unprivileged user namespace
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--window-size=1400,1000'],
    defaultViewport: { width: 1400, height: 1000 },
  });
}

/** Collects CSP violations and console errors from the first script on. */
export async function watchPage(page: Page): Promise<{ csp: string[]; errors: string[] }> {
  const seen = { csp: [] as string[], errors: [] as string[] };
  await page.evaluateOnNewDocument(() => {
    (window as any).__csp = [];
    document.addEventListener('securitypolicyviolation', (e: any) => (window as any).__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber} ${e.sample}`));
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|Unauthorized|the server responded with a status of 4/.test(m.text())) seen.errors.push(m.text());
  });
  return seen;
}

let axeSource: string | undefined;
/** axe-core run inside the page (evaluated over DevTools, so the page's CSP is untouched). */
export async function axeViolations(page: Page): Promise<Array<{ id: string; impact: string; help: string; nodes: number }>> {
  axeSource ??= readFileSync(join(repoRoot(), 'node_modules/axe-core/axe.min.js'), 'utf8');
  await page.evaluate(`${axeSource}\n;undefined`);
  return page.evaluate(async () => {
    const r = await (window as any).axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v: any) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, targets: v.nodes.slice(0, 3).map((n: any) => n.target.join(' ')) }));
  });
}

export function screenshotDir(): string {
  const dir = process.env.CAPULATOR_SCREENSHOTS ?? join(repoRoot(), 'test/.work/console-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}
