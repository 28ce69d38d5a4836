/*
 * Gavel's bidding-hall screen (/hall): every live sale, for a public display.
 *
 * It follows GET /api/v1/events (an `auction` view of every sale at connect, then one of
 * every sale a committed command changed; `closed` when a sale ends), syncs its clock to the
 * server's (two samples of GET /api/v1/time, as the bidder page; again every five minutes and
 * after a reconnect) and counts every deadline down locally. A sale's last bids are read
 * from GET /api/v1/auctions/{id}/bids when its view counts more bids. A phase change is announced in a banner for a
 * few seconds. Only bidder numbers are shown, never who bids. A closed sale stays on the
 * screen with its result for ten minutes.
 *
 * State a test can read: <body data-connection, data-clock-syncs, data-language>, each
 * <article class="sale" data-id, data-phase, data-price, data-leader, data-bid-count,
 * data-remaining-ms>, #announcement (data-phase-change).
 */

import { API, eventsUrl, leaveEventsListenerOutOfReach, measureClock } from '/assets/bidder/cluster.js';
import {
  chooseLanguage, clockTime, money, number, parcelText, phaseName, remaining, t, translatePage, useLanguage,
} from '/assets/bidder/i18n.js';

const RESYNC_EVERY_MS = 5 * 60 * 1000;
const LAST_BIDS = 8;
const CLOSED_KEPT_MS = 10 * 60 * 1000;
const ANNOUNCEMENT_MS = 8000;
const URGENT_MS = 60 * 1000;
const ENDED = ['sold', 'unsold', 'terminated'];

const TEXTS = {
  zh: {
    title: '网上竞价大厅',
    serverTime: '当前时间',
    noSales: '当前没有正在进行的竞价',
    timeLeft: '剩余时间',
    currentPrice: '当前价',
    leadingBidder: '领先竞买号',
    bidCount: '出价次数',
    live: '实时连接',
    connecting: '连接中',
    reconnecting: '重新连接中',
    nextBid: (amount) => `下一口最低应价 ${money(amount)}`,
    startPrice: (amount) => `起始价 ${money(amount)}`,
    bidLine: (number) => `竞买号 ${number}`,
    noLeader: '暂无',
    phaseChange: (title, from, to) => `${title}：${from} → ${to}`,
    newSale: (title, phase) => `${title}：${phase}`,
    sold: (number, amount) => `成交 · 竞买号 ${number} · 成交价 ${money(amount)}`,
    unsold: '本次竞价流拍',
    terminated: '本次竞价已终止',
    suspended: '竞价暂停，等待恢复',
    footer: (node, syncs) => `节点 ${node} · 时钟已同步 ${syncs} 次 · 页面仅显示竞买号，不显示竞买人身份`,
  },
  en: {
    title: 'Bidding hall',
    serverTime: 'Server time',
    noSales: 'No sale is running now',
    timeLeft: 'Time left',
    currentPrice: 'Current price',
    leadingBidder: 'Leading bidder',
    bidCount: 'Bids',
    live: 'live',
    connecting: 'connecting',
    reconnecting: 'reconnecting',
    nextBid: (amount) => `Next bid at least ${money(amount)}`,
    startPrice: (amount) => `Start price ${money(amount)}`,
    bidLine: (number) => `Bidder ${number}`,
    noLeader: 'none yet',
    phaseChange: (title, from, to) => `${title}: ${from} → ${to}`,
    newSale: (title, phase) => `${title}: ${phase}`,
    sold: (number, amount) => `Sold · bidder ${number} · at ${money(amount)}`,
    unsold: 'Unsold',
    terminated: 'Terminated',
    suspended: 'Suspended; bidding resumes when the auctioneer says so',
    footer: (node, syncs) => `node ${node} · clock synced ${syncs} times · bidder numbers only, never identities`,
  },
};

const $ = (id) => document.getElementById(id);
const hall = {
  clock: { offset_ms: 0, node_id: null, syncs: 0 },
  sales: new Map(), // id -> { view, bids: [{seq, bidder_number, amount, accepted_at_ms}], element, closedAt }
  stream: null,
  announcementTimer: null,
};

const serverNow = () => Date.now() + hall.clock.offset_ms;

async function syncClock(samples) {
  const best = await measureClock(samples).catch(() => null);
  if (!best) return;
  Object.assign(hall.clock, best, { syncs: hall.clock.syncs + 1 });
  document.body.dataset.clockSyncs = hall.clock.syncs;
  document.body.dataset.clockOffsetMs = Math.round(best.offset_ms);
  $('footer').textContent = t('footer', best.node_id, hall.clock.syncs);
}

function setConnection(state) {
  document.body.dataset.connection = state;
  $('connection').dataset.state = state;
  $('connection-text').textContent = t(state);
}

function announce(text, phase) {
  const banner = $('announcement');
  banner.textContent = text;
  banner.dataset.phaseChange = phase;
  banner.hidden = false;
  clearTimeout(hall.announcementTimer);
  hall.announcementTimer = setTimeout(() => { banner.hidden = true; }, ANNOUNCEMENT_MS);
}

function saleElement(id) {
  const element = $('sale-template').content.firstElementChild.cloneNode(true);
  element.dataset.id = id;
  translatePage(element);
  $('sales').append(element);
  return element;
}

/**
 * Reads the sale's newest bids (after the newest shown; at start, about the last few) and
 * shows them; one request at a time per sale, once more if views came in meanwhile.
 */
async function loadBids(sale) {
  if (sale.loading) {
    sale.again = true;
    return;
  }
  sale.loading = true;
  const id = encodeURIComponent(sale.view.id);
  try {
    for (let page = 0; page < 20; page += 1) {
      const after = sale.bids[0]?.seq ?? Math.max(0, sale.view.bid_count - LAST_BIDS);
      const response = await fetch(`${API}/auctions/${id}/bids?after_seq=${after}&limit=100`);
      if (!response.ok) break;
      const { bids, next_after_seq: next } = await response.json();
      for (const bid of bids) addBid(sale, bid);
      if (next == null || bids.length === 0) break;
    }
  } catch { /* the next view brings the price anyway */ }
  sale.loading = false;
  render(sale);
  if (sale.again) {
    sale.again = false;
    loadBids(sale);
  }
}

function addBid(sale, bid) {
  if (bid.void || sale.bids.some((known) => known.seq === bid.seq)) return;
  sale.bids.unshift(bid);
  sale.bids.sort((a, b) => b.seq - a.seq);
  sale.bids.length = Math.min(sale.bids.length, LAST_BIDS);
}

function onView(view) {
  let sale = hall.sales.get(view.id);
  const previous = sale?.view;
  if (!sale) {
    if (ENDED.includes(view.phase)) return; // ended before the screen opened
    sale = {
      view, bids: [], element: saleElement(view.id), closedAt: null, loading: false, again: false,
    };
    hall.sales.set(view.id, sale);
    if (view.bid_count > 0) loadBids(sale);
  }
  sale.view = view;
  if (previous && view.bid_count > previous.bid_count) loadBids(sale);
  if (previous && previous.phase !== view.phase) {
    announce(t('phaseChange', view.title, phaseName(previous.phase), phaseName(view.phase)), view.phase);
  }
  if (ENDED.includes(view.phase) && sale.closedAt == null) sale.closedAt = Date.now();
  render(sale);
}

function resultText(view) {
  if (view.phase === 'sold') return t('sold', view.winner_bidder_number ?? view.leading_bidder_number, view.current_price);
  if (view.phase === 'unsold') return t('unsold');
  if (view.phase === 'terminated') return t('terminated');
  if (view.phase === 'suspended') return t('suspended');
  if (view.bid_count === 0) return t('startPrice', view.start_price);
  return view.minimum_next_bid != null ? t('nextBid', view.minimum_next_bid) : '';
}

function render(sale) {
  const { view, element } = sale;
  Object.assign(element.dataset, {
    phase: view.phase, price: view.current_price ?? '', leader: view.leading_bidder_number ?? '', bidCount: view.bid_count,
  });
  element.querySelector('.sale-title').textContent = view.title;
  element.querySelector('.sale-phase').textContent = phaseName(view.phase);
  element.querySelector('.sale-parcel').textContent = parcelText(view.parcel);
  element.querySelector('.sale-price').textContent = money(view.current_price ?? view.start_price);
  element.querySelector('.sale-leader').textContent = view.leading_bidder_number ?? t('noLeader');
  element.querySelector('.sale-count').textContent = number(view.bid_count);
  element.querySelector('.sale-next').textContent = resultText(view);
  const list = element.querySelector('.sale-bids');
  list.replaceChildren(...sale.bids.map((bid) => {
    const item = document.createElement('li');
    item.dataset.seq = bid.seq;
    const who = document.createElement('span');
    who.textContent = `#${bid.seq} ${t('bidLine', bid.bidder_number)}`;
    const amount = document.createElement('span');
    amount.textContent = money(bid.amount);
    const at = document.createElement('span');
    at.textContent = clockTime(bid.accepted_at_ms);
    item.append(who, amount, at);
    return item;
  }));
  renderEmpty();
}

function renderEmpty() {
  $('no-sales').hidden = hall.sales.size > 0;
}

/** Every frame: the server clock, each countdown, and closed sales leaving after a while. */
function tick() {
  if (hall.clock.syncs > 0) $('server-time').textContent = clockTime(serverNow());
  for (const [id, sale] of hall.sales) {
    if (sale.closedAt != null && Date.now() - sale.closedAt > CLOSED_KEPT_MS) {
      sale.element.remove();
      hall.sales.delete(id);
      renderEmpty();
      continue;
    }
    const countdown = sale.element.querySelector('.sale-countdown');
    const deadline = sale.view.deadline_ms;
    if (hall.clock.syncs === 0 || deadline == null) {
      countdown.textContent = '–';
      sale.element.dataset.remainingMs = '';
      sale.element.dataset.urgent = 'false';
      continue;
    }
    const left = Math.max(0, Math.round(deadline - serverNow()));
    countdown.textContent = remaining(left);
    sale.element.dataset.remainingMs = left;
    sale.element.dataset.urgent = String(left < URGENT_MS && sale.view.phase === 'timed_bidding');
  }
}

function frame() {
  tick();
  requestAnimationFrame(frame);
}

function openStream() {
  const stream = new EventSource(eventsUrl('/events'));
  hall.stream = stream;
  const parsed = (handler) => (event) => handler(JSON.parse(event.data));
  let dropped = false;
  stream.addEventListener('open', () => {
    setConnection('live');
    if (dropped) syncClock(1);
    dropped = false;
  });
  stream.addEventListener('error', () => { dropped = true; setConnection('reconnecting'); });
  leaveEventsListenerOutOfReach(stream, () => {
    if (hall.stream !== stream) return;
    stream.close();
    openStream();
  });
  stream.addEventListener('auction', parsed(onView));
  stream.addEventListener('closed', parsed(onView));
}

async function start() {
  document.body.dataset.language = useLanguage(chooseLanguage(), TEXTS);
  document.title = `Gavel · ${t('title')}`;
  translatePage();
  setConnection('connecting');
  await syncClock(2);
  setInterval(() => syncClock(1), RESYNC_EVERY_MS);
  openStream();
  requestAnimationFrame(frame);
  setInterval(tick, 250); // a screen in the background still counts
  renderEmpty();
}

start();
