/**
 * HTTP transport for registry clients, on one undici Agent (a keep-alive pool per origin).
 *
 * Promises:
 * - loopback hosts (`localhost`, 127.0.0.0/8, `[::1]`) and hosts in `plainHttp` are spoken to over plain
 *   HTTP, every other host over HTTPS;
 * - hosts in `insecure` (skopeo's `tls-verify: false`) are spoken to over HTTPS without verifying their
 *   certificate, on both paths; one that answers a TLS handshake in plain HTTP is spoken to over plain HTTP
 *   from then on, and the request that found out is sent again at once;
 * - a TLS failure is never retried, and its message says what happened (an untrusted certificate and why, a
 *   host answering plain HTTP), with a hint of its own (`TransportError.hint`), without OpenSSL's text;
 * - connecting, waiting for response headers and waiting between body chunks each have their own timeout;
 * - a request is sent again only when the failure is retryable (connection reset/refused, timeouts, 502,
 *   503, 504, 429) and only when sending it twice is harmless: an idempotent method (or `retrySafe`) and a
 *   body that can be produced again. Waits grow exponentially with jitter; a 429's `Retry-After` (seconds
 *   or HTTP-date) is honoured up to a cap, and a 429 asking for a longer wait is returned at once;
 * - redirects are followed by hand for GET/HEAD (or when asked), and the `Authorization` header is dropped
 *   as soon as a redirect leaves the original origin (blob downloads redirected to S3 or a CDN);
 * - error messages name the method, host and path, never a query string or a header value.
 *
 * Requests whose answer is read whole (HEADs, and those with `bufferLimit`: manifests, tokens, opening
 * uploads) and that are safe to send twice go first over the wire (wire.ts), pullsafe's own HTTP/1.1
 * connections; undici, loaded only when first needed, takes every other request, and any request the
 * wire could not read (a protocol surprise), which it then sends again at once. A connection that failed
 * on the wire is that attempt's failure, retried as above. An origin where the wire failed is left to
 * undici for a minute. Retries, redirects, timeouts and limits above apply to both paths alike.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { IncomingHttpHeaders } from 'node:http';
import type { LookupFunction } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { redact } from '../errors/index.ts';
import { backoffDelay } from '../shared/backoff.ts';
import {
  describeNetworkError,
  errorCode,
  isRetryableCode,
  isRetryableNetworkError,
  tlsFailure,
} from './network-errors.ts';
import { Wire, type Exchanged } from './wire.ts';

export const USER_AGENT = 'pullsafe/0.1';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * A request body. Bytes and strings can be sent again; `{ length, open }` is a stream that can be opened
 * again for a retry; a bare `Readable` is sent once and never retried.
 */
export type RequestBody =
  Uint8Array | string | { length: number; open: () => Readable | Promise<Readable> } | Readable;

export interface TransportRequest {
  method: HttpMethod;
  url: URL;
  /** Header names in any case; `User-Agent` is added. */
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Follow redirects. Default: true for GET and HEAD. */
  followRedirects?: boolean;
  /** Sending this request twice is harmless although the method is not idempotent (opening an upload). */
  retrySafe?: boolean;
  /** At most this many attempts (never more than the transport's own setting). */
  maxAttempts?: number;
  /** Wait and retry on 429. Default true; a quota probe sets it to false to read the 429 itself. */
  retryRateLimited?: boolean;
  /**
   * Read the whole body (at most this many bytes) within the attempt, so that a connection lost while
   * reading counts as a retryable failure. A larger 2xx body fails with `BodyTooLargeError`; a larger
   * error body is cut.
   */
  bufferLimit?: number;
  signal?: AbortSignal;
}

export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The final URL, after redirects. */
  url: URL;
  /** Attempts made, 1 when the first one answered. */
  attempts: number;
  /** The body stream; already consumed when `bytes` is set. */
  body: Readable;
  /** The body, when the request asked for `bufferLimit`. */
  bytes: Buffer | undefined;
  /** The first value of a header (name in any case), or undefined. */
  header(name: string): string | undefined;
  /** All values of a header joined with ", " (for WWW-Authenticate and Link). */
  headerList(name: string): string | undefined;
  /** Discards the rest of the body so the connection can be reused. */
  discard(): Promise<void>;
}

export interface RetryOptions {
  /** Total attempts, including the first. */
  attempts: number;
  /** First backoff delay; each retry doubles it, with jitter. */
  baseDelayMs: number;
  /** Upper bound of one backoff delay. */
  maxDelayMs: number;
  /** The longest `Retry-After` this transport waits for; a 429 asking for more is returned at once. */
  maxRetryAfterMs: number;
}

export interface TimeoutOptions {
  connectMs: number;
  /** From sending the request to receiving the complete response headers. */
  headersMs: number;
  /** Longest pause between two chunks of a response body. */
  bodyIdleMs: number;
}

export interface TransportEvent {
  type: 'retry';
  method: HttpMethod;
  host: string;
  /** The URL path, without its query. */
  path: string;
  /** The attempt that failed (1-based). */
  attempt: number;
  delayMs: number;
  /** `HTTP 503`, `ECONNRESET`, … */
  reason: string;
}

export interface TransportOptions {
  /** Hosts (`host` or `host:port`) spoken to over plain HTTP, besides loopback hosts. */
  plainHttp?: Iterable<string>;
  /**
   * Hosts (`host` or `host:port`) spoken to over HTTPS without certificate verification, and over plain
   * HTTP once one answers a handshake in plain HTTP (`--tls-verify=false`, `tls-verify: false`).
   */
  insecure?: Iterable<string>;
  timeouts?: Partial<TimeoutOptions>;
  retry?: Partial<RetryOptions>;
  /** Connections per origin. */
  connections?: number;
  maxRedirects?: number;
  userAgent?: string;
  /** TLS settings for HTTPS origins (a private CA, or `rejectUnauthorized: false` for `--tls-verify=false`). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** Called before each retry; for progress output and logs. */
  onEvent?: (event: TransportEvent) => void;
  /** Injected for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Injected for tests; returns [0, 1). */
  random?: () => number;
  /** Injected for tests; milliseconds since the epoch, for HTTP-date `Retry-After`. */
  now?: () => number;
  /**
   * Use this dispatcher instead of creating an Agent (the transport will not close it, nor use the wire, nor
   * apply `insecure` to it).
   */
  dispatcher?: Dispatcher;
  /** Send requests answered whole over the wire first (default true; see above). */
  wireFirst?: boolean;
  /** Injected for tests: resolves host names on both paths, as node:net's `lookup` option. */
  lookup?: LookupFunction;
}

/** How long an origin where the wire failed is left to undici. */
const WIRE_PAUSE_MS = 60_000;

export const defaultTimeouts: TimeoutOptions = { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 60_000 };
export const defaultRetry: RetryOptions = {
  attempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

/** A failure without an HTTP answer (after retries), or a body that could not be read. */
export class TransportError extends Error {
  /** The underlying code: `ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, `BODY_TOO_LARGE`, … */
  readonly code: string;
  readonly method: HttpMethod;
  readonly host: string;
  readonly path: string;
  readonly attempts: number;
  /** What to do about it, when the failure says (an untrusted certificate, a host answering plain HTTP). */
  readonly hint: string | undefined;
  constructor(
    code: string,
    request: { method: HttpMethod; url: URL },
    attempts: number,
    reason: string,
    cause?: unknown,
    hint?: string,
  ) {
    const where = `${request.method} ${request.url.host}${request.url.pathname}`;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    super(redact(`${where}: ${reason}${tries}`), cause === undefined ? undefined : { cause });
    this.name = 'TransportError';
    this.code = code;
    this.method = request.method;
    this.host = request.url.host;
    this.path = request.url.pathname;
    this.attempts = attempts;
    this.hint = hint === undefined ? undefined : redact(hint);
  }
}

/** A 2xx body larger than the request's `bufferLimit`. Never retried. */
export class BodyTooLargeError extends TransportError {
  readonly limit: number;
  constructor(request: { method: HttpMethod; url: URL }, limit: number) {
    super('BODY_TOO_LARGE', request, 1, `the response body is larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
    this.limit = limit;
  }
}

/** The wire's connection failed: an attempt's failure like undici's, with the same code. */
class WireConnectionError extends Error {
  readonly code: string;
  constructor(reason: string, code: string) {
    super(reason);
    this.code = code;
  }
}

/** The request body's own stream failed (not the connection); the transport rethrows `cause` as is. */
class RequestBodyError extends Error {
  constructor(cause: unknown) {
    super('the request body failed', { cause });
  }
}

const idempotentMethods = new Set<HttpMethod>(['GET', 'HEAD', 'PUT', 'DELETE']);
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const retryableStatuses = new Set([429, 502, 503, 504]);

/** True for `localhost`, 127.0.0.0/8 and `::1`, with or without a port and brackets. */
export function isLoopbackHost(host: string): boolean {
  const name = hostWithoutPort(host.toLowerCase());
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** `registry:5000` → `registry`, `[::1]:5000` → `::1`. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  if (colon !== -1 && host.indexOf(':', colon + 1) !== -1) return host; // a bare IPv6 address
  return colon === -1 ? host : host.slice(0, colon);
}

/**
 * Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP-date (never negative); undefined
 * when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

export class Transport {
  readonly userAgent: string;
  /** The undici Agent, created (and undici loaded) on first use; or the injected dispatcher. */
  private agentInstance: Dispatcher | Promise<Dispatcher> | undefined;
  /** The Agent for `insecure` HTTPS hosts: the same, without certificate verification. */
  private insecureAgentInstance: Dispatcher | Promise<Dispatcher> | undefined;
  private readonly agentOptions: AgentOptions;
  private readonly insecureAgentOptions: AgentOptions;
  private readonly ownsAgent: boolean;
  private readonly wireFirst: boolean;
  /** Origins where the wire failed, with when to try it again. */
  private readonly wirePaused = new Map<string, number>();
  private readonly plainHttp: Set<string>;
  private readonly insecure: Set<string>;
  /** `insecure` hosts (as in URLs) that answered a TLS handshake in plain HTTP. */
  private readonly downgraded = new Set<string>();
  private readonly lookup: LookupFunction | undefined;
  private readonly timeouts: TimeoutOptions;
  private readonly retry: RetryOptions;
  private readonly maxRedirects: number;
  private readonly onEvent: ((event: TransportEvent) => void) | undefined;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly tls: TransportOptions['tls'];
  private wireInstance: Wire | undefined;

  constructor(options: TransportOptions = {}) {
    this.timeouts = { ...defaultTimeouts, ...options.timeouts };
    this.retry = { ...defaultRetry, ...options.retry };
    this.retry.attempts = Math.max(1, Math.floor(this.retry.attempts));
    this.maxRedirects = options.maxRedirects ?? 5;
    this.userAgent = options.userAgent ?? USER_AGENT;
    this.plainHttp = new Set([...(options.plainHttp ?? [])].map((host) => host.toLowerCase()));
    this.insecure = new Set([...(options.insecure ?? [])].map((host) => host.toLowerCase()));
    this.lookup = options.lookup;
    this.onEvent = options.onEvent;
    this.sleep = options.sleep ?? ((ms, signal) => delay(ms, undefined, signal ? { signal } : {}));
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.tls = options.tls;
    const connect = {
      timeout: this.timeouts.connectMs,
      ...options.tls,
      ...(options.lookup ? { lookup: options.lookup } : {}),
    };
    this.agentOptions = {
      connections: options.connections ?? 16,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: this.timeouts.headersMs,
      bodyTimeout: this.timeouts.bodyIdleMs,
      connect,
    };
    this.insecureAgentOptions = { ...this.agentOptions, connect: { ...connect, rejectUnauthorized: false } };
    this.agentInstance = options.dispatcher;
    this.ownsAgent = !options.dispatcher;
    this.wireFirst = this.ownsAgent && options.wireFirst !== false;
  }

  /** Whether `host` (`name` or `name:port`) is spoken to over plain HTTP. */
  isPlainHttp(host: string): boolean {
    const lower = host.toLowerCase();
    // An insecure loopback host gets HTTPS first (a TLS registry behind a port-forward), as skopeo does.
    return (
      (isLoopbackHost(lower) && !this.isInsecure(lower)) ||
      this.plainHttp.has(lower) ||
      this.plainHttp.has(hostWithoutPort(lower)) ||
      this.downgraded.has(lower)
    );
  }

  /** Whether `host` is spoken to over HTTPS without certificate verification (`insecure`). */
  isInsecure(host: string): boolean {
    const lower = host.toLowerCase();
    return this.insecure.has(lower) || this.insecure.has(hostWithoutPort(lower));
  }

  /** The URL of `path` (starting with `/`) on `host`, with the scheme this transport uses for it. */
  url(host: string, path: string): URL {
    return new URL(`${this.isPlainHttp(host) ? 'http' : 'https'}://${host}${path}`);
  }

  /**
   * Sends a request, retrying and following redirects as promised above. Resolves with any HTTP answer
   * (including 4xx/5xx after retries); rejects with `TransportError` when no answer came, and with the
   * body stream's own error, unchanged and not retried, when the request body failed.
   */
  async request(request: TransportRequest): Promise<TransportResponse> {
    const attempts = this.canRetry(request)
      ? Math.max(1, Math.min(this.retry.attempts, request.maxAttempts ?? this.retry.attempts))
      : 1;
    for (let attempt = 1; ; attempt++) {
      let response: TransportResponse;
      try {
        response = await this.attempt(request, attempt);
      } catch (error) {
        if (error instanceof BodyTooLargeError) throw error;
        // The caller's body stream failed: its error is the caller's to see, and a retry would not help.
        if (error instanceof RequestBodyError) throw error.cause;
        const code = errorCode(error) ?? 'UNKNOWN';
        if (attempt >= attempts || !isRetryableNetworkError(error) || request.signal?.aborted) {
          if (request.signal?.aborted) throw error;
          const { reason, hint } = describeNetworkError(error, code, request.url.host);
          throw new TransportError(code, request, attempt, reason, error, hint);
        }
        await this.pause(request, attempt, backoffDelay(attempt, this.retry, this.random), code);
        continue;
      }
      if (attempt >= attempts || !retryableStatuses.has(response.status)) return response;
      let wait = backoffDelay(attempt, this.retry, this.random);
      const retryAfter = parseRetryAfter(response.header('retry-after'), this.now());
      if (response.status === 429) {
        if (request.retryRateLimited === false) return response;
        if (retryAfter !== undefined) {
          if (retryAfter * 1000 > this.retry.maxRetryAfterMs) return response;
          wait = Math.max(wait, retryAfter * 1000);
        }
      } else if (retryAfter !== undefined) {
        wait = Math.max(wait, Math.min(retryAfter * 1000, this.retry.maxRetryAfterMs));
      }
      await response.discard();
      await this.pause(request, attempt, wait, `HTTP ${response.status}`);
    }
  }

  /**
   * The fast path for blob copies between registries (wire.ts), with this transport's TLS settings and
   * timeouts; undefined when the transport was given a dispatcher of its own, which the wire would bypass.
   */
  get wire(): Wire | undefined {
    if (!this.ownsAgent) return undefined;
    this.wireInstance ??= new Wire({
      connectMs: this.timeouts.connectMs,
      headersMs: this.timeouts.headersMs,
      bodyIdleMs: this.timeouts.bodyIdleMs,
      userAgent: this.userAgent,
      ...(this.tls ? { tls: this.tls } : {}),
      insecure: (host) => this.isInsecure(host),
      ...(this.lookup ? { lookup: this.lookup } : {}),
    });
    return this.wireInstance;
  }

  async close(): Promise<void> {
    this.wireInstance?.close();
    if (!this.ownsAgent) return;
    for (const agent of [this.agentInstance, this.insecureAgentInstance])
      if (agent) await (await agent).close();
  }

  /** undici's Agent for `url`; undici is loaded by the first request that needs it. */
  private agent(url: URL): Dispatcher | Promise<Dispatcher> {
    if (this.ownsAgent && url.protocol === 'https:' && this.isInsecure(url.host)) {
      this.insecureAgentInstance ??= import('undici').then(
        ({ Agent }) => (this.insecureAgentInstance = new Agent(this.insecureAgentOptions)),
      );
      return this.insecureAgentInstance;
    }
    this.agentInstance ??= import('undici').then(
      ({ Agent }) => (this.agentInstance = new Agent(this.agentOptions)),
    );
    return this.agentInstance;
  }

  private canRetry(request: TransportRequest): boolean {
    if (!idempotentMethods.has(request.method) && !request.retrySafe) return false;
    return replayable(request.body);
  }

  private async pause(request: TransportRequest, attempt: number, ms: number, reason: string): Promise<void> {
    this.onEvent?.({
      type: 'retry',
      method: request.method,
      host: request.url.host,
      path: request.url.pathname,
      attempt,
      delayMs: ms,
      reason,
    });
    await this.sleep(ms, request.signal);
  }

  /** One attempt: the request and any redirects, and the buffered body when asked for. */
  private async attempt(request: TransportRequest, attempt: number): Promise<TransportResponse> {
    const follow = request.followRedirects ?? (request.method === 'GET' || request.method === 'HEAD');
    let startOrigin = request.url.origin;
    let url = request.url;
    let method = request.method;
    let body = request.body;
    let headers = { ...request.headers };
    for (let hop = 0; ; hop++) {
      // A URL made before its host was found to answer plain HTTP.
      if (url.protocol === 'https:' && this.downgraded.has(url.host.toLowerCase())) {
        const plain = new URL(url);
        plain.protocol = 'http:';
        if (url.origin === startOrigin) startOrigin = plain.origin;
        url = plain;
      }
      let whole: Exchanged | undefined;
      let data: Dispatcher.ResponseData | undefined;
      try {
        whole = await this.exchangeOnWire(request, method, url, headers, body);
        data = whole ? undefined : await this.dispatch(method, url, headers, body, request.signal);
      } catch (error) {
        if (!this.fallsBackToPlainHttp(url, error)) throw error;
        // Sent again at once (over plain HTTP, see above) when its body can be produced again.
        if (!replayable(body)) throw error;
        hop--;
        continue;
      }
      const status = whole ? whole.status : data!.statusCode;
      const location = header(whole ? whole.headers : data!.headers, 'location');
      if (follow && redirectStatuses.has(status) && location !== undefined && hop < this.maxRedirects) {
        if (data) await discard(data.body);
        const next = new URL(location, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new TransportError('BAD_REDIRECT', request, attempt, `redirect to a ${next.protocol} URL`);
        }
        if (next.origin !== startOrigin) headers = withoutHeader(headers, 'authorization');
        if (status === 303 && method !== 'HEAD') {
          method = 'GET';
          body = undefined;
          headers = withoutHeader(withoutHeader(headers, 'content-length'), 'content-type');
        }
        url = next;
        continue;
      }
      if (whole) return wholeResponse(whole, url, attempt, request, method);
      const streamed = data!;
      const response = makeResponse(streamed, url, attempt);
      if (request.bufferLimit !== undefined && method !== 'HEAD') {
        response.bytes = await readLimited(streamed, request, request.bufferLimit);
      }
      return response;
    }
  }

  /**
   * True when `error` is an `insecure` HTTPS host answering a TLS handshake in plain HTTP: the host is
   * spoken to over plain HTTP from now on.
   */
  private fallsBackToPlainHttp(url: URL, error: unknown): boolean {
    if (url.protocol !== 'https:' || !this.isInsecure(url.host)) return false;
    if (tlsFailure(error)?.kind !== 'plain-http') return false;
    this.downgraded.add(url.host.toLowerCase());
    return true;
  }

  /**
   * The request over the wire, when it qualifies (see the promises above): its whole answer, or undefined
   * for undici to send it.
   */
  private async exchangeOnWire(
    request: TransportRequest,
    method: HttpMethod,
    url: URL,
    headers: Record<string, string>,
    body: RequestBody | undefined,
  ): Promise<Exchanged | undefined> {
    if (!this.wireFirst || request.signal) return undefined;
    if (method !== 'HEAD' && request.bufferLimit === undefined) return undefined;
    if (!idempotentMethods.has(method) && !request.retrySafe) return undefined;
    if (!(body === undefined || typeof body === 'string' || body instanceof Uint8Array)) return undefined;
    const pausedUntil = this.wirePaused.get(url.origin);
    if (pausedUntil !== undefined) {
      if (this.now() < pausedUntil) return undefined;
      this.wirePaused.delete(url.origin);
    }
    const sent: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (lower !== 'user-agent' && lower !== 'content-length' && lower !== 'host') sent[lower] = value;
    }
    const payload =
      body === undefined
        ? undefined
        : typeof body === 'string'
          ? Buffer.from(body)
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const outcome = await this.wire!.exchange(
      method,
      { url, headers: sent },
      payload,
      request.bufferLimit ?? 0,
    );
    if (outcome.ok) return outcome;
    // A TLS failure is this attempt's, as undici's would be (same settings): not worth a second handshake.
    if (tlsFailure(outcome)) throw new WireConnectionError(outcome.reason, outcome.code!);
    this.wirePaused.set(url.origin, this.now() + WIRE_PAUSE_MS);
    // A failed connection is this attempt's failure, retried (on undici) as any other; anything else
    // the wire did not expect is sent on undici at once.
    if (outcome.code !== undefined && isRetryableCode(outcome.code))
      throw new WireConnectionError(outcome.reason, outcome.code);
    return undefined;
  }

  private async dispatch(
    method: HttpMethod,
    url: URL,
    headers: Record<string, string>,
    body: RequestBody | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const sent: Record<string, string> = { 'user-agent': this.userAgent };
    for (const [name, value] of Object.entries(headers)) sent[name.toLowerCase()] = value;
    let payload: string | Buffer | Uint8Array | Readable | null = null;
    let sourceStream: Readable | undefined;
    let sourceError: unknown;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      payload = body;
      sent['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    } else if (body !== undefined) {
      let source: Readable;
      try {
        source = 'open' in body ? await body.open() : body;
      } catch (error) {
        throw new RequestBodyError(error);
      }
      if ('open' in body) sent['content-length'] = String(body.length);
      // The source feeds a pass-through that undici owns, so a failing source is told apart from a
      // failing connection (undici destroys its body stream with the connection's error).
      const pass = new PassThrough();
      source.on('error', (error) => {
        sourceError ??= error;
        pass.destroy(error);
      });
      source.pipe(pass);
      sourceStream = source;
      payload = pass;
    } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      sent['content-length'] = '0';
    }
    try {
      const agent = await this.agent(url);
      return await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers: sent,
        body: payload,
        signal: signal ?? null,
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
        // undici closes the connection after every HEAD unless told otherwise (for servers that send a
        // body anyway). Registries answer HEADs properly, and pullsafe sends many of them (up-to-date
        // checks, quota probes): each would otherwise cost a new connection, over TLS a new handshake.
        ...(method === 'HEAD' ? { reset: false } : {}),
      });
    } catch (error) {
      if (sourceStream && !sourceStream.destroyed) sourceStream.destroy();
      if (sourceError !== undefined) throw new RequestBodyError(sourceError);
      throw error;
    }
  }
}

type AgentOptions = ConstructorParameters<typeof Agent>[0];

/** A body that can be sent again: none, bytes, a string or `{ length, open }`. */
function replayable(body: RequestBody | undefined): boolean {
  return body === undefined || typeof body === 'string' || body instanceof Uint8Array || 'open' in body;
}

/** A response whose body the wire read whole; a 2xx body over `bufferLimit` fails as with undici. */
function wholeResponse(
  answer: Exchanged,
  url: URL,
  attempts: number,
  request: TransportRequest,
  method: HttpMethod,
): TransportResponse {
  const ok = answer.status >= 200 && answer.status < 300;
  if (ok && answer.truncated && method !== 'HEAD') throw new BodyTooLargeError(request, request.bufferLimit!);
  const headers: IncomingHttpHeaders = answer.headers;
  return {
    status: answer.status,
    headers,
    url,
    attempts,
    get body() {
      return Readable.from(answer.body.length ? [answer.body] : []);
    },
    bytes: method === 'HEAD' ? undefined : answer.body,
    header: (name) => header(headers, name),
    headerList: (name) => headerList(headers, name),
    discard: () => Promise.resolve(),
  };
}

function makeResponse(data: Dispatcher.ResponseData, url: URL, attempts: number): TransportResponse {
  return {
    status: data.statusCode,
    headers: data.headers,
    url,
    attempts,
    body: data.body,
    bytes: undefined,
    header: (name) => header(data.headers, name),
    headerList: (name) => headerList(data.headers, name),
    discard: () => discard(data.body),
  };
}

async function readLimited(
  data: Dispatcher.ResponseData,
  request: TransportRequest,
  limit: number,
): Promise<Buffer> {
  const ok = data.statusCode >= 200 && data.statusCode < 300;
  const declared = Number(header(data.headers, 'content-length'));
  if (ok && Number.isFinite(declared) && declared > limit) {
    destroyQuietly(data.body);
    throw new BodyTooLargeError(request, limit);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of data.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      destroyQuietly(data.body);
      if (ok) throw new BodyTooLargeError(request, limit);
      chunks.push(chunk.subarray(0, chunk.length - (total - limit)));
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function discard(body: Readable): Promise<void> {
  const readable = body as Readable & { dump?: (options?: { limit: number }) => Promise<void> };
  try {
    if (typeof readable.dump === 'function') await readable.dump({ limit: 256 * 1024 });
    else destroyQuietly(readable);
  } catch {
    // A body that fails while being discarded has nothing left to give.
  }
}

/** Destroys a stream whose remaining data and errors nobody wants (undici reports an abort otherwise). */
export function destroyQuietly(stream: Readable): void {
  if (stream.destroyed) return;
  stream.on('error', () => {});
  stream.destroy();
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function headerList(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

function withoutHeader(headers: Record<string, string>, name: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() !== name) result[key] = value;
  return result;
}
