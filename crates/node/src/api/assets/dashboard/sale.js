/*
 * Gavel operator dashboard: one sale's deposits and winner's confirmation
 * (docs/RULES.md, "Deposits" and "Winner's confirmation").
 *
 * The operator picks an auction (every auction GET /control/v1/auctions listed since the
 * page opened, closed ones included: the confirmation follows the sale, and a settled
 * sale leaves the live list for the archive, whose result still answers). The panel
 * shows the rules in force from its last view (deposit, timed bidding entry,
 * confirmation window), the confirmation state and deadline, and each bidder's deposits
 * with their disposition (`held`, `applied_to_price`, `refund`, `forfeited`) from
 * GET /control/v1/auctions/{id}/result, read when the choice changes, after an action and
 * every few seconds; the result's confirmation is the newest word on it. Its forms record
 * a deposit from a bank receipt (POST …/deposits {bidder_id, amount, reference}) and,
 * once the confirmation has lapsed, declare the winner in default (POST …/default
 * {reason}). Refusals show the problem+json code and detail.
 *
 * The rules past the cap and the 1.1 sale rules, from the same two reads: the cap mode;
 * how many proxy maximums are set (`proxies_count` of the ControlAuctionView: never an
 * amount); under `sealed_bid` the number of quotes while the window is open
 * (`sealed_quotes_count`) and, once closed, the quotes themselves (the result's
 * `sealed_quotes`); under `secondary` the second quantity (current value with its unit,
 * leader); whether signed bids are required, and each bid of the result with the key its
 * signature verified under (`bid_signatures`), or none. The newest 200 bids are listed.
 */

import { api, badge, byId, cell, clock, duration, money, problemText, report, serverNowMs } from './common.js';

const RESULT_EVERY_MS = 3000;
const BIDS_LISTED = 200;

/** What the panel says of the rules past the cap and of signatures, in one place. */
const SALE_TEXT = {
  capMode: { lottery: 'lottery (摇号)', sealed_bid: 'sealed quote (一次报价)', secondary: 'secondary bidding (竞配建 / 竞自持)' },
  proxies: (count) => `${count} set (amounts hidden)`,
  sealedOpen: (count) => `${count} submitted (amounts hidden until the window closes)`,
  sealedClosed: (count) => `${count} submitted (listed below)`,
  secondary: (secondary) => (secondary.current == null
    ? `${secondary.label}: no bid yet (${secondary.unit})`
    : `${secondary.label}: ${money(secondary.current)} ${secondary.unit}, bidder ${secondary.leading_bidder_number}`),
  signaturesRequired: (required) => (required ? 'required' : 'optional'),
  signaturesNote: (required, signed, total) => `${required ? 'This sale accepts signed bids only.' : 'Signatures are optional in this sale.'} `
    + `${signed} of ${total} bids signed.`,
  signedBy: (keyId) => `signed by ${keyId}`,
  unsigned: 'unsigned',
};

const sale = {
  auctions: new Map(), // every auction listed since the page opened: id -> its last view
  result: null, // the chosen auction's last result
  optionsKey: '',
  resultFor: null,
  resultAt: 0,
  loading: false,
};

const selected = () => byId('sale-auction').value || null;

/** Called with every GET /control/v1/auctions answer. */
export function renderSale(answer) {
  const auctions = Array.isArray(answer) ? answer : (answer && answer.auctions) || [];
  for (const auction of auctions) {
    sale.auctions.set(auction.id, auction);
  }
  updateChoices([...sale.auctions.values()]);
  const auction = sale.auctions.get(selected());
  renderRules(auction, sale.result && auction && sale.resultFor === auction.id ? sale.result : null);
  if (auction && (sale.resultFor !== auction.id || Date.now() - sale.resultAt > RESULT_EVERY_MS)) {
    loadResult(auction.id);
  }
  if (!auction) {
    renderDeposits([]);
    renderBids(null, null);
  }
}

function updateChoices(auctions) {
  const ids = auctions.map((auction) => auction.id).sort();
  const key = ids.join('\n');
  if (key === sale.optionsKey) {
    return;
  }
  sale.optionsKey = key;
  const select = byId('sale-auction');
  const chosen = select.value;
  select.replaceChildren(
    ...ids.map((id) => {
      const option = document.createElement('option');
      option.value = id;
      option.textContent = id;
      return option;
    }),
  );
  if (ids.includes(chosen)) {
    select.value = chosen;
  }
}

function renderRules(auction, result) {
  const rules = byId('sale-rules');
  if (!auction) {
    rules.replaceChildren();
    byId('sale-confirmation').textContent = 'Choose an auction.';
    byId('sale-certificate').hidden = true;
    byId('default-submit').disabled = true;
    return;
  }
  const entries = [
    ['phase', auction.phase.replace(/_/g, ' ')],
    ['deposit required', auction.deposit > 0 ? money(auction.deposit) : 'none'],
    ['timed bidding', auction.timed_bidding_entry === 'listing_bidders' ? 'listing bidders only' : 'every qualified bidder'],
    ['confirmation window', auction.winner_confirm_ms == null ? 'none' : duration(auction.winner_confirm_ms)],
    ['winner', auction.winner_bidder_number == null ? '—' : `bidder ${auction.winner_bidder_number}`],
    ...pastTheCapRules(auction, result),
  ].flatMap(([term, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    return [dt, dd];
  });
  rules.replaceChildren(...entries);
  rules.dataset.proxiesCount = auction.proxies_count ?? '';
  rules.dataset.sealedQuotesCount = auction.sealed_quotes_count ?? '';
  rules.dataset.secondaryCurrent = auction.secondary?.current ?? '';
  rules.dataset.requireSignedBids = Boolean(auction.require_signed_bids);
  // A confirmed or defaulted sale leaves the live list: its result has the last word.
  const confirmation = (result && result.confirmation) || auction.confirmation;
  const text = byId('sale-confirmation');
  text.dataset.state = confirmation || '';
  if (confirmation == null) {
    text.textContent = auction.winner_confirm_ms == null ? 'This sale has no confirmation step.' : 'No sale to confirm yet.';
  } else if (confirmation === 'pending') {
    const left = auction.confirmation_deadline_ms - serverNowMs();
    text.textContent = `pending: the winner confirms by ${clock(auction.confirmation_deadline_ms)} `
      + `(${left > 0 ? `${duration(left)} left` : 'due'}).`;
  } else if (confirmation === 'lapsed') {
    text.textContent = `lapsed at ${clock(auction.confirmation_deadline_ms)}: the winner did not confirm. `
      + 'Declare the default to settle the sale (the winner\'s deposit is forfeited, the others refunded).';
  } else {
    text.textContent = confirmation;
  }
  byId('default-submit').disabled = confirmation !== 'lapsed';
  // A sold sale has a printable result (成交确认书), opened in this tab (it reads the token here).
  const certificate = byId('sale-certificate');
  const sold = (result && result.phase === 'sold') || auction.phase === 'sold';
  certificate.hidden = !sold;
  certificate.href = `/certificate?auction=${encodeURIComponent(auction.id)}`;
}

/** Rows of the rules list for the cap mode, proxies, sealed quotes, secondary and signatures. */
function pastTheCapRules(auction, result) {
  const rows = [['cap mode', SALE_TEXT.capMode[auction.cap_mode] ?? auction.cap_mode]];
  if (auction.proxies_count != null) {
    rows.push(['proxy maximums', SALE_TEXT.proxies(auction.proxies_count)]);
  }
  if (auction.cap_mode === 'sealed_bid') {
    const closed = result && Array.isArray(result.sealed_quotes) && result.sealed_quotes.length > 0;
    rows.push(['sealed quotes', closed ? SALE_TEXT.sealedClosed(result.sealed_quotes.length) : SALE_TEXT.sealedOpen(auction.sealed_quotes_count)]);
  }
  if (auction.secondary) {
    rows.push(['second quantity', SALE_TEXT.secondary(auction.secondary)]);
  }
  rows.push(['signed bids', SALE_TEXT.signaturesRequired(Boolean(auction.require_signed_bids))]);
  return rows;
}

/** Each bid of the result with its signature state, and the sealed quotes of a closed window. */
function renderBids(auction, result) {
  const signatures = new Map(((result && result.bid_signatures) || []).map((kept) => [kept.seq, kept]));
  const bids = ((result && result.bids) || []).slice(-BIDS_LISTED).reverse();
  const rows = bids.map((bid) => {
    const kept = signatures.get(bid.seq);
    const row = document.createElement('tr');
    row.dataset.seq = bid.seq;
    row.dataset.signature = kept ? kept.key_id : '';
    row.append(cell(String(bid.seq), 'number'), cell(String(bid.bidder_number), 'number'),
      cell(money(bid.amount), 'number'), cell(kept ? SALE_TEXT.signedBy(kept.key_id) : SALE_TEXT.unsigned));
    return row;
  });
  byId('sale-bids-body').replaceChildren(...rows);
  byId('sale-bids-empty').hidden = rows.length > 0;
  const required = Boolean((auction && auction.require_signed_bids) || (result && result.require_signed_bids));
  const total = ((result && result.bids) || []).length;
  byId('sale-signatures').textContent = auction || result ? SALE_TEXT.signaturesNote(required, signatures.size, total) : '';
  const quotes = (result && result.sealed_quotes) || [];
  byId('sealed-quotes-title').hidden = quotes.length === 0;
  byId('sealed-quotes').hidden = quotes.length === 0;
  byId('sealed-quotes-body').replaceChildren(...quotes.map((quote) => {
    const row = document.createElement('tr');
    row.dataset.bidderNumber = quote.bidder_number;
    row.append(cell(String(quote.bidder_number), 'number'), cell(money(quote.amount), 'number'));
    return row;
  }));
}

async function loadResult(auctionId) {
  if (sale.loading) {
    return;
  }
  sale.loading = true;
  sale.resultFor = auctionId;
  sale.resultAt = Date.now();
  try {
    const result = await api('GET', `/control/v1/auctions/${encodeURIComponent(auctionId)}/result`);
    if (selected() === auctionId) {
      sale.result = result;
      byId('sale-status').textContent = '';
      renderDeposits(result.deposits || []);
      renderRules(sale.auctions.get(auctionId), result);
      renderBids(sale.auctions.get(auctionId), result);
    }
  } catch (error) {
    byId('sale-status').textContent = `result of ${auctionId}: ${problemText(error)}`;
  } finally {
    sale.loading = false;
  }
}

function renderDeposits(deposits) {
  const rows = deposits.map((deposit) => {
    const row = document.createElement('tr');
    row.dataset.bidder = deposit.bidder_id;
    row.dataset.disposition = deposit.disposition;
    row.append(cell(deposit.bidder_id), cell(money(deposit.amount), 'number'), cell(badge(deposit.disposition)));
    return row;
  });
  byId('deposits-body').replaceChildren(...rows);
  byId('deposits-empty').hidden = rows.length > 0;
}

async function submitDeposit(event) {
  event.preventDefault();
  const auctionId = selected();
  const result = byId('deposit-result');
  const body = {
    bidder_id: byId('deposit-bidder').value.trim(),
    amount: Number(byId('deposit-amount').value),
    reference: byId('deposit-reference').value.trim(),
  };
  if (!auctionId || !body.bidder_id || !body.reference) {
    return;
  }
  if (!Number.isSafeInteger(body.amount) || body.amount <= 0) {
    result.className = 'result problem';
    result.textContent = 'The amount is a whole, positive amount in the smallest currency unit.';
    return;
  }
  const button = byId('deposit-submit');
  button.disabled = true;
  try {
    const answer = await api('POST', `/control/v1/auctions/${encodeURIComponent(auctionId)}/deposits`, body);
    result.className = 'result';
    result.dataset.deposited = answer.deposited;
    result.textContent = `${answer.bidder_id}: ${money(answer.deposited)} recorded of ${money(answer.required)} required`
      + `${answer.deposited >= answer.required ? ' (enough to qualify)' : ''}.`;
    report(`deposit ${body.reference} for ${body.bidder_id} on ${auctionId}: ${money(body.amount)} recorded.`, 'done');
    byId('deposit-reference').value = '';
    loadResult(auctionId);
  } catch (error) {
    result.className = 'result problem';
    result.textContent = problemText(error);
    report(`deposit for ${body.bidder_id} on ${auctionId} refused: ${problemText(error)}`, 'problem');
  } finally {
    button.disabled = false;
  }
}

async function submitDefault(event) {
  event.preventDefault();
  const auctionId = selected();
  const reason = byId('default-reason').value.trim();
  const result = byId('default-result');
  if (!auctionId || !reason) {
    return;
  }
  const button = byId('default-submit');
  button.disabled = true;
  try {
    const answer = await api('POST', `/control/v1/auctions/${encodeURIComponent(auctionId)}/default`, { reason });
    result.className = 'result';
    result.textContent = `declared in default: confirmation ${answer.confirmation || 'defaulted'}.`;
    report(`default declared on ${auctionId}.`, 'done');
    byId('default-reason').value = '';
    sale.result = answer;
    sale.resultFor = auctionId;
    renderDeposits(answer.deposits || []);
    renderRules(sale.auctions.get(auctionId), answer);
    renderBids(sale.auctions.get(auctionId), answer);
  } catch (error) {
    result.className = 'result problem';
    result.textContent = problemText(error);
    report(`default on ${auctionId} refused: ${problemText(error)}`, 'problem');
    button.disabled = false;
  }
}

/** Wires the panel's choice and forms; `afterAction` refreshes the page. */
export function wireSale(afterAction) {
  byId('sale-auction').addEventListener('change', () => {
    sale.resultFor = null;
    sale.result = null;
    byId('deposit-result').textContent = '';
    byId('default-result').textContent = '';
    renderSale([...sale.auctions.values()]);
  });
  byId('deposit-form').addEventListener('submit', (event) => submitDeposit(event).then(afterAction));
  byId('default-form').addEventListener('submit', (event) => submitDefault(event).then(afterAction));
}
