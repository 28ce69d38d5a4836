/*
 * Scenario (e), a proxy maximum and a sealed quote from the page: alice leaves a hidden
 * maximum on her page (on one node) and her proxy bids the start price at once; bob (on
 * another node) outbids her and her proxy answers in the same step, at her maximum, each
 * proxy bid marked in her page's history. Bob then reaches the price cap: the sale enters
 * its sealed-quote window (cap_mode sealed_bid), both pages offer the sealed-quote form,
 * alice submits hers, and bob's page counts one quote without showing its amount.
 */

import {
  bidderSetting, check, clickBid, openBidder, receipt, run, screenshot, setting, waitFor, waitForBid,
  waitForBidCount,
} from './lib.mjs';

const MAXIMUM = 1020000;
const CAP = 1030000;
const QUOTE = 1100000;

run('pastcap', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const a = await openBidder(browser, { name: 'A', origin: setting('GAVEL_PAGE_A'), auctionId, ...bidderSetting('GAVEL_BIDDER_A') });
  bidders.push(a);
  const b = await openBidder(browser, { name: 'B', origin: setting('GAVEL_PAGE_B'), auctionId, ...bidderSetting('GAVEL_BIDDER_B') });
  bidders.push(b);

  // A leaves her maximum: her proxy bids the start price at once.
  await waitFor(a.page, () => !document.getElementById('proxy').hidden, { what: "A's proxy form" });
  await a.page.fill('#proxy-max', String(MAXIMUM));
  await a.page.click('#proxy-button');
  const set = await waitFor(a.page, (max) => {
    const status = document.getElementById('proxy-status');
    return status.dataset.state === 'set' && document.getElementById('proxy').dataset.max === String(max)
      ? status.textContent : null;
  }, { arg: MAXIMUM, what: "A's maximum set" });
  await waitForBid(b, 1);

  // B outbids her: her proxy answers at once, at her maximum; both are marked in her history.
  await waitForBidCount(b, 1);
  await clickBid(b);
  await receipt(b, 0);
  await waitForBid(a, 3);
  const marks = await a.page.evaluate(() => [...document.querySelectorAll('#history li')]
    .map((item) => `${item.dataset.seq}:${item.dataset.proxy}`).sort().join(','));
  check(marks === '1:true,2:false,3:true', `A's history marks the proxy bids as ${marks}`);
  // A's proxy bid at her maximum's amount is in every page's history; what is hers alone is
  // the maximum itself, in her proxy panel: B's panel shows none.
  const bPanel = await b.page.evaluate(() => document.getElementById('proxy').dataset.max);
  check(bPanel === '', `B's page shows a maximum of its own: ${bPanel}`);

  // B reaches the cap: the sealed-quote window opens on both pages.
  await waitForBidCount(b, 3);
  await b.page.fill('#bid-amount', String(CAP));
  await b.page.click('#bid-button');
  await receipt(b, 2);
  await waitFor(a.page, () => !document.getElementById('sealed').hidden, { what: "A's sealed-quote form" });
  await waitFor(b.page, () => !document.getElementById('sealed').hidden, { what: "B's sealed-quote form" });
  await a.page.fill('#sealed-amount', String(QUOTE));
  await a.page.click('#sealed-button');
  const accepted = await waitFor(a.page, () => {
    const status = document.getElementById('sealed-status');
    if (status.dataset.state === 'refused') return `refused: ${status.textContent}`;
    return status.dataset.state === 'accepted' ? status.textContent : null;
  }, { what: "A's sealed quote accepted" });
  check(!accepted.startsWith('refused'), `A's sealed quote: ${accepted}`);
  await waitFor(b.page, () => document.getElementById('sealed-count').dataset.count === '1',
    { what: "B's page to count one sealed quote" });
  const quoteShownToB = await b.page.evaluate((quote) => document.body.innerText.includes(
    new Intl.NumberFormat('en-US').format(quote)), QUOTE);
  check(!quoteShownToB, "B's page shows A's sealed quote");
  await screenshot(a, 'pastcap-sealed');
  return { proxy_set: set, marks, sealed: accepted };
});
