// Checks bid receipts with the bidder page's own receipt.js, in Node.js (no browser):
// node receipt.mjs FILE, where FILE holds {"keys": [base64…], "receipts": [receipt…]}.
// Prints one verdict per receipt, in order: verified or bad.
import { readFileSync } from 'node:fs';
import { receiptVerdict } from '../../crates/node/src/api/assets/bidder/receipt.js';

const { keys, receipts } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const receipt of receipts) {
  console.log(await receiptVerdict(receipt, keys));
}
