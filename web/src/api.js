// The console's HTTP client: JSON requests to the public API, authenticated by the
// HttpOnly session cookie the browser holds (never readable from script). Failed requests
// throw an ApiError carrying the server's error object ({"error":{code,message,details}}).

/** An API answer that was not 2xx; `message` is the server's `error.message`. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `request failed with status ${status}`);
    this.status = status;
    this.code = error?.code || (status === 0 ? 'unavailable' : 'error');
    this.details = error?.details || {};
  }
}

/** Listeners called with `true` when a request could not reach the server, `false` when one did. */
const reachability = new Set();
export function onReachability(fn) {
  reachability.add(fn);
  return () => reachability.delete(fn);
}
let unauthenticatedHandler = null;
/** Called once a request answers 401 (the session ended). */
export function onUnauthenticated(fn) {
  unauthenticatedHandler = fn;
}

/**
 * Sends one request. `body` (an object) is sent as JSON; `headers` are added.
 * Resolves the parsed JSON body (or text for non-JSON answers) with `etag` and `position`
 * (X-Atrium-Position) as non-enumerable extras; rejects with ApiError.
 */
export async function api(method, path, { body, headers = {}, quiet401 = false } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    reachability.forEach((fn) => fn(true));
    throw new ApiError(0, { code: 'unavailable', message: 'the server cannot be reached' });
  }
  reachability.forEach((fn) => fn(false));
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('application/json')) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  } else {
    data = await res.text();
  }
  if (!res.ok) {
    if (res.status === 401 && !quiet401 && unauthenticatedHandler) unauthenticatedHandler();
    throw new ApiError(res.status, data && typeof data === 'object' ? data.error : { message: `${res.status} ${res.statusText}` });
  }
  if (data && typeof data === 'object') {
    Object.defineProperty(data, 'etag', { value: (res.headers.get('ETag') || '').replace(/"/g, ''), enumerable: false });
    Object.defineProperty(data, 'position', { value: Number(res.headers.get('X-Atrium-Position') || 0), enumerable: false });
  }
  return data;
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, body, opts = {}) => api('POST', path, { ...opts, body: body ?? {} });
export const patch = (path, body, opts = {}) => api('PATCH', path, { ...opts, body });
export const del = (path, opts) => api('DELETE', path, opts);

/** Encodes a query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
