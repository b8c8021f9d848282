// User content is never run: a markdown cell holding <img src=x onerror=…>, <script>, a
// javascript: link and an inline event handler, a project named with markup and a SQL cell
// holding markup. Nothing runs (a window flag and a dialog listener stay untouched), the
// markdown is sanitized, and names and code are shown as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserSuite, signIn, waitFor, watch, editorText, ADMIN_PASSWORD } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

const NAME = '<img src=x onerror="window.__pwned=\'name\';alert(1)">Assay';
const MARKDOWN = [
  '# Notes',
  '',
  '<img src=x onerror="window.__pwned=\'img\';alert(2)">',
  '',
  '<script>window.__pwned = "script"; alert(3)</script>',
  '',
  '[click me](javascript:window.__pwned=\'link\')',
  '',
  '<a onclick="window.__pwned=\'onclick\'">x</a> <svg onload="window.__pwned=\'svg\'"></svg>',
  '',
  '<iframe src="javascript:parent.__pwned=\'iframe\'"></iframe>',
].join('\n');
const SQL = '<script>window.__pwned="sql"</script><img src=x onerror="window.__pwned=\'sql\'">';

test('markdown, names and code holding markup run nothing', async () => {
  const p = await server.http('POST', '/v1/projects', { body: { name: NAME, description: '<b onmouseover="alert(4)">desc</b>' } });
  assert.equal(p.status, 201, p.body);
  const md = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { body: { kind: 'markdown', content: MARKDOWN } });
  assert.equal(md.status, 201, md.body);
  const sql = await server.http('POST', `/v1/projects/${p.json.id}/cells`, { body: { kind: 'sql', content: SQL } });
  assert.equal(sql.status, 201, sql.body);

  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = watch(page);
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  await signIn(page, server, 'admin', ADMIN_PASSWORD);
  // The list shows the name as text.
  await page.waitForSelector(`a:has-text("Assay")`);
  assert.equal(await page.textContent(`a[href="#/projects/${p.json.id}"]`), NAME);

  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  const mdSel = `li[data-cell-id="${md.json.cell_id}"] .markdown`;
  await page.waitForSelector(`${mdSel} h1:has-text("Notes")`);
  await page.waitForSelector(`li[data-cell-id="${sql.json.cell_id}"] .cm-editor`);
  // Give any handler the chance to fire: the images have loaded or failed, links clicked.
  await page.waitForLoadState('load');
  await page.click(`${mdSel} a:has-text("click me")`).catch(() => {});
  await page.click(`${mdSel} a:has-text("x")`).catch(() => {});

  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  // Sanitized: no script, iframe, handler attributes or javascript: URLs survive.
  const html = await page.$eval(mdSel, (el) => el.innerHTML);
  assert.doesNotMatch(html, /<script|<iframe|onerror|onclick|onload|javascript:/i, html);
  // The project's name and description are text.
  assert.equal(await page.textContent('h1'), NAME);
  assert.equal(await page.textContent('.description'), '<b onmouseover="alert(4)">desc</b>');
  assert.equal(await page.$$eval('h1 img, .description b', (els) => els.length), 0);
  // The SQL cell shows its markup as code.
  assert.equal(await editorText(page, sql.json.cell_id), SQL);
  assert.equal(await page.$$eval(`li[data-cell-id="${sql.json.cell_id}"] .cm-content img, li[data-cell-id="${sql.json.cell_id}"] .cm-content script`, (e) => e.length), 0);
  await waitFor(async () => (await page.evaluate(() => window.__pwned)) === undefined, 1000, 'nothing to run');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(problems.filter((p) => !/Content Security Policy/.test(p)), []);
  await context.close();
});
