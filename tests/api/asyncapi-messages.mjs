// The WebSocket messages of docs/asyncapi.yaml as ajv validators, for tests that hold
// real messages (tests/ws/ws.test.mjs imports this file, so js-yaml and ajv resolve from
// tests/api/node_modules).
//
// The document's `components.schemas` become one schema resource (`$defs`), its
// `#/components/schemas/X` references `#/$defs/X`, and the reference to
// `./schemas/events/envelope.schema.json` the envelope's `$id`; an `event` message's
// `data` is then validated against its event schema (schemas.mjs).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { eventValidators, schemaAjv, loadSchemaDir, schemaDir } from './schemas.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const asyncapiFile = resolve(here, '../../docs/asyncapi.yaml');

/// Rewrites the document's references for one ajv resource.
function rewrite(node, envelopeId) {
  if (Array.isArray(node)) return node.map((n) => rewrite(n, envelopeId));
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') {
        if (v.startsWith('#/components/schemas/')) out[k] = `#/$defs/${v.slice('#/components/schemas/'.length)}`;
        else if (v === './schemas/events/envelope.schema.json') out[k] = envelopeId;
        else throw new Error(`asyncapi-messages: unexpected $ref ${v}`);
      } else {
        out[k] = rewrite(v, envelopeId);
      }
    }
    return out;
  }
  return node;
}

/// Validators of the server → client messages of the `ws` channel (the messages of the
/// `sendServerMessages` operation). `server(message)` returns null when the message is
/// valid against at least one of them (and, for an `event`, its envelope and payload
/// against the event schemas), else a description naming the closest candidates.
export function wsMessageValidators(file = asyncapiFile) {
  const doc = yaml.load(readFileSync(file, 'utf8'));
  const ajv = schemaAjv();
  const { envelope } = loadSchemaDir(schemaDir);
  ajv.addSchema(envelope);
  const id = 'https://atrium.dev/asyncapi/components.json';
  ajv.addSchema({ $id: id, $defs: rewrite(doc.components.schemas, envelope.$id) });
  const operation = doc.operations.sendServerMessages;
  const candidates = operation.messages.map((ref) => {
    const name = ref.$ref.split('/').pop();
    const message = doc.components.messages[doc.channels.ws.messages[name].$ref.split('/').pop()];
    const schemaName = message.payload.$ref.split('/').pop();
    return { name, validate: ajv.getSchema(`${id}#/$defs/${schemaName}`) };
  });
  const events = eventValidators();
  return {
    names: candidates.map((c) => c.name),
    server(message) {
      const matched = candidates.filter((c) => c.validate(message));
      if (matched.length === 0) {
        const why = candidates
          .filter((c) => c.name.toLowerCase().includes(String(message?.op ?? '').toLowerCase()) || message?.op === 'result')
          .map((c) => {
            c.validate(message);
            return `${c.name}: ${(c.validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join(', ')}`;
          });
        return `no server message of docs/asyncapi.yaml matches ${JSON.stringify(message).slice(0, 300)} (${why.join('; ')})`;
      }
      if (message.op === 'event') return events.envelope(message.event);
      return null;
    },
  };
}
