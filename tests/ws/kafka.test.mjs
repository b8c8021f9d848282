// Kafka interop end to end (issue 21, point 7): the relay of the real atriumd (`--kafka
// embedded`: librdkafka's mock cluster, reached over TCP) read by clients nobody here
// wrote: kafkajs (which decodes only gzip without a codec plugin) consumes the topic,
// and the CNCF CloudEvents SDK (`cloudevents`) turns every message into a CloudEvent and
// validates it, in the binary and the structured content mode. Every event of the log
// arrives, with the ids, types, subjects and payloads `GET /v1/events` serves, and
// `source` is /atrium/<the deployment id in DATA_DIR/instance_id>; `dataschema` names the
// payload's JSON Schema (docs/schemas/events), which every payload validates against.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Kafka as KafkaClient, logLevel } from 'kafkajs';
import { Kafka as KafkaBinding, CloudEvent } from 'cloudevents';
import { Server, waitFor } from './support.mjs';
// The event JSON Schemas (docs/schemas/events), with ajv from tests/api.
import { eventValidators } from '../api/schemas.mjs';

const schemas = eventValidators();

/** Consumes `topic` from the beginning until `enough(messages)`; resolves the messages. */
async function consume(brokers, topic, enough) {
  const kafka = new KafkaClient({ brokers, clientId: 'atrium-interop-test', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `interop-${Date.now()}` });
  const messages = [];
  let crashed = null;
  consumer.on(consumer.events.CRASH, (e) => (crashed = e.payload.error));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await waitFor(() => {
      if (crashed) throw crashed;
      return enough(messages);
    }, 30000, 'the messages');
    return messages;
  } finally {
    await consumer.disconnect();
  }
}

for (const mode of ['binary', 'structured']) {
  test(`kafkajs reads the relay's gzip batches and every message is a valid CloudEvent (${mode} mode)`, async () => {
    const server = await new Server(['--kafka', 'embedded', '--kafka-content-mode', mode], 'atrium-kafka-').start();
    try {
      for (let i = 0; i < 5; i++) {
        const r = await server.http('POST', '/v1/projects', { body: { name: `interop ${mode} ${i}` } });
        assert.equal(r.status, 201, r.body);
      }
      // With an Idempotency-Key: the event ids are `<command id>.<n>`.
      const keyed = await server.http('POST', '/v1/projects', { body: { name: `keyed ${mode}` }, headers: { 'Idempotency-Key': `k-${mode}` } });
      assert.equal(keyed.status, 201, keyed.body);
      const log = (await server.http('GET', '/v1/events?after=0&limit=1000')).json.events;
      const brokers = fs.readFileSync(path.join(server.data, 'kafka.bootstrap'), 'utf8').trim().split(',');
      const instance = fs.readFileSync(path.join(server.data, 'instance_id'), 'utf8').trim();
      const head = log.at(-1).position;

      // Until every position of the log arrived: partitions are read independently, so the
      // head's message can come before another partition's older ones.
      const positionOf = (m) => Number(m.headers?.ce_position?.toString() ?? JSON.parse(m.value.toString()).position);
      const messages = await consume(brokers, 'atrium.events', (ms) => new Set(ms.map(positionOf).filter((p) => p <= head)).size >= head);
      const byPosition = new Map();
      for (const m of messages) {
        const headers = Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, v.toString()]));
        const value = m.value.toString();
        // The SDK's Kafka binding: it reads either content mode and validates (strict).
        const ce = KafkaBinding.toEvent({ key: m.key.toString(), value, body: value, headers });
        assert.ok(ce instanceof CloudEvent);
        assert.equal(ce.validate(), true);
        byPosition.set(Number(ce.position), { ce, key: m.key.toString(), headers });
      }
      for (const e of log) {
        const got = byPosition.get(e.position);
        assert.ok(got, `position ${e.position} (${e.type}) consumed`);
        const { ce, key, headers } = got;
        assert.equal(ce.specversion, '1.0');
        assert.equal(ce.id, e.id);
        assert.equal(ce.type, `atrium.${e.type}`);
        assert.equal(ce.subject, e.stream);
        assert.equal(ce.source, `/atrium/${instance}`);
        assert.equal(key, e.stream);
        assert.equal(Number(ce.version), e.version);
        const data = typeof ce.data === 'string' ? JSON.parse(ce.data) : ce.data;
        assert.deepEqual(data, e.data);
        // `dataschema` names the payload's JSON Schema, and the payload validates against it.
        assert.equal(ce.dataschema, `https://atrium.dev/schemas/events/${e.type}.v${e.schema}.schema.json`);
        assert.equal(schemas.data(e.type, e.schema, data), null);
        assert.equal(schemas.envelope(e), null);
        if (mode === 'structured') assert.match(headers['content-type'] ?? '', /^application\/cloudevents\+json/);
      }
      const keyedEvents = log.filter((e) => e.data?.name === `keyed ${mode}`);
      assert.ok(keyedEvents.length > 0);
      for (const e of keyedEvents) {
        assert.match(e.id, /^[0-9a-f]{64}\.\d+$/, 'an Idempotency-Key command: <command id>.<n>');
        assert.equal(byPosition.get(e.position).ce.id, e.id);
      }
    } finally {
      await server.stop();
    }
  });
}
