import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OciError } from '../oci/errors.ts';
import { UploadLocations } from './upload-locations.ts';

const id = '9b2f6a4e-3c1d-4e5f-8a7b-0c1d2e3f4a5b';
const oldKey = Buffer.from('an old key of at least thirty-two characters');
const newKey = Buffer.from('the new key, also thirty-two characters long');

function queryOf(location: string): URLSearchParams {
  return new URL(location, 'http://registry.test').searchParams;
}

function refused(check: () => void): boolean {
  try {
    check();
    return false;
  } catch (error) {
    assert.ok(error instanceof OciError);
    assert.equal(error.code, 'BLOB_UPLOAD_UNKNOWN');
    assert.match(error.message, /not signed with this registry's key/);
    return true;
  }
}

describe('UploadLocations', () => {
  it('without keys: the bare path, and every request passes', () => {
    const locations = new UploadLocations();
    assert.equal(locations.location('team/app', id), `/v2/team/app/blobs/uploads/${id}`);
    assert.equal(
      refused(() => locations.check('team/app', id, new URLSearchParams())),
      false,
    );
  });

  it('with keys: a signed location passes, and a missing, altered or borrowed signature does not', () => {
    const locations = new UploadLocations([newKey]);
    const location = locations.location('team/app', id);
    assert.match(location, new RegExp(`^/v2/team/app/blobs/uploads/${id}\\?_sig=[A-Za-z0-9_-]{43}$`));
    assert.equal(
      refused(() => locations.check('team/app', id, queryOf(location))),
      false,
    );
    assert.ok(refused(() => locations.check('team/app', id, new URLSearchParams())));
    const signature = queryOf(location).get('_sig')!;
    const altered = `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
    assert.ok(refused(() => locations.check('team/app', id, new URLSearchParams({ _sig: altered }))));
    // The signature binds the repository and the id: it opens no other upload, in no other repository.
    assert.ok(refused(() => locations.check('team/other', id, queryOf(location))));
    const otherId = id.replace('9b2f', '9b2e');
    assert.ok(refused(() => locations.check('team/app', otherId, queryOf(location))));
  });

  it('rotates: the first key signs, every key verifies, a key no longer listed opens nothing', () => {
    const before = new UploadLocations([oldKey]).location('team/app', id);
    const rotated = new UploadLocations([newKey, oldKey]);
    assert.equal(
      refused(() => rotated.check('team/app', id, queryOf(before))),
      false,
    );
    assert.notEqual(rotated.location('team/app', id), before, 'new locations use the new key');
    const after = new UploadLocations([newKey]);
    assert.ok(refused(() => after.check('team/app', id, queryOf(before))));
  });
});
