/*
 * Scenario (b), the page's countdown agrees with the server's clock: two pages whose
 * browser clocks are wrong on purpose (A +90 s, B -37 s; Date.now() shifted in the page)
 * sync to the cluster NTP-style and count down locally. Twenty readings of each page's
 * displayed remaining time (data-remaining-ms of #countdown) are compared with
 * deadline_ms minus the server time this process measures itself: every difference must
 * stay within 200 ms. While counting, a page sends no request at all (no polling). Then
 * each page bids: its receipt's time, stamped by the leader, must confirm the page's clock
 * (a confirmation counted, no re-sync, no request besides the bid).
 */

import {
  bidderSetting, check, clickBid, countdownErrors, log, openBidder, receipt, run, screenshot, setting, sleep,
  summary, waitForBidCount,
} from './lib.mjs';

const LIMIT_MS = 200;
const QUIET_WINDOW_MS = 3000;

run('countdown', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const pages = [
    { name: 'A', origin: setting('GAVEL_PAGE_A'), skewMs: 90000, ...bidderSetting('GAVEL_BIDDER_A') },
    { name: 'B', origin: setting('GAVEL_PAGE_B'), skewMs: -37000, ...bidderSetting('GAVEL_BIDDER_B') },
  ];
  const result = {};
  for (const settings of pages) {
    const bidder = await openBidder(browser, { ...settings, auctionId });
    bidders.push(bidder);
    const clock = await bidder.page.evaluate(() => ({
      offset: Number(document.body.dataset.clockOffsetMs), rtt: Number(document.body.dataset.clockRttMs),
    }));
    // Same machine: the true offset is -skew, and NTP's error is at most half the round trip.
    check(Math.abs(clock.offset + settings.skewMs) <= clock.rtt / 2 + 2,
      `${settings.name}: the page's clock offset is ${clock.offset} ms for a browser clock ${settings.skewMs} ms off`);

    let requests = 0;
    const count = () => { requests += 1; };
    bidder.page.on('request', count);
    const text = await bidder.page.evaluate(() => document.getElementById('countdown').textContent);
    await sleep(QUIET_WINDOW_MS);
    const later = await bidder.page.evaluate(() => document.getElementById('countdown').textContent);
    bidder.page.off('request', count);
    check(requests === 0, `${settings.name} sent ${requests} requests in ${QUIET_WINDOW_MS} ms while counting down`);
    check(text !== later, `${settings.name}'s countdown did not move: "${text}" then "${later}"`);

    const differences = await countdownErrors(bidder, settings.origin, auctionId);
    const worst = Math.max(...differences.map(Math.abs));
    log(`${settings.name}: browser clock ${settings.skewMs} ms off, page offset ${clock.offset} ms, `
      + `countdown differences ${JSON.stringify(differences)} ms`);
    check(worst <= LIMIT_MS, `${settings.name}'s countdown is ${worst} ms off the server's (limit ${LIMIT_MS} ms)`);
    await screenshot(bidder, `countdown-bidder-${settings.name.toLowerCase()}`);
    result[settings.name] = {
      browser_clock_skew_ms: settings.skewMs, page_offset_ms: clock.offset, sync_rtt_ms: clock.rtt,
      countdown_error_ms: summary(differences), worst_abs_error_ms: worst, requests_while_counting: requests,
    };
  }
  let seq = 0;
  for (const bidder of bidders) {
    const clockState = () => bidder.page.evaluate(() => ({
      syncs: Number(document.body.dataset.clockSyncs), confirmations: Number(document.body.dataset.clockConfirmations ?? 0),
    }));
    await waitForBidCount(bidder, seq);
    const before = await clockState();
    const requests = [];
    const count = (request) => { requests.push(request.url()); };
    bidder.page.on('request', count);
    await clickBid(bidder);
    seq = (await receipt(bidder, seq)).seq;
    await sleep(300);
    bidder.page.off('request', count);
    const after = await clockState();
    log(`${bidder.name}: bid #${seq}; clock ${JSON.stringify(before)} -> ${JSON.stringify(after)}; requests ${JSON.stringify(requests)}`);
    check(after.confirmations === before.confirmations + 1 && after.syncs === before.syncs,
      `${bidder.name}'s receipt did not confirm its clock: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    check(requests.length === 1, `${bidder.name} sent ${requests.length} requests for one bid: ${requests.join(', ')}`);
    result[bidder.name].receipt_confirmed_clock = true;
  }
  return { limit_ms: LIMIT_MS, ...result };
});
