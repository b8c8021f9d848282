// A cell's CodeMirror 6 editor, co-edited with @codemirror/collab's central-authority
// protocol against atriumd (docs/api.md, "Co-editing cells"):
//   push: POST /v1/projects/{p}/cells/{c}/changes {version, client_id, updates:[{changes}]}
//         200 {version} confirms them; 409 version_conflict carries details.updates since
//         `version`, which are received before the push is retried; 410 (or a 400 refusal)
//         reloads the cell and rebases the unconfirmed changes onto it (rebase.js).
//   pull: the project's /v1/ws subscription delivers project.cell_changed events
//         {cell_id, changes, client_id, version}; a gap (or a whole-cell edit) is filled with
//         GET …/updates?since=V. After a reconnect the page calls `resync()`.
// Unconfirmed local changes live in the collab plugin until the server accepts them, so a
// lost connection loses nothing: they are pushed again when the server answers.
// Other people's cursors (presence) are drawn as widgets whose names are text nodes.
import { EditorView, keymap, Decoration, WidgetType, ViewPlugin } from '@codemirror/view';
import { EditorState, EditorSelection, StateField, StateEffect, ChangeSet } from '@codemirror/state';
import { basicSetup } from 'codemirror';
import { indentWithTab } from '@codemirror/commands';
import { collab, receiveUpdates, sendableUpdates, getSyncedVersion, getClientID } from '@codemirror/collab';
import { sql } from '@codemirror/lang-sql';
import { python } from '@codemirror/lang-python';
import { api, ApiError } from './api.js';
import * as rt from './realtime.js';
import { rebaseOnto } from './rebase.js';

/** Normalizes an update's `changes` (one ChangeSet JSON) into a ChangeSet. */
function changeSet(json) {
  return ChangeSet.fromJSON(json);
}

/** The change sets of one project.cell_changed event: a list of ChangeSet JSONs, in order. */
export function eventChanges(data) {
  return Array.isArray(data?.changes) ? data.changes : [];
}

// ---- remote cursors -------------------------------------------------------------------
const setCursors = StateEffect.define();

class CursorWidget extends WidgetType {
  constructor(name, hue) {
    super();
    this.name = name;
    this.hue = hue;
  }
  eq(o) {
    return o.name === this.name && o.hue === this.hue;
  }
  toDOM() {
    const s = document.createElement('span');
    s.className = 'cm-remote-cursor';
    s.style.borderColor = `hsl(${this.hue} 70% 30%)`;
    const label = document.createElement('span');
    label.className = 'cm-remote-name';
    label.style.background = `hsl(${this.hue} 70% 24%)`;
    label.textContent = this.name; // text, never HTML
    s.appendChild(label);
    return s;
  }
  ignoreEvent() {
    return true;
  }
}

const cursorField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (e.is(setCursors)) {
        const len = tr.state.doc.length;
        const ranges = e.value
          .map((c) => ({ ...c, head: Math.max(0, Math.min(len, c.head | 0)) }))
          .sort((a, b) => a.head - b.head)
          .map((c) => Decoration.widget({ widget: new CursorWidget(c.name, c.hue), side: 1 }).range(c.head));
        deco = Decoration.set(ranges, true);
      }
    }
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

function hueOf(s) {
  let h = 0;
  for (const ch of s) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

// ---- the editor ------------------------------------------------------------------------

/** Our unconfirmed changes composed into one ChangeSet (synced doc → current doc), or null. */
function pendingChanges(state) {
  const u = sendableUpdates(state);
  return u.length ? u.map((x) => x.changes).reduce((a, b) => a.compose(b)) : null;
}

/**
 * Creates a collaborative editor for one cell in `parent`.
 * `cell`: {cell_id, kind, content, version}; `projectId`; `onSelection(head, anchor,
 * version)` reports the local cursor for presence, in the coordinates of the synced
 * version `version` (what every other client can map: our unconfirmed changes are taken
 * out); `onError(message)` shows failures;
 * `readOnly` for viewers. Returns a controller {view, receive(event), resync(),
 * setCursors(list), destroy(), flush()}.
 */
export function createCellEditor(parent, { projectId, cell, readOnly = false, onSelection, onError, label }) {
  const base = `/v1/projects/${encodeURIComponent(projectId)}/cells/${encodeURIComponent(cell.cell_id)}`;
  let pushing = false;
  let pushAgain = false;
  let pulling = false;
  let destroyed = false;
  let retryDelay = 250;
  let retryTimer = null;
  let lastCursors = '';
  let sentInsidePending = false; // the last cursor sent was taken back through unconfirmed changes
  let socketStalledAt = -Infinity; // when a command over the WebSocket last went unanswered
  let cursorList = []; // [{key, name, head, version}] as last given to setCursors
  let cursorsAhead = false; // some cursor is at a version we have not reached

  const lang = cell.kind === 'python' ? python() : sql();
  const plugin = ViewPlugin.fromClass(
    class {
      update(u) {
        if (u.docChanged && sendableUpdates(u.state).length) schedulePush();
        if (!onSelection) return;
        // Tell the others where our cursor is when it moved in a way they cannot work out
        // themselves: we moved it (typing, clicks, keys); a remote update moved it otherwise
        // than their mapping does (assoc 1, remotePos); or it was in our unconfirmed text
        // (sent as the insertion point) and that text is confirmed now. A cursor merely
        // carried along by remote updates is not sent again: with 20 editors that was 19
        // presence messages, each relayed to 19 pages, per keystroke.
        const r = u.state.selection.main;
        const was = u.startState.selection.main;
        const carried = u.docChanged && !u.selectionSet;
        const movedOtherwise = carried && (u.changes.mapPos(was.head, 1) !== r.head || u.changes.mapPos(was.anchor, 1) !== r.anchor);
        const confirmed = sentInsidePending && getSyncedVersion(u.startState) !== getSyncedVersion(u.state);
        if (u.selectionSet || movedOtherwise || confirmed) {
          const back = pendingChanges(u.state)?.invertedDesc;
          sentInsidePending = !!back;
          const at = (pos) => (back ? back.mapPos(pos, -1) : pos);
          onSelection(at(r.head), at(r.anchor), getSyncedVersion(u.state));
        }
      }
    },
  );

  // A local change never starts or ends between the two halves of a surrogate pair: the
  // server stores UTF-8 and refuses such a change set with 400 (docs/realtime.md,
  // "Co-editing"), which would cost the unsent edits. Seen with the cursor placed by
  // Home/End on a wrapped line that ends in an emoji. Remote updates are not filtered
  // (collab applies them with filter: false).
  const insidePair = (doc, pos) => {
    if (pos <= 0 || pos >= doc.length) return false;
    const two = doc.sliceString(pos - 1, pos + 1);
    return two.length === 2 && /[\uD800-\uDBFF]/.test(two[0]) && /[\uDC00-\uDFFF]/.test(two[1]);
  };
  const surrogateGuard = EditorState.transactionFilter.of((tr) => {
    if (!tr.docChanged) return tr;
    const doc = tr.startState.doc;
    let cut = false;
    tr.changes.iterChangedRanges((fromA, toA) => {
      if (insidePair(doc, fromA) || insidePair(doc, toA)) cut = true;
    });
    if (!cut) return tr;
    const specs = [];
    let end = 0;
    tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
      const from = insidePair(doc, fromA) ? fromA + 1 : fromA;
      const to = Math.max(from, insidePair(doc, toA) ? toA + 1 : toA);
      specs.push({ from, to, insert: inserted });
    });
    const changes = tr.startState.changes(specs);
    changes.iterChanges((_fa, _ta, _fb, toB) => {
      end = toB;
    });
    return { changes, selection: EditorSelection.cursor(end), scrollIntoView: tr.scrollIntoView };
  });

  const extensions = (startVersion) => [
    basicSetup,
    keymap.of([indentWithTab]),
    lang,
    collab({ startVersion }),
    surrogateGuard,
    cursorField,
    plugin,
    EditorState.readOnly.of(readOnly),
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({ 'aria-label': label || `${cell.kind} cell`, 'data-cell-id': cell.cell_id }),
  ];

  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: cell.content ?? '',
      extensions: extensions(cell.version ?? 0),
    }),
  });

  // A read-only handle for tests and debugging: the text, unconfirmed updates and version.
  view.dom.atrium = {
    doc: () => view.state.doc.toString(),
    pending: () => sendableUpdates(view.state).length,
    version: () => getSyncedVersion(view.state),
    head: () => view.state.selection.main.head,
    remoteCursors: () => {
      const out = [];
      for (const it = view.state.field(cursorField).iter(); it.value; it.next()) out.push({ name: it.value.spec.widget.name, head: it.from });
      return out;
    },
  };

  // The text at the synced version (what the server confirmed), which unconfirmed local
  // changes are relative to: kept so that `reload` can rebase them.
  let synced = view.state.doc;

  /** Draws `cursorList`, each mapped into our document (remotePos). */
  function placeCursors() {
    const v = getSyncedVersion(view.state);
    cursorsAhead = cursorList.some((c) => typeof c.version === 'number' && c.version > v);
    const placed = cursorList.map((c) => ({ key: c.key, name: c.name, head: remotePos(c.head | 0, c.version), hue: hueOf(c.key || c.name) }));
    view.dispatch({ effects: setCursors.of(placed) });
  }

  // The last updates applied, {version (after it), changes}, to bring a remote cursor
  // reported at an older version up to ours.
  const recent = [];

  function apply(updates) {
    if (!updates.length) return;
    let v = getSyncedVersion(view.state);
    for (const u of updates) {
      synced = u.changes.apply(synced);
      recent.push({ version: ++v, changes: u.changes });
    }
    if (recent.length > 256) recent.splice(0, recent.length - 256);
    view.dispatch(receiveUpdates(view.state, updates));
    // Cursors reported at a version we had not reached are placed again now that we may have.
    if (cursorsAhead) placeCursors();
  }

  /**
   * A position reported by another client at synced version `v` (its unconfirmed changes
   * taken out), in our document: mapped over the updates since `v` that we hold, then over
   * our own unconfirmed changes. A `v` ahead of ours (their updates are on the way) or too
   * old for what we keep is used as it is, clamped to the document.
   */
  function remotePos(pos, v) {
    let p = pos;
    const mine = getSyncedVersion(view.state);
    if (typeof v === 'number' && v < mine && recent.length && recent[0].version <= v + 1) {
      for (const r of recent) if (r.version > v) p = r.changes.mapPos(Math.min(p, r.changes.length), 1);
    }
    const pending = pendingChanges(view.state);
    if (pending) p = pending.mapPos(Math.min(p, pending.length), 1);
    return Math.max(0, Math.min(view.state.doc.length, p));
  }

  function schedulePush() {
    if (readOnly) return;
    if (pushing) {
      pushAgain = true;
      return;
    }
    queueMicrotask(push);
  }

  /**
   * POST …/changes: over the open WebSocket as a command when there is one (a frame on a
   * socket that is already there: no HTTP request per keystroke), else with fetch. Either
   * way resolves the answer's body or rejects with an ApiError (status 0 when the
   * connection went: the push is retried, and a change the server did take comes back
   * as ours in the 409's updates, which collab confirms).
   */
  async function postChanges(body) {
    const viaHttp = () => api('POST', `${base}/changes`, { body });
    if (!rt.isConnected() || Date.now() - socketStalledAt < 60000) return viaHttp();
    let r;
    let timer;
    const stalled = new Promise((resolve) => (timer = setTimeout(() => resolve(null), 5000)));
    try {
      r = await Promise.race([rt.command('POST', `${base}/changes`, body), stalled]);
    } catch (e) {
      throw new ApiError(0, { code: 'unavailable', message: e.message });
    } finally {
      clearTimeout(timer);
    }
    if (r === null) {
      // An open socket that does not answer (a stalled proxy): HTTP for a minute. Should
      // the command still arrive, the version check refuses one of the two.
      socketStalledAt = Date.now();
      return viaHttp();
    }
    if (r.ok) return r.body;
    throw new ApiError(r.status ?? 0, r.body?.error ?? r.error);
  }

  async function push() {
    if (destroyed || pushing) return;
    const updates = sendableUpdates(view.state);
    if (!updates.length) return;
    pushing = true;
    pushAgain = false;
    const version = getSyncedVersion(view.state);
    try {
      const r = await postChanges({
        version,
        client_id: getClientID(view.state),
        updates: updates.map((u) => ({ changes: u.changes.toJSON() })),
      });
      retryDelay = 250;
      // Accepted on `version`: nothing came between, so these updates are confirmed now
      // (the matching event, arriving later, is skipped by its version).
      if (!destroyed && getSyncedVersion(view.state) === version && typeof r?.version === 'number') {
        const n = r.version - version;
        apply(updates.slice(0, n).map((u) => ({ changes: u.changes, clientID: u.clientID })));
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.code === 'version_conflict') {
        // Others got there first: take their updates (rebasing ours), then push again.
        receiveList(e.details?.updates ?? []);
        if (getSyncedVersion(view.state) === version) await pull();
        if (getSyncedVersion(view.state) === version) {
          // Nothing new arrived: try again shortly rather than spin.
          pushing = false;
          clearTimeout(retryTimer);
          retryTimer = setTimeout(push, retryDelay);
          retryDelay = Math.min(5000, retryDelay * 2);
          return;
        }
        pushAgain = true;
      } else if (e instanceof ApiError && (e.status === 410 || e.status === 400)) {
        // Too old to catch up, or changes the server cannot apply: start over from its
        // text with our unsent edits re-applied on top (reload).
        await reload();
      } else if (e instanceof ApiError && (e.status === 0 || e.status === 429 || e.status >= 500)) {
        // The server is away: keep the updates and try again with backoff.
        pushing = false;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(push, retryDelay);
        retryDelay = Math.min(5000, retryDelay * 2);
        return;
      } else {
        onError?.(e.message);
      }
    }
    pushing = false;
    if (pushAgain || sendableUpdates(view.state).length) schedulePush();
  }

  /**
   * Applies server updates [{version, changes, client_id}] (one ChangeSet JSON each;
   * `version` is the cell's version after it) that follow the synced version; returns how
   * many were applied.
   */
  function receiveList(list) {
    const v = getSyncedVersion(view.state);
    const out = [];
    for (const u of [...list].sort((a, b) => a.version - b.version)) {
      if (u.version === v + out.length + 1) out.push({ changes: changeSet(u.changes), clientID: u.client_id ?? '' });
    }
    apply(out);
    return out.length;
  }

  async function pull() {
    if (pulling || destroyed) return;
    pulling = true;
    try {
      for (;;) {
        const since = getSyncedVersion(view.state);
        const r = await api('GET', `${base}/updates?since=${since}`);
        const n = receiveList(r.updates ?? []);
        if (n === 0 || getSyncedVersion(view.state) >= (r.version ?? 0)) break;
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 410) await reload();
      else if (!(e instanceof ApiError && e.status === 0)) onError?.(e.message);
    } finally {
      pulling = false;
    }
    if (sendableUpdates(view.state).length) schedulePush();
  }

  /**
   * Starts over from the server's current text (the history is too old to catch up, or
   * the server refused our changes). Unsent edits are kept: they are rebased onto the
   * server's text (rebase.js) and become one new local change, pushed as usual.
   */
  async function reload() {
    try {
      const c = await api('GET', base);
      const local = pendingChanges(view.state);
      const head = view.state.selection.main.head;
      const theirs = c.content ?? '';
      const mine = local ? rebaseOnto(synced.toString(), local, theirs) : null;
      view.setState(EditorState.create({ doc: theirs, extensions: extensions(c.version ?? 0) }));
      synced = view.state.doc;
      recent.length = 0;
      if (mine && !mine.empty) {
        view.dispatch({ changes: mine, selection: EditorSelection.cursor(Math.min(head, mine.newLength)) });
        onError?.('This cell was reloaded from the server; your unsent edits were re-applied on top of it.');
      }
    } catch (e) {
      onError?.(e.message);
    }
  }

  return {
    view,
    /** A project.cell_changed / project.cell_edited event of this cell. */
    receive(ev) {
      const v = getSyncedVersion(view.state);
      if (ev.type === 'project.cell_changed') {
        const sets = eventChanges(ev.data);
        const first = ev.data.version - sets.length; // version before them
        if (ev.data.version <= v) return;
        if (first === v) {
          apply(sets.map((cs) => ({ changes: changeSet(cs), clientID: ev.data.client_id ?? '' })));
          if (sendableUpdates(view.state).length) schedulePush();
          return;
        }
      } else if (ev.type === 'project.cell_edited' && (ev.data.version ?? 0) <= v) {
        return;
      }
      pull();
    },
    resync() {
      pull();
      schedulePush();
    },
    /**
     * Draws other people's cursors: [{key, name, head, version}] with `head` at their synced
     * `version` (see onSelection). The same list twice draws nothing new.
     */
    setCursors(list) {
      const key = JSON.stringify(list);
      if (key === lastCursors) return;
      lastCursors = key;
      cursorList = list;
      placeCursors();
    },
    pendingCount() {
      return sendableUpdates(view.state).length;
    },
    version() {
      return getSyncedVersion(view.state);
    },
    destroy() {
      destroyed = true;
      clearTimeout(retryTimer);
      view.destroy();
    },
  };
}
