/**
 * The referrers tag of the OCI distribution spec 1.1, for registries without the referrers API: a pushed
 * manifest that has a `subject` is listed in the image index tagged `<alg>-<hex>` after the subject, which
 * is where `RegistryClient.listReferrers` then finds it.
 */
import { digestAlgorithm, type Digest } from '../oci/digest.ts';
import { parseManifest } from '../oci/manifest.ts';
import { bareMediaType, mediaTypes } from '../oci/mediatypes.ts';
import { isOciError } from '../oci/errors.ts';
import { RegistryError } from './errors.ts';
import {
  ERROR_BODY_LIMIT,
  LIST_BODY_LIMIT,
  defaultManifestAccept,
  imageName,
  parseJson,
  pushOperation,
  type RegistryRequests,
  type RepositoryRef,
} from './registry-requests.ts';

/** The referrers tag of `digest`: `<alg>-<hex>`, the algorithm cut to 32 and the hex to 64 characters. */
export function referrersTag(digest: Digest): string {
  const algorithm = digestAlgorithm(digest).replace(/[^\w.-]/g, '-');
  return `${algorithm.slice(0, 32)}-${digest.slice(digest.indexOf(':') + 1).slice(0, 64)}`;
}

/** Keeps the referrers tags of the registries a client pushes to, one update at a time per tag. */
export class ReferrersTags {
  private readonly requests: RegistryRequests;
  private readonly maxManifestBytes: number;
  /** By registry: whether it lists referrers itself (learnt once, when a manifest with a subject is pushed). */
  private readonly referrersApi = new Map<string, boolean>();
  /** Referrers-tag updates in progress, by repository and tag: one at a time per tag. */
  private readonly updates = new Map<string, Promise<void>>();

  constructor(requests: RegistryRequests, maxManifestBytes: number) {
    this.requests = requests;
    this.maxManifestBytes = maxManifestBytes;
  }

  /** Adds a pushed manifest that has a subject to the subject's referrers tag, when the registry needs that. */
  async add(repo: RepositoryRef, bytes: Uint8Array, mediaType: string, digest: Digest): Promise<void> {
    if (!Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes('"subject"')) return;
    let parsed: ReturnType<typeof parseManifest>;
    try {
      parsed = parseManifest(bytes, mediaType);
    } catch (error) {
      if (isOciError(error)) return; // the registry took it; it is not a manifest whose subject we can read
      throw error;
    }
    if (!parsed.subject || (await this.hasReferrersApi(repo, parsed.subject.digest))) return;
    const descriptor: Record<string, unknown> = { mediaType: parsed.mediaType, digest, size: bytes.length };
    if (parsed.artifactType !== undefined) descriptor.artifactType = parsed.artifactType;
    if (parsed.annotations !== undefined) descriptor.annotations = parsed.annotations;
    const tag = referrersTag(parsed.subject.digest);
    const key = `${repo.registry}/${repo.repository}:${tag}`;
    const update = (this.updates.get(key) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.addToReferrersTag(repo, tag, descriptor));
    this.updates.set(key, update);
    try {
      await update;
    } finally {
      if (this.updates.get(key) === update) this.updates.delete(key);
    }
  }

  /** Whether the registry lists referrers of `subject` itself (200 with an index); asked once per registry. */
  private async hasReferrersApi(repo: RepositoryRef, subject: Digest): Promise<boolean> {
    const known = this.referrersApi.get(repo.registry);
    if (known !== undefined) return known;
    const op = pushOperation(`list referrers of ${subject} in`, repo);
    const response = await this.requests.send(op, {
      method: 'GET',
      url: this.requests.url(repo, `/referrers/${subject}`),
      headers: { accept: mediaTypes.ociIndex },
      bufferLimit: LIST_BODY_LIMIT,
    });
    let supported: boolean;
    if (response.status === 200) {
      const document = parseJson(response.bytes ?? Buffer.alloc(0)) as { manifests?: unknown } | undefined;
      supported = Array.isArray(document?.manifests);
    } else if ([400, 404, 405, 406, 501].includes(response.status)) {
      if (response.bytes === undefined) await response.discard();
      supported = false;
    } else {
      throw await this.requests.statusError(op, response);
    }
    this.referrersApi.set(repo.registry, supported);
    return supported;
  }

  /** Read, add if absent, write back: the referrers tag's index keeps every entry it had. */
  private async addToReferrersTag(
    repo: RepositoryRef,
    tag: string,
    descriptor: Record<string, unknown>,
  ): Promise<void> {
    const op = pushOperation('update referrers tag', repo, tag);
    const url = this.requests.url(repo, `/manifests/${tag}`);
    // Every manifest type: distribution answers 404 for a manifest of a type the request does not accept.
    const response = await this.requests.send(op, {
      method: 'GET',
      url,
      headers: { accept: defaultManifestAccept.join(', ') },
      bufferLimit: this.maxManifestBytes,
    });
    let index: { manifests: unknown[]; [key: string]: unknown };
    if (response.status === 404) {
      if (response.bytes === undefined) await response.discard();
      index = { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] };
    } else if (response.status !== 200) {
      throw await this.requests.statusError(op, response);
    } else {
      const document = parseJson(response.bytes ?? Buffer.alloc(0)) as Record<string, unknown> | undefined;
      const type =
        typeof document?.mediaType === 'string'
          ? document.mediaType
          : bareMediaType(response.header('content-type') ?? '');
      if (!document || type !== mediaTypes.ociIndex || !Array.isArray(document.manifests)) {
        throw new RegistryError(
          'REGISTRY_REJECTED',
          `${op.what} ${imageName(repo, tag)}: the tag holds ${type || 'something'}, not an image index`,
          this.requests.details(op, response),
          {
            hint: `the tag ${tag} is reserved for the referrers of a manifest; move what it holds to another tag`,
          },
        );
      }
      index = document as typeof index;
    }
    const listed = index.manifests.some(
      (entry) => (entry as { digest?: unknown } | null)?.digest === descriptor.digest,
    );
    if (listed) return;
    const put = await this.requests.send(op, {
      method: 'PUT',
      url,
      headers: { 'content-type': mediaTypes.ociIndex },
      body: Buffer.from(JSON.stringify({ ...index, manifests: [...index.manifests, descriptor] })),
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (put.status < 200 || put.status >= 300) throw await this.requests.statusError(op, put);
  }
}
