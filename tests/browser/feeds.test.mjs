// The event feeds in a real browser (docs/realtime.md "Feeds"): a page uses
// `new EventSource('/v1/projects/P/events/stream?event_names=message')` and its
// `onmessage` receives the events the test then makes, in order; with the default event
// names `onmessage` stays silent and `addEventListener(type)` gets them instead. Both the
// console's session cookie (a signed-in page of atriumd's own origin) and `?token=` work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, signIn, waitFor, watch } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

/** Opens an EventSource in `page` on `url`; what it receives collects in window.__feed. */
function open(page, url) {
  return page.evaluate((u) => {
    window.__feed = { messages: [], typed: [], errors: 0, open: false };
    const es = new EventSource(u);
    window.__es = es;
    es.onopen = () => (window.__feed.open = true);
    es.onmessage = (m) => window.__feed.messages.push({ id: m.lastEventId, data: JSON.parse(m.data) });
    es.addEventListener('project.cell_added', (m) => window.__feed.typed.push({ id: m.lastEventId, data: JSON.parse(m.data) }));
    es.onerror = () => window.__feed.errors++;
  }, url);
}

async function cellAdded(page, field, content) {
  return waitFor(
    () => page.evaluate(([f, c]) => window.__feed[f].find((m) => m.data.type === 'project.cell_added' && m.data.data.content === c), [field, content]),
    15000,
    `${content} in ${field}`,
  );
}

test('EventSource.onmessage gets a project feed with event_names=message (session cookie)', async () => {
  const alice = await server.user('alice');
  const p = await server.http('POST', '/v1/projects', { token: alice.token, body: { name: 'Feeds in a browser' } });
  assert.equal(p.status, 201, p.body);
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  await signIn(page, server, alice.username, alice.password);
  await open(page, `/v1/projects/${p.json.id}/events/stream?event_names=message&types=project.cell_*`);
  await waitFor(() => page.evaluate(() => window.__feed.open), 15000, 'the feed to open');
  // The event is made after the page listens: it arrives live.
  const cell = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { token: alice.token, body: { kind: 'sql', content: 'select 42' } });
  assert.equal(cell.status, 201, cell.body);
  const got = await cellAdded(page, 'messages', 'select 42');
  assert.equal(got.data.stream, `project-${p.json.id}`);
  assert.equal(got.id, String(got.data.position));
  const feed = await page.evaluate(() => window.__feed);
  assert.deepEqual(feed.typed, [], 'no typed events with event_names=message');
  assert.ok(feed.messages.every((m) => m.data.type.startsWith('project.cell_')), JSON.stringify(feed.messages));
  await page.evaluate(() => window.__es.close());
  assert.deepEqual(problems, []);
  await context.close();
});

test('default event names reach addEventListener(type), not onmessage; ?token= works from any page', async () => {
  const bob = await server.user('bob');
  const p = await server.http('POST', '/v1/projects', { token: bob.token, body: { name: 'Typed feed' } });
  assert.equal(p.status, 201, p.body);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.url}/`);
  await open(page, `/v1/projects/${p.json.id}/events/stream?token=${encodeURIComponent(bob.token)}`);
  await waitFor(() => page.evaluate(() => window.__feed.open), 15000, 'the feed to open');
  const cell = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { token: bob.token, body: { kind: 'sql', content: 'select 7' } });
  assert.equal(cell.status, 201, cell.body);
  await cellAdded(page, 'typed', 'select 7');
  assert.deepEqual(await page.evaluate(() => window.__feed.messages), []);
  // Someone who may not read the project is refused (404): the EventSource fails.
  const eve = await server.user('eve');
  await open(page, `/v1/projects/${p.json.id}/events/stream?token=${encodeURIComponent(eve.token)}`);
  await waitFor(() => page.evaluate(() => window.__es.readyState === 2), 15000, 'the refused feed to close');
  await context.close();
});
