// The web console's browser-driven benchmark (issue 17 point 5; docs/performance.md
// "Console"). Not a test and not in CTest: run it with `deploy/bench.sh --paths console`
// or directly:
//
//   ATRIUMD=build/atriumd ATRIUM_WEB_ROOT=build/web node tests/bench/browser/console_bench.mjs
//
// It starts its own atriumd (temp data dir, 127.0.0.1 port 0, --web-root) through
// tests/browser/support.mjs and drives Debian's chromium (playwright-core) from there, and
// node `ws` clients from tests/ws. It measures:
//  1. keystroke → other browser: one SQL cell open in E editor pages (E = 2 and 20; each a
//     signed-in user in its own browser context, all in one chromium). One typist at a time
//     (the typist changes every KEYS/E keystrokes, at least 15), typing at the end of the
//     cell at a fixed pace (one key every PACE_MS, default 100 ms: a fast typist). The
//     typist's page stamps `performance.timeOrigin + performance.now()` in a capture-phase
//     keydown listener; every other page stamps the same clock in a MutationObserver on its
//     editor when the cell's text reaches that keystroke's length. One sample per
//     (keystroke, receiving page) pair; also the per-keystroke slowest receiver.
//  2. baseline for (1) without a browser: a node `ws` client sends POST …/changes (one
//     character) as a WebSocket command; the others, subscribed to the project, stamp the
//     `project.cell_changed` event (same clock: node's performance.timeOrigin + now()).
//  3. bundle: raw and gzipped (zlib level 9, as served precompressed *.gz) bytes of every
//     file in the web root's assets/, and the sum over what the project page loads.
//  4. first load of the project page (navigation start → editors of all cells mounted),
//     cold (new context, empty cache, session cookie carried over) and warm (same context,
//     cached assets), median of LOADS (10).
//
// stdout: one JSON line per figure; stderr: progress and a human summary.
// Environment: ATRIUMD, ATRIUM_WEB_ROOT (defaults build/atriumd, build/web), CHROMIUM,
// KEYS (300), PACE_MS (100), EDITORS ("2,20"), LOADS (10), MODES ("all,2": with more than
// 2 editors, also a run where 2 are chromium pages and the others headless collab clients).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
process.env.ATRIUMD ||= path.join(root, 'build', 'atriumd');
process.env.ATRIUM_WEB_ROOT ||= path.join(root, 'build', 'web');

const { Server, requireChromium, launch, signIn, waitFor } = await import('../../browser/support.mjs');
const { Client } = await import('../../ws/support.mjs');
const wsRequire = createRequire(path.join(root, 'tests', 'ws', 'package.json'));
const WebSocket = wsRequire('ws');
const { EditorState, ChangeSet } = wsRequire('@codemirror/state');
const { collab, receiveUpdates, getSyncedVersion } = wsRequire('@codemirror/collab');

const KEYS = Number(process.env.KEYS || 300);
const PACE_MS = Number(process.env.PACE_MS || 100);
const EDITORS = (process.env.EDITORS || '2,20').split(',').map(Number);
const LOADS = Number(process.env.LOADS || 10);
const MODES = (process.env.MODES || 'all,2').split(','); // all editors in chromium; 2 in chromium + headless others
const GOAL_P99_MS = 50;
const GOAL_GZIP_KIB = 400;

const log = (...a) => console.error(...a);
const emit = (o) => console.log(JSON.stringify({ path: 'console', ...o }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const stats = (xs) => ({ p50_ms: round(pct(xs, 50)), p99_ms: round(pct(xs, 99)), max_ms: round(Math.max(...xs)) });
const median = (xs) => pct(xs, 50);
const summary = [];

requireChromium();
const server = await new Server().start();
// Background/occluded pages must not be throttled: 20 pages share one headless chromium.
const browser = await launch([
  '--disable-renderer-backgrounding',
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
]);

let seq = 0;
async function project(owner, members, cells) {
  const as = (m, t, body) => server.http(m, t, { token: owner.token, body });
  const p = await as('POST', '/v1/projects', { name: `bench ${++seq}` });
  if (p.status !== 201) throw new Error(p.body);
  for (const u of members) {
    const r = await as('POST', `/v1/projects/${p.json.id}/members`, { user_id: u.id, role: 'editor' });
    if (r.status !== 200) throw new Error(r.body);
  }
  const ids = [];
  for (const content of cells) {
    const c = await as('POST', `/v1/projects/${p.json.id}/cells`, { kind: 'sql', content });
    if (c.status !== 201) throw new Error(c.body);
    ids.push(c.json.cell_id);
  }
  return { id: p.json.id, cells: ids };
}

// ---- 1. keystroke → other browsers ----------------------------------------------------
// `browsers` of the `editors` are chromium pages; the others (when fewer) are headless
// @codemirror/collab clients in this process (tests/ws's packages), subscribed to the
// project over a WebSocket and applying every update to their EditorState, as a page
// does: the server fans out to `editors` editors, and only the browsers are measured.
async function keystrokes(editors, browsers = editors) {
  const users = [];
  for (let i = 0; i < editors; i++) users.push(await server.user(`k${editors}b${browsers}u${i}`));
  const p = await project(users[0], users.slice(1), ['select ']);
  const cellId = p.cells[0];
  const sel = `li[data-cell-id="${cellId}"] .cm-editor`;
  const headless = [];
  for (const u of users.slice(browsers)) headless.push(await headlessEditor(u, p.id, cellId));
  const pages = [];
  for (const u of users.slice(0, browsers)) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await signIn(page, server, u.username, u.password);
    await page.goto(`${server.url}/#/projects/${p.id}`);
    await page.waitForSelector(sel);
    // Arrival stamps: text length → first time this page's editor held that many characters.
    // Sent stamps: the length a keydown will produce → when it was pressed here.
    await page.$eval(sel, (el) => {
      const now = () => performance.timeOrigin + performance.now();
      const b = (window.__bench = { arrived: {}, sent: {} });
      let last = el.atrium.doc().length;
      new MutationObserver(() => {
        const n = el.atrium.doc().length;
        for (let l = last + 1; l <= n; l++) b.arrived[l] ??= now();
        last = Math.max(last, n);
      }).observe(el, { childList: true, subtree: true, characterData: true });
      el.addEventListener('keydown', (e) => {
        if (e.key.length === 1) b.sent[el.atrium.doc().length + 1] = now();
      }, true);
    });
    pages.push({ context, page });
    log(`  editors=${editors}: page ${pages.length} signed in`);
  }
  const start = 'select '.length;
  const per = Math.max(15, Math.ceil(KEYS / browsers));
  let typed = 0;
  let typist = 0;
  while (typed < KEYS) {
    const { page } = pages[typist % browsers];
    await page.click(`${sel} .cm-content`);
    await page.keyboard.press('Control+End');
    for (let k = 0; k < per && typed < KEYS; k++) {
      const t0 = Date.now();
      await page.keyboard.type(String.fromCharCode(97 + (typed % 26)));
      typed++;
      const left = PACE_MS - (Date.now() - t0);
      if (left > 0) await sleep(left);
    }
    // Everyone holds the whole text before the next typist takes over.
    const want = start + typed;
    await waitFor(async () => {
      const lens = await Promise.all(pages.map((x) => x.page.$eval(sel, (el) => el.atrium.doc().length)));
      return lens.every((l) => l === want) && headless.every((h) => h.length() === want);
    }, 30000, 'all editors to catch up');
    typist++;
  }
  const b = await Promise.all(pages.map((x) => x.page.evaluate(() => window.__bench)));
  const samples = [];
  const slowest = [];
  let missing = 0;
  for (let l = start + 1; l <= start + KEYS; l++) {
    const from = b.findIndex((x) => x.sent[l] !== undefined);
    if (from < 0) {
      missing++;
      continue;
    }
    let worst = 0;
    b.forEach((x, i) => {
      if (i === from) return;
      const d = x.arrived[l] - b[from].sent[l];
      samples.push(d);
      worst = Math.max(worst, d);
    });
    slowest.push(worst);
  }
  for (const x of pages) await x.context.close();
  for (const h of headless) h.close();
  const s = stats(samples);
  const met = s.p99_ms < GOAL_P99_MS;
  const mixed = browsers < editors;
  emit({
    scenario: mixed ? `console_keystroke_${editors}_editors_${browsers}_browsers` : `console_keystroke_${editors}_editors`,
    editors,
    browsers,
    typists_at_once: 1,
    keystrokes: KEYS - missing,
    pace_ms: PACE_MS,
    samples: samples.length,
    ...s,
    slowest_receiver_p50_ms: round(pct(slowest, 50)),
    slowest_receiver_p99_ms: round(pct(slowest, 99)),
    goal_p99_ms: GOAL_P99_MS,
    goal_met: met,
  });
  summary.push(`keystroke→other browser, ${editors} editors${mixed ? ` (${browsers} in chromium, ${editors - browsers} headless)` : ''} (1 typist, ${KEYS - missing} keys, ${samples.length} samples): p50 ${s.p50_ms} ms, p99 ${s.p99_ms} ms, max ${s.max_ms} ms; slowest receiver p99 ${round(pct(slowest, 99))} ms — goal p99 < ${GOAL_P99_MS} ms ${met ? 'MET' : 'NOT met'}`);
}

/** A headless co-editor of one cell: a collab EditorState fed by the project's events. */
async function headlessEditor(user, projectId, cellId) {
  const cell = (await server.http('GET', `/v1/projects/${projectId}/cells/${cellId}`, { token: user.token })).json;
  let state = EditorState.create({ doc: cell.content, extensions: [collab({ startVersion: cell.version, clientID: user.username })] });
  const c = await Client.open(new WebSocket(`ws://${server.address}/v1/ws`, { headers: { Authorization: `Bearer ${user.token}` } }));
  c.ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.op !== 'event' || m.event.type !== 'project.cell_changed' || m.event.data.cell_id !== cellId) return;
    const sets = m.event.data.changes;
    if (m.event.data.version - sets.length !== getSyncedVersion(state)) return;
    state = receiveUpdates(state, sets.map((cs) => ({ changes: ChangeSet.fromJSON(cs), clientID: m.event.data.client_id }))).state;
  });
  const sub = await c.call({ op: 'subscribe', id: 's', projects: [projectId] });
  if (!sub.ok) throw new Error(JSON.stringify(sub));
  return { length: () => state.doc.length, close: () => c.close() };
}

// ---- 2. baseline: node ws clients, no browser ---------------------------------------------
async function baseline(clients) {
  const users = [];
  for (let i = 0; i < clients; i++) users.push(await server.user(`w${clients}u${i}`));
  const p = await project(users[0], users.slice(1), ['select ']);
  const cellId = p.cells[0];
  const now = () => performance.timeOrigin + performance.now();
  const conns = [];
  for (const u of users) {
    const c = await Client.open(new WebSocket(`ws://${server.address}/v1/ws`, { headers: { Authorization: `Bearer ${u.token}` } }));
    c.arrived = new Map(); // version → stamp
    c.ws.on('message', (data) => {
      const t = now();
      const m = JSON.parse(data.toString());
      if (m.op === 'event' && m.event.type === 'project.cell_changed' && m.event.data.cell_id === cellId) c.arrived.set(m.event.data.version, t);
    });
    const sub = await c.call({ op: 'subscribe', id: 's', projects: [p.id] });
    if (!sub.ok) throw new Error(JSON.stringify(sub));
    conns.push(c);
  }
  const target = `/v1/projects/${p.id}/cells/${cellId}/changes`;
  let version = (await server.http('GET', `/v1/projects/${p.id}/cells/${cellId}`)).json.version;
  let len = 'select '.length;
  const samples = [];
  const slowest = [];
  const per = Math.max(15, Math.ceil(KEYS / clients));
  for (let k = 0; k < KEYS; k++) {
    const from = Math.floor(k / per) % clients;
    const c = conns[from];
    const t0 = now();
    const r = await c.command('POST', target, { version, client_id: `ws-${from}`, updates: [{ changes: [len, [0, String.fromCharCode(97 + (k % 26))]] }] });
    if (r.status !== 200) throw new Error(JSON.stringify(r));
    version = r.body.version;
    len++;
    await waitFor(() => conns.every((x) => x.arrived.has(version)), 10000, 'the event at every client');
    let worst = 0;
    conns.forEach((x, i) => {
      if (i === from) return;
      const d = x.arrived.get(version) - t0;
      samples.push(d);
      worst = Math.max(worst, d);
    });
    slowest.push(worst);
    const left = PACE_MS - (now() - t0);
    if (left > 0) await sleep(left);
  }
  for (const c of conns) c.close();
  const s = stats(samples);
  emit({
    scenario: `console_baseline_ws_${clients}_clients`,
    clients,
    senders_at_once: 1,
    keystrokes: KEYS,
    pace_ms: PACE_MS,
    samples: samples.length,
    ...s,
    slowest_receiver_p50_ms: round(pct(slowest, 50)),
    slowest_receiver_p99_ms: round(pct(slowest, 99)),
    via: 'ws command POST …/changes → project.cell_changed on other ws subscriptions',
  });
  summary.push(`baseline ws command → other ws client, ${clients} clients (${samples.length} samples): p50 ${s.p50_ms} ms, p99 ${s.p99_ms} ms, max ${s.max_ms} ms`);
}

// ---- 3 + 4. bundle and first load -------------------------------------------------------
async function bundleAndLoad() {
  const owner = await server.user('loader');
  const CELLS = 10;
  const cells = Array.from({ length: CELLS }, (_, i) => `select ${i} as n, 'cell ${i}' as label\nfrom (select 1)\nwhere 1 = 1`);
  const p = await project(owner, [], cells);
  const url = `${server.url}/#/projects/${p.id}`;
  // Stamps performance.now() (ms since navigation start) when every cell's editor is mounted.
  const init = `(() => {
    const want = ${CELLS};
    const check = () => {
      if (window.__mounted === undefined && document.querySelectorAll('li[data-cell-id] .cm-editor').length >= want) window.__mounted = performance.now();
    };
    new MutationObserver(check).observe(document, { childList: true, subtree: true });
  })()`;

  const first = await browser.newContext();
  const page0 = await first.newPage();
  await signIn(page0, server, owner.username, owner.password);
  const state = await first.storageState();

  async function loadOnce(page) {
    const loaded = [];
    const onResponse = (r) => loaded.push(r.url());
    page.on('response', onResponse);
    await page.goto('about:blank');
    await page.goto(url);
    await page.waitForFunction(() => window.__mounted !== undefined, null, { timeout: 30000 });
    page.off('response', onResponse);
    return { ms: await page.evaluate(() => window.__mounted), loaded };
  }

  const cold = [];
  let loadedFiles = [];
  for (let i = 0; i < LOADS; i++) {
    const ctx = await browser.newContext({ storageState: state });
    await ctx.addInitScript(init);
    const page = await ctx.newPage();
    const r = await loadOnce(page);
    cold.push(r.ms);
    loadedFiles = r.loaded;
    await ctx.close();
  }
  await first.addInitScript(init);
  await loadOnce(page0); // fills the cache
  const warm = [];
  for (let i = 0; i < LOADS; i++) warm.push((await loadOnce(page0)).ms);
  await first.close();

  // Bundle: every file of assets/ (raw, and gzip -9 as the precompressed *.gz are made).
  const dir = path.join(process.env.ATRIUM_WEB_ROOT, 'assets');
  const files = fs.readdirSync(dir).filter((f) => !f.endsWith('.gz')).sort();
  const loadedNames = new Set(loadedFiles.map((u) => new URL(u).pathname));
  let pageRaw = 0;
  let pageGz = 0;
  const consider = [['index.html', path.join(process.env.ATRIUM_WEB_ROOT, 'index.html'), '/']];
  for (const f of files) consider.push([`assets/${f}`, path.join(dir, f), `/assets/${f}`]);
  for (const [name, file, urlPath] of consider) {
    const raw = fs.readFileSync(file);
    const gz = zlib.gzipSync(raw, { level: 9 }).length;
    const served = fs.existsSync(`${file}.gz`) ? fs.statSync(`${file}.gz`).size : null;
    const byPage = loadedNames.has(urlPath) || (name === 'index.html' && loadedNames.has('/'));
    if (byPage) {
      pageRaw += raw.length;
      pageGz += gz;
    }
    emit({ scenario: 'console_bundle_file', file: name, raw_bytes: raw.length, gzip_bytes: gz, precompressed_gz_bytes: served, loaded_by_project_page: byPage });
  }
  const met = pageGz < GOAL_GZIP_KIB * 1024;
  emit({ scenario: 'console_bundle_project_page', raw_bytes: pageRaw, gzip_bytes: pageGz, gzip_kib: round(pageGz / 1024, 1), goal_gzip_kib: GOAL_GZIP_KIB, goal_met: met });
  summary.push(`bundle loaded by the project page: ${round(pageRaw / 1024, 1)} KiB raw, ${round(pageGz / 1024, 1)} KiB gzipped — goal < ${GOAL_GZIP_KIB} KiB ${met ? 'MET' : 'NOT met'}`);

  for (const [kind, xs] of [['cold', cold], ['warm', warm]]) {
    emit({ scenario: `console_first_load_${kind}`, cells: CELLS, loads: xs.length, median_ms: round(median(xs), 1), min_ms: round(Math.min(...xs), 1), max_ms: round(Math.max(...xs), 1), until: 'navigation start → editors of all cells mounted' });
    summary.push(`project page load (${CELLS} cells), ${kind}: median ${round(median(xs), 1)} ms (min ${round(Math.min(...xs), 1)}, max ${round(Math.max(...xs), 1)}, n=${xs.length})`);
  }
}

try {
  for (const n of EDITORS) {
    log(`baseline ws, ${n} clients …`);
    await baseline(n);
    if (MODES.includes('all')) {
      log(`keystrokes, ${n} editors …`);
      await keystrokes(n);
    }
    if (n > 2 && MODES.includes('2')) {
      log(`keystrokes, ${n} editors, 2 of them in chromium …`);
      await keystrokes(n, 2);
    }
  }
  log('bundle and first load …');
  await bundleAndLoad();
} finally {
  await browser.close();
  await server.stop();
}
log('\n== console bench ==');
for (const s of summary) log(s);
