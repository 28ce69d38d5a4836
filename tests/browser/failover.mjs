/*
 * Scenario (c), the page keeps bidding after its node is killed. Bidder A's page is on the
 * leader, bidder B's on another node. After a first exchange of bids this script writes
 * $GAVEL_SIGNAL_DIR/connected (A's node id); tests/browser.rs SIGKILLs that node and
 * writes $GAVEL_SIGNAL_DIR/killed. At once A clicks Bid: the request fails, the page
 * moves to the next live node, re-syncs its clock and resends the bid with the same
 * request_id (read here from the hand-over in the new page's URL fragment).
 * Checks: A ends live on another node with a receipt; B sees the bid; the auction holds
 * exactly one bid per click (nothing doubled); both pages show the takeover's "deadline
 * extended" notice; A's countdown agrees with the server's within 200 ms after the move;
 * bidding then goes on with each page seeing the other's bids within 1 s.
 */

import fs from 'node:fs';
import path from 'node:path';
import {
  bidderSetting, check, clickBid, countdownErrors, log, nodeId, nodes, openBidder, receipt, run,
  screenshot, setting, sleep, summary, waitFor, waitForBid, waitForBidCount, waitForLive,
} from './lib.mjs';

const LIMIT_MS = 1000;
const COUNTDOWN_LIMIT_MS = 200;

async function waitForFile(file, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    check(Date.now() < deadline, `no ${file} within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** One bid by `bidder`, seen by `other`: answers the ms from click to the other page. */
async function exchange(bidder, other, seq) {
  await waitForBidCount(bidder, seq - 1);
  const clickedAt = await clickBid(bidder);
  const seenAt = await waitForBid(other, seq);
  const answer = await receipt(bidder, seq - 1);
  check(answer.seq === seq, `${bidder.name}'s bid got seq ${answer.seq}, expected ${seq}`);
  log(`${bidder.name} bid #${seq}: ${other.name} saw it after ${seenAt - clickedAt} ms`);
  check(seenAt - clickedAt < LIMIT_MS, `${other.name} saw bid #${seq} after ${seenAt - clickedAt} ms`);
  return seenAt - clickedAt;
}

run('failover', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const signals = setting('GAVEL_SIGNAL_DIR');
  const a = await openBidder(browser, { name: 'A', origin: setting('GAVEL_PAGE_A'), auctionId, ...bidderSetting('GAVEL_BIDDER_A') });
  bidders.push(a);
  const b = await openBidder(browser, { name: 'B', origin: setting('GAVEL_PAGE_B'), auctionId, ...bidderSetting('GAVEL_BIDDER_B') });
  bidders.push(b);
  const latencies = [await exchange(a, b, 1), await exchange(b, a, 2)];
  await waitForBidCount(a, 2);
  await screenshot(a, 'failover-1-before-kill-bidder-a');

  const killedNode = await nodeId(a.page);
  fs.writeFileSync(path.join(signals, 'connected.tmp'), String(killedNode));
  fs.renameSync(path.join(signals, 'connected.tmp'), path.join(signals, 'connected'));
  log(`A is on node ${killedNode}: asked for it to be killed`);
  // The page hands its state over in the new page's URL fragment: keep the first one.
  const handoffs = [];
  a.page.on('framenavigated', (frame) => {
    const match = frame === a.page.mainFrame() && frame.url().match(/#handoff=(.+)$/);
    if (match) handoffs.push(JSON.parse(decodeURIComponent(match[1])));
  });
  await waitForFile(path.join(signals, 'killed'), 60000);
  const killedAt = Date.now();
  const clickedAt = await clickBid(a);
  log(`node ${killedNode} killed; A clicked Bid ${clickedAt - killedAt} ms later`);

  await waitFor(a.page, (killed) => Number(document.body.dataset.nodeId) !== killed && document.body.dataset.nodeId,
    { arg: killedNode, timeoutMs: 10000, what: 'A to move to another node' });
  const movedMs = Date.now() - killedAt;
  const answer = await receipt(a, 2, 30000);
  const receiptMs = Date.now() - clickedAt;
  check(answer.seq === 3, `A's bid after the kill got seq ${answer.seq}, expected 3`);
  await waitForLive(a.page, 'A after failover', 10000);
  const liveMs = Date.now() - killedAt;
  const moved = await a.page.evaluate(() => ({ ...document.body.dataset, origin: location.origin }));
  check(Number(moved.nodeId) !== killedNode, `A is still on node ${moved.nodeId}`);
  check(Number(moved.failovers) >= 1, `A's page counts ${moved.failovers} failovers`);
  check(Number(moved.previousNodeId) === killedNode, `A's page came from node ${moved.previousNodeId}`);
  log(`A: receipt for #3 ${receiptMs} ms after the click (attempts ${answer.attempts}, replayed ${answer.replayed}); `
    + `on node ${moved.nodeId} at ${moved.origin} ${movedMs} ms and live ${liveMs} ms after the kill`);
  // The bid resent on the new node is the same request as the one that failed.
  check(handoffs.length >= 1, 'A moved without a hand-over');
  const handedOver = handoffs[0].pending;
  check(handedOver && handedOver.request_id === answer.requestId,
    `A handed over ${JSON.stringify(handedOver)}, the receipt is for request ${answer.requestId}`);
  check(handoffs[0].from.node_id === killedNode, `the hand-over came from node ${handoffs[0].from.node_id}`);
  const seenAt = await waitForBid(b, 3, 5000);

  // Nothing doubled: the auction holds exactly the three clicked bids.
  const bids = (await (await fetch(`${moved.origin}/api/v1/auctions/${auctionId}/bids`)).json()).bids;
  check(bids.length === 3, `the auction holds ${bids.length} bids after 3 clicks: ${JSON.stringify(bids)}`);

  // The takeover's grace moved the deadline without a bid: both pages say so.
  for (const bidder of [a, b]) {
    await waitFor(bidder.page, () => !document.getElementById('extension-notice').hidden,
      { timeoutMs: 5000, what: `${bidder.name}'s "deadline extended" notice` });
  }

  const differences = await countdownErrors(a, moved.origin, auctionId);
  const worst = Math.max(...differences.map(Math.abs));
  check(worst <= COUNTDOWN_LIMIT_MS, `A's countdown is ${worst} ms off after the failover: ${differences}`);
  await screenshot(a, 'failover-2-after-kill-bidder-a');
  await screenshot(b, 'failover-2-after-kill-bidder-b');

  latencies.push(await exchange(b, a, 4), await exchange(a, b, 5), await exchange(b, a, 6));
  const total = (await (await fetch(`${moved.origin}/api/v1/auctions/${auctionId}/bids`)).json()).bids.length;
  check(total === 6, `the auction holds ${total} bids after 6 clicks`);
  const live = nodes().filter((url) => url !== setting('GAVEL_PAGE_A'));
  return {
    killed_node: killedNode, moved_to_node: Number(moved.nodeId), live_nodes: live.length,
    click_after_kill_ms: clickedAt - killedAt, handed_over: handoffs[0].from.reason, bid_attempts: answer.attempts, bid_replayed: answer.replayed === 'true',
    receipt_after_click_ms: receiptMs, page_moved_after_kill_ms: movedMs, page_live_after_kill_ms: liveMs, b_saw_bid_after_click_ms: seenAt - clickedAt,
    countdown_error_after_failover_ms: summary(differences), seen_by_other_ms: summary(latencies), bids: total,
  };
});
