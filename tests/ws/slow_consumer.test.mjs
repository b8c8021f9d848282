// End to end: a WebSocket client that stops reading is cut off with its resume
// positions, and resuming from them gets exactly the rest. atriumd runs with a small
// send queue (--push-queue-messages 16) so that the kernel's socket buffers (a few MB on
// loopback) and the queue fill with a few MB of events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { Server, waitFor } from './support.mjs';

let server;
before(async () => {
  server = await new Server(['--push-queue-messages', '16']).start();
});
after(async () => {
  await server?.stop();
});

test('a slow consumer is closed with its resume position, and resumes from it without gaps or duplicates', async () => {
  // Six projects; ~7 MB of events on them (descriptions of 9,000 bytes) come later.
  const projects = [];
  for (let i = 0; i < 6; i++) {
    const r = await server.http('POST', '/v1/projects', { body: { name: `bulk ${i}` } });
    assert.equal(r.status, 201, r.body);
    projects.push({ id: r.json.id, version: r.json.version });
  }
  const ids = projects.map((p) => p.id);
  // Subscribe live, then stop reading while ~7 MB of events are committed.
  const slow = await server.ws(server.adminToken);
  assert.equal((await slow.call({ op: 'subscribe', id: 'bulk', projects: ids })).ok, true);
  slow.ws._socket.pause();
  await Promise.all(
    projects.map(async ({ id, version }, i) => {
      for (let n = 0; n < 130; n++) {
        const r = await server.http('PATCH', `/v1/projects/${id}`, {
          body: { description: `${i}/${n} `.padEnd(9000, 'x') },
          headers: { 'If-Match': String(version) },
        });
        assert.equal(r.status, 200, r.body);
        version = r.json.version;
      }
    }),
  );
  const all = [];
  for (let after = 0; ; ) {
    const page = (await server.http('GET', `/v1/events?after=${after}&limit=1000`)).json;
    all.push(...page.events);
    if (page.events.length === 0) break;
    after = page.next;
  }
  const wanted = all.filter((e) => ids.some((p) => e.stream === `project-${p}`) && e.type === 'project.described');
  assert.equal(wanted.length, 6 * 130);

  await waitFor(() => fs.readFileSync(server.log, 'utf8').includes('ws slow consumer closed'), 30000, 'the cut');
  slow.ws._socket.resume();
  await waitFor(() => slow.closed, 30000, 'the close');
  assert.equal(slow.closed.code, 1013);
  const final = slow.messages.at(-1);
  assert.equal(final.op, 'error');
  assert.equal(final.code, 'slow_consumer');
  assert.equal(final.resume_after.length, 1);
  assert.equal(final.resume_after[0].subscription, 'bulk');
  const resumeAfter = final.resume_after[0].resume_after;
  const got = slow.events('bulk');
  assert.ok(got.length < wanted.length, 'the consumer was cut before the end');
  // Everything it got is exactly the matching events up to its resume position.
  assert.deepEqual(
    got.map((e) => e.position),
    wanted.filter((e) => e.position <= resumeAfter).map((e) => e.position),
  );

  // Resuming (reading this time) delivers exactly the rest.
  const again = await server.ws(server.adminToken);
  try {
    assert.equal((await again.call({ op: 'subscribe', id: 'bulk', projects: ids, after: resumeAfter })).ok, true);
    await again.next((m) => m.op === 'event' && m.event.position === wanted.at(-1).position, 30000);
    assert.deepEqual(
      [...got, ...again.events('bulk')].map((e) => e.position),
      wanted.map((e) => e.position),
    );
  } finally {
    again.close();
  }
});

// ---- a server with the default bounds, and a short stall time ---------------------------

/** `n` PATCHes spread over `projects` (descriptions of `size` bytes); resolves when all answered. */
async function describe(srv, projects, n, size) {
  const per = Math.ceil(n / projects.length);
  await Promise.all(
    projects.map(async (p, i) => {
      for (let k = 0; k < per; k++) {
        const r = await srv.http('PATCH', `/v1/projects/${p.id}`, {
          body: { description: `${i}/${k} `.padEnd(size, 'x') },
          headers: { 'If-Match': String(p.version) },
        });
        assert.equal(r.status, 200, r.body);
        p.version = r.json.version;
      }
    }),
  );
}

async function projectsOn(srv, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await srv.http('POST', '/v1/projects', { body: { name: `p${i}` } });
    assert.equal(r.status, 201, r.body);
    out.push({ id: r.json.id, version: r.json.version });
  }
  return out;
}

async function allEvents(srv, after = 0) {
  const all = [];
  for (;;) {
    const page = (await srv.http('GET', `/v1/events?after=${after}&limit=1000`)).json;
    if (page.events.length === 0) return all;
    all.push(...page.events);
    after = page.next;
  }
}

/** A WebSocket client stops reading while `n` events are committed, then reads again:
 * it must get the slow_consumer message with its resume position and a 1013 close, have
 * received exactly the events up to that position, and get exactly the rest on resuming. */
async function stopReading(srv, n, size, cutLine, endLine) {
  const projects = await projectsOn(srv, 6);
  const ids = projects.map((p) => p.id);
  const logBefore = fs.readFileSync(srv.log, 'utf8').length;
  const slow = await srv.ws(srv.adminToken);
  assert.equal((await slow.call({ op: 'subscribe', id: 'w', projects: ids })).ok, true);
  const start = (await srv.http('GET', '/healthz')).json.position;
  slow.ws._socket.pause();
  await describe(srv, projects, n, size);
  await waitFor(() => fs.readFileSync(srv.log, 'utf8').slice(logBefore).includes(cutLine), 60000, cutLine);
  // Optionally still not reading when the server has given up on the connection.
  // `endLine` may list several lines, any of which says the server ended the connection.
  if (endLine) {
    const ends = [].concat(endLine);
    await waitFor(() => {
      const log = fs.readFileSync(srv.log, 'utf8').slice(logBefore);
      return ends.some((line) => log.includes(line));
    }, 90000, ends.join(' or '));
  }
  slow.ws._socket.resume();
  await waitFor(() => slow.closed, 60000, 'the close');
  assert.equal(slow.closed.code, 1013);
  const final = slow.messages.at(-1);
  assert.equal(final.op, 'error');
  assert.equal(final.code, 'slow_consumer');
  assert.deepEqual(final.resume_after.map((r) => r.subscription), ['w']);
  const resumeAfter = final.resume_after[0].resume_after;
  const wanted = (await allEvents(srv, start)).filter((e) => ids.some((p) => e.stream === `project-${p}`));
  assert.ok(wanted.length >= n);
  const got = slow.events('w');
  assert.ok(got.length < wanted.length, 'cut before the end');
  assert.deepEqual(
    got.map((e) => e.position),
    wanted.filter((e) => e.position <= resumeAfter).map((e) => e.position),
  );
  const again = await srv.ws(srv.adminToken);
  try {
    assert.equal((await again.call({ op: 'subscribe', id: 'w', projects: ids, after: resumeAfter })).ok, true);
    await again.next((m) => m.op === 'event' && m.event.position === wanted.at(-1).position, 60000);
    assert.deepEqual(
      [...got, ...again.events('w')].map((e) => e.position),
      wanted.map((e) => e.position),
    );
  } finally {
    again.close();
  }
}

test('with the default bounds, a WebSocket client that stops reading for 3,000 events gets slow_consumer and 1013', async () => {
  const srv = await new Server(['--push-write-stall-ms', '3000']).start();
  try {
    // It reads again only after the server ended the connection: the cut's grace time
    // (30 s), or, when committing the 3,000 events took long (a loaded machine), the idle
    // timeout of a client silent for 60 s, whichever came first. The final message and
    // the close were in the kernel's buffer before the end.
    await stopReading(srv, 3000, 200, 'ws slow consumer closed', [
      'closed after its grace time',
      'closed after its idle timeout',
    ]);
    assert.ok((await srv.http('POST', '/v1/projects', { body: { name: 'after' } })).status === 201);
  } finally {
    await srv.stop();
  }
});

test('a client that stops reading while its queue never fills is cut after the write stall', async () => {
  // 300 events of 9 KB: ~2.7 MB, under the 4 MiB queue bound but far over the socket buffers.
  const srv = await new Server(['--push-write-stall-ms', '1500']).start();
  try {
    await stopReading(srv, 300, 9000, 'push channel stalled');
  } finally {
    await srv.stop();
  }
});

test('an SSE client that stops reading for 3,000 events gets an error event with its resume position', async () => {
  const srv = await new Server(['--push-write-stall-ms', '3000']).start();
  try {
    const projects = await projectsOn(srv, 6);
    const start = (await srv.http('GET', '/healthz')).json.position;
    const [host, port] = srv.address.split(':');
    let text = '';
    let ended = false;
    const res = await new Promise((resolve, reject) => {
      const req = http.get(
        { host, port, path: `/v1/events/stream?after=${start}`, headers: { Authorization: `Bearer ${srv.adminToken}` } },
        resolve,
      );
      req.on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    // Stop reading: the response (which would resume its socket when it wants data) and the socket.
    res.pause();
    res.socket.pause();
    await describe(srv, projects, 3000, 200);
    await waitFor(() => fs.readFileSync(srv.log, 'utf8').includes('sse slow consumer closed'), 60000, 'the cut');
    // Reading again only after the server let go of the connection (the grace time).
    await waitFor(() => fs.readFileSync(srv.log, 'utf8').includes('closed after its grace time'), 90000, 'the end');
    res.setEncoding('utf8');
    res.on('data', (c) => (text += c));
    res.on('end', () => (ended = true));
    res.socket.resume();
    res.resume();
    await waitFor(() => ended, 60000, 'the end of the stream');
    const blocks = text.split('\n\n').filter((b) => b.trim() && !b.startsWith(':'));
    const parse = (b) => Object.fromEntries(b.split('\n').map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));
    const events = blocks.map(parse);
    const final = events.at(-1);
    assert.equal(final.event, 'error');
    const data = JSON.parse(final.data);
    assert.equal(data.code, 'slow_consumer');
    const got = events.slice(0, -1).map((e) => Number(e.id));
    const wanted = (await allEvents(srv, start)).map((e) => e.position);
    assert.ok(got.length < wanted.length, 'cut before the end');
    assert.deepEqual(got, wanted.filter((p) => p <= data.resume_after));
  } finally {
    await srv.stop();
  }
});
