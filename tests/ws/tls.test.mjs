// End to end: atriumd serving HTTPS, WSS and SSE over TLS (`--tls-cert`, `--tls-key`,
// `--tls-min-version`), with a throwaway CA and certificates made by `openssl` for each
// run. Clients: curl --cacert (as an operator would), Node's https and tls, and the `ws`
// client over wss://. Also: a plain-HTTP request on the TLS port is refused at once with
// a 400 that says why; hostile bytes on the TLS port leave the server serving; SIGHUP
// re-reads the certificate without dropping open connections; bad TLS files stop the
// start with a clear error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Server, request, waitFor } from './support.mjs';

const pki = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-tls-pki-'));
const ca = path.join(pki, 'ca.pem');
const certFile = path.join(pki, 'server.pem');
const keyFile = path.join(pki, 'server.key');
let caText;
let server;

function openssl(...args) {
  execFileSync('openssl', args, { cwd: pki, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A P-256 key and a certificate for 127.0.0.1 and localhost, common name `cn`, signed by
 * the test CA, written to `<name>.pem` and `<name>.key` in the PKI dir. */
function issue(name, cn) {
  fs.writeFileSync(
    path.join(pki, `${name}.ext`),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(Date.now()), '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
}

/** The common name of the certificate the server at `address` presents now (a new connection). */
function peerName(address, options = {}) {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port: Number(port), ca: caText, servername: 'localhost', ...options }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      const version = s.getProtocol();
      s.end();
      resolve({ cn, version });
    });
    s.on('error', reject);
  });
}

/** Runs curl with `args`; resolves {status (exit code), stdout, stderr}. */
function curl(...args) {
  return new Promise((resolve) => {
    const p = spawn('curl', ['-sS', '--max-time', '20', ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Sends `bytes` over plain TCP and resolves what came back and how it ended, within 15 s. */
function rawTcp(address, bytes) {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port) });
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data: data.toString('latin1'), end: 'timeout' });
    }, 15000);
    s.on('connect', () => {
      s.write(bytes);
      s.end();
    });
    s.on('data', (d) => (data = Buffer.concat([data, d])));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: data.toString('latin1'), end: 'closed' });
    });
  });
}

before(async () => {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Atrium Test CA');
  caText = fs.readFileSync(ca, 'utf8');
  issue('server', 'atrium-first');
  server = await new Server(['--tls-cert', certFile, '--tls-key', keyFile], 'atrium-tls-', { ca: caText }).start();
});

after(async () => {
  try {
    await server?.stop();
  } finally {
    fs.rmSync(pki, { recursive: true, force: true });
  }
});

test('HTTPS: curl --cacert reaches /healthz and the API; the session cookie is Secure', async () => {
  const [host, port] = server.address.split(':');
  const health = await curl('--cacert', ca, '-o', '/dev/null', '-w', '%{http_code} %{ssl_verify_result}', `https://${host}:${port}/healthz`);
  assert.equal(health.status, 0, health.stderr);
  assert.equal(health.stdout, '200 0');
  // The name in the certificate is checked too: localhost is in its subjectAltName.
  const byName = await curl('--cacert', ca, '--resolve', `localhost:${port}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${port}/healthz`);
  assert.equal(byName.stdout, '200', byName.stderr);
  // Without the CA, curl refuses the certificate (exit 60): it is not trusted by default.
  const untrusted = await curl('-o', '/dev/null', `https://${host}:${port}/healthz`);
  assert.equal(untrusted.status, 60, untrusted.stderr);

  const created = await server.http('POST', '/v1/projects', { body: { name: 'over tls' } });
  assert.equal(created.status, 201, created.body);
  const read = await curl('--cacert', ca, '-H', `Authorization: Bearer ${server.adminToken}`, `https://${host}:${port}/v1/projects/${created.json.id}`);
  assert.equal(read.status, 0, read.stderr);
  assert.equal(JSON.parse(read.stdout).name, 'over tls');

  const login = await curl('--cacert', ca, '-D', '-', '-o', '/dev/null', '-H', 'Content-Type: application/json', '-H', `Origin: https://${host}:${port}`, '-d', JSON.stringify({ username: 'admin', password: 'e2e-root-passphrase', cookie: true }), `https://${host}:${port}/v1/auth/login`);
  assert.match(login.stdout, /^strict-transport-security: max-age=31536000\r$/im, 'HSTS on answers over TLS');
  const cookie = login.stdout.split('\r\n').find((l) => l.toLowerCase().startsWith('set-cookie:'));
  assert.ok(cookie, login.stdout);
  assert.match(cookie, /;\s*Secure/i, 'a cookie set over TLS is Secure');
});

test('TLS 1.2 is accepted by default and the protocol is TLS 1.2 or 1.3', async () => {
  const v12 = await peerName(server.address, { maxVersion: 'TLSv1.2' });
  assert.equal(v12.version, 'TLSv1.2');
  const best = await peerName(server.address);
  assert.equal(best.version, 'TLSv1.3');
  await assert.rejects(peerName(server.address, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'TLS 1.1 is refused');
});

test('WSS: a WebSocket over TLS subscribes and receives events', async () => {
  const created = await server.http('POST', '/v1/projects', { body: { name: 'wss' } });
  assert.equal(created.status, 201);
  const c = await server.ws(server.adminToken);
  try {
    const sub = await c.call({ op: 'subscribe', id: 's', projects: [created.json.id], after: 0 });
    assert.equal(sub.ok, true, JSON.stringify(sub));
    const current = await c.command('GET', `/v1/projects/${created.json.id}`);
    const renamed = await c.command('PATCH', `/v1/projects/${created.json.id}`, { name: 'wss renamed' }, { 'If-Match': String(current.body.version) });
    assert.equal(renamed.ok, true, JSON.stringify(renamed));
    const ev = await c.next((m) => m.op === 'event' && m.event.type === 'project.renamed');
    assert.equal(ev.event.data.name, 'wss renamed');
  } finally {
    c.close();
  }
});

test('SSE over TLS: the event stream delivers a live event', async () => {
  const [host, port] = server.address.split(':');
  const now = (await server.http('GET', '/healthz')).json.position;
  const got = new Promise((resolve, reject) => {
    const req = https.get(
      { host, port, ca: caText, agent: false, path: `/v1/events/stream?after=${now}`, headers: { Authorization: `Bearer ${server.adminToken}` } },
      (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
        let text = '';
        res.on('data', (d) => {
          text += d;
          if (text.includes('sse over tls')) {
            req.destroy();
            resolve(text);
          }
        });
      },
    );
    req.on('error', (e) => (e.code === 'ECONNRESET' ? null : reject(e)));
    req.setTimeout(15000, () => reject(new Error('SSE over TLS timed out')));
  });
  await server.http('POST', '/v1/projects', { body: { name: 'sse over tls' } });
  const text = await got;
  assert.match(text, /event: project\.created/);
});

test('plain HTTP on the TLS port gets a 400 that says to use HTTPS, at once', async () => {
  const r = await request(server.address, 'GET', '/healthz');
  assert.equal(r.status, 400);
  assert.equal(r.json.error.code, 'invalid_argument');
  assert.match(r.json.error.message, /HTTPS only/);
  assert.equal(r.headers['strict-transport-security'], undefined, 'no HSTS over plain HTTP');
  // curl speaking http:// to it sees the same answer, not a hang or a TLS error.
  const c = await curl('-w', ' %{http_code}', `http://${server.address}/v1/projects`);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /HTTPS only.* 400$/);
});

test('hostile bytes on the TLS port: no hang, no crash, the server keeps serving', async () => {
  const cases = [
    ['garbage', Buffer.from('\x00\x01\x02garbage\r\n\r\n', 'latin1')],
    ['a TLS record header, then nothing', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])],
    ['a TLS record header with a bogus handshake', Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), Buffer.alloc(64, 0xff)])],
    ['an SSLv2-style hello', Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10])],
    ['a huge record length', Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0xff, 0xff, 0x01, 0xff, 0xff, 0xfc]), Buffer.alloc(4000, 0x41)])],
    ['an HTTP request line without end', Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n', 'latin1')],
  ];
  for (const [what, bytes] of cases) {
    const r = await rawTcp(server.address, bytes);
    assert.equal(r.end, 'closed', `${what}: the server closed the connection (no hang)`);
    if (r.data) assert.match(r.data, /^HTTP\/1\.1 4\d\d|^\x15\x03/, `${what}: an HTTP 4xx or a TLS alert, got ${JSON.stringify(r.data.slice(0, 80))}`);
  }
  // A ClientHello's first bytes, then silence with the socket open (the server ends it
  // after its 30 s handshake timeout): meanwhile others are served.
  const [host, port] = server.address.split(':');
  const stalled = net.connect({ host, port: Number(port) });
  stalled.on('error', () => {});
  stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00]));
  try {
    const health = await server.http('GET', '/healthz');
    assert.equal(health.status, 200);
  } finally {
    stalled.destroy();
  }
  const after = await server.http('GET', '/healthz');
  assert.equal(after.status, 200, 'still serving after the hostile connections');
});

test('SIGHUP re-reads the certificate; open connections stay; a broken file keeps the old one', async () => {
  assert.equal((await peerName(server.address)).cn, 'atrium-first');
  const open = await server.ws(server.adminToken);
  try {
    // Renewal: new files replace the old ones (renamed over them, as certbot and
    // cert-manager do), then SIGHUP.
    issue('renewed', 'atrium-renewed');
    fs.renameSync(path.join(pki, 'renewed.pem'), certFile);
    fs.renameSync(path.join(pki, 'renewed.key'), keyFile);
    process.kill(server.proc.pid, 'SIGHUP');
    await waitFor(() => fs.readFileSync(server.log, 'utf8').includes('TLS certificate reloaded'), 10000, 'the reload');
    assert.equal((await peerName(server.address)).cn, 'atrium-renewed');
    // The WebSocket opened before the reload still works.
    const r = await open.command('GET', '/v1/projects');
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(open.closed, null);

    // A broken key: the reload fails, says so, and the server keeps the renewed certificate.
    fs.writeFileSync(keyFile, 'not a key\n');
    process.kill(server.proc.pid, 'SIGHUP');
    await waitFor(() => fs.readFileSync(server.log, 'utf8').includes('TLS certificate not reloaded'), 10000, 'the failed reload');
    assert.match(fs.readFileSync(server.log, 'utf8'), /--tls-key .*not a PEM private key/);
    assert.equal((await peerName(server.address)).cn, 'atrium-renewed');
    assert.equal((await server.http('GET', '/healthz')).status, 200);
  } finally {
    open.close();
  }
});

test('--tls-min-version 1.3 refuses a TLS 1.2 client', async () => {
  issue('strict', 'atrium-strict');
  const strict = new Server(
    ['--tls-cert', path.join(pki, 'strict.pem'), '--tls-key', path.join(pki, 'strict.key'), '--tls-min-version', '1.3'],
    'atrium-tls13-',
    { ca: caText },
  );
  await strict.start();
  try {
    assert.equal((await peerName(strict.address)).version, 'TLSv1.3');
    await assert.rejects(peerName(strict.address, { maxVersion: 'TLSv1.2' }));
    const c = await curl('--cacert', ca, '--tls-max', '1.2', `https://${strict.address}/healthz`);
    assert.notEqual(c.status, 0, 'curl limited to TLS 1.2 fails');
  } finally {
    await strict.stop();
  }
});

test('bad TLS options stop the start with an error that names the option', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-tls-bad-'));
  const run = (...args) =>
    spawnSync(process.env.ATRIUMD, ['--data-dir', path.join(dir, 'data'), '--listen', '127.0.0.1:0', ...args], {
      encoding: 'utf8',
      timeout: 30000,
      env: { ...process.env, ATRIUM_ADMIN_PASSWORD: 'e2e-root-passphrase' },
    });
  try {
    issue('other', 'atrium-other');
    const cases = [
      [['--tls-cert', certFile], /--tls-cert and --tls-key go together/],
      [['--tls-cert', path.join(pki, 'missing.pem'), '--tls-key', path.join(pki, 'other.key')], /--tls-cert .*missing\.pem: cannot read it/],
      [['--tls-cert', path.join(pki, 'other.ext'), '--tls-key', path.join(pki, 'other.key')], /--tls-cert .*not a PEM certificate/],
      [['--tls-cert', path.join(pki, 'other.pem'), '--tls-key', path.join(pki, 'strict.key')], /does not belong to the certificate/],
      [['--tls-cert', path.join(pki, 'other.pem'), '--tls-key', path.join(pki, 'other.key'), '--tls-min-version', '1.1'], /--tls-min-version.*1\.2 or 1\.3/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.notEqual(r.status, 0, `${args.join(' ')}: exits with an error`);
      assert.match(r.stdout + r.stderr, message, args.join(' '));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a remote worker reaches an HTTPS server with --ca-file and runs a job; without the CA it is refused', async () => {
  issue('jobs', 'atrium-jobs');
  const s = new Server(
    ['--tls-cert', path.join(pki, 'jobs.pem'), '--tls-key', path.join(pki, 'jobs.key'), '--job-slots', '0'],
    'atrium-tls-jobs-',
    { ca: caText },
  );
  await s.start();
  const workers = [];
  const startWorker = (name, extra) => {
    const tokenFile = path.join(s.dir, `${name}.token`);
    fs.writeFileSync(tokenFile, `${s.adminToken}\n`);
    const log = path.join(s.dir, `${name}.log`);
    const out = fs.openSync(log, 'a');
    const p = spawn(
      process.env.ATRIUMD,
      ['worker', '--server', `https://${s.address}`, '--token-file', tokenFile, '--slots', '1', '--name', name, '--work-dir', path.join(s.dir, name), '--job-sandbox', 'never', ...extra],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    const exited = new Promise((resolve) => p.on('exit', (code) => resolve(code)));
    workers.push({ p, exited });
    return { log, exited };
  };
  try {
    const project = await s.http('POST', '/v1/projects', { body: { name: 'tls jobs' } });
    // Without the test CA the system store does not trust the certificate: no job is claimed.
    const untrusted = startWorker('untrusting', []);
    await waitFor(() => /certificate verify failed/.test(fs.readFileSync(untrusted.log, 'utf8')), 20000, 'the verify failure');
    const job = await s.http('POST', '/v1/jobs', { body: { project_id: project.json.id, kind: 'script', language: 'bash', script: 'echo over-tls' } });
    assert.equal(job.status, 201, job.body);
    startWorker('trusting', ['--ca-file', ca]);
    const done = await waitFor(
      async () => {
        const r = await s.http('GET', `/v1/jobs/${job.json.id}`);
        return ['succeeded', 'failed'].includes(r.json.status) ? r.json : false;
      },
      30000,
      'the job to finish',
    );
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
  } finally {
    for (const w of workers) {
      if (w.p.exitCode === null) process.kill(w.p.pid, 'SIGTERM');
      await w.exited;
    }
    await s.stop();
  }
});
