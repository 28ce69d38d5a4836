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
 *
 * Every text in the page's language (texts.js: 保证金, 处置, 成交确认, 违约, 电子签名 …);
 * amounts by money(), the confirmation deadline in the language's local time; the deposit
 * badges keep the API's disposition in data-value.
 */

import {
  api, badge, byId, cell, dateTime, duration, label, money, number, parcelText, phaseName, problemText, report, serverNowMs, t,
} from './common.js';

const RESULT_EVERY_MS = 3000;
const BIDS_LISTED = 200;

/** The second quantity's state: its value with its unit (not money), and who leads it. */
const secondaryText = (secondary) => (secondary.current == null
  ? t('secondaryNone', secondary.label, secondary.unit)
  : t('secondaryNow', secondary.label, number(secondary.current), secondary.unit, secondary.leading_bidder_number));
const rule = (name) => t('rules')[name];

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
    byId('sale-confirmation').textContent = t('chooseAuction');
    byId('sale-certificate').hidden = true;
    byId('default-submit').disabled = true;
    return;
  }
  const entries = [
    ...(parcelText(auction.parcel) ? [[rule('parcel'), parcelText(auction.parcel)]] : []),
    [rule('phase'), phaseName(auction.phase)],
    [rule('deposit'), auction.deposit > 0 ? money(auction.deposit) : t('none')],
    [rule('timedBidding'), auction.timed_bidding_entry === 'listing_bidders' ? t('listingBiddersOnly') : t('everyQualified')],
    [rule('confirmWindow'), auction.winner_confirm_ms == null ? t('none') : duration(auction.winner_confirm_ms)],
    [rule('winner'), auction.winner_bidder_number == null ? '—' : t('winnerNumber', auction.winner_bidder_number)],
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
    text.textContent = auction.winner_confirm_ms == null ? t('noConfirmationStep') : t('nothingToConfirm');
  } else if (confirmation === 'pending') {
    const left = auction.confirmation_deadline_ms - serverNowMs();
    text.textContent = t('confirmationPending', dateTime(auction.confirmation_deadline_ms), left > 0 ? duration(left) : null);
  } else if (confirmation === 'lapsed') {
    text.textContent = t('confirmationLapsed', dateTime(auction.confirmation_deadline_ms));
  } else {
    text.textContent = label('confirmations', confirmation);
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
  const rows = [[rule('capMode'), t('capModes')[auction.cap_mode] ?? auction.cap_mode]];
  if (auction.proxies_count != null) {
    rows.push([rule('proxies'), t('proxiesSet', auction.proxies_count)]);
  }
  if (auction.cap_mode === 'sealed_bid') {
    const closed = result && Array.isArray(result.sealed_quotes) && result.sealed_quotes.length > 0;
    rows.push([rule('sealed'), closed ? t('sealedClosed', result.sealed_quotes.length) : t('sealedOpen', auction.sealed_quotes_count)]);
  }
  if (auction.secondary) {
    rows.push([rule('secondary'), secondaryText(auction.secondary)]);
  }
  rows.push([rule('signed'), t('signaturesRequired', Boolean(auction.require_signed_bids))]);
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
      cell(money(bid.amount), 'number'), cell(kept ? t('signedBy', kept.key_id) : t('unsigned')));
    return row;
  });
  byId('sale-bids-body').replaceChildren(...rows);
  byId('sale-bids-empty').hidden = rows.length > 0;
  const required = Boolean((auction && auction.require_signed_bids) || (result && result.require_signed_bids));
  const total = ((result && result.bids) || []).length;
  byId('sale-signatures').textContent = auction || result ? t('signaturesNote', required, signatures.size, total) : '';
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
    byId('sale-status').textContent = t('resultRefused', auctionId, problemText(error));
  } finally {
    sale.loading = false;
  }
}

function renderDeposits(deposits) {
  const rows = deposits.map((deposit) => {
    const row = document.createElement('tr');
    row.dataset.bidder = deposit.bidder_id;
    row.dataset.disposition = deposit.disposition;
    row.append(cell(deposit.bidder_id), cell(money(deposit.amount), 'number'), cell(badge(deposit.disposition, label('dispositions', deposit.disposition))));
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
    result.textContent = t('wholeAmount');
    return;
  }
  const button = byId('deposit-submit');
  button.disabled = true;
  try {
    const answer = await api('POST', `/control/v1/auctions/${encodeURIComponent(auctionId)}/deposits`, body);
    result.className = 'result';
    result.dataset.deposited = answer.deposited;
    result.textContent = t('depositRecorded', answer.bidder_id, money(answer.deposited), money(answer.required),
      answer.deposited >= answer.required);
    report(t('depositReport', body.reference, body.bidder_id, auctionId, money(body.amount)), 'done');
    byId('deposit-reference').value = '';
    loadResult(auctionId);
  } catch (error) {
    result.className = 'result problem';
    result.textContent = problemText(error);
    report(t('depositRefused', body.bidder_id, auctionId, problemText(error)), 'problem');
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
    result.textContent = t('defaultDeclared', answer.confirmation);
    report(t('defaultReport', auctionId), 'done');
    byId('default-reason').value = '';
    sale.result = answer;
    sale.resultFor = auctionId;
    renderDeposits(answer.deposits || []);
    renderRules(sale.auctions.get(auctionId), answer);
    renderBids(sale.auctions.get(auctionId), answer);
  } catch (error) {
    result.className = 'result problem';
    result.textContent = problemText(error);
    report(t('defaultRefused', auctionId, problemText(error)), 'problem');
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
