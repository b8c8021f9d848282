// Audit: the filtered log, the hash-chain check as a badge, and one entity's history with
// a time slider that shows the entity (a project with its cells) as of a position.
import { useState, useEffect } from 'preact/hooks';
import { html, useLoad, ErrorText, Table, when } from './ui.js';
import { get, qs } from './api.js';

const ROUTES = { project: 'projects', user: 'users', group: 'groups', connection: 'connections', job: 'jobs', container: 'containers', schedule: 'schedules' };

function VerifyBadge() {
  const v = useLoad(() => get('/v1/audit/verify'), []);
  if (v.error) return html`<span class="badge badge-bad" role="status">Chain check failed: ${v.error.message}</span>`;
  if (!v.data) return html`<span class="badge" role="status">Checking the hash chain…</span>`;
  const ok = v.data.ok ?? v.data.valid ?? !v.data.broken_at;
  return html`<span class=${`badge ${ok ? 'badge-ok' : 'badge-bad'}`} role="status" data-testid="verify-badge">
    ${ok ? `Hash chain verified${v.data.count !== undefined ? ` (${v.data.count} events)` : ''}` : `Hash chain broken at position ${v.data.broken_at ?? v.data.first_bad_position ?? '?'}`}
  </span>`;
}

export function AuditPage({ stream }) {
  const [filters, setFilters] = useState({ order: 'desc', limit: 50 });
  const [cursor, setCursor] = useState({});
  const log = useLoad(() => get(`/v1/audit${qs({ ...filters, ...cursor })}`), [JSON.stringify(filters), JSON.stringify(cursor)]);
  const apply = (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const next = { order: f.get('order'), limit: 50 };
    for (const k of ['actor', 'stream', 'type', 'since', 'until']) if (f.get(k)) next[k] = f.get(k);
    setCursor({});
    setFilters(next);
  };
  const users = useLoad(() => get('/v1/users?limit=1000').catch(() => ({ users: [] })), []);
  const names = new Map((users.data?.users ?? []).map((u) => [`user-${u.id}`, u.username]));
  const entries = log.data?.entries ?? [];
  return html`<section>
    <h1>Audit</h1>
    <${VerifyBadge} />
    <form class="filters" onSubmit=${apply} aria-label="Audit filters">
      <div class="field"><label for="f-actor">Actor (user id)</label><input id="f-actor" name="actor" /></div>
      <div class="field"><label for="f-stream">Stream</label><input id="f-stream" name="stream" /></div>
      <div class="field"><label for="f-type">Event type</label><input id="f-type" name="type" placeholder="project.renamed" /></div>
      <div class="field"><label for="f-since">Since (RFC 3339)</label><input id="f-since" name="since" /></div>
      <div class="field"><label for="f-until">Until (RFC 3339)</label><input id="f-until" name="until" /></div>
      <div class="field"><label for="f-order">Order</label><select id="f-order" name="order"><option value="desc">newest first</option><option value="asc">oldest first</option></select></div>
      <button type="submit">Apply filters</button>
    </form>
    <${ErrorText} error=${log.error} />
    <${Table}
      caption="Audit log"
      columns=${[
        ['position', 'Position'],
        ['time', 'Time', (e) => when(e.time)],
        ['actor', 'Actor', (e) => names.get(e.actor) || e.actor || ''],
        ['type', 'Event'],
        ['stream', 'Stream', (e) => html`<a href=${`#/audit/${encodeURIComponent(e.stream)}`}>${e.stream}</a>`],
      ]}
      rows=${entries.map((e) => ({ ...e, id: e.position }))}
      empty="No entries match."
    />
    <div class="pager">
      <button type="button" disabled=${!log.data?.prev} onClick=${() => setCursor({ before: log.data.prev })}>Previous page</button>
      <button type="button" disabled=${!log.data?.next} onClick=${() => setCursor({ after: log.data.next })}>Next page</button>
    </div>
    ${stream ? html`<${History} key=${stream} stream=${stream} />` : html`<p>Choose a stream in the log to see its history.</p>`}
  </section>`;
}

function History({ stream }) {
  const hist = useLoad(() => get(`/v1/streams/${encodeURIComponent(stream)}${qs({ limit: 1000 })}`), [stream]);
  const events = hist.data?.events ?? [];
  const [index, setIndex] = useState(-1);
  useEffect(() => {
    if (events.length && index < 0) setIndex(events.length - 1);
  }, [events.length]);
  const at = events[Math.max(0, Math.min(index, events.length - 1))];
  const dash = stream.indexOf('-');
  const kind = stream.slice(0, dash);
  const id = stream.slice(dash + 1);
  const route = ROUTES[kind];
  const asOf = useLoad(async () => {
    if (!at || !route) return null;
    const entity = await get(`/v1/${route}/${encodeURIComponent(id)}${qs({ as_of: at.position })}`);
    let cells = null;
    if (kind === 'project') cells = await get(`/v1/projects/${encodeURIComponent(id)}/cells${qs({ as_of: at.position })}`).catch(() => null);
    return { entity, cells };
  }, [stream, at?.position]);
  return html`<section aria-labelledby="history-h" class="history">
    <h2 id="history-h">History of <code>${stream}</code></h2>
    <${ErrorText} error=${hist.error} />
    ${events.length
      ? html`<div class="field slider">
          <label for="as-of">Position in the history (event ${index + 1} of ${events.length})</label>
          <input id="as-of" type="range" min="0" max=${events.length - 1} value=${index} onInput=${(e) => setIndex(Number(e.currentTarget.value))} />
          <p data-testid="as-of-position">As of position ${at?.position}: <strong>${at?.type}</strong> at ${when(at?.time)}</p>
        </div>`
      : null}
    <${ErrorText} error=${asOf.error} />
    ${asOf.data?.entity
      ? html`<div class="as-of" data-testid="as-of">
          ${kind === 'project'
            ? html`<h3>${asOf.data.entity.name}</h3>
                <p>${asOf.data.entity.description}</p>
                <ol class="cells-as-of">${(asOf.data.cells?.cells ?? []).map((c) => html`<li><span class="cell-kind">${c.kind}</span><pre>${c.content}</pre></li>`)}</ol>`
            : html`<pre>${JSON.stringify(asOf.data.entity, null, 2)}</pre>`}
        </div>`
      : null}
    <h3>Events</h3>
    <${Table}
      caption="Events of the stream"
      columns=${[
        ['version', 'Version'],
        ['position', 'Position'],
        ['time', 'Time', (e) => when(e.time)],
        ['type', 'Event'],
        ['data', 'Data', (e) => html`<code class="data">${JSON.stringify(e.data)}</code>`],
      ]}
      rows=${events.map((e) => ({ ...e, id: e.position }))}
    />
  </section>`;
}
