/*
 * Signed bids on the bidder page (docs/RULES.md, "Signed bids"): the bidder's own Ed25519
 * private key, loaded into this tab's memory, signs each bid with the browser's WebCrypto.
 *
 * The key is read from what the bidder pastes or picks as a file:
 *   - a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey -algorithm ed25519`
 *     writes), or
 *   - the standard base64 of the 32-byte seed (the form of `gavel cluster receipt-key`'s
 *     key files), or the base64 of a PKCS#8 DER.
 * It is imported as a non-extractable CryptoKey and the bytes read are overwritten: the
 * key is never sent, never stored (no localStorage, no URL hand-over on a failover: the
 * next node's page asks for it again) and is gone when the tab closes or the bidder forgets
 * it. Its public half gives the key id the node names signatures by
 * (`ed25519:` and the first 16 hex digits of SHA-256("ed25519" ‖ 0x00 ‖ public key)).
 *
 * What is signed (lines joined by "\n", no newline after the last):
 *   gavel-bid / {auction_id} / {line 3} / {request_id}
 * where line 3 is the bid's amount, or `secondary_amount={n}`, `sealed_amount={n}`,
 * `proxy_max={n}`. The signature is sent as the standard base64 of its 64 bytes.
 *
 * SM2 keys cannot be used here (no browser implements SM2): the bidder signs the shown text
 * with their certificate tool and pastes the signature, which the page sends as it is.
 */

const DOMAIN = 'gavel-bid';

/** Line 3 of the signed text of each kind of request. */
const AMOUNT_LINE = {
  price: (amount) => String(amount),
  secondary: (amount) => `secondary_amount=${amount}`,
  sealed: (amount) => `sealed_amount=${amount}`,
  proxy: (amount) => `proxy_max=${amount}`,
};

/** PKCS#8 v1 wrapping of a 32-byte Ed25519 seed (RFC 8410): this prefix, then the seed. */
const PKCS8_SEED_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

export class KeyProblem extends Error {
  constructor(code) {
    super(code);
    this.code = code; // 'sm2', 'unreadable', 'unsupported'
  }
}

/** The canonical text a bidder signs for a request of `kind` (price, secondary, sealed, proxy). */
export function signedText(kind, auctionId, amount, requestId) {
  return [DOMAIN, auctionId, AMOUNT_LINE[kind](amount), requestId].join('\n');
}

const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

function fromBase64(text) {
  const clean = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) throw new KeyProblem('unreadable');
  return Uint8Array.from(atob(clean), (character) => character.charCodeAt(0));
}

/** The PKCS#8 DER bytes of the key the bidder gave. */
function pkcs8Of(text) {
  const trimmed = text.trim();
  if (/-----BEGIN (EC|SM2) PRIVATE KEY-----/.test(trimmed)) throw new KeyProblem('sm2');
  const pem = trimmed.match(/-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/);
  const bytes = fromBase64(pem ? pem[1] : trimmed);
  if (bytes.length === 32) {
    const wrapped = new Uint8Array(48);
    wrapped.set(PKCS8_SEED_PREFIX);
    wrapped.set(bytes, 16);
    bytes.fill(0);
    return wrapped;
  }
  return bytes;
}

/**
 * Loads a private key: answers { key, keyId, publicKey } (a non-extractable CryptoKey that
 * only signs), or throws a KeyProblem.
 */
export async function loadKey(text) {
  if (!globalThis.crypto?.subtle) throw new KeyProblem('unsupported');
  const der = pkcs8Of(text);
  let publicKey;
  let key;
  try {
    const readable = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', readable);
    publicKey = fromBase64(jwk.x.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(jwk.x.length / 4) * 4, '='));
    key = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  } catch (error) {
    if (error instanceof KeyProblem) throw error;
    // An SM2 (or any EC) PKCS#8 key, a DER of something else, or no Ed25519 in this browser.
    const isEc = der.length > 12 && der.join(',').includes([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01].join(','));
    throw new KeyProblem(isEc ? 'sm2' : (error?.name === 'NotSupportedError' ? 'unsupported' : 'unreadable'));
  } finally {
    der.fill(0);
  }
  const label = new TextEncoder().encode('ed25519');
  const hashed = new Uint8Array(label.length + 1 + publicKey.length);
  hashed.set(label);
  hashed.set(publicKey, label.length + 1);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', hashed));
  const hex = [...digest.slice(0, 8)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return { key, keyId: `ed25519:${hex}`, publicKey: toBase64(publicKey) };
}

/** The standard base64 of the Ed25519 signature of `text` under `key`. */
export async function sign(key, text) {
  const signature = await crypto.subtle.sign({ name: 'Ed25519' }, key, new TextEncoder().encode(text));
  return toBase64(new Uint8Array(signature));
}
