import path from 'node:path';
process.env.ATRIUMD ||= '/work/main/build/atriumd';
process.env.ATRIUM_WEB_ROOT ||= '/work/main/build/web';
const { Server, launch, signIn } = await import('./support.mjs');
const server = await new Server().start();
const browser = await launch(['--disable-renderer-backgrounding','--disable-background-timer-throttling','--disable-backgrounding-occluded-windows']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const u = [await server.user('aaa1'), await server.user('bbb1')];
const p = await server.http('POST', '/v1/projects', { token: u[0].token, body: { name: 'x' } });
await server.http('POST', `/v1/projects/${p.json.id}/members`, { token: u[0].token, body: { user_id: u[1].id, role: 'editor' } });
const c = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { token: u[0].token, body: { kind: 'sql', content: 'select ' } });
const sel = `li[data-cell-id="${c.json.cell_id}"] .cm-editor`;
const init = () => {
  const now = () => performance.timeOrigin + performance.now();
  window.__t = { fetch: [], fetchEnd: [], ws: [], keys: [], dom: [] };
  const f = window.fetch;
  window.fetch = async (...a) => { const t = now(); const r = await f(...a); if (String(a[0]).includes('/changes')) { window.__t.fetch.push(t); window.__t.fetchEnd.push(now()); } return r; };
  const W = window.WebSocket;
  window.WebSocket = function (...a) { const s = new W(...a); s.addEventListener('message', (e) => { if (e.data.includes('cell_changed')) window.__t.ws.push(now()); if (e.data.includes('"op":"result"') && e.data.includes('"position"')) window.__t.fetchEnd.push(now()); }); return s; };
  window.WebSocket.prototype = W.prototype; Object.assign(window.WebSocket, { OPEN: 1, CLOSED: 3, CONNECTING: 0, CLOSING: 2 });
};
const pages = [];
for (const x of u) {
  const ctx = await browser.newContext();
  await ctx.addInitScript(init);
  const page = await ctx.newPage();
  await signIn(page, server, x.username, x.password);
  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  await page.waitForSelector(sel);
  await page.$eval(sel, (el) => {
    const now = () => performance.timeOrigin + performance.now();
    let last = el.atrium.doc().length;
    new MutationObserver(() => { const n = el.atrium.doc().length; if (n > last) { window.__t.dom.push(now()); last = n; } }).observe(el, { childList: true, subtree: true, characterData: true });
    el.addEventListener('keydown', (e) => { if (e.key.length === 1) window.__t.keys.push(now()); }, true);
  });
  pages.push(page);
}
await pages[0].click(`${sel} .cm-content`);
await pages[0].keyboard.press('Control+End');
for (let i = 0; i < 150; i++) { await pages[0].keyboard.type('a'); await sleep(100); }
await sleep(1000);
const [A, B] = await Promise.all(pages.map((pg) => pg.evaluate(() => window.__t)));
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)].toFixed(1) + ' p90 ' + s[Math.floor(s.length * 0.9)].toFixed(1) + ' p99 ' + s[Math.floor(s.length * 0.99)].toFixed(1); };
const n = Math.min(A.keys.length, B.ws.length, B.dom.length);
console.log('counts', A.keys.length, A.fetchEnd.length, B.ws.length, B.dom.length);
const d = (x, y) => x.slice(0, n).map((v, i) => y[i] - v);
console.log('key→A ws result', med(d(A.keys, A.fetchEnd)));
console.log('key→B ws msg', med(d(A.keys, B.ws)));

console.log('B ws msg→B dom', med(d(B.ws, B.dom)));
console.log('key→B dom', med(d(A.keys, B.dom)));
await browser.close();
await server.stop();
