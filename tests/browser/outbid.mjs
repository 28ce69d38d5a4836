/*
 * Scenario (a), two bidders outbid each other: bidder A's page on one node, bidder B's on
 * another, each in its own browser context. They take turns bidding the prefilled minimum;
 * after every bid the other page must show it within 1 s of the click (measured here, from
 * the click to the bid appearing in the other page's history). Checks too that each page
 * highlights its own bidder number once its receipt is in. Bidder A finds the auction in the
 * list of auctions first; a third, signed-out page shows that list live on the third node.
 * B's and the third page's network do not reach the events listeners (B's refuses them, the
 * third's drops them): their pages must move their streams to their own node's origin and
 * keep up all the same.
 */

import {
  bidderSetting, blockEventListeners, check, clickBid, log, nodes, openBidder, receipt, run, screenshot, setting,
  summary, waitFor, waitForBid, waitForBidCount,
} from './lib.mjs';

const ROUNDS = 8;
const LIMIT_MS = 1000;

run('outbid', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const a = await openBidder(browser, {
    name: 'A', origin: setting('GAVEL_PAGE_A'), auctionId, viaLobby: true, ...bidderSetting('GAVEL_BIDDER_A'),
  });
  bidders.push(a);
  const b = await openBidder(browser, {
    name: 'B', origin: setting('GAVEL_PAGE_B'), auctionId, eventListeners: 'refuse', ...bidderSetting('GAVEL_BIDDER_B'),
  });
  bidders.push(b);
  const ownOrigin = new URL(setting('GAVEL_PAGE_B')).origin;
  check(b.streams.at(-1) === ownOrigin && b.streams.length >= 2,
    `B's streams went to ${b.streams.join(', ')}: not moved from the refused events listener to ${ownOrigin}`);

  // A third, signed-out page watches the list of auctions on the remaining node, whose events
  // listener its network drops.
  const watcherContext = await browser.newContext();
  const watcherStreams = await blockEventListeners(watcherContext, 'drop');
  const watcher = await watcherContext.newPage();
  const third = nodes().find((url) => url !== setting('GAVEL_PAGE_A') && url !== setting('GAVEL_PAGE_B'));
  await watcher.goto(`${third}/`);

  const latencies = [];
  const receiptTimes = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const [bidder, other] = round % 2 === 0 ? [a, b] : [b, a];
    const seq = round + 1;
    await waitForBidCount(bidder, round);
    const clickedAt = await clickBid(bidder);
    const seenAt = await waitForBid(other, seq);
    const answer = await receipt(bidder, round);
    check(answer.seq === seq, `${bidder.name}'s bid got seq ${answer.seq}, expected ${seq}`);
    latencies.push(seenAt - clickedAt);
    receiptTimes.push(Date.now() - clickedAt);
    log(`${bidder.name} bid #${seq}: ${other.name} saw it after ${seenAt - clickedAt} ms`);
    check(seenAt - clickedAt < LIMIT_MS, `${other.name} saw bid #${seq} after ${seenAt - clickedAt} ms (limit ${LIMIT_MS} ms)`);
  }

  for (const bidder of [a, b]) {
    await waitForBidCount(bidder, ROUNDS);
    const mine = await bidder.page.evaluate(() => ({
      number: document.getElementById('my-number').dataset.bidderNumber,
      highlighted: [...document.querySelectorAll('#history li.mine')].map((item) => Number(item.dataset.seq)),
    }));
    const expected = Array.from({ length: ROUNDS / 2 }, (_, index) => ROUNDS - 2 * index - (bidder === a ? 1 : 0));
    check(mine.number !== '', `${bidder.name} does not know its bidder number`);
    check(JSON.stringify(mine.highlighted) === JSON.stringify(expected),
      `${bidder.name} highlights bids ${mine.highlighted}, expected ${expected}`);
  }
  // B bid last: B's page says it leads, A's does not.
  const leaderText = (bidder) => bidder.page.evaluate(() => document.getElementById('leading-bidder').textContent);
  check((await leaderText(b)).includes('(you)'), `B's page shows the leader as "${await leaderText(b)}"`);
  check(!(await leaderText(a)).includes('(you)'), `A's page shows the leader as "${await leaderText(a)}"`);
  await waitFor(watcher, () => document.body.dataset.connection === 'live',
    { timeoutMs: 30000, what: 'the list of auctions live without its events listener' });
  check(watcherStreams.at(-1) === new URL(third).origin,
    `the list of auctions' streams went to ${watcherStreams.join(', ')}: not moved to ${third}`);
  const row = `#auction-list tr[data-auction-id="${auctionId}"]`;
  const listed = await waitFor(watcher, ({ selector, bids }) => {
    const cells = [...(document.querySelector(selector)?.children ?? [])].map((cell) => cell.textContent);
    return cells[3] === String(bids) ? cells : null;
  }, { arg: { selector: row, bids: ROUNDS }, timeoutMs: 1000, what: `the list of auctions to count ${ROUNDS} bids` });
  log(`the list of auctions on ${third} shows ${JSON.stringify(listed)}`);
  await screenshot({ page: watcher }, 'outbid-auction-list');
  await screenshot(a, 'outbid-bidder-a');
  await screenshot(b, 'outbid-bidder-b');
  return { rounds: ROUNDS, seen_by_other_ms: summary(latencies), receipt_ms: summary(receiptTimes), limit_ms: LIMIT_MS };
});
