/**
 * Upload locations, signed when the registry has keys: `/v2/NAME/blobs/uploads/ID?_sig=HMAC`. The first key
 * signs and every key verifies, so a key can be rotated without cutting uploads under way; replicas that
 * share the keys take each other's locations. Without keys a location is the bare path, as before: the
 * upload's own record (its owner repository) is then the only check.
 */
import { OciError } from '../oci/errors.ts';
import { sign, signedByAny } from '../shared/signing.ts';

export class UploadLocations {
  private readonly keys: readonly Buffer[];

  constructor(keys: readonly Buffer[] = []) {
    this.keys = keys;
  }

  /** Where the client sends the upload's next request. */
  location(name: string, id: string): string {
    const path = `/v2/${name}/blobs/uploads/${id}`;
    return this.keys.length > 0 ? `${path}?_sig=${sign(this.keys, locationText(name, id))}` : path;
  }

  /**
   * Throws BLOB_UPLOAD_UNKNOWN unless a request for upload `id` of `name` came through a location this
   * registry signed (with any of its keys).
   */
  check(name: string, id: string, query: URLSearchParams): void {
    if (this.keys.length === 0) return;
    if (!signedByAny(this.keys, locationText(name, id), query.get('_sig') ?? '')) {
      throw new OciError(
        'BLOB_UPLOAD_UNKNOWN',
        "blob upload unknown to registry: its location is not signed with this registry's key",
        { name, id },
      );
    }
  }
}

/** What a location's signature covers: the repository and the upload id. */
function locationText(name: string, id: string): string {
  return `${name}\n${id}`;
}
