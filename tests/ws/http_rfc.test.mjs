// End to end: HTTP by RFC 9110/9111 and CORS (issue 21, points 3 and 4) with Node's own
// `http` client against the real atriumd: HEAD on a keep-alive connection (the
// `HPE_INVALID_CONSTANT` reproduction), OPTIONS and Allow, Location on 201, ETag /
// If-None-Match / If-Match: *, 415 for bodies that are not JSON, gzip, unknown query
// parameters, `atriumd routes`, and the CORS headers for listed origins only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { Server, request } from './support.mjs';

const LISTED = 'http://127.0.0.1:9';
const UNLISTED = 'http://127.0.0.1:10';

let server;
before(async () => {
  server = await new Server(['--allowed-origin', LISTED], 'atrium-http-rfc-').start();
});
after(async () => {
  await server?.stop();
});

/** One request through `agent`; resolves {status, headers, body (Buffer), reused}. */
function raw(agent, method, target, headers = {}, body) {
  const [host, port] = server.address.split(':');
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: target, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }),
      );
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const auth = () => ({ Authorization: `Bearer ${server.adminToken}` });

test('HEAD answers the GET header without a body, and the keep-alive connection goes on', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const target of ['/v1/projects', '/healthz', '/v1/auth/session', '/v1/events?limit=5']) {
      const get = await raw(agent, 'GET', target, auth());
      const head = await raw(agent, 'HEAD', target, auth());
      assert.equal(head.status, get.status, target);
      assert.equal(head.body.length, 0, target);
      assert.equal(Number(head.headers['content-length']), get.body.length, target);
      assert.equal(head.headers['content-type'], get.headers['content-type'], target);
      assert.ok(head.headers.date, target);
      // The next request on the same socket parses (no HPE_INVALID_CONSTANT).
      const again = await raw(agent, 'GET', target, auth());
      assert.equal(again.status, get.status, target);
      assert.equal(again.reused, true, `${target}: the socket was kept`);
    }
    // A push route: the SSE stream's header, never the stream itself.
    const sse = await raw(agent, 'HEAD', '/v1/events/stream', auth());
    assert.equal(sse.status, 200);
    assert.match(sse.headers['content-type'], /text\/event-stream/);
    const after = await raw(agent, 'GET', '/v1/projects', auth());
    assert.equal(after.status, 200);
    assert.equal(after.reused, true);
    // HEAD where there is no GET: 405 with Allow.
    const login = await raw(agent, 'HEAD', '/v1/auth/login');
    assert.equal(login.status, 405);
    assert.equal(login.headers.allow, 'POST, OPTIONS');
  } finally {
    agent.destroy();
  }
});

test('OPTIONS answers Allow for a known path, 404 for an unknown one; 405 lists HEAD and OPTIONS', async () => {
  const o = await request(server.address, 'OPTIONS', '/v1/projects');
  assert.equal(o.status, 204);
  assert.equal(o.headers.allow, 'POST, GET, HEAD, OPTIONS');
  assert.equal(o.body, '');
  const one = await request(server.address, 'OPTIONS', '/v1/projects/anything');
  assert.equal(one.headers.allow, 'GET, PATCH, DELETE, HEAD, OPTIONS');
  assert.equal((await request(server.address, 'OPTIONS', '/v1/nowhere')).status, 404);
  const put = await server.http('PUT', '/v1/projects', { body: {} });
  assert.equal(put.status, 405);
  assert.equal(put.headers.allow, 'POST, GET, HEAD, OPTIONS');
  assert.deepEqual(put.json.error.details.allowed, ['POST', 'GET', 'HEAD', 'OPTIONS']);
});

test('a 201 names the created resource in Location', async () => {
  const cases = [
    ['/v1/projects', { name: `loc ${Date.now()}` }],
    ['/v1/groups', { name: `loc-group-${Date.now()}` }],
    ['/v1/users', { username: `loc${Date.now()}`, email: 'loc@example.org', password: 'loc-password-123', role: 'member' }],
    ['/v1/service-accounts', { name: `loc-robot-${Date.now()}` }],
  ];
  for (const [path, body] of cases) {
    const r = await server.http('POST', path, { body });
    assert.equal(r.status, 201, `${path}: ${r.body}`);
    assert.equal(r.headers.location, `${path}/${r.json.id}`, path);
    assert.equal((await server.http('GET', r.headers.location)).status, 200, path);
  }
  const token = await server.http('POST', '/v1/tokens', { body: { name: 'loc-token', scopes: ['events:read'] } });
  assert.equal(token.status, 201, token.body);
  assert.equal(token.headers.location, `/v1/tokens/${token.json.id}`);
});

test('ETag on every 200 to GET; If-None-Match answers 304; If-Match: * is honoured', async () => {
  const created = await server.http('POST', '/v1/projects', { body: { name: `etag ${Date.now()}` } });
  const url = `/v1/projects/${created.json.id}`;
  const one = await server.http('GET', url);
  assert.equal(one.headers.etag, `"${one.json.version}"`, 'a single resource keeps its version tag');
  const nm = await server.http('GET', url, { headers: { 'If-None-Match': one.headers.etag } });
  assert.equal(nm.status, 304);
  assert.equal(nm.body, '');
  assert.equal(nm.headers.etag, one.headers.etag);
  assert.equal((await server.http('GET', url, { headers: { 'If-None-Match': '*' } })).status, 304);
  assert.equal((await server.http('GET', url, { headers: { 'If-None-Match': '"999"' } })).status, 200);
  // A list: a strong tag of the body bytes, which changes when the list does.
  const list = await server.http('GET', '/v1/projects');
  assert.match(list.headers.etag, /^"b[0-9a-f]{16}"$/);
  const again = await server.http('GET', '/v1/projects', { headers: { 'If-None-Match': `"x", ${list.headers.etag}` } });
  assert.equal(again.status, 304);
  // If-Match: * — any current version of an existing resource.
  const patched = await server.http('PATCH', url, { body: { description: 'any version' }, headers: { 'If-Match': '*' } });
  assert.equal(patched.status, 200, patched.body);
  assert.equal(patched.json.description, 'any version');
  const stale = await server.http('PATCH', url, { body: { description: 'stale' }, headers: { 'If-Match': '"1"' } });
  assert.equal(stale.status, 409);
  assert.equal((await server.http('PATCH', url, { body: { description: 'x' }, headers: { 'If-Match': 'nope' } })).status, 400);
  assert.equal((await server.http('DELETE', url, { headers: { 'If-Match': '*' } })).status, 200);
});

test('415 for a body that is not application/json; a text/plain login never runs', async () => {
  const lastAudit = async () => (await server.http('GET', '/v1/audit?order=desc&limit=1')).json.entries[0]?.position;
  const before = await lastAudit();
  const body = JSON.stringify({ username: 'admin', password: 'wrong-password' });
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const r = await request(server.address, 'POST', '/v1/auth/login', { body, headers: { 'Content-Type': type } });
    assert.equal(r.status, 415, type);
    assert.equal(r.json.error.code, 'unsupported_media_type', type);
  }
  assert.equal(await lastAudit(), before, 'nothing was audited');
  // No Content-Type with a body: 415 too.
  const [host, port] = server.address.split(':');
  const bare = await new Promise((resolve, reject) => {
    const req = http.request({ host, port, method: 'POST', path: '/v1/projects', headers: { ...auth() } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ name: 'no type' }));
  });
  assert.equal(bare, 415);
  // Parameters are fine.
  const ok = await server.http('POST', '/v1/projects', {
    body: JSON.stringify({ name: `charset ${Date.now()}` }),
    headers: { 'Content-Type': 'Application/JSON; charset=utf-8' },
  });
  assert.equal(ok.status, 201, ok.body);
});

test('gzip when asked and the body is 1 KiB or more (a 100-project list, measured)', async () => {
  for (let i = 0; i < 100; i++) {
    const r = await server.http('POST', '/v1/projects', {
      body: { name: `gzip project ${i} ${Date.now()}`, description: `the project number ${i} of the gzip measurement` },
    });
    assert.equal(r.status, 201);
  }
  const agent = new http.Agent({ keepAlive: false });
  const plain = await raw(agent, 'GET', '/v1/projects?limit=100', auth());
  const gz = await raw(agent, 'GET', '/v1/projects?limit=100', { ...auth(), 'Accept-Encoding': 'gzip, deflate, br' });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.match(gz.headers.vary, /Accept-Encoding/);
  assert.match(plain.headers.vary, /Accept-Encoding/);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.deepEqual(zlib.gunzipSync(gz.body), plain.body);
  assert.notEqual(gz.headers.etag, plain.headers.etag, 'the gzip bytes have their own tag');
  console.log(`100-project list: ${plain.body.length} bytes identity, ${gz.body.length} bytes gzip`);
  const refused = await raw(agent, 'GET', '/v1/projects?limit=100', { ...auth(), 'Accept-Encoding': 'gzip;q=0, identity' });
  assert.equal(refused.headers['content-encoding'], undefined);
  const nm = await raw(agent, 'GET', '/v1/projects?limit=100', { ...auth(), 'Accept-Encoding': 'gzip', 'If-None-Match': gz.headers.etag });
  assert.equal(nm.status, 304);
  // HEAD gives the gzip length.
  const head = await raw(agent, 'HEAD', '/v1/projects?limit=100', { ...auth(), 'Accept-Encoding': 'gzip' });
  assert.equal(Number(head.headers['content-length']), gz.body.length);
  // Small bodies stay as they are.
  const small = await raw(agent, 'GET', '/healthz', { 'Accept-Encoding': 'gzip' });
  assert.equal(small.headers['content-encoding'], undefined);
});

test('unknown query parameters are refused naming them; atriumd routes prints the table', async () => {
  const r = await server.http('GET', '/v1/projects?limit=5&bogus=1&other=2');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'invalid_argument');
  assert.deepEqual(r.json.error.details.unknown.sort(), ['bogus', 'other']);
  assert.equal((await server.http('GET', '/v1/projects?limit=5&after=')).status, 200);
  assert.equal((await server.http('GET', '/healthz?x=1')).status, 400);
  assert.equal((await server.http('GET', `/v1/users?as_of=1`)).status, 400, 'as_of is for single resources');
  const routes = JSON.parse(execFileSync(process.env.ATRIUMD, ['routes'], { encoding: 'utf8' }));
  const projects = routes.find((x) => x.method === 'GET' && x.pattern === '/v1/projects');
  assert.deepEqual(projects, { method: 'GET', pattern: '/v1/projects', access: 'authenticated', query: ['limit', 'after'] });
  const ws = routes.find((x) => x.pattern === '/v1/ws');
  assert.equal(ws.access, 'push');
  assert.ok(ws.query.includes('token'));
  assert.ok(routes.find((x) => x.pattern === '/healthz').access === 'open');
});

test('CORS: a listed origin gets preflights and credentials, an unlisted one nothing', async () => {
  const pre = await request(server.address, 'OPTIONS', '/v1/projects', {
    headers: { Origin: LISTED, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], LISTED);
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  assert.equal(pre.headers['access-control-allow-methods'], 'POST, GET, HEAD, OPTIONS');
  assert.match(pre.headers['access-control-allow-headers'], /Authorization/);
  assert.match(pre.headers['access-control-allow-headers'], /If-None-Match/);
  assert.ok(Number(pre.headers['access-control-max-age']) > 0);
  assert.match(pre.headers.vary, /Origin/);
  const other = await request(server.address, 'OPTIONS', '/v1/projects', {
    headers: { Origin: UNLISTED, 'Access-Control-Request-Method': 'POST' },
  });
  assert.equal(other.status, 204);
  assert.deepEqual(Object.keys(other.headers).filter((h) => h.startsWith('access-control-')), []);
  // Actual answers.
  const get = await server.http('GET', '/v1/projects', { headers: { Origin: LISTED } });
  assert.equal(get.headers['access-control-allow-origin'], LISTED);
  assert.equal(get.headers['access-control-allow-credentials'], 'true');
  assert.match(get.headers['access-control-expose-headers'], /ETag/);
  assert.match(get.headers['access-control-expose-headers'], /Location/);
  assert.match(get.headers.vary, /Origin/);
  const foreign = await server.http('GET', '/v1/projects', { headers: { Origin: UNLISTED } });
  assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  // The WebSocket upgrade checks Origin whatever the credential; none means no browser.
  const upgrade = (origin) =>
    new Promise((resolve) => {
      const ws = new WebSocket(`ws://${server.address}/v1/ws`, {
        headers: { Authorization: `Bearer ${server.adminToken}` },
        ...(origin ? { origin } : {}),
      });
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode);
      });
      ws.once('error', () => {});
    });
  assert.equal(await upgrade(UNLISTED), 403);
  assert.equal(await upgrade(LISTED), 101);
  assert.equal(await upgrade(`http://${server.address}`), 101);
  assert.equal(await upgrade(undefined), 101);
});
