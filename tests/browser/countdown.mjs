/*
 * Scenario (b), the page's countdown agrees with the server's clock: two pages whose
 * browser clocks are wrong on purpose (A +90 s, B -37 s; Date.now() shifted in the page)
 * sync to the cluster NTP-style and count down locally. Twenty readings of each page's
 * displayed remaining time (data-remaining-ms of #countdown) are compared with
 * deadline_ms minus the server time this process measures itself: every difference must
 * stay within 200 ms. While counting, a page sends no request at all (no polling).
 */

import {
  bidderSetting, check, countdownErrors, log, openBidder, run, screenshot, setting, sleep, summary,
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
  return { limit_ms: LIMIT_MS, ...result };
});
