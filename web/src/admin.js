// Admin: users, groups and the projections' status.
import { html, useLoad, ErrorText, ActionForm, Field, Select, Table } from './ui.js';
import { get, post, patch } from './api.js';

export function AdminPage() {
  const users = useLoad(() => get('/v1/users?limit=1000'), []);
  const groups = useLoad(() => get('/v1/groups?limit=1000'), []);
  const projections = useLoad(() => get('/v1/admin/projections'), []);
  const createUser = async (f) => {
    await post('/v1/users', { username: f.get('username'), email: f.get('email'), password: f.get('password'), role: f.get('role') });
    users.reload();
  };
  const createGroup = async (f) => {
    await post('/v1/groups', { name: f.get('name') });
    groups.reload();
  };
  const addMember = async (f) => {
    await post(`/v1/groups/${encodeURIComponent(f.get('group'))}/members`, { user_id: f.get('user') });
    groups.reload();
  };
  const grant = async (f) => {
    await patch(`/v1/users/${encodeURIComponent(f.get('user'))}`, { grant_role: f.get('role') });
    users.reload();
  };
  const userList = users.data?.users ?? [];
  const groupList = groups.data?.groups ?? [];
  const userOptions = userList.map((u) => [u.id, u.username]);
  const projList = Array.isArray(projections.data?.projections) ? projections.data.projections : [];
  return html`<section>
    <h1>Administration</h1>
    <h2>Users</h2>
    <${ErrorText} error=${users.error} />
    <${Table}
      caption="Users"
      columns=${[
        ['username', 'User name'],
        ['email', 'Email'],
        ['kind', 'Kind'],
        ['roles', 'Roles', (u) => (u.roles || []).join(', ')],
        ['disabled', 'Disabled', (u) => (u.disabled ? 'yes' : 'no')],
      ]}
      rows=${userList}
    />
    <h3>New user</h3>
    <${ActionForm} label="New user" onSubmit=${createUser} submit="Create user">
      <${Field} id="user-name" name="username" label="User name" required autocomplete="off" />
      <${Field} id="user-email" name="email" label="Email" type="email" autocomplete="off" />
      <${Field} id="user-password" name="password" label="Password" type="password" required autocomplete="new-password" />
      <${Select} id="user-role" name="role" label="Role" options=${[['member', 'member'], ['admin', 'admin'], ['auditor', 'auditor']]} />
    <//>
    <h3>Grant a role</h3>
    <${ActionForm} label="Grant a role" onSubmit=${grant} submit="Grant">
      <${Select} id="grant-user" name="user" label="User" options=${userOptions} />
      <${Select} id="grant-role" name="role" label="Role" options=${[['admin', 'admin'], ['auditor', 'auditor'], ['member', 'member']]} />
    <//>
    <h2>Groups</h2>
    <${ErrorText} error=${groups.error} />
    <${Table}
      caption="Groups"
      columns=${[
        ['name', 'Name'],
        ['members', 'Members', (g) => String((g.members || []).length)],
      ]}
      rows=${groupList}
    />
    <h3>New group</h3>
    <${ActionForm} label="New group" onSubmit=${createGroup} submit="Create group">
      <${Field} id="group-name" name="name" label="Name" required />
    <//>
    <h3>Add a member</h3>
    <${ActionForm} label="Add a group member" onSubmit=${addMember} submit="Add member">
      <${Select} id="member-group" name="group" label="Group" options=${groupList.map((g) => [g.id, g.name])} />
      <${Select} id="member-user" name="user" label="User" options=${userOptions} />
    <//>
    <h2>Projections</h2>
    <${ErrorText} error=${projections.error} />
    <${Table}
      caption="Read models and their lag behind the log"
      columns=${[
        ['name', 'Projection'],
        ['status', 'Status', (p) => html`<span class=${`status status-${p.status}`}>${p.status}</span>`],
        ['checkpoint', 'Checkpoint'],
        ['lag_positions', 'Lag (events)'],
        ['lag_ms', 'Lag (ms)'],
        ['slot', 'Slot'],
      ]}
      rows=${projList}
    />
  </section>`;
}
