// Server memory per idle WebSocket connection (each with one project subscription):
// starts atriumd, opens N connections, prints VmRSS before and after as one JSON line.
// Not a CTest test (no timing or memory assertions in tests); run by hand:
//   ATRIUMD=build/atriumd node tests/ws/idle_memory.mjs 2000
import { Server } from './support.mjs';
import fs from 'node:fs';
const n = Number(process.argv[2] || 2000);
const server = await new Server().start();
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'))[1]);
const r = await server.http('POST', '/v1/projects', { body: { name: 'mem' } });
// warm up
let cs = [];
for (let i = 0; i < 50; i++) cs.push(await server.ws(server.adminToken));
for (const c of cs) await c.call({ op: 'subscribe', id: 's', projects: [r.json.id] });
const before = rss();
const more = [];
for (let i = 0; i < n; i++) {
  const c = await server.ws(server.adminToken);
  more.push(c);
}
await Promise.all(more.map((c) => c.call({ op: 'subscribe', id: 's', projects: [r.json.id] }, 60000)));
await new Promise((res) => setTimeout(res, 1000));
const after = rss();
console.log(JSON.stringify({ connections: n, rss_before_kib: before, rss_after_kib: after, per_connection_kib: (after - before) / n }));
for (const c of [...cs, ...more]) c.close();
await server.stop();
