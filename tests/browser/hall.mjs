/*
 * Scenario: the bidding-hall screen (/hall) on a 1920×1080 display in a Chinese browser.
 * Two live sales. The screen must show both with their Chinese phase names, prices in 万元,
 * countdowns that agree with the server's clock within 300 ms; follow a bid placed on a
 * bidder's page (new price, leading bidder number, the bid on top of the last bids) within
 * two seconds; announce an operator's suspension; never show who bids; and switch to
 * English. Screenshots: hall-1920x1080 (Chinese, after the bid) and hall-english.
 */

import {
  bidderSetting, check, clickBid, log, openBidder, receipt, requestProblem, run, serverOffset, setting, sleep, waitFor,
} from './lib.mjs';
import fs from 'node:fs';
import path from 'node:path';

const COUNTDOWN_LIMIT_MS = 300;
const FOLLOW_LIMIT_MS = 2000;

async function openHall(browser, origin, problems) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`hall: script error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) problems.push(`hall: ${message.text()}`);
  });
  page.on('request', (request) => {
    const problem = requestProblem(new URL(request.url()));
    if (problem) problems.push(`hall: ${problem}`);
  });
  const response = await page.goto(`${origin}/hall`);
  check(response.status() === 200, `/hall answered ${response.status()}`);
  check((response.headers()['content-security-policy'] ?? '').startsWith("default-src 'self'"), 'the hall has a CSP');
  return page;
}

const sales = (page) => page.evaluate(() => [...document.querySelectorAll('article.sale')].map((element) => ({
  id: element.dataset.id, phase: element.dataset.phase, price: Number(element.dataset.price),
  leader: element.dataset.leader, bidCount: Number(element.dataset.bidCount), remainingMs: Number(element.dataset.remainingMs),
  phaseText: element.querySelector('.sale-phase').textContent, priceText: element.querySelector('.sale-price').textContent,
  firstBid: element.querySelector('.sale-bids li')?.textContent ?? '',
})));

async function shot(page, label) {
  const directory = process.env.GAVEL_SCREENSHOTS;
  fs.mkdirSync(directory, { recursive: true });
  const file = path.join(directory, `${label}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${file}`);
}

run('hall', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const second = setting('GAVEL_AUCTION_SECOND');
  const origin = setting('GAVEL_PAGE_A');
  const problems = [];
  const hall = await openHall(browser, origin, problems);
  await waitFor(hall, (count) => document.querySelectorAll('article.sale').length >= count
    && document.body.dataset.connection === 'live' && Number(document.body.dataset.clockSyncs) >= 1,
  { arg: 2, what: 'the hall to show two live sales' });
  check(await hall.evaluate(() => document.body.dataset.language) === 'zh', 'a Chinese browser gets the Chinese screen');
  let shown = await sales(hall);
  log(`hall: ${JSON.stringify(shown)}`);
  for (const id of [auctionId, second]) {
    const sale = shown.find((candidate) => candidate.id === id);
    check(sale, `the hall shows ${id}`);
    check(sale.phaseText === '挂牌', `${id}'s phase reads "${sale.phaseText}", not 挂牌`);
    check(sale.priceText === '100 万元', `${id}'s start price reads "${sale.priceText}", not 100 万元`);
  }

  // The countdowns run on the server's clock.
  const offset = await serverOffset(origin);
  const differences = [];
  for (let reading = 0; reading < 10; reading += 1) {
    const [sale, view] = await Promise.all([
      hall.evaluate((id) => Number(document.querySelector(`article.sale[data-id="${id}"]`).dataset.remainingMs), auctionId),
      fetch(`${origin}/api/v1/auctions/${auctionId}`).then((answer) => answer.json()),
    ]);
    differences.push(sale - (view.deadline_ms - (Date.now() + offset)));
    await sleep(100);
  }
  const worst = Math.max(...differences.map(Math.abs));
  log(`hall countdown differences ${JSON.stringify(differences)} ms`);
  check(worst <= COUNTDOWN_LIMIT_MS, `the hall's countdown is ${worst} ms off the server's`);

  // A bid on a bidder's page shows on the hall.
  const alice = await openBidder(browser, { name: 'A', origin: setting('GAVEL_PAGE_B'), ...bidderSetting('GAVEL_BIDDER_A'), auctionId });
  bidders.push(alice);
  await clickBid(alice);
  const accepted = await receipt(alice, 0);
  const number = await alice.page.evaluate(() => document.getElementById('standing').dataset.bidderNumber);
  const bidAt = Date.now();
  await waitFor(hall, ({ id, seq }) => {
    const element = document.querySelector(`article.sale[data-id="${id}"]`);
    return Number(element.dataset.bidCount) >= 1 && element.querySelector(`.sale-bids li[data-seq="${seq}"]`) !== null;
  }, { arg: { id: auctionId, seq: accepted.seq }, timeoutMs: FOLLOW_LIMIT_MS + 3000, what: 'the hall to show the bid' });
  const followedMs = Date.now() - bidAt;
  shown = await sales(hall);
  const sale = shown.find((candidate) => candidate.id === auctionId);
  log(`hall after the bid (${followedMs} ms): ${JSON.stringify(sale)}`);
  check(followedMs <= FOLLOW_LIMIT_MS, `the hall showed the bid ${followedMs} ms after its receipt`);
  check(sale.priceText === '100 万元' && sale.price === 1000000, `the price after the first bid (at the start price) reads "${sale.priceText}"`);
  check(sale.leader === number, `the leader shows as ${sale.leader}, the bidder's number is ${number}`);
  check(sale.firstBid.includes(`竞买号 ${number}`) && sale.firstBid.includes('100 万元'), `the last bid reads "${sale.firstBid}"`);
  const text = await hall.evaluate(() => document.body.innerText);
  for (const identity of ['alice', 'bob']) check(!text.includes(identity), `the hall shows the bidder id ${identity}`);
  await shot(hall, 'hall-1920x1080');

  // An operator suspends the second sale: the hall announces it.
  const control = setting('GAVEL_CONTROL_A');
  const suspended = await fetch(`${control}/control/v1/auctions/${second}/suspend`, {
    method: 'POST', headers: { authorization: `Bearer ${setting('GAVEL_ADMIN_TOKEN')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'hall screen test' }),
  });
  check(suspended.status === 200, `suspend answered ${suspended.status}`);
  const announcement = await waitFor(hall, () => {
    const banner = document.getElementById('announcement');
    return !banner.hidden && banner.dataset.phaseChange === 'suspended' ? banner.textContent : null;
  }, { what: 'the hall to announce the suspension' });
  log(`hall announced: ${announcement}`);
  check(announcement.includes('暂停'), `the announcement reads "${announcement}"`);

  // The screen switches to English and stays so.
  await hall.goto(`${origin}/hall?lang=en`);
  await waitFor(hall, () => document.querySelectorAll('article.sale').length >= 2 && document.body.dataset.connection === 'live',
    { what: 'the English hall' });
  shown = await sales(hall);
  const english = shown.find((candidate) => candidate.id === auctionId);
  check(english.phaseText === 'listing' && english.priceText === '¥1,000,000', `in English: ${JSON.stringify(english)}`);
  await hall.goto(`${origin}/hall`);
  await waitFor(hall, () => document.body.dataset.language === 'en', { what: 'the language remembered' });
  await shot(hall, 'hall-english');
  check(problems.length === 0, `the hall reported problems: ${problems.join('; ')}`);
  return { countdown_worst_ms: worst, followed_ms: followedMs, announcement };
});
