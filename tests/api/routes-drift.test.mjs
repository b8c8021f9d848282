// routes-drift.mjs's comparison can fail: each kind of difference is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare } from './routes-drift.mjs';

const doc = {
  components: { parameters: { Limit: { name: 'limit', in: 'query' } } },
  paths: {
    '/v1/things': {
      get: { parameters: [{ $ref: '#/components/parameters/Limit' }, { name: 'after', in: 'query' }] },
      post: {},
    },
    '/v1/things/{id}': { parameters: [{ name: 'id', in: 'path' }], get: {} },
  },
};
const routes = [
  { method: 'GET', pattern: '/v1/things', query: ['after', 'limit'] },
  { method: 'POST', pattern: '/v1/things', query: [] },
  { method: 'GET', pattern: '/v1/things/{id}', query: [] },
];

test('a table and a document that agree: no difference', () => {
  assert.deepEqual(compare(routes, doc), []);
});

test('a route the document lacks, and an operation no route serves', () => {
  const problems = compare([...routes.slice(0, 2), { method: 'DELETE', pattern: '/v1/things/{id}', query: [] }], doc);
  assert.equal(problems.length, 2);
  assert.match(problems[0], /DELETE \/v1\/things\/\{id\}: a route the document does not describe/);
  assert.match(problems[1], /GET \/v1\/things\/\{id\}: documented but not a route/);
});

test('query parameters that differ, either way', () => {
  const problems = compare([{ ...routes[0], query: ['after', 'cursor'] }, ...routes.slice(1)], doc);
  assert.deepEqual(problems, [
    'GET /v1/things: query parameters the route takes but the document omits: cursor',
    'GET /v1/things: query parameters the document lists but the route refuses: limit',
  ]);
});
