// Entry point of the Atrium console: session, hash routing, layout, connection banner.
import { render } from 'preact';
import { useState, useEffect } from 'preact/hooks';
import { html, ErrorText, Field } from './ui.js';
import { api, get, post, onReachability, onUnauthenticated } from './api.js';
import * as rt from './realtime.js';
import { ProjectsPage, ProjectPage } from './projects.js';
import { ConnectionsPage } from './connections.js';
import { AuditPage } from './audit.js';
import { AdminPage } from './admin.js';
import './style.css';

function useRoute() {
  const parse = () => (location.hash.replace(/^#\/?/, '') || 'projects').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const f = () => setRoute(parse());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return route;
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await post('/v1/auth/login', { username: f.get('username'), password: f.get('password'), cookie: true }, { quiet401: true });
      onSignedIn(await get('/v1/auth/session', { quiet401: true }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Atrium</h1>
    <form onSubmit=${submit} aria-label="Sign in">
      <h2>Sign in</h2>
      <${Field} id="username" label="Username" autocomplete="username" required />
      <${Field} id="password" label="Password" type="password" autocomplete="current-password" required />
      <button type="submit" disabled=${busy}>Sign in</button>
      <${ErrorText} error=${error} />
    </form>
  </main>`;
}

function Banner() {
  const [wsDown, setWsDown] = useState(false);
  const [httpDown, setHttpDown] = useState(false);
  useEffect(() => {
    const a = rt.on('status', (up) => {
      setWsDown(!up);
      if (up) setHttpDown(false);
    });
    const b = onReachability((down) => setHttpDown(down));
    return () => {
      a();
      b();
    };
  }, []);
  if (!wsDown && !httpDown) return null;
  return html`<div class="banner" role="status" aria-live="polite" data-testid="offline-banner">
    Connection to the server lost — reconnecting… Your edits are kept and will be sent when it is back.
  </div>`;
}

function Layout({ session, route, onSignOut }) {
  const [page, id] = route;
  const roles = session.user.roles || [];
  const nav = [
    ['projects', 'Projects'],
    ['connections', 'Connections'],
    ...(roles.includes('admin') || roles.includes('auditor') ? [['audit', 'Audit']] : []),
    ...(roles.includes('admin') || roles.includes('auditor') ? [['admin', 'Admin']] : []),
  ];
  let body;
  if (page === 'projects' && id) body = html`<${ProjectPage} key=${id} id=${id} session=${session} />`;
  else if (page === 'connections') body = html`<${ConnectionsPage} session=${session} />`;
  else if (page === 'audit') body = html`<${AuditPage} session=${session} stream=${id} />`;
  else if (page === 'admin') body = html`<${AdminPage} session=${session} />`;
  else body = html`<${ProjectsPage} session=${session} />`;
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header>
      <span class="brand">Atrium</span>
      <nav aria-label="Main">
        <ul>${nav.map(([k, t]) => html`<li><a href=${`#/${k}`} aria-current=${page === k ? 'page' : undefined}>${t}</a></li>`)}</ul>
      </nav>
      <span class="who">Signed in as <strong data-testid="whoami">${session.user.username}</strong></span>
      <button type="button" onClick=${onSignOut}>Sign out</button>
    </header>
    <${Banner} />
    <main id="main" tabindex="-1">${body}</main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [error, setError] = useState(null);
  const route = useRoute();
  useEffect(() => {
    onUnauthenticated(() => {
      rt.stop();
      setSession(null);
    });
    get('/v1/auth/session', { quiet401: true })
      .then((s) => setSession(s))
      .catch((e) => {
        if (e.status !== 401) setError(e);
        setSession(null);
      });
  }, []);
  useEffect(() => {
    if (session) rt.start();
  }, [session]);
  const signOut = async () => {
    try {
      await api('POST', '/v1/auth/logout', { body: {}, quiet401: true });
    } catch (e) {
      if (e.status !== 401) {
        setError(e);
        return;
      }
    }
    rt.stop();
    setSession(null);
  };
  if (session === undefined) return html`<main id="main"><p>Loading…</p></main>`;
  if (!session) return html`<div><${ErrorText} error=${error} /><${SignIn} onSignedIn=${(s) => { setError(null); setSession(s); }} /></div>`;
  return html`<${Layout} session=${session} route=${route} onSignOut=${signOut} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
