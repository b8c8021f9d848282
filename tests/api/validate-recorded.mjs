// Checks every HTTP exchange the e2e suites recorded against the OpenAPI document
// (docs/openapi.json), so the document cannot drift from the server.
//
//   node validate-recorded.mjs [--spec ../../docs/openapi.json] <record dir>
//
// The record dir holds `<pid>.jsonl` files written by tests/support/http_client.cpp and
// tests/ws/support.mjs when ATRIUM_API_RECORD names it: one JSON object a line,
// `{method, target, status, headers (lower-cased), body (text), truncated}`.
//
// For each exchange: the operation is found by path template and method (HEAD: the GET
// operation, whose body is not checked); its status must be documented (or `default`);
// a JSON body (by Content-Type) must validate, with ajv (JSON Schema 2020-12, the
// dialect of OpenAPI 3.1) and ajv-formats, against the schema documented for that
// status. OPTIONS is answered on every path and not listed per path: only its status is
// checked. A path the document does not know must be answered 404 or 405 with the error
// shape (or be refused at the edge: 400 for a path that cannot be decoded, 413, 431),
// else it is an "undocumented route". Prints exchanges checked per operation and
// the failures (3 examples each); exits 1 on any failure, 2 on a usage error.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));
const SPEC_ID = 'https://atrium.invalid/openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** Escapes one JSON pointer token (RFC 6901). */
const ptr = (s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1');

/** The value at `#/a/b` of `doc`. */
function resolvePointer(doc, ref) {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
  let v = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    v = v?.[key];
    if (v === undefined) throw new Error(`unresolved $ref ${ref}`);
  }
  return v;
}

/** Follows `$ref`s of non-schema objects (responses); returns [object, its pointer]. */
function deref(doc, obj, pointer) {
  let seen = 0;
  while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
    if (++seen > 20) throw new Error(`$ref loop at ${pointer}`);
    pointer = obj.$ref;
    obj = resolvePointer(doc, obj.$ref);
  }
  return [obj, pointer];
}

/** The media type of a Content-Type value, lower-cased, without parameters. */
const mediaType = (ct) => String(ct ?? '').split(';')[0].trim().toLowerCase();
const isJson = (mt) => mt === 'application/json' || mt.endsWith('+json');

/** A checker of exchanges against the OpenAPI document `spec` (an object). */
export class Checker {
  constructor(spec) {
    this.spec = spec;
    this.ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ ...spec, $id: SPEC_ID });
    this.validators = new Map();
    // Templates, most literal segments first (`/v1/events/stream` before `/v1/events/{x}`).
    this.templates = Object.keys(spec.paths ?? {})
      .map((t) => {
        const segs = t.split('/');
        const re = new RegExp(
          `^${segs.map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`,
        );
        return { template: t, re, literal: segs.filter((s) => !/^\{/.test(s)).length };
      })
      .sort((a, b) => b.literal - a.literal);
    this.errorShape = this.validatorAt('#/components/schemas/Error');
  }

  /** The compiled validator of the schema at `pointer` in the document. */
  validatorAt(pointer) {
    let v = this.validators.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `${SPEC_ID}${pointer}` });
      this.validators.set(pointer, v);
    }
    return v;
  }

  /** The path template of `target`'s path, or undefined. */
  template(target) {
    const p = String(target).split('?')[0].split('#')[0];
    return this.templates.find((t) => t.re.test(p))?.template;
  }

  /**
   * Checks one exchange. Returns `{operation, failure?}`: `operation` names the
   * documented operation (`GET /v1/projects/{id}`) or `undocumented`; `failure` is
   * `{kind, message}` when it breaks the document.
   */
  check(ex) {
    const method = String(ex.method ?? '').toUpperCase();
    const template = this.template(ex.target);
    const ct = mediaType(ex.headers?.['content-type']);
    const parse = () => {
      try {
        return { ok: true, value: JSON.parse(ex.body) };
      } catch (e) {
        return { ok: false, error: e.message };
      }
    };
    if (!template) {
      // The web console's files (`x-atrium-console-files`): any type for GET and HEAD.
      const files = this.spec['x-atrium-console-files'];
      const p = String(ex.target).split('?')[0];
      if (files && !files.outside.some((o) => p === o.replace(/\/$/, '') || p.startsWith(o)) && (method === 'GET' || method === 'HEAD') && [200, 304].includes(ex.status)) {
        return { operation: `(console files) ${method}` };
      }
      const operation = `(unknown path) ${method}`;
      // The edge refuses before routing: 400 for a path it cannot decode (an escape of a
      // control byte or of non-UTF-8, `..`, an empty segment), 413 and 431 for sizes.
      const edge = [413, 431].includes(ex.status) || (ex.status === 400 && /%|\/\.\.?(\/|$)|\/\/|\\/.test(p));
      if (![404, 405].includes(ex.status) && !edge) {
        return { operation, failure: { kind: 'undocumented route', message: `${method} ${ex.target} answered ${ex.status}` } };
      }
      if (method === 'HEAD' || ex.truncated) return { operation };
      const body = parse();
      if (!body.ok || !this.errorShape(body.value)) {
        return {
          operation,
          failure: { kind: 'undocumented route', message: `${method} ${ex.target} ${ex.status}: not the error shape` },
        };
      }
      return { operation };
    }
    const item = this.spec.paths[template];
    if (method === 'OPTIONS') return { operation: `OPTIONS ${template}` };
    const opMethod = method === 'HEAD' && !item.head ? 'get' : method.toLowerCase();
    const op = METHODS.includes(opMethod) ? item[opMethod] : undefined;
    const operation = `${method} ${template}`;
    if (!op) {
      // A known path with another method: 405 with the error shape.
      if (ex.status === 405 || ex.status === 404) return { operation: `(other method) ${operation}` };
      return { operation, failure: { kind: 'undocumented method', message: `${method} ${ex.target} answered ${ex.status}` } };
    }
    const statusKey = String(ex.status);
    const responses = op.responses ?? {};
    const key = statusKey in responses ? statusKey : `${statusKey[0]}XX` in responses ? `${statusKey[0]}XX` : 'default';
    if (!(key in responses)) {
      return {
        operation,
        failure: { kind: 'undocumented status', message: `${method} ${ex.target}: status ${ex.status} not documented` },
      };
    }
    // RFC 9110 §9.3.2, §15.3.5, §15.4.5: no body on HEAD, 204 or 304.
    if ((method === 'HEAD' || ex.status === 204 || ex.status === 304) && ex.body) {
      return { operation, failure: { kind: 'body where none is allowed', message: `${method} ${ex.target} ${ex.status}: ${String(ex.body).length} bytes of body` } };
    }
    if (method === 'HEAD' || ex.status === 204 || ex.status === 304 || ex.truncated) return { operation };
    const base = `#/paths/${ptr(template)}/${opMethod}/responses/${ptr(key)}`;
    const [response, rpointer] = deref(this.spec, responses[key], base);
    const content = response.content ?? {};
    if (Object.keys(content).length === 0) {
      if (ex.body && ex.body.length > 0) {
        return { operation, failure: { kind: 'unexpected body', message: `${method} ${ex.target} ${ex.status}: a body where none is documented` } };
      }
      return { operation };
    }
    const documented = Object.keys(content).find((m) => mediaType(m) === ct);
    if (!documented) {
      const wild = Object.keys(content).find((m) => m === '*/*' || (m.endsWith('/*') && ct.startsWith(m.slice(0, -1))));
      if (wild) return { operation };
      return {
        operation,
        failure: {
          kind: 'undocumented content type',
          message: `${method} ${ex.target} ${ex.status}: ${ct || '(none)'} not in ${Object.keys(content).join(', ')}`,
        },
      };
    }
    if (!isJson(ct) || !content[documented].schema) return { operation };
    const body = parse();
    if (!body.ok) {
      return { operation, failure: { kind: 'invalid JSON', message: `${method} ${ex.target} ${ex.status}: ${body.error}` } };
    }
    const validate = this.validatorAt(`${rpointer}/content/${ptr(documented)}/schema`);
    if (!validate(body.value)) {
      const errs = validate.errors
        .slice(0, 3)
        .map((e) => `${e.instancePath || '/'} ${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`)
        .join('; ');
      return {
        operation,
        failure: {
          kind: 'schema mismatch',
          message: `${method} ${ex.target} ${ex.status}: ${errs}; body: ${String(ex.body).slice(0, 300)}`,
        },
      };
    }
    return { operation };
  }
}

/** Every exchange of the `.jsonl` files in `dir`. */
export function readExchanges(dir) {
  const out = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // A line cut by a process that died mid-write: skipped, counted.
        out.push({ unreadable: true, file: f });
      }
    }
  }
  return out;
}

/** Checks `exchanges`; returns `{counts: Map(op → n), failures: Map(kind+op → [messages])}`. */
export function checkAll(spec, exchanges) {
  const checker = new Checker(spec);
  const counts = new Map();
  const failures = new Map();
  for (const ex of exchanges) {
    if (ex.unreadable) continue;
    const { operation, failure } = checker.check(ex);
    counts.set(operation, (counts.get(operation) ?? 0) + 1);
    if (failure) {
      const k = `${failure.kind}: ${operation}`;
      if (!failures.has(k)) failures.set(k, []);
      failures.get(k).push(failure.message);
    }
  }
  return { counts, failures };
}

async function main(argv) {
  let specPath = path.join(here, '../../docs/openapi.json');
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--spec') specPath = argv[++i];
    else rest.push(argv[i]);
  }
  if (rest.length !== 1) {
    console.error('usage: validate-recorded.mjs [--spec openapi.json] <record dir>');
    return 2;
  }
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  if (!fs.existsSync(rest[0])) {
    console.error(`no record dir ${rest[0]}`);
    return 2;
  }
  const exchanges = readExchanges(rest[0]);
  const { counts, failures } = checkAll(spec, exchanges);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(`${total} exchanges checked against ${path.relative(process.cwd(), specPath)}`);
  for (const [op, n] of [...counts].sort((a, b) => a[0].localeCompare(b[0]))) console.log(`  ${String(n).padStart(6)}  ${op}`);
  const documented = Object.entries(spec.paths).flatMap(([t, item]) =>
    METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${t}`),
  );
  const unseen = documented.filter((op) => !counts.has(op));
  console.log(`${documented.length - unseen.length}/${documented.length} documented operations exercised`);
  if (unseen.length > 0) console.log(`  not exercised: ${unseen.join(', ')}`);
  if (failures.size === 0) {
    console.log('0 failures');
    return 0;
  }
  let n = 0;
  for (const [k, msgs] of failures) {
    n += msgs.length;
    console.log(`FAIL ${k} (${msgs.length})`);
    for (const m of msgs.slice(0, 3)) console.log(`    ${m}`);
  }
  console.log(`${n} failing exchanges in ${failures.size} groups`);
  return 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
