/*
 * Gavel operator dashboard: the page's behaviour.
 *
 * Asks for the admin token (kept in sessionStorage, sent as `Authorization: Bearer`; any
 * 401 brings the prompt back), then refreshes every second from the control API of the
 * node that served the page:
 *   GET /control/v1/cluster   nodes: role, health, last applied index, heartbeat age
 *   GET /control/v1/auctions  auctions, with suspend / resume / terminate / increment
 *   GET /control/v1/stats     samples for the two live charts (see charts.js)
 *   GET /control/v1/janitor   the last purification report
 * and sends the operator's actions (POST .../suspend|resume|terminate {reason},
 * .../increment {increment, reason}, /control/v1/cluster/switchover {to_node_id}).
 * sale.js shows one sale's deposits and winner's confirmation (from its result), records
 * deposits (POST .../deposits) and declares a lapsed sale in default (POST .../default).
 * Every refusal shows the API's problem+json `code` and `detail`.
 *
 * The page is in Simplified Chinese first, as a land and resources trading centre's
 * operators write it (节点, 主节点 / 从节点, 竞价场次, 挂牌, 暂停 / 恢复 / 终止, 保证金 …), and
 * in English when the browser lists English before Chinese; `?lang=zh|en` (the header's
 * "中文 · English" switch) changes it and is remembered (i18n.js). Every text is in
 * texts.js, one table per language; money in 元 / 万元 (English: ¥), phases by their
 * names, times in the language's local format. The token stays in the tab across a switch.
 *
 * The parts: common.js (API client, formatting, messages), auctions.js (the auctions
 * table and its action dialog), sale.js (deposits and confirmation), charts.js (the live
 * charts), texts.js (the texts); this file holds the language, the token
 * prompt, the refresh loop, the nodes table, the switchover control and the janitor.
 * No framework and no build step; the DOM is written with textContent only, never
 * innerHTML, and nothing is loaded from outside the node (CSP: default-src 'self').
 */

import { renderAuctions, wireAuctions } from './auctions.js';
import { renderSale, wireSale } from './sale.js';
import { RollingSeries, drawChart, ratesBetween } from './charts.js';
import {
  age, api, badge, byId, cell, clock, label, problemText, report, serverNowMs, session, setConnection, t,
} from './common.js';
import { chooseLanguage, currentLanguage, translatePage, useLanguage } from './i18n.js';
import { TEXTS } from './texts.js';

const TOKEN_KEY = 'gavel.adminToken';
const REFRESH_MS = 1000;
/** This node's actors (GET /control/v1/node, which also measures the data directory) are read this often. */
const NODE_EVERY_MS = 10000;
const VOTER_ROLES = new Set(['leader', 'follower']);

const page = {
  timer: null,
  refreshing: false,
  previousStats: null,
  nodeId: null,
  switchoverKey: '',
  bidsSeries: new RollingSeries(),
  latencyMeanSeries: new RollingSeries(),
  latencyP99Series: new RollingSeries(),
};

// --- Token -------------------------------------------------------------------------

function askForToken(message) {
  session.token = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch (error) { /* storage disabled: the token lived in memory only */ }
  clearInterval(page.timer);
  page.timer = null;
  if (byId('action-dialog').open) {
    byId('action-dialog').close();
  }
  byId('dashboard').hidden = true;
  byId('sign-out').hidden = true;
  byId('sign-in').hidden = false;
  byId('token-message').textContent = message || '';
  setConnection('idle', t('notConnected'));
  byId('token-input').focus();
}

function signIn(token) {
  session.token = token;
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch (error) { /* keep it in memory */ }
  byId('sign-in').hidden = true;
  byId('dashboard').hidden = false;
  byId('sign-out').hidden = false;
  setConnection('idle', t('connecting'));
  refresh();
  page.timer = setInterval(refresh, REFRESH_MS);
}

// --- Refresh -----------------------------------------------------------------------

async function refresh() {
  if (page.refreshing || !session.token) {
    return;
  }
  page.refreshing = true;
  try {
    const sections = [
      // After the stats, which say which node this is.
      ['/control/v1/stats', renderStats, 'stats-status'],
      ...(Date.now() - (page.nodeReadAt ?? 0) >= NODE_EVERY_MS ? [['/control/v1/cluster/actors', renderNodeActors, 'nodes-status']] : []),
      ['/control/v1/cluster', renderCluster, 'nodes-status'],
      ['/control/v1/auctions', (answer) => { renderAuctions(answer); renderSale(answer); }, 'auctions-status'],
      ['/control/v1/janitor', renderJanitor, 'janitor-status'],
    ];
    const results = await Promise.allSettled(sections.map(([path]) => api('GET', path)));
    if (!session.token) {
      return;
    }
    let firstProblem = null;
    results.forEach((result, index) => {
      const [path, render, statusId] = sections[index];
      const status = byId(statusId);
      if (result.status === 'fulfilled') {
        status.textContent = '';
        render(result.value);
      } else {
        status.textContent = t('sectionProblem', path, problemText(result.reason));
        firstProblem = firstProblem || result.reason;
        if (path === '/control/v1/stats') {
          pushChartGap();
        }
      }
    });
    if (firstProblem) {
      setConnection('error', t('trouble', problemText(firstProblem)));
    } else {
      setConnection('live', t('live', clock(Date.now())));
    }
    drawCharts();
  } finally {
    page.refreshing = false;
  }
}

function renderStats(stats) {
  session.serverOffsetMs = stats.server_time_ms - Date.now();
  page.nodeId = stats.node_id;
  byId('node-identity').textContent = t('identity', stats.node_id, stats.is_leader, stats.term);
  document.title = t('pageTitleOfNode', stats.node_id);
  byId('latency-note').textContent = stats.is_leader ? '' : t('latencyNote');
  const previous = page.previousStats;
  page.previousStats = stats;
  if (!previous) {
    return;
  }
  const rates = ratesBetween(previous, stats);
  const nowMs = Date.now();
  page.bidsSeries.push(nowMs, rates ? rates.bidsPerSecond : null);
  page.latencyMeanSeries.push(nowMs, rates ? rates.latencyMeanMs : null);
  page.latencyP99Series.push(nowMs, rates ? rates.latencyP99Ms : null);
}

function pushChartGap() {
  const nowMs = Date.now();
  for (const series of [page.bidsSeries, page.latencyMeanSeries, page.latencyP99Series]) {
    series.push(nowMs, null);
  }
}

/** Figures for the chart axes and readouts: more decimals for small values, none for 0. */
function decimals(value) {
  if (value === 0 || value >= 10) {
    return String(Math.round(value));
  }
  return value.toFixed(value < 1 ? 2 : 1);
}

const formatRate = (value) => t('perSecond', decimals(value));
const formatMs = (value) => t('ms', decimals(value));

function drawCharts() {
  const nowMs = Date.now();
  drawChart(byId('bids-chart'), [{ series: page.bidsSeries, colorVariable: '--chart-bids' }], nowMs, {
    formatValue: formatRate,
    minimumMaximum: 1,
  });
  drawChart(
    byId('latency-chart'),
    [
      { series: page.latencyP99Series, colorVariable: '--chart-p99' },
      { series: page.latencyMeanSeries, colorVariable: '--chart-mean' },
    ],
    nowMs,
    { formatValue: formatMs, minimumMaximum: 1 },
  );
  const bids = page.bidsSeries.latest();
  byId('bids-rate-now').textContent = bids === null ? '' : formatRate(bids);
  const mean = page.latencyMeanSeries.latest();
  const p99 = page.latencyP99Series.latest();
  byId('latency-now').textContent =
    mean === null ? t('noCommits') : t('latencyNow', formatMs(mean), formatMs(p99));
}

/**
 * Every node's actors by kind (hot actors: an Auction actor per live sale on every node,
 * timers armed on the leader), from GET /control/v1/cluster/actors: a column of the node
 * table, and this node's line above it.
 */
function renderNodeActors(answer) {
  page.nodeReadAt = Date.now();
  page.actorsByNode = new Map((answer?.nodes ?? []).map((member) => [member.node_id, member.actors ?? null]));
  const actors = page.actorsByNode.get(page.nodeId);
  const line = byId('node-actors');
  if (!actors) return;
  Object.assign(line.dataset, { auctionsLive: actors.auctions_live, timersArmed: actors.timers_armed, peerLinks: actors.peer_links });
  line.textContent = t('nodeActors', actors);
}

/** A node's actors in its table cell; "—" when it did not answer. */
function actorsText(actors) {
  if (!actors) return '—';
  const restarts = Object.values(actors.restarts ?? {}).reduce((sum, count) => sum + count, 0);
  return t('actorsCell', actors.auctions_live, actors.timers_armed, actors.peer_links, restarts);
}

function renderCluster(cluster) {
  byId('cluster-summary').textContent = t('clusterSummary', cluster.cluster_id, cluster.term, cluster.leader_id);
  const now = serverNowMs();
  const rows = cluster.nodes.map((node) => {
    const row = document.createElement('tr');
    row.dataset.health = node.health;
    const heartbeat = node.last_heartbeat_ms === null ? t('never') : age(now - node.last_heartbeat_ms);
    row.append(
      cell(node.node_id, 'number'),
      cell(node.node_id === page.nodeId ? t('thisNode', node.name) : node.name),
      cell(badge(node.role, label('roles', node.role))),
      cell(badge(node.health, label('health', node.health))),
      cell(node.last_applied_index, 'number'),
      cell(heartbeat, 'number'),
      cell(actorsText(page.actorsByNode?.get(node.node_id))),
      cell(controlLink(node.control_url)),
    );
    return row;
  });
  byId('nodes-body').replaceChildren(...rows);
  updateSwitchoverTargets(cluster);
}

/** A link to another node's dashboard; only http(s) addresses become links. */
function controlLink(url) {
  if (!/^https?:\/\//.test(url || '')) {
    return url || '—';
  }
  const link = document.createElement('a');
  link.href = url.endsWith('/') ? url : `${url}/`;
  link.textContent = url.replace(/^https?:\/\//, '');
  link.rel = 'noreferrer';
  return link;
}

/** Fills the switchover choice with the voters, keeping the operator's selection. */
function updateSwitchoverTargets(cluster) {
  const voters = cluster.nodes.filter((node) => VOTER_ROLES.has(node.role));
  const key = voters.map((node) => `${node.node_id}:${node.role}`).join(',');
  if (key === page.switchoverKey) {
    return;
  }
  page.switchoverKey = key;
  const select = byId('switchover-target');
  const chosen = select.value;
  select.replaceChildren(
    ...voters.map((node) => {
      const option = document.createElement('option');
      option.value = String(node.node_id);
      option.textContent = t('switchoverOption', node.node_id, node.name, node.role === 'leader');
      return option;
    }),
  );
  if (voters.some((node) => String(node.node_id) === chosen)) {
    select.value = chosen;
  }
}

/** The janitor's figures shown first, in this order; the others follow as the node sends them. */
const JANITOR_FIRST = [
  'last_sweep_at_ms', 'sweeps', 'live_actors', 'actors_started', 'actors_stuck_replaced', 'auctions_released',
  'sessions_expired', 'requests_expired', 'last_purge_skipped',
];

function renderJanitor(janitorReport) {
  const keys = JANITOR_FIRST.filter((key) => key in janitorReport);
  for (const key of Object.keys(janitorReport)) {
    if (!keys.includes(key)) {
      keys.push(key);
    }
  }
  const entries = keys.flatMap((key) => {
    const term = document.createElement('dt');
    term.textContent = label('janitorLabels', key);
    const value = document.createElement('dd');
    value.textContent = janitorValue(key, janitorReport[key]);
    return [term, value];
  });
  byId('janitor-report').replaceChildren(...entries);
}

function janitorValue(key, value) {
  if (value === null || value === undefined) {
    return key === 'last_purge_skipped' ? t('notSkipped') : '—';
  }
  if (key === 'last_sweep_at_ms') {
    return t('ago', age(serverNowMs() - value), clock(value));
  }
  if (typeof value === 'string') {
    return t('janitorReasons')[value] ?? value;
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

// --- Switchover --------------------------------------------------------------------
async function submitSwitchover(event) {
  event.preventDefault();
  const target = Number(byId('switchover-target').value);
  const result = byId('switchover-result');
  if (!Number.isSafeInteger(target)) {
    return;
  }
  if (!window.confirm(t('switchoverAsk', target))) {
    return;
  }
  const button = event.target.querySelector('button');
  button.disabled = true;
  result.className = 'result';
  result.textContent = t('switchoverAsking', target);
  try {
    const cluster = await api('POST', '/control/v1/cluster/switchover', { to_node_id: target });
    result.textContent = t('switchoverDone', cluster.leader_id, cluster.term);
    report(t('switchoverReport', cluster.leader_id, cluster.term), 'done');
    refresh();
  } catch (error) {
    result.className = 'result problem';
    result.textContent = problemText(error);
    report(t('switchoverRefused', target, problemText(error)), 'problem');
  } finally {
    button.disabled = false;
  }
}

// --- Wiring --------------------------------------------------------------------------

// --- Language ------------------------------------------------------------------------

/** The header's "中文 · English" switch: each link keeps the page's other query parameters. */
function renderLanguageLinks() {
  for (const language of ['zh', 'en']) {
    const query = new URLSearchParams(location.search);
    query.set('lang', language);
    const link = byId(`language-${language}`);
    link.href = `/?${query}`;
    if (language === currentLanguage()) {
      link.setAttribute('aria-current', 'true');
    } else {
      link.removeAttribute('aria-current');
    }
  }
}

function start() {
  document.body.dataset.language = useLanguage(chooseLanguage(), TEXTS);
  translatePage();
  document.title = t('pageTitle');
  renderLanguageLinks();
  session.onUnauthorized = askForToken;
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = byId('token-input').value.trim();
    byId('token-input').value = '';
    if (token) {
      signIn(token);
    }
  });
  byId('sign-out').addEventListener('click', () => askForToken(t('tokenForgotten')));
  wireAuctions(refresh);
  wireSale(refresh);
  byId('switchover-form').addEventListener('submit', submitSwitchover);
  window.addEventListener('resize', drawCharts);

  let token = null;
  try {
    token = sessionStorage.getItem(TOKEN_KEY);
  } catch (error) { /* storage disabled */ }
  if (token) {
    signIn(token);
  } else {
    askForToken('');
  }
}

start();
