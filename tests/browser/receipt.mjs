// Checks bid receipts with the bidder page's own receipt.js, in Node.js (no browser):
// node receipt.mjs FILE, where FILE holds {"keys": [base64…], "receipts": [receipt…]}.
// Prints one verdict per receipt, in order: verified or bad.
import { readFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { receiptVerdict } from '../../crates/node/src/api/assets/bidder/receipt.js';

// Node.js 18 has WebCrypto only under node:crypto; the page's module uses the global.
globalThis.crypto ??= webcrypto;

const { keys, receipts } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const receipt of receipts) {
  console.log(await receiptVerdict(receipt, keys));
}
