/**
 * The requests a `RegistryClient` sends, and what their answers mean when they are not the expected ones:
 * authentication (credentials up front where known, one retry after a 401 that taught something new, the
 * registry's Authorization only to its own host), `Link` pagination, upload locations, and the
 * `RegistryError` an unexpected answer becomes (code by status; a message naming the image, the host and
 * the status; a hint). What each operation asks for is the client's.
 */
import type { Readable } from 'node:stream';
import { registryApiHost, type ImageReference } from '../reference/reference.ts';
import { isDigest } from '../oci/digest.ts';
import { parseManifest, type Descriptor } from '../oci/manifest.ts';
import { mediaTypes } from '../oci/mediatypes.ts';
import { isOciError } from '../oci/errors.ts';
import { redact, type PullsafeErrorCode } from '../errors/index.ts';
import { credentialFlags, repositoryScope, type Authenticator } from './auth.ts';
import { RegistryError, type RegistryErrorDetails } from './errors.ts';
import { describeRateLimit, parseRateLimit } from './ratelimit.ts';
import {
  BodyTooLargeError,
  destroyQuietly,
  parseRetryAfter,
  TransportError,
  type RequestBody,
  type Transport,
  type TransportRequest,
  type TransportResponse,
} from './transport.ts';

/** A repository on a registry, as in `ImageReference` (`docker.io`, `library/nginx`). */
export type RepositoryRef = Pick<ImageReference, 'registry' | 'repository'>;

/** What a client accepts when it does not say: indexes first, then single-platform manifests. */
export const defaultManifestAccept: readonly string[] = [
  mediaTypes.ociIndex,
  mediaTypes.dockerManifestList,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifest,
];

/** Bounds on bodies read whole: an error answer, and one page of a list. */
export const ERROR_BODY_LIMIT = 64 * 1024;
export const LIST_BODY_LIMIT = 16 * 1024 * 1024;

/** What an operation is about, for scopes and messages. */
export interface Operation {
  /** `fetch manifest`, `push blob sha256:…`, … */
  what: string;
  repo: RepositoryRef;
  reference?: string;
  scopes: string[];
  /** pull or push, for hints. */
  access: 'pull' | 'push';
}

/** Sends a client's requests to its registries and reads what went wrong; one per `RegistryClient`. */
export class RegistryRequests {
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private readonly apiHosts: Map<string, string>;

  constructor(transport: Transport, auth: Authenticator, apiHosts: Map<string, string>) {
    this.transport = transport;
    this.auth = auth;
    this.apiHosts = apiHosts;
  }

  /** The host API requests for `registry` go to: an `apiHosts` override, else `registryApiHost`. */
  apiHost(registry: string): string {
    return this.apiHosts.get(registry) ?? registryApiHost(registry);
  }

  url(repo: RepositoryRef, suffix: string): URL {
    return this.transport.url(this.apiHost(repo.registry), `/v2/${repo.repository}${suffix}`);
  }

  /**
   * Sends with authentication: credentials known from earlier challenges up front, and one retry after a
   * 401 taught something new. The registry's Authorization goes only to the registry's own host.
   */
  async send(op: Operation, request: TransportRequest): Promise<TransportResponse> {
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
    const retry = await this.answerChallenge(op, challenge, authorization);
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
  async pages(
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

  indexEntries(op: Operation, response: TransportResponse | undefined, body: Buffer): Descriptor[] {
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

  uploadLocation(op: Operation, response: TransportResponse): string {
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
  async cancelUpload(op: Operation, location: string): Promise<void> {
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

  details(op: Operation, response: TransportResponse | undefined, host?: string): RegistryErrorDetails {
    const details: RegistryErrorDetails = {
      registry: op.repo.registry,
      host: response?.url.host ?? host ?? this.apiHost(op.repo.registry),
      repository: op.repo.repository,
    };
    if (op.reference !== undefined) details.reference = op.reference;
    if (response) details.status = response.status;
    return details;
  }

  mismatch(op: Operation, response: TransportResponse, reason: string): RegistryError {
    return new RegistryError(
      'DIGEST_MISMATCH',
      `${op.what} ${imageName(op.repo, op.reference)}: ${reason} (${response.url.host}, HTTP ${response.status})`,
      this.details(op, response),
      { hint: 'the registry (or a proxy in between) changed the content; nothing was kept' },
    );
  }

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

  /** The error for an unexpected status: code by status, message with image, host and status, and a hint. */
  async statusError(op: Operation, response: TransportResponse): Promise<RegistryError> {
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

  /** The Authorization header `send` would give a request of `op` to `url` (default: the registry's own API). */
  async ownHostHeaders(op: Operation, url?: URL): Promise<Record<string, string>> {
    const host = this.apiHost(op.repo.registry);
    if (url && (url.host !== host || url.protocol !== this.transport.url(host, '/').protocol)) return {};
    const authorization = await this.withContext(op, () =>
      this.auth.authorization({ registry: op.repo.registry, host }, op.scopes),
    );
    return authorization === undefined ? {} : { authorization };
  }

  /**
   * The Authorization to send again after `challenge` (a 401's WWW-Authenticate) answered a request of
   * `op` that carried `sent`; undefined when the challenge teaches nothing new.
   */
  async answerChallenge(
    op: Operation,
    challenge: string | undefined,
    sent: string | undefined,
  ): Promise<string | undefined> {
    const target = { registry: op.repo.registry, host: this.apiHost(op.repo.registry) };
    return this.withContext(op, () => this.auth.challenged(target, op.scopes, challenge, sent));
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

export function pullOperation(what: string, repo: RepositoryRef, reference?: string): Operation {
  const op: Operation = { what, repo, scopes: [repositoryScope(repo.repository, ['pull'])], access: 'pull' };
  if (reference !== undefined) op.reference = reference;
  return op;
}

export function pushOperation(what: string, repo: RepositoryRef, reference?: string): Operation {
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

export function isReplayable(body: RequestBody): boolean {
  return typeof body === 'string' || body instanceof Uint8Array || 'open' in body;
}

export function parseJson(body: Buffer): unknown {
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
