/*
 * Scenario (d), a sale with a deposit and a winner's confirmation window: alice has paid
 * her deposit and is qualified, bob has paid nothing. Alice's page (on one node) must show
 * her bidder number and her deposit as recorded before she bids; bob's page (on another)
 * must say his deposit is not yet recorded. The operator records bob's deposit on the
 * dashboard of alice's node, which then lists both deposits as held; bob's page shows it
 * as recorded once it refreshes (he is still not qualified, so his bid is refused with a
 * plain message). Alice bids: her page shows the receipt's chain hash and its signature
 * checked against the cluster's key. When the sale ends, only alice's page offers the
 * confirmation (成交确认) with its countdown; she confirms, both pages show "confirmed",
 * and the dashboard shows the deposits' dispositions (alice's applied to the price, bob's
 * refunded).
 */

import {
  bidderSetting, check, clickBid, log, openBidder, openDashboard, receipt, run, screenshot, setting, waitFor,
} from './lib.mjs';

const SALE_TIMEOUT_MS = 60000;

const dataset = (bidder, id) => bidder.page.evaluate((element) => ({ ...document.getElementById(element).dataset,
  text: document.getElementById(element).textContent, hidden: document.getElementById(element).hidden }), id);

/** Waits until element `id` of the page has data-`key` equal to `value`; answers its dataset and text. */
async function waitForData(bidder, id, key, value, timeoutMs = 10000) {
  return waitFor(bidder.page, ({ element, name, wanted }) => {
    const node = document.getElementById(element);
    if (!node || node.closest('[hidden]') || node.dataset[name] !== wanted) return null;
    return { ...node.dataset, text: node.textContent };
  }, { arg: { element: id, name: key, wanted: String(value) }, timeoutMs, what: `${bidder.name}'s #${id} with ${key}=${value}` });
}

/**
 * The sold sale's printable result, opened from the dashboard's link in the operator's tab:
 * English as the operator's browser asks, then Chinese (?lang=zh), printed to an A4 PDF of
 * one page. Its chain head must be the winning receipt's chain hash.
 */
async function printCertificate(operator, chainHash) {
  const page = operator.page;
  await waitFor(page, () => { const link = document.getElementById('sale-certificate'); return link && !link.hidden; },
    { what: 'the dashboard to offer the sale certificate' });
  await page.click('#sale-certificate');
  await waitFor(page, () => document.body.dataset.state === 'ready', { what: 'the certificate (English)' });
  const read = () => page.evaluate(() => ({
    text: document.getElementById('certificate').innerText, head: document.getElementById('chain-head').textContent,
    signature: document.getElementById('receipt-signature').textContent, price: document.getElementById('final-price').textContent,
    deposits: [...document.querySelectorAll('#deposit-rows tr')].map((row) => row.innerText.replace(/\s+/g, ' ')),
  }));
  const english = await read();
  check(english.text.includes('Sale certificate') && english.text.includes('alice') && english.price === '¥1,000,000',
    `the English certificate reads ${JSON.stringify(english)}`);
  await page.goto(`${page.url()}&lang=zh`);
  await waitFor(page, () => document.body.dataset.state === 'ready', { what: 'the certificate (Chinese)' });
  const chinese = await read();
  log(`certificate: ${JSON.stringify({ ...chinese, text: chinese.text.slice(0, 120) })}`);
  check(chinese.text.includes('成交确认书') && chinese.price === '100 万元', `the certificate reads ${JSON.stringify(chinese)}`);
  check(chinese.head === chainHash, `the certificate's chain head ${chinese.head} is not the receipt's ${chainHash}`);
  check(/^[A-Za-z0-9+/]{86}==$/.test(chinese.signature), `the receipt signature reads "${chinese.signature}"`);
  check(chinese.deposits.some((row) => row.includes('alice') && row.includes('转作成交价款'))
    && chinese.deposits.some((row) => row.includes('bob') && row.includes('予以退还')), `deposits ${JSON.stringify(chinese.deposits)}`);
  await screenshot(operator, 'certificate');
  const directory = process.env.GAVEL_SCREENSHOTS;
  const pdf = await page.pdf({ path: `${directory}/certificate.pdf`, format: 'A4', printBackground: true });
  const pages = (pdf.toString('latin1').match(/\/Type\s*\/Page[^s]/g) ?? []).length;
  log(`certificate.pdf: ${pdf.length} bytes, ${pages} page(s)`);
  check(pdf.subarray(0, 5).toString() === '%PDF-' && pages === 1, `the PDF has ${pages} pages (${pdf.length} bytes)`);
  return { pdf_bytes: pdf.length, pdf_pages: pages };
}

/** The deposits the dashboard lists: "bidder:disposition" in order. */
const listedDeposits = (operator) => operator.page.evaluate(() => [...document.querySelectorAll('#deposits-body tr')]
  .map((row) => `${row.dataset.bidder}:${row.dataset.disposition}`).join(','));

async function waitForDeposits(operator, wanted, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let listed = '';
  while (Date.now() < deadline) {
    listed = await listedDeposits(operator);
    if (listed === wanted) return listed;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the dashboard lists the deposits ${JSON.stringify(listed)}, expected ${JSON.stringify(wanted)}`);
}

run('sale', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const expectedNumber = setting('GAVEL_BIDDER_NUMBER_A');
  const deposit = Number(setting('GAVEL_DEPOSIT'));
  const a = await openBidder(browser, { name: 'A', origin: setting('GAVEL_PAGE_A'), auctionId, ...bidderSetting('GAVEL_BIDDER_A') });
  bidders.push(a);
  const b = await openBidder(browser, { name: 'B', origin: setting('GAVEL_PAGE_B'), auctionId, ...bidderSetting('GAVEL_BIDDER_B') });
  bidders.push(b);

  // Before any bid: alice knows her number and that her deposit is in; bob does not.
  const standingA = await waitForData(a, 'standing', 'bidderNumber', expectedNumber);
  check(standingA.qualified === 'true' && standingA.mayBid === 'true', `A's standing: ${JSON.stringify(standingA)}`);
  const numberText = (await dataset(a, 'standing-number')).text;
  check(numberText.includes('您的竞买号') && numberText.includes(`You are bidder ${expectedNumber}`), `A's number reads "${numberText}"`);
  const depositA = await waitForData(a, 'standing-deposit', 'state', 'recorded');
  check(depositA.text.includes('recorded'), `A's deposit reads "${depositA.text}"`);
  const standingB = await waitForData(b, 'standing', 'reason', 'deposit_missing');
  check(standingB.bidderNumber === '' && standingB.deposited === '0' && standingB.depositRequired === String(deposit),
    `B's standing: ${JSON.stringify(standingB)}`);
  const depositB = await waitForData(b, 'standing-deposit', 'state', 'missing');
  check(depositB.text.includes('Deposit not yet recorded'), `B's deposit reads "${depositB.text}"`);
  const rules = await a.page.evaluate(() => document.getElementById('rules-list').textContent);
  check(rules.includes('within 2 min') && rules.includes('every qualified bidder'), `A's rules read "${rules}"`);
  await screenshot(b, 'sale-bidder-b-no-deposit');

  // The operator records bob's deposit from a bank receipt on the dashboard.
  const operator = await openDashboard(browser, setting('GAVEL_CONTROL_A'), setting('GAVEL_ADMIN_TOKEN'));
  bidders.push(operator);
  await waitFor(operator.page, (id) => [...document.getElementById('sale-auction').options].some((option) => option.value === id),
    { arg: auctionId, what: 'the dashboard to list the auction' });
  await operator.page.selectOption('#sale-auction', auctionId);
  await waitForDeposits(operator, 'alice:held');
  await operator.page.fill('#deposit-bidder', 'bob');
  await operator.page.fill('#deposit-amount', String(deposit));
  await operator.page.fill('#deposit-reference', 'bank-bob-7');
  await operator.page.click('#deposit-submit');
  await waitFor(operator.page, (wanted) => document.getElementById('deposit-result').dataset.deposited === wanted,
    { arg: String(deposit), what: 'the dashboard to confirm the deposit' });
  await waitForDeposits(operator, 'alice:held,bob:held');
  log('the dashboard recorded bob\'s deposit and lists both as held');

  // Alice bids: her receipt carries the chain hash and the cluster's signature.
  const clickedAt = await clickBid(a);
  const answer = await receipt(a, 0);
  check(answer.seq === 1, `A's bid got seq ${answer.seq}`);
  log(`A's bid accepted after ${Date.now() - clickedAt} ms`);
  const receiptA = await waitForData(a, 'receipt', 'seq', 1);
  check(/^[0-9a-f]{64}$/.test(receiptA.chainHash), `A's receipt chain hash is "${receiptA.chainHash}"`);
  check(receiptA.text.includes(receiptA.chainHash.slice(0, 8)), `A's receipt reads "${receiptA.text}"`);
  const signature = await waitForData(a, 'receipt-signature', 'state', 'verified');
  check(signature.text.includes('Signed by the cluster'), `A's receipt signature reads "${signature.text}"`);
  await waitForData(a, 'standing-lead', 'state', 'leading');

  // Bob's page refreshes his standing with the new bid: deposit in, still not qualified.
  const recordedB = await waitForData(b, 'standing-deposit', 'state', 'recorded');
  check(recordedB.text.includes('recorded'), `B's deposit reads "${recordedB.text}"`);
  await waitForData(b, 'standing', 'reason', 'not_qualified');
  await waitFor(b.page, () => document.getElementById('room').dataset.bidCount === '1', { what: 'B to count the bid' });
  await clickBid(b);
  const refusal = await waitForData(b, 'bid-status', 'state', 'refused');
  check(refusal.code === 'not_qualified' && refusal.text.includes('not qualified'), `B's refusal reads "${refusal.text}"`);

  // The sale ends: only the winner is offered the confirmation, with its countdown.
  await waitForData(a, 'acceptance', 'state', 'pending', SALE_TIMEOUT_MS);
  // The page learns that this bidder won from its standing, asked for when the view changed.
  const pendingA = await waitForData(a, 'acceptance', 'winner', 'true');
  check(pendingA.state === 'pending' && pendingA.text.includes('You won'), `A's confirmation panel: ${JSON.stringify(pendingA)}`);
  const button = await dataset(a, 'accept-button');
  check(!button.hidden && button.text.includes('成交确认'), `A's confirmation button: ${JSON.stringify(button)}`);
  const remaining = await waitFor(a.page, () => Number(document.getElementById('acceptance-countdown').dataset.remainingMs),
    { what: 'A\'s confirmation countdown' });
  check(remaining > 0 && remaining <= 120000, `A's confirmation countdown shows ${remaining} ms`);
  const pendingB = await waitForData(b, 'acceptance', 'state', 'pending');
  check(pendingB.winner === 'false', `B's confirmation panel: ${JSON.stringify(pendingB)}`);
  check((await dataset(b, 'accept-button')).hidden, 'B is offered the confirmation button');
  await screenshot(a, 'sale-winner-to-confirm');

  await a.page.click('#accept-button');
  const confirmedA = await waitForData(a, 'acceptance', 'state', 'confirmed');
  check(confirmedA.text.includes('Confirmed'), `A's confirmation reads "${confirmedA.text}"`);
  check((await dataset(a, 'accept-button')).hidden, 'A still sees the confirmation button');
  const confirmedB = await waitForData(b, 'acceptance', 'state', 'confirmed', 8000);
  check(confirmedB.text.includes('confirmed'), `B's confirmation reads "${confirmedB.text}"`);

  // The dashboard follows: confirmed, alice's deposit goes to the price, bob's is refunded.
  await waitFor(operator.page, () => document.getElementById('sale-confirmation').dataset.state === 'confirmed',
    { what: 'the dashboard to show the confirmation' });
  await waitForDeposits(operator, 'alice:applied_to_price,bob:refund');
  await screenshot(a, 'sale-winner-confirmed');
  await screenshot(operator, 'sale-dashboard');
  const certificate = await printCertificate(operator, receiptA.chainHash);
  return {
    bidder_number: Number(expectedNumber), chain_hash: receiptA.chainHash, countdown_ms: remaining, certificate,
  };
});
