import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign, signedByAny } from './signing.ts';

const oldKey = Buffer.from('an old key of at least thirty-two characters');
const newKey = Buffer.from('the new key, also thirty-two characters long');

describe('signing', () => {
  it('signs with the first key, and verifies with any of them', () => {
    const signature = sign([oldKey], 'text');
    assert.match(signature, /^[\w-]{43}$/);
    assert.equal(signedByAny([newKey, oldKey], 'text', signature), true);
    assert.notEqual(sign([newKey, oldKey], 'text'), signature);
    assert.equal(signedByAny([newKey], 'text', signature), false, 'a dropped key verifies nothing');
  });

  it('refuses another text, an altered or cut signature, and signing with no key', () => {
    const signature = sign([newKey], 'text');
    assert.equal(signedByAny([newKey], 'other text', signature), false);
    const altered = `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
    assert.equal(signedByAny([newKey], 'text', altered), false);
    assert.equal(signedByAny([newKey], 'text', signature.slice(1)), false);
    assert.equal(signedByAny([newKey], 'text', ''), false);
    assert.throws(() => sign([], 'text'), /no signing key/);
  });
});
