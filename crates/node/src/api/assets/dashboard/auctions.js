/*
 * Gavel operator dashboard: the auctions table and the operator's actions on it.
 *
 * Rows are kept per auction id and updated in place every second, so a button the
 * operator is about to press is not swapped out under the pointer. Suspend, resume,
 * terminate and the increment change each open one dialog that asks for a reason (kept
 * in the audit trail) and POST to /control/v1/auctions/{id}/suspend|resume|terminate
 * {reason} or /increment {increment, reason}; a refusal is shown with its problem+json
 * code and detail. Texts in the page's language (texts.js): phases by phaseName() (挂牌,
 * 限时竞价 …; each badge's data-value stays the API's word), amounts by money() (万元 / ¥).
 */

import {
  api, badge, byId, cell, duration, label, money, parcelText, phaseName, problemText, report, serverNowMs, t,
} from './common.js';

const CLOSED_PHASES = new Set(['sold', 'unsold', 'terminated']);

/** The row's actions, in order; their texts are texts.js's `actions`. */
const ACTIONS = ['suspend', 'resume', 'terminate', 'increment'];
const actionText = (action) => t('actions')[action];

const table = {
  auctions: new Map(),
  rows: new Map(),
  pendingAction: null,
  afterAction: () => {},
};

export function renderAuctions(answer) {
  const auctions = Array.isArray(answer) ? answer : (answer && answer.auctions) || [];
  const showClosed = byId('show-closed').checked;
  table.auctions = new Map(auctions.map((auction) => [auction.id, auction]));
  const shown = auctions
    .filter((auction) => showClosed || !CLOSED_PHASES.has(auction.phase))
    .sort(auctionOrder);
  const body = byId('auctions-body');
  const wanted = new Set(shown.map((auction) => auction.id));
  for (const [id, row] of table.rows) {
    if (!wanted.has(id)) {
      row.remove();
      table.rows.delete(id);
    }
  }
  shown.forEach((auction, index) => {
    let row = table.rows.get(auction.id);
    if (!row) {
      row = createAuctionRow(auction.id);
      table.rows.set(auction.id, row);
    }
    updateAuctionRow(row, auction);
    // Move rows only when the order changed, so a click in progress is not lost.
    if (body.children[index] !== row) {
      body.insertBefore(row, body.children[index] || null);
    }
  });
  byId('auctions-empty').hidden = shown.length > 0;
}

/** Live auctions first, soonest deadline first; then the rest by id. */
function auctionOrder(left, right) {
  const leftClosed = CLOSED_PHASES.has(left.phase);
  const rightClosed = CLOSED_PHASES.has(right.phase);
  if (leftClosed !== rightClosed) {
    return leftClosed ? 1 : -1;
  }
  const leftDeadline = left.deadline_ms === null ? Infinity : left.deadline_ms;
  const rightDeadline = right.deadline_ms === null ? Infinity : right.deadline_ms;
  if (leftDeadline !== rightDeadline) {
    return leftDeadline - rightDeadline;
  }
  return left.id < right.id ? -1 : left.id > right.id ? 1 : 0;
}

function createAuctionRow(auctionId) {
  const row = document.createElement('tr');
  row.dataset.auction = auctionId;
  for (let index = 0; index < 8; index += 1) {
    row.append(cell('', index >= 3 ? 'number' : ''));
  }
  const actions = document.createElement('td');
  actions.className = 'actions';
  for (const action of ACTIONS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.action = action;
    button.className = action === 'terminate' ? 'danger' : '';
    button.textContent = actionText(action).button;
    actions.append(button);
  }
  row.append(actions);
  return row;
}

function updateAuctionRow(row, auction) {
  const cells = row.children;
  const closed = CLOSED_PHASES.has(auction.phase);
  cells[0].textContent = auction.id;
  cells[1].textContent = auction.title;
  cells[1].title = parcelText(auction.parcel);
  if (cells[2].firstChild === null || cells[2].firstChild.dataset.value !== auction.phase) {
    cells[2].replaceChildren(badge(auction.phase, phaseName(auction.phase)));
  }
  cells[3].textContent = auction.current_price == null ? t('noPrice') : money(auction.current_price);
  cells[4].textContent = auction.reserve_price == null ? t('none') : money(auction.reserve_price);
  cells[5].textContent = money(auction.increment);
  cells[6].textContent = countdownText(auction);
  cells[7].textContent = String(auction.bid_count);
  const buttons = cells[8].querySelectorAll('button');
  for (const button of buttons) {
    const action = button.dataset.action;
    button.disabled =
      closed ||
      (action === 'suspend' && auction.phase === 'suspended') ||
      (action === 'resume' && auction.phase !== 'suspended');
  }
}

function countdownText(auction) {
  if (auction.phase === 'suspended') {
    return t('paused');
  }
  if (auction.deadline_ms === null) {
    return '—';
  }
  const remaining = auction.deadline_ms - serverNowMs();
  return remaining > 0 ? duration(remaining) : t('due');
}

function openAction(action, auctionId) {
  const auction = table.auctions.get(auctionId);
  if (!auction) {
    return;
  }
  table.pendingAction = { action, auctionId };
  byId('action-title').textContent = t('actionTitle', actionText(action).title, auctionId);
  const { about } = actionText(action);
  byId('action-description').textContent =
    action === 'increment'
      ? t('incrementNow', money(auction.increment), label('incrementRules', auction.increment_rule), about)
      : t('auctionNow', auction.title, phaseName(auction.phase), about);
  const incrementField = byId('increment-field');
  const incrementInput = byId('action-increment');
  incrementField.hidden = action !== 'increment';
  incrementInput.required = action === 'increment';
  incrementInput.value = action === 'increment' ? String(auction.increment) : '';
  byId('action-reason').value = '';
  byId('action-problem').textContent = '';
  byId('action-confirm').disabled = false;
  byId('action-confirm').className = action === 'terminate' ? 'danger' : '';
  byId('action-dialog').showModal();
  (action === 'increment' ? incrementInput : byId('action-reason')).focus();
}

async function submitAction(event) {
  event.preventDefault();
  const pending = table.pendingAction;
  if (!pending) {
    return;
  }
  const reason = byId('action-reason').value.trim();
  if (!reason) {
    byId('action-problem').textContent = t('giveReason');
    return;
  }
  const body = { reason };
  if (pending.action === 'increment') {
    const increment = Number(byId('action-increment').value);
    if (!Number.isSafeInteger(increment) || increment <= 0) {
      byId('action-problem').textContent = t('wholeIncrement');
      return;
    }
    body.increment = increment;
  }
  const confirm = byId('action-confirm');
  confirm.disabled = true;
  const path = `/control/v1/auctions/${encodeURIComponent(pending.auctionId)}/${pending.action}`;
  try {
    const auction = await api('POST', path, body);
    byId('action-dialog').close();
    table.pendingAction = null;
    report(t('actionDone', actionText(pending.action).verb, pending.auctionId, phaseName(auction.phase), money(auction.increment)), 'done');
    table.afterAction();
  } catch (error) {
    byId('action-problem').textContent = problemText(error);
    report(t('actionRefused', actionText(pending.action).verb, pending.auctionId, problemText(error)), 'problem');
    confirm.disabled = false;
  }
}

/** Wires the table's buttons and the action dialog; `afterAction` refreshes the page. */
export function wireAuctions(afterAction) {
  table.afterAction = afterAction;
  byId('auctions-body').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const row = button && button.closest('tr');
    if (button && row && !button.disabled) {
      openAction(button.dataset.action, row.dataset.auction);
    }
  });
  byId('show-closed').addEventListener('change', afterAction);
  byId('action-form').addEventListener('submit', submitAction);
  byId('action-cancel').addEventListener('click', () => byId('action-dialog').close());
  byId('action-dialog').addEventListener('close', () => {
    table.pendingAction = null;
  });
}
