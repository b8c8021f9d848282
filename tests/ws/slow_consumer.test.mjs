// End to end: a WebSocket client that stops reading is cut off with its resume
// positions, and resuming from them gets exactly the rest. atriumd runs with a small
// send queue (--push-queue-messages 16) so that the kernel's socket buffers (a few MB on
// loopback) and the queue fill with a few MB of events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
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
