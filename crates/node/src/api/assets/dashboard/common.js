/*
 * Gavel operator dashboard: what every part of the page shares.
 *
 * `api` calls the control API of the node that served the page with the admin token as
 * `Authorization: Bearer`, and turns every refusal into an `ApiProblem` carrying the
 * problem+json `code` and `detail` (a 401 also hands control back to the token prompt
 * through `session.onUnauthorized`). The rest formats figures in the page's language
 * (Chinese first, English on request: money in 元 / 万元 or ¥, times in the language's
 * local format, through i18n.js; every text from texts.js through t()), builds table
 * cells with textContent only (never innerHTML) and keeps the operator's message list.
 */

import { clockTime, t } from './i18n.js';

export {
  dateTime, money, number, parcelText, phaseName, t,
} from './i18n.js';

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
    throw new ApiProblem(0, 'unreachable', t('notAnswering', error.message));
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
    session.onUnauthorized(t('tokenRefused', detail));
  }
  throw new ApiProblem(response.status, code, detail);
}

/** The node's clock as estimated here, from the last stats sample's server time. */
export const serverNowMs = () => Date.now() + session.serverOffsetMs;
/** A time of day with seconds, in the language's local format. */
export const clock = (ms) => clockTime(ms);

/** The shown word for an API word from one of texts.js's tables (`roles`, `health` …). */
export function label(table, value) {
  const words = t(table);
  return (words && typeof words === 'object' && words[value]) || String(value).replace(/_/g, ' ');
}

export function duration(ms) {
  const totalSeconds = Math.floor(Math.abs(ms) / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = String(totalSeconds % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

export function age(ms) {
  if (ms < 1000) {
    return t('ms', Math.max(0, Math.round(ms)));
  }
  return ms < 120_000 ? t('seconds', (ms / 1000).toFixed(1)) : duration(ms);
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

/** A badge: `data-value` the API's word (what the stylesheet and tests read), its text `shown`. */
export function badge(value, shown = String(value).replace(/_/g, ' ')) {
  const span = document.createElement('span');
  span.className = 'badge';
  span.dataset.value = value;
  span.textContent = shown;
  return span;
}

export function problemText(error) {
  return error instanceof ApiProblem ? t('problem', error.code, error.detail) : String(error);
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
  dismiss.title = t('dismiss');
  dismiss.addEventListener('click', () => item.remove());
  item.append(when, body, dismiss);
  const list = byId('messages');
  list.prepend(item);
  while (list.children.length > MAX_MESSAGES) {
    list.lastElementChild.remove();
  }
}
