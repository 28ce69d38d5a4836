/*
 * Shared helpers of Gavel's real-browser tests (outbid.mjs, countdown.mjs, failover.mjs,
 * sale.mjs, pastcap.mjs, rules11.mjs, hall.mjs, bidderzh.mjs, dashboardzh.mjs).
 *
 * tests/browser.rs starts a real cluster and runs each scenario as
 * `node tests/browser/<scenario>.mjs`, passing the cluster in environment variables:
 *   GAVEL_NODES        every node's public URL, comma-separated
 *   GAVEL_PAGE_A/_B    the node whose page bidder A / B opens
 *   GAVEL_BIDDER_A/_B  "bidder_id:secret"
 *   GAVEL_AUCTION      the auction id
 *   GAVEL_SIGNAL_DIR   where failover.mjs and the Rust side leave signal files
 *   GAVEL_SCREENSHOTS  where screenshots go (default: screenshots/ at the top of the repo)
 *   GAVEL_CONTROL_A    the control URL of page A's node (its operator dashboard)
 *   GAVEL_ADMIN_TOKEN  the operators' token the cluster accepts
 *   GAVEL_EVENT_LISTENERS  every node's events listener URL, comma-separated: the pages
 *                      must open their event streams there and nowhere else
 *   and what a scenario's stage adds (sale.mjs: GAVEL_BIDDER_NUMBER_A, GAVEL_DEPOSIT;
 *   rules11.mjs: GAVEL_AUCTION_SIGNED; hall.mjs: GAVEL_AUCTION_SECOND)
 * Debian's Chromium runs headless (never a downloaded browser). A scenario exits 0 when
 * every check passed; it prints one `RESULT <scenario> <json>` line with its figures.
 */

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function setting(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (tests/browser.rs sets it)`);
  return value;
}

export function bidderSetting(name) {
  const [bidderId, secret] = setting(name).split(':');
  return { bidderId, secret };
}

export const nodes = () => setting('GAVEL_NODES').split(',');
const eventListeners = () => (process.env.GAVEL_EVENT_LISTENERS || '').split(',').filter(Boolean);

/**
 * What is wrong with a page's request to `url`, if anything: it must go to the cluster's
 * nodes, and an event stream to an events listener when the nodes have them (unless
 * `streamsMayLeaveListeners`: a page whose network does not reach them).
 */
export function requestProblem(url, { streamsMayLeaveListeners = false } = {}) {
  const cluster = new Set(nodes().map((node) => new URL(node).origin));
  const listeners = new Set(eventListeners().map((listener) => new URL(listener).origin));
  const stream = /\/events$/.test(url.pathname);
  if (listeners.size && stream && !listeners.has(url.origin) && !streamsMayLeaveListeners) {
    return `an event stream not on an events listener: ${url.href}`;
  }
  // An events listener serves the streams and /healthz (the page's probe whether it is in reach).
  const forListener = stream || url.pathname === '/healthz';
  if (!cluster.has(url.origin) && !(forListener && listeners.has(url.origin))) return `request outside the cluster: ${url.href}`;
  return null;
}
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export function log(message) {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${message}`);
}

/**
 * Puts the cluster's events listeners out of `context`'s reach, as a network that lets
 * only the public port through would: `refuse` answers every connection to them with a
 * refusal, `drop` leaves it hanging. Answers the origins of the event streams the context's
 * pages open from then on, in order.
 */
export async function blockEventListeners(context, how) {
  const listeners = new Set(eventListeners().map((listener) => new URL(listener).origin));
  check(listeners.size > 0, 'the cluster has no events listeners to block');
  await context.route((url) => listeners.has(url.origin), (route) => {
    if (how === 'refuse') return route.abort('connectionrefused');
    return undefined; // dropped: never answered
  });
  const streams = [];
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (/\/events$/.test(url.pathname)) streams.push(url.origin);
  });
  return streams;
}

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Polls `predicate` in the page every 10 ms until it answers something truthy, across
 * navigations (a failover moves the page to another node). Answers that value.
 */
export async function waitFor(page, predicate, { arg, timeoutMs = 10000, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  while (Date.now() < deadline) {
    try {
      const value = await page.evaluate(predicate, arg);
      if (value) return value;
    } catch (error) {
      lastError = error; // the page is navigating: try again
    }
    await sleep(10);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`);
}

/**
 * A bidder in its own browser context: opens the auction room on `origin` (or the list of
 * auctions, then the room from it), signs in through the form and waits until it is live. `skewMs` shifts the browser's Date.now();
 * `locale` sets the browser's languages (Playwright's default, English, unless given);
 * `eventListeners: 'refuse' | 'drop'` puts the events listeners out of its reach
 * (blockEventListeners; the bidder's `streams` lists where its streams went).
 * Every request the page makes must stay inside the cluster; CSP violations and script
 * errors are collected in `problems`.
 */
export async function openBidder(browser, {
  name, origin, bidderId, secret, auctionId, skewMs = 0, viaLobby = false, locale, eventListeners: reach,
}) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, ...(locale ? { locale } : {}) });
  const streams = reach ? await blockEventListeners(context, reach) : [];
  if (skewMs) {
    await context.addInitScript((skew) => {
      const realNow = Date.now.bind(Date);
      Date.now = () => realNow() + skew;
    }, skewMs);
  }
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`${name}: script error: ${error.message}`));
  const consoleErrors = [];
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) problems.push(`${name}: ${message.text()}`);
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('request', (request) => {
    const problem = requestProblem(new URL(request.url()), { streamsMayLeaveListeners: Boolean(reach) });
    if (problem) problems.push(`${name}: ${problem}`);
  });
  try {
    await signInAndEnter(page, { name, origin, bidderId, secret, auctionId, viaLobby, liveWithinMs: reach ? 30000 : 10000 });
  } catch (error) {
    throw new Error(`${error.message}\n  ${name}'s problems: ${problems.join('; ')}\n  ${name}'s console errors: ${consoleErrors.join('; ')}`);
  }
  log(`${name} (${bidderId}) live on node ${await nodeId(page)} at ${origin}`);
  return { name, context, page, problems, streams };
}

async function signInAndEnter(page, { name, origin, bidderId, secret, auctionId, viaLobby, liveWithinMs }) {
  const response = await page.goto(viaLobby ? `${origin}/` : `${origin}/?auction=${encodeURIComponent(auctionId)}`);
  check(response.status() === 200, `${name}: the page answered ${response.status()}`);
  const policy = response.headers()['content-security-policy'] ?? '';
  check(policy.startsWith("default-src 'self'"), `${name}: Content-Security-Policy is "${policy}"`);
  await page.fill('#bidder-id', bidderId);
  await page.fill('#secret', secret);
  await page.click('#sign-in-button');
  await waitFor(page, () => document.body.dataset.signedIn === 'true', { what: `${name} signed in` });
  if (viaLobby) {
    const link = `#auction-list tr[data-auction-id="${auctionId}"] a`;
    await waitFor(page, (selector) => document.querySelector(selector) !== null, { arg: link, what: `${name}'s auction list` });
    await page.click(link);
  }
  await waitForLive(page, name, liveWithinMs);
}

/**
 * The operator's dashboard on `origin` in a browser context of its own (`viewport`,
 * `locale`), signed in with `token` through its form; script errors and CSP violations
 * collected in `problems`.
 */
export async function openDashboard(browser, origin, token, { viewport = { width: 1200, height: 1400 }, locale } = {}) {
  const context = await browser.newContext({ viewport, ...(locale ? { locale } : {}) });
  const page = await context.newPage();
  const operator = { name: 'operator', context, page, problems: [] };
  page.on('pageerror', (error) => operator.problems.push(`operator: script error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) operator.problems.push(`operator: ${message.text()}`);
  });
  await page.goto(`${origin}/`);
  await page.fill('#token-input', token);
  await page.click('#token-form button[type="submit"]');
  return operator;
}

export async function waitForLive(page, name, timeoutMs = 10000) {
  await waitFor(page, () => document.body.dataset.connection === 'live'
    && document.getElementById('room').dataset.bidCount !== undefined, { timeoutMs, what: `${name} live` });
}

export const nodeId = (page) => page.evaluate(() => Number(document.body.dataset.nodeId));
export const bidCount = (page) => page.evaluate(() => Number(document.getElementById('room').dataset.bidCount));

/** Waits until the page lists bid `seq` in its history; answers when (Date.now()) it did. */
export async function waitForBid(bidder, seq, timeoutMs = 5000) {
  await waitFor(bidder.page, (wanted) => document.querySelector(`#history li[data-seq="${wanted}"]`) !== null,
    { arg: seq, timeoutMs, what: `${bidder.name} to show bid #${seq}` });
  return Date.now();
}

/** Waits until the page's view counts `count` bids (so its prefilled minimum is current). */
export async function waitForBidCount(bidder, count, timeoutMs = 5000) {
  await waitFor(bidder.page, (wanted) => Number(document.getElementById('room').dataset.bidCount) >= wanted,
    { arg: count, timeoutMs, what: `${bidder.name} to count ${count} bids` });
}

/** Clicks Bid (the prefilled minimum). Answers { seq, clickedAt }; use receipt() to wait. */
export async function clickBid(bidder) {
  const clickedAt = Date.now();
  await bidder.page.click('#bid-button');
  return clickedAt;
}

/** Waits for the receipt of a bid whose seq is greater than `afterSeq`; answers the bid status. */
export async function receipt(bidder, afterSeq, timeoutMs = 10000) {
  const status = await waitFor(bidder.page, (after) => {
    const element = document.getElementById('bid-status');
    const state = element.dataset.state;
    if (state === 'refused') return { refused: element.textContent };
    if (state === 'accepted' && Number(element.dataset.receiptSeq) > after) return { ...element.dataset };
    return null;
  }, { arg: afterSeq, timeoutMs, what: `${bidder.name}'s receipt` });
  check(!status.refused, `${bidder.name}'s bid was refused: ${status.refused}`);
  return { ...status, seq: Number(status.receiptSeq), attempts: Number(status.attempts) };
}

/**
 * Compares the page's countdown with the server's: `samples` readings of the page's
 * data-remaining-ms against deadline_ms minus the server time (from this process's own
 * NTP-style sync). Answers the differences in ms.
 */
export async function countdownErrors(bidder, origin, auctionId, samples = 20) {
  const offset = await serverOffset(origin);
  const auction = await (await fetch(`${origin}/api/v1/auctions/${auctionId}`)).json();
  const differences = [];
  for (let sample = 0; sample < samples; sample += 1) {
    const before = Date.now();
    const shown = await bidder.page.evaluate(() => ({
      remaining: Number(document.getElementById('countdown').dataset.remainingMs),
      deadline: Number(document.getElementById('countdown').dataset.deadlineMs),
      text: document.getElementById('countdown').textContent,
    }));
    const after = Date.now();
    check(shown.deadline === auction.deadline_ms, `${bidder.name} counts to ${shown.deadline}, the server to ${auction.deadline_ms}`);
    const expected = auction.deadline_ms - ((before + after) / 2 + offset);
    differences.push(Math.round(shown.remaining - expected));
    await sleep(50);
  }
  return differences;
}

/** This process's clock offset to a node: the five-sample, smallest-round-trip estimate. */
export async function serverOffset(origin) {
  let best = null;
  for (let sample = 0; sample < 5; sample += 1) {
    const t0 = Date.now();
    const body = await (await fetch(`${origin}/api/v1/time`, { cache: 'no-store' })).json();
    const t1 = Date.now();
    if (!best || t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: body.server_time_ms - (t0 + t1) / 2 };
  }
  return best.offset;
}

export async function screenshot(bidder, label) {
  const directory = process.env.GAVEL_SCREENSHOTS || path.join(REPO, 'screenshots');
  fs.mkdirSync(directory, { recursive: true });
  const file = path.join(directory, `${label}.png`);
  await bidder.page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

export const summary = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1) };
};

/** Runs a scenario: closes the browser, reports collected problems, sets the exit code. */
export async function run(name, scenario) {
  const browser = await launch();
  const bidders = [];
  try {
    const result = await scenario(browser, bidders);
    const problems = bidders.flatMap((bidder) => bidder.problems);
    check(problems.length === 0, `the pages reported problems:\n  ${problems.join('\n  ')}`);
    console.log(`RESULT ${name} ${JSON.stringify(result)}`);
  } catch (error) {
    console.error(`${name} FAILED: ${error.stack ?? error}`);
    for (const bidder of bidders) {
      await screenshot(bidder, `${name}-failed-${bidder.name}`).catch(() => {});
      const state = await bidder.page.evaluate(() => ({ url: location.href, body: { ...document.body.dataset },
        status: document.getElementById('bid-status').textContent })).catch((stateError) => String(stateError));
      console.error(`${bidder.name} page state: ${JSON.stringify(state)}`);
    }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
