// End to end: a subscriber of a project sees, live over GET /v1/ws, the events of a job
// that runs one of the project's cells (POST /v1/projects/{id}/cells/{cell_id}/run):
// job.submitted, job.queued and, once atriumd has a dispatcher that runs jobs,
// job.started → job.progressed* → job.succeeded, in that order.
//
// Whether the dispatcher is there is read from `atriumd serve --help` (it names
// `--job-slots`); ATRIUM_EXPECT_JOB_RUN=1 or =0 overrides that. Without a dispatcher only
// the submit's two events exist, and the test checks that the job is still queued.
//
//   ATRIUMD=build/atriumd node --test tests/ws/cells_run.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Server, request } from './support.mjs';

/** True when this atriumd runs jobs (see the header). */
function dispatcherPresent() {
  const forced = process.env.ATRIUM_EXPECT_JOB_RUN;
  if (forced === '1' || forced === '0') return forced === '1';
  let help = '';
  try {
    help = execFileSync(process.env.ATRIUMD, ['serve', '--help'], { encoding: 'utf8' });
  } catch (e) {
    help = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  return help.includes('--job-slots');
}

let server;
before(async () => {
  server = await new Server().start();
});
after(async () => {
  await server?.stop();
});

test('a project subscriber sees the job of a cell run live, in order', async (t) => {
  const runs = dispatcherPresent();
  t.diagnostic(runs ? 'dispatcher present: expecting started → progressed* → succeeded' : 'no dispatcher: submit events only');
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
    content: 'select 1 as one union all select 2',
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

    if (!runs) {
      const now = await as('GET', `/v1/jobs/${job}`);
      assert.equal(now.json.status, 'queued', now.body);
      return;
    }
    const terminal = new Set(['job.succeeded', 'job.failed', 'job.timed_out', 'job.cancelled']);
    await c.next((m) => m.op === 'event' && m.event.stream === `job-${job}` && terminal.has(m.event.type), 30000);
    const types = ofJob().map((e) => e.type);
    ofJob().forEach((e, i) => assert.equal(e.version, i + 1));
    // submitted, queued, started, any number of progressed, succeeded.
    assert.deepEqual(types.slice(0, 3), ['job.submitted', 'job.queued', 'job.started'], types.join(' '));
    assert.equal(types.at(-1), 'job.succeeded', JSON.stringify(ofJob().at(-1)));
    assert.ok(types.slice(3, -1).every((x) => x === 'job.progressed'), types.join(' '));
    // The subscriber saw them as the log holds them.
    const log = await request(server.address, 'GET', `/v1/streams/job-${job}?limit=1000`, { token: alice.token });
    assert.deepEqual(log.json.events.map((e) => e.type), types);
  } finally {
    c.close();
  }
});
