// End to end: a subscriber of a project sees, live over GET /v1/ws, the events of a job
// that runs one of the project's cells (POST /v1/projects/{id}/cells/{cell_id}/run):
// job.submitted, job.queued, job.started, at least one job.progressed, job.succeeded, in
// that order and as the log holds them.
//
// The cell's query returns 4,000 rows and takes about a second (a 100 kB random blob hex-
// encoded per row), so the executor reports rows in batches of 1,024 while the job runs
// and the dispatcher's progress tick (every 500 ms) appends job.progressed before the end.
//
//   ATRIUMD=build/atriumd node --test tests/ws/cells_run.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, request } from './support.mjs';

let server;
before(async () => {
  server = await new Server().start();
});
after(async () => {
  await server?.stop();
});

test('a project subscriber sees the job of a cell run live, in order', async () => {
  const alice = await server.user('alice');
  const as = (method, target, body) => request(server.address, method, target, { token: alice.token, body });

  const p = await as('POST', '/v1/projects', { name: 'live runs' });
  assert.equal(p.status, 201, p.body);
  // A SQLite file under DATA_DIR/files (the default --sqlite-root); an empty file is an
  // empty database.
  const db = path.join(server.data, 'files', 'cells.sqlite');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  fs.writeFileSync(db, '');
  const conn = await as('POST', '/v1/connections', {
    name: 'cells',
    driver: 'sqlite',
    params: { path: db },
    credentials: {},
  });
  assert.equal(conn.status, 201, conn.body);
  const cell = await as('POST', `/v1/projects/${p.json.id}/cells`, {
    kind: 'sql',
    content:
      'with recursive r(i) as (select 1 union all select i + 1 from r limit 4000) ' +
      'select i, length(hex(randomblob(100000))) as n from r',
    connection_id: conn.json.id,
  });
  assert.equal(cell.status, 201, cell.body);
  assert.equal(cell.json.connection_id, conn.json.id);

  // A viewer of the project subscribes from now on.
  const vera = await server.user('vera');
  const shared = await as('POST', `/v1/projects/${p.json.id}/members`, { user_id: vera.id, role: 'viewer' });
  assert.equal(shared.status, 200, shared.body);
  const c = await server.ws(vera.token);
  try {
    const sub = await c.call({ op: 'subscribe', id: 'p', projects: [p.json.id] });
    assert.equal(sub.ok, true, JSON.stringify(sub));

    const ran = await as('POST', `/v1/projects/${p.json.id}/cells/${cell.json.cell_id}/run`);
    assert.equal(ran.status, 202, ran.body);
    const job = ran.json.id;
    assert.equal(ran.json.cell_id, cell.json.cell_id);
    const ofJob = () => c.events('p').filter((e) => e.stream === `job-${job}`);

    await c.next((m) => m.op === 'event' && m.event.stream === `job-${job}` && m.event.type === 'job.queued');
    const first = ofJob().map((e) => e.type);
    assert.deepEqual(first.slice(0, 2), ['job.submitted', 'job.queued']);
    assert.equal(ofJob()[0].data.cell_id, cell.json.cell_id);
    // Versions 1, 2, …: nothing of the job's stream was skipped or reordered.
    ofJob().forEach((e, i) => assert.equal(e.version, i + 1));
    // The cell shows its last job.
    const shown = await as('GET', `/v1/projects/${p.json.id}/cells/${cell.json.cell_id}`);
    assert.equal(shown.json.last_job_id, job, shown.body);

    const terminal = new Set(['job.succeeded', 'job.failed', 'job.timed_out', 'job.cancelled']);
    await c.next((m) => m.op === 'event' && m.event.stream === `job-${job}` && terminal.has(m.event.type), 30000);
    const types = ofJob().map((e) => e.type);
    ofJob().forEach((e, i) => assert.equal(e.version, i + 1));
    // submitted, queued, started, one or more progressed, succeeded.
    assert.deepEqual(types.slice(0, 3), ['job.submitted', 'job.queued', 'job.started'], types.join(' '));
    assert.equal(types.at(-1), 'job.succeeded', JSON.stringify(ofJob().at(-1)));
    assert.ok(types.length >= 5, types.join(' '));
    assert.ok(types.slice(3, -1).every((x) => x === 'job.progressed'), types.join(' '));
    const progressed = ofJob().filter((e) => e.type === 'job.progressed');
    progressed.forEach((e, i) => {
      assert.ok(e.data.rows > 0 && e.data.rows <= 4000, JSON.stringify(e.data));
      if (i > 0) assert.ok(e.data.rows >= progressed[i - 1].data.rows, 'rows so far never go back');
    });
    assert.equal(ofJob().at(-1).data.rows, 4000, JSON.stringify(ofJob().at(-1).data));
    // The subscriber saw them as the log holds them.
    const log = await request(server.address, 'GET', `/v1/streams/job-${job}?limit=1000`, { token: alice.token });
    assert.deepEqual(log.json.events.map((e) => e.type), types);
  } finally {
    c.close();
  }
});
