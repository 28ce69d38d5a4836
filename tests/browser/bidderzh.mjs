/*
 * Scenario: the bidder page in Chinese first, English on request. Bidder A opens the room in
 * a Chinese browser (zh-CN): the page is Chinese (<html lang="zh-CN">, phase 挂牌, price in
 * 万元, the parcel in 平方米, the standing with 竞买号), A ticks the outbid alert and bids
 * (领先); bidder B, in an English browser (en-US), gets the English page and outbids A. A's
 * page then says 已被超越 and flashes its title (【已被超越】…) until A bids again; a bid typed
 * below the minimum is refused with the Chinese message; the header's "English" link
 * switches A's page to English, keeping the auction, and the choice is remembered.
 * Screenshots: bidder-zh (A leading again, Chinese) and bidder-en.
 */

import {
  bidderSetting, check, clickBid, log, openBidder, receipt, run, screenshot, setting, waitFor, waitForBidCount,
  waitForLive,
} from './lib.mjs';

const MARK = '【已被超越】';

/** What the room shows, as text. */
const shown = (bidder) => bidder.page.evaluate(() => {
  const text = (id) => document.getElementById(id).textContent;
  return {
    lang: document.documentElement.lang, title: document.title, phase: text('phase'), price: text('current-price'),
    parcel: text('room-parcel'), number: text('standing-number'), lead: text('standing-lead'),
    minimum: text('standing-minimum'), minimumAmount: document.getElementById('standing-minimum').dataset.amount,
    rules: text('rules-list'), english: document.getElementById('language-en').getAttribute('href'),
    chinese: document.getElementById('language-zh').getAttribute('href'), body: document.body.innerText,
  };
});

/** Waits until the page's standing says `state` (leading, outbid); answers its text. */
const standing = (bidder, state) => waitFor(bidder.page, (wanted) => {
  const lead = document.getElementById('standing-lead');
  return !document.getElementById('standing').hidden && lead.dataset.state === wanted ? lead.textContent : null;
}, { arg: state, timeoutMs: 5000, what: `${bidder.name}'s standing to read ${state}` });

/** Waits until the bid status leaves `refused` (a new bid is on its way). */
const sent = (bidder) => waitFor(bidder.page, () => document.getElementById('bid-status').dataset.state !== 'refused',
  { what: `${bidder.name}'s new bid under way` });

run('bidderzh', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const originA = setting('GAVEL_PAGE_A');
  const a = await openBidder(browser, {
    name: 'A', origin: originA, auctionId, locale: 'zh-CN', ...bidderSetting('GAVEL_BIDDER_A'),
  });
  bidders.push(a);

  // A Chinese browser gets the Chinese page.
  await waitFor(a.page, () => document.getElementById('standing-number').textContent.includes('竞买号'),
    { what: "A's standing with its bidder number" });
  let page = await shown(a);
  log(`A (zh) before bidding: ${JSON.stringify({ ...page, body: undefined, rules: undefined })}`);
  check(page.lang === 'zh-CN', `A's page is in "${page.lang}"`);
  check(page.phase === '挂牌', `A's phase reads "${page.phase}", not 挂牌`);
  check(page.price === '100 万元', `A's price reads "${page.price}", not 100 万元`);
  check(page.parcel.includes('面积 12,000 平方米') && page.parcel.includes('用途 住宅'), `A's parcel reads "${page.parcel}"`);
  check(/^您的竞买号：\d+$/.test(page.number), `A's standing reads "${page.number}"`);
  check(page.minimum === '下一口最低应价：100 万元', `A's minimum reads "${page.minimum}"`);
  check(page.rules.includes('加价幅度 1 万元'), `A's rules read "${page.rules}"`);
  check(page.english === `/?auction=${auctionId}&lang=en` && page.chinese === `/?auction=${auctionId}&lang=zh`,
    `the language links are ${page.chinese} and ${page.english}`);
  for (const raw of ['area_m2', 'listing', 'timed_bidding', 'bidder ', 'Bid history']) {
    check(!page.body.includes(raw), `A's Chinese page shows "${raw}"`);
  }

  // A ticks the outbid alert and bids: A leads.
  await a.page.check('#outbid-alert');
  check(await a.page.evaluate(() => document.body.dataset.outbidAlert) === 'on', 'the alert is on once ticked');
  await clickBid(a);
  const first = await receipt(a, 0);
  const leading = await standing(a, 'leading');
  check(leading.includes('领先'), `A's standing reads "${leading}"`);
  const status = await a.page.evaluate(() => document.getElementById('bid-status').textContent);
  check(status.startsWith('出价成功') && status.includes('100 万元'), `A's receipt status reads "${status}"`);

  // B, in an English browser, gets the English page and outbids A.
  const b = await openBidder(browser, {
    name: 'B', origin: setting('GAVEL_PAGE_B'), auctionId, locale: 'en-US', ...bidderSetting('GAVEL_BIDDER_B'),
  });
  bidders.push(b);
  await waitForBidCount(b, 1);
  const english = await shown(b);
  check(english.lang === 'en' && english.phase === 'listing' && english.price === '¥1,000,000',
    `B's page: ${JSON.stringify({ lang: english.lang, phase: english.phase, price: english.price })}`);
  await clickBid(b);
  await receipt(b, first.seq);

  // A is outbid: the standing says so and the title flashes.
  const outbid = await standing(a, 'outbid');
  check(outbid.includes('已被超越') && outbid.includes('101 万元'), `A's standing reads "${outbid}"`);
  const flashed = await waitFor(a.page, (mark) => (document.body.dataset.outbidAlert === 'flashing'
    && document.title.startsWith(mark) ? document.title : null), { arg: MARK, timeoutMs: 3000, what: "A's title to flash" });
  await waitFor(a.page, (mark) => !document.title.startsWith(mark), { arg: MARK, timeoutMs: 3000, what: "A's title to flash back" });
  await waitFor(a.page, (mark) => document.title.startsWith(mark), { arg: MARK, timeoutMs: 3000, what: "A's title to flash again" });
  const beeps = await a.page.evaluate(() => document.body.dataset.outbidBeeps ?? '0');
  log(`A's title flashes "${flashed}" (beeps: ${beeps})`);
  check(flashed.includes('苏地2026-WG-17号地块'), `A's flashing title is "${flashed}"`);

  // A types a bid below the minimum: refused, in Chinese; the alert stops as A bids.
  await waitForBidCount(a, 2);
  await a.page.fill('#bid-amount', '1000000');
  await a.page.click('#bid-button');
  const refusal = await waitFor(a.page, () => {
    const element = document.getElementById('bid-status');
    return element.dataset.state === 'refused' ? { code: element.dataset.code, text: element.textContent } : null;
  }, { what: "A's refusal" });
  log(`A's refusal: ${JSON.stringify(refusal)}`);
  check(refusal.code === 'below_minimum' && refusal.text.startsWith('报价低于最低应价'), `A's refusal reads "${refusal.text}"`);
  const afterBid = await a.page.evaluate(() => ({ alert: document.body.dataset.outbidAlert, title: document.title }));
  check(afterBid.alert === 'on' && !afterBid.title.startsWith(MARK), `after bidding, A's alert is ${JSON.stringify(afterBid)}`);

  // A bids the minimum and leads again.
  page = await shown(a);
  check(page.minimum === '下一口最低应价：102 万元', `A's minimum reads "${page.minimum}"`);
  await a.page.fill('#bid-amount', page.minimumAmount);
  await a.page.click('#bid-button');
  await sent(a);
  await receipt(a, 2);
  await standing(a, 'leading');
  await screenshot(a, 'bidder-zh');

  // The header's switch: English, keeping the auction; remembered.
  await a.page.click('#language-en');
  await waitForLive(a.page, 'A (en)');
  await waitFor(a.page, () => document.getElementById('standing-lead').dataset.state === 'leading',
    { what: "A's English standing" });
  page = await shown(a);
  log(`A (en): ${JSON.stringify({ ...page, body: undefined, rules: undefined })}`);
  check(page.lang === 'en' && page.phase === 'listing' && page.price === '¥1,020,000', `A in English: ${page.lang}, ${page.phase}, ${page.price}`);
  check(page.number.includes('You are bidder') && page.lead.startsWith('You lead'), `A's English standing: ${page.number} / ${page.lead}`);
  check(new URL(a.page.url()).searchParams.get('auction') === auctionId, `the switch kept the auction: ${a.page.url()}`);
  await screenshot(a, 'bidder-en');
  await a.page.goto(`${originA}/?auction=${encodeURIComponent(auctionId)}`);
  await waitForLive(a.page, 'A (remembered)');
  check(await a.page.evaluate(() => document.documentElement.lang) === 'en', 'the English choice is remembered');
  return { outbid_title: flashed, refusal: refusal.text, beeps: Number(beeps) };
});
