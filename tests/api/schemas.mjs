// Shared by the contract checks (event-schemas.mjs) and the WebSocket/Kafka tests
// (tests/ws imports this file, so ajv resolves from tests/api/node_modules): the event
// JSON Schemas of docs/schemas/events compiled with ajv's draft 2020-12 validator.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const Ajv2020 = Ajv2020Module.default ?? Ajv2020Module;
const addFormats = addFormatsModule.default ?? addFormatsModule;
const here = dirname(fileURLToPath(import.meta.url));

/// The repository's event schema directory.
export const schemaDir = resolve(here, '../../docs/schemas/events');

/// A new ajv for draft 2020-12 in strict mode (unknown keywords are errors), with every
/// format of ajv-formats asserted (`uuid`, `date-time`, …), all errors reported. Open
/// tuples (`prefixItems` followed by more `items`, the `[deleted, line…]` sections of a
/// change set) are meant, so ajv's strictTuples warning is off.
export function schemaAjv() {
  const ajv = new Ajv2020({ strict: true, strictTuples: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/// `<type>.v<N>.schema.json` → {type, schema: N}; null for other names.
export function parseSchemaFileName(file) {
  const m = /^([a-z_]+\.[a-z_]+)\.v([1-9][0-9]{0,5})\.schema\.json$/.exec(file);
  return m ? { type: m[1], schema: Number(m[2]) } : null;
}

/// `<type>.v<N>.json` (a tests/golden file) → {type, schema: N}; null for other names.
export function parseGoldenFileName(file) {
  const m = /^([a-z_]+\.[a-z_]+)\.v([1-9][0-9]{0,5})\.json$/.exec(file);
  return m ? { type: m[1], schema: Number(m[2]) } : null;
}

/// Reads a schema directory: `schemas` maps `type.vN` to {file, schema} for every
/// `<type>.v<N>.schema.json`; `envelope` and `catalog` are the two other files. Files
/// that are none of these, unreadable JSON, or a `$id` that does not end in the file's
/// name are reported through `fail(message)`.
export function loadSchemaDir(dir, fail = (m) => { throw new Error(m); }) {
  const schemas = new Map();
  let envelope = null;
  let catalog = {};
  for (const file of readdirSync(dir).sort()) {
    const path = join(dir, file);
    let json;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      fail(`${path}: not JSON: ${e.message}`);
      continue;
    }
    if (file === 'catalog.json') {
      catalog = json;
      continue;
    }
    if (file === 'envelope.schema.json') {
      envelope = json;
      continue;
    }
    const name = parseSchemaFileName(file);
    if (!name) {
      fail(`${path}: not <type>.v<N>.schema.json, envelope.schema.json or catalog.json`);
      continue;
    }
    if (typeof json.$id !== 'string' || !json.$id.endsWith(`/${file}`)) fail(`${path}: $id must end in /${file}`);
    schemas.set(`${name.type}.v${name.schema}`, { file: path, schema: json });
  }
  return { schemas, envelope, catalog };
}

/// Validators of the repository's schemas: `data(type, schema, payload)` and
/// `envelope(event)` return null when valid, else a one-line description of the errors.
/// `data` also reports an unknown (type, schema).
export function eventValidators(dir = schemaDir) {
  const ajv = schemaAjv();
  const { schemas, envelope } = loadSchemaDir(dir);
  const compiled = new Map();
  for (const [key, { schema }] of schemas) compiled.set(key, ajv.compile(schema));
  const envelopeValidate = ajv.compile(envelope);
  const describe = (errors) => (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
  return {
    data(type, schema, payload) {
      const validate = compiled.get(`${type}.v${schema}`);
      if (!validate) return `no schema for ${type} schema ${schema}`;
      return validate(payload) ? null : `${type} v${schema}: ${describe(validate.errors)}`;
    },
    envelope(event) {
      if (!envelopeValidate(event)) return `envelope: ${describe(envelopeValidate.errors)}`;
      return this.data(event.type, event.schema, event.data);
    },
  };
}
