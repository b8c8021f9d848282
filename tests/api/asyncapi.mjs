// docs/asyncapi.yaml with @asyncapi/parser: CTest `api: asyncapi`.
//
//   node asyncapi.mjs [path/to/asyncapi.yaml]
//
// 1. `Parser.validate` on the file (its `source` is the file's path, so the parser's file
//    resolver follows the relative `$ref`s into docs/schemas/events): no diagnostic of
//    severity error; warnings, information and hints are printed.
// 2. The document covers the catalog: for every event type of
//    docs/schemas/events/catalog.json the `events` channel has a binary message `<type>`
//    and a structured one `<type>.structured`, whose payloads reference every schema
//    version of the type, and no message for a type the catalog does not know.
// 3. The parsed document resolves: every message payload of the events channel has a schema.
// 4. The file is what tests/api/asyncapi-generate.mjs writes (`--check`).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser, fromFile } from '@asyncapi/parser';

const here = dirname(fileURLToPath(import.meta.url));
const file = resolve(process.argv[2] ?? resolve(here, '../../docs/asyncapi.yaml'));
const catalog = JSON.parse(readFileSync(resolve(here, '../../docs/schemas/events/catalog.json'), 'utf8'));

const severities = ['error', 'warning', 'information', 'hint'];
const parser = new Parser();
const failures = [];

// 1. validate
const diagnostics = await fromFile(parser, file).validate();
const count = [0, 0, 0, 0];
for (const d of diagnostics) {
  ++count[d.severity];
  const where = d.path?.length ? d.path.join('.') : '(document)';
  const line = d.range ? `:${d.range.start.line + 1}` : '';
  console[d.severity === 0 ? 'error' : 'log'](`${severities[d.severity]} ${d.code} ${where}${line}: ${d.message}`);
}
if (count[0] > 0) failures.push(`${count[0]} validation errors`);

// 2. coverage of the catalog (on the raw document: the parser inlines the $refs)
const { document, diagnostics: parseDiagnostics } = await fromFile(parser, file).parse();
if (!document) {
  failures.push(`the document does not parse: ${parseDiagnostics.filter((d) => d.severity === 0).map((d) => d.message).join('; ')}`);
} else {
  const raw = document.meta().asyncapi.input;
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
  const channelMessages = Object.keys(document.json().channels.events.messages);
  const expected = new Set();
  for (const [type, versions] of Object.entries(catalog)) {
    for (const name of [type, `${type}.structured`]) {
      expected.add(name);
      if (!channelMessages.includes(name)) failures.push(`the events channel has no message ${name}`);
    }
    for (const n of Object.keys(versions)) {
      if (!text.includes(`./schemas/events/${type}.v${n}.schema.json`)) failures.push(`no payload references ${type}.v${n}.schema.json`);
    }
  }
  for (const name of channelMessages) if (!expected.has(name)) failures.push(`message ${name}: not an event type of catalog.json`);

  // 3. resolved payloads
  const events = document.channels().get('events');
  let resolved = 0;
  for (const m of events.messages().all()) {
    if (!m.hasPayload()) failures.push(`message ${m.id()} has no payload`);
    else ++resolved;
  }
  console.log(`events channel: ${channelMessages.length} messages (${resolved} with payloads), ` +
              `ws channel: ${document.channels().get('ws').messages().all().length} messages, ` +
              `${document.operations().all().length} operations`);
}

// 4. generated
if (!process.argv[2]) {
  const check = spawnSync(process.execPath, [resolve(here, 'asyncapi-generate.mjs'), '--check'], { encoding: 'utf8' });
  process.stdout.write(check.stdout);
  if (check.status !== 0) failures.push('docs/asyncapi.yaml is not what asyncapi-generate.mjs writes');
}

for (const f of failures) console.error(`FAIL ${f}`);
console.log(`asyncapi: ${count[0]} errors, ${count[1]} warnings, ${count[2]} information, ${count[3]} hints; ${failures.length} failures`);
process.exit(failures.length === 0 ? 0 : 1);
