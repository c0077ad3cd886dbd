/**
 * Signatures with keys that rotate: the first key signs, every key verifies, so a new key can be added
 * before the old one is dropped. HMAC-SHA256 of a text, base64url (43 characters); compared in constant
 * time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function sign(keys: readonly Buffer[], text: string): string {
  const key = keys[0];
  if (key === undefined) throw new Error('no signing key');
  return hmac(key, text);
}

/** Whether `signature` is `text` signed by one of `keys`. */
export function signedByAny(keys: readonly Buffer[], text: string, signature: string): boolean {
  const given = Buffer.from(signature);
  return keys.some((key) => {
    const expected = Buffer.from(hmac(key, text));
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}
