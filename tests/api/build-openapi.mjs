// Writes docs/openapi.json, the OpenAPI 3.1 description of atriumd's HTTP API, from the
// tables below (one entry per route of the route table, adapters/http/controllers/*.cpp).
//
//   node build-openapi.mjs           rewrites docs/openapi.json
//   node build-openapi.mjs --check   exits 1 when docs/openapi.json differs from what it would write,
//                                    or a route of adapters/http/controllers (`t.add`) is not described
//
// Edit this file, not the JSON: CTest's `api: openapi up to date` runs `--check`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(here, '../../docs/openapi.json');

// ---- schema helpers ------------------------------------------------------------------
const ref = (name) => ({ $ref: `#/components/schemas/${name}` });
const str = (description, extra = {}) => ({ type: 'string', ...(description ? { description } : {}), ...extra });
const int = (description, extra = {}) => ({ type: 'integer', ...(description ? { description } : {}), ...extra });
const num = (description, extra = {}) => ({ type: 'number', ...(description ? { description } : {}), ...extra });
const bool = (description) => ({ type: 'boolean', ...(description ? { description } : {}) });
const arr = (items, description, extra = {}) => ({ type: 'array', items, ...(description ? { description } : {}), ...extra });
const nullable = (s) => ({ ...s, type: [s.type, 'null'] });
const anyJson = (description) => ({ ...(description ? { description } : {}) });
const time = (description) => str(description ?? 'RFC 3339 UTC time', { format: 'date-time' });
/** An object: `props` (name → schema), `required` names (default: every prop), open to growth. */
function obj(props, required = Object.keys(props), { open = true, description } = {}) {
  return {
    type: 'object',
    ...(description ? { description } : {}),
    ...(required.length ? { required } : {}),
    properties: props,
    ...(open ? {} : { additionalProperties: false }),
  };
}
/** A page of a list: `{<name>: [item], next}`. */
const page = (name, item, description) =>
  obj({ [name]: arr(item), next: { description: description ?? 'the `after` of the next page; null on the last page', type: ['string', 'integer', 'null'] } });

// ---- components ----------------------------------------------------------------------
const schemas = {
  Error: obj(
    {
      error: obj(
        {
          code: str('machine-readable: `invalid_argument` 400, `unauthenticated` 401, `forbidden` 403, `not_found` 404, `method_not_allowed` 405, `version_conflict`/`already_exists`/`failed_precondition` 409, `gone` 410, `payload_too_large` 413, `unsupported_media_type` 415, `precondition_required` 428, `too_many_requests` 429, `internal` 500, `unavailable` 503', {
            examples: ['not_found'],
          }),
          message: str('for people; not to be parsed'),
          details: { type: 'object', description: 'always an object; what the code needs (`field`, `parameter`, `current_version`, …)' },
        },
        ['code', 'message', 'details'],
      ),
    },
    ['error'],
    { description: 'The one error shape of every route: `{"error":{"code","message","details"}}`.' },
  ),
  AsOf: obj({ position: int('log position of the last event folded'), time: time('its time') }, ['position', 'time'], {
    description: 'Present on a time-travel read (`?as_of=`): the point the entity was folded to.',
  }),
  Role: str('global role', { enum: ['admin', 'member', 'auditor'] }),
  User: obj(
    {
      id: str('user id (UUIDv7)'),
      username: str('3–32 of `a-z0-9._-`'),
      email: str(),
      roles: arr(ref('Role')),
      disabled: bool(),
      kind: str('`person` or `service` (a service account)', { enum: ['person', 'service'] }),
      description: str('service accounts only'),
      password_hash: false,
      version: int('stream version (also the ETag)'),
      created_at: time(),
      updated_at: time(),
      as_of: ref('AsOf'),
    },
    ['id', 'username'],
    { description: 'A user or service account (never a password hash). Admins, auditors and the user themselves see every field; others only `id` and `username`.' },
  ),
  Group: obj(
    {
      id: str(),
      name: str(),
      description: str(),
      created_by: str(),
      members: arr(obj({ user_id: str(), group_id: str() }, []), 'users (`user_id`) and nested groups (`group_id`)'),
      version: int(),
      created_at: time(),
      updated_at: time(),
      as_of: ref('AsOf'),
    },
    ['id', 'name', 'description', 'created_by', 'members', 'version'],
  ),
  Cell: obj(
    {
      cell_id: str(),
      kind: str('`markdown`, `sql` or `script`'),
      content: str(),
      version: int('edits so far (co-editing updates)'),
      after: str('the cell before it ("" first)'),
      connection_id: str('"" when none'),
      last_job_id: str('the job its last run submitted ("" when none)'),
      updated_at: time(),
    },
    ['cell_id', 'kind', 'content', 'version', 'after', 'connection_id'],
  ),
  Project: obj(
    {
      id: str(),
      name: str(),
      description: str(),
      created_by: str(),
      members: arr(obj({ user_id: str(), role: str() })),
      groups: arr(obj({ group_id: str(), role: str() })),
      archived: bool(),
      cells: arr(ref('Cell'), 'one project only; lists give `cell_count`'),
      cell_count: int('lists only'),
      removed_cells: false,
      recent_edits: false,
      cell_updates: false,
      version: int(),
      created_at: time(),
      updated_at: time(),
      as_of: ref('AsOf'),
    },
    ['id', 'name', 'description', 'created_by', 'members', 'groups', 'archived', 'version'],
  ),
  Connection: obj(
    {
      id: str(),
      name: str(),
      driver: str('`postgres` or `sqlite`'),
      params: { type: 'object', description: 'driver parameters (never credentials: those are in the vault)' },
      fingerprint: str(),
      created_by: str(),
      grants: arr(obj({ user_id: str(), group_id: str(), role: str() }, ['role'])),
      last_test: { description: 'the last test, null before one', oneOf: [{ type: 'null' }, obj({ ok: bool(), error: str(), latency_ms: int(), time: time() }, ['ok', 'error', 'latency_ms'])] },
      deleted: bool(),
      vault_ref: false,
      version: int(),
      created_at: time(),
      updated_at: time(),
      as_of: ref('AsOf'),
    },
    ['id', 'name', 'driver', 'params', 'fingerprint', 'created_by', 'grants', 'last_test', 'deleted', 'version'],
  ),
  Job: obj(
    {
      id: str(),
      project_id: str(),
      kind: str('`sql` or `script`'),
      language: str(),
      connection_id: str(),
      cell_id: str(),
      sql: str(),
      script: str(),
      timeout_s: int(),
      max_attempts: int(),
      attempt: int(),
      submitted_by: str(),
      status: str('`submitted`, `queued`, `running`, `succeeded`, `failed`, `cancelled`, `timed_out`'),
      cancel_requested: bool(),
      progress: num(),
      progress_message: str(),
      rows: int(),
      bytes: int(),
      elapsed_ms: int(),
      columns: arr(obj({ name: str(), type: str() }), 'the result\'s columns (once it succeeded)'),
      truncated: bool(),
      error: str(),
      sqlstate: str(),
      result_expired: bool(),
      submitted_at: time(),
      finished_at: nullable(time('null until it ends')),
      version: int(),
      created_at: time(),
      updated_at: time(),
      as_of: ref('AsOf'),
    },
    ['id', 'project_id', 'kind', 'language', 'connection_id', 'cell_id', 'sql', 'script', 'timeout_s', 'max_attempts', 'attempt', 'submitted_by', 'status', 'cancel_requested', 'progress', 'rows', 'bytes', 'elapsed_ms', 'columns', 'truncated', 'error', 'sqlstate', 'result_expired', 'version'],
  ),
  ContainerSpec: obj(
    {
      image: str(),
      command: arr(str()),
      env: { type: 'object', additionalProperties: { type: 'string' } },
      ports: arr(int()),
      runtime: str('`process` or `docker`'),
      limits: obj({ memory_bytes: nullable(int()), cpus: nullable(num()), pids: nullable(int()) }, [], { description: 'each null for unlimited' }),
      restart: str('`always`, `on-failure`, `never`'),
      health: {
        description: 'null (no check), or exactly one of `http`, `tcp`, `exec`, with `interval_s`, `timeout_s`, `retries`, `start_period_s`',
        oneOf: [{ type: 'null' }, ref('ContainerHealth')],
      },
    },
    [],
  ),
  ContainerHealth: obj(
    {
      http: obj({ port: int(), path: str() }, ['port']),
      tcp: obj({ port: int() }, ['port']),
      exec: arr(str(), 'argv'),
      interval_s: int('', { minimum: 1, maximum: 86400 }),
      timeout_s: int('', { minimum: 1, maximum: 3600 }),
      retries: int('', { minimum: 1, maximum: 100 }),
      start_period_s: int('', { minimum: 0, maximum: 86400 }),
    },
    [],
  ),
  Container: obj(
    {
      id: str(),
      name: str(),
      image: str(),
      command: arr(str()),
      env: { type: 'object' },
      ports: arr(int()),
      runtime: str(),
      spec: ref('ContainerSpec'),
      spec_version: int(),
      declared_by: str(),
      desired: str('`running` or `stopped`'),
      observed: str('`declared`, `starting`, `running`, `exited`, `stopped`'),
      health: str('`starting`, `healthy`, `unhealthy` or ""'),
      runtime_id: str(),
      exit_code: nullable(int()),
      exit_reason: nullable(str()),
      restarts: int(),
      next_restart_at: nullable(str()),
      removed: false,
      limits_raw: false,
      health_raw: false,
      version: int(),
      created_at: time(),
      updated_at: time(),
      as_of: ref('AsOf'),
    },
    ['id', 'name', 'image', 'command', 'env', 'ports', 'runtime', 'spec', 'spec_version', 'declared_by', 'desired', 'observed', 'health', 'runtime_id', 'exit_code', 'exit_reason', 'restarts', 'next_restart_at', 'version'],
  ),
  Schedule: obj(
    {
      id: str(),
      project_id: str(),
      name: str(),
      cron: str('five fields, Vixie cron'),
      time_zone: str('IANA zone'),
      target: ref('ScheduleTarget'),
      catch_up: str('', { enum: ['none', 'last'] }),
      owner: str('the user id whose rights its jobs run with'),
      status: str('`deleted` in the answer to DELETE', { enum: ['active', 'paused', 'deleted'] }),
      pause_reason: str('"" unless paused'),
      anchor: str('RFC 3339: fire times are computed after it'),
      last_fired: str('RFC 3339 of the last fire time, "" before the first'),
      resumed_at: str('RFC 3339, "" if never paused'),
      fired_count: int(),
      version: int(),
      created_at: time(),
      updated_at: time(),
      next_fire_times: arr(time(), 'the next 5 fire instants (empty while paused)'),
      as_of: ref('AsOf'),
    },
    ['id', 'project_id', 'name', 'cron', 'time_zone', 'target', 'catch_up', 'owner', 'status', 'fired_count', 'version'],
  ),
  ScheduleTarget: {
    description: '`{"run_cells": true}` (the project\'s SQL cells in document order) or a job template, with the rules of `POST /v1/jobs`',
    oneOf: [
      obj({ run_cells: { const: true } }, ['run_cells']),
      obj(
        {
          kind: str('', { enum: ['sql', 'script'] }),
          connection_id: str(),
          sql: str(),
          script: str(),
          language: str(),
          timeout_s: int(),
        },
        ['kind'],
      ),
    ],
  },
  Token: obj(
    {
      id: str(),
      name: str(),
      scopes: arr(str('', { enum: ['events:read', 'jobs:work', 'admin'] })),
      user_id: str(),
      created_by: str(),
      created_at: nullable(time()),
      expires_at: nullable(time('null: never expires')),
      last_used_at: nullable(time('to the minute')),
      expired: bool(),
    },
    ['id', 'name', 'scopes', 'user_id', 'created_at', 'expires_at', 'last_used_at', 'expired'],
  ),
  Backup: obj({
    id: int(),
    position: int('every event at or before it is in the backup'),
    chain_head: str('hash of the event at `position` ("" for an empty log)'),
    size_bytes: int(),
    files: int(),
    taken_at: time(),
    master_key_included: bool(),
  }),
  Event: obj(
    {
      id: str('event id (UUIDv7, or `<command id>.<n>` for a command with an Idempotency-Key)'),
      position: int('position in the global log', { minimum: 1 }),
      stream: str('e.g. `project-<id>`'),
      version: int('version within its stream', { minimum: 1 }),
      type: str('e.g. `project.created` (docs/events.md)'),
      schema: int('the payload\'s schema version', { minimum: 1 }),
      time: time('when it was committed'),
      actor: str('`user-<id>`, `system`, `anonymous`, …'),
      correlation_id: str('the request that caused it'),
      causation_id: str(),
      hash: str('hash chain: SHA-256 hex over the previous hash and this event'),
      metadata: obj({ client_address: str(), user_agent: str() }, [], { description: 'of the request that caused it' }),
      data: { type: 'object', description: 'the payload; its schema is in the event catalog (`GET /v1/schemas/events`)' },
    },
    ['id', 'position', 'stream', 'version', 'type', 'schema', 'time', 'actor', 'data', 'hash'],
    { description: 'One event envelope of the log.' },
  ),
  Health: obj(
    {
      status: str('', { enum: ['ok', 'unhealthy'] }),
      down: arr(str(), 'the core actors that are down'),
      store: obj({ code: str(), message: str() }, ['code', 'message'], { description: 'present when the store cannot write' }),
      position: int('the log head'),
    },
    ['status', 'down', 'position'],
  ),
  Readiness: obj(
    {
      status: str('', { enum: ['ready', 'catching_up', 'unhealthy'] }),
      head: int(),
      max_lag_positions: int(),
      down: arr(str(), 'when unhealthy'),
      store: obj({ code: str(), message: str() }, ['code', 'message']),
      relay: ref('Relay'),
    },
    ['status', 'head', 'max_lag_positions'],
  ),
  Relay: obj(
    {
      destination: str(),
      checkpoint: int(),
      lag_positions: int(),
      lag_seconds: num(),
      in_flight: int(),
      status: str(),
      error: str(),
    },
    undefined,
    { description: 'the Kafka relay' },
  ),
  AuditEntry: obj({
    position: int(),
    time: time(),
    actor: str(),
    stream: str(),
    entity: str('the entity id of the stream'),
    version: int(),
    type: str(),
    event_id: str(),
    correlation_id: str(),
    client_address: str(),
    user_agent: str(),
  }),
  EventPage: obj(
    {
      events: arr(ref('Event')),
      next: int('the `after` of the next page (the last position given, or `after` when empty)'),
      head: int('the log head now'),
    },
    ['events', 'next', 'head'],
  ),
};

const json = (schema, description = 'OK', headers) => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema } },
});
const errorResponse = (description, headers) => json(ref('Error'), description, { 'X-Request-Id': hdr('X-Request-Id'), ...headers });
const hdr = (name) => ({ $ref: `#/components/headers/${name}` });

const responses = {
  BadRequest: errorResponse('`invalid_argument`: a malformed body, parameter or header (`details` names it); or refused at the edge'),
  Unauthenticated: errorResponse('`unauthenticated`: no credential, or one that does not work', { 'WWW-Authenticate': hdr('WWW-Authenticate') }),
  Forbidden: errorResponse('`forbidden`: the caller may not (recorded as `security.access_denied`); a token without the scope (`details.missing_scope`); a cookie request from a foreign `Origin`'),
  NotFound: errorResponse('`not_found`: no such resource, or one the caller may not read'),
  Conflict: errorResponse('`version_conflict` (`details.current_version`), `already_exists` or `failed_precondition`'),
  Gone: errorResponse('`gone`'),
  PayloadTooLarge: errorResponse('`payload_too_large`: a body over 1 MiB (or the route\'s own limit)'),
  UnsupportedMediaType: errorResponse('`unsupported_media_type`: a body that is not `application/json`'),
  HeadersTooLarge: errorResponse('request headers too large (refused at the edge)'),
  PreconditionRequired: errorResponse('`precondition_required`: `If-Match` is required'),
  TooManyRequests: errorResponse('`too_many_requests`', { 'Retry-After': hdr('Retry-After') }),
  Internal: errorResponse('`internal`'),
  Unavailable: errorResponse('`unavailable`: a core part is down or the store cannot write; retry', { 'Retry-After': hdr('Retry-After') }),
  NotModified: { description: 'Not modified: the `If-None-Match` tag matches (no body)', headers: { ETag: hdr('ETag') } },
};

const headers = {
  ETag: { description: 'strong entity tag: `"<version>"` of an entity; of the body for lists', schema: { type: 'string' } },
  'X-Atrium-Position': { description: 'log position of the command\'s last event', schema: { type: 'string', pattern: '^[0-9]+$' } },
  Location: { description: 'the created resource', schema: { type: 'string' } },
  'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'string', pattern: '^[0-9]+$' } },
  'WWW-Authenticate': { description: '`Bearer`', schema: { type: 'string' } },
  'X-Request-Id': { description: 'the request\'s correlation id (the client\'s `X-Request-Id` when valid, else a new UUIDv7)', schema: { type: 'string' } },
  'Idempotency-Replayed': { description: '`true` on the stored answer of a repeated `Idempotency-Key`', schema: { type: 'string', enum: ['true'] } },
  'Set-Cookie': { description: 'the `atrium_session` cookie (set or cleared)', schema: { type: 'string' } },
};

const parameters = {
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    description: '1–255 visible ASCII characters, scoped to the caller: a retry answers the stored response (`Idempotency-Replayed: true`); the key on another request is 409 `already_exists`',
    schema: { type: 'string', minLength: 1, maxLength: 255 },
  },
  IfMatch: { name: 'If-Match', in: 'header', description: '`"<version>"` (or the bare version), or `*`', schema: { type: 'string' } },
  IfMatchRequired: { name: 'If-Match', in: 'header', required: true, description: '`"<version>"` (or the bare version), or `*`; 428 without', schema: { type: 'string' } },
  IfNoneMatch: { name: 'If-None-Match', in: 'header', description: 'entity tags; a match answers 304', schema: { type: 'string' } },
  AsOf: {
    name: 'as_of',
    in: 'query',
    description: 'time travel: a log position or an RFC 3339 time; the entity as it was then (404 if it did not exist)',
    schema: { type: 'string' },
  },
  After: { name: 'after', in: 'query', description: 'the last id (or position) seen: the page starts after it', schema: { type: 'string' } },
  Limit: { name: 'limit', in: 'query', description: 'items per page, 1–1000 (default 100)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
  Types: {
    name: 'types',
    in: 'query',
    description: 'comma separated event types; an entry may end in `*` (`job.*`)',
    schema: { type: 'string' },
    explode: false,
  },
  Streams: { name: 'streams', in: 'query', description: 'comma separated stream ids (`project-<id>`)', schema: { type: 'string' } },
  EventNames: {
    name: 'event_names',
    in: 'query',
    description: '`type` (default: `event: <type>`) or `message` (every event as `event: message`, so `EventSource.onmessage` fires)',
    schema: { type: 'string', enum: ['type', 'message'] },
  },
  LastEventId: {
    name: 'Last-Event-ID',
    in: 'header',
    description: 'the `id` (position) of the last event received: resume after it (an `EventSource` sends it when it reconnects)',
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
  Token: { name: 'token', in: 'query', description: 'the token, for browsers that cannot set headers (EventSource, WebSocket)', schema: { type: 'string' } },
};
const p = (name) => ({ $ref: `#/components/parameters/${name}` });
const pathParam = (name, description) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const query = (name, description, schema = { type: 'string' }) => ({ name, in: 'query', description, schema });

// ---- routes ------------------------------------------------------------------------
// Each: [method, path, {summary, tag, access ('auth' | 'open' | 'push'), body, params,
// ok: {status: response}, errors: [status…], etag, command, created}]
const ops = [];
function op(method, pathTemplate, o) {
  ops.push({ method, path: pathTemplate, ...o });
}

const entity = (name, description) => ({ 200: json(ref(name), description ?? 'OK') });
const body = (schema, required = true) => ({ required, content: { 'application/json': { schema } } });
const named = obj({ name: str('1–200 characters'), description: str() }, ['name']);

// Health and metrics (open).
op('GET', '/healthz', {
  tag: 'operations',
  summary: 'Liveness',
  access: 'open',
  ok: {
    200: json(ref('Health'), 'healthy'),
    503: json(ref('Health'), 'unhealthy: a core actor is down or the store cannot write', { 'Retry-After': hdr('Retry-After') }),
  },
});
op('GET', '/readyz', {
  tag: 'operations',
  summary: 'Readiness',
  access: 'open',
  ok: {
    200: json(ref('Readiness'), 'ready'),
    503: json(ref('Readiness'), 'not ready: projections catch up, or unhealthy', { 'Retry-After': hdr('Retry-After') }),
  },
});
op('GET', '/metrics', {
  tag: 'operations',
  summary: 'Prometheus metrics (text exposition format 0.0.4)',
  access: 'open',
  ok: { 200: { description: 'the metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
});
op('GET', '/v1/openapi.json', {
  tag: 'operations',
  summary: 'This document',
  access: 'open',
  ok: { 200: json(obj({ openapi: str('`3.1.0`'), info: { type: 'object' }, paths: { type: 'object' } }), 'the OpenAPI 3.1 document (docs/openapi.json)') },
});
op('GET', '/v1/schemas/events', {
  tag: 'events',
  summary: 'The event schema catalog',
  description: 'JSON Schemas of every event type and schema version (the catalog of docs/events.md as data): `{"envelope", "events": {"<type>": {"<version>": <schema>}}}`.',
  params: [query('type', 'one event type only (400 naming it when unknown)')],
  ok: { 200: json({ type: 'object' }, 'the catalog') },
});

// Sessions.
op('POST', '/v1/auth/login', {
  tag: 'auth',
  summary: 'Log in',
  description: 'Without `cookie`: the token is in the answer. With `"cookie": true` (the console; Origin-checked) the token goes into an HttpOnly `atrium_session` cookie only. Every refused login is recorded as `security.login_failed`.',
  access: 'open',
  body: body(obj({ username: str(), password: str('', { format: 'password' }), cookie: bool('put the token in the `atrium_session` cookie') }, ['username', 'password'])),
  ok: {
    200: json(
      obj({ token: str('the session token (absent with `cookie`)'), user: obj({ id: str(), username: str() }), expires_at: int('Unix seconds') }, ['user', 'expires_at']),
      'logged in',
      { 'Set-Cookie': hdr('Set-Cookie') },
    ),
  },
  errors: [401, 403, 429],
});
op('POST', '/v1/auth/logout', {
  tag: 'auth',
  summary: 'End the caller\'s session',
  ok: { 200: json(obj({ status: str('', { enum: ['logged_out'] }) }), 'logged out', { 'Set-Cookie': hdr('Set-Cookie') }) },
});
op('GET', '/v1/auth/session', {
  tag: 'auth',
  summary: 'Who the caller is',
  ok: {
    200: json(
      obj(
        {
          user: { allOf: [ref('User'), obj({ groups: arr(str()) }, ['groups'])] },
          via: str('how the request authenticated', { enum: ['bearer', 'cookie', 'token'] }),
          expires_at: int('Unix seconds; absent for a token that never expires'),
          token_id: str('for an API token'),
        },
        ['user', 'via'],
      ),
    ),
  },
});

// Users.
op('POST', '/v1/users', {
  tag: 'users',
  summary: 'Create a user (admin)',
  body: body(obj({ username: str(), email: str(), password: str('', { format: 'password' }), role: ref('Role') }, ['username', 'email', 'password'])),
  created: 'User',
  errors: [409],
});
op('GET', '/v1/users', { tag: 'users', summary: 'List users', list: ['users', 'User'] });
op('GET', '/v1/users/{id}', { tag: 'users', summary: 'One user', get: 'User' });
op('PATCH', '/v1/users/{id}', {
  tag: 'users',
  summary: 'Change a user: password, roles, disable',
  description: 'Each given member is its own command, in the order `password`, `grant_role`, `revoke_role`, `disabled`.',
  body: body(
    obj({ password: str(), current_password: str('required to change one\'s own password'), grant_role: ref('Role'), revoke_role: ref('Role'), disabled: { const: true } }, []),
  ),
  command: 'User',
  errors: [409],
});
op('POST', '/v1/users/{id}/disable', { tag: 'users', summary: 'Disable a user (admin); their sessions end', command: 'User', errors: [409] });

// Groups.
op('POST', '/v1/groups', { tag: 'groups', summary: 'Create a group', body: body(named), created: 'Group' });
op('GET', '/v1/groups', { tag: 'groups', summary: 'List groups', list: ['groups', 'Group'] });
op('GET', '/v1/groups/{id}', { tag: 'groups', summary: 'One group', get: 'Group' });
op('POST', '/v1/groups/{id}/members', {
  tag: 'groups',
  summary: 'Add a member (a user or a nested group)',
  body: body(obj({ user_id: str(), group_id: str() }, [], { description: 'exactly one of `user_id`, `group_id`' })),
  command: 'Group',
  errors: [409],
});
op('DELETE', '/v1/groups/{id}/members/{member}', { tag: 'groups', summary: 'Remove a member', command: 'Group', errors: [409] });

// Projects.
op('POST', '/v1/projects', { tag: 'projects', summary: 'Create a project', body: body(named), created: 'Project' });
op('GET', '/v1/projects', { tag: 'projects', summary: 'List the projects the caller may read', list: ['projects', 'Project'] });
op('GET', '/v1/projects/{id}', { tag: 'projects', summary: 'One project', get: 'Project' });
op('PATCH', '/v1/projects/{id}', {
  tag: 'projects',
  summary: 'Rename or redescribe a project',
  ifMatch: 'required',
  body: body(obj({ name: str(), description: str() }, [])),
  command: 'Project',
  errors: [409, 428],
});
op('DELETE', '/v1/projects/{id}', { tag: 'projects', summary: 'Archive a project', ifMatch: 'optional', command: 'Project', errors: [409] });
op('POST', '/v1/projects/{id}/members', {
  tag: 'projects',
  summary: 'Share a project',
  body: body(obj({ user_id: str(), group_id: str(), role: str('`owner`, `editor` or `viewer`') }, ['role'])),
  command: 'Project',
  errors: [409],
});
op('DELETE', '/v1/projects/{id}/members/{member}', { tag: 'projects', summary: 'Unshare a project (a user or group id)', command: 'Project', errors: [409] });
op('GET', '/v1/projects/{id}/events', {
  tag: 'events',
  summary: 'The events of a project, for anyone who may read it',
  description: 'The events of the project\'s streams (the project and its jobs, schedules, …) in log order, the shape of `GET /v1/events`.',
  params: [p('After'), query('limit', 'events per page, 1–1000 (default 100)', { type: 'integer', minimum: 1, maximum: 1000 }), p('Types'), p('Streams')],
  ok: { 200: json(ref('EventPage')) },
});
op('GET', '/v1/projects/{id}/events/stream', {
  tag: 'events',
  summary: 'The events of a project as Server-Sent Events',
  access: 'push',
  sse: true,
  params: [query('after', 'resume after this position (or `Last-Event-ID`)', { type: 'integer', minimum: 0 }), p('Types'), p('Streams'), p('EventNames'), p('Token'), p('LastEventId')],
  errors: [429],
});

// Cells.
op('POST', '/v1/projects/{id}/cells', {
  tag: 'cells',
  summary: 'Add a cell',
  body: body(obj({ kind: str('`markdown`, `sql` or `script`'), content: str(), after: str('the cell to insert after ("" or absent: first)'), connection_id: str() }, ['kind'])),
  ok: { 201: json(ref('Cell'), 'the new cell', { ETag: hdr('ETag') }) },
  errors: [409],
});
op('GET', '/v1/projects/{id}/cells', {
  tag: 'cells',
  summary: 'The cells of a project, in document order',
  params: [p('AsOf')],
  ok: { 200: json(obj({ cells: arr(ref('Cell')) }, ['cells']), 'OK', { ETag: hdr('ETag') }) },
  etag: true,
});
op('GET', '/v1/projects/{id}/cells/{cell_id}', {
  tag: 'cells',
  summary: 'One cell',
  params: [p('AsOf')],
  ok: { 200: json(ref('Cell'), 'OK', { ETag: hdr('ETag') }) },
  etag: true,
});
op('PATCH', '/v1/projects/{id}/cells/{cell_id}', {
  tag: 'cells',
  summary: 'Edit a cell (`content`, `base_version`, `op_id`) or move it (`after`)',
  body: body(obj({ content: str(), base_version: int(), op_id: str(), after: str(), kind: str(), connection_id: str() }, [])),
  ok: { 200: json(ref('Cell'), 'the cell after the change', { ETag: hdr('ETag'), 'Idempotency-Replayed': hdr('Idempotency-Replayed') }) },
  errors: [409],
});
op('DELETE', '/v1/projects/{id}/cells/{cell_id}', {
  tag: 'cells',
  summary: 'Remove a cell',
  ok: { 200: json(obj({ cells: arr(ref('Cell')) }), 'the cells left', { ETag: hdr('ETag') }) },
  errors: [409],
});
op('POST', '/v1/projects/{id}/cells/{cell_id}/run', {
  tag: 'cells',
  summary: 'Run a cell (submits a job)',
  body: body(obj({ timeout_s: int() }, []), false),
  ok: { 202: json(ref('Job'), 'the job submitted', { ETag: hdr('ETag'), 'X-Atrium-Position': hdr('X-Atrium-Position') }) },
  errors: [409],
});
op('POST', '/v1/projects/{id}/cells/{cell_id}/changes', {
  tag: 'cells',
  summary: 'Send co-editing updates (CodeMirror collab)',
  body: body(obj({ version: int(), client_id: str(), updates: arr(obj({ changes: anyJson('a ChangeSet as JSON') }, ['changes']), '', { minItems: 1, maxItems: 256 }) })),
  ok: { 200: json(obj({ version: int(), position: int() }), 'accepted', { ETag: hdr('ETag'), 'X-Atrium-Position': hdr('X-Atrium-Position') }) },
  errors: [409, 410],
});
op('GET', '/v1/projects/{id}/cells/{cell_id}/updates', {
  tag: 'cells',
  summary: 'Co-editing updates since a version',
  params: [query('since', 'a cell version (required)', { type: 'integer', minimum: 0 })],
  ok: { 200: json(obj({ version: int(), updates: arr(obj({ version: int(), changes: anyJson(), client_id: str() })) })) },
  errors: [410],
});

// Connections.
op('POST', '/v1/connections', {
  tag: 'connections',
  summary: 'Create a data connection (credentials go to the vault)',
  body: body(obj({ name: str(), driver: str('`postgres` or `sqlite`'), params: { type: 'object' }, credentials: { type: 'object' } }, ['name', 'driver'])),
  created: 'Connection',
});
op('GET', '/v1/connections', { tag: 'connections', summary: 'List the connections the caller may use', list: ['connections', 'Connection'] });
op('GET', '/v1/connections/{id}', { tag: 'connections', summary: 'One connection', get: 'Connection' });
op('PATCH', '/v1/connections/{id}', {
  tag: 'connections',
  summary: 'Change a connection',
  body: body(obj({ name: str(), params: { type: 'object' }, credentials: { type: 'object' } }, [])),
  command: 'Connection',
  errors: [409],
});
op('DELETE', '/v1/connections/{id}', { tag: 'connections', summary: 'Delete a connection', command: 'Connection', errors: [409] });
op('POST', '/v1/connections/{id}/test', {
  tag: 'connections',
  summary: 'Test a connection (really connects; recorded as `connection.tested`)',
  ok: {
    200: json(
      obj(
        {
          ok: bool(),
          error: str('"" when ok, else the failure\'s class (`auth`, `network`, `timeout`, …)'),
          message: str(),
          latency_ms: int(),
          server_version: str(),
          detail: str('admins only, on a failure: the driver\'s message'),
          connection: ref('Connection'),
        },
        ['ok', 'error', 'message', 'latency_ms', 'connection'],
      ),
      'tested (recorded as `connection.tested`)',
    ),
  },
  errors: [409],
});
op('POST', '/v1/connections/{id}/members', {
  tag: 'connections',
  summary: 'Share a connection',
  body: body(obj({ user_id: str(), group_id: str(), role: str('`owner` or `user`') }, [])),
  command: 'Connection',
  errors: [409],
});
op('DELETE', '/v1/connections/{id}/members/{member}', { tag: 'connections', summary: 'Unshare a connection', command: 'Connection', errors: [409] });

// Jobs and results.
op('POST', '/v1/jobs', {
  tag: 'jobs',
  summary: 'Submit a job',
  body: body(
    obj(
      {
        project_id: str(),
        kind: str('`sql` or `script`'),
        connection_id: str(),
        sql: str(),
        script: str(),
        language: str(),
        timeout_s: int(),
        max_attempts: int(),
      },
      ['project_id', 'kind'],
    ),
  ),
  created: 'Job',
  errors: [409],
});
op('GET', '/v1/jobs', {
  tag: 'jobs',
  summary: 'List jobs',
  params: [query('project', 'only this project\'s jobs'), query('status', 'only jobs in this status')],
  list: ['jobs', 'Job'],
});
op('GET', '/v1/jobs/{id}', { tag: 'jobs', summary: 'One job', get: 'Job' });
op('POST', '/v1/jobs/{id}/cancel', {
  tag: 'jobs',
  summary: 'Ask a job to stop',
  body: body(obj({ reason: str() }, []), false),
  command: 'Job',
  errors: [409],
});
op('GET', '/v1/jobs/{id}/result', {
  tag: 'jobs',
  summary: 'One page of a finished job\'s result table',
  params: [
    query('offset', 'the first row, from 0 (default 0)', { type: 'integer', minimum: 0 }),
    query('limit', 'rows per page, 1–10,000 (default 1,000)', { type: 'integer', minimum: 1, maximum: 10000 }),
  ],
  ok: {
    200: json(
      obj({
        columns: arr(obj({ name: str(), type: str('`bool`, `int`, `float`, `numeric`, `text`, `bytes`, `date`, `time`, `timestamp`, `timestamptz`, `json`, `unknown`') })),
        rows: arr(arr({ type: ['string', 'number', 'boolean', 'null'] })),
        total_rows: int(),
        truncated: bool(),
        next: nullable(int('the `offset` of the next page')),
      }),
    ),
  },
  errors: [409, 410],
});
op('GET', '/v1/jobs/{id}/result.csv', {
  tag: 'jobs',
  summary: 'The whole result table as CSV (RFC 4180), streamed',
  ok: { 200: { description: 'the table', content: { 'text/csv': { schema: { type: 'string' } } } } },
  errors: [409, 410],
});
op('GET', '/v1/jobs/{id}/log', {
  tag: 'jobs',
  summary: 'The captured log (at most 1 MiB)',
  ok: { 200: { description: 'the log', content: { 'text/plain': { schema: { type: 'string' } } } } },
  errors: [409, 410],
});

// Schedules.
const scheduleBody = obj(
  {
    name: str(),
    project_id: str(),
    cron: str(),
    time_zone: str('IANA zone (default `UTC`)'),
    target: ref('ScheduleTarget'),
    catch_up: str('`none` (default) or `last`', { enum: ['none', 'last'] }),
  },
  ['name', 'project_id', 'cron', 'target'],
);
op('POST', '/v1/schedules', { tag: 'schedules', summary: 'Create a schedule', body: body(scheduleBody), created: 'Schedule' });
op('GET', '/v1/schedules', { tag: 'schedules', summary: 'List schedules', params: [query('project_id', 'only this project\'s')], list: ['schedules', 'Schedule'] });
op('GET', '/v1/schedules/{id}', { tag: 'schedules', summary: 'One schedule, with `next_fire_times`', get: 'Schedule' });
op('PATCH', '/v1/schedules/{id}', {
  tag: 'schedules',
  summary: 'Change a schedule',
  ifMatch: 'optional',
  body: body(obj({ name: str(), cron: str(), time_zone: str(), target: ref('ScheduleTarget'), catch_up: str('', { enum: ['none', 'last'] }) }, [])),
  command: 'Schedule',
  errors: [409],
});
op('DELETE', '/v1/schedules/{id}', { tag: 'schedules', summary: 'Delete a schedule', command: 'Schedule', errors: [409] });
op('POST', '/v1/schedules/{id}/pause', { tag: 'schedules', summary: 'Pause a schedule', command: 'Schedule', errors: [409] });
op('POST', '/v1/schedules/{id}/resume', { tag: 'schedules', summary: 'Resume a schedule', command: 'Schedule', errors: [409] });
op('GET', '/v1/schedules/{id}/runs', {
  tag: 'schedules',
  summary: 'The runs of a schedule, oldest first',
  params: [query('after', 'a fire time: the page starts after it'), p('Limit')],
  ok: {
    200: json(
      page(
        'runs',
        obj({
          fire_time: time(),
          catch_up: bool(),
          fired_at: anyJson(),
          job_ids: arr(str()),
          jobs: arr(obj({ id: str(), status: str(), error: anyJson() }, ['id', 'status'])),
          outcome: str('`none`, `running`, `succeeded` or `failed`'),
        }, ['fire_time', 'job_ids', 'outcome']),
      ),
    ),
  },
});

// Service accounts and tokens.
const tokenBody = obj(
  {
    name: str('1–100 bytes'),
    scopes: arr(str('', { enum: ['events:read', 'jobs:work', 'admin'] }), '', { minItems: 1, maxItems: 8 }),
    expires_in_s: nullable(int('1–316224000; absent or null: never', { minimum: 1, maximum: 316224000 })),
  },
  ['name', 'scopes'],
);
const createdToken = { allOf: [ref('Token'), obj({ token: str('the secret, shown only now (`atr_` + 64 hex)') }, ['token'])] };
op('POST', '/v1/service-accounts', {
  tag: 'tokens',
  summary: 'Create a service account (admin)',
  body: body(obj({ name: str(), description: str(), role: ref('Role') }, ['name'])),
  created: 'User',
  errors: [409],
});
op('GET', '/v1/service-accounts', { tag: 'tokens', summary: 'List service accounts', list: ['service_accounts', 'User'] });
op('GET', '/v1/service-accounts/{id}', { tag: 'tokens', summary: 'One service account', get: 'User' });
op('POST', '/v1/service-accounts/{id}/disable', { tag: 'tokens', summary: 'Disable a service account (its tokens stop working)', command: 'User', errors: [409] });
op('POST', '/v1/service-accounts/{id}/tokens', {
  tag: 'tokens',
  summary: 'Create a token for a service account',
  body: body(tokenBody),
  ok: { 201: json(createdToken, 'created') },
  errors: [409],
});
op('GET', '/v1/service-accounts/{id}/tokens', { tag: 'tokens', summary: 'A service account\'s tokens', ok: { 200: json(obj({ tokens: arr(ref('Token')) })) } });
op('POST', '/v1/tokens', { tag: 'tokens', summary: 'Create an API token for oneself', body: body(tokenBody), ok: { 201: json(createdToken, 'created') }, errors: [409] });
op('GET', '/v1/tokens', { tag: 'tokens', summary: 'The caller\'s tokens (all, for admins)', ok: { 200: json(obj({ tokens: arr(ref('Token')) })) } });
op('DELETE', '/v1/tokens/{id}', {
  tag: 'tokens',
  summary: 'Revoke a token',
  ok: { 200: json(obj({ id: str(), revoked: { const: true } }), 'revoked') },
});

// Workers.
op('POST', '/v1/workers/claim', {
  tag: 'workers',
  summary: 'Claim a job (long poll)',
  body: body(obj({ worker: str('1–64 of `A-Za-z0-9._-`'), slots: int(), slots_free: int(), wait_s: int() }, ['worker'])),
  ok: {
    200: json(
      obj({
        lease_id: str(),
        expires_at: time('the lease ends unless heartbeats renew it'),
        lease_ms: int(),
        job: obj(
          {
            id: str(),
            project_id: str(),
            kind: str(),
            language: str(),
            source: str('the SQL or the script'),
            driver: str(),
            params: { type: 'object' },
            credentials: anyJson('the connection\'s credentials, from the vault'),
            attempt: int(),
            timeout_s: int(),
            max_attempts: int(),
          },
          ['id', 'project_id', 'kind', 'source', 'attempt', 'timeout_s'],
        ),
      }),
      'a job with its lease (and the connection\'s credentials)',
    ),
    204: { description: 'no job within `wait_s`' },
  },
  errors: [409],
});
op('POST', '/v1/workers/leases/{lease}/heartbeat', {
  tag: 'workers',
  summary: 'Keep a lease',
  body: body(obj({ rows: int(), bytes: int(), elapsed_ms: int(), percent: int(), message: str() }, []), false),
  ok: { 200: json(obj({ cancel: bool(), expires_at: time() })) },
  errors: [409, 410],
});
op('POST', '/v1/workers/leases/{lease}/result', {
  tag: 'workers',
  summary: 'Upload a batch of result rows',
  body: body(obj({ seq: int(), columns: arr(obj({ name: str(), type: str() })), rows: arr(arr(nullable(str()))), log: str() }, ['seq'])),
  ok: { 200: json(obj({ next_seq: int(), duplicate: bool(), rows: int(), full: bool() })) },
  errors: [409, 410],
});
op('POST', '/v1/workers/leases/{lease}/complete', {
  tag: 'workers',
  summary: 'Complete a lease',
  body: body(obj({ outcome: str('`succeeded`, `failed` or `interrupted`'), error: str(), sqlstate: str(), batches: int(), truncated: bool(), duration_ms: int() }, ['outcome'])),
  ok: { 200: json(obj({ completed: { const: true }, lease_id: str() }, ['completed'])) },
  errors: [409, 410],
});
op('GET', '/v1/workers', {
  tag: 'workers',
  summary: 'Workers heard from within the hour',
  ok: {
    200: json(
      obj({
        workers: arr(
          obj({
            name: str(),
            slots: int(),
            slots_free: int(),
            last_heartbeat: time(),
            leases: arr(obj({ lease_id: str(), job_id: str(), attempt: int(), expires_at: time() })),
          }),
        ),
      }),
    ),
  },
});

// Containers.
const containerBody = obj(
  {
    name: str('`[a-z0-9][a-z0-9_.-]{0,62}`'),
    runtime: str('`process` or `docker`'),
    image: str(),
    command: arr(str()),
    env: { type: 'object', additionalProperties: { type: 'string' } },
    ports: arr(int()),
    limits: anyJson(),
    restart: str(),
    health: anyJson(),
  },
  ['name'],
);
op('POST', '/v1/containers', { tag: 'containers', summary: 'Declare a container (admin)', body: body(containerBody), created: 'Container', errors: [409] });
op('GET', '/v1/containers', { tag: 'containers', summary: 'List containers', list: ['containers', 'Container'] });
op('GET', '/v1/containers/{id}', { tag: 'containers', summary: 'One container', get: 'Container' });
op('PATCH', '/v1/containers/{id}', {
  tag: 'containers',
  summary: 'Change a container\'s spec (rolls a running one)',
  body: body(obj({ image: str(), command: arr(str()), env: { type: 'object' }, ports: arr(int()), limits: anyJson(), restart: str(), health: anyJson(), runtime: str() }, [])),
  command: 'Container',
  errors: [409],
});
op('DELETE', '/v1/containers/{id}', { tag: 'containers', summary: 'Remove a container', command: 'Container', errors: [409] });
op('POST', '/v1/containers/{id}/start', { tag: 'containers', summary: 'Start a container', command: 'Container', errors: [409] });
op('POST', '/v1/containers/{id}/stop', { tag: 'containers', summary: 'Stop a container', command: 'Container', errors: [409] });
op('GET', '/v1/containers/{id}/logs', {
  tag: 'containers',
  summary: 'A container\'s output (text, or SSE with `follow=1`)',
  params: [query('tail', 'last lines, at most 10,000 (default 100)', { type: 'integer', minimum: 0, maximum: 10000 }), query('follow', '`0`, `1`, `true` or `false`', { type: 'string', enum: ['0', '1', 'true', 'false'] })],
  ok: {
    200: {
      description: 'the last lines (`text/plain`), or with `follow=1` a stream of them (`text/event-stream`: `data: <line>`; `event: end` when removed, `event: error` on a runtime failure)',
      content: { 'text/plain': { schema: { type: 'string' } }, 'text/event-stream': { schema: { type: 'string' } } },
    },
  },
  errors: [429],
});

// Audit.
const auditFilters = [
  query('actor', 'who acted (`user-<id>`, `system`, …)'),
  query('stream', 'one stream id'),
  query('entity', 'an entity id (every stream of it)'),
  query('type', 'an event type'),
  query('since', 'RFC 3339 time, inclusive'),
  query('until', 'RFC 3339 time, exclusive'),
];
op('GET', '/v1/audit', {
  tag: 'audit',
  summary: 'The audit log, paged by position both ways',
  params: [...auditFilters, query('after', 'a position'), query('before', 'a position'), query('order', '`asc` or `desc`', { type: 'string', enum: ['asc', 'desc'] }), p('Limit')],
  ok: {
    200: json(
      obj({
        entries: arr(ref('AuditEntry')),
        next: nullable(int('continue with `after=` (`before=` descending); null at the end')),
        prev: nullable(int('the other way; null at the start')),
        order: str('', { enum: ['asc', 'desc'] }),
      }),
    ),
  },
});
op('GET', '/v1/audit/export', {
  tag: 'audit',
  summary: 'The whole filtered audit log in one body',
  params: [...auditFilters, query('after', 'a position'), query('before', 'a position'), query('order', '`asc` or `desc`', { type: 'string', enum: ['asc', 'desc'] }), query('format', '`jsonl` (default) or `csv`', { type: 'string', enum: ['jsonl', 'csv'] })],
  ok: {
    200: {
      description: 'JSON Lines or CSV',
      headers: {
        'X-Audit-Count': { description: 'entries in the body', schema: { type: 'string', pattern: '^[0-9]+$' } },
        'X-Audit-Truncated': { description: '`true` when the export stopped at its limit', schema: { type: 'string' } },
        'X-Audit-Next': { description: 'with `X-Audit-Truncated`: continue with `after=` (`before=` descending)', schema: { type: 'string' } },
      },
      content: { 'application/x-ndjson': { schema: { type: 'string' } }, 'text/csv': { schema: { type: 'string' } } },
    },
  },
});
op('GET', '/v1/audit/verify', {
  tag: 'audit',
  summary: 'Check the log\'s hash chain',
  ok: {
    200: json(
      obj(
        {
          ok: bool(),
          count: int('events checked'),
          last_hash: str(),
          broken_at: int('when not ok: the first position that does not verify'),
          reason: str('when not ok'),
        },
        ['ok', 'count', 'last_hash'],
      ),
      'the check\'s result (200 whether or not the chain holds)',
    ),
  },
});

// The log.
op('GET', '/v1/events', {
  tag: 'events',
  summary: 'The global log (admins, auditors, `events:read` tokens)',
  params: [query('after', 'a position (default 0)', { type: 'integer', minimum: 0 }), query('limit', 'events per page, 1–1000 (default 100)', { type: 'integer', minimum: 1, maximum: 1000 }), p('Types'), p('Streams')],
  ok: { 200: json(ref('EventPage')) },
});
op('GET', '/v1/events/stream', {
  tag: 'events',
  summary: 'The global log as Server-Sent Events',
  description: 'Each event as `id: <position>`, `event: <type>` (or `message` with `?event_names=message`), `data: <event JSON>`. Resumes after `after` or `Last-Event-ID`; a consumer that cannot keep up gets `event: error` (`slow_consumer`, `resume_after`) and the stream ends.',
  access: 'push',
  sse: true,
  params: [query('after', 'resume after this position (or `Last-Event-ID`)', { type: 'integer', minimum: 0 }), p('Types'), p('Streams'), p('EventNames'), p('Token'), p('LastEventId')],
  errors: [429],
});
op('GET', '/v1/streams/{stream}', {
  tag: 'events',
  summary: 'One stream\'s events',
  params: [query('from_version', 'first version (default 1)', { type: 'integer', minimum: 0 }), query('limit', 'events per page', { type: 'integer', minimum: 1, maximum: 1000 }), p('AsOf')],
  ok: { 200: json(obj({ stream: str(), events: arr(ref('Event')), next: { type: ['integer', 'null'] } })) },
});
op('GET', '/v1/ws', {
  tag: 'events',
  summary: 'WebSocket (upgrade): subscriptions, commands, presence',
  description: 'The protocol is in docs/realtime.md and the AsyncAPI document. Without an upgrade: 426.',
  access: 'push',
  params: [p('Token')],
  ok: {
    101: { description: 'Switching Protocols: the WebSocket' },
    426: errorResponse('Upgrade Required: not a WebSocket handshake (or a version other than 13)'),
  },
  errors: [429],
});

// Admin.
op('GET', '/v1/admin/projections', {
  tag: 'operations',
  summary: 'Projection checkpoints, lag and status',
  ok: {
    200: json(
      obj({
        head: int(),
        ready: bool(),
        projections: arr(obj({ name: str(), checkpoint: int(), lag_positions: int(), lag_ms: int(), status: str(), error: str(), slot: int('the slot serving (0 or 1)'), rebuild_checkpoint: nullable(int('while rebuilding')) })),
        relay: { oneOf: [{ type: 'null' }, ref('Relay')], description: 'the Kafka relay, or null without one' },
      }),
    ),
  },
});
op('POST', '/v1/admin/projections/{name}/rebuild', {
  tag: 'operations',
  summary: 'Rebuild a projection online',
  ok: { 202: json(obj({ projection: str(), status: str('', { enum: ['rebuilding'] }) }), 'started') },
  errors: [409],
});
op('POST', '/v1/admin/backups', {
  tag: 'operations',
  summary: 'Take an online backup',
  ok: { 201: json(ref('Backup'), 'taken', { Location: hdr('Location') }) },
  errors: [409],
});
op('GET', '/v1/admin/backups', { tag: 'operations', summary: 'List backups, oldest first', ok: { 200: json(obj({ backups: arr(ref('Backup')) })) } });
op('GET', '/v1/admin/backups/{id}', { tag: 'operations', summary: 'One backup', ok: { 200: json(ref('Backup')) } });

// ---- assembly ----------------------------------------------------------------------
const errorRef = {
  304: 'NotModified',
  400: 'BadRequest',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Gone',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  428: 'PreconditionRequired',
  429: 'TooManyRequests',
  431: 'HeadersTooLarge',
  500: 'Internal',
  503: 'Unavailable',
};

const opId = (method, t) =>
  method.toLowerCase() +
  t
    .replace(/^\/v1/, '')
    .replace(/\.json$/, 'Json')
    .replace(/\.csv$/, 'Csv')
    .split('/')
    .filter(Boolean)
    .map((s) => (s.startsWith('{') ? `By${s.slice(1, -1)}` : s))
    .map((s) => s.replace(/[-_](.)/g, (_, c) => c.toUpperCase()))
    .map((s) => s[0].toUpperCase() + s.slice(1))
    .join('');

const commandHeaders = { ETag: hdr('ETag'), 'X-Atrium-Position': hdr('X-Atrium-Position'), 'Idempotency-Replayed': hdr('Idempotency-Replayed') };
const security = {
  auth: [{ bearer: [] }, { session: [] }],
  push: [{ bearer: [] }, { queryToken: [] }, { session: [] }],
  open: [],
};

const paths = {};
for (const o of ops) {
  const access = o.access ?? 'auth';
  const params = [];
  for (const m of o.path.matchAll(/\{([^}]+)\}/g)) params.push(pathParam(m[1], { id: 'the id', cell_id: 'the cell id', member: 'a user or group id', lease: 'the lease id (a UUID)', stream: 'a stream id', name: 'a projection name' }[m[1]] ?? m[1]));
  if (o.get) params.push(p('AsOf'));
  if (o.list) params.push(p('After'), p('Limit'));
  if (o.params) params.push(...o.params);
  if (o.method === 'GET') params.push(p('IfNoneMatch'));
  if (['POST', 'PATCH', 'DELETE'].includes(o.method) && access !== 'open') params.push(p('IdempotencyKey'));
  if (o.ifMatch === 'required') params.push(p('IfMatchRequired'));
  if (o.ifMatch === 'optional') params.push(p('IfMatch'));

  let ok = o.ok;
  if (o.get) ok = { 200: json(ref(o.get), 'OK', { ETag: hdr('ETag') }) };
  if (o.list) ok = { 200: json(page(o.list[0], ref(o.list[1])), 'a page', { ETag: hdr('ETag') }) };
  if (o.created) ok = { 201: json(ref(o.created), 'created', { ...commandHeaders, Location: hdr('Location') }) };
  if (o.command) ok = { 200: json(ref(o.command), 'the entity after the command', commandHeaders) };
  if (o.sse) {
    ok = {
      200: {
        description: 'Server-Sent Events: `id: <position>`, `event: <type>` (or `message`), `data: <event JSON>`; a last `event: error` (`{code, message, resume_after}`) when the server ends the stream',
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      },
    };
  }
  const statuses = new Set([400, 413, 431, 500, 503, ...(o.errors ?? [])]);
  if (access !== 'open') statuses.add(401).add(403);
  // 404: a path id, or an id in the body, that does not exist or the caller may not read.
  if (o.path.includes('{') || access !== 'open') statuses.add(404);
  // A body that is not JSON (any route that reads one), and conditional GETs (RFC 9110/9111).
  if (o.body || o.method === 'POST' || o.method === 'PATCH') statuses.add(415);
  if (o.method === 'GET' && !o.sse && o.path !== '/v1/ws') statuses.add(304);
  if (o.method === 'POST' || o.method === 'PATCH' || o.method === 'DELETE') statuses.add(409);
  const resp = { ...ok };
  for (const s of [...statuses].sort()) if (!(s in resp)) resp[s] = { $ref: `#/components/responses/${errorRef[s]}` };

  const operation = {
    operationId: opId(o.method, o.path),
    tags: [o.tag],
    summary: o.summary,
    ...(o.description ? { description: o.description } : {}),
    ...(params.length ? { parameters: params } : {}),
    ...(o.body ? { requestBody: o.body } : {}),
    responses: Object.fromEntries(Object.entries(resp).sort((a, b) => String(a[0]).localeCompare(String(b[0])))),
    security: security[access],
  };
  paths[o.path] ??= {};
  paths[o.path][o.method.toLowerCase()] = operation;
}
const sortedPaths = Object.fromEntries(Object.entries(paths).sort((a, b) => a[0].localeCompare(b[0])));

const doc = {
  openapi: '3.1.0',
  info: {
    title: 'Atrium HTTP API',
    version: '1',
    summary: 'Projects, notebooks, data connections, jobs, schedules, containers and an audited event log',
    description: [
      'The HTTP API of `atriumd` (served at `GET /v1/openapi.json`; the reference pages are docs/api.md and docs/design.md).',
      '',
      '**Conventions.** JSON bodies (`Content-Type: application/json`). Every error is `{"error":{"code","message","details"}}` (`#/components/schemas/Error`). Lists page with `after` and `limit` and answer `next` (null on the last page). Entity reads and command answers carry `ETag: "<version>"`; command answers `X-Atrium-Position`; creations 201 with `Location`. Every POST, PATCH and DELETE may carry `Idempotency-Key`. Every answer carries `Date`, `X-Request-Id` and the browser security headers.',
      '',
      '**Methods.** `HEAD` is answered on every `GET` route (the same headers, no body) and `OPTIONS` on every path (the allowed methods; CORS preflights for configured origins); neither is listed per path. Another method on a known path is 405 with `Allow`; an unknown path is 404 (the error shape).',
      '',
      '**Credentials**, in this order: `Authorization: Bearer <token>` (a login session or an API token `atr_…`); on the push routes (`/v1/ws`, the SSE feeds) `?token=`; the `atrium_session` cookie of the web console (cookie requests that change state must carry this server\'s `Origin`). API tokens reach only the routes their scopes cover.',
      '',
      'Paths outside `/v1` (and outside `/healthz`, `/readyz`, `/metrics`) are the web console\'s files, not described here.',
    ].join('\n'),
    license: { name: 'Proprietary', identifier: 'LicenseRef-Atrium' },
    contact: { name: 'Atrium' },
  },
  servers: [{ url: 'http://127.0.0.1:8080', description: 'the default `--listen` address' }],
  // Not routes of the API: GET and HEAD of any other path outside `/v1` answer the web
  // console's files (docs/api.md, "The console's files"); tests/api/validate-recorded.mjs
  // accepts 200 and 304 of any type there, and 404 in the error shape.
  'x-atrium-console-files': {
    description: 'GET and HEAD of a path outside `/v1` (and outside the routes above) answer the web console\'s files from memory (any content type, ETag, 304); other paths and methods there answer 404 in the error shape.',
    outside: ['/v1/', '/healthz', '/readyz', '/metrics'],
  },
  security: security.auth,
  tags: [
    ['auth', 'Logging in and out, the caller'],
    ['users', 'People (admins manage them)'],
    ['groups', 'Groups of users (nested)'],
    ['projects', 'Projects and their sharing'],
    ['cells', 'Notebook cells and co-editing'],
    ['connections', 'Data connections (credentials in the vault)'],
    ['jobs', 'Jobs and their results'],
    ['schedules', 'Cron schedules of jobs'],
    ['tokens', 'Service accounts and API tokens'],
    ['workers', 'Remote workers and their leases'],
    ['containers', 'Declared containers'],
    ['audit', 'The audit log'],
    ['events', 'The event log, its feeds and the WebSocket'],
    ['operations', 'Health, metrics, projections, backups, this document'],
  ].map(([name, description]) => ({ name, description })),
  paths: sortedPaths,
  components: {
    schemas,
    responses,
    parameters,
    headers,
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'a login session token (`POST /v1/auth/login`) or an API token (`atr_…`)' },
      session: { type: 'apiKey', in: 'cookie', name: 'atrium_session', description: 'the web console\'s HttpOnly session cookie (`POST /v1/auth/login` with `"cookie": true`)' },
      queryToken: { type: 'apiKey', in: 'query', name: 'token', description: 'the token in the query: push routes only (`/v1/ws`, the SSE feeds)' },
    },
  },
};

/** Every `t.add({"METHOD", "/path", …})` of the route table (adapters/http/controllers). */
function routeTable() {
  const dir = path.join(here, '../../adapters/http/controllers');
  const out = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.cpp'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/\bt\.add\(\s*\{\s*"([A-Z]+)",\s*"([^"]+)"/g)) out.push(`${m[1]} ${m[2]}`);
  }
  return out;
}

const text = `${JSON.stringify(doc, null, 2)}\n`;
if (process.argv.includes('--check')) {
  // Every route the server registers is described (the reverse may hold routes another
  // branch adds: listed, not an error).
  const documented = new Set(ops.map((o) => `${o.method} ${o.path}`));
  const routes = routeTable();
  const missing = routes.filter((r) => !documented.has(r));
  if (routes.length === 0 || missing.length > 0) {
    console.error(`routes of adapters/http/controllers not in docs/openapi.json: ${missing.join(', ') || '(no routes found)'}`);
    process.exit(1);
  }
  const extra = [...documented].filter((r) => !routes.includes(r));
  console.log(`${routes.length} routes of the route table, all described${extra.length ? `; described, not in this tree's table: ${extra.join(', ')}` : ''}`);
  const current = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (current !== text) {
    console.error('docs/openapi.json is not what tests/api/build-openapi.mjs writes: run `node tests/api/build-openapi.mjs`');
    process.exit(1);
  }
  console.log(`docs/openapi.json up to date (${ops.length} operations)`);
} else {
  fs.writeFileSync(OUT, text);
  console.log(`wrote ${path.relative(process.cwd(), OUT)} (${ops.length} operations, ${Object.keys(sortedPaths).length} paths)`);
}
