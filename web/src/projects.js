// Projects: the list, and one project's page (cells co-edited live, runs, presence, sharing,
// job history).
import { useState, useEffect, useRef, useCallback, useMemo } from 'preact/hooks';
import { html, useLoad, ErrorText, ActionForm, Field, Select, ActionButton, Table, when } from './ui.js';
import { get, post, patch, del, qs } from './api.js';
import * as rt from './realtime.js';
import { createCellEditor } from './editor.js';
import { renderMarkdown } from './markdown.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);

export function ProjectsPage() {
  const list = useLoad(() => get('/v1/projects?limit=1000'), []);
  const create = async (f) => {
    const p = await post('/v1/projects', { name: f.get('name'), description: f.get('description') || '' });
    location.hash = `#/projects/${p.id}`;
  };
  return html`<section>
    <h1>Projects</h1>
    <${ErrorText} error=${list.error} />
    <${Table}
      caption="Your projects"
      columns=${[
        ['name', 'Name', (p) => html`<a href=${`#/projects/${encodeURIComponent(p.id)}`}>${p.name}</a>`],
        ['description', 'Description'],
        ['cell_count', 'Cells'],
        ['updated_at', 'Updated', (p) => when(p.updated_at)],
      ]}
      rows=${list.data?.projects ?? []}
      empty="No projects yet: create one below."
    />
    <h2>New project</h2>
    <${ActionForm} label="New project" onSubmit=${create} submit="Create project">
      <${Field} id="project-name" name="name" label="Name" required maxlength="200" />
      <${Field} id="project-description" name="description" label="Description" />
    <//>
  </section>`;
}

/** Maps a job event onto the job's displayed state. */
function foldJob(job, ev) {
  const j = { ...(job || {}) };
  const d = ev.data || {};
  switch (ev.type) {
    case 'job.submitted': j.status = 'submitted'; j.cell_id = d.cell_id; break;
    case 'job.queued': j.status = 'queued'; break;
    case 'job.started': j.status = 'running'; break;
    case 'job.progressed': j.status = 'running'; j.rows = d.rows; break;
    case 'job.succeeded': j.status = 'succeeded'; j.rows = d.rows; break;
    case 'job.failed': j.status = 'failed'; j.error = d.error?.message || d.message || d.error || ''; break;
    case 'job.cancel_requested': if (!TERMINAL.has(j.status)) j.status = 'cancelling'; break;
    case 'job.cancelled': j.status = 'cancelled'; break;
    case 'job.timed_out': j.status = 'timed_out'; break;
    default: break;
  }
  return j;
}

const RANK = { submitted: 0, queued: 1, running: 2, cancelling: 3, succeeded: 4, failed: 4, cancelled: 4, timed_out: 4 };

/** Merges what an API answer says about a job into what events said: status never goes back. */
function mergeJob(known, j) {
  if (!known?.status) return { ...(known || {}), ...j };
  const out = { ...known };
  if ((RANK[j.status] ?? -1) > (RANK[known.status] ?? -1)) Object.assign(out, j);
  else if (j.rows !== undefined && (out.rows === undefined || j.rows > out.rows)) out.rows = j.rows;
  return out;
}

export function ProjectPage({ id, session }) {
  const base = `/v1/projects/${encodeURIComponent(id)}`;
  const project = useLoad(() => get(base), [id]);
  const cells = useLoad(() => get(`${base}/cells`), [id]);
  const conns = useLoad(() => get('/v1/connections?limit=1000').catch(() => ({ connections: [] })), []);
  const users = useLoad(() => get('/v1/users?limit=1000').catch(() => ({ users: [] })), []);
  const groups = useLoad(() => get('/v1/groups?limit=1000').catch(() => ({ groups: [] })), []);
  const history = useLoad(() => get(`/v1/jobs${qs({ project: id, limit: 50 })}`).catch(() => ({ jobs: [] })), [id]);
  const [jobs, setJobs] = useState({}); // job id -> {status, rows, error}
  const [latest, setLatest] = useState({}); // cell id -> its newest job id seen here (before the cell's view has it)
  const [peers, setPeers] = useState({}); // session -> {user_id, state}
  const [error, setError] = useState(null);
  const editors = useRef(new Map()); // cell id -> editor controller
  const cellReload = useRef(null);

  const userName = useMemo(() => {
    const m = new Map();
    for (const u of users.data?.users ?? []) m.set(u.id, u.username);
    return m;
  }, [users.data]);

  // Live events of the project and its jobs.
  useEffect(() => {
    const reloadCellsSoon = () => {
      clearTimeout(cellReload.current);
      cellReload.current = setTimeout(() => cells.reload(), 30);
    };
    const stop = rt.subscribe({ projects: [id] }, (ev) => {
      if (ev.stream.startsWith('job-')) {
        const jid = ev.stream.slice(4);
        setJobs((js) => ({ ...js, [jid]: foldJob(js[jid], ev) }));
        if (ev.type === 'job.submitted' || /succeeded|failed|cancelled|timed_out/.test(ev.type)) history.reload();
        if (ev.type === 'job.submitted' && ev.data?.cell_id) setLatest((l) => ({ ...l, [ev.data.cell_id]: jid }));
        return;
      }
      const cid = ev.data?.cell_id;
      if (ev.type === 'project.cell_changed' || ev.type === 'project.cell_edited') {
        const ed = editors.current.get(cid);
        if (ed) ed.receive(ev);
        else reloadCellsSoon();
      } else if (ev.type.startsWith('project.cell_')) {
        reloadCellsSoon();
      } else if (ev.type.startsWith('project.')) {
        project.reload();
      }
    });
    const offRe = rt.on('reconnected', () => {
      for (const ed of editors.current.values()) ed.resync();
      cells.reload();
      history.reload();
    });
    const offPresence = rt.on('presence', (m) => {
      if (m.project !== id) return;
      setPeers((p) => {
        // `sessions` (when present) is everyone there now; `session` the one that changed.
        const next = Array.isArray(m.sessions) ? {} : { ...p };
        if (Array.isArray(m.sessions)) for (const s of m.sessions) if (s.state) next[s.session] = { user_id: s.user_id, state: s.state };
        if (m.session) {
          if (m.gone || !m.state) delete next[m.session];
          else next[m.session] = { user_id: m.user_id, state: m.state };
        }
        return next;
      });
    });
    rt.presence(id, { name: session.user.username, cell: null });
    return () => {
      stop();
      offRe();
      offPresence();
      rt.presence(id, null);
    };
  }, [id]);

  const mine = rt.mySession();
  const others = Object.entries(peers).filter(([sid, p]) => sid !== mine && p.state && !p.state.left && p.state.name !== undefined);

  // Remote cursors, per cell.
  useEffect(() => {
    for (const [cid, ed] of editors.current) {
      ed.setCursors(
        others
          .filter(([sid, p]) => p.state?.cell === cid && p.user_id !== session.user.id)
          .map(([sid, p]) => ({ key: sid, name: userName.get(p.user_id) || p.state?.name || 'someone', head: p.state.head ?? 0, version: p.state.version })),
      );
    }
  });

  // Cells show once the project (and so the caller's role) is known: an editor is made
  // read-only or not when it is created.
  const list = project.data ? cells.data?.cells ?? [] : [];
  // What the page offers follows the caller's role (the server decides in the end).
  const canEdit = useMemo(() => {
    const p = project.data;
    if (!p) return false;
    if ((session.user.roles || []).includes('admin')) return true;
    const mine = new Set(session.user.groups || []);
    const roles = [
      ...(p.members || []).filter((m) => m.user_id === session.user.id).map((m) => m.role),
      ...(p.groups || []).filter((g) => mine.has(g.group_id)).map((g) => g.role),
    ];
    return roles.includes('owner') || roles.includes('editor');
  }, [project.data, session]);
  const addCell = async (kind) => {
    setError(null);
    try {
      const body = { kind, content: '' };
      if (list.length) body.after = list[list.length - 1].cell_id;
      await post(`${base}/cells`, body);
      await cells.reload();
    } catch (e) {
      setError(e);
    }
  };
  const move = async (i, dir) => {
    const after = dir < 0 ? (i >= 2 ? list[i - 2].cell_id : '') : list[i + 1].cell_id;
    await patch(`${base}/cells/${list[i].cell_id}`, { after });
    await cells.reload();
  };
  const remove = async (c) => {
    await del(`${base}/cells/${c.cell_id}`);
    await cells.reload();
  };

  const presenceNames = [...new Set(others.map(([, p]) => userName.get(p.user_id) || p.state?.name || 'someone'))];

  const p = project.data;
  return html`<section class="project">
    <${ErrorText} error=${project.error} />
    <h1>${p ? p.name : 'Project'}</h1>
    ${p?.description ? html`<p class="description">${p.description}</p>` : null}
    <div class="presence" aria-live="polite" data-testid="presence">
      <span>Here now: </span>
      ${presenceNames.length ? presenceNames.map((n) => html`<span class="peer">${n}</span>`) : html`<span class="muted">only you</span>`}
    </div>
    <${ErrorText} error=${cells.error || error} />
    <ol class="cells" aria-label="Cells">
      ${list.map(
        (c, i) => html`<li key=${c.cell_id} class="cell" data-kind=${c.kind} data-cell-id=${c.cell_id}>
          <${Cell}
            projectId=${id}
            cell=${c}
            index=${i}
            count=${list.length}
            editors=${editors}
            connections=${conns.data?.connections ?? []}
            jobId=${latest[c.cell_id] || c.last_job_id || null}
            job=${(latest[c.cell_id] || c.last_job_id) ? jobs[latest[c.cell_id] || c.last_job_id] : null}
            setJob=${(jid, j) => setJobs((js) => ({ ...js, [jid]: mergeJob(js[jid], j) }))}
            setLatest=${(jid) => setLatest((l) => ({ ...l, [c.cell_id]: jid }))}
            onMove=${(dir) => move(i, dir)}
            onRemove=${() => remove(c)}
            onChanged=${() => cells.reload()}
            session=${session}
            canEdit=${canEdit}
          />
        </li>`,
      )}
    </ol>
    ${list.length === 0 ? html`<p class="empty">No cells yet.</p>` : null}
    ${canEdit
      ? html`<div class="add-cells" role="group" aria-label="Add a cell">
          <button type="button" onClick=${() => addCell('sql')}>Add SQL cell</button>
          <button type="button" onClick=${() => addCell('python')}>Add Python cell</button>
          <button type="button" onClick=${() => addCell('markdown')}>Add markdown cell</button>
        </div>`
      : null}
    <h2>Job history</h2>
    <${ErrorText} error=${history.error} />
    <${Table}
      caption="Jobs of this project, newest first"
      columns=${[
        ['id', 'Job', (j) => html`<code>${j.id.slice(-12)}</code>`],
        ['kind', 'Kind'],
        ['status', 'Status', (j) => html`<span class=${`status status-${jobs[j.id]?.status || j.status}`}>${jobs[j.id]?.status || j.status}</span>`],
        ['rows', 'Rows', (j) => String(jobs[j.id]?.rows ?? j.rows ?? '')],
        ['submitted_at', 'Submitted', (j) => when(j.submitted_at || j.created_at)],
      ]}
      rows=${[...(history.data?.jobs ?? [])].sort((a, b) => (a.id < b.id ? 1 : -1))}
      empty="No jobs yet."
    />
    ${p ? html`<${Sharing} project=${p} base=${base} users=${users.data?.users ?? []} groups=${groups.data?.groups ?? []} userName=${userName} onChanged=${() => project.reload()} />` : null}
  </section>`;
}

function Sharing({ project, base, users, groups, userName, onChanged }) {
  const share = async (f) => {
    const who = String(f.get('grantee'));
    const role = f.get('role');
    const body = who.startsWith('g:') ? { group_id: who.slice(2), role } : { user_id: who.slice(2), role };
    await post(`${base}/members`, body);
    onChanged();
  };
  const groupName = new Map(groups.map((g) => [g.id, g.name]));
  const members = [
    ...(project.members ?? []).map((m) => ({ id: m.user_id, key: m.user_id, name: userName.get(m.user_id) || m.user_id, kind: 'user', role: m.role })),
    ...(project.groups ?? []).map((m) => ({ id: m.group_id, key: m.group_id, name: groupName.get(m.group_id) || m.group_id, kind: 'group', role: m.role })),
  ];
  return html`<section aria-labelledby="sharing-h">
    <h2 id="sharing-h">Sharing</h2>
    <${Table}
      caption="People and groups with access"
      columns=${[
        ['name', 'Name'],
        ['kind', 'Kind'],
        ['role', 'Role'],
        ['actions', 'Actions', (m) => html`<${ActionButton} aria-label=${`Remove ${m.name}`} onClick=${async () => { await del(`${base}/members/${encodeURIComponent(m.id)}`); onChanged(); }}>Remove<//>`],
      ]}
      rows=${members}
    />
    <${ActionForm} label="Share the project" onSubmit=${share} submit="Share">
      <${Select}
        id="share-grantee"
        name="grantee"
        label="User or group"
        options=${[...users.map((u) => [`u:${u.id}`, `${u.username}`]), ...groups.map((g) => [`g:${g.id}`, `group: ${g.name}`])]}
      />
      <${Select} id="share-role" name="role" label="Role" options=${[['viewer', 'viewer'], ['editor', 'editor'], ['owner', 'owner']]} />
    <//>
  </section>`;
}

function Cell({ projectId, cell, index, count, editors, connections, jobId, job, setJob, setLatest, onMove, onRemove, onChanged, session, canEdit }) {
  const kindName = { sql: 'SQL', python: 'Python', markdown: 'Markdown' }[cell.kind] || cell.kind;
  return html`<article aria-label=${`${kindName} cell ${index + 1}`}>
    <div class="cell-bar">
      <span class="cell-kind">${kindName}</span>
      ${canEdit
        ? html`<span class="cell-tools">
            <${ActionButton} aria-label=${`Move cell ${index + 1} up`} disabled=${index === 0} onClick=${() => onMove(-1)}>↑<//>
            <${ActionButton} aria-label=${`Move cell ${index + 1} down`} disabled=${index === count - 1} onClick=${() => onMove(1)}>↓<//>
            <${ActionButton} aria-label=${`Delete cell ${index + 1}`} onClick=${onRemove}>Delete<//>
          </span>`
        : html`<span class="muted">read only</span>`}
    </div>
    ${cell.kind === 'markdown'
      ? html`<${MarkdownCell} projectId=${projectId} cell=${cell} onChanged=${onChanged} canEdit=${canEdit} />`
      : html`<${CodeCell} projectId=${projectId} cell=${cell} editors=${editors} index=${index} session=${session} readOnly=${!canEdit} />`}
    ${cell.kind === 'sql' && canEdit
      ? html`<${RunPanel} projectId=${projectId} cell=${cell} connections=${connections} jid=${jobId} job=${job} setJob=${setJob} setLatest=${setLatest} onChanged=${onChanged} />`
      : null}
  </article>`;
}

function CodeCell({ projectId, cell, editors, index, session, readOnly }) {
  const host = useRef(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let last = 0;
    let timer = null;
    const ed = createCellEditor(host.current, {
      projectId,
      cell,
      readOnly,
      label: `${cell.kind === 'sql' ? 'SQL' : 'Python'} cell ${index + 1} source`,
      onError: (m) => setError(new Error(m)),
      onSelection: (head, anchor, version) => {
        const send = () => {
          last = Date.now();
          rt.presence(projectId, { name: session.user.username, cell: cell.cell_id, head, anchor, version });
        };
        clearTimeout(timer);
        if (Date.now() - last > 100) send();
        else timer = setTimeout(send, 100);
      },
    });
    editors.current.set(cell.cell_id, ed);
    return () => {
      clearTimeout(timer);
      editors.current.delete(cell.cell_id);
      ed.destroy();
    };
  }, [cell.cell_id, readOnly]);
  return html`<div class="code" ref=${host}></div><${ErrorText} error=${error} />`;
}

function MarkdownCell({ projectId, cell, onChanged, canEdit }) {
  const [editing, setEditing] = useState(false);
  const view = useRef(null);
  const base = `/v1/projects/${encodeURIComponent(projectId)}/cells/${encodeURIComponent(cell.cell_id)}`;
  useEffect(() => {
    // The one HTML insertion: marked's output after DOMPurify.
    if (view.current) view.current.innerHTML = renderMarkdown(cell.content);
  }, [cell.content, cell.version, editing]);
  const save = async (f) => {
    await patch(base, { content: String(f.get('content')), base_version: cell.version, op_id: crypto.randomUUID() });
    setEditing(false);
    onChanged();
  };
  if (editing) {
    return html`<${ActionForm} label="Edit markdown" onSubmit=${save} submit="Save" reset=${false}>
      <div class="field"><label for=${`md-${cell.cell_id}`}>Markdown source</label>
      <textarea id=${`md-${cell.cell_id}`} name="content" rows="8">${cell.content}</textarea></div>
      <button type="button" onClick=${() => setEditing(false)}>Cancel</button>
    <//>`;
  }
  return html`<div class="markdown" ref=${view} data-testid="markdown"></div>
    ${canEdit ? html`<button type="button" onClick=${() => setEditing(true)}>Edit markdown</button>` : null}`;
}

function RunPanel({ projectId, cell, connections, jid, job, setJob, setLatest, onChanged }) {
  const [error, setError] = useState(null);
  const base = `/v1/projects/${encodeURIComponent(projectId)}/cells/${encodeURIComponent(cell.cell_id)}`;
  // The current state of the cell's last job, from the API; live events refine it.
  useEffect(() => {
    if (!jid || job?.status) return;
    get(`/v1/jobs/${encodeURIComponent(jid)}`)
      .then((j) => setJob(jid, { status: j.status, rows: j.rows ?? j.result?.rows, error: j.error?.message || j.error || '' }))
      .catch(() => {});
  }, [jid]);
  const run = async () => {
    setError(null);
    try {
      const j = await post(`${base}/run`, {});
      setJob(j.id, { status: j.status || 'submitted' });
      setLatest(j.id);
    } catch (e) {
      setError(e);
    }
  };
  const cancel = async () => {
    setError(null);
    try {
      await post(`/v1/jobs/${encodeURIComponent(jid)}/cancel`, {});
    } catch (e) {
      setError(e);
    }
  };
  const setConnection = async (e) => {
    setError(null);
    try {
      await patch(base, { connection_id: e.currentTarget.value });
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const status = job?.status;
  const running = status && !TERMINAL.has(status);
  return html`<div class="run">
    <div class="run-bar">
      <label for=${`conn-${cell.cell_id}`}>Connection</label>
      <select id=${`conn-${cell.cell_id}`} value=${cell.connection_id || ''} onChange=${setConnection}>
        <option value="">(none)</option>
        ${connections.map((c) => html`<option value=${c.id}>${c.name}</option>`)}
      </select>
      <button type="button" class="primary" onClick=${run} disabled=${running}>Run</button>
      ${running ? html`<button type="button" onClick=${cancel}>Cancel</button>` : null}
      ${status
        ? html`<span class=${`status status-${status}`} role="status" data-testid="job-status">${status}${job.rows !== undefined && job.rows !== null ? html` · ${job.rows} rows` : null}</span>`
        : null}
    </div>
    ${job?.error ? html`<p class="error">${String(job.error)}</p>` : null}
    <${ErrorText} error=${error} />
    ${status === 'succeeded' && jid ? html`<${ResultTable} key=${jid} jobId=${jid} />` : null}
  </div>`;
}

const PAGE = 50;

function ResultTable({ jobId }) {
  const [offset, setOffset] = useState(0);
  const page = useLoad(() => get(`/v1/jobs/${encodeURIComponent(jobId)}/result${qs({ offset, limit: PAGE })}`), [jobId, offset]);
  const r = page.data;
  return html`<div class="result" data-testid="result">
    <${ErrorText} error=${page.error} />
    ${r
      ? html`<div class="table-scroll" tabindex="0" role="region" aria-label="Result rows"><table>
          <caption>Result: rows ${r.rows.length ? offset + 1 : 0}–${offset + r.rows.length} of ${r.total_rows}${r.truncated ? ' (truncated)' : ''}</caption>
          <thead><tr>${r.columns.map((c) => html`<th scope="col">${c.name}</th>`)}</tr></thead>
          <tbody>${r.rows.map((row) => html`<tr>${row.map((v) => html`<td>${v === null ? html`<span class="null">NULL</span>` : String(v)}</td>`)}</tr>`)}</tbody>
        </table></div>
        <div class="pager">
          <button type="button" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous rows</button>
          <button type="button" disabled=${r.next === null} onClick=${() => setOffset(r.next)}>Next rows</button>
          <a href=${`/v1/jobs/${encodeURIComponent(jobId)}/result.csv`} download>Download CSV</a>
        </div>`
      : null}
  </div>`;
}
