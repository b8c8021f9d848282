// A page on another origin cannot ride the console's session: with the browser signed in
// to atriumd (the HttpOnly SameSite=Strict cookie), a page served by a second tiny HTTP
// server on another port of the same host (same site, another origin: the cookie IS sent,
// so the server's Origin check is what stops it) and one on another host name (another
// site: the cookie is not sent at all) try to read the session, create a project (a simple
// text/plain POST that needs no preflight, and a no-cors one) and open the WebSocket.
// None of it works, and the server's log of projects shows nothing was created.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Server, requireChromium, launch, signIn, waitFor, ADMIN_PASSWORD } from './support.mjs';

requireChromium();
let server;
let browser;
let evil;
before(async () => {
  server = await new Server().start();
  browser = await launch();
  // The attacker's page: plain HTML with its own script file (no inline script needed).
  evil = http.createServer((req, res) => {
    const target = new URL(req.url, 'http://x').searchParams.get('target');
    if (req.url.startsWith('/attack.js')) {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(`
        const target = ${JSON.stringify(target)};
        const out = {};
        const settle = (k, v) => { out[k] = v; };
        (async () => {
          try { const r = await fetch(target + '/v1/auth/session', { credentials: 'include' }); settle('read', 'status ' + r.status + ' ' + (await r.text())); }
          catch (e) { settle('read', 'blocked'); }
          try { await fetch(target + '/v1/projects', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ name: 'pwned-simple' }) }); settle('post', 'sent'); }
          catch (e) { settle('post', 'blocked'); }
          try { await fetch(target + '/v1/projects', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ name: 'pwned-nocors' }) }); settle('nocors', 'sent'); }
          catch (e) { settle('nocors', 'blocked'); }
          await new Promise((resolve) => {
            const ws = new WebSocket(target.replace('http', 'ws') + '/v1/ws');
            ws.onopen = () => { settle('ws', 'open'); ws.send(JSON.stringify({ op: 'command', id: 1, command: { method: 'POST', path: '/v1/projects', body: { name: 'pwned-ws' } } })); setTimeout(resolve, 500); };
            ws.onmessage = (m) => settle('ws_message', m.data);
            ws.onerror = () => { if (!out.ws) settle('ws', 'refused'); };
            ws.onclose = () => { if (!out.ws) settle('ws', 'refused'); resolve(); };
          });
          window.__done = out;
        })();
      `);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><title>evil</title><script src="/attack.js?target=${encodeURIComponent(target)}"></script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
});
after(async () => {
  await browser?.close();
  evil?.close();
  await server?.stop();
});

test('a page on another origin cannot use the session cookie over HTTP or the WebSocket', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, server, 'admin', ADMIN_PASSWORD);
  // The console itself, on its own origin, can.
  assert.equal(await page.evaluate(async () => (await fetch('/v1/auth/session')).status), 200);

  const port = evil.address().port;
  for (const host of ['127.0.0.1', 'localhost']) {
    const attacker = await context.newPage();
    await attacker.goto(`http://${host}:${port}/?target=${encodeURIComponent(server.url)}`);
    const out = await waitFor(() => attacker.evaluate(() => window.__done), 15000, `the attack from ${host}`);
    assert.equal(out.read, 'blocked', `${host}: ${JSON.stringify(out)}`);
    assert.equal(out.ws, 'refused', `${host}: ${JSON.stringify(out)}`);
    assert.equal(out.ws_message, undefined, `${host}: ${JSON.stringify(out)}`);
    await attacker.close();
  }
  // Nothing was created by any of the attempts.
  const list = await server.http('GET', '/v1/projects?limit=1000');
  assert.equal(list.status, 200, list.body);
  assert.deepEqual(list.json.projects.filter((p) => p.name.startsWith('pwned')), []);
  // And the refusals were made by the server: a same-site, cross-origin POST carrying the
  // cookie answers 403 (what the browser sent above, replayed here to read the answer).
  const cookie = (await context.cookies()).find((c) => c.name === 'atrium_session');
  const forged = await server.http('POST', '/v1/projects', {
    token: null,
    body: { name: 'pwned-forged' },
    headers: { Cookie: `atrium_session=${cookie.value}`, Origin: `http://127.0.0.1:${port}` },
  });
  assert.equal(forged.status, 403, forged.body);
  const same = await server.http('POST', '/v1/projects', {
    token: null,
    body: { name: 'own origin' },
    headers: { Cookie: `atrium_session=${cookie.value}`, Origin: server.url },
  });
  assert.equal(same.status, 201, same.body);
  await context.close();
});
