// Connections: list, create (credentials are write-only: the inputs are never filled from
// the server, and the server never answers them), test, share.
import { useState } from 'preact/hooks';
import { html, useLoad, ErrorText, ActionForm, Field, Select, ActionButton, Table, when, fmt } from './ui.js';
import { get, post } from './api.js';

export function ConnectionsPage() {
  const list = useLoad(() => get('/v1/connections?limit=1000'), []);
  const users = useLoad(() => get('/v1/users?limit=1000').catch(() => ({ users: [] })), []);
  const groups = useLoad(() => get('/v1/groups?limit=1000').catch(() => ({ groups: [] })), []);
  const [driver, setDriver] = useState('sqlite');
  const [tests, setTests] = useState({});

  const create = async (f) => {
    const body = { name: f.get('name'), driver, params: {}, credentials: {} };
    if (driver === 'sqlite') body.params.path = f.get('path');
    else {
      body.params = { host: f.get('host'), port: Number(f.get('port') || 5432), database: f.get('database') };
      if (f.get('username')) body.credentials.user = f.get('username');
      if (f.get('password')) body.credentials.password = f.get('password');
    }
    await post('/v1/connections', body);
    list.reload();
  };
  const test = async (c) => {
    const r = await post(`/v1/connections/${encodeURIComponent(c.id)}/test`, {});
    setTests((t) => ({ ...t, [c.id]: r }));
    list.reload();
  };
  const share = async (f) => {
    const who = String(f.get('grantee'));
    const body = who.startsWith('g:') ? { group_id: who.slice(2) } : { user_id: who.slice(2) };
    if (f.get('role')) body.role = f.get('role');
    await post(`/v1/connections/${encodeURIComponent(f.get('connection'))}/members`, body);
    list.reload();
  };
  const conns = list.data?.connections ?? [];
  const testText = (c) => {
    const t = tests[c.id] || c.last_test;
    if (!t) return 'not tested';
    const ok = t.ok ?? t.status === 'ok';
    return `${ok ? 'ok' : 'error'}${t.message || t.error ? `: ${t.message || t.error?.message || t.error}` : ''}${t.tested_at || t.time ? ` (${when(t.tested_at || t.time)})` : ''}`;
  };
  return html`<section>
    <h1>Connections</h1>
    <${ErrorText} error=${list.error} />
    <${Table}
      caption="Connections you can use"
      columns=${[
        ['name', 'Name'],
        ['driver', 'Driver'],
        ['params', 'Parameters', (c) => fmt(c.params)],
        ['last_test', 'Last test', (c) => html`<span data-testid="conn-test">${testText(c)}</span>`],
        ['actions', 'Actions', (c) => html`<${ActionButton} aria-label=${`Test ${c.name}`} onClick=${() => test(c)}>Test<//>`],
      ]}
      rows=${conns}
      empty="No connections yet."
    />
    <h2>New connection</h2>
    <${ActionForm} label="New connection" onSubmit=${create} submit="Create connection">
      <${Field} id="conn-name" name="name" label="Name" required />
      <div class="field"><label for="conn-driver">Driver</label>
        <select id="conn-driver" value=${driver} onChange=${(e) => setDriver(e.currentTarget.value)}>
          <option value="sqlite">SQLite</option>
          <option value="postgres">PostgreSQL</option>
        </select></div>
      ${driver === 'sqlite'
        ? html`<${Field} id="conn-path" name="path" label="Database file (under the server's SQLite root)" required />`
        : html`<${Field} id="conn-host" name="host" label="Host" required />
            <${Field} id="conn-port" name="port" label="Port" type="number" value="5432" />
            <${Field} id="conn-database" name="database" label="Database" required />
            <fieldset><legend>Credentials (write-only: never shown again)</legend>
              <${Field} id="conn-user" name="username" label="User name" autocomplete="off" />
              <${Field} id="conn-password" name="password" label="Password" type="password" autocomplete="new-password" />
            </fieldset>`}
    <//>
    <h2>Share a connection</h2>
    <${ActionForm} label="Share a connection" onSubmit=${share} submit="Share">
      <${Select} id="share-conn" name="connection" label="Connection" options=${conns.map((c) => [c.id, c.name])} />
      <${Select}
        id="share-conn-grantee"
        name="grantee"
        label="User or group"
        options=${[...(users.data?.users ?? []).map((u) => [`u:${u.id}`, u.username]), ...(groups.data?.groups ?? []).map((g) => [`g:${g.id}`, `group: ${g.name}`])]}
      />
      <${Select} id="share-conn-role" name="role" label="Role" options=${[['user', 'user'], ['owner', 'owner']]} />
    <//>
  </section>`;
}
