// Small shared pieces of the console's UI (Preact + htm, no build-time JSX).
import { h } from 'preact';
import { useState, useEffect, useCallback, useRef } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

/** Runs `load()` (async) on mount and when `deps` change; {data, error, loading, reload, setData}. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { ...state, reload, setData: (d) => setState((s) => ({ ...s, data: typeof d === 'function' ? d(s.data) : d })) };
}

/** The server's error message, announced to assistive technology. */
export function ErrorText({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

/** A form whose submit runs `onSubmit(formData)` and shows its error or `done` text. */
export function ActionForm({ onSubmit, children, label, class: cls = 'form', submit = 'Save', reset = true }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submitHandler = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    setBusy(true);
    setError(null);
    try {
      await onSubmit(new FormData(form), form);
      if (reset) form.reset();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class=${cls} onSubmit=${submitHandler} aria-label=${label}>
    ${children}
    <button type="submit" disabled=${busy}>${submit}</button>
    <${ErrorText} error=${error} />
  </form>`;
}

/** A labelled input; `id` ties the label to it. */
export function Field({ id, label, ...rest }) {
  return html`<div class="field"><label for=${id}>${label}</label><input id=${id} name=${rest.name || id} ...${rest} /></div>`;
}

/** A labelled select. `options`: [[value, text], …]. */
export function Select({ id, label, options, ...rest }) {
  return html`<div class="field"><label for=${id}>${label}</label>
    <select id=${id} name=${rest.name || id} ...${rest}>${options.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></div>`;
}

/** A button that runs an async action and shows its error next to it. */
export function ActionButton({ onClick, children, ...rest }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const click = async () => {
    setBusy(true);
    setError(null);
    try {
      await onClick();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action"><button type="button" onClick=${click} disabled=${busy || rest.disabled} ...${rest}>${children}</button><${ErrorText} error=${error} /></span>`;
}

/** Formats an RFC 3339 time for people. */
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

/** A table of rows with named columns; cells are text (never HTML). */
export function Table({ caption, columns, rows, empty = 'Nothing yet.' }) {
  if (!rows || rows.length === 0) return html`<p class="empty">${empty}</p>`;
  return html`<table>
    ${caption ? html`<caption>${caption}</caption>` : null}
    <thead><tr>${columns.map(([, title]) => html`<th scope="col">${title}</th>`)}</tr></thead>
    <tbody>${rows.map((r, i) => html`<tr key=${r.id ?? i}>${columns.map(([key, , render]) => html`<td>${render ? render(r) : fmt(r[key])}</td>`)}</tr>`)}</tbody>
  </table>`;
}

export function fmt(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
