/*
 * Scenario: the operator dashboard in Chinese first, English on request. The operator opens
 * the dashboard in a Chinese browser (zh-CN) and signs in with the admin token: the page is
 * Chinese (<html lang="zh-CN">, the sale's phase 挂牌, the increment in 万元, the nodes
 * table's roles 主节点 / 从节点, the parcel in 平方米); suspends the sale through the action
 * dialog (titled 暂停竞价) and resumes it (恢复竞价), the table following with 暂停 and 挂牌
 * while the badges keep the API's words; then the header's "English" link switches the page
 * to English, still signed in, and the choice is remembered. Screenshot: dashboard-zh.
 */

import {
  check, log, openDashboard, run, screenshot, setting, waitFor,
} from './lib.mjs';

/** What the dashboard shows of the sale and the cluster, as text. */
const shown = (operator, auctionId) => operator.page.evaluate((id) => {
  const row = document.querySelector(`#auctions-body tr[data-auction="${id}"]`);
  const badge = row?.querySelector('.badge');
  return {
    lang: document.documentElement.lang,
    title: document.title,
    phase: badge?.dataset.value, phaseText: badge?.textContent,
    increment: row?.cells[5].textContent,
    summary: document.getElementById('cluster-summary').textContent,
    roles: [...document.querySelectorAll('#nodes-body tr')].map((node) => {
      const role = node.cells[2].querySelector('.badge');
      return `${role.dataset.value}:${role.textContent}`;
    }),
    rules: document.getElementById('sale-rules').textContent,
    heading: document.querySelector('#auctions-panel h2').textContent,
    suspendButton: row?.querySelector('button[data-action="suspend"]').textContent,
  };
}, auctionId);

/** Runs suspend or resume through the row's dialog; answers the dialog's title. */
async function act(operator, auctionId, action, reason) {
  const button = `#auctions-body tr[data-auction="${auctionId}"] button[data-action="${action}"]`;
  await waitFor(operator.page, (selector) => { const element = document.querySelector(selector); return element && !element.disabled; },
    { arg: button, what: `the ${action} button` });
  await operator.page.click(button);
  const title = await operator.page.evaluate(() => document.getElementById('action-title').textContent);
  await operator.page.fill('#action-reason', reason);
  await operator.page.click('#action-confirm');
  await waitFor(operator.page, () => !document.getElementById('action-dialog').open, { what: `the ${action} dialog to close` });
  return title;
}

const phaseShown = (operator, auctionId, phase) => waitFor(operator.page, ({ id, wanted }) => {
  const badge = document.querySelector(`#auctions-body tr[data-auction="${id}"] .badge`);
  return badge?.dataset.value === wanted ? badge.textContent : null;
}, { arg: { id: auctionId, wanted: phase }, what: `the table to show ${phase}` });

run('dashboardzh', async (browser, bidders) => {
  const auctionId = setting('GAVEL_AUCTION');
  const control = setting('GAVEL_CONTROL_A');
  const operator = await openDashboard(browser, control, setting('GAVEL_ADMIN_TOKEN'), {
    viewport: { width: 1400, height: 1500 }, locale: 'zh-CN',
  });
  bidders.push(operator);
  await waitFor(operator.page, (id) => !document.getElementById('dashboard').hidden
    && document.querySelector(`#auctions-body tr[data-auction="${id}"]`) !== null
    && document.querySelectorAll('#nodes-body tr').length === 3, { arg: auctionId, what: 'the dashboard' });
  await waitFor(operator.page, (id) => [...document.getElementById('sale-auction').options].some((option) => option.value === id),
    { arg: auctionId, what: 'the sale panel to list the auction' });
  await operator.page.selectOption('#sale-auction', auctionId);
  await waitFor(operator.page, () => document.getElementById('sale-rules').textContent.includes('平方米'),
    { what: 'the sale panel to describe the parcel' });

  // A Chinese browser gets the Chinese dashboard.
  let page = await shown(operator, auctionId);
  log(`the dashboard in Chinese: ${JSON.stringify(page)}`);
  check(page.lang === 'zh-CN', `the dashboard is in "${page.lang}"`);
  check(page.title.includes('运维控制台'), `the title reads "${page.title}"`);
  check(page.phase === 'listing' && page.phaseText === '挂牌', `the phase badge reads ${page.phase}:"${page.phaseText}"`);
  check(page.increment === '1 万元', `the increment reads "${page.increment}", not 1 万元`);
  check(page.heading === '竞价场次', `the auctions panel is headed "${page.heading}"`);
  check(page.suspendButton === '暂停', `the suspend button reads "${page.suspendButton}"`);
  check(page.roles.filter((role) => role === 'leader:主节点').length === 1, `the nodes' roles read ${page.roles}`);
  check(page.roles.filter((role) => role === 'follower:从节点').length === 2, `the nodes' roles read ${page.roles}`);
  check(/主节点：节点 \d+/.test(page.summary), `the cluster summary reads "${page.summary}"`);
  check(page.rules.includes('面积 12,000 平方米') && page.rules.includes('用途 住宅'), `the sale's rules read "${page.rules}"`);

  // Suspend and resume through the Chinese dialog.
  const suspendTitle = await act(operator, auctionId, 'suspend', '测试：暂停竞价');
  check(suspendTitle === `暂停竞价 · ${auctionId}`, `the suspend dialog is titled "${suspendTitle}"`);
  const suspended = await phaseShown(operator, auctionId, 'suspended');
  check(suspended === '暂停', `the suspended badge reads "${suspended}"`);
  const message = await operator.page.evaluate(() => document.querySelector('#messages li span').textContent);
  check(message.startsWith(`已暂停竞价（${auctionId}）`), `the message reads "${message}"`);
  const resumeTitle = await act(operator, auctionId, 'resume', '测试：恢复竞价');
  check(resumeTitle === `恢复竞价 · ${auctionId}`, `the resume dialog is titled "${resumeTitle}"`);
  const listing = await phaseShown(operator, auctionId, 'listing');
  check(listing === '挂牌', `the resumed badge reads "${listing}"`);
  log(`suspended ("${suspendTitle}") and resumed ("${resumeTitle}") from the Chinese dashboard`);
  await screenshot(operator, 'dashboard-zh');

  // The header's switch: English, still signed in, and remembered.
  const englishLink = await operator.page.evaluate(() => document.getElementById('language-en').getAttribute('href'));
  check(englishLink === '/?lang=en', `the English link is "${englishLink}"`);
  await operator.page.click('#language-en');
  await waitFor(operator.page, (id) => document.documentElement.lang === 'en' && !document.getElementById('dashboard').hidden
    && document.querySelector(`#auctions-body tr[data-auction="${id}"] .badge`)?.textContent === 'listing'
    && document.getElementById('cluster-summary').textContent.includes('leader node'),
  { arg: auctionId, what: 'the English dashboard' });
  page = await shown(operator, auctionId);
  log(`the dashboard in English: ${JSON.stringify({ ...page, rules: undefined })}`);
  check(page.increment === '¥10,000', `the English increment reads "${page.increment}"`);
  check(page.heading === 'Auctions', `the English auctions panel is headed "${page.heading}"`);
  check(page.roles.includes('leader:leader'), `the English roles read ${page.roles}`);
  await operator.page.goto(`${control}/`);
  await waitFor(operator.page, () => document.documentElement.lang === 'en'
    && document.getElementById('cluster-summary').textContent.includes('leader node'),
  { what: 'the English dashboard, remembered' });
  return { phase_zh: listing, increment_zh: '1 万元', dialog_zh: suspendTitle };
});
