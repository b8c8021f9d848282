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
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from '../ws/support.mjs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ADMIN_PASSWORD = 'browser-admin-password';
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

/** One HTTP request; resolves {status, headers, json, body} (tests/ws's client). */
export { request };

/** The atriumd process serving the console, over a fresh temp data dir. */
export class Server {
  constructor(args = []) {
    this.args = args;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-browser-'));
    this.data = path.join(this.dir, 'data');
    this.log = path.join(this.dir, 'atriumd.log');
  }

  get url() {
    return `http://${this.address}`;
  }

  /** Starts atriumd (on `listen`, default a free port) and waits until it is ready. */
  async start(listen = '127.0.0.1:0') {
    const out = fs.openSync(this.log, 'a');
    this.proc = spawn(
      process.env.ATRIUMD,
      ['--data-dir', this.data, '--listen', listen, '--web-root', process.env.ATRIUM_WEB_ROOT, ...this.args],
      { env: { ...process.env, ATRIUM_ADMIN_PASSWORD: ADMIN_PASSWORD }, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    const proc = this.proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    const addrFile = path.join(this.data, 'atriumd.addr');
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`atriumd exited: ${fs.readFileSync(this.log, 'utf8').slice(-2000)}`);
        const a = fs.readFileSync(addrFile, 'utf8').trim();
        if (!a) return false;
        const r = await request(a, 'GET', '/readyz');
        if (r.status !== 200) return false;
        this.address = a;
        return true;
      },
      30000,
      'atriumd to start',
    );
    this.adminToken = await this.login('admin', ADMIN_PASSWORD);
    return this;
  }

  /** Stops the process by its PID (SIGTERM) and waits for it; throws unless it exited 0. */
  async kill() {
    if (this.proc && this.proc.exitCode === null) {
      process.kill(this.proc.pid, 'SIGTERM');
      const r = await this.exited;
      if (r.code !== 0) throw new Error(`atriumd exited with ${JSON.stringify(r)}`);
    }
  }

  /** Stops atriumd and starts it again on the same address and data dir. */
  async restart(between = async () => {}) {
    const address = this.address;
    fs.rmSync(path.join(this.data, 'atriumd.addr'), { force: true });
    await this.kill();
    await between();
    await this.start(address);
  }

  /** Stops atriumd by its PID and removes the temp dir. */
  async stop() {
    let err = null;
    try {
      await this.kill();
    } catch (e) {
      err = e;
    }
    const log = fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '';
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (err) throw new Error(`${err.message}; log tail:\n${log.slice(-4000)}`);
  }

  http(method, target, opts = {}) {
    return request(this.address, method, target, { token: this.adminToken, ...opts });
  }

  async login(username, password) {
    const r = await request(this.address, 'POST', '/v1/auth/login', { body: { username, password } });
    if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${r.body}`);
    return r.json.token;
  }

  /** Creates a member user; returns {id, username, password, token}. */
  async user(name) {
    const password = `${name}-pw-123456`;
    const r = await this.http('POST', '/v1/users', { body: { username: name, email: `${name}@example.org`, password, role: 'member' } });
    if (r.status !== 201) throw new Error(`create user ${name}: ${r.status} ${r.body}`);
    return { id: r.json.id, username: name, password, token: await this.login(name, password) };
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
