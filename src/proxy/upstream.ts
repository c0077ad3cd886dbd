/**
 * One upstream registry as the cache meets it: a registry client with this upstream's credentials and
 * timeouts, fail-fast retries (a 429 comes back at once, never waited out while a client waits), a cap on
 * requests in flight and on requests started per second, the quota ledger, and metrics of what it answered.
 * Upstream failures come back as `UpstreamFailure` with the kind the cache acts on.
 */
import type { Readable } from 'node:stream';
import {
  RegistryClient,
  TransportError,
  isRegistryError,
  type CredentialSource,
  type RateLimit,
  type RepositoryRef,
} from '../client/index.ts';
import type { Digest } from '../oci/digest.ts';

export interface UpstreamOptions {
  /** The registry as image references name it (`docker.io`). */
  name: string;
  /** Where its API answers. */
  url: URL;
  /** Where its repositories are cached locally (`docker.io`, `localhost-5000`). */
  namespace: string;
  prefixes: string[];
  /** Bare repository names go here (docker.io is the default when no upstream says so). */
  default?: boolean;
  credentials?: CredentialSource;
  /** Whether clients without credentials may pull what it serves. */
  anonymousPull: boolean;
  concurrency: number;
  /** 0 = no cap. */
  requestsPerSecond: number;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  revalidateWaitMs: number;
  tagTtlMs: number;
  tagRules: { pattern: RegExp; ttlMs?: number; immutable?: boolean }[];
  notFoundTtlMs: number;
  quotaReserve: number;
}

/** The window assumed when the upstream's quota headers name none (Docker Hub's: six hours). */
const defaultQuotaWindowSeconds = 6 * 60 * 60;

export type FailureKind = 'not-found' | 'rate-limited' | 'refused' | 'unavailable';

/** Why an upstream request did not give what was asked. */
export class UpstreamFailure extends Error {
  readonly kind: FailureKind;
  readonly upstream: string;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(
    kind: FailureKind,
    upstream: string,
    message: string,
    options: { status?: number; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamFailure';
    this.kind = kind;
    this.upstream = upstream;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export interface UpstreamEvents {
  request(upstream: string, method: string, status: number | 'error', seconds: number): void;
  /** The upstream reported its quota (for other replicas). */
  quota?(upstream: string, state: QuotaState): void;
}

/** The quota the upstream last reported, and the GETs spent since. */
export interface QuotaState {
  limit: number | undefined;
  remaining: number | undefined;
  windowSeconds: number | undefined;
  observedAt: number;
}

export class Upstream {
  readonly options: UpstreamOptions;
  readonly client: RegistryClient;
  private readonly events: UpstreamEvents;
  private inFlight = 0;
  private readonly queue: (() => void)[] = [];
  private nextStart = 0;
  private quotaState: QuotaState | undefined;

  constructor(options: UpstreamOptions, events: UpstreamEvents) {
    this.options = options;
    this.events = events;
    const host = options.url.host;
    this.client = new RegistryClient({
      ...(options.credentials ? { credentials: options.credentials } : {}),
      apiHosts: { [options.name]: host },
      transport: {
        ...(options.url.protocol === 'http:' ? { plainHttp: [host] } : {}),
        timeouts: {
          connectMs: options.connectTimeoutMs,
          headersMs: options.responseTimeoutMs,
          bodyIdleMs: options.responseTimeoutMs,
        },
        // One quick retry for a reset or a 5xx; a 429 is answered at once (the cache serves what it holds).
        retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 500, maxRetryAfterMs: 0 },
        connections: Math.max(options.concurrency, 1),
      },
    });
  }

  get name(): string {
    return this.options.name;
  }

  /**
   * The quota as the upstream last reported it, less what was spent since; undefined once its window has
   * passed (the upstream has reset it since) or when the upstream never said.
   */
  get quota(): QuotaState | undefined {
    const state = this.quotaState;
    if (state === undefined) return undefined;
    const windowMs = (state.windowSeconds ?? defaultQuotaWindowSeconds) * 1000;
    if (Date.now() - state.observedAt >= windowMs) return undefined;
    return state;
  }

  /** True when the current quota is at or below the reserve. */
  quotaLow(): boolean {
    const remaining = this.quota?.remaining;
    return remaining !== undefined && remaining <= this.options.quotaReserve;
  }

  /** The repository at the upstream (`library/` for one-component Docker Hub names). */
  repository(remote: string): RepositoryRef {
    return { registry: this.options.name, repository: remote };
  }

  async headManifest(
    remote: string,
    reference: string,
  ): Promise<{ digest: Digest; mediaType: string } | undefined> {
    return this.call('HEAD', async () => {
      const head = await this.client.checkManifest(this.repository(remote), reference);
      if (head) this.observe(head.rateLimit, false);
      return head ? { digest: head.digest, mediaType: head.mediaType } : undefined;
    });
  }

  async getManifest(
    remote: string,
    reference: string,
  ): Promise<{ bytes: Buffer; digest: Digest; mediaType: string }> {
    return this.call('GET', async () => {
      const fetched = await this.client.getManifest(this.repository(remote), reference);
      this.observe(fetched.rateLimit, true);
      return { bytes: fetched.bytes, digest: fetched.digest, mediaType: fetched.mediaType };
    });
  }

  async headBlob(remote: string, digest: Digest): Promise<number | undefined> {
    return this.call('HEAD', () => this.client.checkBlob(this.repository(remote), digest));
  }

  /**
   * Opens a blob download, verified while it flows. The concurrency slot is held until `done` is called
   * (the caller reads the whole stream first).
   */
  async getBlob(
    remote: string,
    digest: Digest,
  ): Promise<{ size: number | undefined; stream: Readable; done: () => void }> {
    await this.acquire();
    const started = process.hrtime.bigint();
    let released = false;
    const done = (): void => {
      if (released) return;
      released = true;
      this.release();
    };
    try {
      const download = await this.client.getBlob(this.repository(remote), digest);
      this.events.request(this.name, 'GET', 200, seconds(started));
      return { size: download.size, stream: download.stream, done };
    } catch (error) {
      done();
      throw this.failure(error, 'GET', started);
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async call<T>(method: string, work: () => Promise<T>): Promise<T> {
    await this.acquire();
    const started = process.hrtime.bigint();
    try {
      const result = await work();
      this.events.request(this.name, method, 200, seconds(started));
      return result;
    } catch (error) {
      throw this.failure(error, method, started);
    } finally {
      this.release();
    }
  }

  private failure(error: unknown, method: string, started: bigint): UpstreamFailure {
    if (error instanceof UpstreamFailure) return error;
    if (isRegistryError(error)) {
      this.events.request(this.name, method, error.status ?? 'error', seconds(started));
      if (error.rateLimit) this.observe(error.rateLimit, false);
      const status = error.status;
      const options = {
        ...(status !== undefined ? { status } : {}),
        ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
        cause: error,
      };
      if (status === 404) return new UpstreamFailure('not-found', this.name, error.message, options);
      if (status === 429) return new UpstreamFailure('rate-limited', this.name, error.message, options);
      if (status === 401 || status === 403) {
        return new UpstreamFailure('refused', this.name, error.message, options);
      }
      return new UpstreamFailure('unavailable', this.name, error.message, options);
    }
    this.events.request(this.name, method, 'error', seconds(started));
    const message = error instanceof TransportError || error instanceof Error ? error.message : String(error);
    return new UpstreamFailure('unavailable', this.name, message, { cause: error });
  }

  private observe(rateLimit: RateLimit | undefined, spent: boolean): void {
    if (rateLimit?.remaining !== undefined) {
      this.quotaState = {
        limit: rateLimit.limit,
        remaining: rateLimit.remaining,
        windowSeconds: rateLimit.windowSeconds,
        observedAt: Date.now(),
      };
      this.events.quota?.(this.name, this.quotaState);
    } else if (spent && this.quotaState?.remaining !== undefined) {
      this.quotaState = { ...this.quotaState, remaining: Math.max(0, this.quotaState.remaining - 1) };
    }
  }

  /** A quota another replica observed: taken when it is newer than this replica's own. */
  adoptQuota(state: QuotaState): void {
    if (typeof state.observedAt !== 'number') return;
    if (this.quotaState && this.quotaState.observedAt >= state.observedAt) return;
    this.quotaState = state;
  }

  /** A slot under the concurrency cap, started no sooner than the rate cap allows. */
  private async acquire(): Promise<void> {
    if (this.inFlight >= this.options.concurrency) {
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.inFlight++;
    }
    if (this.options.requestsPerSecond > 0) {
      const now = Date.now();
      const at = Math.max(now, this.nextStart);
      this.nextStart = at + 1000 / this.options.requestsPerSecond;
      if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
    }
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.inFlight--;
  }
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
