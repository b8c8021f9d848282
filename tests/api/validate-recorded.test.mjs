// The recorded-exchange check itself (validate-recorded.mjs): it passes what the document
// describes and reports what breaks it, so `api: responses match openapi` can fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Checker, checkAll } from './validate-recorded.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const spec = JSON.parse(fs.readFileSync(path.join(here, '../../docs/openapi.json'), 'utf8'));
const checker = new Checker(spec);

const jsonHeaders = { 'content-type': 'application/json' };
const project = {
  id: '0193a1bf-0000-7000-8000-000000000001',
  name: 'QC',
  description: '',
  created_by: 'u',
  members: [],
  groups: [],
  archived: false,
  cells: [],
  version: 1,
};
const exchange = (method, target, status, body, headers = jsonHeaders) => ({
  method,
  target,
  status,
  headers,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  truncated: false,
});

test('a response that matches its schema passes', () => {
  const r = checker.check(exchange('GET', `/v1/projects/${project.id}?as_of=3`, 200, project));
  assert.equal(r.operation, 'GET /v1/projects/{id}');
  assert.equal(r.failure, undefined);
});

test('a response that breaks its schema is reported', () => {
  const { archived, ...broken } = project;
  const r = checker.check(exchange('GET', `/v1/projects/${project.id}`, 200, { ...broken, version: 'one' }));
  assert.equal(r.failure?.kind, 'schema mismatch');
  assert.match(r.failure.message, /version|archived/);
});

test('an error that is not the error shape is reported', () => {
  const r = checker.check(exchange('GET', `/v1/projects/${project.id}`, 404, { message: 'no such project' }));
  assert.equal(r.failure?.kind, 'schema mismatch');
});

test('an undocumented status is reported', () => {
  const r = checker.check(exchange('GET', `/v1/projects/${project.id}`, 418, { error: { code: 'x', message: 'y', details: {} } }));
  assert.equal(r.failure?.kind, 'undocumented status');
});

test('an undocumented route is reported unless it answers 404 or 405 with the error shape', () => {
  const notFound = { error: { code: 'not_found', message: 'no such route', details: {} } };
  assert.equal(checker.check(exchange('GET', '/v1/nothing-here', 404, notFound)).failure, undefined);
  assert.equal(checker.check(exchange('GET', '/v1/nothing-here', 200, { ok: true })).failure?.kind, 'undocumented route');
  assert.equal(checker.check(exchange('GET', '/v1/nothing-here', 404, 'nope', { 'content-type': 'text/plain' })).failure?.kind, 'undocumented route');
  const refused = { error: { code: 'invalid_argument', message: 'path segment is not valid UTF-8', details: {} } };
  assert.equal(checker.check(exchange('GET', '/v1/%ff', 400, refused)).failure, undefined);
  assert.equal(checker.check(exchange('GET', '/v1/nothing-here', 400, refused)).failure?.kind, 'undocumented route');
});

test('HEAD is checked as its GET without a body; a literal segment wins over a template', () => {
  assert.equal(checker.check(exchange('HEAD', `/v1/projects/${project.id}`, 200, '')).failure, undefined);
  assert.equal(checker.check(exchange('HEAD', `/v1/projects/${project.id}`, 200, project)).failure?.kind, 'body where none is allowed');
  assert.equal(checker.check(exchange('GET', '/v1/events/stream', 200, '', { 'content-type': 'text/event-stream' })).operation, 'GET /v1/events/stream');
  assert.equal(checker.check(exchange('GET', '/v1/jobs/j/result.csv', 200, 'a\r\n', { 'content-type': 'text/csv; charset=utf-8' })).operation, 'GET /v1/jobs/{id}/result.csv');
});

test('the console\'s files outside /v1 may answer any type; /v1 may not', () => {
  const html = { 'content-type': 'text/html; charset=utf-8' };
  assert.equal(checker.check(exchange('GET', '/index.html', 200, '<html>', html)).failure, undefined);
  assert.equal(checker.check(exchange('HEAD', '/app-ABCDEFGH.js', 304, '', html)).failure, undefined);
  assert.equal(checker.check(exchange('POST', '/index.html', 200, '<html>', html)).failure?.kind, 'undocumented route');
  assert.equal(checker.check(exchange('GET', '/v1/index.html', 200, '<html>', html)).failure?.kind, 'undocumented route');
});

test('a content type the operation does not document is reported', () => {
  const r = checker.check(exchange('GET', `/v1/projects/${project.id}`, 200, '<html>', { 'content-type': 'text/html' }));
  assert.equal(r.failure?.kind, 'undocumented content type');
});

test('the command line exits 1 on a failure and 0 without', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-api-record-'));
  try {
    const good = exchange('GET', `/v1/projects/${project.id}`, 200, project);
    fs.writeFileSync(path.join(dir, '1.jsonl'), `${JSON.stringify(good)}\n`);
    let run = spawnSync(process.execPath, [path.join(here, 'validate-recorded.mjs'), dir], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /1 exchanges checked/);
    fs.appendFileSync(path.join(dir, '2.jsonl'), `${JSON.stringify(exchange('GET', '/v1/nothing-here', 200, { ok: true }))}\n`);
    run = spawnSync(process.execPath, [path.join(here, 'validate-recorded.mjs'), dir], { encoding: 'utf8' });
    assert.equal(run.status, 1, run.stdout);
    assert.match(run.stdout, /FAIL undocumented route/);
    const { failures } = checkAll(spec, [good]);
    assert.equal(failures.size, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
