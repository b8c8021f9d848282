// Writes docs/asyncapi.yaml from docs/schemas/events/catalog.json and the WebSocket
// protocol below (docs/realtime.md): one binary and one structured Kafka message per event
// type, and every client and server message of /v1/ws.
//
//   node asyncapi-generate.mjs           rewrite docs/asyncapi.yaml
//   node asyncapi-generate.mjs --check   exit 1 when docs/asyncapi.yaml differs (CTest `api: asyncapi` runs it)
//
// Edit this file, not the YAML, then run it: a new event type or schema version needs no
// edit here (it comes from catalog.json), a new WebSocket message does.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const catalog = JSON.parse(readFileSync(repo + '/docs/schemas/events/catalog.json', 'utf8'));
const schemaOf = (file) => JSON.parse(readFileSync(repo + '/docs/schemas/events/' + file, 'utf8'));
const ref = (type, n) => `./schemas/events/${type}.v${n}.schema.json`;
const uri = (type, n) => `https://atrium.dev/schemas/events/${type}.v${n}.schema.json`;

const messages = {};
const kafkaMessages = {};
for (const [type, versions] of Object.entries(catalog)) {
  const ns = Object.keys(versions).map(Number).sort((a, b) => a - b);
  const current = ns.at(-1);
  const desc = schemaOf(`${type}.v${current}.schema.json`).description;
  const payloadSchemas = ns.map((n) => ({ $ref: ref(type, n) }));
  const data = payloadSchemas.length === 1 ? payloadSchemas[0] : { oneOf: payloadSchemas };
  const dataschema = ns.length === 1 ? { const: uri(type, ns[0]) } : { enum: ns.map((n) => uri(type, n)) };
  const key = type;
  messages[key] = {
    name: type,
    title: `${type} (binary mode)`,
    summary: desc,
    description: `CloudEvents binary content mode (\`--kafka-content-mode binary\`, the default): the attributes are \`ce_*\` headers, the value is the payload. Payload schema${ns.length > 1 ? 's' : ''}: ${ns.map((n) => `v${n}`).join(', ')} (\`ce_dataschema\` names the one of this message; the current is v${current}).`,
    contentType: 'application/json',
    headers: { allOf: [{ $ref: '#/components/schemas/CloudEventsBinaryHeaders' },
      { type: 'object', properties: { ce_type: { const: `atrium.${type}` }, ce_dataschema: dataschema } }] },
    payload: data,
    bindings: { kafka: { key: { type: 'string', description: 'the stream id (`<entity>-<id>`), so one entity\'s events share a partition' }, bindingVersion: '0.5.0' } },
  };
  messages[`${key}.structured`] = {
    name: `${type}.structured`,
    title: `${type} (structured mode)`,
    summary: desc,
    description: 'CloudEvents structured content mode (`--kafka-content-mode structured`): one `application/cloudevents+json` object holding the attributes and `data`.',
    contentType: 'application/cloudevents+json',
    headers: { $ref: '#/components/schemas/CloudEventsStructuredHeaders' },
    payload: { allOf: [{ $ref: '#/components/schemas/CloudEventStructured' },
      { type: 'object', properties: { type: { const: `atrium.${type}` }, dataschema, data } }] },
    bindings: { kafka: { key: { type: 'string', description: 'the stream id' }, bindingVersion: '0.5.0' } },
  };
  kafkaMessages[key] = { $ref: `#/components/messages/${key}` };
  kafkaMessages[`${key}.structured`] = { $ref: `#/components/messages/${key}.structured` };
}

const S = (description, extra = {}) => ({ type: 'string', description, ...extra });
const ID = { description: 'chosen by the client, echoed exactly: an integer, or a string of at most 128 bytes', oneOf: [{ type: 'integer' }, { type: 'string', maxLength: 128 }] };
const ERR = { type: 'object', description: 'the API error object', required: ['code', 'message'],
  properties: { code: S('stable error code, e.g. `not_found`, `too_many_requests`'), message: S('human-readable'), details: { type: 'object' } } };
const POS = (d) => ({ type: 'integer', minimum: 0, description: d });
const obj = (description, properties, required, extra = {}) => ({ type: 'object', description, properties, required, ...extra });

const wsSchemas = {
  WsId: ID,
  ApiError: ERR,
  ClientSubscribe: obj('Follows projects (`project-P` and their jobs\' streams) and/or exact streams, replaying every matching event after `after` first (absent: from the log head).',
    { op: { const: 'subscribe' }, id: { $ref: '#/components/schemas/WsId' },
      projects: { type: 'array', items: { type: 'string' }, maxItems: 1024, description: 'project ids' },
      streams: { type: 'array', items: { type: 'string' }, maxItems: 1024, description: 'stream ids' },
      after: POS('replay after this position (beyond the log head: 400)') }, ['op', 'id']),
  ClientUnsubscribe: obj('Ends subscription `id`.', { op: { const: 'unsubscribe' }, id: { $ref: '#/components/schemas/WsId' } }, ['op', 'id']),
  ClientCommand: obj('Runs an API request through the same handler as HTTP, with the connection\'s token.',
    { op: { const: 'command' }, id: { $ref: '#/components/schemas/WsId' },
      command: obj('the request', { method: S('HTTP method', { enum: ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'] }), path: S('an API route under `/v1/` (not the two streaming ones), with its query', { pattern: '^/v1/' }),
        body: { description: 'sent as JSON (a string is sent as is)' }, headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'e.g. `If-Match`, `Idempotency-Key`' } }, ['method', 'path']) },
    ['op', 'id', 'command']),
  ClientPresence: obj('Tells the project\'s other sessions where you are (`state`, at most 4 KiB as JSON); `state: null` leaves the project\'s board.',
    { op: { const: 'presence' }, project: S('project id'), state: { type: ['object', 'null'] }, id: { $ref: '#/components/schemas/WsId' } }, ['op', 'project', 'state']),
  ClientPing: obj('Answered with `{"op":"pong"}`.', { op: { const: 'ping' } }, ['op']),
  ServerSubscribed: obj('A subscription was made; events after `after` follow.',
    { op: { const: 'result' }, id: { $ref: '#/components/schemas/WsId' }, ok: { const: true }, subscription: { $ref: '#/components/schemas/WsId' }, after: POS('the subscription starts after this position'), head: POS('the log head when it was made') },
    ['op', 'id', 'ok', 'subscription', 'after', 'head']),
  ServerUnsubscribed: obj('A subscription ended at the client\'s request; nothing follows.',
    { op: { const: 'result' }, id: { $ref: '#/components/schemas/WsId' }, ok: { const: true }, resume_after: POS('its cursor') }, ['op', 'id', 'ok', 'resume_after']),
  ServerCommandResult: obj('A command\'s answer: the HTTP status and JSON body.',
    { op: { const: 'result' }, id: { $ref: '#/components/schemas/WsId' }, ok: { type: 'boolean', description: 'status < 400' }, status: { type: 'integer', minimum: 100, maximum: 599 },
      body: { description: 'the JSON body (the error object on failure)' }, position: POS('log position of the command\'s last event (`X-Atrium-Position`)'), etag: S('the `ETag`, e.g. `"3"`') },
    ['op', 'id', 'ok', 'status', 'body']),
  ServerRefused: obj('A subscribe, unsubscribe, presence or command refused before it ran (400, 401, 403, 404, 409, 413, 429, 503).',
    { op: { const: 'result' }, id: { $ref: '#/components/schemas/WsId' }, ok: { const: false }, status: { type: 'integer', minimum: 400, maximum: 599 }, error: { $ref: '#/components/schemas/ApiError' } },
    ['op', 'id', 'ok', 'status', 'error']),
  ServerPresenceRelayed: obj('Your presence was relayed (only when you gave an `id`).',
    { op: { const: 'result' }, id: { $ref: '#/components/schemas/WsId' }, ok: { const: true }, session: S('your session id'), sessions: { $ref: '#/components/schemas/PresenceSessions' } },
    ['op', 'id', 'ok', 'session', 'sessions']),
  PresenceSessions: { type: 'array', description: 'the sessions on the project\'s board', items: obj('one session', { session: S('session id'), user_id: S('its user'), state: { type: ['object', 'null'] } }, ['session', 'user_id', 'state']) },
  ServerEvent: obj('An event of a subscription, as `GET /v1/events` serves it.',
    { op: { const: 'event' }, subscription: { $ref: '#/components/schemas/WsId' }, event: { $ref: './schemas/events/envelope.schema.json' } }, ['op', 'subscription', 'event']),
  ServerPresence: obj('Another session\'s presence in a project; `gone: true` and `state: null` when it left.',
    { op: { const: 'presence' }, project: S('project id'), session: S('the other session'), user_id: S('its user'), state: { type: ['object', 'null'] }, sessions: { $ref: '#/components/schemas/PresenceSessions' }, gone: { const: true } },
    ['op', 'project', 'session', 'user_id', 'state', 'sessions']),
  ServerSubscriptionEnded: obj('A subscription ended because access was revoked; the connection stays open.',
    { op: { const: 'error' }, code: { const: 'forbidden' }, subscription: { $ref: '#/components/schemas/WsId' }, resume_after: POS('everything up to here was delivered'), message: S('why') },
    ['op', 'code', 'subscription', 'resume_after', 'message']),
  ServerSlowConsumer: obj('The last message before the server closes (1013) a connection that could not keep up.',
    { op: { const: 'error' }, code: { const: 'slow_consumer' }, message: S('why'),
      resume_after: { type: 'array', items: obj('where to resume a subscription', { subscription: { $ref: '#/components/schemas/WsId' }, resume_after: POS('everything matching up to here was written') }, ['subscription', 'resume_after']) } },
    ['op', 'code', 'message', 'resume_after']),
  ServerError: obj('A message without an `id` could not be handled (not JSON, no `op`, nesting over 64, a bad `id`).',
    { op: { const: 'error' }, code: S('e.g. `invalid_argument`'), message: S('why'), details: { type: 'object' } }, ['op', 'code', 'message']),
  ServerPong: obj('The answer to `ping`.', { op: { const: 'pong' } }, ['op']),
};
const wsMessage = (name, schemaName, summary) => ({ name, title: name, summary, contentType: 'application/json', payload: { $ref: `#/components/schemas/${schemaName}` } });
const clientMsgs = {
  subscribe: wsMessage('subscribe', 'ClientSubscribe', 'Follow projects or streams'),
  unsubscribe: wsMessage('unsubscribe', 'ClientUnsubscribe', 'End a subscription'),
  command: wsMessage('command', 'ClientCommand', 'Run an API request over the socket'),
  presence: wsMessage('presence', 'ClientPresence', 'Announce (or leave) presence in a project'),
  ping: wsMessage('ping', 'ClientPing', 'Keep-alive'),
};
const serverMsgs = {
  subscribed: wsMessage('subscribed', 'ServerSubscribed', 'Subscription made'),
  unsubscribed: wsMessage('unsubscribed', 'ServerUnsubscribed', 'Subscription ended on request'),
  commandResult: wsMessage('commandResult', 'ServerCommandResult', 'A command\'s HTTP answer'),
  refused: wsMessage('refused', 'ServerRefused', 'A request refused'),
  presenceRelayed: wsMessage('presenceRelayed', 'ServerPresenceRelayed', 'Presence relayed'),
  event: wsMessage('event', 'ServerEvent', 'An event of a subscription'),
  presenceUpdate: wsMessage('presenceUpdate', 'ServerPresence', 'Another session\'s presence'),
  subscriptionEnded: wsMessage('subscriptionEnded', 'ServerSubscriptionEnded', 'Access revoked'),
  slowConsumer: wsMessage('slowConsumer', 'ServerSlowConsumer', 'Cut as a slow consumer'),
  error: wsMessage('error', 'ServerError', 'An unhandled message'),
  pong: wsMessage('pong', 'ServerPong', 'Keep-alive answer'),
};
for (const [k, m] of Object.entries({ ...clientMsgs, ...serverMsgs })) messages[`ws.${k}`] = m;
const refs = (obj, prefix) => Object.fromEntries(Object.keys(obj).map((k) => [k, { $ref: `#/components/messages/${prefix}${k}` }]));

const doc = {
  asyncapi: '3.0.0',
  id: 'urn:dev:atrium:events',
  info: {
    title: 'Atrium events and real-time protocol',
    version: '0.1.0',
    description: [
      'The asynchronous interfaces of `atriumd`, described from the server\'s side:',
      '',
      '* the Kafka topic every committed event is relayed to (docs/integrations.md), one CloudEvents 1.0 message per event in the Kafka protocol binding, in either content mode;',
      '* the WebSocket protocol of `GET /v1/ws` (docs/realtime.md): the messages clients send and the messages the server sends.',
      '',
      'Event payloads are the JSON Schemas (draft 2020-12) of `docs/schemas/events`, one per event type and payload schema version, also served by `GET /v1/schemas/events`; they are normative (docs/events.md, "Event schemas").',
    ].join('\n'),
    license: { name: 'see the repository' },
    externalDocs: { description: 'Event catalog', url: 'https://atrium.dev/docs/events' },
  },
  defaultContentType: 'application/json',
  servers: {
    kafka: {
      host: 'localhost:9092',
      protocol: 'kafka',
      description: 'The cluster of `--kafka-brokers` (or `--kafka embedded` for development: its address is in `DATA_DIR/kafka.bootstrap`). Security as given with `--kafka-option`.',
    },
    atriumd: {
      host: 'localhost:8080',
      protocol: 'ws',
      pathname: '/',
      description: 'atriumd\'s HTTP listener (`--listen`); `wss` with `--tls-cert`.',
      security: [{ $ref: '#/components/securitySchemes/bearer' }, { $ref: '#/components/securitySchemes/queryToken' }, { $ref: '#/components/securitySchemes/sessionCookie' }],
    },
  },
  channels: {
    events: {
      address: 'atrium.events',
      title: 'The event topic',
      description: 'Every event of every stream, keyed by stream id, in log order per stream (at least once; exactly once with `--kafka-transactions`). The name is `--kafka-topic` (default `atrium.events`).',
      servers: [{ $ref: '#/servers/kafka' }],
      messages: kafkaMessages,
      bindings: { kafka: { topic: 'atrium.events', bindingVersion: '0.5.0' } },
    },
    ws: {
      address: '/v1/ws',
      title: 'The WebSocket of `GET /v1/ws`',
      description: 'One JSON text frame per message, at most 1 MiB. The token goes in `Authorization: Bearer`, `?token=`, or the console\'s session cookie (with a same-origin `Origin`).',
      servers: [{ $ref: '#/servers/atriumd' }],
      messages: { ...refs(clientMsgs, 'ws.'), ...Object.fromEntries(Object.keys(serverMsgs).map((k) => [k, { $ref: `#/components/messages/ws.${k}` }])) },
      bindings: { ws: { method: 'GET', query: { type: 'object', properties: { token: { type: 'string', description: 'a token, for clients that cannot set headers' } } }, bindingVersion: '0.1.0' } },
    },
  },
  operations: {
    publishEvents: {
      action: 'send',
      title: 'Relay the log',
      summary: 'atriumd relays every committed event to the topic',
      channel: { $ref: '#/channels/events' },
      messages: Object.keys(kafkaMessages).map((k) => ({ $ref: `#/channels/events/messages/${k}` })),
    },
    receiveClientMessages: {
      action: 'receive',
      title: 'Client messages',
      summary: 'what a WebSocket client sends',
      channel: { $ref: '#/channels/ws' },
      messages: Object.keys(clientMsgs).map((k) => ({ $ref: `#/channels/ws/messages/${k}` })),
    },
    sendServerMessages: {
      action: 'send',
      title: 'Server messages',
      summary: 'what atriumd sends on the WebSocket',
      channel: { $ref: '#/channels/ws' },
      messages: Object.keys(serverMsgs).map((k) => ({ $ref: `#/channels/ws/messages/${k}` })),
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'a session token (`POST /v1/auth/login`) or an API token with `events:read`' },
      queryToken: { type: 'httpApiKey', name: 'token', in: 'query', description: 'the same token in `?token=`' },
      sessionCookie: { type: 'httpApiKey', name: 'atrium_session', in: 'cookie', description: 'the web console\'s session cookie; the upgrade\'s `Origin` must be the server\'s or an `--allowed-origin`' },
    },
    schemas: {
      CloudEventsBinaryHeaders: obj('The CloudEvents attributes as Kafka headers (binary content mode).', {
        ce_specversion: { const: '1.0' },
        ce_id: S('the event id: a UUIDv7, `<command id>.<n>` for the events of a command sent with an `Idempotency-Key`, a UUIDv8 for `schedule.fired`; stable across retries: de-duplicate on it'),
        ce_source: S('`/atrium/<deployment id>` (`--kafka-source` sets another)', { format: 'uri-reference' }),
        ce_type: S('`atrium.<event type>`', { pattern: '^atrium\\.[a-z_]+\\.[a-z_]+$' }),
        ce_subject: S('the stream id (same as the key)'),
        ce_time: S('commit time, RFC 3339 UTC with microseconds', { format: 'date-time' }),
        ce_position: S('extension: the global position in the log (decimal)', { pattern: '^[1-9][0-9]*$' }),
        ce_version: S('extension: the version in the stream (decimal, from 1)', { pattern: '^[1-9][0-9]*$' }),
        ce_dataschema: S('the `$id` of the payload\'s JSON Schema: `https://atrium.dev/schemas/events/<type>.v<N>.schema.json`', { format: 'uri' }),
        'content-type': { const: 'application/json' },
      }, ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_subject', 'ce_time', 'ce_position', 'ce_version', 'ce_dataschema', 'content-type']),
      CloudEventsStructuredHeaders: obj('Structured content mode: the one header.', { 'content-type': { const: 'application/cloudevents+json' } }, ['content-type']),
      CloudEventStructured: obj('A CloudEvent in the JSON event format: the attributes of the binary headers (without `ce_`), `datacontenttype` and `data`.', {
        specversion: { const: '1.0' }, id: S('as `ce_id`'), source: S('as `ce_source`', { format: 'uri-reference' }), type: S('as `ce_type`'), subject: S('as `ce_subject`'),
        time: S('as `ce_time`', { format: 'date-time' }), position: S('as `ce_position`', { pattern: '^[1-9][0-9]*$' }), version: S('as `ce_version`', { pattern: '^[1-9][0-9]*$' }),
        dataschema: S('as `ce_dataschema`', { format: 'uri' }), datacontenttype: { const: 'application/json' }, data: { type: 'object', description: 'the payload, as `GET /v1/events` serves it (redacted fields removed)' },
      }, ['specversion', 'id', 'source', 'type', 'subject', 'time', 'position', 'version', 'dataschema', 'datacontenttype', 'data']),
      ...wsSchemas,
    },
    messages,
  },
};
const header = `# AsyncAPI 3.0 description of atriumd's asynchronous interfaces: the Kafka event topic
# (CloudEvents binding, both content modes) and the WebSocket protocol of GET /v1/ws.
# Payload schemas are the files of docs/schemas/events (normative; one per event type and
# payload schema version). Generated by tests/api/asyncapi-generate.mjs (edit that, then
# run it). Checked by CTest \`api: asyncapi\` (tests/api/asyncapi.mjs with
# @asyncapi/parser: 0 errors, and one binary and one structured message per event type of
# docs/schemas/events/catalog.json, referencing every schema version of the type).
`;
const text = header + yaml.dump(doc, { lineWidth: -1, noRefs: true, quotingType: "'" });
const out = repo + '/docs/asyncapi.yaml';
if (process.argv.includes('--check')) {
  const same = readFileSync(out, 'utf8') === text;
  console.log(same ? 'docs/asyncapi.yaml is up to date' : 'docs/asyncapi.yaml differs from tests/api/asyncapi-generate.mjs: run it');
  process.exit(same ? 0 : 1);
}
writeFileSync(out, text);
console.log(`wrote ${out}: ${Object.keys(messages).length} messages`);
