/**
 * Upload locations, signed when the registry has keys: `/v2/NAME/blobs/uploads/ID?_sig=HMAC`. The first key
 * signs and every key verifies, so a key can be rotated without cutting uploads under way; replicas that
 * share the keys take each other's locations. Without keys a location is the bare path, as before: the
 * upload's own record (its owner repository) is then the only check.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { OciError } from '../oci/errors.ts';

export class UploadLocations {
  private readonly keys: readonly Buffer[];

  constructor(keys: readonly Buffer[] = []) {
    this.keys = keys;
  }

  /** Where the client sends the upload's next request. */
  location(name: string, id: string): string {
    const path = `/v2/${name}/blobs/uploads/${id}`;
    const key = this.keys[0];
    return key ? `${path}?_sig=${signature(key, name, id)}` : path;
  }

  /**
   * Throws BLOB_UPLOAD_UNKNOWN unless a request for upload `id` of `name` came through a location this
   * registry signed (with any of its keys).
   */
  check(name: string, id: string, query: URLSearchParams): void {
    if (this.keys.length === 0) return;
    const given = Buffer.from(query.get('_sig') ?? '');
    const signed = this.keys.some((key) => {
      const expected = Buffer.from(signature(key, name, id));
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    if (!signed) {
      throw new OciError(
        'BLOB_UPLOAD_UNKNOWN',
        "blob upload unknown to registry: its location is not signed with this registry's key",
        { name, id },
      );
    }
  }
}

/** HMAC-SHA256 of the repository and the upload id, base64url. */
function signature(key: Buffer, name: string, id: string): string {
  return createHmac('sha256', key).update(`${name}\n${id}`).digest('base64url');
}
