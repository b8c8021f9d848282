// The route table against the OpenAPI document, both ways: every route `atriumd routes`
// prints (method, path template, the query parameters it takes) is an operation of
// docs/openapi.json with the same query parameters, and every operation of the document
// is a route. HEAD and OPTIONS are answered on every path by the server itself and are
// not listed per route on either side.
//
// Usage: node routes-drift.mjs <atriumd> <openapi.json>   (exit 1 on any difference)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function compare(routes, doc) {
  const problems = [];
  const methods = ['get', 'post', 'put', 'patch', 'delete'];
  const documented = new Map();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const shared = item.parameters ?? [];
    for (const m of methods) {
      const op = item[m];
      if (!op) continue;
      const params = [...shared, ...(op.parameters ?? [])].map((p) => (p.$ref ? resolve(doc, p.$ref) : p));
      const query = params.filter((p) => p.in === 'query').map((p) => p.name).sort();
      documented.set(`${m.toUpperCase()} ${path}`, query);
    }
  }
  const served = new Set();
  for (const r of routes) {
    const key = `${r.method} ${r.pattern}`;
    served.add(key);
    if (!documented.has(key)) {
      problems.push(`${key}: a route the document does not describe`);
      continue;
    }
    const want = [...(r.query ?? [])].sort();
    const have = documented.get(key);
    const missing = want.filter((q) => !have.includes(q));
    const extra = have.filter((q) => !want.includes(q));
    if (missing.length) problems.push(`${key}: query parameters the route takes but the document omits: ${missing.join(', ')}`);
    if (extra.length) problems.push(`${key}: query parameters the document lists but the route refuses: ${extra.join(', ')}`);
  }
  for (const key of documented.keys()) {
    if (!served.has(key)) problems.push(`${key}: documented but not a route`);
  }
  return problems;
}

function resolve(doc, ref) {
  let node = doc;
  for (const part of ref.replace(/^#\//, '').split('/')) node = node[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [atriumd, openapi] = process.argv.slice(2);
  const routes = JSON.parse(execFileSync(atriumd, ['routes'], { encoding: 'utf8' }));
  const doc = JSON.parse(readFileSync(openapi, 'utf8'));
  const problems = compare(routes, doc);
  console.log(`${routes.length} routes, ${problems.length} differences`);
  for (const p of problems) console.log(`  ${p}`);
  process.exit(problems.length ? 1 : 0);
}
