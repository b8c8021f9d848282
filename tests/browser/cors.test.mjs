// CORS in a real browser (issue 21 point 4): a page served by a small Node HTTP server on
// another port of 127.0.0.1 (another origin, the same site) is listed with
// --allowed-origin; the same page reached as http://localhost:<port> is another origin,
// not listed. The listed page logs in with fetch(…, {credentials: 'include'}) (a
// preflighted JSON POST), reads its session, creates a project (reading the exposed
// Location and ETag) and calls the API with a bearer token; the unlisted page is blocked
// by the browser for all of it, and its WebSocket is refused by the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Server, requireChromium, launch, waitFor, ADMIN_PASSWORD } from './support.mjs';

requireChromium();
let server;
let browser;
let app;
before(async () => {
  app = http.createServer((req, res) => {
    const params = new URL(req.url, 'http://x').searchParams;
    if (req.url.startsWith('/app.js')) {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(`
        const target = ${JSON.stringify(params.get('target'))};
        const token = ${JSON.stringify(params.get('token'))};
        const password = ${JSON.stringify(ADMIN_PASSWORD)};
        const out = {};
        const json = { 'Content-Type': 'application/json' };
        (async () => {
          try {
            const r = await fetch(target + '/v1/auth/login', { method: 'POST', credentials: 'include', headers: json,
              body: JSON.stringify({ username: 'admin', password, cookie: true }) });
            out.login = r.status;
          } catch (e) { out.login = 'blocked'; }
          try {
            const r = await fetch(target + '/v1/auth/session', { credentials: 'include' });
            out.session = r.status + ' ' + (await r.json()).via;
          } catch (e) { out.session = 'blocked'; }
          try {
            const r = await fetch(target + '/v1/projects', { method: 'POST', credentials: 'include', headers: json,
              body: JSON.stringify({ name: 'cors ' + location.host }) });
            out.create = r.status;
            out.location = r.headers.get('Location');
            out.etag = r.headers.get('ETag');
          } catch (e) { out.create = 'blocked'; }
          try {
            const r = await fetch(target + '/v1/projects', { headers: { Authorization: 'Bearer ' + token } });
            out.bearer = r.status;
            out.list_etag = r.headers.get('ETag');
          } catch (e) { out.bearer = 'blocked'; }
          await new Promise((resolve) => {
            const ws = new WebSocket(target.replace('http', 'ws') + '/v1/ws?token=' + encodeURIComponent(token));
            ws.onopen = () => { out.ws = 'open'; ws.close(); resolve(); };
            ws.onerror = () => { if (!out.ws) out.ws = 'refused'; };
            ws.onclose = () => { if (!out.ws) out.ws = 'refused'; resolve(); };
          });
          window.__done = out;
        })();
      `);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>app</title><script src="/app.js?${params.toString()}"></script>`);
  });
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
  server = await new Server(['--allowed-origin', `http://127.0.0.1:${app.address().port}`]).start();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  app?.close();
  await server?.stop();
});

async function run(host) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const query = new URLSearchParams({ target: server.url, token: server.adminToken });
  await page.goto(`http://${host}:${app.address().port}/?${query}`);
  const out = await waitFor(() => page.evaluate(() => window.__done), 15000, `the page on ${host}`);
  await context.close();
  return out;
}

test('a listed origin logs in with credentials, calls the API and opens the WebSocket', async () => {
  const out = await run('127.0.0.1');
  assert.equal(out.login, 200, JSON.stringify(out));
  assert.equal(out.session, '200 cookie', JSON.stringify(out));
  assert.equal(out.create, 201, JSON.stringify(out));
  assert.match(out.location, /^\/v1\/projects\/[0-9a-f-]+$/, JSON.stringify(out));
  assert.match(out.etag, /^"[0-9]+"$/, JSON.stringify(out));
  assert.equal(out.bearer, 200, JSON.stringify(out));
  assert.match(out.list_etag, /^"b[0-9a-f]{16}(-gz)?"$/, JSON.stringify(out));
  assert.equal(out.ws, 'open', JSON.stringify(out));
});

test('an unlisted origin is blocked by the browser, and its WebSocket refused', async () => {
  const out = await run('localhost');
  assert.equal(out.login, 'blocked', JSON.stringify(out));
  assert.equal(out.session, 'blocked', JSON.stringify(out));
  assert.equal(out.create, 'blocked', JSON.stringify(out));
  assert.equal(out.bearer, 'blocked', JSON.stringify(out));
  assert.equal(out.ws, 'refused', JSON.stringify(out));
  const list = await server.http('GET', '/v1/projects?limit=1000');
  assert.deepEqual(
    list.json.projects.filter((p) => p.name.startsWith('cors localhost')),
    [],
    'the preflight stopped the POST',
  );
});
