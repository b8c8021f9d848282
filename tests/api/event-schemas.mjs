// The event JSON Schemas (docs/schemas/events, docs/events.md "Event schemas") against
// the golden payloads (tests/golden): CTest `api: event schemas`.
//
//   node event-schemas.mjs [--golden DIR] [--schemas DIR]
//
// Checks, each failure printed with the file it concerns; exit 1 on any:
//   1. every schema file compiles with ajv's draft 2020-12 validator (strict mode, formats);
//   2. catalog.json names exactly the schema files, each at the (type, N) of its name;
//   3. the golden files and the schema files are the same set of (type, N);
//   4. every golden file validates against its schema;
//   5. the schemas bite: every golden file with one required field removed, or one field
//      given a value of another JSON type, is refused (so a vacuous schema fails here).
// The C++ side (tests/events/event_schemas_test.cpp) compares the same files with the
// event registry, so a type added in C++ without a schema fails without node too.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { schemaAjv, loadSchemaDir, parseSchemaFileName, parseGoldenFileName } from './schemas.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : fallback;
};
const goldenDir = option('--golden', resolve(here, '../golden'));
const schemaDir = option('--schemas', resolve(here, '../../docs/schemas/events'));

const failures = [];
const fail = (what) => failures.push(what);

// 1. compile
const ajv = schemaAjv();
const { schemas, catalog } = loadSchemaDir(schemaDir, fail);
const validators = new Map();  // "type.vN" -> validate
for (const [key, { file, schema }] of schemas) {
  try {
    validators.set(key, ajv.compile(schema));
  } catch (e) {
    fail(`${file}: does not compile: ${e.message}`);
  }
}

// 2. catalog.json == schema files
const catalogKeys = new Set();
for (const [type, versions] of Object.entries(catalog)) {
  for (const [n, entry] of Object.entries(versions)) {
    const key = `${type}.v${n}`;
    catalogKeys.add(key);
    if (!entry || entry.$ref !== `${key}.schema.json`) fail(`catalog.json: ${type} ${n} must be {"$ref": "${key}.schema.json"}`);
    if (!schemas.has(key)) fail(`catalog.json: ${type} ${n} has no file ${key}.schema.json`);
  }
}
for (const key of schemas.keys()) if (!catalogKeys.has(key)) fail(`${key}.schema.json: not in catalog.json`);

// 3. golden files == schema files
const goldens = new Map();
for (const file of readdirSync(goldenDir).sort()) {
  const name = parseGoldenFileName(file);
  if (!name) {
    fail(`${join(goldenDir, file)}: not <type>.v<N>.json`);
    continue;
  }
  goldens.set(`${name.type}.v${name.schema}`, join(goldenDir, file));
}
for (const key of goldens.keys()) if (!schemas.has(key)) fail(`golden file ${key}.json has no schema ${key}.schema.json`);
for (const key of schemas.keys()) if (!goldens.has(key)) fail(`schema ${key}.schema.json has no golden file ${key}.json`);

// 4. goldens validate; 5. mutations are refused
const describe = (errors) => (errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
const otherType = (v) => {
  if (typeof v === 'string') return 12345;
  if (typeof v === 'number') return 'not a number';
  if (typeof v === 'boolean') return 'not a boolean';
  if (Array.isArray(v)) return { not: 'an array' };
  if (v === null) return ['not', 'null'];
  return 42;  // an object
};
let validated = 0;
let mutations = 0;
for (const [key, path] of goldens) {
  const validate = validators.get(key);
  if (!validate) continue;
  let data;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(`${path}: not JSON: ${e.message}`);
    continue;
  }
  if (!validate(data)) {
    fail(`${path} does not validate against ${key}.schema.json: ${describe(validate.errors)}`);
    continue;
  }
  ++validated;
  const schema = schemas.get(key).schema;
  for (const field of schema.required ?? []) {
    const altered = structuredClone(data);
    delete altered[field];
    ++mutations;
    if (validate(altered)) fail(`${key}.schema.json accepts ${path} without its required field "${field}"`);
  }
  for (const field of Object.keys(data)) {
    const altered = structuredClone(data);
    altered[field] = otherType(data[field]);
    ++mutations;
    if (validate(altered)) fail(`${key}.schema.json accepts ${path} with "${field}" of another type (${JSON.stringify(altered[field])})`);
  }
  const extra = { ...structuredClone(data), not_a_field: 1 };
  ++mutations;
  if (validate(extra)) fail(`${key}.schema.json accepts ${path} with an unknown field`);
}

for (const f of failures) console.error(`FAIL ${f}`);
console.log(`${schemas.size} schemas (catalog ${catalogKeys.size}), ${goldens.size} golden files, ${validated} valid, ` +
            `${mutations} altered payloads refused or reported; ${failures.length} failures`);
process.exit(failures.length === 0 ? 0 : 1);
