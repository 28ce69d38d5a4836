/*
 * Scenario: the operator dashboard in Chromium, beside a bidder's page. The operator signs in
 * with the admin token; suspends the live sale from the auctions table and the bidder's page
 * shows it suspended; resumes it and the page shows it listing again; after a bid, changes
 * the increment and the page's prefilled minimum follows; then switches the leader over to
 * another voter and the nodes table follows (the new leader marked, the summary naming it).
 * A wrong token is refused with the sign-in form shown again. Screenshot: dashboard.
 */

import {
  bidderSetting, check, clickBid, log, openBidder, openDashboard, receipt, run, screenshot, setting, sleep, waitFor,
} from './lib.mjs';

const NEW_INCREMENT = 20000;
const VIEWPORT = { width: 1400, height: 1500 };

/** Runs one action of the auctions table's row through its dialog. */
async function act(operator, auctionId, action, { increment } = {}) {
  const button = `#auctions-body tr[data-auction="${auctionId}"] button[data-action="${action}"]`;
  await waitFor(operator.page, (selector) => { const element = document.querySelector(selector); return element && !element.disabled; },
    { arg: button, what: `the ${action} button` });
  await operator.page.click(button);
  if (increment != null) await operator.page.fill('#action-increment', String(increment));
  await operator.page.fill('#action-reason', `dashboard test: ${action}`);
  // An election under way answers no_leader ("retry shortly"): the operator confirms again.
  for (let attempt = 1; ; attempt += 1) {
    await operator.page.click('#action-confirm');
    const outcome = await waitFor(operator.page, () => {
      if (!document.getElementById('action-dialog').open) return 'closed';
      const problem = document.getElementById('action-problem').textContent;
      return problem.includes('no_leader') ? 'no_leader' : null;
    }, { what: `the ${action} dialog to close` });
    if (outcome === 'closed') return;
    check(attempt < 5, `${action}: still no leader after ${attempt} tries`);
    log(`${action}: no leader at the moment; confirming again`);
    await operator.page.evaluate(() => { document.getElementById('action-problem').textContent = ''; });
    await sleep(500);
  }
}

const phaseOf = (bidder) => bidder.page.evaluate(() => document.getElementById('room').dataset.phase);

async function waitForPhase(bidder, phase) {
  const started = Date.now();
  await waitFor(bidder.page, (wanted) => document.getElementById('room').dataset.phase === wanted,
    { arg: phase, what: `the bidder page to show ${phase}` });
  return Date.now() - started;
}

run('dashboard', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const control = setting('GAVEL_CONTROL_A');

  // A wrong token: refused, the form stays.
  const wrong = await openDashboard(browser, control, 'not-the-token', { viewport: VIEWPORT });
  await waitFor(wrong.page, () => document.getElementById('token-message').textContent !== ''
    && !document.getElementById('sign-in').hidden, { what: 'the wrong token to be refused' });
  await wrong.context.close();

  const operator = await openDashboard(browser, control, setting('GAVEL_ADMIN_TOKEN'), { viewport: VIEWPORT });
  bidders.push(operator);
  await waitFor(operator.page, (id) => !document.getElementById('dashboard').hidden
    && document.querySelector(`#auctions-body tr[data-auction="${id}"]`) !== null, { arg: auctionId, what: 'the dashboard' });
  // The dashboard sits on the leader's control listener: one live sale, its timer armed here.
  const actors = await waitFor(operator.page, () => {
    const line = document.getElementById('node-actors');
    return line.dataset.timersArmed === '1' && Number(line.dataset.auctionsLive) >= 1 ? line.textContent : null;
  }, { what: "the leader's actors on the dashboard" });
  log(`node actors: ${actors}`);
  // Every node's actors in the node table: one live sale on each, the timer armed on the leader only.
  const column = await waitFor(operator.page, () => {
    const rows = [...document.querySelectorAll('#nodes-body tr')];
    const texts = rows.map((row) => [row.querySelector('.badge')?.dataset.value, row.cells[6].textContent]);
    const ok = texts.length === 3 && texts.every(([role, text]) => text.startsWith(role === 'leader' ? '1 / 1 / ' : '1 / 0 / '));
    return ok ? JSON.stringify(texts) : null;
  }, { what: "every node's actors in the node table" });
  log(`node table actors: ${column}`);
  const alice = await openBidder(browser, { name: 'A', origin: setting('GAVEL_PAGE_B'), ...bidderSetting('GAVEL_BIDDER_A'), auctionId });
  bidders.push(alice);
  check(await phaseOf(alice) === 'listing', 'the sale is listing');

  await act(operator, auctionId, 'suspend');
  const suspendedMs = await waitForPhase(alice, 'suspended');
  await waitFor(operator.page, (id) => document.querySelector(`#auctions-body tr[data-auction="${id}"] .badge`)?.dataset.value === 'suspended',
    { arg: auctionId, what: 'the table to show the suspension' });
  await act(operator, auctionId, 'resume');
  const resumedMs = await waitForPhase(alice, 'listing');
  log(`suspend shown on the page in ${suspendedMs} ms, resume in ${resumedMs} ms`);

  await clickBid(alice);
  const first = await receipt(alice, 0);
  await act(operator, auctionId, 'increment', { increment: NEW_INCREMENT });
  const minimum = await waitFor(alice.page, (wanted) => Number(document.getElementById('bid-amount').value) === wanted
    && Number(document.getElementById('bid-amount').value), { arg: 1000000 + NEW_INCREMENT, what: 'the page to prefill the new minimum' });
  log(`bid #${first.seq}; after the increment change the page prefills ${minimum}`);

  // Switch the leader over to another voter: the nodes table follows.
  const before = await operator.page.evaluate(() => document.getElementById('cluster-summary').textContent);
  const target = await operator.page.evaluate(() => {
    const summary = document.getElementById('cluster-summary').textContent;
    const leader = Number((summary.match(/leader node (\d+)/) ?? [])[1]);
    const options = [...document.getElementById('switchover-target').options].map((option) => Number(option.value));
    return options.find((id) => id && id !== leader) ?? null;
  });
  check(target != null, `no other voter to switch to (summary "${before}")`);
  await operator.page.selectOption('#switchover-target', String(target));
  let asked = '';
  operator.page.once('dialog', (dialog) => { asked = dialog.message(); dialog.accept(); });
  await operator.page.click('#switchover-form button[type="submit"]');
  const summary = await waitFor(operator.page, (wanted) => {
    const text = document.getElementById('cluster-summary').textContent;
    const leaderRow = [...document.querySelectorAll('#nodes-body tr')]
      .find((row) => row.querySelector('.badge[data-value="leader"]'));
    return text.includes(`leader node ${wanted}`) && leaderRow && Number(leaderRow.cells[0].textContent) === wanted ? text : null;
  }, { arg: target, timeoutMs: 15000, what: `the nodes table to show node ${target} leading` });
  log(`switched over after "${asked}": "${before}" -> "${summary}"`);
  check(asked.includes(`node ${target}`), `the dashboard asked "${asked}" before switching over`);
  await screenshot(operator, 'dashboard');
  return { suspended_shown_ms: suspendedMs, resumed_shown_ms: resumedMs, new_minimum: minimum, leader: target };
});
