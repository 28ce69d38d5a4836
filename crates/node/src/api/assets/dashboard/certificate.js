/*
 * The printable result of a sold sale (成交确认书): /certificate?auction={id} on the control
 * listener. Reads GET /control/v1/auctions/{id}/certificate with the operator's token (the
 * dashboard's, kept in this tab's sessionStorage, or typed in here; never stored elsewhere),
 * fills in the page in Chinese (or English with ?lang=en), and prints with the browser.
 *
 * State a test can read: <body data-state="loading|ready|refused|token">, #message.
 */

import {
  chooseLanguage, dateTime, money, parcelText, t, translatePage, useLanguage,
} from '/assets/dashboard/i18n.js';

const TOKEN_KEY = 'gavel.adminToken';
const $ = (id) => document.getElementById(id);

const TEXTS = {
  zh: {
    title: '成交确认书',
    back: '← 返回控制台',
    print: '打印 / 保存为 PDF',
    token: '管理令牌',
    open: '打开',
    heading: '成交确认书',
    subheading: '国有建设用地使用权网上挂牌出让',
    intro: (title, number, price, at) => `经网上挂牌出让，竞买号为 ${number} 的竞买人以 ${price} 的最高报价竞得 ${title}`
      + `（成交时间：${at}）。现将成交结果及保证金处置确认如下。`,
    sale: '出让地块', saleId: '地块编号', parcel: '地块情况', winner: '竞得人', winnerNumber: '竞买号',
    startPrice: '起始价', finalPrice: '成交价', closedAt: '成交时间', bidCount: '有效报价次数', confirmation: '成交确认',
    deposits: '保证金处置', bidder: '竞买人', number: '竞买号', deposited: '已交保证金', disposition: '处置',
    noDeposits: '本次出让未收取保证金。',
    record: '交易记录校验', chainHead: '报价链末端哈希', chainVerified: '报价链校验', winningBid: '竞得报价',
    receiptSignature: '回执签名 (Ed25519)', publicKey: '集群回执公钥',
    signTrader: '出让人（盖章）', signWinner: '竞得人（签字、盖章）',
    verified: '完整，未被篡改', broken: '校验失败',
    bidLine: (seq, amount, at) => `第 ${seq} 号报价 · ${amount} · ${at}`,
    noWinningBid: '无（以其他方式竞得）',
    confirmations: {
      pending: '待竞得人确认', confirmed: '竞得人已确认', lapsed: '确认期已过', defaulted: '竞得人违约',
    },
    noConfirmation: '本次出让无需竞得人确认',
    dispositions: { held: '冻结中', applied_to_price: '转作成交价款', refund: '予以退还', forfeited: '不予退还' },
    verifyHint: '核验：回执签名覆盖"gavel-receipt、地块编号、报价序号、金额、报价时间、报价链哈希"，'
      + '可用 gavel verify-receipt 以上方公钥核验。',
    issued: (node, at) => `由节点 ${node} 于 ${at} 出具`,
    loading: '读取中…',
    refused: (detail) => `无法出具：${detail}`,
    noAuction: '缺少 auction 参数：请从控制台的成交记录打开本页。',
    needToken: '请输入管理令牌。',
  },
  en: {
    title: 'Sale certificate',
    back: '← Back to the dashboard',
    print: 'Print / save as PDF',
    token: 'Admin token',
    open: 'Open',
    heading: 'Sale certificate',
    subheading: 'Online listing sale of state-owned construction land-use rights',
    intro: (title, number, price, at) => `In the online listing sale, the bidder with bidder number ${number} won ${title} `
      + `with the highest bid of ${price} (closed ${at}). The result and the deposits' dispositions are confirmed below.`,
    sale: 'Parcel', saleId: 'Sale id', parcel: 'Description', winner: 'Winner', winnerNumber: 'Bidder number',
    startPrice: 'Start price', finalPrice: 'Final price', closedAt: 'Closed at', bidCount: 'Bids counted', confirmation: 'Confirmation',
    deposits: 'Deposits', bidder: 'Bidder', number: 'Bidder number', deposited: 'Deposited', disposition: 'Disposition',
    noDeposits: 'The sale took no deposit.',
    record: 'The record', chainHead: 'Hash chain head', chainVerified: 'Hash chain', winningBid: 'Winning bid',
    receiptSignature: 'Receipt signature (Ed25519)', publicKey: "Cluster's receipt key",
    signTrader: 'For the seller (seal)', signWinner: 'The winner (signature, seal)',
    verified: 'intact', broken: 'BROKEN',
    bidLine: (seq, amount, at) => `bid #${seq} · ${amount} · ${at}`,
    noWinningBid: 'none (won otherwise than by a price bid)',
    confirmations: { pending: 'pending', confirmed: 'confirmed by the winner', lapsed: 'lapsed', defaulted: 'winner in default' },
    noConfirmation: 'the sale has no confirmation step',
    dispositions: { held: 'held', applied_to_price: 'applied to the price', refund: 'refunded', forfeited: 'forfeited' },
    verifyHint: 'To check: the receipt signature covers "gavel-receipt, sale id, seq, amount, time, chain hash"; '
      + '`gavel verify-receipt` checks it against the key above.',
    issued: (node, at) => `Issued by node ${node} at ${at}`,
    loading: 'Loading…',
    refused: (detail) => `Cannot issue: ${detail}`,
    noAuction: 'No auction parameter: open this page from the dashboard.',
    needToken: 'Type in the admin token.',
  },
};

function setState(state, message = '') {
  document.body.dataset.state = state;
  $('message').textContent = message;
}

function render(certificate) {
  const { result } = certificate;
  const closedAt = dateTime(result.closed_at_ms);
  const winner = result.winner_bidder_id == null ? '–'
    : (certificate.winner_name ? `${certificate.winner_name}（${result.winner_bidder_id}）` : result.winner_bidder_id);
  const fill = (id, text) => { $(id).textContent = text; };
  fill('intro', t('intro', certificate.title, result.winner_bidder_number, money(result.final_price), closedAt));
  fill('sale-title', certificate.title);
  fill('sale-id', certificate.auction_id);
  fill('sale-parcel', parcelText(certificate.parcel) || '–');
  fill('winner', winner);
  fill('winner-number', result.winner_bidder_number ?? '–');
  fill('start-price', money(certificate.start_price));
  fill('final-price', money(result.final_price));
  fill('closed-at', closedAt);
  fill('bid-count', String(certificate.bid_count));
  fill('confirmation', result.confirmation ? (t('confirmations')[result.confirmation] ?? result.confirmation) : t('noConfirmation'));
  const numbers = new Map(result.bids.map((bid) => [bid.bidder_id, bid.bidder_number]));
  const deposits = result.deposits ?? [];
  $('deposit-rows').replaceChildren(...deposits.map((deposit) => {
    const row = document.createElement('tr');
    row.dataset.bidderId = deposit.bidder_id;
    for (const text of [deposit.bidder_id, numbers.get(deposit.bidder_id) ?? '–', money(deposit.amount),
      t('dispositions')[deposit.disposition] ?? deposit.disposition]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  $('no-deposits').hidden = deposits.length > 0;
  fill('chain-head', certificate.chain_head_hash ?? '–');
  fill('chain-verified', result.chain_verified ? t('verified') : t('broken'));
  const bid = certificate.winning_bid;
  fill('winning-bid', bid ? t('bidLine', bid.seq, money(bid.amount), dateTime(bid.accepted_at_ms)) : t('noWinningBid'));
  fill('receipt-signature', bid ? bid.receipt_signature : '–');
  fill('public-key', certificate.receipt_public_key);
  fill('verify-hint', t('verifyHint'));
  fill('issued', t('issued', certificate.node_id, dateTime(certificate.issued_at_ms)));
  document.title = `${t('title')} · ${certificate.title}`;
  $('certificate').hidden = false;
}

async function load(auctionId, token) {
  setState('loading', t('loading'));
  let response;
  try {
    response = await fetch(`/control/v1/auctions/${encodeURIComponent(auctionId)}/certificate`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, cache: 'no-store',
    });
  } catch (error) {
    setState('refused', t('refused', error.message));
    return;
  }
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    askForToken(auctionId, t('refused', data?.detail ?? '401'));
    return;
  }
  if (!response.ok) {
    setState('refused', t('refused', data?.detail ?? `HTTP ${response.status}`));
    return;
  }
  render(data);
  setState('ready');
}

function askForToken(auctionId, message) {
  setState('token', message);
  const form = $('token-form');
  form.hidden = false;
  form.onsubmit = (event) => {
    event.preventDefault();
    const token = $('token-input').value.trim();
    $('token-input').value = '';
    if (!token) return;
    try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* kept in memory only */ }
    form.hidden = true;
    load(auctionId, token);
  };
}

function start() {
  const language = useLanguage(chooseLanguage(), TEXTS);
  translatePage();
  const params = new URLSearchParams(location.search);
  const auctionId = params.get('auction');
  const other = language === 'zh' ? 'en' : 'zh';
  const switchTo = new URLSearchParams(params);
  switchTo.set('lang', other);
  $('language-switch').href = `?${switchTo}`;
  $('language-switch').textContent = other === 'en' ? 'English' : '中文';
  $('print-button').addEventListener('click', () => window.print());
  if (!auctionId) {
    setState('refused', t('noAuction'));
    return;
  }
  let token = null;
  try { token = sessionStorage.getItem(TOKEN_KEY); } catch { token = null; }
  if (token) load(auctionId, token);
  else askForToken(auctionId, t('needToken'));
}

start();
