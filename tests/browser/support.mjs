// Support for the console's real-browser tests: the real atriumd serving the built console
// (--web-root) on 127.0.0.1 over a temp data dir, started and stopped by its PID (and
// restartable on the same port), Debian's chromium driven by playwright-core, and helpers
// that wait by polling with a deadline (never a fixed sleep).
//
// Environment (CTest sets the first two, tests/CMakeLists.txt):
//   ATRIUMD          the atriumd binary
//   ATRIUM_WEB_ROOT  the built console (build/web, from `node web/build.mjs`)
//   ATRIUM_ARTIFACTS where screenshots go (default build/test-artifacts/browser)
//   CHROMIUM         the browser (default /usr/bin/chromium)
import fs from 'node:fs';
import path from 'node:path';
import { request, Server as WsServer, ADMIN_PASSWORD } from '../ws/support.mjs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(process.env.ATRIUM_ARTIFACTS || path.join(here, '..', '..', 'build', 'test-artifacts', 'browser'));

/**
 * Exits with 77 (CTest's SKIP_RETURN_CODE for these tests) and a clear message when
 * chromium is not installed; CI installs it, so there the tests always run.
 */
export function requireChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`SKIP: ${CHROMIUM} is missing; install Debian's chromium (apt-get install -y chromium) to run the browser tests`);
    process.exit(77);
  }
  for (const v of ['ATRIUMD', 'ATRIUM_WEB_ROOT']) if (!process.env[v]) throw new Error(`set ${v} (see tests/browser/support.mjs)`);
  if (!fs.existsSync(path.join(process.env.ATRIUM_WEB_ROOT, 'index.html')))
    throw new Error(`${process.env.ATRIUM_WEB_ROOT}/index.html is missing: build the console (node web/build.mjs --outdir build/web)`);
}

/** Launches headless chromium; `extraArgs` are added to its command line. */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', ...extraArgs],
  });
}

/** Polls `check` (async, truthy = done) every 50 ms until `ms` pass; throws on timeout. */
export async function waitFor(check, ms = 15000, what = 'condition') {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export { request, ADMIN_PASSWORD };

/** The atriumd process serving the console (`--web-root ATRIUM_WEB_ROOT`): tests/ws's
 * server, over a fresh temp data dir, restartable on the same port. */
export class Server extends WsServer {
  constructor(args = []) {
    super(['--web-root', process.env.ATRIUM_WEB_ROOT, ...args], 'atrium-browser-');
  }
}

/** Signs in through the console's form and waits for the signed-in layout. */
export async function signIn(page, server, username, password) {
  await page.goto(`${server.url}/#/projects`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]:has-text("Sign in")');
  await page.waitForSelector('[data-testid=whoami]');
}

/** Collects page errors and console errors, so a test can assert the page stayed clean. */
export function watch(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every non-2xx answer ("Failed to load resource"): those are expected
    // (the session check before sign-in answers 401).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

/** Saves a full-page screenshot as ARTIFACTS/<name>.png. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The text of the CodeMirror editor of a cell. */
export function editorText(page, cellId) {
  return page.$eval(`li[data-cell-id="${cellId}"] .cm-editor`, (el) => el.atrium.doc());
}

/** Unconfirmed updates of the editor of a cell. */
export function editorPending(page, cellId) {
  return page.$eval(`li[data-cell-id="${cellId}"] .cm-editor`, (el) => el.atrium.pending());
}

/** The editor's own cursor and the remote cursors it draws: {head, remote: [{name, head}]}. */
export function editorCursors(page, cellId) {
  return page.$eval(`li[data-cell-id="${cellId}"] .cm-editor`, (el) => ({ head: el.atrium.head(), remote: el.atrium.remoteCursors() }));
}

/**
 * The set-up of every browser test file: exits 77 without chromium (requireChromium),
 * starts atriumd serving the console (`args`: more atriumd arguments) and one chromium
 * before the file's tests, hands both to `use(server, browser)`, and stops both after.
 */
export function browserSuite(use, { args = [], launchArgs = [] } = {}) {
  requireChromium();
  let server;
  let browser;
  before(async () => {
    server = await new Server(args).start();
    browser = await launch(launchArgs);
    use(server, browser);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
}
