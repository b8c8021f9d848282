// Two people in two browser contexts type into the same SQL cell at the same time, 240
// keystrokes each at random positions (the cursor moved by random arrow/Home/End keys
// before each character), with non-ASCII letters, CJK and emoji (surrogate pairs in
// UTF-16). Afterwards both editors and the server's cell text are identical, and the text
// holds every typed character exactly as often as it was typed; each page shows the
// other person's name (presence) and cursor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, signIn, waitFor, watch, editorText, editorPending, editorCursors, screenshot } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

// A seeded generator, so a failure can be replayed (the seed is printed).
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const NAV = ['ArrowLeft', 'ArrowRight', 'Home', 'End', 'ArrowLeft', 'ArrowRight'];
const KEYS = 240;

async function typeRandomly(page, cellId, alphabet, random) {
  const typed = [];
  await page.click(`li[data-cell-id="${cellId}"] .cm-content`);
  for (let i = 0; i < KEYS; i++) {
    const moves = Math.floor(random() * 3);
    for (let m = 0; m < moves; m++) await page.keyboard.press(NAV[Math.floor(random() * NAV.length)]);
    const ch = alphabet[Math.floor(random() * alphabet.length)];
    await page.keyboard.type(ch);
    typed.push(ch);
  }
  return typed;
}

function counts(chars) {
  const m = new Map();
  for (const c of chars) m.set(c, (m.get(c) || 0) + 1);
  return m;
}

test('two editors typing into one cell at once converge with every character', async () => {
  const seed = Number(process.env.SEED || Date.now() % 100000);
  console.log(`seed ${seed}`);
  const alice = await server.user('alice');
  const bob = await server.user('bob');
  const as = (u) => (method, target, body) => server.http(method, target, { token: u.token, body });
  const p = await as(alice)('POST', '/v1/projects', { name: 'Shared query' });
  assert.equal(p.status, 201, p.body);
  const shared = await as(alice)('POST', `/v1/projects/${p.json.id}/members`, { user_id: bob.id, role: 'editor' });
  assert.equal(shared.status, 200, shared.body);
  const cell = await as(alice)('POST', `/v1/projects/${p.json.id}/cells`, { kind: 'sql', content: 'select ' });
  assert.equal(cell.status, 201, cell.body);
  const cellId = cell.json.cell_id;

  const open = async (u) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    const problems = watch(page);
    // Refused pushes and pulls (409s are the protocol at work; anything else is a clue when
    // characters go missing) and reconnects, for the failure message.
    const trail = [];
    page.on('response', async (r) => {
      if (r.status() >= 400 && r.status() !== 409) {
        const body = await r.text().catch(() => '');
        trail.push(`${r.status()} ${r.request().method()} ${r.url()} ${body.slice(0, 300)} request ${(r.request().postData() || '').slice(0, 300)}`);
      }
    });
    page.on('websocket', (ws) => trail.push(`websocket opened ${ws.url()}`));
    await signIn(page, server, u.username, u.password);
    await page.goto(`${server.url}/#/projects/${p.json.id}`);
    await page.waitForSelector(`li[data-cell-id="${cellId}"] .cm-editor`);
    return { context, page, problems, trail };
  };
  const a = await open(alice);
  const b = await open(bob);

  // Each sees the other (names are shown once both announced themselves).
  await waitFor(async () => (await a.page.textContent('[data-testid=presence]')).includes('bob'), 15000, 'alice to see bob');
  await waitFor(async () => (await b.page.textContent('[data-testid=presence]')).includes('alice'), 15000, 'bob to see alice');

  const [ta, tb] = await Promise.all([
    typeRandomly(a.page, cellId, ['a', 'b', 'é', 'ß', '中', '😀', ' ', 'z'], rng(seed)),
    typeRandomly(b.page, cellId, ['x', 'y', 'ü', 'ñ', '文', '🎉', '7', 'Ω'], rng(seed + 1)),
  ]);

  // Both editors settle (nothing unconfirmed) on the same text, which the server holds.
  await waitFor(
    async () => {
      const [pa, pb] = await Promise.all([editorPending(a.page, cellId), editorPending(b.page, cellId)]);
      if (pa || pb) return false;
      const [da, db] = await Promise.all([editorText(a.page, cellId), editorText(b.page, cellId)]);
      return da === db;
    },
    30000,
    'both editors to converge',
  );
  const text = await editorText(a.page, cellId);
  const server_ = await server.http('GET', `/v1/projects/${p.json.id}/cells/${cellId}`);
  assert.equal(server_.status, 200, server_.body);
  assert.equal(server_.json.content, text);
  assert.equal(await editorText(b.page, cellId), text);

  // Every typed character is there, as often as typed, and nothing else but the start.
  const expected = counts([...'select ', ...ta, ...tb]);
  const errorsOf = async (page) => (await page.$$eval('[role=alert]', (els) => els.map((e) => e.textContent))).join(' | ');
  const clues = `alice: ${a.trail.join('; ')} ${a.problems.join('; ')} ${await errorsOf(a.page)}\nbob: ${b.trail.join('; ')} ${b.problems.join('; ')} ${await errorsOf(b.page)}`;
  assert.deepEqual([...counts([...text]).entries()].sort(), [...expected.entries()].sort(), clues);
  assert.equal([...text].length, 7 + 2 * KEYS);

  // Each sees the other's cursor in the cell, labelled with the name.
  await waitFor(async () => (await a.page.textContent(`li[data-cell-id="${cellId}"] .cm-remote-name`)) === 'bob', 10000, "bob's cursor at alice");
  await waitFor(async () => (await b.page.textContent(`li[data-cell-id="${cellId}"] .cm-remote-name`)) === 'alice', 10000, "alice's cursor at bob");
  // …where the other's cursor really is: positions travel at the sender's synced version
  // and are mapped over the updates the receiver got since (web/src/editor.js remotePos).
  let seen = {};
  try {
    await waitFor(
      async () => {
        const [ca, cb] = await Promise.all([editorCursors(a.page, cellId), editorCursors(b.page, cellId)]);
        seen = { alice: ca, bob: cb };
        return ca.remote.length === 1 && cb.remote.length === 1 && ca.remote[0].head === cb.head && cb.remote[0].head === ca.head;
      },
      10000,
      'each remote cursor at the other one',
    );
  } catch (e) {
    throw new Error(`${e.message}: last seen ${JSON.stringify(seen)}`);
  }
  await screenshot(a.page, 'coediting');

  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await a.context.close();
  await b.context.close();
});
