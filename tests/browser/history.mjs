/*
 * Scenario: a contested sale's history on the bidder page. The sale holds 102 bids; bidder A
 * placed the first, and two rivals outbid each other 101 times after it. A's page (Chinese)
 * opens with the newest 100 bids alone (seq 3–102) and shows 更早的出价; A's standing says it
 * was outbid (已被超越) though its own bid is not among those 100; asked, the page reads the
 * two earlier bids from the bid list, and the button goes once every bid is shown.
 */

import { bidderSetting, check, log, openBidder, run, setting, waitFor } from './lib.mjs';

/** The seqs of the bids the page's history shows, newest first. */
const shownSeqs = (bidder) => bidder.page.evaluate(
  () => [...document.querySelectorAll('#history li[data-seq]')].map((item) => Number(item.dataset.seq)),
);

/** Waits until the page's history shows `count` bids. */
const showing = (bidder, count) => waitFor(bidder.page,
  (wanted) => document.querySelectorAll('#history li[data-seq]').length === wanted,
  { arg: count, what: `${bidder.name}'s history to show ${count} bids` });

run('history', async (browser, bidders) => {
  const a = await openBidder(browser, {
    name: 'A', origin: setting('GAVEL_PAGE_A'), auctionId: setting('GAVEL_AUCTION'), locale: 'zh-CN',
    ...bidderSetting('GAVEL_BIDDER_A'),
  });
  bidders.push(a);

  await showing(a, 100);
  let seqs = await shownSeqs(a);
  log(`A's history at connect: ${seqs.length} bids, ${seqs.at(-1)}–${seqs[0]}`);
  check(seqs[0] === 102 && seqs.at(-1) === 3, `A's history shows ${seqs.at(-1)}–${seqs[0]}, not 3–102`);
  const button = await a.page.evaluate(() => {
    const earlier = document.getElementById('history-earlier');
    return { hidden: earlier.hidden, text: earlier.textContent };
  });
  check(!button.hidden && button.text === '更早的出价', `the earlier-bids button: ${JSON.stringify(button)}`);

  const lead = await waitFor(a.page, () => {
    const standing = document.getElementById('standing-lead');
    return !document.getElementById('standing').hidden && standing.dataset.state ? standing.dataset.state : null;
  }, { what: "A's standing" });
  const leadText = await a.page.evaluate(() => document.getElementById('standing-lead').textContent);
  check(lead === 'outbid' && leadText.includes('已被超越'), `A's standing is ${lead}: "${leadText}"`);

  await a.page.click('#history-earlier');
  await showing(a, 102);
  seqs = await shownSeqs(a);
  check(seqs[0] === 102 && seqs.at(-1) === 1, `A's history then shows ${seqs.at(-1)}–${seqs[0]}`);
  const hidden = await a.page.evaluate(() => document.getElementById('history-earlier').hidden);
  check(hidden, 'the earlier-bids button still shows with every bid shown');
  return { atConnect: 100, afterAsking: seqs.length, standing: lead };
});
