// Every page of the console scanned with axe-core (WCAG 2.1 A/AA and best practices): no
// serious or critical violation. Each page is also saved as a screenshot in the artifacts
// dir (ATRIUM_ARTIFACTS, default build/test-artifacts/browser); docs/console/ holds copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { browserSuite, signIn, waitFor, screenshot, ADMIN_PASSWORD } from './support.mjs';

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

/** Runs axe on the page; returns the serious and critical violations, summarized. */
async function scan(page) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
}

test('every page passes axe-core without serious or critical violations', async () => {
  // Content for every page: a user, a group, a SQLite connection, a project with cells and a run.
  const ada = await server.user('ada');
  const g = await server.http('POST', '/v1/groups', { body: { name: 'analysts' } });
  assert.equal(g.status, 201, g.body);
  const db = path.join(server.data, 'files', 'a11y.sqlite');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, '');
  const conn = await server.http('POST', '/v1/connections', { body: { name: 'plates', driver: 'sqlite', params: { path: db }, credentials: {} } });
  assert.equal(conn.status, 201, conn.body);
  const p = await server.http('POST', '/v1/projects', { body: { name: 'Assay QC', description: 'Plate reader runs' } });
  assert.equal(p.status, 201, p.body);
  await server.http('POST', `/v1/projects/${p.json.id}/members`, { body: { user_id: ada.id, role: 'editor' } });
  await server.http('POST', `/v1/projects/${p.json.id}/cells`, { body: { kind: 'markdown', content: '# Assay QC\n\nThe **nightly** checks of the plate readers.' } });
  const sql = await server.http('POST', `/v1/projects/${p.json.id}/cells`, {
    body: { kind: 'sql', content: "select 1 as plate, 'ok' as status union all select 2, 'drift'", connection_id: conn.json.id },
  });
  await server.http('POST', `/v1/projects/${p.json.id}/cells`, { body: { kind: 'python', content: 'import csv\nprint("hello")' } });
  const run = await server.http('POST', `/v1/projects/${p.json.id}/cells/${sql.json.cell_id}/run`);
  assert.equal(run.status, 202, run.body);
  await waitFor(async () => (await server.http('GET', `/v1/jobs/${run.json.id}`)).json.status === 'succeeded', 30000, 'the run');

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const failures = [];
  const check = async (name) => {
    for (const v of await scan(page)) failures.push(`${name}: ${v}`);
    await screenshot(page, name);
  };

  await page.goto(`${server.url}/`);
  await page.waitForSelector('#username');
  await check('sign-in');
  await signIn(page, server, 'admin', ADMIN_PASSWORD);
  await page.waitForSelector('table:has-text("Assay QC")');
  await check('projects');
  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  await page.waitForSelector(`li[data-cell-id="${sql.json.cell_id}"] [data-testid=result] table`);
  await page.waitForSelector('.markdown h1');
  await check('project');
  await page.goto(`${server.url}/#/connections`);
  await page.waitForSelector('td:has-text("plates")');
  await page.click('button:has-text("Test")');
  await page.waitForSelector('[data-testid=conn-test]:not(:has-text("not tested"))');
  await check('connections');
  await page.goto(`${server.url}/#/audit`);
  await page.waitForSelector('[data-testid=verify-badge]');
  await page.waitForSelector('table:has(caption:has-text("Audit log")) tbody tr');
  await check('audit');
  await page.goto(`${server.url}/#/audit/${encodeURIComponent(`project-${p.json.id}`)}`);
  await page.waitForSelector('[data-testid=as-of] h3');
  // The slider at the project's second event: the project as it was then (no cells yet).
  await page.focus('#as-of');
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowRight');
  await page.waitForSelector('[data-testid=as-of-position]:has-text("project.member_added")');
  await waitFor(async () => (await page.$$('.cells-as-of li')).length === 0, 10000, 'the project as of its second event: no cells');
  await check('audit-history');
  // At the end of the history the project has its three cells.
  await page.keyboard.press('End');
  await waitFor(async () => (await page.$$('.cells-as-of li')).length === 3, 10000, 'the project as of now: three cells');
  await page.goto(`${server.url}/#/admin`);
  await page.waitForSelector('table:has(caption:has-text("Read models")) tbody tr');
  await page.waitForSelector('td:has-text("analysts")');
  await check('admin');
  assert.deepEqual(failures, []);
  await context.close();
});
