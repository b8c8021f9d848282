// Running a SQL cell on a SQLite connection from the console: live status, then the result
// table (paged) with its CSV link; a long query cancelled from the console shows
// `cancelled`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { browserSuite, signIn, waitFor, watch, screenshot, ADMIN_PASSWORD } from './support.mjs';

let server;
let browser;
browserSuite((s, b) => ([server, browser] = [s, b]));

test('a SQL cell runs on SQLite and shows its rows; a cancelled long query shows cancelled', async () => {
  // A SQLite file under DATA_DIR/files (the default --sqlite-root); empty = an empty database.
  const db = path.join(server.data, 'files', 'plates.sqlite');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, '');
  const conn = await server.http('POST', '/v1/connections', { body: { name: 'plates', driver: 'sqlite', params: { path: db }, credentials: {} } });
  assert.equal(conn.status, 201, conn.body);
  const p = await server.http('POST', '/v1/projects', { body: { name: 'Runs' } });
  assert.equal(p.status, 201, p.body);
  const quick = await server.http('POST', `/v1/projects/${p.json.id}/cells`, {
    body: {
      kind: 'sql',
      content: "with recursive r(i) as (select 1 union all select i + 1 from r limit 120) select i, 'plate ' || i as name, i * 0.5 as half from r",
      connection_id: conn.json.id,
    },
  });
  assert.equal(quick.status, 201, quick.body);
  const slow = await server.http('POST', `/v1/projects/${p.json.id}/cells`, {
    body: { kind: 'sql', content: 'with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) from r', connection_id: conn.json.id },
  });
  assert.equal(slow.status, 201, slow.body);

  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const problems = watch(page);
  await signIn(page, server, 'admin', ADMIN_PASSWORD);
  await page.goto(`${server.url}/#/projects/${p.json.id}`);
  const q = `li[data-cell-id="${quick.json.cell_id}"]`;
  await page.waitForSelector(`${q} .cm-editor`);
  // The connection selector shows the cell's connection.
  assert.equal(await page.$eval(`${q} select`, (s) => s.value), conn.json.id);

  await page.click(`${q} button:has-text("Run")`);
  await page.waitForSelector(`${q} [data-testid=job-status]:has-text("succeeded")`, { timeout: 30000 });
  await page.waitForSelector(`${q} [data-testid=result] table`);
  assert.deepEqual(await page.$$eval(`${q} [data-testid=result] th`, (t) => t.map((x) => x.textContent)), ['i', 'name', 'half']);
  const rows = await page.$$eval(`${q} [data-testid=result] tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(rows.length, 50);
  assert.deepEqual(rows[0], ['1', 'plate 1', '0.5']);
  assert.match(await page.textContent(`${q} [data-testid=result] caption`), /1–50 of 120/);
  await screenshot(page, 'project-run');
  // The next pages.
  await page.click(`${q} button:has-text("Next rows")`);
  await page.waitForSelector(`${q} [data-testid=result] caption:has-text("51–100 of 120")`);
  await page.click(`${q} button:has-text("Next rows")`);
  await page.waitForSelector(`${q} [data-testid=result] caption:has-text("101–120 of 120")`);
  assert.equal(await page.$eval(`${q} [data-testid=result] tbody tr:last-child td`, (td) => td.textContent), '120');
  // The CSV download, with the session cookie.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${q} a:has-text("Download CSV")`)]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  assert.equal(csv.split('\r\n')[0], 'i,name,half');
  assert.equal(csv.trim().split('\r\n').length, 121);
  // The job is in the history.
  await page.waitForSelector('table:has(caption:has-text("Jobs of this project")) td:has-text("succeeded")');

  const s = `li[data-cell-id="${slow.json.cell_id}"]`;
  await page.click(`${s} button:has-text("Run")`);
  await page.waitForSelector(`${s} [data-testid=job-status]:has-text("running")`, { timeout: 30000 });
  await page.click(`${s} button:has-text("Cancel")`);
  await page.waitForSelector(`${s} [data-testid=job-status]:has-text("cancelled")`, { timeout: 30000 });
  assert.equal(await page.$(`${s} [data-testid=result]`), null);
  assert.deepEqual(problems, []);
  await context.close();
});
