// atriumd restarts mid-session (same data dir and port): the page shows the banner while
// the server is away, keeps what is typed meanwhile, reconnects with backoff, resubscribes
// after the last position it saw, and sends the edits: the server and a second page (which
// also lived through the restart) end with the same text, holding what was typed while
// the server was down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, signIn, waitFor, watch, editorText, editorPending, screenshot } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

test('a restart mid-session: banner, reconnect, edits typed while down arrive', async () => {
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const p = await server.http('POST', '/v1/projects', { token: alice.token, body: { name: 'Restarts' } });
  assert.equal(p.status, 201, p.body);
  assert.equal((await server.http('POST', `/v1/projects/${p.json.id}/members`, { token: alice.token, body: { user_id: bob.id, role: 'editor' } })).status, 200);
  const cell = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { token: alice.token, body: { kind: 'sql', content: 'select 1' } });
  assert.equal(cell.status, 201, cell.body);
  const id = cell.json.cell_id;

  const open = async (u) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = watch(page);
    await signIn(page, server, u.username, u.password);
    await page.goto(`${server.url}/#/projects/${p.json.id}`);
    await page.waitForSelector(`li[data-cell-id="${id}"] .cm-editor`);
    return { context, page, problems };
  };
  const a = await open(alice);
  const b = await open(bob);

  // Before: an edit goes through.
  await a.page.click(`li[data-cell-id="${id}"] .cm-content`);
  await a.page.keyboard.press('End');
  await a.page.keyboard.type(', 2');
  await waitFor(async () => (await editorText(b.page, id)) === 'select 1, 2', 10000, 'bob to see the first edit');

  await server.restart(async () => {
    // The server is down: both pages show the banner; alice and bob keep typing.
    await a.page.waitForSelector('[data-testid=offline-banner]', { timeout: 15000 });
    await b.page.waitForSelector('[data-testid=offline-banner]', { timeout: 15000 });
    await screenshot(a.page, 'offline-banner');
    await a.page.keyboard.type(', 3 as während_😀');
    await b.page.click(`li[data-cell-id="${id}"] .cm-content`);
    await b.page.keyboard.press('Control+Home');
    await b.page.keyboard.type('-- bob offline\n');
    assert.ok((await editorPending(a.page, id)) > 0, 'alice holds unconfirmed edits while the server is down');
  });

  // Back: the banner goes, the edits arrive, both pages converge with the server.
  await waitFor(async () => (await a.page.$('[data-testid=offline-banner]')) === null, 30000, "alice's banner to go");
  await waitFor(async () => (await b.page.$('[data-testid=offline-banner]')) === null, 30000, "bob's banner to go");
  await waitFor(
    async () => {
      if ((await editorPending(a.page, id)) || (await editorPending(b.page, id))) return false;
      const [ta, tb] = [await editorText(a.page, id), await editorText(b.page, id)];
      return ta === tb && ta.includes('während_😀') && ta.includes('-- bob offline');
    },
    30000,
    'the edits typed while down to arrive on both pages',
  );
  const text = await editorText(a.page, id);
  assert.equal(text, '-- bob offline\nselect 1, 2, 3 as während_😀');
  const onServer = await server.http('GET', `/v1/projects/${p.json.id}/cells/${id}`);
  assert.equal(onServer.json.content, text);

  // The subscription resumed: a cell added through the API after the restart shows on both.
  const added = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { token: alice.token, body: { kind: 'markdown', content: '# after the restart' } });
  assert.equal(added.status, 201, added.body);
  for (const x of [a, b]) await x.page.waitForSelector(`li[data-cell-id="${added.json.cell_id}"] .markdown h1:has-text("after the restart")`, { timeout: 15000 });
  await a.context.close();
  await b.context.close();
  // Failed requests while the server was down are logged by chromium as network errors.
  const real = (list) => list.filter((x) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(x));
  assert.deepEqual(real(a.problems), []);
  assert.deepEqual(real(b.problems), []);
});
