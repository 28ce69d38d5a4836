/*
 * Gavel operator dashboard: what every part of the page shares.
 *
 * `api` calls the control API of the node that served the page with the admin token as
 * `Authorization: Bearer`, and turns every refusal into an `ApiProblem` carrying the
 * problem+json `code` and `detail` (a 401 also hands control back to the token prompt
 * through `session.onUnauthorized`). The rest formats figures, builds table cells with
 * textContent only (never innerHTML) and keeps the operator's message list.
 */

const MAX_MESSAGES = 6;

export const byId = (id) => document.getElementById(id);

/** The admin token in use, the server clock's offset, and who handles a 401. */
export const session = {
  token: null,
  serverOffsetMs: 0,
  onUnauthorized: () => {},
};

/** A control API answer that was not a success, from its problem+json when readable. */
export class ApiProblem extends Error {
  constructor(status, code, detail) {
    super(`${code}: ${detail}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${session.token}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiProblem(0, 'unreachable', `the node did not answer (${error.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    data = null;
  }
  if (response.ok) {
    return data;
  }
  const code = (data && data.code) || `http_${response.status}`;
  const detail = (data && data.detail) || text.slice(0, 200) || response.statusText;
  if (response.status === 401) {
    session.onUnauthorized(`The node refused the token (${detail}).`);
  }
  throw new ApiProblem(response.status, code, detail);
}

/** The node's clock as estimated here, from the last stats sample's server time. */
export const serverNowMs = () => Date.now() + session.serverOffsetMs;
export const money = (amount) => (amount === null || amount === undefined ? '—' : Number(amount).toLocaleString());
export const clock = (ms) => new Date(ms).toLocaleTimeString();

export function duration(ms) {
  const totalSeconds = Math.floor(Math.abs(ms) / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = String(totalSeconds % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

export function age(ms) {
  if (ms < 1000) {
    return `${Math.max(0, Math.round(ms))} ms`;
  }
  return ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : duration(ms);
}

export function cell(content, className) {
  const td = document.createElement('td');
  if (content instanceof Node) {
    td.append(content);
  } else {
    td.textContent = content === null || content === undefined ? '—' : String(content);
  }
  if (className) {
    td.className = className;
  }
  return td;
}

export function badge(value) {
  const span = document.createElement('span');
  span.className = 'badge';
  span.dataset.value = value;
  span.textContent = value.replace(/_/g, ' ');
  return span;
}

export function problemText(error) {
  return error instanceof ApiProblem ? `${error.code}: ${error.detail}` : String(error);
}

export function setConnection(state, text) {
  const element = byId('connection');
  element.dataset.state = state;
  element.textContent = text;
}

/** Adds a line to the operator's message list (newest first, a few kept). */
export function report(text, kind) {
  const item = document.createElement('li');
  item.className = kind;
  const when = document.createElement('time');
  when.textContent = clock(Date.now());
  const body = document.createElement('span');
  body.textContent = text;
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.className = 'quiet dismiss';
  dismiss.textContent = '×';
  dismiss.title = 'Dismiss';
  dismiss.addEventListener('click', () => item.remove());
  item.append(when, body, dismiss);
  const list = byId('messages');
  list.prepend(item);
  while (list.children.length > MAX_MESSAGES) {
    list.lastElementChild.remove();
  }
}
