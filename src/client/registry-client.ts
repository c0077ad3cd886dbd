/**
 * A client for the OCI distribution API (and Docker Hub's flavour of it), over `Transport` and
 * `Authenticator`.
 *
 * Promises:
 * - repositories are `{ registry, repository }` as the reference parser gives them; `docker.io` is sent to
 *   `registry-1.docker.io`;
 * - manifests are returned byte-exact, verified against `Docker-Content-Digest` and against a digest
 *   reference, and never larger than `maxManifestBytes`;
 * - blob downloads are verified while they stream and fail instead of ending when the bytes are wrong,
 *   short or cut off; blob uploads stream from the caller's factory and are never buffered whole;
 * - every failure is a `RegistryError` (a `PullsafeError`) whose message names the image, the registry
 *   host and the HTTP status, with a hint; none contains a credential;
 * - every manifest answer reports the quota headers (`rateLimit`).
 */
import type { Readable } from 'node:stream';
import { digestAlgorithm, digestOf, isDigest, type Digest } from '../oci/digest.ts';
import type { Descriptor } from '../oci/manifest.ts';
import { bareMediaType, mediaTypes } from '../oci/mediatypes.ts';
import { redact } from '../errors/index.ts';
import { Authenticator, repositoryScope, type AuthStats } from './auth.ts';
import type { CredentialSource } from './credentials.ts';
import { RegistryError } from './errors.ts';
import { parseRateLimit, type RateLimit } from './ratelimit.ts';
import {
  parseRetryAfter,
  Transport,
  type RequestBody,
  type TransportOptions,
  type TransportResponse,
} from './transport.ts';
import { verifiedStream } from './verify.ts';
import { ReferrersTags, referrersTag } from './referrers-tag.ts';
import {
  ERROR_BODY_LIMIT,
  RegistryRequests,
  defaultManifestAccept,
  imageName,
  parseJson,
  pullOperation,
  pushOperation,
  type Operation,
  type RepositoryRef,
} from './registry-requests.ts';

export { defaultManifestAccept, imageName, type RepositoryRef } from './registry-requests.ts';

/** Docker Hub's repository for reading the quota without spending it. */
export const dockerHubRateLimitProbe: RepositoryRef = {
  registry: 'docker.io',
  repository: 'ratelimitpreview/test',
};

export const DEFAULT_MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  /** From Content-Length, when the registry sent it. */
  size: number | undefined;
  rateLimit: RateLimit | undefined;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  size: number;
  rateLimit: RateLimit | undefined;
  /** The `Cache-Status` header (RFC 9211) of a cache in between, such as pullsafe's, when it sent one. */
  cacheStatus?: string;
}

export interface BlobDownload {
  /** From Content-Length (or the expected size given), when known. */
  size: number | undefined;
  /** The `Cache-Status` header (RFC 9211) of a cache in between, when it sent one. */
  cacheStatus?: string;
  /** Fails with DIGEST_MISMATCH (wrong or short content) or REGISTRY_UNAVAILABLE (connection lost). */
  stream: Readable;
}

export interface RateLimitStatus {
  /** The HEAD's status: 200, or 404 for a missing tag, or 429 when the quota is spent. */
  status: number;
  rateLimit: RateLimit | undefined;
  retryAfterSeconds: number | undefined;
}

export interface ListOptions {
  /** `n` per page; the registry's default when not given. */
  pageSize?: number;
  /** Pages followed through `Link` before giving up. */
  maxPages?: number;
}

export interface RegistryClientOptions {
  credentials?: CredentialSource;
  /** A transport to share; when absent one is created from `transport` options and closed by `close()`. */
  sharedTransport?: Transport;
  transport?: TransportOptions;
  maxManifestBytes?: number;
  /** Default bound on `Link` pages for tags and referrers. */
  maxPages?: number;
  /**
   * Sends a registry's API requests to another host (`{ 'docker.io': 'mirror.internal:5000' }`): for
   * mirrors, and for tests. Credentials are still looked up, and messages still name, the registry.
   */
  apiHosts?: Record<string, string>;
  /** Milliseconds since the epoch; injected for tests (token expiry). */
  now?: () => number;
}

export class RegistryClient {
  readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly auth: Authenticator;
  private readonly requests: RegistryRequests;
  private readonly referrersTags: ReferrersTags;
  private readonly maxManifestBytes: number;
  private readonly maxPages: number;
  /** Per registry API host: whether a blob upload's POST can probe for the blob (see pushBlob). */
  private readonly probeSupport = new Map<string, 'yes' | 'no' | 'learning'>();

  constructor(options: RegistryClientOptions = {}) {
    this.transport = options.sharedTransport ?? new Transport(options.transport);
    this.ownsTransport = options.sharedTransport === undefined;
    this.auth = new Authenticator({
      transport: this.transport,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.now ? { now: options.now } : {}),
    });
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.maxPages = options.maxPages ?? 10_000;
    this.requests = new RegistryRequests(
      this.transport,
      this.auth,
      new Map(Object.entries(options.apiHosts ?? {})),
    );
    this.referrersTags = new ReferrersTags(this.requests, this.maxManifestBytes);
  }

  /** Token service statistics (tokens fetched), for metrics and tests. */
  get authStats(): Readonly<AuthStats> {
    return this.auth.stats;
  }

  /** What a tag or digest resolves to, by HEAD (free on Docker Hub); undefined when the registry says 404. */
  async checkManifest(
    repo: RepositoryRef,
    reference: string,
    accept: readonly string[] = defaultManifestAccept,
  ): Promise<ManifestHead | undefined> {
    const op = pullOperation('check manifest', repo, reference);
    const response = await this.requests.send(op, {
      method: 'HEAD',
      url: this.requests.url(repo, `/manifests/${reference}`),
      headers: { accept: accept.join(', ') },
    });
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.requests.statusError(op, response);
    const rateLimit = parseRateLimit(response.headers);
    const announced = response.header('docker-content-digest');
    if (announced === undefined || !isDigest(announced)) {
      // Some registries leave the digest out of HEAD answers: fetch and hash instead.
      const fetched = await this.getManifest(repo, reference, accept);
      return { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.size, rateLimit };
    }
    const digest = announced as Digest;
    if (isDigest(reference) && reference !== digest) {
      throw this.requests.mismatch(op, response, `${response.url.host} announced ${digest} for ${reference}`);
    }
    const length = Number(response.header('content-length'));
    return {
      digest,
      mediaType: bareMediaType(response.header('content-type') ?? ''),
      size: Number.isSafeInteger(length) ? length : undefined,
      rateLimit,
    };
  }

  /** The manifest bytes, verified; REGISTRY_NOT_FOUND when the registry says 404. */
  async getManifest(
    repo: RepositoryRef,
    reference: string,
    accept: readonly string[] = defaultManifestAccept,
  ): Promise<FetchedManifest> {
    const op = pullOperation('fetch manifest', repo, reference);
    const response = await this.requests.send(op, {
      method: 'GET',
      url: this.requests.url(repo, `/manifests/${reference}`),
      headers: { accept: accept.join(', ') },
      bufferLimit: this.maxManifestBytes,
    });
    if (response.status !== 200) throw await this.requests.statusError(op, response);
    const bytes = response.bytes ?? Buffer.alloc(0);
    const announced = response.header('docker-content-digest');
    let digest = digestOf(bytes);
    if (isDigest(reference)) {
      const expected = reference as Digest;
      const actual = digestOf(bytes, digestAlgorithm(expected));
      if (actual !== expected) throw this.requests.mismatch(op, response, `the manifest hashes to ${actual}`);
      digest = expected;
    }
    if (announced !== undefined && isDigest(announced)) {
      const actual = digestOf(bytes, digestAlgorithm(announced as Digest));
      if (actual !== announced) {
        throw this.requests.mismatch(
          op,
          response,
          `Docker-Content-Digest says ${announced}, the bytes hash to ${actual}`,
        );
      }
      if (!isDigest(reference)) digest = announced as Digest;
    }
    const cacheStatus = response.header('cache-status');
    return {
      bytes,
      digest,
      mediaType: manifestMediaType(response.header('content-type'), bytes),
      size: bytes.length,
      rateLimit: parseRateLimit(response.headers),
      ...(cacheStatus !== undefined ? { cacheStatus } : {}),
    };
  }

  /**
   * Stores a manifest byte-exact under a tag or digest; resolves with its digest. A manifest with a
   * `subject` is then listed in its subject's referrers tag (`sha256-<hex>`, OCI distribution spec 1.1)
   * unless the registry answered `OCI-Subject` or has the referrers API; the tag never lists it twice.
   */
  async putManifest(
    repo: RepositoryRef,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<{ digest: Digest }> {
    const op = pushOperation('push manifest', repo, reference);
    const response = await this.requests.send(op, {
      method: 'PUT',
      url: this.requests.url(repo, `/manifests/${reference}`),
      headers: { 'content-type': mediaType },
      body: bytes,
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (response.status < 200 || response.status >= 300) throw await this.requests.statusError(op, response);
    const announced = response.header('docker-content-digest');
    const algorithm =
      announced !== undefined && isDigest(announced) ? digestAlgorithm(announced as Digest) : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (announced !== undefined && isDigest(announced) && announced !== digest) {
      throw this.requests.mismatch(
        op,
        response,
        `the registry stored it as ${announced}, the bytes hash to ${digest}`,
      );
    }
    if (response.header('oci-subject') === undefined) {
      await this.referrersTags.add(repo, bytes, mediaType, digest);
    }
    return { digest };
  }

  /** A blob's size, by HEAD; undefined when the registry says 404. */
  async checkBlob(repo: RepositoryRef, digest: Digest): Promise<number | undefined> {
    const op = pullOperation(`check blob ${digest}`, repo);
    const response = await this.requests.send(op, {
      method: 'HEAD',
      url: this.requests.url(repo, `/blobs/${digest}`),
    });
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.requests.statusError(op, response);
    const length = Number(response.header('content-length'));
    return Number.isSafeInteger(length) && length >= 0 ? length : 0;
  }

  /**
   * A blob as a stream verified while it flows (see `BlobDownload`). Redirects (S3, CDN) are followed
   * without the registry's Authorization. `expectedSize` is checked against Content-Length at once and
   * against the bytes at the end.
   */
  async getBlob(
    repo: RepositoryRef,
    digest: Digest,
    options: { expectedSize?: number; signal?: AbortSignal } = {},
  ): Promise<BlobDownload> {
    const op = pullOperation(`fetch blob ${digest}`, repo);
    const response = await this.requests.send(op, {
      method: 'GET',
      url: this.requests.url(repo, `/blobs/${digest}`),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.status !== 200) throw await this.requests.statusError(op, response);
    const length = Number(response.header('content-length'));
    const announced =
      Number.isSafeInteger(length) && response.header('content-length') !== undefined ? length : undefined;
    if (announced !== undefined && options.expectedSize !== undefined && announced !== options.expectedSize) {
      await response.discard();
      throw this.requests.mismatch(
        op,
        response,
        `${response.url.host} announced ${announced} bytes, expected ${options.expectedSize}`,
      );
    }
    const size = announced ?? options.expectedSize;
    const label = `blob ${digest} of ${imageName(repo)} from ${response.url.host}`;
    const stream = verifiedStream(response.body, {
      digest,
      ...(size !== undefined ? { size } : {}),
      label,
      sourceError: (error, received) =>
        new RegistryError(
          'REGISTRY_UNAVAILABLE',
          `${label}: the connection broke after ${received}${size !== undefined ? ` of ${size}` : ''} bytes (HTTP 200)`,
          this.requests.details(op, response),
          { hint: 'the download was cut off; nothing was kept. Retry', cause: error },
        ),
    });
    const cacheStatus = response.header('cache-status');
    return { size, stream, ...(cacheStatus !== undefined ? { cacheStatus } : {}) };
  }

  /**
   * Uploads a blob (POST, then one monolithic PUT with Content-Length, streaming from `open()`, which is
   * called again for a retry). With `probe`, the POST asks the registry to mount the
   * blob from the repository itself: a registry that already holds it there answers 201 and nothing is
   * sent (`present`). Registries that ignore mounts (ECR unless blob mounting is enabled) answer 202 for
   * blobs they hold too, so `probe: 'auto'` only probes registries seen to honour it: after its first
   * upload to a registry, it asks once for the blob it just stored.
   */
  async pushBlob(
    repo: RepositoryRef,
    digest: Digest,
    size: number,
    open: () => Readable | Promise<Readable>,
    options: { probe?: boolean | 'auto' } = {},
  ): Promise<'uploaded' | 'present'> {
    const host = this.apiHost(repo.registry);
    const probe = options.probe === 'auto' ? this.probeSupport.get(host) === 'yes' : Boolean(options.probe);
    const uploaded = async (): Promise<'uploaded'> => {
      if (options.probe === 'auto' && !this.probeSupport.has(host))
        await this.learnProbeSupport(repo, digest);
      return 'uploaded';
    };
    const op = pushOperation(`push blob ${digest}`, repo);
    for (let round = 1; ; round++) {
      const location = await this.startUpload(op, digest, probe);
      if (location === undefined) return 'present';
      const target = new URL(location);
      target.search = `${target.search ? `${target.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
      const body: RequestBody = { length: size, open };
      let finished: TransportResponse;
      try {
        finished = await this.requests.send(op, {
          method: 'PUT',
          url: target,
          headers: { 'content-type': 'application/octet-stream' },
          body,
          bufferLimit: ERROR_BODY_LIMIT,
        });
      } catch (error) {
        // The source failed or the registry vanished: leave no upload open behind.
        await this.requests.cancelUpload(op, location);
        throw error;
      }
      if (finished.status >= 200 && finished.status < 300) {
        const announced = finished.header('docker-content-digest');
        if (announced !== undefined && isDigest(announced) && announced !== digest) {
          throw this.requests.mismatch(op, finished, `the registry stored ${announced}`);
        }
        return uploaded();
      }
      // A retried PUT may find its upload already completed by an attempt whose answer was lost.
      if (finished.status === 404 && (await this.checkBlob(repo, digest)) === size) return uploaded();
      const error = await this.requests.statusError(op, finished);
      await this.requests.cancelUpload(op, location);
      if (finished.status === 404 && round < 2) continue;
      throw error;
    }
  }

  /**
   * Copies a blob from `from` into `to` (any two registries this client reaches), as `pushBlob` with
   * `getBlob` as its source would, but streamed over the transport's wire (wire.ts) when it has one: the
   * download is written into the upload as it arrives, verified, and completed only when it verified.
   * Whatever the wire does not finish (a status, a redirect it cannot follow, a broken connection, wrong
   * bytes) is cancelled and done again on the general path, whose retries and errors then apply.
   */
  async copyBlob(
    from: RepositoryRef,
    to: RepositoryRef,
    digest: Digest,
    size: number,
    options: {
      probe?: boolean | 'auto';
      onBytes?: (bytes: number) => void;
      /** The wire gave up (why, without credentials); the general path takes over. */
      onFallback?: (reason: string) => void;
    } = {},
  ): Promise<'uploaded' | 'present'> {
    const general = (): Promise<'uploaded' | 'present'> =>
      this.pushBlob(
        to,
        digest,
        size,
        async () => {
          options.onBytes?.(0);
          return (await this.getBlob(from, digest, { expectedSize: size })).stream;
        },
        options.probe !== undefined ? { probe: options.probe } : {},
      );
    const wire = this.transport.wire;
    if (!wire) return general();
    const host = this.apiHost(to.registry);
    const probe = options.probe === 'auto' ? this.probeSupport.get(host) === 'yes' : Boolean(options.probe);
    const op = pushOperation(`push blob ${digest}`, to);
    const started = await this.startUpload(op, digest, probe);
    if (started === undefined) return 'present';
    const put = new URL(started);
    put.search = `${put.search ? `${put.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
    const pull = pullOperation(`fetch blob ${digest}`, from);
    const pump = async (get: Record<string, string>) =>
      wire.pump({
        get: { url: this.requests.url(from, `/blobs/${digest}`), headers: get },
        put: { url: put, headers: await this.requests.ownHostHeaders(op, put) },
        digest,
        size,
        ...(options.onBytes ? { onBytes: options.onBytes } : {}),
      });
    const sent = await this.requests.ownHostHeaders(pull);
    let outcome = await pump(sent);
    if (!outcome.ok && outcome.get?.status === 401) {
      // The source's first challenge (no token for this scope yet): answer it, and pump once more.
      const challenge = outcome.get.headers['www-authenticate'];
      const retry = await this.requests.answerChallenge(pull, challenge, sent.authorization);
      if (retry !== undefined) outcome = await pump({ authorization: retry });
    }
    if (!outcome.ok) {
      options.onFallback?.(redact(outcome.reason));
      await this.requests.cancelUpload(op, started);
      return general();
    }
    const announced = outcome.put.headers['docker-content-digest'];
    if (announced !== undefined && isDigest(announced) && announced !== digest) {
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${op.what} ${imageName(to)}: the registry stored ${announced}`,
        { ...this.requests.details(op, undefined, put.host), status: outcome.put.status },
        { hint: 'the registry (or a proxy in between) changed the content; nothing was kept' },
      );
    }
    if (options.probe === 'auto' && !this.probeSupport.has(host)) await this.learnProbeSupport(to, digest);
    return 'uploaded';
  }

  /**
   * Opens an upload (POST; with `probe`, a mount from the repository itself): its Location, or undefined when
   * the registry answered that it has the blob already.
   */
  private async startUpload(op: Operation, digest: Digest, probe: boolean): Promise<string | undefined> {
    const started = await this.requests.send(op, {
      method: 'POST',
      url: this.uploadStartUrl(op.repo, digest, probe),
      retrySafe: true,
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (started.status === 201) return undefined;
    if (started.status !== 202) throw await this.requests.statusError(op, started);
    return this.requests.uploadLocation(op, started);
  }

  /** Where an upload starts; with `probe`, asking to mount the blob from the repository itself. */
  private uploadStartUrl(repo: RepositoryRef, digest: Digest, probe: boolean): URL {
    const url = this.requests.url(repo, '/blobs/uploads/');
    if (probe) {
      url.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(repo.repository)}`;
    }
    return url;
  }

  /** Whether uploads to this registry find existing blobs through the upload's own POST (see pushBlob). */
  probesBlobs(registry: string): boolean {
    return this.probeSupport.get(this.apiHost(registry)) === 'yes';
  }

  /**
   * Whether this registry was seen to ignore mounts (it answered a mount of a blob it had just stored with
   * 202, as ECR does unless blob mounting is enabled); false until an upload there taught it.
   */
  ignoresMounts(registry: string): boolean {
    return this.probeSupport.get(this.apiHost(registry)) === 'no';
  }

  /** Asks for a blob the repository was just given, by mount from itself: 201 means probes work here. */
  private async learnProbeSupport(repo: RepositoryRef, digest: Digest): Promise<void> {
    const host = this.apiHost(repo.registry);
    this.probeSupport.set(host, 'learning');
    const honoured = await this.mountBlob(repo, digest, repo.repository).catch(() => false);
    this.probeSupport.set(host, honoured ? 'yes' : 'no');
  }

  /**
   * Cross-repository mount of a blob from `from` (a repository on the same registry). True when the
   * registry mounted it (201); false when it opened an upload instead (202), which is cancelled.
   */
  async mountBlob(target: RepositoryRef, digest: Digest, from: string | RepositoryRef): Promise<boolean> {
    const source = typeof from === 'string' ? from : from.repository;
    if (typeof from !== 'string' && this.apiHost(from.registry) !== this.apiHost(target.registry))
      return false;
    const op = pushOperation(`mount blob ${digest} from ${source}`, target);
    op.scopes.push(repositoryScope(source, ['pull']));
    const url = this.requests.url(target, '/blobs/uploads/');
    url.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(source)}`;
    const response = await this.requests.send(op, {
      method: 'POST',
      url,
      retrySafe: true,
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (response.status === 201) return true;
    if (response.status === 202) {
      if (response.header('location') !== undefined)
        await this.requests.cancelUpload(op, this.requests.uploadLocation(op, response));
      return false;
    }
    throw await this.requests.statusError(op, response);
  }

  /** All tags, following `Link` pagination up to `maxPages` pages. */
  async listTags(repo: RepositoryRef, options: ListOptions = {}): Promise<string[]> {
    const op = pullOperation('list tags of', repo);
    const first = this.requests.url(repo, '/tags/list');
    if (options.pageSize !== undefined) first.search = `?n=${options.pageSize}`;
    const tags: string[] = [];
    await this.requests.pages(op, first, options.maxPages ?? this.maxPages, {}, (body) => {
      const document = parseJson(body) as { tags?: unknown } | undefined;
      if (
        !document ||
        (document.tags !== null && document.tags !== undefined && !Array.isArray(document.tags))
      ) {
        throw new RegistryError(
          'REGISTRY_REJECTED',
          `list tags of ${imageName(repo)}: the answer is not a tag list`,
          {
            registry: repo.registry,
            host: this.apiHost(repo.registry),
            repository: repo.repository,
          },
        );
      }
      for (const tag of (document.tags ?? []) as unknown[]) if (typeof tag === 'string') tags.push(tag);
    });
    return tags;
  }

  /**
   * Manifests whose subject is `digest`, from the referrers API; from the `sha256-<hex>` tag when the
   * registry has no referrers API (404/405/501). Empty when there are none.
   */
  async listReferrers(repo: RepositoryRef, digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    const op = pullOperation(`list referrers of ${digest} in`, repo);
    const url = this.requests.url(repo, `/referrers/${digest}`);
    if (artifactType !== undefined) url.search = `?artifactType=${encodeURIComponent(artifactType)}`;
    const found: Descriptor[] = [];
    let filtered = false;
    const supported = await this.requests.pages(
      op,
      url,
      this.maxPages,
      { accept: mediaTypes.ociIndex, fallback: [404, 405, 501] },
      (body, response) => {
        filtered ||= (response.header('oci-filters-applied') ?? '')
          .split(',')
          .some((f) => f.trim() === 'artifactType');
        found.push(...this.requests.indexEntries(op, response, body));
      },
    );
    let entries = found;
    if (!supported) {
      const tag = referrersTag(digest);
      let fallback: FetchedManifest;
      try {
        fallback = await this.getManifest(repo, tag, [mediaTypes.ociIndex, mediaTypes.dockerManifestList]);
      } catch (error) {
        if (error instanceof RegistryError && error.code === 'REGISTRY_NOT_FOUND') return [];
        throw error;
      }
      entries = this.requests.indexEntries(op, undefined, fallback.bytes);
    }
    return artifactType === undefined || filtered
      ? entries
      : entries.filter((e) => e.artifactType === artifactType);
  }

  /**
   * The quota as a HEAD on `reference` reports it (Docker Hub does not count HEADs). A 429 is reported,
   * not retried or thrown; 404 is reported too (the headers still carry the quota).
   */
  async rateLimitStatus(
    repo: RepositoryRef = dockerHubRateLimitProbe,
    reference = 'latest',
  ): Promise<RateLimitStatus> {
    const op = pullOperation('check quota with', repo, reference);
    const response = await this.requests.send(op, {
      method: 'HEAD',
      url: this.requests.url(repo, `/manifests/${reference}`),
      headers: { accept: defaultManifestAccept.join(', ') },
      retryRateLimited: false,
    });
    if (response.status !== 200 && response.status !== 404 && response.status !== 429) {
      throw await this.requests.statusError(op, response);
    }
    return {
      status: response.status,
      rateLimit: parseRateLimit(response.headers),
      retryAfterSeconds: parseRetryAfter(response.header('retry-after')),
    };
  }

  async close(): Promise<void> {
    if (this.ownsTransport) await this.transport.close();
  }

  /** The host API requests for `registry` go to: an `apiHosts` override, else `registryApiHost`. */
  apiHost(registry: string): string {
    return this.requests.apiHost(registry);
  }
}

function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const bare = bareMediaType(contentType ?? '');
  if (
    bare !== '' &&
    bare !== 'application/json' &&
    bare !== 'text/plain' &&
    bare !== 'application/octet-stream'
  ) {
    return bare;
  }
  const document = parseJson(bytes) as { mediaType?: unknown; manifests?: unknown } | undefined;
  if (document && typeof document.mediaType === 'string') return document.mediaType;
  return document && Array.isArray(document.manifests) ? mediaTypes.ociIndex : mediaTypes.ociManifest;
}
