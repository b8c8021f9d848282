// The console's WebSocket client for GET /v1/ws (docs/realtime.md). The browser sends the
// session cookie with the upgrade (same origin). One socket per page:
//  - subscriptions remember the last event position they delivered and, after a lost
//    connection, are re-sent with `after` = that position, so nothing is missed or repeated;
//  - a lost socket reconnects with exponential backoff (0.25 s doubling to 5 s) and
//    listeners hear `status` changes (the page shows a banner while it is down);
//  - presence states are re-announced after a reconnect.

const listeners = { status: new Set(), presence: new Set(), reconnected: new Set() };
let socket = null;
let connected = false;
let everConnected = false;
let attempt = 0;
let retryTimer = null;
let wanted = false;
let nextId = 1;
const subscriptions = new Map(); // id -> {projects, streams, after, onEvent, pending}
const pending = new Map(); // request id -> {resolve, reject}
const presenceStates = new Map(); // project -> state
let mySessionId = null;
const presenceIds = new Map(); // presence request id -> project

/** This page's presence session id, once the server told it (null before). */
export function mySession() {
  return mySessionId;
}

function emit(kind, ...args) {
  listeners[kind].forEach((fn) => fn(...args));
}

/** `kind`: 'status' (connected: bool), 'presence' (message), 'reconnected' (). Returns an unsubscribe function. */
export function on(kind, fn) {
  listeners[kind].add(fn);
  return () => listeners[kind].delete(fn);
}

export function isConnected() {
  return connected;
}

/** Starts (or keeps) the socket open. */
export function start() {
  wanted = true;
  if (!socket) open();
}

/** Closes the socket and forgets subscriptions (sign-out). */
export function stop() {
  wanted = false;
  clearTimeout(retryTimer);
  subscriptions.clear();
  presenceStates.clear();
  if (socket) socket.close();
  socket = null;
}

function open() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    schedule();
    return;
  }
  socket = ws;
  ws.onopen = () => {
    const again = everConnected;
    connected = true;
    everConnected = true;
    attempt = 0;
    for (const [id, s] of subscriptions) sendSubscribe(id, s);
    for (const [project, state] of presenceStates) sendPresence(project, state);
    emit('status', true);
    if (again) emit('reconnected');
  };
  ws.onmessage = (m) => {
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    handle(msg);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    const was = connected;
    connected = false;
    for (const [, p] of pending) p.reject(new Error('the connection was lost'));
    pending.clear();
    presenceIds.clear();
    if (was || !everConnected) emit('status', false);
    if (wanted) schedule();
  };
}

function schedule() {
  clearTimeout(retryTimer);
  const delay = Math.min(5000, 250 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
  attempt++;
  retryTimer = setTimeout(() => {
    if (wanted && !socket) open();
  }, delay);
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(msg));
    return true;
  }
  return false;
}

function sendPresence(project, state) {
  const id = `p${nextId++}`;
  if (send({ op: 'presence', project, state, id })) presenceIds.set(id, project);
}

function sendSubscribe(id, s) {
  const msg = { op: 'subscribe', id };
  if (s.projects) msg.projects = s.projects;
  if (s.streams) msg.streams = s.streams;
  if (s.after !== null) msg.after = s.after;
  send(msg);
}

function handle(msg) {
  if (msg.op === 'event') {
    const s = subscriptions.get(msg.subscription);
    if (!s) return;
    if (s.after !== null && msg.event.position <= s.after) return;
    s.after = msg.event.position;
    s.onEvent(msg.event);
  } else if (msg.op === 'result') {
    if (presenceIds.has(msg.id)) {
      // Our presence was relayed: learn our session id and who is already there.
      const project = presenceIds.get(msg.id);
      presenceIds.delete(msg.id);
      if (msg.ok && msg.session) {
        mySessionId = msg.session;
        emit('presence', { project, sessions: msg.sessions ?? [], self: true });
      }
      return;
    }
    const s = subscriptions.get(msg.id);
    if (s && msg.subscription === msg.id && msg.ok) {
      if (s.after === null) s.after = msg.after;
      return;
    }
    const p = pending.get(msg.id);
    if (p) {
      pending.delete(msg.id);
      p.resolve(msg);
    }
  } else if (msg.op === 'presence') {
    emit('presence', msg);
  } else if (msg.op === 'error' && msg.code === 'forbidden' && msg.subscription) {
    subscriptions.delete(msg.subscription);
  }
}

/**
 * Follows projects and/or streams: `onEvent(envelope)` is called once per event, in
 * position order, across reconnects. `after` absent = from now. Returns a function that
 * ends the subscription.
 */
export function subscribe({ projects, streams, after = null }, onEvent) {
  const id = `s${nextId++}`;
  const s = { projects, streams, after, onEvent };
  subscriptions.set(id, s);
  start();
  sendSubscribe(id, s);
  return () => {
    if (subscriptions.delete(id)) send({ op: 'unsubscribe', id });
  };
}

/** Runs an API request over the socket; resolves the `result` message. */
export function command(method, path, body, headers) {
  const id = `c${nextId++}`;
  return new Promise((resolve, reject) => {
    if (!send({ op: 'command', id, command: { method, path, body, headers } })) {
      reject(new Error('not connected'));
      return;
    }
    pending.set(id, { resolve, reject });
  });
}

/** Announces this session's presence in a project (re-sent after a reconnect); null forgets it. */
export function presence(project, state) {
  if (state === null) {
    // A null state leaves the project's board; the others are told `gone` (as on close).
    if (presenceStates.delete(project)) sendPresence(project, null);
    return;
  }
  presenceStates.set(project, state);
  sendPresence(project, state);
}
