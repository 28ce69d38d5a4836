/*
 * Scenario (f), the 1.1 rules on the page: secondary bidding and signed bids.
 *
 * Secondary bidding (GAVEL_AUCTION, cap_mode secondary): alice bids the start price on her
 * page, bob reaches the price cap on his; both pages then show the second quantity with its
 * label and unit and count its deadline down, the price form gives way to the secondary
 * form, and each bidder bids on it from the page (unsigned). Each page lists both secondary
 * bids in its history with the unit; a reloaded page lists them again (the stream's
 * connect), and the dashboard shows the second quantity's value, leader and unit.
 *
 * Signed bids (GAVEL_AUCTION_SIGNED, require_signed_bids): this script makes an Ed25519
 * key pair for each bidder and registers the public keys on the control listener. Both
 * pages say the sale takes signed bids only; alice's Bid without a key is refused on the
 * page; she loads her PKCS#8 PEM and her bid goes out signed under her key's id; bob loads a
 * key the auctioneer never registered (refused by the node: bad_signature, and he stays
 * signed in), then his registered key as a base64 seed, and bids. Alice then forgets her
 * key, signs the text her page shows with this script's own Ed25519, pastes the signature,
 * and the node takes that bid too. No request and no storage of either page ever holds a
 * private key. The dashboard lists each bid signed by its key id.
 */

import crypto from 'node:crypto';

import {
  bidderSetting, check, clickBid, log, openBidder, openDashboard, receipt, run, screenshot, setting, waitFor, waitForBid,
  waitForBidCount, waitForLive,
} from './lib.mjs';

const CAP = 1020000;
const UNIT = 'm²';
const LABEL = 'self-held floor area';

/** Waits for the bid status to settle on a new answer; answers its dataset and text. */
async function bidAnswer(bidder, what) {
  return waitFor(bidder.page, () => {
    const status = document.getElementById('bid-status');
    return ['accepted', 'refused'].includes(status.dataset.state) ? { ...status.dataset, text: status.textContent } : null;
  }, { what: `${bidder.name}'s answer to ${what}` });
}

async function clearStatus(bidder) {
  await bidder.page.evaluate(() => { document.getElementById('bid-status').dataset.state = 'idle'; });
}

/** The operator's dashboard on `origin`, signed in with the admin token, on `auctionId`. */
async function openSaleDashboard(browser, origin, auctionId) {
  const operator = await openDashboard(browser, origin, setting('GAVEL_ADMIN_TOKEN'), { viewport: { width: 1200, height: 1600 } });
  await chooseAuction(operator, auctionId);
  return operator;
}

async function chooseAuction(operator, auctionId) {
  await waitFor(operator.page, (id) => [...document.getElementById('sale-auction').options].some((option) => option.value === id),
    { arg: auctionId, what: `the dashboard to list ${auctionId}` });
  await operator.page.selectOption('#sale-auction', auctionId);
}

/** Registers a new Ed25519 key pair for `bidderId`; answers the key, its PEM, seed and key id. */
async function registeredKey(bidderId) {
  const pair = crypto.generateKeyPairSync('ed25519');
  const publicRaw = pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const response = await fetch(`${setting('GAVEL_CONTROL_A')}/control/v1/bidders/${bidderId}/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${setting('GAVEL_ADMIN_TOKEN')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ algorithm: 'ed25519', public_key: publicRaw.toString('base64') }),
  });
  const answer = await response.json();
  check(response.status === 201, `registering ${bidderId}'s key: ${response.status} ${JSON.stringify(answer)}`);
  return { ...keyForms(pair.privateKey), keyId: answer.key_id, privateKey: pair.privateKey };
}

function keyForms(privateKey) {
  return {
    pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    seed: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32).toString('base64'),
  };
}

async function loadKey(bidder, text) {
  await bidder.page.evaluate(() => { document.getElementById('signing-details').open = true; });
  await bidder.page.fill('#signing-key', text);
  await bidder.page.click('#signing-load');
  return waitFor(bidder.page, () => {
    const status = document.getElementById('signing-status');
    return status.dataset.state !== 'none' ? { ...status.dataset, text: status.textContent } : null;
  }, { what: `${bidder.name}'s key loaded` });
}

/** Fails the page's bidder if any request it sends carries one of `secrets`. */
function guardSecrets(bidder, secrets) {
  bidder.page.on('request', (request) => {
    const sent = `${request.url()}\n${request.postData() ?? ''}\n${JSON.stringify(request.headers())}`;
    if (secrets.some((secret) => sent.includes(secret))) bidder.problems.push(`${bidder.name}: a request carried a private key`);
  });
}

async function secondaryScenario(browser, bidders) {
  const auctionId = setting('GAVEL_AUCTION');
  const a = await openBidder(browser, { name: 'A', origin: setting('GAVEL_PAGE_A'), auctionId, ...bidderSetting('GAVEL_BIDDER_A') });
  bidders.push(a);
  const b = await openBidder(browser, { name: 'B', origin: setting('GAVEL_PAGE_B'), auctionId, ...bidderSetting('GAVEL_BIDDER_B') });
  bidders.push(b);
  const rules = await a.page.evaluate(() => document.getElementById('rules-list').textContent);
  check(rules.includes(LABEL) && rules.includes(UNIT), `A's rules read "${rules}"`);

  // Alice bids the start price; bob reaches the cap: secondary bidding opens on both pages.
  await clickBid(a);
  await receipt(a, 0);
  await waitForBidCount(b, 1);
  await b.page.fill('#bid-amount', String(CAP));
  await b.page.click('#bid-button');
  await receipt(b, 1);
  for (const bidder of [a, b]) {
    await waitFor(bidder.page, () => document.getElementById('secondary').dataset.phase === 'secondary_bidding'
      && !document.getElementById('secondary').hidden && !document.getElementById('secondary-form').hidden,
    { what: `${bidder.name}'s secondary bidding form` });
    const shown = await bidder.page.evaluate(() => ({
      title: document.getElementById('secondary-title').textContent,
      unit: document.getElementById('secondary-unit').textContent,
      minimum: document.getElementById('secondary-amount').value,
      priceFormHidden: document.getElementById('bid-form').hidden,
      remaining: Number(document.getElementById('secondary-countdown').dataset.remainingMs),
    }));
    check(shown.title.includes(LABEL) && shown.unit === UNIT && shown.minimum === '100' && shown.priceFormHidden,
      `${bidder.name}'s secondary panel: ${JSON.stringify(shown)}`);
    const view = await (await fetch(`${setting('GAVEL_PAGE_A')}/api/v1/auctions/${auctionId}`)).json();
    const expected = view.deadline_ms - view.server_time_ms;
    check(shown.remaining > 0 && Math.abs(shown.remaining - expected) < 5000,
      `${bidder.name} counts ${shown.remaining} ms of secondary bidding, the node ${expected}`);
  }

  // Alice bids the start of the second quantity, bob one increment more (unsigned).
  await clearStatus(a);
  await a.page.click('#secondary-button');
  const first = await bidAnswer(a, 'her secondary bid');
  check(first.state === 'accepted' && first.secondarySeq === '1' && first.text.includes(UNIT), `A's secondary bid: ${JSON.stringify(first)}`);
  await waitFor(b.page, () => document.getElementById('secondary-current').dataset.amount === '100'
    && document.getElementById('secondary-amount').value === '110', { what: "B's page to show 100 and offer 110" });
  await clearStatus(b);
  await b.page.click('#secondary-button');
  const second = await bidAnswer(b, 'his secondary bid');
  check(second.state === 'accepted' && second.secondarySeq === '2', `B's secondary bid: ${JSON.stringify(second)}`);

  const history = (bidder) => bidder.page.evaluate(() => [...document.querySelectorAll('#history li[data-secondary-seq]')]
    .map((item) => ({ seq: item.dataset.secondarySeq, amount: item.dataset.amount, text: item.textContent })));
  for (const bidder of [a, b]) {
    await waitFor(bidder.page, () => document.querySelectorAll('#history li[data-secondary-seq]').length === 2,
      { what: `${bidder.name}'s history to list two secondary bids` });
    const listed = await history(bidder);
    check(listed.map((item) => `${item.seq}:${item.amount}`).join(',') === '2:110,1:100'
      && listed.every((item) => item.text.includes(UNIT)), `${bidder.name}'s secondary history: ${JSON.stringify(listed)}`);
  }
  // A secondary bid moves the deadline with a bid: no page calls it an extension.
  for (const bidder of [a, b]) {
    const notice = await bidder.page.evaluate(() => document.getElementById('extension-notice').hidden);
    check(notice, `${bidder.name}'s page calls a secondary bid a deadline extension`);
  }
  await screenshot(a, 'rules11-secondary');
  // A reloaded page gets them from the stream's connect.
  await a.page.reload();
  await waitForLive(a.page, 'A');
  await waitFor(a.page, () => document.querySelectorAll('#history li[data-secondary-seq]').length === 2
    && [...document.querySelectorAll('#history li[data-secondary-seq]')].every((item) => item.textContent.includes('m²')),
  { what: "A's reloaded history to list two secondary bids with the unit" });
  await waitForBid(a, 2);

  const operator = await openSaleDashboard(browser, setting('GAVEL_CONTROL_A'), auctionId);
  bidders.push(operator);
  const shownByDashboard = await waitFor(operator.page, () => {
    const rules = document.getElementById('sale-rules');
    return rules.dataset.secondaryCurrent === '110' ? rules.textContent : null;
  }, { what: 'the dashboard to show the second quantity' });
  check(shownByDashboard.includes(`110 ${UNIT}`) && shownByDashboard.includes('secondary bidding'),
    `the dashboard's rules read "${shownByDashboard}"`);
  // Fewer pages on the cluster for the second sale (they all come from one address).
  await a.context.close();
  await b.context.close();
  return { operator, secondary: [first.text, second.text] };
}

async function signedScenario(browser, bidders, operator) {
  const auctionId = setting('GAVEL_AUCTION_SIGNED');
  const keyA = await registeredKey('alice');
  const keyB = await registeredKey('bob');
  const stranger = keyForms(crypto.generateKeyPairSync('ed25519').privateKey);
  const secrets = [keyA, keyB, stranger].flatMap((key) => [key.seed, key.pem.split('\n')[1]]);
  const a = await openBidder(browser, { name: 'A-signed', origin: setting('GAVEL_PAGE_A'), auctionId, ...bidderSetting('GAVEL_BIDDER_A') });
  bidders.push(a);
  const b = await openBidder(browser, { name: 'B-signed', origin: setting('GAVEL_PAGE_B'), auctionId, ...bidderSetting('GAVEL_BIDDER_B') });
  bidders.push(b);
  guardSecrets(a, secrets);
  guardSecrets(b, secrets);
  for (const bidder of [a, b]) {
    const state = await waitFor(bidder.page, () => {
      const element = document.getElementById('signing-state');
      return !document.getElementById('signing').hidden && element.dataset.required === 'true' ? element.textContent : null;
    }, { what: `${bidder.name}'s page to say the sale takes signed bids only` });
    check(state.includes('signed bids only'), `${bidder.name}'s signing state reads "${state}"`);
  }

  // Without a key the page does not send the bid.
  await clearStatus(a);
  await clickBid(a);
  const unsigned = await bidAnswer(a, 'a bid without a key');
  check(unsigned.state === 'refused' && unsigned.code === 'signature_required', `A's unsigned bid: ${JSON.stringify(unsigned)}`);

  // Alice's PEM signs her bid.
  const loadedA = await loadKey(a, keyA.pem);
  check(loadedA.state === 'loaded' && loadedA.keyId === keyA.keyId, `A's key: ${JSON.stringify(loadedA)} (registered ${keyA.keyId})`);
  await clearStatus(a);
  await clickBid(a);
  const bidA = await receipt(a, 0);
  check(bidA.keyId === keyA.keyId, `A's bid went out signed by ${bidA.keyId}`);

  // Bob's unregistered key is refused by the node; his registered seed signs.
  await waitForBidCount(b, 1);
  const loadedStranger = await loadKey(b, stranger.seed);
  check(loadedStranger.state === 'loaded', `B's stranger key: ${JSON.stringify(loadedStranger)}`);
  await clearStatus(b);
  await clickBid(b);
  const bad = await bidAnswer(b, 'a bid under an unregistered key');
  check(bad.state === 'refused' && bad.code === 'bad_signature', `B's bid under an unregistered key: ${JSON.stringify(bad)}`);
  check(await b.page.evaluate(() => document.body.dataset.signedIn === 'true'), 'B was signed out by a bad signature');
  await b.page.click('#signing-forget');
  const loadedB = await loadKey(b, keyB.seed);
  check(loadedB.keyId === keyB.keyId, `B's key: ${JSON.stringify(loadedB)} (registered ${keyB.keyId})`);
  await clearStatus(b);
  await clickBid(b);
  const bidB = await receipt(b, bidA.seq);
  check(bidB.keyId === keyB.keyId, `B's bid went out signed by ${bidB.keyId}`);

  // Alice forgets her key and signs the shown text herself.
  await a.page.click('#signing-forget');
  await waitForBidCount(a, 2);
  const shown = await waitFor(a.page, (minimum) => {
    const text = document.getElementById('signing-text');
    return text.textContent.split('\n')[2] === String(minimum) ? { text: text.textContent, requestId: text.dataset.requestId } : null;
  }, { arg: 1020000, what: "A's page to show the text of her next bid" });
  check(shown.text === `gavel-bid\n${auctionId}\n1020000\n${shown.requestId}`, `A's page shows ${JSON.stringify(shown.text)}`);
  const pasted = crypto.sign(null, Buffer.from(shown.text), keyA.privateKey).toString('base64');
  await a.page.fill('#signing-paste', pasted);
  await clickBid(a);
  const bidPasted = await receipt(a, bidB.seq);
  check(bidPasted.requestId === shown.requestId, `A's pasted bid used ${bidPasted.requestId}, the text ${shown.requestId}`);

  for (const bidder of [a, b]) {
    const stored = await bidder.page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
    check(!secrets.some((secret) => stored.includes(secret)), `${bidder.name}'s storage holds a private key`);
  }
  await screenshot(a, 'rules11-signed');

  await chooseAuction(operator, auctionId);
  const signatures = await waitFor(operator.page, () => {
    const rows = [...document.querySelectorAll('#sale-bids-body tr')];
    return rows.length === 3 ? rows.map((row) => `${row.dataset.seq}:${row.dataset.signature}`).join(',') : null;
  }, { what: 'the dashboard to list three signed bids' });
  const wanted = `3:${keyA.keyId},2:${keyB.keyId},1:${keyA.keyId}`;
  check(signatures === wanted, `the dashboard lists ${signatures}, expected ${wanted}`);
  const required = await operator.page.evaluate(() => document.getElementById('sale-rules').dataset.requireSignedBids);
  check(required === 'true', `the dashboard says signed bids required: ${required}`);
  await screenshot(operator, 'rules11-dashboard');
  log('signed bids: a PEM, a seed and a pasted signature all verified');
  return { keys: [keyA.keyId, keyB.keyId], signatures };
}

run('rules11', async (browser, bidders) => {
  const { operator, secondary } = await secondaryScenario(browser, bidders);
  const signed = await signedScenario(browser, bidders, operator);
  return { secondary, ...signed };
});
