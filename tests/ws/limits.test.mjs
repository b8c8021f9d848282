// End to end: the per-user limits of the real-time transport (docs/realtime.md
// "Limits") and hostile messages (deep JSON, oversized ids and presence states), each
// followed by proof that the connection and the server are alive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Server, Client, waitFor } from './support.mjs';

let server;
before(async () => {
  server = await new Server().start();
});
after(async () => {
  await server?.stop();
});

/** Tries a WebSocket upgrade as `token`: {client} when accepted, {status, headers, json} when refused. */
function tryUpgrade(token) {
  const ws = new WebSocket(`ws://${server.address}/v1/ws`, { headers: { Authorization: `Bearer ${token}` } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ client: new Client(ws) }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, json: JSON.parse(body) }));
    });
    ws.once('error', (e) => (e.message.startsWith('Unexpected server response') ? null : reject(e)));
  });
}

/** Proof of life: the connection answers a ping and the server still writes. */
async function alive(c) {
  const from = c.messages.length;
  c.send({ op: 'ping' });
  await c.next((m) => m.op === 'pong', 10000, from);
  const r = await server.http('POST', '/v1/projects', { body: { name: `alive ${Date.now()}` } });
  assert.equal(r.status, 201, r.body);
}

test('a user holds at most 16 WebSockets: the 17th upgrade is refused with 429 and Retry-After', async () => {
  const u = await server.user('conn-limit');
  const open = [];
  try {
    for (let i = 0; i < 16; i++) {
      const r = await tryUpgrade(u.token);
      assert.ok(r.client, `connection ${i + 1} accepted`);
      open.push(r.client);
    }
    const refused = await tryUpgrade(u.token);
    assert.equal(refused.status, 429);
    assert.equal(refused.json.error.code, 'too_many_requests');
    assert.equal(refused.json.error.details.limit, 16);
    assert.ok(Number(refused.headers['retry-after']) > 0);
    // Another user is not affected.
    const other = await server.user('conn-other');
    const fine = await tryUpgrade(other.token);
    assert.ok(fine.client);
    fine.client.close();
    // Closing one frees a place (the server counts the close when it sees it).
    open.pop().close();
    const again = await waitFor(async () => {
      const r = await tryUpgrade(u.token);
      return r.client ?? false;
    }, 10000, 'a place after a close');
    open.push(again);
    await alive(again);
  } finally {
    for (const c of open) c.close();
  }
});

test('subscriptions: 64 per connection, 256 per user, released by unsubscribe and close', async () => {
  const u = await server.user('sub-limit');
  const p = await server.http('POST', '/v1/projects', { body: { name: 'limits' }, token: u.token });
  assert.equal(p.status, 201, p.body);
  const project = p.json.id;
  const conns = [];
  try {
    for (let i = 0; i < 5; i++) conns.push(await server.ws(u.token));
    // 64 on one connection, then 429.
    for (let i = 0; i < 64; i++) {
      const r = await conns[0].call({ op: 'subscribe', id: `s${i}`, projects: [project] });
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    const over = await conns[0].call({ op: 'subscribe', id: 'one-more', projects: [project] });
    assert.equal(over.status, 429);
    assert.equal(over.error.code, 'too_many_requests');
    assert.equal(over.error.details.limit, 64);
    // 256 over four connections, then the fifth connection is refused for the user.
    for (let c = 1; c < 4; c++) {
      const rs = await Promise.all(
        Array.from({ length: 64 }, (_, i) => conns[c].call({ op: 'subscribe', id: i, projects: [project] })),
      );
      assert.ok(rs.every((r) => r.ok));
    }
    const userOver = await conns[4].call({ op: 'subscribe', id: 'x', projects: [project] });
    assert.equal(userOver.status, 429);
    assert.equal(userOver.error.details.limit, 256);
    // An unsubscribe frees one.
    assert.equal((await conns[1].call({ op: 'unsubscribe', id: 0 })).ok, true);
    assert.equal((await conns[4].call({ op: 'subscribe', id: 'x', projects: [project] })).ok, true);
    // Closing a connection frees its 64.
    conns[2].close();
    await waitFor(async () => (await conns[4].call({ op: 'subscribe', id: `y${Date.now()}`, projects: [project] })).ok,
      10000, 'subscriptions freed by a close');
    // Events still flow to a subscription of a full user.
    const from = conns[4].messages.length;
    const r = await server.http('PATCH', `/v1/projects/${project}`, {
      token: u.token,
      body: { description: 'still live' },
      headers: { 'If-Match': String(p.json.version) },
    });
    assert.equal(r.status, 200, r.body);
    await conns[4].next((m) => m.op === 'event' && m.subscription === 'x' && m.event.type === 'project.described', 10000, from);
    await alive(conns[4]);
  } finally {
    for (const c of conns) c.close();
  }
});

test('duplicate streams and projects are collapsed; at most 256 distinct, 1024 as sent', async () => {
  const p = await server.http('POST', '/v1/projects', { body: { name: 'dups' } });
  const c = await server.ws(server.adminToken);
  try {
    const dup = await c.call({
      op: 'subscribe',
      id: 'dup',
      projects: Array(300).fill(p.json.id),
      streams: Array(300).fill(`project-${p.json.id}`),
    });
    assert.equal(dup.ok, true, JSON.stringify(dup));
    const from = c.messages.length;
    const r = await server.http('PATCH', `/v1/projects/${p.json.id}`, {
      body: { description: 'once' },
      headers: { 'If-Match': String(p.json.version) },
    });
    assert.equal(r.status, 200);
    await c.next((m) => m.op === 'event' && m.event.type === 'project.described', 10000, from);
    // A later event proves nothing more is coming for the first one.
    c.send({ op: 'ping' });
    await c.next((m) => m.op === 'pong', 10000, from);
    const got = c.messages.slice(from).filter((m) => m.op === 'event' && m.event.type === 'project.described');
    assert.equal(got.length, 1);
    const distinct = await c.call({ op: 'subscribe', id: 'many', streams: Array.from({ length: 257 }, (_, i) => `project-x${i}`) });
    assert.equal(distinct.status, 400);
    assert.equal(distinct.error.details.limit, 256);
    const raw = await c.call({ op: 'subscribe', id: 'raw', projects: Array(1025).fill(p.json.id) });
    assert.equal(raw.status, 400);
    await alive(c);
  } finally {
    c.close();
  }
});

test('deep JSON, long ids and large presence states are answered with errors; nothing crashes', async () => {
  const p = await server.http('POST', '/v1/projects', { body: { name: 'hostile' } });
  const c = await server.ws(server.adminToken);
  try {
    const deep = (n) => '['.repeat(n) + ']'.repeat(n);
    const cases = [
      `{"op":"ping","id":${deep(100000)}}`,
      `{"op":"presence","project":"${p.json.id}","state":{"a":${deep(100000)}}}`,
      `{"op":"command","id":"c","command":{"method":"POST","path":"/v1/projects","body":${deep(100000)}}}`,
      `{"op":"subscribe","id":"d","projects":${deep(100000)}}`,
      `${deep(100000)}`,
      `{"op":"command","id":"c2","command":{"method":"POST","path":"/v1/projects","body":{"name":${deep(65)}}}}`,
    ];
    for (const text of cases) {
      const from = c.messages.length;
      c.ws.send(text);
      const m = await c.next((x) => x.op === 'error' || (x.op === 'result' && x.ok === false), 10000, from);
      assert.equal(m.code ?? m.error.code, 'invalid_argument', JSON.stringify(m));
    }
    // 64 levels are fine.
    const ok = await c.call({ op: 'presence', project: p.json.id, state: JSON.parse(deep(60)) });
    assert.equal(ok.ok, true, JSON.stringify(ok));
    // An id is an integer or a string of at most 128 bytes.
    let from = c.messages.length;
    c.send({ op: 'ping', id: 'x'.repeat(129) });
    assert.equal((await c.next((x) => x.op === 'error', 10000, from)).code, 'invalid_argument');
    from = c.messages.length;
    c.send({ op: 'ping', id: { a: 1 } });
    assert.equal((await c.next((x) => x.op === 'error', 10000, from)).code, 'invalid_argument');
    // A presence state over 4 KiB is 413, however it is built.
    const big = await c.call({ op: 'presence', project: p.json.id, state: { s: 'x'.repeat(5000) } });
    assert.equal(big.status, 413);
    const wide = await c.call({ op: 'presence', project: p.json.id, state: { a: Array(100000).fill(0) } });
    assert.equal(wide.status, 413);
    await alive(c);
    const h = await server.http('GET', '/healthz');
    assert.equal(h.status, 200);
  } finally {
    c.close();
  }
});
