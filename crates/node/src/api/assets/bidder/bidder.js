/*
 * Gavel bidder page: sign in, follow every auction live, enter an auction room and bid.
 * Served by every node's public listener (src/api/pages.rs); plain ES modules, no build step:
 * this file holds the page's state and screens, cluster.js how it reaches the cluster.
 *
 * Language. The page is in Simplified Chinese first, as a Chinese land trading centre writes
 * it (竞买人, 竞买号, 保证金, 当前价, 最低应价, 已被超越 …), and in English: Chinese when the
 * browser lists Chinese before English (or neither), English when English comes first;
 * `?lang=zh|en` (the header's "中文 · English" switch, which keeps the auction) switches and is
 * remembered (i18n.js). Every text is in texts.js, one table per language; amounts show
 * through i18n.js's money() (zh "9,800 元", "1,234.5 万元"; en "¥1,234,500"), phases through
 * phaseName() (挂牌, 限时竞价 …), the parcel through parcelText(), times in the language's
 * local format.
 *
 * Clock. Bidders must see the server's time. The page takes two samples of
 * GET /api/v1/time and keeps the one with the smallest round trip:
 * offset = server_time - (t0 + t1) / 2. It then counts down locally every frame from
 * deadline_ms - (Date.now() + offset), and re-syncs with one sample after every reconnect
 * and when five minutes pass without confirmation: every new receipt confirms the clock
 * (the leader's stamp must fall within the bid's round trip, give or take 50 ms) or, if it
 * does not, re-syncs it at once. No polling.
 *
 * Live data. Server-sent events: /api/v1/events for the list of auctions,
 * /api/v1/auctions/{id}/events in a room (the browser resumes with Last-Event-ID): each
 * live bid comes as one compact `bid` event carrying what it changed (price, leader, next
 * minimum, deadline), merged into the last full `auction` view, which comes at connect and
 * with every other change; a `resync` (the node could not keep this page up to date)
 * carries the view, and the page reads the bids it missed from the bid list. A deadline that
 * moves without a bid (in the listing, where bids never move it, with one too) is shown as "deadline extended"
 * (a leader takeover's grace, or an operator's action).
 *
 * Failover. The page only talks to the node that served it (same origin, no CORS; its event
 * stream goes to that node's events listener when it has one, on the same host). When a
 * request cannot reach that node, or the event stream drops and three probes of the node
 * fail, it probes the other cluster nodes (listed by the server in <meta name="gavel-nodes">,
 * or by a `?nodes=` query parameter) in order after its own, and navigates to the first
 * that answers, handing over its session, known bidder numbers, last auction view and any
 * pending bid in the URL fragment (#handoff=…; never sent to a server, removed at once).
 * The new page re-syncs its clock and resends the pending bid with the SAME request_id, so
 * the cluster answers the original receipt if the bid had already been committed: a bid is
 * never doubled.
 *
 * The bidder's own standing. GET /api/v1/auctions/{id}/me (with the session) tells the
 * bidder number (竞买号) before any bid, the deposit required and recorded, whether a bid
 * would be taken now and why not, and, after a sale, whether this bidder won and where the
 * winner's confirmation stands. The page asks again when the auction's view changes (at
 * most one request at a time) and, once sold with a confirmation pending or lapsed, polls
 * the auction and its own standing every 2 s (the event stream ends with the sale). The
 * winner confirms the sale (成交确认) with POST /api/v1/auctions/{id}/acceptance before the
 * window's deadline, counted down like the auction's.
 *
 * Receipts. The last receipt of each auction is kept in the tab and shown with its chain
 * hash (short form) and its signature: "signed by the cluster" once it carries
 * receipt_signature, checked here with WebCrypto's Ed25519 against the cluster's receipt keys
 * (written into the page's <meta name="gavel-receipt-keys">, as GET /api/v1/receipt-key
 * lists them) where the browser has it (otherwise shown unchecked, with a link
 * to the key for `gavel verify-receipt`).
 *
 * Secondary bidding (竞配建 / 竞自持). Under cap_mode "secondary", once the price reaches the
 * cap the view's `secondary` ({label, unit, current, leading_bidder_number, minimum_next})
 * is what is bid on: the page shows it with its unit, counts down the phase's deadline and
 * offers a form that posts {secondary_amount, request_id} to the same bids route, through
 * the same pending-bid path as a price bid (retries and failovers keep the request_id).
 * The room's stream sends each secondary bid as a `secondary_bid` event, listed in the
 * history with its unit.
 *
 * Signed bids (电子签名). signing.js loads the bidder's own Ed25519 private key into this
 * tab's memory (never sent, never stored) and signs each bid, secondary bid, sealed quote
 * and proxy maximum with WebCrypto; the request carries `signature`. Without a key (an SM2
 * key, whose tool signs outside the browser) the page shows the exact text the next bid
 * signs, with the request_id it will use, and sends the signature pasted under it.
 *
 * Outbid alert. A checkbox in the bidder's standing (off by default, remembered in the tab's
 * sessionStorage): when this bidder goes from leading to outbid, the tab's title flashes
 * ("【已被超越】…" / "[Outbid] …") until the tab is focused, the bidder bids or leads again,
 * and a short beep sounds (WebAudio, no sound file).
 *
 * Strings. Every text the page shows is in texts.js (TEXTS.zh, TEXTS.en), read with t(key);
 * elements with data-t="key" get theirs when the page starts (translatePage()); a refusal's
 * message is TEXTS[lang].refusals[code], for every code the API answers the page's requests with.
 *
 * State a test can read: data-* attributes on <body> (language, connection, node-id, clock-offset-ms,
 * clock-syncs, failovers, outbid-alert: off, on or flashing, outbid-beeps), #countdown (remaining-ms, deadline-ms), #history li (seq,
 * bidder-number), #bid-status (state, receipt-seq, request-id, attempts, replayed),
 * #standing (bidder-number, qualified, deposit-required, deposited, may-bid, reason, lead),
 * #standing-minimum (amount), #auction-list td[data-phase],
 * #standing-lead and #standing-deposit (state), #acceptance (state, winner),
 * #acceptance-countdown (remaining-ms), #receipt (seq, chain-hash), #receipt-signature (state),
 * #secondary (phase), #secondary-current (amount), #secondary-countdown (remaining-ms),
 * #history li[data-secondary-seq] (bidder-number, amount), #bid-status (secondary-seq, key-id),
 * #signing-state (required), #signing-status (state, key-id), #signing-text (request-id).
 */

import { KeyProblem, loadKey, sign, signedText } from './signing.js';
import { receiptVerdict } from './receipt.js';
import {
  chooseLanguage, clockTime, currentLanguage, money, parcelText, phaseName, remaining as formatRemaining, t,
  translatePage, useLanguage,
} from './i18n.js';
import { TEXTS, quantity } from './texts.js';
import {
  API, NodeUnreachable, api, clusterNodes, eventsUrl, handOver, leaveEventsListenerOutOfReach, measureClock,
  newRequestId, reachable, sleep, store,
  takeHandoff,
} from './cluster.js';

const RESYNC_EVERY_MS = 5 * 60 * 1000;
/** How often the page looks whether a re-sync is due (no request unless it is). */
const CLOCK_CHECK_MS = 15 * 1000;
/** How far a receipt's time may lie outside its request's round trip and still confirm the clock. */
const CLOCK_TOLERANCE_MS = 50;
const PROBE_ATTEMPTS = 3;
const PROBE_PAUSE_MS = 300;
const BID_RETRY_FOR_MS = 30000;
const PENDING_KEPT_MS = 2 * 60 * 1000;
const SALE_POLL_MS = 2000;
/** A resync's reading of missed bids: this many per request, at most this many requests. */
const RESYNC_PAGE = 500;
const RESYNC_MAX_PAGES = 20;
/**
 * The newest bids a new stream brings with it (`history`): a contested sale holds thousands,
 * and a crowd connecting at its deadline would otherwise each be sent all of them. Earlier
 * ones are read from the bid list, this many at a time, when the bidder asks.
 */
const HISTORY_AT_CONNECT = 100;

const $ = (id) => document.getElementById(id);
/** How often the outbid alert flashes the tab's title. */
const FLASH_EVERY_MS = 800;

const page = {
  nodes: [], // origins of the cluster's nodes, in the listed order, this one included
  auctionId: null, // the room, or null for the list of auctions
  clock: { offset_ms: 0, rtt_ms: null, node_id: null, syncs: 0, confirmed_at: 0, confirmations: 0 },
  stream: null,
  streamFailed: false, // the stream dropped since it last opened: re-sync when it reopens
  checking: false,
  failingOver: false,
  auctions: new Map(), // the list: id -> AuctionView
  view: null, // the room's latest AuctionView
  carriedView: null, // the last view the previous node showed (after a failover)
  bids: new Map(), // the room's bids: seq -> BidView
  oldestSeq: 0, // the oldest and newest seq of those bids (0: none)
  newestSeq: 0,
  sending: false,
  resumePending: false, // a pending bid waits for the room's first view before it is resent
  amountEdited: false,
  extensions: 0,
  me: null, // the bidder's own standing in the room's auction (GET …/me), or null
  meLoading: false,
  meStale: false, // asked again while a request was out: ask once more when it ends
  salePoll: null,
  accepting: false,
  proxyMax: null, // the bidder's own hidden maximum in the room's auction, or null
  secondaryBids: new Map(), // the room's secondary bids: secondary_seq -> view
  secondaryEdited: false,
  // The bidder's signing key, in this tab's memory only: { key, keyId } or null; and the
  // request_id the shown text (for a pasted signature) is made for.
  signing: null,
  manualRequestId: null,
  baseTitle: null, // the tab's title in the room (the outbid alert flashes a mark before it)
  lead: 'none', // 'leading', 'outbid' or 'none': the bidder's standing last shown
  flashing: null, // the outbid alert's title timer
  audio: null, // the outbid alert's AudioContext, made when the bidder ticks the box
};

// --- Clock -------------------------------------------------------------------------------

/** Re-measures the offset to the server's clock (over `samples` round trips) and shows it. */
async function syncClock(samples) {
  const best = await measureClock(samples);
  if (!best) return;
  Object.assign(page.clock, best, { syncs: page.clock.syncs + 1, confirmed_at: Date.now() });
  const body = document.body.dataset;
  body.nodeId = best.node_id;
  body.clockOffsetMs = Math.round(best.offset_ms);
  body.clockRttMs = best.rtt_ms;
  body.clockSyncs = page.clock.syncs;
  $('node-text').textContent = t('nodeText', best.node_id);
  $('clock-text').textContent = t('clockSynced', best.node_id, Math.round(best.offset_ms), best.rtt_ms, clockTime(serverNow()));
}

const serverNow = () => Date.now() + page.clock.offset_ms;

/**
 * A new receipt is a clock sample too: the leader stamped the bid while the request was out,
 * so its time must lie between the request's sending and its answer on the synced clock. One
 * that does confirms the clock and puts off the periodic re-sync; one that does not
 * re-syncs at once.
 */
function confirmClock(acceptedAtMs, { sentAt, answeredAt }) {
  const offset = page.clock.offset_ms;
  if (page.clock.syncs === 0 || typeof acceptedAtMs !== 'number') return;
  const fits = acceptedAtMs >= sentAt + offset - CLOCK_TOLERANCE_MS && acceptedAtMs <= answeredAt + offset + CLOCK_TOLERANCE_MS;
  if (fits) {
    page.clock.confirmed_at = Date.now();
    page.clock.confirmations += 1;
    document.body.dataset.clockConfirmations = page.clock.confirmations;
  } else {
    syncClock(1).catch(() => checkNode('clock re-sync failed'));
  }
}

/** Re-syncs once the clock has gone unconfirmed for RESYNC_EVERY_MS. */
function resyncWhenDue() {
  if (page.clock.syncs > 0 && Date.now() - page.clock.confirmed_at >= RESYNC_EVERY_MS) {
    syncClock(1).catch(() => checkNode('clock re-sync failed'));
  }
}

const remainingOf = (view) => Math.max(0, Math.round(view.deadline_ms - serverNow()));

/** Counts down locally: called every animation frame and, in a background tab, by a timer. */
function tick() {
  if (page.clock.syncs === 0) return;
  const countdown = $('countdown');
  if (page.view && page.view.deadline_ms != null) {
    const remaining = remainingOf(page.view);
    countdown.dataset.remainingMs = remaining;
    countdown.dataset.deadlineMs = page.view.deadline_ms;
    countdown.textContent = formatRemaining(remaining);
    countdown.classList.toggle('urgent', remaining < 60000);
  } else if (page.view) {
    delete countdown.dataset.remainingMs;
    countdown.textContent = '–';
  }
  const secondaryCountdown = $('secondary-countdown');
  if (page.view?.phase === 'secondary_bidding' && page.view.deadline_ms != null) {
    const left = remainingOf(page.view);
    secondaryCountdown.dataset.remainingMs = left;
    secondaryCountdown.textContent = formatRemaining(left);
    secondaryCountdown.classList.toggle('urgent', left < 60000);
  } else {
    delete secondaryCountdown.dataset.remainingMs;
    secondaryCountdown.textContent = '–';
  }
  const confirmBy = page.view?.confirmation === 'pending' ? page.view.confirmation_deadline_ms : null;
  if (confirmBy != null) {
    const left = Math.max(0, Math.round(confirmBy - serverNow()));
    $('acceptance-countdown').dataset.remainingMs = left;
    $('acceptance-countdown').textContent = formatRemaining(left);
    $('acceptance-countdown').classList.toggle('urgent', left < 60000);
  }
  for (const cell of document.querySelectorAll('#auction-list [data-deadline-ms]')) {
    cell.textContent = formatRemaining(Math.max(0, Number(cell.dataset.deadlineMs) - serverNow()));
  }
}

// --- Connection and failover ---------------------------------------------------------------

function setConnection(state) {
  document.body.dataset.connection = state;
  $('connection').dataset.state = state;
  $('connection-text').textContent = t('connection')[state] ?? state;
}

function openStream() {
  if (page.stream) page.stream.close();
  const path = page.auctionId ? `/auctions/${encodeURIComponent(page.auctionId)}/events?${streamStart()}` : '/events';
  const stream = new EventSource(eventsUrl(path));
  page.stream = stream;
  const parsed = (handler) => (event) => { if (page.stream === stream) handler(JSON.parse(event.data)); };
  stream.addEventListener('open', () => { if (page.stream === stream) onStreamOpen(); });
  stream.addEventListener('error', () => { if (page.stream === stream) onStreamError(); });
  leaveEventsListenerOutOfReach(stream, () => { if (page.stream === stream && !page.failingOver) openStream(); });
  if (page.auctionId) {
    stream.addEventListener('bid', parsed(onLiveBid));
    stream.addEventListener('resync', parsed(onResync));
    stream.addEventListener('secondary_bid', parsed(onSecondaryBid));
    stream.addEventListener('auction', parsed(onRoomView));
    stream.addEventListener('closed', parsed((view) => {
      onRoomView(view);
      stream.close();
      setConnection('auction closed');
    }));
  } else {
    stream.addEventListener('auction', parsed(onLobbyView));
    stream.addEventListener('closed', parsed(onLobbyView));
  }
}

/**
 * Where a new stream starts: after the newest bid this page holds, or, for a page that
 * holds none, with the newest `HISTORY_AT_CONNECT` bids. (The browser's own reconnections
 * resume with `Last-Event-ID`.)
 */
function streamStart() {
  return page.newestSeq > 0 ? `after_seq=${page.newestSeq}` : `history=${HISTORY_AT_CONNECT}`;
}

/** Reads the bids before the oldest this page holds, `HISTORY_AT_CONNECT` of them. */
async function showEarlierBids() {
  const oldest = page.oldestSeq;
  if (oldest <= 1) return renderEarlierButton();
  const count = Math.min(HISTORY_AT_CONNECT, oldest - 1);
  const path = `/auctions/${encodeURIComponent(page.auctionId)}/bids?after_seq=${oldest - 1 - count}&limit=${count}`;
  try {
    const answer = await api(path);
    if (answer.status === 200 && answer.data) for (const bid of answer.data.bids) onBid(bid);
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
    checkNode('bid list unreachable');
  }
  renderEarlierButton();
}

/** The "earlier bids" button shows while bids before the oldest held exist. */
function renderEarlierButton() {
  $('history-earlier').hidden = page.oldestSeq <= 1;
}

async function onStreamOpen() {
  setConnection('live');
  if (page.streamFailed) {
    page.streamFailed = false;
    await syncClock(1).catch(() => checkNode('clock re-sync failed'));
  }
}

function onStreamError() {
  setConnection('reconnecting');
  page.streamFailed = true;
  checkNode('event stream dropped');
}

/** Probes this node a few times; the browser reconnects the stream if it answers. */
async function checkNode(reason) {
  if (page.checking || page.failingOver) return;
  page.checking = true;
  try {
    for (let attempt = 0; attempt < PROBE_ATTEMPTS; attempt += 1) {
      try {
        if ((await api('/time')).status === 200) {
          if (page.stream && page.stream.readyState === EventSource.CLOSED) setTimeout(openStream, 1000);
          return;
        }
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
      }
      await sleep(PROBE_PAUSE_MS);
    }
  } finally {
    page.checking = false;
  }
  failOver(reason);
}

/** Moves to the next node that answers, or stays if this one comes back first. */
async function failOver(reason) {
  if (page.failingOver) return;
  page.failingOver = true;
  setConnection('reconnecting');
  if (page.stream) page.stream.close();
  const here = Math.max(0, page.nodes.indexOf(location.origin));
  const others = [...page.nodes.slice(here + 1), ...page.nodes.slice(0, here)];
  for (;;) {
    for (const origin of others) {
      if (await reachable(origin)) return moveTo(origin, reason);
    }
    if (await reachable(location.origin)) {
      page.failingOver = false;
      page.streamFailed = true;
      openStream();
      sendPending();
      return;
    }
    await sleep(1000);
  }
}

/** Navigates to another node's page, handing over what this tab knows. */
function moveTo(origin, reason) {
  const handoff = {
    session: store.get('session'),
    numbers: store.get('numbers'),
    pending: store.get('pending'),
    receipts: store.get('receipts'),
    outbidAlert: store.get('outbidAlert'),
    lastView: page.view,
    failovers: (store.get('failovers') ?? 0) + 1,
    from: { node_id: page.clock.node_id, origin: location.origin, reason },
  };
  // The next page owns the pending bid now: this origin's storage must not resend it later.
  store.remove('pending');
  handOver(origin, handoff);
}

// --- Session -------------------------------------------------------------------------------

function renderWho() {
  const session = store.get('session');
  $('sign-in').hidden = Boolean(session);
  $('who').hidden = !session;
  $('who-name').textContent = session ? session.bidder_id : '';
  $('bid-button').disabled = !session || page.sending;
  $('secondary-button').disabled = !session || page.sending;
  document.body.dataset.signedIn = Boolean(session);
}

async function signIn(event) {
  event.preventDefault();
  const status = $('sign-in-status');
  const body = { bidder_id: $('bidder-id').value.trim(), secret: $('secret').value };
  status.textContent = t('signingIn');
  try {
    const { status: code, data } = await api('/sessions', { method: 'POST', body });
    if (code === 201) {
      store.set('session', { token: data.token, bidder_id: data.bidder_id, expires_at_ms: data.expires_at_ms });
      $('secret').value = '';
      status.textContent = '';
      refreshMe();
    } else {
      status.textContent = code === 401 ? t('refusals').bad_credentials : refusal(code, data);
    }
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
    status.textContent = t('signInUnreachable');
    failOver('sign-in request failed');
  }
  renderWho();
}

async function signOut(message) {
  const session = store.get('session');
  for (const key of ['session', 'numbers', 'pending', 'receipts']) store.remove(key);
  page.me = null;
  page.signing = null;
  renderWho();
  renderStanding();
  renderReceipt();
  if (message) showBidStatus('refused', message);
  if (session && !message) {
    await api('/sessions/current', { method: 'DELETE', token: session.token }).catch(() => {});
  }
}

// --- Auction list ----------------------------------------------------------------------------

function onLobbyView(view) {
  page.auctions.set(view.id, view);
  const rows = [...page.auctions.values()].sort((a, b) => a.listing_closes_at_ms - b.listing_closes_at_ms);
  const query = new URLSearchParams(location.search);
  $('auction-list').replaceChildren(...rows.map((auction) => {
    query.set('auction', auction.id);
    const link = Object.assign(document.createElement('a'), { href: `/?${query}`, textContent: auction.title });
    const cells = [link, phaseName(auction.phase), money(auction.current_price ?? auction.start_price), String(auction.bid_count), '–']
      .map((content) => {
        const cell = document.createElement('td');
        cell.append(content);
        return cell;
      });
    cells[1].dataset.phase = auction.phase;
    if (auction.deadline_ms != null) cells[4].dataset.deadlineMs = auction.deadline_ms;
    const row = document.createElement('tr');
    row.dataset.auctionId = auction.id;
    row.append(...cells);
    return row;
  }));
  $('lobby-empty').hidden = rows.length > 0;
}

// --- Auction room ------------------------------------------------------------------------------

const myNumber = () => (store.get('numbers') ?? {})[page.auctionId] ?? null;

function learnMyNumber(auctionId, bidderNumber) {
  const numbers = store.get('numbers') ?? {};
  numbers[auctionId] = bidderNumber;
  store.set('numbers', numbers);
  renderRoom();
  for (const item of document.querySelectorAll('#history li')) {
    item.classList.toggle('mine', Number(item.dataset.bidderNumber) === bidderNumber);
  }
}

function onRoomView(view) {
  const previous = page.view ?? page.carriedView;
  page.carriedView = null;
  // A later deadline no bid explains: in the listing bids never move it (a takeover's grace
  // may come in the same view as the first bid after it), later only without a bid.
  const movedWithoutBid = previous && previous.id === view.id && previous.phase === view.phase
    && previous.deadline_ms != null && view.deadline_ms != null && view.deadline_ms > previous.deadline_ms
    && (view.phase === 'listing'
      || (previous.bid_count === view.bid_count && previous.secondary?.current === view.secondary?.current));
  if (movedWithoutBid) showExtension(previous.deadline_ms, view.deadline_ms);
  page.view = view;
  renderRoom();
  // A bidder who may bid asks again only when the phase or the sale's outcome changes:
  // whether they lead is known from the view itself. One who may not bid yet (a deposit
  // or a qualification still to come) asks at every bid too.
  const standing = standingNow();
  const waiting = !standing || (!standing.may_bid && standing.reason !== 'already_leading');
  const changed = !previous || previous.id !== view.id || previous.phase !== view.phase
    || previous.confirmation !== view.confirmation
    || (waiting && previous.bid_count !== view.bid_count);
  if (changed || !page.me) refreshMe();
  if (!previous || previous.id !== view.id) loadProxy();
  followSale();
  if (page.resumePending) {
    page.resumePending = false;
    sendPending();
  }
}

function showExtension(fromMs, toMs) {
  page.extensions += 1;
  const notice = $('extension-notice');
  notice.dataset.extensions = page.extensions;
  notice.textContent = t('extension', Math.round((toMs - fromMs) / 1000), clockTime(toMs));
  notice.hidden = false;
}

function renderRoom() {
  const view = page.view;
  if (!view) return;
  const mine = myNumber();
  $('room-title').textContent = view.title;
  page.baseTitle = `${view.title} · ${t('pageTitle')}`;
  if (!page.flashing) document.title = page.baseTitle;
  $('room-parcel').textContent = parcelText(view.parcel);
  const phase = view.winner_bidder_number != null
    ? t('phaseWon', phaseName(view.phase), view.winner_bidder_number) : phaseName(view.phase);
  $('phase').textContent = phase;
  $('room').dataset.phase = view.phase;
  $('room').dataset.bidCount = view.bid_count;
  // Before the first bid, the start price (起始价).
  $('current-price-label').textContent = view.current_price == null ? t('startPrice') : t('currentPrice');
  $('current-price').textContent = money(view.current_price ?? view.start_price);
  $('current-price').dataset.amount = view.current_price ?? '';
  const leader = view.leading_bidder_number;
  $('leading-bidder').textContent = leader == null ? '–' : t('bidder', leader, leader === mine);
  $('leading-bidder').classList.toggle('mine', leader != null && leader === mine);
  $('my-number').hidden = mine == null;
  $('my-number').textContent = mine == null ? '' : t('youAreBidder', mine);
  $('my-number').dataset.bidderNumber = mine ?? '';
  const amount = $('bid-amount');
  const minimum = view.minimum_next_bid;
  $('bid-form').hidden = minimum == null;
  renderStanding();
  renderAcceptance();
  renderRules();
  renderPastTheCap();
  renderSecondary();
  if (minimum != null && (!page.amountEdited || Number(amount.value) < minimum)) {
    amount.value = minimum;
    amount.min = minimum;
    page.amountEdited = false;
  }
  renderAmountText();
  renderSigning();
  tick();
}

/** The typed bid in the language's money ("即 103 万元"), against a slip of a zero. */
function renderAmountText() {
  const amount = Number($('bid-amount').value);
  $('bid-amount-text').textContent = Number.isSafeInteger(amount) && amount > 0 ? t('amountInWords', amount) : '';
}

/** The fields of the auction a live `bid` event carries besides the bid itself. */
const LIVE_BID_FIELDS = ['phase', 'current_price', 'leading_bidder_number', 'minimum_next_bid',
  'bid_count', 'deadline_ms', 'server_time_ms'];

/**
 * A live `bid` event: the bid, and (compact form) what it changed in the auction, merged
 * into the last full view; a bid from the history sent at connect carries the bid only.
 */
function onLiveBid(bid) {
  onBid(bid);
  if (bid.bid_count == null || !page.view || bid.bid_count < page.view.bid_count) return;
  const view = { ...page.view };
  for (const field of LIVE_BID_FIELDS) view[field] = bid[field];
  onRoomView(view);
}

/**
 * The node could not send this page every event in time: `resync` carries the current
 * view; the bids missed are read from the bid list, page by page, after the newest held.
 */
async function onResync(view) {
  onRoomView(view);
  let after = page.newestSeq;
  for (let pageNumber = 0; pageNumber < RESYNC_MAX_PAGES && after < view.bid_count; pageNumber += 1) {
    const path = `/auctions/${encodeURIComponent(page.auctionId)}/bids?after_seq=${after}&limit=${RESYNC_PAGE}`;
    let answer;
    try {
      answer = await api(path);
    } catch (error) {
      if (!(error instanceof NodeUnreachable)) throw error;
      return checkNode('bid list unreachable');
    }
    if (answer.status !== 200 || !answer.data) return;
    for (const bid of answer.data.bids) onBid(bid);
    if (answer.data.next_after_seq == null) return;
    after = answer.data.next_after_seq;
  }
}

function onBid(bid) {
  if (page.bids.has(bid.seq)) return;
  page.bids.set(bid.seq, bid);
  page.oldestSeq = page.oldestSeq === 0 ? bid.seq : Math.min(page.oldestSeq, bid.seq);
  page.newestSeq = Math.max(page.newestSeq, bid.seq);
  const item = document.createElement('li');
  item.dataset.seq = bid.seq;
  item.dataset.bidderNumber = bid.bidder_number;
  item.classList.toggle('mine', bid.bidder_number === myNumber());
  item.dataset.proxy = bid.proxy ? 'true' : 'false';
  item.dataset.void = bid.void ? 'true' : 'false';
  item.textContent = t('historyLine', bid.seq, bid.bidder_number, bid.amount, clockTime(bid.accepted_at_ms))
    + (bid.proxy ? t('historyProxy') : '') + (bid.void ? t('historyVoid') : '');
  const later = [...$('history').children].find((other) => Number(other.dataset.seq) < bid.seq);
  $('history').insertBefore(item, later ?? null);
  renderEarlierButton();
  const status = $('bid-status');
  if (Number(status.dataset.receiptSeq) === bid.seq) learnMyNumber(page.auctionId, bid.bidder_number);
  renderStanding();
}

// --- Bidding -------------------------------------------------------------------------------------

function showBidStatus(state, text, details = {}) {
  const status = $('bid-status');
  status.dataset.state = state;
  status.textContent = text;
  for (const [key, value] of Object.entries(details)) status.dataset[key] = value;
}

/** A refusal's plain message in the page's language (the node's detail for an unknown code). */
const refusal = (status, data) => t('refusals')[data?.code] ?? t('refusedUnknown', status, data?.detail);

async function submitBid(event) {
  event.preventDefault();
  await queueBid('price', Number($('bid-amount').value));
}

async function submitSecondary(event) {
  event.preventDefault();
  await queueBid('secondary', Number($('secondary-amount').value));
}

/**
 * Makes a bid of `kind` (price or secondary) the pending one, signed when the bidder loaded
 * a key or pasted a signature, and sends it.
 */
async function queueBid(kind, amount) {
  if (store.get('pending') || page.sending) return;
  if (!Number.isSafeInteger(amount) || amount <= 0) {
    showBidStatus('refused', t('enterWholeAmount'), { code: '' });
    return;
  }
  let signed;
  try {
    signed = await signatureFor(kind, amount, { manual: true });
  } catch {
    showBidStatus('refused', t('signingFailed'), { code: '' });
    return;
  }
  if (!signed.signature && page.view?.require_signed_bids) {
    showBidStatus('refused', t('signingMissing'), { code: 'signature_required' });
    return;
  }
  stopOutbidAlert();
  if (kind === 'price') page.amountEdited = false;
  else page.secondaryEdited = false;
  store.set('pending', {
    auction_id: page.auctionId, kind, amount, request_id: signed.requestId, signature: signed.signature,
    key_id: signed.keyId, attempts: 0, started_ms: Date.now(),
  });
  await sendPending();
}

/**
 * The request_id and signature of a request of `kind` for `amount`: signed with the loaded
 * key; or, for the main bid form (`manual`), the pasted signature of the shown text with
 * the request_id that text names; or unsigned.
 */
async function signatureFor(kind, amount, { manual = false } = {}) {
  if (page.signing) {
    const requestId = newRequestId();
    const signature = await sign(page.signing.key, signedText(kind, page.auctionId, amount, requestId));
    return { requestId, signature, keyId: page.signing.keyId };
  }
  const pasted = $('signing-paste').value.trim();
  if (manual && pasted && page.manualRequestId) {
    const requestId = page.manualRequestId;
    $('signing-paste').value = '';
    page.manualRequestId = null;
    renderSignedText();
    return { requestId, signature: pasted, keyId: null };
  }
  return { requestId: newRequestId(), signature: null, keyId: null };
}

/** What a pending bid is, for the messages: its amount, with the unit of a secondary one. */
const pendingAmount = (pending) => (pending.kind === 'secondary' ? quantity(pending.amount, page.view?.secondary) : money(pending.amount));

/** Sends the pending bid (again) until it has an answer; a retry reuses its request_id. */
async function sendPending() {
  const pending = store.get('pending');
  const session = store.get('session');
  if (!pending || !session || page.sending || page.failingOver) return;
  page.sending = true;
  renderWho();
  try {
    for (;;) {
      pending.attempts += 1;
      store.set('pending', pending);
      const details = {
        requestId: pending.request_id, attempts: pending.attempts, receiptSeq: '', secondarySeq: '', replayed: '', keyId: '',
      };
      showBidStatus('pending', t('sending', pendingAmount(pending), pending.attempts), details);
      const body = pending.kind === 'secondary'
        ? { secondary_amount: pending.amount, request_id: pending.request_id }
        : { amount: pending.amount, request_id: pending.request_id };
      if (pending.signature) body.signature = pending.signature;
      let answer;
      const sentAt = Date.now();
      try {
        answer = await api(`/auctions/${encodeURIComponent(pending.auction_id)}/bids`, {
          method: 'POST', token: session.token, body,
        });
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
        showBidStatus('pending', t('nodeNoAnswerBid', page.clock.node_id, pendingAmount(pending)));
        failOver('bid request failed');
        return;
      }
      const { status, data, retryAfter } = answer;
      if (status === 200 || status === 201) {
        store.remove('pending');
        if (data?.secondary_seq != null) onSecondaryReceipt(data, status === 200, pending);
        else onReceipt(data, status === 200, pending, { sentAt, answeredAt: Date.now() });
        return;
      }
      const transient = status === 503 || status === 429 || status >= 500;
      if (transient && Date.now() - pending.started_ms < BID_RETRY_FOR_MS) {
        // Rate limits are honoured; an election (503, "Retry-After: 1", HTTP's coarsest
        // step) usually ends well within a second, so that retry comes sooner.
        await sleep(status === 429 && retryAfter > 0 ? Math.min(retryAfter * 1000, 2000) : 250);
        continue;
      }
      store.remove('pending');
      if (status === 401 && data?.code !== 'bad_signature') {
        signOut(t('sessionEnded'));
        return;
      }
      showBidStatus('refused', refusal(status, data), { code: data?.code ?? '' });
      return;
    }
  } finally {
    page.sending = false;
    renderWho();
  }
}

function onReceipt(receipt, replayed, pending, timing) {
  const text = t('accepted', receipt.amount, receipt.seq, replayed) + (pending.key_id ? t('signedBy', pending.key_id) : '');
  showBidStatus('accepted', text, {
    receiptSeq: receipt.seq, requestId: pending.request_id, attempts: pending.attempts, replayed,
    keyId: pending.key_id ?? '',
  });
  const bid = page.bids.get(receipt.seq);
  if (bid) learnMyNumber(receipt.auction_id, bid.bidder_number);
  const receipts = store.get('receipts') ?? {};
  receipts[receipt.auction_id] = {
    auction_id: receipt.auction_id, seq: receipt.seq, amount: receipt.amount, accepted_at_ms: receipt.accepted_at_ms,
    chain_hash: receipt.chain_hash ?? null, receipt_signature: receipt.receipt_signature ?? null,
    receipt_batch: receipt.receipt_batch ?? null,
  };
  store.set('receipts', receipts);
  renderReceipt();
  if (!replayed) confirmClock(receipt.accepted_at_ms, timing);
  // Whether this bidder now leads is read from the view: /me only when not yet known.
  if (!page.me) refreshMe();
}

function onSecondaryReceipt(receipt, replayed, pending) {
  const secondary = receipt.auction?.secondary ?? page.view?.secondary;
  showBidStatus('accepted', t('secondaryAccepted', receipt, secondary, replayed) + (pending.key_id ? t('signedBy', pending.key_id) : ''), {
    secondarySeq: receipt.secondary_seq, requestId: pending.request_id, attempts: pending.attempts, replayed,
    keyId: pending.key_id ?? '',
  });
  refreshMe();
}

// --- Secondary bidding -------------------------------------------------------------------------

/** Shows the second quantity while it is bid on, and after: its value, leader and countdown. */
function renderSecondary() {
  const view = page.view;
  const secondary = view?.secondary ?? null;
  const bidding = view?.phase === 'secondary_bidding';
  const section = $('secondary');
  // Secondary bids the stream sent before the first view are listed once the unit is known.
  for (const item of document.querySelectorAll('#history li[data-secondary-seq]')) {
    const bid = page.secondaryBids.get(Number(item.dataset.secondarySeq));
    if (bid && secondary) item.textContent = t('secondaryHistory', bid, secondary);
  }
  section.hidden = !(secondary && (bidding || secondary.current != null));
  if (section.hidden) return;
  const mine = myNumber();
  section.dataset.phase = view.phase;
  $('secondary-title').textContent = t('secondaryHeading', secondary.label);
  $('secondary-about').textContent = bidding ? t('secondaryAbout', view.price_cap) : t('secondaryClosed', view.price_cap);
  $('secondary-label').textContent = secondary.label;
  $('secondary-current').textContent = quantity(secondary.current, secondary);
  $('secondary-current').dataset.amount = secondary.current ?? '';
  const leader = secondary.leading_bidder_number;
  $('secondary-leader').textContent = leader == null ? '–' : t('bidder', leader, leader === mine);
  $('secondary-leader').classList.toggle('mine', leader != null && leader === mine);
  $('secondary-unit').textContent = secondary.unit;
  const minimum = secondary.minimum_next;
  $('secondary-form').hidden = !(bidding && minimum != null && store.get('session'));
  const input = $('secondary-amount');
  if (minimum != null && (!page.secondaryEdited || Number(input.value) < minimum)) {
    input.value = minimum;
    input.min = minimum;
    page.secondaryEdited = false;
  }
}

function onSecondaryBid(bid) {
  if (page.secondaryBids.has(bid.secondary_seq)) return;
  page.secondaryBids.set(bid.secondary_seq, bid);
  const item = document.createElement('li');
  item.dataset.secondarySeq = bid.secondary_seq;
  item.dataset.bidderNumber = bid.bidder_number;
  item.dataset.amount = bid.secondary_amount;
  item.classList.add('secondary-bid');
  item.classList.toggle('mine', bid.bidder_number === myNumber());
  item.textContent = t('secondaryHistory', bid, page.view?.secondary);
  // Newest first; secondary bids come after every price bid.
  const later = [...$('history').children].find((other) => other.dataset.secondarySeq == null
    || Number(other.dataset.secondarySeq) < bid.secondary_seq);
  $('history').insertBefore(item, later ?? null);
}

// --- Signing keys ----------------------------------------------------------------------------

function renderSigning() {
  const view = page.view;
  const section = $('signing');
  section.hidden = !(view && store.get('session'));
  if (section.hidden) return;
  const required = Boolean(view.require_signed_bids);
  const state = $('signing-state');
  state.dataset.required = required;
  state.textContent = required ? t('signingRequired') : t('signingOptional');
  if (required && !section.dataset.opened) {
    section.dataset.opened = 'true';
    $('signing-details').open = true;
  }
  $('signing-forget').hidden = page.signing == null;
  renderSignedText();
}

function showSigningStatus(state, text) {
  const status = $('signing-status');
  status.dataset.state = state;
  status.dataset.keyId = page.signing?.keyId ?? '';
  status.textContent = text;
}

/** The text the next bid of the main form signs, for a signature made outside the browser. */
function renderSignedText() {
  const view = page.view;
  if (!view) return;
  if (!page.manualRequestId) page.manualRequestId = newRequestId();
  const secondary = view.phase === 'secondary_bidding';
  const amount = Number($(secondary ? 'secondary-amount' : 'bid-amount').value) || 0;
  const text = $('signing-text');
  text.dataset.requestId = page.manualRequestId;
  text.textContent = signedText(secondary ? 'secondary' : 'price', page.auctionId, amount, page.manualRequestId);
}

async function loadSigningKey(event) {
  event.preventDefault();
  const field = $('signing-key');
  const text = field.value;
  field.value = '';
  if (!text.trim()) return;
  try {
    const loaded = await loadKey(text);
    page.signing = { key: loaded.key, keyId: loaded.keyId };
    showSigningStatus('loaded', t('signingLoaded', loaded.keyId));
  } catch (error) {
    page.signing = null;
    const code = error instanceof KeyProblem ? error.code : 'unreadable';
    showSigningStatus('refused', t('signingProblem')[code] ?? t('signingProblem').unreadable);
  }
  renderSigning();
}

async function loadSigningFile() {
  const input = $('signing-key-file');
  const file = input.files?.[0];
  input.value = '';
  if (!file || file.size > 16384) return;
  $('signing-key').value = await file.text();
  $('signing-load').click();
}

function forgetSigningKey() {
  page.signing = null;
  showSigningStatus('none', t('signingNone'));
  renderSigning();
}

// --- Proxy maximum and sealed quote ------------------------------------------------------------

/** Shows the proxy form while price bidding is open, and the sealed-quote form in a sealed window. */
function renderPastTheCap() {
  const view = page.view;
  const signedIn = store.get('session') != null;
  const open = view != null && (view.phase === 'listing' || view.phase === 'timed_bidding');
  $('proxy').hidden = !(open && signedIn);
  $('proxy-withdraw').hidden = page.proxyMax == null;
  $('proxy').dataset.max = page.proxyMax ?? '';
  const sealed = view != null && view.phase === 'capped' && view.cap_mode === 'sealed_bid';
  $('sealed').hidden = !(sealed && signedIn);
  if (sealed) {
    const count = view.sealed_quotes_count ?? 0;
    $('sealed-count').dataset.count = count;
    $('sealed-count').textContent = t('sealedCount', count, view.price_cap);
    const quote = $('sealed-amount');
    if (!quote.value && view.price_cap != null) quote.value = view.price_cap;
  }
}

function showStatus(id, state, text) {
  $(id).dataset.state = state;
  $(id).textContent = text;
}

/** The bidder's own hidden maximum, read from the node (only its owner may). */
async function loadProxy() {
  const session = store.get('session');
  if (!session || !page.auctionId) return;
  try {
    const { status, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}/proxy`, { token: session.token });
    page.proxyMax = status === 200 ? data.max_amount : null;
  } catch {
    return;
  }
  if (page.proxyMax != null) showStatus('proxy-status', 'set', t('proxyMaxIs', page.proxyMax));
  renderPastTheCap();
}

async function setProxy(event) {
  event.preventDefault();
  const session = store.get('session');
  const max = Number($('proxy-max').value);
  if (!session || !Number.isSafeInteger(max) || max <= 0) {
    showStatus('proxy-status', 'refused', t('enterWholeAmount'));
    return;
  }
  showStatus('proxy-status', 'pending', t('proxySetting', max));
  try {
    const signed = await signatureFor('proxy', max);
    const body = { max_amount: max, request_id: signed.requestId };
    if (signed.signature) body.signature = signed.signature;
    const { status, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}/proxy`, {
      method: 'POST', token: session.token, body,
    });
    if (status === 200 || status === 201) {
      page.proxyMax = data.max_amount;
      const placed = data.bid ? t('proxyPlaced', data.bid.amount, data.bid.seq) : '';
      showStatus('proxy-status', 'set', t('proxyMaxIs', data.max_amount) + placed);
    } else {
      showStatus('proxy-status', 'refused', refusal(status, data));
    }
  } catch {
    showStatus('proxy-status', 'refused', t('nodeNoAnswerRetry'));
  }
  renderPastTheCap();
}

async function withdrawProxy() {
  const session = store.get('session');
  if (!session) return;
  try {
    const { status, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}/proxy`, {
      method: 'DELETE', token: session.token,
    });
    if (status === 204) {
      page.proxyMax = null;
      showStatus('proxy-status', 'withdrawn', t('proxyWithdrawn'));
    } else {
      showStatus('proxy-status', 'refused', refusal(status, data));
    }
  } catch {
    showStatus('proxy-status', 'refused', t('nodeNoAnswerRetry'));
  }
  renderPastTheCap();
}

async function submitQuote(event) {
  event.preventDefault();
  const session = store.get('session');
  const amount = Number($('sealed-amount').value);
  if (!session || !Number.isSafeInteger(amount) || amount <= 0) {
    showStatus('sealed-status', 'refused', t('enterWholeAmount'));
    return;
  }
  showStatus('sealed-status', 'pending', t('sealedSubmitting', amount));
  try {
    const signed = await signatureFor('sealed', amount);
    const body = { amount, request_id: signed.requestId };
    if (signed.signature) body.signature = signed.signature;
    const { status, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}/sealed-quotes`, {
      method: 'POST', token: session.token, body,
    });
    if (status === 200 || status === 201) {
      showStatus('sealed-status', 'accepted', t('sealedAccepted', amount, clockTime(data.accepted_at_ms)));
    } else {
      showStatus('sealed-status', 'refused', refusal(status, data));
    }
  } catch {
    showStatus('sealed-status', 'refused', t('nodeNoAnswerRetry'));
  }
}

// --- The bidder's own standing -------------------------------------------------------------------

/** Asks the node for the bidder's standing in the room's auction; one request at a time. */
async function refreshMe() {
  const session = store.get('session');
  if (!page.auctionId || !session) return;
  if (page.meLoading) {
    page.meStale = true;
    return;
  }
  page.meLoading = true;
  try {
    const { status, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}/me`, { token: session.token });
    if (status === 200 && data) {
      page.me = data;
      if (data.bidder_number != null && data.bidder_number !== myNumber()) learnMyNumber(page.auctionId, data.bidder_number);
    } else if (status === 401) {
      page.me = null; // a session this node has not applied yet, or one that ended: a bid will tell
    }
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
  } finally {
    page.meLoading = false;
  }
  renderStanding();
  renderAcceptance();
  if (page.meStale) {
    page.meStale = false;
    refreshMe();
  }
}

/**
 * The bidder's standing as of the latest view: the last /me answer, with whether this bidder
 * leads read from the view (a bidder who leads may not bid again; one who was outbid may),
 * so that neither an own bid nor a rival's needs another /me request.
 */
function standingNow() {
  const me = page.me;
  if (!me || !page.view) return me;
  const leading = me.bidder_number != null && page.view.leading_bidder_number === me.bidder_number;
  if (me.may_bid && leading) return { ...me, may_bid: false, reason: 'already_leading' };
  if (!me.may_bid && me.reason === 'already_leading' && !leading) return { ...me, may_bid: true, reason: null };
  return me;
}

function renderStanding() {
  const me = standingNow();
  const view = page.view;
  const standing = $('standing');
  standing.hidden = !me || !view;
  if (!me || !view) return;
  Object.assign(standing.dataset, {
    bidderNumber: me.bidder_number ?? '', qualified: me.qualified, depositRequired: me.deposit_required,
    deposited: me.deposited, mayBid: me.may_bid, reason: me.reason ?? '',
  });
  $('standing-number').textContent = me.bidder_number == null ? t('noNumber') : t('myNumber', me.bidder_number);

  const mine = myNumber();
  const leader = view.leading_bidder_number;
  const iBid = (me.bids_placed ?? 0) > 0 || [...page.bids.values()].some((bid) => bid.bidder_number === mine);
  let lead = 'none';
  let leadText = mine == null ? '' : t('notBidYet');
  if (mine != null && leader === mine) {
    lead = 'leading';
    leadText = view.phase === 'sold' ? t('youWon', view.current_price) : t('youLead', view.current_price);
  } else if (iBid) {
    lead = 'outbid';
    leadText = t('outbid', leader, view.phase === 'sold', view.current_price);
  }
  $('standing-lead').dataset.state = lead;
  $('standing-lead').textContent = leadText;
  standing.dataset.lead = lead;
  if (lead === 'outbid' && page.lead === 'leading' && view.phase !== 'sold') startOutbidAlert();
  if (lead !== 'outbid') stopOutbidAlert();
  page.lead = lead;

  const minimum = view.minimum_next_bid;
  $('standing-minimum').hidden = minimum == null;
  $('standing-minimum').dataset.amount = minimum ?? '';
  $('standing-minimum').textContent = minimum == null ? '' : t('minimumNext', minimum);

  const deposit = $('standing-deposit');
  let depositState = 'none';
  let depositText = t('depositNone');
  if (me.deposit_required > 0) {
    if (me.deposited >= me.deposit_required) {
      depositState = 'recorded';
      depositText = t('depositRecorded', me.deposited, me.deposit_required);
    } else if (me.deposited > 0) {
      depositState = 'partial';
      depositText = t('depositPartial', me.deposited, me.deposit_required, me.deposit_required - me.deposited);
    } else {
      depositState = 'missing';
      depositText = t('depositMissing', me.deposit_required);
    }
  }
  deposit.dataset.state = depositState;
  deposit.textContent = depositText;
  $('standing-eligibility').textContent = view.phase === 'secondary_bidding' ? t('secondaryEligibility')
    : (me.may_bid ? t('mayBidNow') : (t('standingReasons')[me.reason] ?? ''));
}

// --- Outbid alert -------------------------------------------------------------------------------

const ALERT_KEY = 'outbidAlert';
const alertWanted = () => store.get(ALERT_KEY) === true;

/** The bidder ticks or unticks the alert; the tick (a user gesture) lets the page make sounds. */
function chooseOutbidAlert() {
  const wanted = $('outbid-alert').checked;
  store.set(ALERT_KEY, wanted);
  document.body.dataset.outbidAlert = wanted ? 'on' : 'off';
  if (wanted && !page.audio && globalThis.AudioContext) {
    try { page.audio = new AudioContext(); } catch { page.audio = null; }
  }
  page.audio?.resume?.().catch(() => {});
  if (!wanted) stopOutbidAlert();
}

/**
 * Outbid, with the alert chosen: the title flashes until the tab is focused, the bidder
 * bids or leads again; and one short beep.
 */
function startOutbidAlert() {
  if (!alertWanted() || page.flashing) return;
  let marked = false;
  const flash = () => {
    marked = !marked;
    const title = page.baseTitle ?? t('pageTitle');
    document.title = marked ? `${t('outbidMark')}${title}` : title;
  };
  flash();
  page.flashing = setInterval(flash, FLASH_EVERY_MS);
  document.body.dataset.outbidAlert = 'flashing';
  beep();
}

function stopOutbidAlert() {
  if (!page.flashing) return;
  clearInterval(page.flashing);
  page.flashing = null;
  document.title = page.baseTitle ?? t('pageTitle');
  document.body.dataset.outbidAlert = alertWanted() ? 'on' : 'off';
}

/** A short beep made with WebAudio (no sound file); counted in <body data-outbid-beeps>. */
function beep() {
  const audio = page.audio;
  if (!audio) return;
  try {
    const tone = audio.createOscillator();
    const volume = audio.createGain();
    tone.type = 'sine';
    tone.frequency.value = 880;
    volume.gain.setValueAtTime(0.2, audio.currentTime);
    volume.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
    tone.connect(volume).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
    document.body.dataset.outbidBeeps = Number(document.body.dataset.outbidBeeps ?? 0) + 1;
  } catch {
    // No sound here: the title still flashes.
  }
}

function renderRules() {
  const view = page.view;
  if (!view) return;
  const rules = [
    view.deposit > 0 ? t('ruleDeposit', view.deposit) : t('ruleNoDeposit'),
    view.timed_bidding_entry === 'listing_bidders' ? t('ruleTimedListing') : t('ruleTimedAll'),
    view.winner_confirm_ms != null ? t('ruleConfirm', formatWindow(view.winner_confirm_ms)) : t('ruleNoConfirm'),
    t('ruleIncrement', view.increment, view.increment_rule === 'at_least', formatWindow(view.countdown_ms), view.price_cap),
    ...(view.secondary ? [t('secondaryRule', view.secondary)] : []),
    t('signaturesRule', Boolean(view.require_signed_bids)),
  ];
  const key = rules.join('\n');
  const list = $('rules-list');
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...rules.map((text) => Object.assign(document.createElement('li'), { textContent: text })));
}

function formatWindow(ms) {
  if (ms % 3600000 === 0) return t('hours', ms / 3600000);
  if (ms % 60000 === 0) return t('minutes', ms / 60000);
  return t('seconds', Math.round(ms / 100) / 10);
}

function renderAcceptance() {
  const view = page.view;
  const section = $('acceptance');
  const state = view?.confirmation ?? null;
  section.hidden = state == null;
  if (state == null) return;
  const winner = Boolean(page.me?.winner);
  section.dataset.state = state;
  section.dataset.winner = winner;
  $('acceptance-text').textContent = t(winner ? 'winner' : 'confirmation')[state] ?? state;
  $('acceptance-deadline').hidden = state !== 'pending';
  if (state === 'pending' && view.confirmation_deadline_ms != null) {
    $('acceptance-deadline').title = t('confirmUntil', clockTime(view.confirmation_deadline_ms));
  }
  $('accept-button').hidden = !(winner && state === 'pending');
  $('accept-button').disabled = page.accepting;
}

/** The winner confirms the sale. */
async function acceptSale() {
  const session = store.get('session');
  if (!session || !page.auctionId || page.accepting) return;
  page.accepting = true;
  renderAcceptance();
  const status = $('acceptance-status');
  status.dataset.state = 'pending';
  status.textContent = t('confirming');
  try {
    const { status: code, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}/acceptance`, {
      method: 'POST', token: session.token,
    });
    if (code === 200 && data?.confirmation) {
      status.dataset.state = 'accepted';
      status.textContent = t('confirmedNow');
      page.view = { ...page.view, confirmation: data.confirmation };
      renderRoom();
    } else if (code === 401) {
      signOut(t('sessionEndedConfirm'));
    } else {
      status.dataset.state = 'refused';
      status.dataset.code = data?.code ?? '';
      status.textContent = refusal(code, data);
    }
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
    status.dataset.state = 'refused';
    status.textContent = t('nodeDown');
    checkNode('acceptance request failed');
  } finally {
    page.accepting = false;
    renderAcceptance();
  }
  refreshSale();
}

/** After the sale the event stream has ended: follow the confirmation by polling. */
function followSale() {
  const open = ['pending', 'lapsed'].includes(page.view?.confirmation);
  if (open && !page.salePoll) {
    page.salePoll = setInterval(refreshSale, SALE_POLL_MS);
  } else if (!open && page.salePoll) {
    clearInterval(page.salePoll);
    page.salePoll = null;
  }
}

async function refreshSale() {
  if (!page.auctionId) return;
  try {
    const { status, data } = await api(`/auctions/${encodeURIComponent(page.auctionId)}`);
    if (status === 200 && data) onRoomView(data);
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
  }
  refreshMe();
}

// --- Receipts ----------------------------------------------------------------------------------------

let receiptKey = null; // the cluster's receipt keys, once fetched

const shortHash = (hash) => (hash && hash.length > 16 ? `${hash.slice(0, 8)}…${hash.slice(-8)}` : hash ?? '');

function renderReceipt() {
  const receipt = page.auctionId ? (store.get('receipts') ?? {})[page.auctionId] : null;
  const section = $('receipt');
  section.hidden = !receipt;
  if (!receipt) return;
  section.dataset.seq = receipt.seq;
  section.dataset.chainHash = receipt.chain_hash ?? '';
  const hashText = document.createElement('code');
  hashText.textContent = shortHash(receipt.chain_hash) || t('hashNone');
  hashText.title = receipt.chain_hash ?? '';
  $('receipt-text').replaceChildren(t('receiptLine', receipt.seq, receipt.amount, clockTime(receipt.accepted_at_ms)),
    hashText, t('receiptEnd'));
  const signature = $('receipt-signature');
  if (!receipt.receipt_signature) {
    signature.dataset.state = 'unsigned';
    signature.textContent = t('receiptUnsigned');
    return;
  }
  if (signature.dataset.seq === String(receipt.seq) && signature.dataset.state !== 'unsigned') return;
  signature.dataset.seq = receipt.seq;
  signature.dataset.state = 'signed';
  signature.textContent = t('receiptChecking');
  verifyReceipt(receipt).then((verdict) => {
    if (signature.dataset.seq !== String(receipt.seq)) return;
    signature.dataset.state = verdict;
    signature.textContent = t({ verified: 'receiptVerified', bad: 'receiptBad', signed: 'receiptCannotCheck' }[verdict]);
  });
}

/** 'verified', 'bad', or 'signed' when this browser cannot check Ed25519 (or the key is out of reach). */
async function verifyReceipt(receipt) {
  try {
    if (!globalThis.crypto?.subtle || !receipt.chain_hash) return 'signed';
    if (!receiptKey) {
      // Written into the page by the node that served it; asked for only when missing.
      const inPage = document.querySelector('meta[name="gavel-receipt-keys"]')?.content.trim().split(/\s+/) ?? [];
      if (inPage.length > 0 && !inPage[0].startsWith('{{') && inPage[0] !== '') {
        receiptKey = { public_key: inPage[0], previous: inPage.slice(1) };
      }
    }
    if (!receiptKey) {
      const { status, data } = await api('/receipt-key');
      if (status !== 200 || !data?.public_key) return 'signed';
      receiptKey = data;
    }
    return await receiptVerdict(receipt, [receiptKey.public_key, ...(receiptKey.previous ?? [])]);
  } catch {
    return 'signed'; // no Ed25519 in this browser's WebCrypto, or no answer: shown unchecked
  }
}

// --- Start ---------------------------------------------------------------------------------------

/** The header's language switch: each link keeps the page's other query parameters (the auction). */
function renderLanguageLinks() {
  for (const language of ['zh', 'en']) {
    const query = new URLSearchParams(location.search);
    query.set('lang', language);
    const link = $(`language-${language}`);
    link.href = `/?${query}`;
    if (language === currentLanguage()) link.setAttribute('aria-current', 'true');
    else link.removeAttribute('aria-current');
  }
}

async function start() {
  document.body.dataset.language = useLanguage(chooseLanguage(), TEXTS);
  translatePage();
  document.title = t('pageTitle');
  renderLanguageLinks();
  takeHandoff();
  page.nodes = clusterNodes();
  page.auctionId = new URLSearchParams(location.search).get('auction');
  page.carriedView = store.get('lastView');
  store.remove('lastView');
  document.body.dataset.failovers = store.get('failovers') ?? 0;
  const from = store.get('from');
  if (from) document.body.dataset.previousNodeId = from.node_id;
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => signOut());
  $('history-earlier').addEventListener('click', showEarlierBids);
  $('bid-form').addEventListener('submit', submitBid);
  $('proxy-form').addEventListener('submit', setProxy);
  $('proxy-withdraw').addEventListener('click', withdrawProxy);
  $('sealed-form').addEventListener('submit', submitQuote);
  $('secondary-form').addEventListener('submit', submitSecondary);
  $('secondary-amount').addEventListener('input', () => { page.secondaryEdited = true; renderSignedText(); });
  $('bid-amount').addEventListener('input', renderSignedText);
  $('signing-key-form').addEventListener('submit', loadSigningKey);
  $('signing-key-file').addEventListener('change', loadSigningFile);
  $('signing-forget').addEventListener('click', forgetSigningKey);
  $('outbid-alert').checked = alertWanted();
  document.body.dataset.outbidAlert = alertWanted() ? 'on' : 'off';
  $('outbid-alert').addEventListener('change', chooseOutbidAlert);
  window.addEventListener('focus', stopOutbidAlert);
  showSigningStatus('none', t('signingNone'));
  $('bid-amount').addEventListener('input', () => { page.amountEdited = true; renderAmountText(); });
  $('accept-button').addEventListener('click', acceptSale);
  $('lobby').hidden = Boolean(page.auctionId);
  $('room').hidden = !page.auctionId;
  renderWho();
  setConnection('connecting');
  try {
    await syncClock();
  } catch (error) {
    if (error instanceof NodeUnreachable) return failOver('this node does not answer');
    throw error;
  }
  setInterval(resyncWhenDue, CLOCK_CHECK_MS);
  const pending = store.get('pending');
  if (pending && Date.now() - pending.started_ms > PENDING_KEPT_MS) {
    // Too old to resend blindly (the cluster forgets request ids after a while).
    store.remove('pending');
    showBidStatus('refused', t('neverConfirmed', pendingAmount(pending)));
  } else if (pending && pending.auction_id === page.auctionId) {
    page.resumePending = true;
    showBidStatus('pending', t('resending', pendingAmount(pending), page.clock.node_id));
  } else if (pending) {
    sendPending();
  }
  openStream();
  renderReceipt();
  if (page.auctionId) refreshMe();
  const frame = () => { tick(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  setInterval(tick, 250);
}

start();
