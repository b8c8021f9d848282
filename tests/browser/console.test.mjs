// The console end to end in chromium: sign in with the session cookie, create a project,
// add a SQL cell (typed in CodeMirror) and a markdown cell, reload the page: both are
// there, as the server holds them; sign out: the session is gone.
//
//   ATRIUMD=build/atriumd ATRIUM_WEB_ROOT=build/web node tests/browser/console.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, signIn, waitFor, watch, editorText, editorPending, screenshot, ADMIN_PASSWORD } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

test('sign in, create a project, add SQL and markdown cells, reload, sign out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  await signIn(page, server, 'admin', ADMIN_PASSWORD);
  // The session is an HttpOnly cookie: script cannot read it.
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'atrium_session');
  assert.ok(session, JSON.stringify(cookies));
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie.includes('atrium_session')), false);

  await page.fill('#project-name', 'Plate QC');
  await page.fill('#project-description', 'Reader runs of December');
  await page.click('button:has-text("Create project")');
  await page.waitForURL(/#\/projects\/[0-9a-f-]+$/);
  const projectId = page.url().split('/').pop();
  await page.waitForSelector('h1:has-text("Plate QC")');

  await page.click('button:has-text("Add SQL cell")');
  const sqlCell = await page.waitForSelector('li.cell[data-kind=sql]');
  const sqlId = await sqlCell.getAttribute('data-cell-id');
  await page.click(`li[data-cell-id="${sqlId}"] .cm-content`);
  await page.keyboard.type('select 1 as n, \'é😀\' as s');
  await page.keyboard.press('Escape'); // closes the completion popup
  await waitFor(async () => (await editorPending(page, sqlId)) === 0, 10000, 'the SQL edits to be confirmed');

  await page.click('button:has-text("Add markdown cell")');
  const mdCell = await page.waitForSelector('li.cell[data-kind=markdown]');
  const mdId = await mdCell.getAttribute('data-cell-id');
  await page.click(`li[data-cell-id="${mdId}"] button:has-text("Edit markdown")`);
  await page.fill(`#md-${mdId}`, '# Findings\n\nPlates *3* and **7** drift.');
  await page.click(`li[data-cell-id="${mdId}"] button:has-text("Save")`);
  await page.waitForSelector(`li[data-cell-id="${mdId}"] .markdown h1:has-text("Findings")`);

  // The server holds what was typed.
  const cells = await server.http('GET', `/v1/projects/${projectId}/cells`);
  assert.equal(cells.status, 200, cells.body);
  assert.deepEqual(
    cells.json.cells.map((c) => [c.cell_id, c.kind, c.content]),
    [
      [sqlId, 'sql', "select 1 as n, 'é😀' as s"],
      [mdId, 'markdown', '# Findings\n\nPlates *3* and **7** drift.'],
    ],
  );

  await page.reload();
  await page.waitForSelector(`li[data-cell-id="${sqlId}"] .cm-editor`);
  assert.equal(await editorText(page, sqlId), "select 1 as n, 'é😀' as s");
  assert.equal(await page.textContent(`li[data-cell-id="${mdId}"] .markdown em`), '3');
  assert.equal(await page.textContent(`li[data-cell-id="${mdId}"] .markdown strong`), '7');
  await screenshot(page, 'project');

  await page.click('button:has-text("Sign out")');
  await page.waitForSelector('#username');
  const after = await page.evaluate(async () => (await fetch('/v1/auth/session')).status);
  assert.equal(after, 401);
  await screenshot(page, 'sign-in');
  assert.deepEqual(problems, []);
  await context.close();
});

test('connections, sharing and admin forms work and show the server error messages', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  await signIn(page, server, 'admin', ADMIN_PASSWORD);

  // Admin: a user and a group, made through the forms.
  await page.goto(`${server.url}/#/admin`);
  await page.fill('#user-name', 'grace');
  await page.fill('#user-email', 'grace@example.org');
  await page.fill('#user-password', 'g.r.a.c.e-pw-123456');
  await page.click('button:has-text("Create user")');
  await page.waitForSelector('td:has-text("grace@example.org")');
  await page.fill('#group-name', 'chemists');
  await page.click('button:has-text("Create group")');
  await page.waitForSelector('td:has-text("chemists")');
  // A refused request shows the server's message: the user name is taken.
  await page.fill('#user-name', 'grace');
  await page.fill('#user-email', 'g@example.org');
  await page.fill('#user-password', 'g.r.a.c.e-pw-123456');
  await page.click('button:has-text("Create user")');
  const taken = await server.http('POST', '/v1/users', { body: { username: 'grace', email: 'g@example.org', password: 'g.r.a.c.e-pw-123456' } });
  await page.waitForSelector(`form[aria-label="New user"] [role=alert]:has-text(${JSON.stringify(taken.json.error.message)})`);

  // Connections: a SQLite connection through the form, tested, shared with grace.
  const fs = await import('node:fs');
  const path = await import('node:path');
  const db = path.join(server.data, 'files', 'form.sqlite');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, '');
  await page.goto(`${server.url}/#/connections`);
  await page.fill('#conn-name', 'bench');
  await page.fill('#conn-path', db);
  await page.click('button:has-text("Create connection")');
  await page.waitForSelector('td:has-text("bench")');
  await page.click('button[aria-label="Test bench"]');
  await page.waitForSelector('[data-testid=conn-test]:has-text("ok")');
  await page.selectOption('#share-conn-grantee', { label: 'grace' });
  await page.click('form[aria-label="Share a connection"] button:has-text("Share")');
  const grace = await server.login('grace', 'g.r.a.c.e-pw-123456');
  await waitFor(async () => {
    const r = await server.http('GET', '/v1/connections', { token: grace });
    return r.json.connections.some((c) => c.name === 'bench');
  }, 10000, 'grace to see the shared connection');
  // PostgreSQL credentials are write-only: the form never shows them back.
  await page.selectOption('#conn-driver', 'postgres');
  assert.equal(await page.inputValue('#conn-password'), '');

  // A project shared with the group through the project page.
  const p = await server.http('POST', '/v1/projects', { body: { name: 'Shared with chemists' } });
  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  await page.waitForSelector('h1:has-text("Shared with chemists")');
  await page.selectOption('#share-grantee', { label: 'group: chemists' });
  await page.selectOption('#share-role', 'editor');
  await page.click('form[aria-label="Share the project"] button:has-text("Share")');
  await page.waitForSelector('td:has-text("chemists")');
  const shown = await server.http('GET', `/v1/projects/${p.json.id}`);
  assert.equal(shown.json.groups.length, 1, shown.body);
  assert.equal(shown.json.groups[0].role, 'editor');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a viewer sees the cells read-only, without the editing controls', async () => {
  const vera = await server.user('vera');
  const p = await server.http('POST', '/v1/projects', { body: { name: 'Read only' } });
  await server.http('POST', `/v1/projects/${p.json.id}/members`, { body: { user_id: vera.id, role: 'viewer' } });
  const cell = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { body: { kind: 'sql', content: 'select 42' } });
  assert.equal(cell.status, 201, cell.body);
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  await signIn(page, server, vera.username, vera.password);
  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  await page.waitForSelector(`li[data-cell-id="${cell.json.cell_id}"] .cm-editor`);
  await page.click(`li[data-cell-id="${cell.json.cell_id}"] .cm-content`);
  await page.keyboard.type('xyz');
  assert.equal(await editorText(page, cell.json.cell_id), 'select 42');
  assert.equal(await page.$('button:has-text("Add SQL cell")'), null);
  assert.equal(await page.$(`li[data-cell-id="${cell.json.cell_id}"] button:has-text("Delete")`), null);
  assert.equal(await page.$(`li[data-cell-id="${cell.json.cell_id}"] button:has-text("Run")`), null);
  // Audit and Admin are not offered to a member.
  assert.equal(await page.$('nav a:has-text("Audit")'), null);
  assert.deepEqual(problems, []);
  await context.close();
});
