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
import { registryApiHost, type ImageReference } from '../reference/reference.ts';
import { digestAlgorithm, digestOf, isDigest, type Digest } from '../oci/digest.ts';
import { parseManifest, type Descriptor } from '../oci/manifest.ts';
import { bareMediaType, mediaTypes } from '../oci/mediatypes.ts';
import { isOciError } from '../oci/errors.ts';
import { redact, type PullsafeErrorCode } from '../errors/index.ts';
import { Authenticator, credentialFlags, repositoryScope, type AuthStats } from './auth.ts';
import type { CredentialSource } from './credentials.ts';
import { RegistryError, type RegistryErrorDetails } from './errors.ts';
import { describeRateLimit, parseRateLimit, type RateLimit } from './ratelimit.ts';
import {
  BodyTooLargeError,
  destroyQuietly,
  parseRetryAfter,
  Transport,
  TransportError,
  type RequestBody,
  type TransportOptions,
  type TransportRequest,
  type TransportResponse,
} from './transport.ts';
import { verifiedStream } from './verify.ts';

/** A repository on a registry, as in `ImageReference` (`docker.io`, `library/nginx`). */
export type RepositoryRef = Pick<ImageReference, 'registry' | 'repository'>;

/** What a client accepts when it does not say: indexes first, then single-platform manifests. */
export const defaultManifestAccept: readonly string[] = [
  mediaTypes.ociIndex,
  mediaTypes.dockerManifestList,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifest,
];

/** Docker Hub's repository for reading the quota without spending it. */
export const dockerHubRateLimitProbe: RepositoryRef = {
  registry: 'docker.io',
  repository: 'ratelimitpreview/test',
};

export const DEFAULT_MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
const ERROR_BODY_LIMIT = 64 * 1024;
const LIST_BODY_LIMIT = 16 * 1024 * 1024;

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

/** What an operation is about, for scopes and messages. */
interface Operation {
  /** `fetch manifest`, `push blob sha256:…`, … */
  what: string;
  repo: RepositoryRef;
  reference?: string;
  scopes: string[];
  /** pull or push, for hints. */
  access: 'pull' | 'push';
}

export class RegistryClient {
  readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly auth: Authenticator;
  private readonly maxManifestBytes: number;
  private readonly maxPages: number;
  private readonly apiHosts: Map<string, string>;
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
    this.apiHosts = new Map(Object.entries(options.apiHosts ?? {}));
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
    const response = await this.send(op, {
      method: 'HEAD',
      url: this.url(repo, `/manifests/${reference}`),
      headers: { accept: accept.join(', ') },
    });
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.statusError(op, response);
    const rateLimit = parseRateLimit(response.headers);
    const announced = response.header('docker-content-digest');
    if (announced === undefined || !isDigest(announced)) {
      // Some registries leave the digest out of HEAD answers: fetch and hash instead.
      const fetched = await this.getManifest(repo, reference, accept);
      return { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.size, rateLimit };
    }
    const digest = announced as Digest;
    if (isDigest(reference) && reference !== digest) {
      throw this.mismatch(op, response, `${response.url.host} announced ${digest} for ${reference}`);
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
    const response = await this.send(op, {
      method: 'GET',
      url: this.url(repo, `/manifests/${reference}`),
      headers: { accept: accept.join(', ') },
      bufferLimit: this.maxManifestBytes,
    });
    if (response.status !== 200) throw await this.statusError(op, response);
    const bytes = response.bytes ?? Buffer.alloc(0);
    const announced = response.header('docker-content-digest');
    let digest = digestOf(bytes);
    if (isDigest(reference)) {
      const expected = reference as Digest;
      const actual = digestOf(bytes, digestAlgorithm(expected));
      if (actual !== expected) throw this.mismatch(op, response, `the manifest hashes to ${actual}`);
      digest = expected;
    }
    if (announced !== undefined && isDigest(announced)) {
      const actual = digestOf(bytes, digestAlgorithm(announced as Digest));
      if (actual !== announced) {
        throw this.mismatch(
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

  /** By registry: whether it lists referrers itself (learnt once, when a manifest with a subject is pushed). */
  private readonly referrersApi = new Map<string, boolean>();
  /** Referrers-tag updates in progress, by repository and tag: one at a time per tag. */
  private readonly referrersTagUpdates = new Map<string, Promise<void>>();

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
    const response = await this.send(op, {
      method: 'PUT',
      url: this.url(repo, `/manifests/${reference}`),
      headers: { 'content-type': mediaType },
      body: bytes,
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (response.status < 200 || response.status >= 300) throw await this.statusError(op, response);
    const announced = response.header('docker-content-digest');
    const algorithm =
      announced !== undefined && isDigest(announced) ? digestAlgorithm(announced as Digest) : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (announced !== undefined && isDigest(announced) && announced !== digest) {
      throw this.mismatch(
        op,
        response,
        `the registry stored it as ${announced}, the bytes hash to ${digest}`,
      );
    }
    if (response.header('oci-subject') === undefined) {
      await this.listInReferrersTag(repo, bytes, mediaType, digest);
    }
    return { digest };
  }

  /** The referrers tag of `digest`: `<alg>-<hex>`, the algorithm cut to 32 and the hex to 64 characters. */
  private static referrersTag(digest: Digest): string {
    const algorithm = digestAlgorithm(digest).replace(/[^\w.-]/g, '-');
    return `${algorithm.slice(0, 32)}-${digest.slice(digest.indexOf(':') + 1).slice(0, 64)}`;
  }

  /** Adds a pushed manifest that has a subject to the subject's referrers tag, when the registry needs that. */
  private async listInReferrersTag(
    repo: RepositoryRef,
    bytes: Uint8Array,
    mediaType: string,
    digest: Digest,
  ): Promise<void> {
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
    const tag = RegistryClient.referrersTag(parsed.subject.digest);
    const key = `${repo.registry}/${repo.repository}:${tag}`;
    const update = (this.referrersTagUpdates.get(key) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.addToReferrersTag(repo, tag, descriptor));
    this.referrersTagUpdates.set(key, update);
    try {
      await update;
    } finally {
      if (this.referrersTagUpdates.get(key) === update) this.referrersTagUpdates.delete(key);
    }
  }

  /** Whether the registry lists referrers of `subject` itself (200 with an index); asked once per registry. */
  private async hasReferrersApi(repo: RepositoryRef, subject: Digest): Promise<boolean> {
    const known = this.referrersApi.get(repo.registry);
    if (known !== undefined) return known;
    const op = pushOperation(`list referrers of ${subject} in`, repo);
    const response = await this.send(op, {
      method: 'GET',
      url: this.url(repo, `/referrers/${subject}`),
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
      throw await this.statusError(op, response);
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
    const url = this.url(repo, `/manifests/${tag}`);
    // Every manifest type: distribution answers 404 for a manifest of a type the request does not accept.
    const response = await this.send(op, {
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
      throw await this.statusError(op, response);
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
          this.details(op, response),
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
    const put = await this.send(op, {
      method: 'PUT',
      url,
      headers: { 'content-type': mediaTypes.ociIndex },
      body: Buffer.from(JSON.stringify({ ...index, manifests: [...index.manifests, descriptor] })),
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (put.status < 200 || put.status >= 300) throw await this.statusError(op, put);
  }

  /** A blob's size, by HEAD; undefined when the registry says 404. */
  async checkBlob(repo: RepositoryRef, digest: Digest): Promise<number | undefined> {
    const op = pullOperation(`check blob ${digest}`, repo);
    const response = await this.send(op, { method: 'HEAD', url: this.url(repo, `/blobs/${digest}`) });
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await this.statusError(op, response);
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
    const response = await this.send(op, {
      method: 'GET',
      url: this.url(repo, `/blobs/${digest}`),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.status !== 200) throw await this.statusError(op, response);
    const length = Number(response.header('content-length'));
    const announced =
      Number.isSafeInteger(length) && response.header('content-length') !== undefined ? length : undefined;
    if (announced !== undefined && options.expectedSize !== undefined && announced !== options.expectedSize) {
      await response.discard();
      throw this.mismatch(
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
          this.details(op, response),
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
      if (location === 'present') return 'present';
      const target = new URL(location);
      target.search = `${target.search ? `${target.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
      const body: RequestBody = { length: size, open };
      let finished: TransportResponse;
      try {
        finished = await this.send(op, {
          method: 'PUT',
          url: target,
          headers: { 'content-type': 'application/octet-stream' },
          body,
          bufferLimit: ERROR_BODY_LIMIT,
        });
      } catch (error) {
        // The source failed or the registry vanished: leave no upload open behind.
        await this.cancelUpload(op, location);
        throw error;
      }
      if (finished.status >= 200 && finished.status < 300) {
        const announced = finished.header('docker-content-digest');
        if (announced !== undefined && isDigest(announced) && announced !== digest) {
          throw this.mismatch(op, finished, `the registry stored ${announced}`);
        }
        return uploaded();
      }
      // A retried PUT may find its upload already completed by an attempt whose answer was lost.
      if (finished.status === 404 && (await this.checkBlob(repo, digest)) === size) return uploaded();
      const error = await this.statusError(op, finished);
      await this.cancelUpload(op, location);
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
    if (started === 'present') return 'present';
    const put = new URL(started);
    put.search = `${put.search ? `${put.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
    const pull = pullOperation(`fetch blob ${digest}`, from);
    const pump = async (get: Record<string, string>) =>
      wire.pump({
        get: { url: this.url(from, `/blobs/${digest}`), headers: get },
        put: { url: put, headers: await this.ownHostHeaders(op, put) },
        digest,
        size,
        ...(options.onBytes ? { onBytes: options.onBytes } : {}),
      });
    const sent = await this.ownHostHeaders(pull);
    let outcome = await pump(sent);
    if (!outcome.ok && outcome.get?.status === 401) {
      // The source's first challenge (no token for this scope yet): answer it, and pump once more.
      const source = { registry: from.registry, host: this.apiHost(from.registry) };
      const challenge = outcome.get.headers['www-authenticate'];
      const retry = await this.withContext(pull, () =>
        this.auth.challenged(source, pull.scopes, challenge, sent.authorization),
      );
      if (retry !== undefined) outcome = await pump({ authorization: retry });
    }
    if (!outcome.ok) {
      options.onFallback?.(redact(outcome.reason));
      await this.cancelUpload(op, started);
      return general();
    }
    const announced = outcome.put.headers['docker-content-digest'];
    if (announced !== undefined && isDigest(announced) && announced !== digest) {
      throw new RegistryError(
        'DIGEST_MISMATCH',
        `${op.what} ${imageName(to)}: the registry stored ${announced}`,
        { ...this.details(op, undefined, put.host), status: outcome.put.status },
        { hint: 'the registry (or a proxy in between) changed the content; nothing was kept' },
      );
    }
    if (options.probe === 'auto' && !this.probeSupport.has(host)) await this.learnProbeSupport(to, digest);
    return 'uploaded';
  }

  /** Opens an upload (POST; with `probe`, a mount from the repository itself): its Location, or `present`. */
  private async startUpload(op: Operation, digest: Digest, probe: boolean): Promise<string | 'present'> {
    const started = await this.send(op, {
      method: 'POST',
      url: this.uploadStartUrl(op.repo, digest, probe),
      retrySafe: true,
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (started.status === 201) return 'present';
    if (started.status !== 202) throw await this.statusError(op, started);
    return this.uploadLocation(op, started);
  }

  /** Where an upload starts; with `probe`, asking to mount the blob from the repository itself. */
  private uploadStartUrl(repo: RepositoryRef, digest: Digest, probe: boolean): URL {
    const url = this.url(repo, '/blobs/uploads/');
    if (probe) {
      url.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(repo.repository)}`;
    }
    return url;
  }

  /** The Authorization header `send` would give a request of `op` to `url` (default: the registry's own API). */
  private async ownHostHeaders(op: Operation, url?: URL): Promise<Record<string, string>> {
    const host = this.apiHost(op.repo.registry);
    if (url && (url.host !== host || url.protocol !== this.transport.url(host, '/').protocol)) return {};
    const authorization = await this.withContext(op, () =>
      this.auth.authorization({ registry: op.repo.registry, host }, op.scopes),
    );
    return authorization === undefined ? {} : { authorization };
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
    const url = this.url(target, '/blobs/uploads/');
    url.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(source)}`;
    const response = await this.send(op, {
      method: 'POST',
      url,
      retrySafe: true,
      bufferLimit: ERROR_BODY_LIMIT,
    });
    if (response.status === 201) return true;
    if (response.status === 202) {
      if (response.header('location') !== undefined)
        await this.cancelUpload(op, this.uploadLocation(op, response));
      return false;
    }
    throw await this.statusError(op, response);
  }

  /** All tags, following `Link` pagination up to `maxPages` pages. */
  async listTags(repo: RepositoryRef, options: ListOptions = {}): Promise<string[]> {
    const op = pullOperation('list tags of', repo);
    const first = this.url(repo, '/tags/list');
    if (options.pageSize !== undefined) first.search = `?n=${options.pageSize}`;
    const tags: string[] = [];
    await this.pages(op, first, options.maxPages ?? this.maxPages, {}, (body) => {
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
    const url = this.url(repo, `/referrers/${digest}`);
    if (artifactType !== undefined) url.search = `?artifactType=${encodeURIComponent(artifactType)}`;
    const found: Descriptor[] = [];
    let filtered = false;
    const supported = await this.pages(
      op,
      url,
      this.maxPages,
      { accept: mediaTypes.ociIndex, fallback: [404, 405, 501] },
      (body, response) => {
        filtered ||= (response.header('oci-filters-applied') ?? '')
          .split(',')
          .some((f) => f.trim() === 'artifactType');
        found.push(...this.indexEntries(op, response, body));
      },
    );
    let entries = found;
    if (!supported) {
      const tag = RegistryClient.referrersTag(digest);
      let fallback: FetchedManifest;
      try {
        fallback = await this.getManifest(repo, tag, [mediaTypes.ociIndex, mediaTypes.dockerManifestList]);
      } catch (error) {
        if (error instanceof RegistryError && error.code === 'REGISTRY_NOT_FOUND') return [];
        throw error;
      }
      entries = this.indexEntries(op, undefined, fallback.bytes);
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
    const response = await this.send(op, {
      method: 'HEAD',
      url: this.url(repo, `/manifests/${reference}`),
      headers: { accept: defaultManifestAccept.join(', ') },
      retryRateLimited: false,
    });
    if (response.status !== 200 && response.status !== 404 && response.status !== 429) {
      throw await this.statusError(op, response);
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

  // ---- plumbing -----------------------------------------------------------------------------------------

  /** The host API requests for `registry` go to: an `apiHosts` override, else `registryApiHost`. */
  apiHost(registry: string): string {
    return this.apiHosts.get(registry) ?? registryApiHost(registry);
  }

  private url(repo: RepositoryRef, suffix: string): URL {
    return this.transport.url(this.apiHost(repo.registry), `/v2/${repo.repository}${suffix}`);
  }

  /**
   * Sends with authentication: credentials known from earlier challenges up front, and one retry after a
   * 401 taught something new. The registry's Authorization goes only to the registry's own host.
   */
  private async send(op: Operation, request: TransportRequest): Promise<TransportResponse> {
    const host = this.apiHost(op.repo.registry);
    const target = { registry: op.repo.registry, host };
    const ownHost =
      request.url.host === host && request.url.protocol === this.transport.url(host, '/').protocol;
    const authorization = ownHost
      ? await this.withContext(op, () => this.auth.authorization(target, op.scopes))
      : undefined;
    const response = await this.dispatch(op, request, authorization);
    if (response.status !== 401 || !ownHost) return response;
    const challenge = response.headerList('www-authenticate');
    if (response.bytes === undefined) await response.discard();
    if (request.body !== undefined && !isReplayable(request.body)) return response;
    const retry = await this.withContext(op, () =>
      this.auth.challenged(target, op.scopes, challenge, authorization),
    );
    if (retry === undefined) return response;
    return this.dispatch(op, request, retry);
  }

  /** Adds the operation and image to errors of the token service, which knows only the registry. */
  private async withContext<T>(op: Operation, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof RegistryError) || error.repository !== undefined) throw error;
      const details: RegistryErrorDetails = { ...this.details(op, undefined, error.host) };
      if (error.status !== undefined) details.status = error.status;
      if (error.registryCode !== undefined) details.registryCode = error.registryCode;
      if (error.retryAfterSeconds !== undefined) details.retryAfterSeconds = error.retryAfterSeconds;
      if (error.rateLimit !== undefined) details.rateLimit = error.rateLimit;
      throw new RegistryError(
        error.code,
        `${op.what} ${imageName(op.repo, op.reference)}: ${error.message}`,
        details,
        {
          ...(error.hint !== undefined ? { hint: error.hint } : {}),
          cause: error.cause ?? error,
        },
      );
    }
  }

  private async dispatch(
    op: Operation,
    request: TransportRequest,
    authorization: string | undefined,
  ): Promise<TransportResponse> {
    const headers = { ...request.headers };
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      return await this.transport.request({ ...request, headers });
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        throw new RegistryError(
          'MANIFEST_INVALID',
          `${op.what} ${imageName(op.repo, op.reference)}: ${error.host} sent more than ${error.limit} bytes`,
          this.details(op, undefined, error.host),
          { hint: 'manifests are small JSON documents; this is not one (or raise the manifest size limit)' },
        );
      }
      if (error instanceof TransportError) {
        const tls = /CERT|SSL|TLS|EPROTO/i.test(error.code);
        throw new RegistryError(
          'REGISTRY_UNAVAILABLE',
          `${op.what} ${imageName(op.repo, op.reference)}: no HTTP answer: ${error.message}`,
          this.details(op, undefined, error.host),
          {
            // A transport failure that knows what to do about itself (an untrusted certificate, a host
            // answering plain HTTP) gives its own hint.
            hint:
              error.hint ??
              (tls
                ? `TLS with ${error.host} failed; if the registry speaks plain HTTP, pass --plain-http ${error.host}; if it uses a private CA, trust it with NODE_EXTRA_CA_CERTS=FILE`
                : `check that ${error.host} is reachable from here (DNS, proxy, firewall); pullsafe already retried`),
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  /** Follows `Link: <…>; rel="next"` pages; false when the first answer is one of `fallback`. */
  private async pages(
    op: Operation,
    first: URL,
    maxPages: number,
    options: { accept?: string; fallback?: number[] },
    onPage: (body: Buffer, response: TransportResponse) => void,
  ): Promise<boolean> {
    const seen = new Set<string>();
    let url: URL | undefined = first;
    for (let page = 0; url; page++) {
      if (page >= maxPages) {
        throw new RegistryError(
          'REGISTRY_REJECTED',
          `${op.what} ${imageName(op.repo)}: more than ${maxPages} pages from ${url.host}`,
          this.details(op, undefined, url.host),
          { hint: 'raise the page limit, or ask for larger pages' },
        );
      }
      seen.add(url.toString());
      const response = await this.send(op, {
        method: 'GET',
        url,
        headers: options.accept ? { accept: options.accept } : {},
        bufferLimit: LIST_BODY_LIMIT,
      });
      if (page === 0 && options.fallback?.includes(response.status)) return false;
      if (response.status !== 200) throw await this.statusError(op, response);
      onPage(response.bytes ?? Buffer.alloc(0), response);
      const next = nextLink(response.headerList('link'), response.url);
      if (next && next.host !== response.url.host) {
        throw new RegistryError(
          'REGISTRY_REJECTED',
          `${op.what} ${imageName(op.repo)}: ${response.url.host} sent a next-page link to another host (${next.host})`,
          this.details(op, response),
          { hint: 'the registry is misconfigured; pullsafe does not send credentials to other hosts' },
        );
      }
      url = next && !seen.has(next.toString()) ? next : undefined;
    }
    return true;
  }

  private indexEntries(op: Operation, response: TransportResponse | undefined, body: Buffer): Descriptor[] {
    try {
      return parseManifest(body, mediaTypes.ociIndex).manifests;
    } catch (error) {
      if (!isOciError(error)) throw error;
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${op.what} ${imageName(op.repo)}: the answer is not a valid image index: ${error.message}`,
        this.details(op, response),
        { hint: 'the registry returned a malformed referrers index' },
      );
    }
  }

  private uploadLocation(op: Operation, response: TransportResponse): string {
    const location = response.header('location');
    if (location === undefined) {
      throw new RegistryError(
        'REGISTRY_REJECTED',
        `${op.what} ${imageName(op.repo)}: ${response.url.host} opened an upload without a Location (HTTP ${response.status})`,
        this.details(op, response),
        { hint: 'the registry does not follow the distribution API for uploads' },
      );
    }
    return uploadUrl(location, response.url);
  }

  /** Best effort: an upload left open expires on its own. */
  private async cancelUpload(op: Operation, location: string): Promise<void> {
    try {
      const response = await this.send(op, {
        method: 'DELETE',
        url: new URL(location),
        bufferLimit: ERROR_BODY_LIMIT,
        maxAttempts: 1,
      });
      if (response.bytes === undefined) await response.discard();
    } catch {
      // The upload expires on the registry side.
    }
  }

  private details(
    op: Operation,
    response: TransportResponse | undefined,
    host?: string,
  ): RegistryErrorDetails {
    const details: RegistryErrorDetails = {
      registry: op.repo.registry,
      host: response?.url.host ?? host ?? this.apiHost(op.repo.registry),
      repository: op.repo.repository,
    };
    if (op.reference !== undefined) details.reference = op.reference;
    if (response) details.status = response.status;
    return details;
  }

  private mismatch(op: Operation, response: TransportResponse, reason: string): RegistryError {
    return new RegistryError(
      'DIGEST_MISMATCH',
      `${op.what} ${imageName(op.repo, op.reference)}: ${reason} (${response.url.host}, HTTP ${response.status})`,
      this.details(op, response),
      { hint: 'the registry (or a proxy in between) changed the content; nothing was kept' },
    );
  }

  /** The error for an unexpected status: code by status, message with image, host and status, and a hint. */
  /**
   * Whether a plain HTTP 400 came from a TLS server. A HEAD's answer has no body to tell, so `/v2/` is
   * asked once with a GET (only on this error path).
   */
  private async answersHttps(url: URL, body: Buffer): Promise<boolean> {
    if (httpsOnlyAnswer.test(body.toString('latin1'))) return true;
    if (body.length > 0) return false;
    try {
      const probe = await this.transport.request({
        method: 'GET',
        url: new URL('/v2/', url),
        bufferLimit: 4096,
        maxAttempts: 1,
      });
      return (
        probe.status === 400 && httpsOnlyAnswer.test((probe.bytes ?? Buffer.alloc(0)).toString('latin1'))
      );
    } catch {
      return false;
    }
  }

  private async statusError(op: Operation, response: TransportResponse): Promise<RegistryError> {
    const status = response.status;
    const host = response.url.host;
    const body = response.bytes ?? (await readSome(response.body, ERROR_BODY_LIMIT));
    const registryError = parseErrorBody(body);
    const rateLimit = parseRateLimit(response.headers);
    const retryAfter = parseRetryAfter(response.header('retry-after'));
    const details = this.details(op, response);
    if (registryError?.code) details.registryCode = registryError.code;
    if (rateLimit) details.rateLimit = rateLimit;
    if (retryAfter !== undefined) details.retryAfterSeconds = retryAfter;
    const said = registryError
      ? ` ${registryError.code ?? ''}${registryError.message ? `: ${registryError.message}` : ''}`.trimEnd()
      : '';
    const tries = response.attempts > 1 ? ` after ${response.attempts} attempts` : '';
    const image = imageName(op.repo, op.reference);
    const base = `${op.what} ${image}: ${host} answered HTTP ${status}${said ? ` (${said.trim()})` : ''}${tries}`;
    const credentialed = await this.auth.hasCredentials(op.repo.registry).catch(() => false);
    let code: PullsafeErrorCode;
    let hint: string;
    let message = base;
    if (status === 401) {
      code = 'REGISTRY_UNAUTHORIZED';
      hint = credentialed
        ? `the credentials for ${op.repo.registry} were refused: check them (docker login ${op.repo.registry})`
        : `log in: docker login ${op.repo.registry}, or give credentials (${credentialFlags})` +
          (op.repo.registry === 'docker.io'
            ? '; Docker Hub also answers 401 for a repository that does not exist'
            : '');
    } else if (status === 403) {
      code = 'REGISTRY_DENIED';
      hint = `the credentials are valid but may not ${op.access} ${op.repo.repository}; ask for ${op.access} access`;
    } else if (status === 404) {
      code = 'REGISTRY_NOT_FOUND';
      hint =
        op.repo.registry === 'docker.io'
          ? 'check the repository and tag; official images are library/<name>'
          : 'check the repository name, tag or digest';
    } else if (status === 429) {
      code = 'RATE_LIMITED';
      if (rateLimit) message += `; quota ${describeRateLimit(rateLimit)}`;
      const wait = retryAfter !== undefined ? `wait ${retryAfter} s` : 'wait for the window to pass';
      if (op.repo.registry === 'docker.io') {
        const official = /^library\/([^/]+)$/.exec(op.repo.repository);
        hint =
          `Docker Hub's pull limit is reached: ${credentialed ? '' : `log in (docker login, or ${credentialFlags}) for a higher limit, `}` +
          `${wait}` +
          (official ? `, or pull public.ecr.aws/docker/library/${official[1]} instead` : '') +
          ', or serve pulls through a pullsafe cache';
      } else {
        hint = `${host} is rate limiting; ${wait}, or lower the concurrency`;
      }
    } else if (status >= 500) {
      code = 'REGISTRY_UNAVAILABLE';
      hint = `${host} is failing; retry later`;
    } else {
      code = 'REGISTRY_REJECTED';
      hint =
        status === 400 && registryError?.code === 'DIGEST_INVALID'
          ? 'the registry computed a different digest for the uploaded bytes'
          : `the registry rejected the request (HTTP ${status})`;
      if (status === 400 && registryError?.code === 'DIGEST_INVALID') code = 'DIGEST_MISMATCH';
      if (status === 400 && registryError?.code === 'MANIFEST_BLOB_UNKNOWN') {
        hint = 'push the blobs the manifest refers to first';
      }
      if (
        status === 400 &&
        response.url.protocol === 'http:' &&
        (await this.answersHttps(response.url, body))
      ) {
        code = 'REGISTRY_UNAVAILABLE';
        message = `${op.what} ${image}: ${host} answers HTTPS, not plain HTTP`;
        hint = `pullsafe spoke plain HTTP to it (a loopback address, or --plain-http); for HTTPS pass --tls-verify=false (copy: --src-tls-verify=false / --dest-tls-verify=false), and drop --plain-http ${host} if given`;
      }
    }
    return new RegistryError(code, message, details, { hint });
  }
}

/** Go's TLS servers (distribution, Harbor, zot) answer a plain HTTP request with a 400 saying this. */
const httpsOnlyAnswer = /HTTP request to an HTTPS server/i;

/** An upload's Location, resolved against the request that opened it. */
function uploadUrl(location: string, requested: URL): string {
  const url = new URL(location, requested);
  // Never let an upload (and the token sent with it) drop from HTTPS to plain HTTP.
  if (url.host === requested.host && requested.protocol === 'https:') url.protocol = 'https:';
  return url.toString();
}

function pullOperation(what: string, repo: RepositoryRef, reference?: string): Operation {
  const op: Operation = { what, repo, scopes: [repositoryScope(repo.repository, ['pull'])], access: 'pull' };
  if (reference !== undefined) op.reference = reference;
  return op;
}

function pushOperation(what: string, repo: RepositoryRef, reference?: string): Operation {
  const op: Operation = {
    what,
    repo,
    scopes: [repositoryScope(repo.repository, ['pull', 'push'])],
    access: 'push',
  };
  if (reference !== undefined) op.reference = reference;
  return op;
}

/** `docker.io/library/nginx:1.25`, `…@sha256:…`. */
export function imageName(repo: RepositoryRef, reference?: string): string {
  const name = `${repo.registry}/${repo.repository}`;
  if (reference === undefined) return name;
  return `${name}${isDigest(reference) || reference.includes(':') ? '@' : ':'}${reference}`;
}

function isReplayable(body: RequestBody): boolean {
  return typeof body === 'string' || body instanceof Uint8Array || 'open' in body;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The first entry of a distribution error body, redacted and shortened. */
export function parseErrorBody(body: Buffer): { code?: string; message?: string } | undefined {
  const document = parseJson(body) as { errors?: unknown } | undefined;
  if (!document || !Array.isArray(document.errors)) return undefined;
  const first = document.errors[0] as { code?: unknown; message?: unknown } | undefined;
  if (!first || typeof first !== 'object') return undefined;
  const result: { code?: string; message?: string } = {};
  if (typeof first.code === 'string') result.code = redact(first.code).slice(0, 64);
  if (typeof first.message === 'string') result.message = redact(first.message).slice(0, 300);
  return result;
}

/** The `rel="next"` target of a Link header, resolved against the page's URL. */
export function nextLink(header: string | undefined, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match) continue;
    if (!/;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?/i.test(match[2]!)) continue;
    try {
      return new URL(match[1]!, base);
    } catch {
      return undefined;
    }
  }
  return undefined;
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

async function readSome(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= limit) break;
    }
  } catch {
    // An error body that breaks off is read as far as it came.
  }
  if (!body.readableEnded) destroyQuietly(body);
  return Buffer.concat(chunks).subarray(0, limit);
}
