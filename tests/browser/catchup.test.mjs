// A page that was offline while the cell moved on by more than the server keeps (512
// updates, docs/realtime.md "Co-editing") loses none of its unsent edits: when it comes
// back it either catches up from the replayed events or, answered 410 gone, reloads the
// cell and re-applies its edits on top (web/src/editor.js `reload`, web/src/text_diff.js).
// Either way the server, the page and a second page end with the same text holding both
// the page's offline edits and every update made meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, signIn, waitFor, watch, editorText, editorPending } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

/**
 * `events`: the page's WebSocket works, so after coming back it may catch up from the
 * replayed events. `no-events`: its WebSocket is routed to a stub that never answers, so
 * only the push tells it: 410 gone, reload, re-apply (the path that once lost edits).
 */
async function scenario(mode) {
  const alice = await server.user(`alice-${mode}`);
  const p = await server.http('POST', '/v1/projects', { token: alice.token, body: { name: `Catch-up ${mode}` } });
  assert.equal(p.status, 201, p.body);
  const cell = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { token: alice.token, body: { kind: 'sql', content: 'select 1' } });
  assert.equal(cell.status, 201, cell.body);
  const id = cell.json.cell_id;
  const base = `/v1/projects/${p.json.id}/cells/${id}`;

  const context = await browser.newContext();
  if (mode === 'no-events') await context.routeWebSocket(/\/v1\/ws/, () => {});
  const page = await context.newPage();
  const problems = watch(page);
  await signIn(page, server, alice.username, alice.password);
  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  await page.waitForSelector(`li[data-cell-id="${id}"] .cm-editor`);

  await context.setOffline(true);
  await page.click(`li[data-cell-id="${id}"] .cm-content`);
  await page.keyboard.press('Control+Home');
  await page.keyboard.type('-- offline ✓ 😀\n');
  assert.ok((await editorPending(page, id)) > 0, 'the page holds unconfirmed edits while offline');

  // Meanwhile 600 updates from another client append "x" each (3 requests of 200).
  let version = cell.json.version;
  let length = 'select 1'.length;
  for (let r = 0; r < 3; r++) {
    const updates = [];
    for (let i = 0; i < 200; i++) updates.push({ changes: [length + i, [0, 'x']] });
    const res = await server.http('POST', `${base}/changes`, { token: alice.token, body: { version, client_id: 'api-client', updates } });
    assert.equal(res.status, 200, res.body);
    version = res.json.version;
    length += 200;
  }
  const gone = await server.http('GET', `${base}/updates?since=${cell.json.version}`, { token: alice.token });
  assert.equal(gone.status, 410, 'the page is now behind the kept history');

  await context.setOffline(false);
  const expected = '-- offline ✓ 😀\nselect 1' + 'x'.repeat(600);
  try {
    await waitFor(
      async () => (await editorPending(page, id)) === 0 && (await server.http('GET', base, { token: alice.token })).json.content === expected,
      30000,
      'the offline edit to reach the server on top of the 600 updates',
    );
  } catch (e) {
    const onServer = (await server.http('GET', base, { token: alice.token })).json;
    const alerts = await page.$$eval('[role=alert]', (l) => l.map((x) => x.textContent));
    throw new Error(`${e.message}: page ${JSON.stringify(await editorText(page, id))} (pending ${await editorPending(page, id)}), server v${onServer.version} ${JSON.stringify(onServer.content)}, alerts ${JSON.stringify(alerts)}, console ${JSON.stringify(problems)}`);
  }
  assert.equal(await editorText(page, id), expected);
  const reloaded = (await page.content()).includes('re-applied on top');
  if (mode === 'no-events') assert.ok(reloaded, 'without events the page learnt of the gap from 410 and said it re-applied the edits');

  // A fresh page sees the same text.
  const other = await context.newPage();
  await other.goto(`${server.url}/#/projects/${p.json.id}`);
  await other.waitForSelector(`li[data-cell-id="${id}"] .cm-editor`);
  await waitFor(async () => (await editorText(other, id)) === expected, 10000, 'a second page to show the same text');
  await context.close();
  const real = problems.filter((x) => !/ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|WebSocket connection|status of 410/.test(x));
  assert.deepEqual(real, []);
}

test('offline edits survive the cell moving on past the kept history (with events)', () => scenario('events'));
test('offline edits survive a 410 gone: reloaded and re-applied (no events)', () => scenario('no-events'));
