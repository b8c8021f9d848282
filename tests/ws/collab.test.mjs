// Co-editing end to end with real @codemirror/collab clients against the real atriumd
// (docs/realtime.md, "Co-editing"). Headless EditorStates (no DOM) running `collab()`
// make concurrent random edits with non-ASCII text and emoji; they push with
// `POST …/cells/{cell_id}/changes` (one of them over the WebSocket `command` op), rebase
// on the updates a 409 carries (`receiveUpdates` rebases the unconfirmed ones, as
// `rebaseUpdates` does for a server), and pull from the WebSocket subscription (the
// `project.cell_changed` events) or from `GET …/updates?since=`. An API client replaces
// the whole cell once in the middle (PATCH). At the end every client's document and the
// server's cell content are identical.
//
//   ATRIUMD=build/atriumd node --test tests/ws/collab.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EditorState, ChangeSet } from '@codemirror/state';
import { collab, getSyncedVersion, receiveUpdates, sendableUpdates, rebaseUpdates } from '@codemirror/collab';
import { Server, request, waitFor } from './support.mjs';

let server;
before(async () => {
  server = await new Server().start();
});
after(async () => {
  await server?.stop();
});

// A deterministic generator (mulberry32), so a failure can be replayed with its seed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'Z', ' ', '\n', 'ä', 'ß', 'é', '日本', 'Ω', '😀', '👩‍💻', '🎉x', 'ñ', '—', 'select ', '\t'];

/** `pos` moved off the middle of a surrogate pair (CodeMirror never edits there). */
function safe(doc, pos) {
  if (pos <= 0 || pos >= doc.length) return pos;
  const code = doc.sliceString(pos - 1, pos).charCodeAt(0);
  return code >= 0xd800 && code <= 0xdbff ? pos - 1 : pos;
}

/** One collab client of one cell. */
class Peer {
  constructor(name, { token, project, cell, version, content, ws, pull }) {
    Object.assign(this, { name, token, project, cell, ws, pull });
    this.state = EditorState.create({
      doc: content,
      // The server counts "\r" as a unit of its own: only "\n" separates lines.
      extensions: [EditorState.lineSeparator.of('\n'), collab({ startVersion: version, clientID: name })],
    });
    this.pushing = false;
    this.waitFor = 0; // after a 200: the version our pushed updates reach once pulled
    this.pulling = false;
    this.conflicts = 0;
    this.pushes = 0;
  }

  get version() {
    return getSyncedVersion(this.state);
  }

  path(suffix) {
    return `/v1/projects/${this.project}/cells/${this.cell}/${suffix}`;
  }

  /** Applies server updates `[{version, changes, client_id}]`, skipping those we have. */
  receive(updates) {
    const fresh = updates.filter((u) => u.version > this.version);
    if (!fresh.length) return;
    assert.equal(fresh[0].version, this.version + 1, `${this.name}: a gap in the updates`);
    this.state = receiveUpdates(
      this.state,
      fresh.map((u) => ({ changes: ChangeSet.fromJSON(u.changes), clientID: u.client_id })),
    ).state;
  }

  /** Pulls with GET …/updates?since= (the fallback when an event leaves a gap). */
  async pullHttp() {
    if (this.pulling) return;
    this.pulling = true;
    try {
      const r = await request(server.address, 'GET', this.path(`updates?since=${this.version}`), { token: this.token });
      if (r.status === 400) return; // we are ahead of what the projection had; the next pull sees it
      assert.equal(r.status, 200, r.body);
      this.receive(r.json.updates);
    } finally {
      this.pulling = false;
    }
  }

  /** A `project.cell_changed` event from the subscription. */
  onEvent(e) {
    if (e.data.cell_id !== this.cell) return;
    if (e.type === 'project.cell_changed') {
      const first = e.data.version - e.data.changes.length + 1;
      if (first <= this.version + 1) {
        this.receive(e.data.changes.map((changes, i) => ({ version: first + i, changes, client_id: e.data.client_id })));
        return;
      }
    }
    // A whole-cell edit (its change set is the server's to compute) or a gap: ask.
    void this.pullHttp();
  }

  /** One random local edit: an insert, a delete or a replacement. */
  edit(random) {
    const doc = this.state.doc;
    const from = safe(doc, Math.floor(random() * (doc.length + 1)));
    const span = random() < 0.4 ? Math.floor(random() * 4) : 0;
    const to = safe(doc, Math.min(doc.length, from + span));
    let insert = '';
    if (random() < 0.85 || to === from) {
      for (let n = 1 + Math.floor(random() * 3); n > 0; n--) insert += PIECES[Math.floor(random() * PIECES.length)];
    }
    this.state = this.state.update({ changes: { from, to: Math.max(from, to), insert } }).state;
  }

  /** Sends the unconfirmed updates when nothing of ours is in flight. */
  async push() {
    if (this.pushing || this.version < this.waitFor) return;
    const updates = sendableUpdates(this.state);
    if (!updates.length) return;
    this.pushing = true;
    try {
      const body = {
        version: this.version,
        client_id: this.name,
        updates: updates.map((u) => ({ changes: u.changes.toJSON() })),
      };
      const target = this.path('changes');
      let status, json;
      if (this.ws) {
        const r = await this.ws.command('POST', target, body);
        ({ status } = r);
        json = r.body;
      } else {
        const r = await request(server.address, 'POST', target, { token: this.token, body });
        ({ status, json } = r);
      }
      this.pushes++;
      if (status === 200) {
        this.waitFor = json.version;
      } else {
        assert.equal(status, 409, `${this.name}: ${JSON.stringify(json)}`);
        assert.equal(json.error.code, 'version_conflict');
        this.conflicts++;
        // Rebase on what we missed; the next push sends our updates on top of it.
        this.receive(json.error.details.updates);
      }
    } finally {
      this.pushing = false;
    }
  }
}

test('collab clients co-edit one cell with non-ASCII text and emoji and converge', async () => {
  const users = await Promise.all(['alice', 'bob', 'carol', 'dave'].map((n) => server.user(n)));
  const [alice] = users;
  const as = (method, target, body) => request(server.address, method, target, { token: alice.token, body });
  const p = await as('POST', '/v1/projects', { name: 'co-editing' });
  assert.equal(p.status, 201, p.body);
  for (const u of users.slice(1)) {
    const r = await as('POST', `/v1/projects/${p.json.id}/members`, { user_id: u.id, role: 'editor' });
    assert.equal(r.status, 200, r.body);
  }
  const made = await as('POST', `/v1/projects/${p.json.id}/cells`, { kind: 'sql', content: 'select 1 -- Größe 😀\r\n' });
  assert.equal(made.status, 201, made.body);
  const cell = made.json.cell_id;

  // Each client subscribes, then loads the cell (the version it starts from).
  const sockets = [];
  const peers = [];
  for (const [i, u] of users.entries()) {
    const ws = await server.ws(u.token);
    sockets.push(ws);
    const sub = await ws.call({ op: 'subscribe', id: 'p', projects: [p.json.id] });
    assert.equal(sub.ok, true, JSON.stringify(sub));
    const got = await request(server.address, 'GET', `/v1/projects/${p.json.id}/cells/${cell}`, { token: u.token });
    assert.equal(got.status, 200, got.body);
    const peer = new Peer(`${u.id.slice(-6)}-${i}`, {
      token: u.token,
      project: p.json.id,
      cell,
      version: got.json.version,
      content: got.json.content,
      // dave pushes over the socket's `command` op; carol pulls only by polling GET.
      ws: i === 3 ? ws : null,
      pull: i === 2 ? 'http' : 'ws',
    });
    if (peer.pull === 'ws') {
      let seen = 0;
      peer.follow = () => {
        const events = ws.events('p');
        for (; seen < events.length; seen++) peer.onEvent(events[seen]);
      };
    } else {
      peer.follow = () => peer.pullHttp();
    }
    peers.push(peer);
  }

  const random = rng(Number(process.env.COLLAB_SEED ?? 20261204));
  const edits = 80;
  let patched = false;
  for (let round = 0; round < edits; round++) {
    for (const peer of peers) {
      peer.edit(random);
      if (random() < 0.5) void peer.push();
      peer.follow();
    }
    if (round >= edits / 2 && !patched) {
      // An API client replaces the whole cell; collab clients see it as one update.
      const now = await as('GET', `/v1/projects/${p.json.id}/cells/${cell}`);
      const r = await as('PATCH', `/v1/projects/${p.json.id}/cells/${cell}`, {
        content: `${now.json.content}\n-- replaced by the API ✓`,
        base_version: now.json.version,
        op_id: `api-edit-${round}`,
      });
      if (r.status === 200) patched = true;
      else assert.equal(r.status, 409, r.body); // a co-editor got there first: try next round
    }
    await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
  }
  assert.ok(patched, 'the whole-cell PATCH went through');

  // Flush: push and pull until every client has no unconfirmed update and all are on
  // the server's version.
  const current = async () =>
    (await request(server.address, 'GET', `/v1/projects/${p.json.id}/cells/${cell}`, { token: alice.token })).json;
  await waitFor(
    async () => {
      for (const peer of peers) {
        await peer.push();
        peer.follow();
        if (peer.pull === 'ws') await peer.pullHttp(); // in case an event is still on its way
      }
      const now = await current();
      return peers.every((peer) => sendableUpdates(peer.state).length === 0 && peer.version === now.version);
    },
    60000,
    'every client to be confirmed and synced',
  );

  const final = await current();
  for (const peer of peers) assert.equal(peer.state.doc.toString(), final.content, `${peer.name} differs`);
  assert.ok(final.content.includes('-- replaced by the API ✓') || final.content.length > 0);
  assert.ok(/[^\x00-\x7f]/.test(final.content), 'the result holds non-ASCII text');
  const total = peers.reduce((n, peer) => n + peer.conflicts, 0);
  console.log(
    `collab: version ${final.version}, ${final.content.length} UTF-16 units, ` +
      `${peers.map((x) => x.pushes).join('/')} pushes, ${total} conflicts rebased`,
  );
  assert.ok(total > 0, 'concurrent pushes conflicted at least once (the rebase path ran)');

  // The server's history replays to the same text: every update since the cell's
  // first version, applied to its first content.
  const history = await as('GET', `/v1/projects/${p.json.id}/cells/${cell}/updates?since=1`);
  assert.equal(history.status, 200, history.body);
  let doc = EditorState.create({ doc: 'select 1 -- Größe 😀\r\n', extensions: EditorState.lineSeparator.of('\n') }).doc;
  for (const u of history.json.updates) doc = ChangeSet.fromJSON(u.changes).apply(doc);
  assert.equal(doc.toString(), final.content);

  // rebaseUpdates, as a central authority would use it, agrees with the server's 409
  // answers: an update based on an old version rebased over what followed applies.
  const old = history.json.updates.slice(0, 3);
  const base = old.reduce((d, u) => ChangeSet.fromJSON(u.changes).apply(d), EditorState.create({
    doc: 'select 1 -- Größe 😀\r\n',
    extensions: EditorState.lineSeparator.of('\n'),
  }).doc);
  const mine = [{ changes: ChangeSet.of({ from: 0, insert: 'ü😀 ' }, base.length), clientID: 'late' }];
  const rebased = rebaseUpdates(mine, history.json.updates.slice(3).map((u) => ({
    changes: ChangeSet.fromJSON(u.changes),
    clientID: u.client_id,
  })));
  const pushed = await as('POST', `/v1/projects/${p.json.id}/cells/${cell}/changes`, {
    version: final.version,
    client_id: 'late',
    updates: rebased.map((u) => ({ changes: u.changes.toJSON() })),
  });
  assert.equal(pushed.status, 200, pushed.body);
  assert.ok((await current()).content.includes('ü😀 '));

  for (const ws of sockets) ws.close();
});

test('a WebSocket command runs POST …/changes and subscribers get the event', async () => {
  const bob = await server.user('bob2');
  const as = (method, target, body) => request(server.address, method, target, { token: bob.token, body });
  const p = await as('POST', '/v1/projects', { name: 'ws command' });
  const made = await as('POST', `/v1/projects/${p.json.id}/cells`, { kind: 'python', content: 'x = "ü"' });
  assert.equal(made.status, 201, made.body);
  const ws = await server.ws(bob.token);
  try {
    assert.equal((await ws.call({ op: 'subscribe', id: 's', projects: [p.json.id] })).ok, true);
    const path = `/v1/projects/${p.json.id}/cells/${made.json.cell_id}/changes`;
    const ok = await ws.command('POST', path, {
      version: 1,
      client_id: 'ws-client',
      updates: [{ changes: [6, [0, '😀'], 1] }],
    });
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.equal(ok.body.version, 2);
    const event = await ws.next((m) => m.op === 'event' && m.event.type === 'project.cell_changed');
    assert.deepEqual(event.event.data, {
      cell_id: made.json.cell_id,
      changes: [[6, [0, '😀'], 1]],
      client_id: 'ws-client',
      version: 2,
    });
    const stale = await ws.command('POST', path, { version: 1, client_id: 'ws-client', updates: [{ changes: [7] }] });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.details.updates.length, 1);
    const cut = await ws.command('POST', path, { version: 2, client_id: 'ws-client', updates: [{ changes: [7, 2] }] });
    assert.equal(cut.status, 400, JSON.stringify(cut));
    const got = await as('GET', `/v1/projects/${p.json.id}/cells/${made.json.cell_id}`);
    assert.equal(got.json.content, 'x = "ü😀"');
  } finally {
    ws.close();
  }
});
