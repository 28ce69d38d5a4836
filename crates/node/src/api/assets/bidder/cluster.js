/*
 * How Gavel's bidder page reaches the cluster (used by bidder.js):
 * - api(): requests to the node that served the page (same origin, so no CORS); a request
 *   that gets no HTTP answer at all throws NodeUnreachable, the page's reason to fail over;
 * - eventsUrl(): where the page opens its event stream: the serving node's events
 *   listener when it has one (on this host, another port; CORS lets this page read it),
 *   else the same origin; leaveEventsListenerOutOfReach(): a stream that does not open
 *   because the listener's port is out of this network's reach moves to the page's own
 *   origin (the public listener serves the streams too);
 * - measureClock(): the NTP-style offset to the server's clock, from the one of two
 *   GET /api/v1/time samples (or as many as asked: a re-sync takes one) with the smallest
 *   round trip: server_time - (t0 + t1) / 2;
 * - clusterNodes(), reachable(), handOver(), takeHandoff(): the nodes the page may move
 *   to (the <meta name="gavel-nodes"> the serving node fills in from its Raft membership,
 *   or a `?nodes=` query parameter), a liveness probe of one of them (the
 *   Content-Security-Policy lets connections reach only the cluster's nodes), and the move
 *   itself: a navigation to that node's page carrying the tab's state in the URL fragment
 *   (#handoff=…), which browsers never send to a server and the new page removes at once;
 * - store: the tab's state in sessionStorage (per origin, hence the hand-over).
 */

export const API = '/api/v1';

/** Set once the events listener was found out of reach while the page's node answered. */
let eventsListenerLeft = false;

/**
 * The node's events listener's origin (<meta name="gavel-events">, whose workers give way
 * to the bids), or null: none, or left for being out of reach.
 */
function eventsOrigin() {
  if (eventsListenerLeft) return null;
  const listed = document.querySelector('meta[name="gavel-events"]')?.content.trim() ?? '';
  try {
    const url = new URL(listed);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin;
  } catch { /* none, or not a URL */ }
  return null;
}

/** The URL of an event stream (`path` under /api/v1): on the events listener, else here. */
export function eventsUrl(path) {
  return (eventsOrigin() ?? '') + API + path;
}

/** How long a stream may take to open before the page asks whether its listener is in reach. */
const STREAM_OPEN_WAIT_MS = 10000;
/**
 * How long the events listener has to answer that probe: a listener that is only busy (a
 * crowd connecting at once) answers within it, so its pages stay; one out of reach never does.
 */
const LISTENER_PROBE_TIMEOUT_MS = 5000;

/**
 * Moves the page's streams off an events listener out of its reach (a network that lets
 * the public port through and not the other, refusing or dropping): when `stream` fails
 * before it ever opened, or has not opened within STREAM_OPEN_WAIT_MS, and the listener
 * does not answer a probe while this page's own node does, eventsUrl names this origin from
 * then on (the public listener serves the streams too) and `reopen` is called.
 */
export function leaveEventsListenerOutOfReach(stream, reopen) {
  const origin = eventsOrigin();
  if (!origin) return;
  let opened = false;
  let asking = false;
  const ask = async () => {
    if (opened || asking || eventsListenerLeft) return;
    asking = true;
    const outOfReach = !await reachable(origin, LISTENER_PROBE_TIMEOUT_MS) && await reachable(location.origin);
    asking = false;
    if (outOfReach && !opened) {
      eventsListenerLeft = true;
      reopen();
    }
  };
  stream.addEventListener('open', () => { opened = true; });
  stream.addEventListener('error', ask);
  setTimeout(ask, STREAM_OPEN_WAIT_MS);
}

const SYNC_SAMPLES = 2;
const REQUEST_TIMEOUT_MS = 5000;
const PROBE_TIMEOUT_MS = 1500;
/** What a page hands over to the next node's page. */
const HANDOFF_KEYS = ['session', 'numbers', 'pending', 'lastView', 'failovers', 'from', 'receipts', 'outbidAlert'];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** sessionStorage, one JSON value per key: survives reloads, not the tab. */
export const store = {
  get(key) {
    try { return JSON.parse(sessionStorage.getItem(`gavel.${key}`)); } catch { return null; }
  },
  set(key, value) { sessionStorage.setItem(`gavel.${key}`, JSON.stringify(value)); },
  remove(key) { sessionStorage.removeItem(`gavel.${key}`); },
};

/** The node did not answer at all (refused, reset, timed out): a reason to fail over. */
export class NodeUnreachable extends Error {}

/** One request to this node; answers { status, data, retryAfter } or throws NodeUnreachable. */
export async function api(path, { method = 'GET', body, token } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(API + path, {
      method, headers, cache: 'no-store', signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    return { status: response.status, data, retryAfter: Number(response.headers.get('Retry-After')) };
  } catch (error) {
    throw new NodeUnreachable(String(error));
  } finally {
    clearTimeout(timer);
  }
}

/** NTP-style: answers { offset_ms, rtt_ms, node_id } of the fastest of `samples`, or null. */
export async function measureClock(samples = SYNC_SAMPLES) {
  let best = null;
  for (let sample = 0; sample < samples; sample += 1) {
    const t0 = Date.now();
    const { status, data } = await api('/time');
    const t1 = Date.now();
    if (status !== 200 || !data) continue;
    const candidate = { rtt_ms: t1 - t0, offset_ms: data.server_time_ms - (t0 + t1) / 2, node_id: data.node_id };
    if (!best || candidate.rtt_ms < best.rtt_ms) best = candidate;
  }
  return best;
}

export function newRequestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${[...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

/** Whether a node's process answers at all (an opaque no-cors response is enough). */
export async function reachable(origin, timeoutMs = PROBE_TIMEOUT_MS) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    await fetch(`${origin}/healthz`, { mode: 'no-cors', cache: 'no-store', signal: controller.signal });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Navigates to another node's page, handing over `handoff` (keys: HANDOFF_KEYS). */
export function handOver(origin, handoff) {
  const fragment = encodeURIComponent(JSON.stringify(handoff));
  location.assign(`${origin}/${location.search}#handoff=${fragment}`);
}

/** Takes over what a previous node's page handed over, and clears it from the address. */
export function takeHandoff() {
  const match = location.hash.match(/^#handoff=(.+)$/);
  if (!match) return;
  history.replaceState(null, '', location.pathname + location.search);
  try {
    const handoff = JSON.parse(decodeURIComponent(match[1]));
    // Every key is set or removed: this origin's storage may hold an older tab state.
    for (const key of HANDOFF_KEYS) {
      if (handoff[key] == null) store.remove(key); else store.set(key, handoff[key]);
    }
  } catch {
    // A damaged fragment: start signed out, as on a fresh page.
  }
}

/** The cluster's origins in the listed order, this page's own included. */
export function clusterNodes() {
  const origin = (text) => {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
    } catch { return null; }
  };
  const listed = new URLSearchParams(location.search).get('nodes')
    ?? document.querySelector('meta[name="gavel-nodes"]')?.content ?? '';
  // In the listed order (each page moves on to the node after its own), this one included.
  const cluster = [...new Set(listed.split(/[\s,]+/).map(origin).filter(Boolean))];
  return cluster.includes(location.origin) ? cluster : [location.origin, ...cluster];
}
