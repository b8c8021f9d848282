// Test support: the real atriumd on 127.0.0.1:0 over a temp data dir (started and
// stopped by its PID), an HTTP helper, and a WebSocket client that waits for messages
// by predicate with a deadline (never a fixed sleep).
//
// ATRIUMD (environment) names the binary; CTest sets it (tests/CMakeLists.txt).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import WebSocket from 'ws';

export const ADMIN_PASSWORD = 'e2e-root-passphrase';

/** Polls `check` (async, truthy = done) every 50 ms until `ms` pass; throws on timeout. */
export async function waitFor(check, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Appends one exchange to `$ATRIUM_API_RECORD/<pid>.jsonl` when that variable names a
 * directory (tests/api/validate-recorded.mjs checks each against docs/openapi.json). */
function recordExchange(method, target, status, headers, text) {
  const dir = process.env.ATRIUM_API_RECORD;
  if (!dir) return;
  const cap = 1 << 20;
  const lower = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  const truncated = text.length > cap;
  const line = { method, target, status, headers: lower, body: truncated ? text.slice(0, cap) : text, truncated };
  fs.appendFileSync(path.join(dir, `${process.pid}.jsonl`), `${JSON.stringify(line)}\n`);
}

/** One HTTP request (HTTPS when `ca`, the PEM text of the CA to trust, is given);
 * resolves {status, headers, json, body}. */
export function request(address, method, target, { token, body, headers = {}, ca } = {}) {
  const [host, port] = address.split(':');
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = (ca ? https : http).request(
      {
        host,
        port,
        method,
        path: target,
        ...(ca ? { ca, agent: false } : {}),
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(data !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          recordExchange(method, target, res.statusCode, res.headers, text);
          resolve({ status: res.statusCode, headers: res.headers, json, body: text });
        });
      },
    );
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** The atriumd process over a fresh temp data dir. */
export class Server {
  /** `args`: extra atriumd arguments; `prefix`: the temp dir's name prefix; `ca`: the PEM
   * text of the CA that signed the server's certificate when it serves TLS (then every
   * request is HTTPS and every WebSocket WSS). */
  constructor(args = [], prefix = 'atrium-ws-', { ca } = {}) {
    this.args = args;
    this.ca = ca;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.data = path.join(this.dir, 'data');
    this.log = path.join(this.dir, 'atriumd.log');
  }

  get url() {
    return `${this.ca ? 'https' : 'http'}://${this.address}`;
  }

  /** Starts atriumd on `listen` (default a free port) and waits until it is ready. */
  async start(listen = '127.0.0.1:0') {
    const bin = process.env.ATRIUMD;
    if (!bin) throw new Error('set ATRIUMD to the atriumd binary');
    const out = fs.openSync(this.log, 'a');
    const proc = spawn(bin, ['--data-dir', this.data, '--listen', listen, ...this.args], {
      env: { ...process.env, ATRIUM_ADMIN_PASSWORD: ADMIN_PASSWORD },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`atriumd exited: ${fs.readFileSync(this.log, 'utf8').slice(-2000)}`);
        try {
          const a = fs.readFileSync(path.join(this.data, 'atriumd.addr'), 'utf8').trim();
          if (!a) return false;
          const r = await request(a, 'GET', '/readyz', { ca: this.ca });
          if (r.status !== 200) return false;
          this.address = a;
          return true;
        } catch {
          return false;
        }
      },
      30000,
      'atriumd to start',
    );
    this.adminToken = await this.login('admin', ADMIN_PASSWORD);
    return this;
  }

  /** Stops the process by its PID (SIGTERM) and waits for it; throws unless it exited 0,
   * so a sanitizer report at exit fails the test file. */
  async kill() {
    if (this.proc && this.proc.exitCode === null) {
      process.kill(this.proc.pid, 'SIGTERM');
      const r = await this.exited;
      if (r.code !== 0) throw new Error(`atriumd exited with ${JSON.stringify(r)}`);
    }
  }

  /** Stops atriumd, runs `between`, and starts it again on the same address and data dir. */
  async restart(between = async () => {}) {
    const address = this.address;
    fs.rmSync(path.join(this.data, 'atriumd.addr'), { force: true });
    await this.kill();
    await between();
    await this.start(address);
  }

  /** Stops atriumd by its PID and removes the temp dir; throws (with the log's tail)
   * unless it exited cleanly. */
  async stop() {
    let err = null;
    try {
      await this.kill();
    } catch (e) {
      err = e;
    }
    const log = fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '';
    fs.rmSync(this.dir, { recursive: true, force: true });
    if (err) throw new Error(`${err.message}; log tail:\n${log.slice(-4000)}`);
  }

  http(method, target, opts = {}) {
    return request(this.address, method, target, { token: this.adminToken, ca: this.ca, ...opts });
  }

  async login(username, password) {
    const r = await request(this.address, 'POST', '/v1/auth/login', { body: { username, password }, ca: this.ca });
    if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${r.body}`);
    return r.json.token;
  }

  /** Creates a member user; returns {id, username, password, token}. */
  async user(name) {
    // Not containing the name (the password policy): a.l.i.c.e-pw-123456.
    const password = `${[...name].join(".")}-pw-123456`;
    const r = await this.http('POST', '/v1/users', {
      body: { username: name, email: `${name}@example.org`, password, role: 'member' },
    });
    if (r.status !== 201) throw new Error(`create user ${name}: ${r.status} ${r.body}`);
    return { id: r.json.id, username: name, password, token: await this.login(name, password) };
  }

  /** Opens a WebSocket as `token` (query parameter when `viaQuery`). */
  ws(token, { viaQuery = false } = {}) {
    const url = `${this.ca ? 'wss' : 'ws'}://${this.address}/v1/ws${viaQuery ? `?token=${encodeURIComponent(token)}` : ''}`;
    const opts = {
      ...(viaQuery ? {} : { headers: { Authorization: `Bearer ${token}` } }),
      ...(this.ca ? { ca: this.ca } : {}),
    };
    return Client.open(new WebSocket(url, opts));
  }
}

/** A WebSocket client that records every message. */
export class Client {
  /** Functions called with every message any client receives (e.g. a contract check). */
  static observers = [];

  static open(ws) {
    const c = new Client(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.closed = null;
    this.nextId = 1;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      for (const observe of Client.observers) observe(m);
      this.messages.push(m);
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
  }

  send(m) {
    this.ws.send(JSON.stringify(m));
  }

  /** The first message (after index `from`) matching `pred`, waiting up to `ms`. */
  next(pred, ms = 10000, from = 0) {
    return waitFor(() => this.messages.slice(from).find(pred), ms, 'a message');
  }

  /** Sends a request carrying an id and waits for its result. */
  async call(m, ms = 10000) {
    const id = m.id ?? `r${this.nextId++}`;
    const from = this.messages.length;
    this.send({ ...m, id });
    return this.next((x) => x.op === 'result' && x.id === id, ms, from);
  }

  /** Runs an API command over the socket. */
  command(method, path, body, headers) {
    return this.call({ op: 'command', command: { method, path, body, headers } });
  }

  /** Events of subscription `sub`, in arrival order. */
  events(sub) {
    return this.messages.filter((m) => m.op === 'event' && m.subscription === sub).map((m) => m.event);
  }

  close() {
    this.ws.close();
  }
}
