/*
 * Checking a bid receipt's signature in the page (docs/API.md, "Bid receipts"), with the
 * browser's WebCrypto: Ed25519 for the signature, SHA-256 for a batch's Merkle tree.
 *
 * A receipt answered alone is signed over its own text (six lines joined by "\n"):
 *   gavel-receipt / {auction_id} / {seq} / {amount} / {accepted_at_ms} / {chain_hash}
 * Receipts answered at the same moment are signed together: the receipt then carries
 * `receipt_batch` {size, index, path}, and the signature covers
 *   gavel-receipt-batch / {size} / {root, lowercase hex}
 * where the root is the RFC 6962 Merkle root its inclusion proof `path` leads to from the
 * leaf SHA-256(0x00 ‖ receipt text), each step SHA-256(0x01 ‖ left ‖ right) (RFC 9162,
 * section 2.1.3.2). A plain ES module without page state, so Node.js runs it too
 * (tests/browser/receipt.mjs).
 */

/** Most receipts one batch signature covers (the node's receipts::batch::MAX_BATCH). */
const MAX_BATCH = 1024;

const base64Bytes = (text) => Uint8Array.from(atob(text), (character) => character.charCodeAt(0));
const hexBytes = (text) => Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
const bytesHex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');

async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((length, part) => length + part.length, 0));
  parts.reduce((offset, part) => { joined.set(part, offset); return offset + part.length; }, 0);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', joined));
}

/**
 * The bytes the receipt's signature covers: its own six-line text, or, for a receipt signed
 * together with others (receipt_batch), the batch text of the Merkle root its inclusion proof
 * leads to (RFC 6962 hashing, RFC 9162's walk). null when the proof is malformed.
 */
export async function receiptSignedText(receipt) {
  const text = new TextEncoder().encode(['gavel-receipt', receipt.auction_id, receipt.seq, receipt.amount,
    receipt.accepted_at_ms, receipt.chain_hash].join('\n'));
  const batch = receipt.receipt_batch;
  if (!batch) return text;
  const { size, index, path } = batch;
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(index) || size < 2 || size > MAX_BATCH || index < 0 || index >= size
    || !Array.isArray(path) || !path.every((hash) => /^[0-9a-f]{64}$/.test(hash))) return null;
  let [node, last] = [index, size - 1];
  let hash = await sha256(Uint8Array.of(0), text);
  for (const sibling of path.map(hexBytes)) {
    if (last === 0) return null;
    if (node % 2 === 1 || node === last) {
      hash = await sha256(Uint8Array.of(1), sibling, hash);
      while (node % 2 === 0 && node !== 0) [node, last] = [Math.floor(node / 2), Math.floor(last / 2)];
    } else {
      hash = await sha256(Uint8Array.of(1), hash, sibling);
    }
    [node, last] = [Math.floor(node / 2), Math.floor(last / 2)];
  }
  if (last !== 0) return null;
  return new TextEncoder().encode(`gavel-receipt-batch\n${size}\n${bytesHex(hash)}`);
}

/**
 * 'verified' when the receipt's signature verifies under one of `publicKeys` (standard
 * base64 of 32-byte Ed25519 keys, the current one first), else 'bad'. Throws when this
 * WebCrypto has no Ed25519.
 */
export async function receiptVerdict(receipt, publicKeys) {
  const message = await receiptSignedText(receipt);
  if (!message) return 'bad';
  const signature = base64Bytes(receipt.receipt_signature);
  for (const keyText of publicKeys) {
    const key = await crypto.subtle.importKey('raw', base64Bytes(keyText), { name: 'Ed25519' }, false, ['verify']);
    if (await crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message)) return 'verified';
  }
  return 'bad';
}
