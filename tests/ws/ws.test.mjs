// End to end: GET /v1/ws and GET /v1/events/stream against the real atriumd, with the
// `ws` client. Run by CTest (`ws: node --test`), or by hand:
//   ATRIUMD=build/atriumd node --test tests/ws/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Server, Client, waitFor } from './support.mjs';
// The WebSocket protocol's contract (docs/asyncapi.yaml, channel `ws`), with ajv from tests/api.
import { wsMessageValidators } from '../api/asyncapi-messages.mjs';
import { eventValidators } from '../api/schemas.mjs';

// Every message the server sends in this file is checked against the AsyncAPI document's
// server messages (and an event's payload against its event schema); the last test
// requires that all matched.
const contract = wsMessageValidators();
const eventSchemas = eventValidators();  // the SSE events' envelopes and payloads
const contractSeen = new Map();  // op → count
const contractFailures = [];
Client.observers.push((m) => {
  contractSeen.set(m.op, (contractSeen.get(m.op) ?? 0) + 1);
  const why = contract.server(m);
  if (why) contractFailures.push(why);
});

let server;
before(async () => {
  // --job-slots 0: the jobs test cancels its job while it is still queued.
  server = await new Server(['--job-slots', '0']).start();
});
after(async () => {
  await server?.stop();
});

/** Creates a project as admin and shares it: `members` maps user id → role. */
async function project(name, members = {}) {
  const r = await server.http('POST', '/v1/projects', { body: { name } });
  assert.equal(r.status, 201, r.body);
  for (const [user_id, role] of Object.entries(members)) {
    const m = await server.http('POST', `/v1/projects/${r.json.id}/members`, { body: { user_id, role } });
    assert.equal(m.status, 200, m.body);
  }
  return r.json.id;
}

/** Renames project `id` over a socket, retrying on version conflicts; returns the result. */
async function rename(client, id, name) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const cur = await client.command('GET', `/v1/projects/${id}`);
    assert.equal(cur.status, 200, JSON.stringify(cur));
    const r = await client.command('PATCH', `/v1/projects/${id}`, { name }, { 'If-Match': String(cur.body.version) });
    if (r.status !== 409) return r;
  }
  throw new Error('too many conflicts');
}

/** The committed events of stream `s` (HTTP), in order. */
async function streamEvents(s) {
  const r = await server.http('GET', `/v1/streams/${s}?limit=1000`);
  assert.equal(r.status, 200, r.body);
  return r.json.events;
}

test('two clients editing one project see the same events in the same order and converge', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const id = await project('shared', { [alice.id]: 'editor', [bob.id]: 'editor' });
  const a = await server.ws(alice.token);
  const b = await server.ws(bob.token, { viaQuery: true }); // the browser way: ?token=
  try {
    for (const c of [a, b]) {
      const r = await c.call({ op: 'subscribe', id: 'p', projects: [id], after: 0 });
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    // Both edit concurrently, each waiting for its own result.
    const edits = [];
    for (let i = 0; i < 5; i++) {
      edits.push(rename(a, id, `alice ${i}`));
      edits.push(rename(b, id, `bob ${i}`));
    }
    const results = await Promise.all(edits);
    for (const r of results) {
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.ok(r.position > 0, 'a command result carries its log position');
    }
    const committed = await streamEvents(`project-${id}`);
    assert.equal(committed.filter((e) => e.type === 'project.renamed').length, 10);
    const last = committed.at(-1).position;
    for (const c of [a, b]) await c.next((m) => m.op === 'event' && m.event.position === last);
    const seenA = a.events('p');
    const seenB = b.events('p');
    assert.deepEqual(seenA, seenB);
    assert.deepEqual(
      seenA.map((e) => e.position),
      committed.map((e) => e.position),
    );
    // Strictly increasing: no duplicates, in order.
    for (let i = 1; i < seenA.length; i++) assert.ok(seenA[i].position > seenA[i - 1].position);
    const final = await server.http('GET', `/v1/projects/${id}`);
    const lastRename = seenA.filter((e) => e.type === 'project.renamed').at(-1);
    assert.equal(final.json.name, lastRename.data.name);
  } finally {
    a.close();
    b.close();
  }
});

test('a client that reconnects with its last position gets exactly what it missed, then live events', async () => {
  const carol = await server.user('carol');
  const id = await project('resume', { [carol.id]: 'editor' });
  let c = await server.ws(carol.token);
  assert.equal((await c.call({ op: 'subscribe', id: 7, projects: [id], after: 0 })).ok, true);
  const first = await streamEvents(`project-${id}`);
  await c.next((m) => m.op === 'event' && m.event.position === first.at(-1).position);
  const lastSeen = c.events(7).at(-1).position;
  c.close();
  await waitFor(() => c.closed, 5000, 'close');

  // While it is away: edits on its project, and on another project it does not follow.
  const other = await project('noise');
  for (let i = 0; i < 4; i++) {
    const cur = await server.http('GET', `/v1/projects/${id}`);
    const r = await server.http('PATCH', `/v1/projects/${id}`, {
      body: { description: `missed ${i}` },
      headers: { 'If-Match': String(cur.json.version) },
    });
    assert.equal(r.status, 200, r.body);
    await server.http('DELETE', `/v1/projects/${other}`).catch(() => {});
  }
  const missed = (await streamEvents(`project-${id}`)).filter((e) => e.position > lastSeen);
  assert.equal(missed.length, 4);

  c = await server.ws(carol.token);
  try {
    assert.equal((await c.call({ op: 'subscribe', id: 7, projects: [id], after: lastSeen })).ok, true);
    await c.next((m) => m.op === 'event' && m.event.position === missed.at(-1).position);
    // Then live: one more edit arrives once, after the replay.
    const live = await rename(c, id, 'after reconnect');
    assert.equal(live.ok, true);
    await c.next((m) => m.op === 'event' && m.event.position === live.position);
    c.send({ op: 'ping' }); // a round trip: gives a stray duplicate time to show
    await c.next((m) => m.op === 'pong');
    const got = c.events(7);
    assert.deepEqual(
      got.map((e) => e.position),
      [...missed.map((e) => e.position), live.position],
    );
    assert.deepEqual(got.slice(0, missed.length), missed);
    // unsubscribe answers with the cursor; nothing follows for it.
    const u = await c.call({ op: 'unsubscribe', id: 7 });
    assert.equal(u.ok, true);
    assert.equal(u.resume_after >= live.position, true);
  } finally {
    c.close();
  }
});

test("a project subscription carries its jobs' events, live and in a replay", async () => {
  const hank = await server.user('hank');
  const id = await project('with jobs', { [hank.id]: 'viewer' });
  const db = path.join(server.data, 'files', 'jobs.sqlite'); // under the SQLite root (DATA_DIR/files)
  fs.writeFileSync(db, ''); // an empty file is a valid (empty) SQLite database
  const conn = await server.http('POST', '/v1/connections', {
    body: { name: 'warehouse', driver: 'sqlite', params: { path: db }, credentials: {} },
  });
  assert.equal(conn.status, 201, conn.body);
  const c = await server.ws(hank.token);
  const admin = await server.ws(server.adminToken);
  try {
    assert.equal((await c.call({ op: 'subscribe', id: 'j', projects: [id] })).ok, true);
    const job = await admin.command('POST', '/v1/jobs', { project_id: id, kind: 'sql', connection_id: conn.json.id, sql: 'select 1' });
    assert.equal(job.status, 201, JSON.stringify(job));
    const cancel = await admin.command('POST', `/v1/jobs/${job.body.id}/cancel`, {});
    assert.equal(cancel.status, 200, JSON.stringify(cancel));
    await c.next((m) => m.op === 'event' && m.event.position === cancel.position);
    const jobEvents = await streamEvents(`job-${job.body.id}`);
    assert.deepEqual(
      c.events('j').map((e) => e.position),
      jobEvents.map((e) => e.position),
    );
    // A replay from the start finds them too (the job's project comes from job.submitted).
    const r = await c.call({ op: 'subscribe', id: 'all', projects: [id], after: 0 });
    assert.equal(r.ok, true);
    await c.next((m) => m.op === 'event' && m.subscription === 'all' && m.event.position === cancel.position);
    const expected = [...(await streamEvents(`project-${id}`)), ...jobEvents].map((e) => e.position).sort((a, b) => a - b);
    assert.deepEqual(
      c.events('all').map((e) => e.position),
      expected,
    );
  } finally {
    c.close();
    admin.close();
  }
});

test("a viewer's edit over the socket is refused like over HTTP (403 in the result)", async () => {
  const viewer = await server.user('victor');
  const id = await project('read only', { [viewer.id]: 'viewer' });
  const c = await server.ws(viewer.token);
  try {
    const get = await c.command('GET', `/v1/projects/${id}`);
    assert.equal(get.status, 200);
    const r = await c.command('PATCH', `/v1/projects/${id}`, { name: 'mine now' }, { 'If-Match': String(get.body.version) });
    assert.equal(r.ok, false);
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'forbidden');
    // A project they cannot see is as absent over the socket as over HTTP.
    const hidden = await project('hidden');
    const s = await c.call({ op: 'subscribe', id: 's', projects: [hidden] });
    assert.equal(s.ok, false);
    assert.equal(s.status, 404);
    const bad = await c.call({ op: 'subscribe', id: 'x', projects: 'nope' });
    assert.equal(bad.status, 400);
    assert.equal((await c.call({ op: 'subscribe', id: 'mine', projects: [id] })).ok, true);
    const again = await c.call({ op: 'subscribe', id: 'mine', projects: [id] });
    assert.equal(again.status, 409);
    assert.equal((await c.call({ op: 'unsubscribe', id: 'mine' })).ok, true);
    assert.equal((await c.call({ op: 'subscribe', id: 'mine', projects: [id] })).ok, true);
    c.send({ op: 'ping' });
    await c.next((m) => m.op === 'pong');
    // No valid token, no socket: the upgrade is answered 401, as HTTP would.
    await assert.rejects(server.ws('not-a-token', { viaQuery: true }), /401/);
    const plain = await server.http('GET', '/v1/ws');
    assert.equal(plain.status, 426);
  } finally {
    c.close();
  }
});

test('a member removed from a project stops receiving its events', async () => {
  const dora = await server.user('dora');
  const id = await project('revocable', { [dora.id]: 'viewer' });
  const c = await server.ws(dora.token);
  const watcher = await server.ws(server.adminToken); // sees everything; tells when the hub got past an event
  try {
    assert.equal((await c.call({ op: 'subscribe', id: 'r', projects: [id] })).ok, true);
    assert.equal((await watcher.call({ op: 'subscribe', id: 'w', projects: [id] })).ok, true);
    assert.equal((await c.call({ op: 'presence', project: id, state: { here: true } })).ok, true);
    const cur = await server.http('GET', `/v1/projects/${id}`);
    const before = await server.http('PATCH', `/v1/projects/${id}`, {
      body: { name: 'still visible' },
      headers: { 'If-Match': String(cur.json.version) },
    });
    await c.next((m) => m.op === 'event' && m.event.data.name === 'still visible');
    const removed = await server.http('DELETE', `/v1/projects/${id}/members/${dora.id}`);
    assert.equal(removed.status, 200, removed.body);
    const ended = await c.next((m) => m.op === 'error' && m.subscription === 'r');
    assert.equal(ended.code, 'forbidden');
    // Nor does it hear the project's presence any more, and it leaves the session list.
    const relayed = await watcher.call({ op: 'presence', project: id, state: { here: 'admin' } });
    assert.deepEqual(
      relayed.sessions.map((x) => x.user_id),
      [(await server.http('GET', '/v1/users')).json.users.find((u) => u.username === 'admin').id],
    );
    const after = await server.http('PATCH', `/v1/projects/${id}`, {
      body: { name: 'secret' },
      headers: { 'If-Match': String(before.json.version + 1) },
    });
    assert.equal(after.status, 200, after.body);
    // Once the watcher has the last event the hub has handed it out to everyone; the
    // socket is still fine (pong), and nothing after the removal came through.
    await watcher.next((m) => m.op === 'event' && m.event.data.name === 'secret');
    c.send({ op: 'ping' });
    await c.next((m) => m.op === 'pong');
    const positions = c.events('r').map((e) => e.position);
    const removal = (await streamEvents(`project-${id}`)).find((e) => e.type === 'project.member_removed');
    assert.ok(positions.every((p) => p < removal.position), JSON.stringify(positions));
    assert.ok(!c.events('r').some((e) => e.data.name === 'secret'));
    assert.ok(!c.messages.some((m) => m.op === 'presence'));
  } finally {
    c.close();
    watcher.close();
  }
});

test('presence is relayed to the project\'s other sessions, with the session list, and departures announced', async () => {
  const erin = await server.user('erin');
  const fred = await server.user('fred');
  const id = await project('together', { [erin.id]: 'editor', [fred.id]: 'viewer' });
  const e = await server.ws(erin.token);
  const f = await server.ws(fred.token);
  try {
    const joined = await f.call({ op: 'presence', project: id, state: { cursor: 1 } });
    assert.equal(joined.ok, true);
    e.send({ op: 'presence', project: id, state: { cursor: 42 } });
    const seen = await f.next((m) => m.op === 'presence' && m.user_id === erin.id);
    assert.deepEqual(seen.state, { cursor: 42 });
    assert.equal(seen.sessions.length, 2);
    // A null state leaves the board without closing the socket; announcing again rejoins.
    const left = await e.call({ op: 'presence', project: id, state: null });
    assert.equal(left.ok, true);
    assert.equal(left.sessions.length, 1);
    const leftSeen = await f.next((m) => m.op === 'presence' && m.gone === true);
    assert.equal(leftSeen.user_id, erin.id);
    assert.equal(leftSeen.state, null);
    let from = f.messages.length;
    e.send({ op: 'presence', project: id, state: { cursor: 7 } });
    const back = await f.next((m) => m.op === 'presence' && m.user_id === erin.id && !m.gone, 10000, from);
    assert.deepEqual(back.state, { cursor: 7 });
    assert.equal(back.sessions.length, 2);
    from = f.messages.length;
    e.close();
    const gone = await f.next((m) => m.op === 'presence' && m.gone === true, 10000, from);
    assert.equal(gone.user_id, erin.id);
    assert.equal(gone.sessions.length, 1);
    // Never stored: no event mentions it.
    const log = await server.http('GET', '/v1/events?limit=1000');
    assert.ok(!log.body.includes('cursor'));
  } finally {
    f.close();
  }
});

/** Reads Server-Sent Events until `enough(events)`; returns {events, res}. */
function readSse(target, headers, enough) {
  const [host, port] = server.address.split(':');
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: target, headers: { Authorization: `Bearer ${server.adminToken}`, ...headers } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE status ${res.statusCode}`));
      let buf = '';
      const events = [];
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const ev = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(': ');
            if (i > 0) ev[line.slice(0, i)] = line.slice(i + 2);
          }
          if (ev.data) events.push({ id: Number(ev.id), event: ev.event, data: JSON.parse(ev.data) });
          if (ev.data && ev.event !== 'error') {
            contractSeen.set('sse', (contractSeen.get('sse') ?? 0) + 1);
            const why = eventSchemas.envelope(events.at(-1).data);
            if (why) contractFailures.push(`SSE: ${why}`);
          }
        }
        if (enough(events)) {
          req.destroy();
          resolve({ events, res });
        }
      });
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' ? null : reject(e)));
    req.setTimeout(15000, () => reject(new Error('SSE timed out')));
  });
}

test('SSE resumes from Last-Event-ID (over ?after=) and continues live', async () => {
  const head = (await server.http('GET', '/healthz')).json.position;
  const from = Math.max(0, head - 5);
  const expected = (await server.http('GET', `/v1/events?after=${from}&limit=1000`)).json.events;
  assert.ok(expected.length > 0);
  const { events, res } = await readSse(`/v1/events/stream?after=0`, { 'Last-Event-ID': String(from) }, (evs) =>
    evs.some((e) => e.id === head),
  );
  assert.equal(res.headers['content-type'], 'text/event-stream');
  assert.deepEqual(
    events.map((e) => e.id),
    expected.map((e) => e.position),
  );
  assert.deepEqual(
    events.map((e) => e.data),
    expected,
  );
  assert.equal(events[0].event, expected[0].type);
  // Live: a new event arrives on an open stream.
  const now = (await server.http('GET', '/healthz')).json.position;
  const pending = readSse(`/v1/events/stream?after=${now}`, {}, (evs) => evs.some((e) => e.event === 'project.created'));
  await server.http('POST', '/v1/projects', { body: { name: 'live over sse' } });
  const live = await pending;
  assert.equal(live.events.at(-1).data.data.name, 'live over sse');
  // A member without events_read is refused.
  const gina = await server.user('gina');
  const r = await new Promise((resolve) =>
    http.get({ host: server.address.split(':')[0], port: server.address.split(':')[1], path: '/v1/events/stream', headers: { Authorization: `Bearer ${gina.token}` } }, resolve),
  );
  assert.equal(r.statusCode, 403);
  r.resume();
});

test('events queued together arrive whole and in order, short and long frames alike, with pings answered between them', async () => {
  // A replay of 40 events queues faster than the socket drains: the server writes several
  // queued messages per socket write (pre-framed), while Beast answers the client's pings
  // on the same socket. Every message must still arrive as one intact WebSocket message.
  const id = await project('gathered');
  for (let i = 0; i < 40; i++) {
    const cur = await server.http('GET', `/v1/projects/${id}`);
    // Descriptions of 0 to ~9,750 bytes: 7-bit and 16-bit frame lengths, mixed.
    const r = await server.http('PATCH', `/v1/projects/${id}`, {
      body: { description: 'x'.repeat((i * 250) % 9800) },
      headers: { 'If-Match': String(cur.json.version) },
    });
    assert.equal(r.status, 200, r.body);
  }
  const committed = await streamEvents(`project-${id}`);
  const c = await server.ws(server.adminToken);
  try {
    let pongs = 0;
    c.ws.on('pong', () => pongs++);
    c.send({ op: 'subscribe', id: 1, projects: [id], after: 0 });
    c.send({ op: 'subscribe', id: 'two', projects: [id], after: 0 });
    for (let i = 0; i < 5; i++) c.ws.ping();
    await c.next((m) => m.op === 'event' && m.subscription === 1 && m.event.position === committed.at(-1).position);
    await c.next((m) => m.op === 'event' && m.subscription === 'two' && m.event.position === committed.at(-1).position);
    await waitFor(() => pongs === 5, 10000, 'five pongs');
    assert.deepEqual(c.events(1), committed);
    assert.deepEqual(c.events('two'), committed);
    // Live: one event, one message per subscription.
    const live = await rename(c, id, 'gathered live');
    await c.next((m) => m.op === 'event' && m.subscription === 'two' && m.event.position === live.position);
    await c.next((m) => m.op === 'event' && m.subscription === 1 && m.event.position === live.position);
    assert.equal(c.events(1).length, committed.length + 1);
  } finally {
    c.close();
  }
});

test('every WebSocket message the server sent in this file matches a server message of docs/asyncapi.yaml', () => {
  console.log(`checked against docs/asyncapi.yaml: ${JSON.stringify(Object.fromEntries(contractSeen))}`);
  assert.deepEqual(contractFailures.slice(0, 5), [], `${contractFailures.length} messages do not match`);
  // The tests above see subscriptions, commands, events, presence and pongs.
  for (const op of ['result', 'event', 'presence', 'pong', 'sse']) assert.ok(contractSeen.get(op) > 0, `no ${op} message seen`);
});
