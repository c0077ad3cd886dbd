/**
 * The registry over HTTP: node:http in, RegistryRequest/RegistryResponse through the router, access
 * control and error mapping, out again. Also health, readiness, metrics, request logs, upload cleanup and
 * graceful shutdown.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OciError } from '../oci/errors.ts';
import { checkRepositoryName } from '../oci/names.ts';
import { collectGarbage, StoreError, type Storage } from '../store/index.ts';
import { GcFence, MemoryFenceStore } from '../store/index.ts';
import { isDigest, parseDigest } from '../oci/digest.ts';
import type { AccessControl, Action, Principal } from './auth.ts';
import { Metrics } from './metrics.ts';
import { ProxiedRegistry } from './proxied.ts';
import { peerFillPrefix } from '../proxy/index.ts';
import {
  LocalCoordinator,
  type CacheRoute,
  type Coordinator,
  type PullThroughCache,
} from '../proxy/index.ts';
import { Registry, type RegistryOptions } from './registry.ts';
import { allowedMethods, matchRoute, type RouteName } from './routes.ts';
import type { RegistryRequest, RegistryResponse } from './types.ts';

/** The part of a pino logger this layer uses. */
export interface Logger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

export interface ServerOptions {
  storage: Storage;
  /** The pull-through cache: repositories it routes are served from its upstreams. */
  cache?: PullThroughCache;
  access: AccessControl;
  logger: Logger;
  registry?: Partial<RegistryOptions>;
  /** Uploads idle longer than this are removed, at startup and periodically. */
  uploadMaxAgeMs?: number;
  /** How long close() waits for in-flight requests before cutting connections. */
  shutdownTimeoutMs?: number;
  /**
   * How long close() keeps accepting with `/readyz` at 503 before it closes the listener, so that a load
   * balancer or a Kubernetes endpoint sees the registry leave before connections are refused.
   */
  drainDelayMs?: number;
  /** Log one line per request (info level). */
  logRequests?: boolean;
  /**
   * Garbage collection while serving: every `intervalMs`, one replica at a time (a lease of `coordinator`,
   * shared through Redis by replicas) sweeps what nothing references and is older than `minAgeMs`.
   */
  gc?: { intervalMs: number; minAgeMs: number; deleteUntagged: boolean; coordinator?: Coordinator };
  /**
   * What writes and gc share so that gc never deletes a blob a write under way relies on: the replicas'
   * coordinator for replicas and an offline `pullsafe gc --redis`; this process's own memory when absent.
   */
  gcFence?: GcFence;
}

export interface RunningServer {
  server: Server;
  url: string;
  metrics: Metrics;
  /** In-process entry point: the same path as a request over the socket. */
  handle(request: RegistryRequest): Promise<RegistryResponse>;
  /**
   * Answers `/readyz` with 503 for the drain delay (unless `immediate`), stops accepting, lets in-flight
   * transfers finish (bounded), then closes.
   */
  close(options?: { immediate?: boolean }): Promise<void>;
}

const requestIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

export class RegistryApp {
  readonly registry: Registry;
  readonly metrics = new Metrics();
  readonly cache: PullThroughCache | undefined;
  readonly gcFence: GcFence;
  private readonly proxied: ProxiedRegistry | undefined;
  private readonly options: ServerOptions;
  private draining = false;
  private storageMeasuredAt = 0;
  /** Set by the first write refused for lack of space, cleared by the next write that succeeds. */
  private storageFullSince: number | undefined;

  constructor(options: ServerOptions) {
    this.options = options;
    this.gcFence = options.gcFence ?? new GcFence(new MemoryFenceStore());
    const registryOptions = { ...options.registry, gcFence: this.gcFence };
    this.registry = new Registry(options.storage, registryOptions, {
      uploadStarted: () => this.metrics.uploadsStarted++,
      uploadCompleted: () => this.metrics.uploadsCompleted++,
      uploadFailed: () => this.metrics.uploadsFailed++,
    });
    this.cache = options.cache;
    this.proxied = options.cache ? new ProxiedRegistry(options.cache, this.registry) : undefined;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  startDraining(): void {
    this.draining = true;
  }

  async handle(request: RegistryRequest): Promise<RegistryResponse> {
    try {
      const response = await this.route(request);
      response.headers['Docker-Distribution-API-Version'] = 'registry/2.0';
      if (response.status === 201 && this.storageFullSince !== undefined) {
        this.storageFullSince = undefined;
        this.options.logger.info({ storage: this.options.storage.location }, 'storage accepts writes again');
      }
      return response;
    } catch (error) {
      return this.errorResponse(error, request);
    }
  }

  /** The route name used in metrics and logs. */
  routeName(path: string): string {
    if (['/healthz', '/readyz', '/metrics', '/status'].includes(path)) return path.slice(1);
    if (path.startsWith(peerFillPrefix)) return 'peer-fill';
    return matchRoute(path)?.route ?? 'unknown';
  }

  private async route(request: RegistryRequest): Promise<RegistryResponse> {
    const { method, path } = request;
    if (path === '/healthz') return text(200, 'ok\n');
    if (path === '/readyz') return this.readiness();
    const access = this.options.access;
    if (path === '/metrics' || path === '/status') {
      // Metrics name repositories' traffic and the storage's size: whoever may not pull may not read them.
      this.require(await access.authenticate(headerValue(request, 'authorization')), undefined, 'pull');
      this.refreshStorageMetrics();
      this.metrics.storageFull = this.storageFullSince !== undefined;
      if (path === '/status') return this.status();
      const cacheLines = this.cache ? `${this.cache.metrics.render().join('\n')}\n` : '';
      return text(200, this.metrics.render() + cacheLines, 'text/plain; version=0.0.4');
    }

    if (path.startsWith(peerFillPrefix) && this.proxied && method === 'GET') {
      return this.proxied.peerFill(request);
    }
    const match = matchRoute(path);
    if (!match) throw new OciError('UNSUPPORTED', 'unknown endpoint', { path: path.slice(0, 200) }, 404);
    if (!allowedMethods[match.route].includes(method)) {
      throw new OciError('UNSUPPORTED', `method ${method} not allowed here`, { route: match.route }, 405);
    }

    const principal = await access.authenticate(headerValue(request, 'authorization'));
    const registry = this.registry;

    if (match.route === 'base') {
      if (access.usersConfigured && !principal.user) throw this.unauthorized();
      this.require(principal, undefined, 'pull');
      return registry.base();
    }
    if (match.route === 'catalog') {
      this.require(principal, undefined, 'pull');
      return registry.catalog(request, (name) => access.canList(principal, name));
    }

    const name = checkRepositoryName(match.name!);
    const reference = match.reference ?? '';
    const proxied = this.cache?.route(name, request.query.get('ns'));
    if (proxied && this.proxied) {
      // Access rules and logs name the cached repository (docker.io/library/nginx) whatever form the
      // client used; an upstream fetched with credentials is for authenticated clients unless configured.
      this.require(principal, proxied.local, actionFor(method));
      if (!proxied.upstream.options.anonymousPull && !principal.user) {
        throw this.unauthorized(proxied.local, 'pull');
      }
      return this.serveProxied(request, match.route, proxied, name, reference);
    }
    this.require(principal, name, actionFor(method));

    switch (match.route) {
      case 'tags':
        return registry.tags(request, name);
      case 'manifest':
        if (method === 'PUT') return registry.putManifest(request, name, reference);
        if (method === 'DELETE') return registry.deleteManifest(name, reference);
        return registry.getManifest(request, name, reference);
      case 'blob':
        if (method === 'DELETE') return registry.deleteBlob(name, reference);
        // A push that HEADs a blob and, finding it, skips its upload relies on it until its manifest.
        if (method === 'HEAD' && isDigest(reference)) await this.gcFence.hold([parseDigest(reference)]);
        return registry.getBlob(request, name, reference);
      case 'referrers':
        return registry.referrers(request, name, reference);
      case 'upload-start':
        return registry.startUpload(
          request,
          name,
          (source) => access.authorize(principal, source, 'pull') === 'allow',
        );
      case 'upload':
        if (method === 'GET') return registry.uploadStatus(request, name, reference);
        if (method === 'PATCH') return registry.patchUpload(request, name, reference);
        if (method === 'PUT') return registry.putUpload(request, name, reference);
        return registry.cancelUpload(request, name, reference);
    }
  }

  private serveProxied(
    request: RegistryRequest,
    route: RouteName,
    proxied: CacheRoute,
    name: string,
    reference: string,
  ): Promise<RegistryResponse> {
    const handlers = this.proxied!;
    const reading = request.method === 'GET' || request.method === 'HEAD';
    switch (route) {
      case 'manifest':
        return reading ? handlers.manifest(request, proxied, reference) : handlers.refuse(proxied, name);
      case 'blob':
        return reading ? handlers.blob(request, proxied, reference) : handlers.refuse(proxied, name);
      case 'tags':
        return handlers.tags(proxied, name);
      case 'referrers':
        return this.registry.referrers(request, proxied.local, reference);
      default:
        return handlers.refuse(proxied, name);
    }
  }

  private require(principal: Principal, repository: string | undefined, action: Action): void {
    const decision = this.options.access.authorize(principal, repository, action);
    if (decision === 'allow') return;
    if (decision === 'unauthenticated') throw this.unauthorized(repository, action);
    throw new OciError('DENIED', 'requested access to the resource is denied', {
      ...(repository ? { name: repository } : {}),
      action,
    });
  }

  private unauthorized(repository?: string, action?: Action): OciError {
    return new OciError(
      'UNAUTHORIZED',
      'authentication required',
      repository ? { name: repository, action } : undefined,
    );
  }

  /**
   * 503 while shutting down or when storage cannot be read. A full storage keeps the answer 200 (pulls
   * still work, and taking the registry out of a load balancer would stop them too) and says so in the body.
   */
  /** `/status`: the cache's upstreams and figures, and the storage's state, as JSON. */
  private status(): RegistryResponse {
    const figures = this.cache?.metrics.snapshot() ?? {};
    const upstreams = (this.cache?.upstreams ?? []).map((upstream) => ({
      name: upstream.name,
      url: upstream.options.url.origin,
      namespace: upstream.options.namespace,
      prefixes: upstream.options.prefixes,
      default: this.cache?.defaultUpstreamName === upstream.name,
      credentials: upstream.options.credentials !== undefined,
      anonymousPull: upstream.options.anonymousPull,
      quota: upstream.quota ?? null,
      quotaLow: upstream.quotaLow(),
      ...figures[upstream.name],
    }));
    const body = Buffer.from(
      JSON.stringify({
        draining: this.draining,
        storage: {
          location: this.options.storage.location,
          full: this.storageFullSince !== undefined,
          blobBytes: this.metrics.storageBytes ?? null,
          blobs: this.metrics.storageBlobs ?? null,
        },
        upstreams,
      }),
    );
    return {
      status: 200,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
      body,
    };
  }

  private async readiness(): Promise<RegistryResponse> {
    if (this.draining) return text(503, 'shutting down\n');
    try {
      await this.options.storage.repositories.listTags('pullsafe-readiness-probe');
    } catch {
      return text(503, 'storage unavailable\n');
    }
    if (this.storageFullSince !== undefined) {
      return text(200, 'ready for reads; storage full: writes are refused until space is freed\n');
    }
    return text(200, 'ready\n');
  }

  private refreshStorageMetrics(): void {
    const now = Date.now();
    if (now - this.storageMeasuredAt < 60_000) return;
    this.storageMeasuredAt = now;
    void (async () => {
      let bytes = 0;
      let count = 0;
      for await (const blob of this.options.storage.blobs.list()) {
        bytes += blob.size;
        count++;
      }
      this.metrics.storageBytes = bytes;
      this.metrics.storageBlobs = count;
    })().catch((error: unknown) => this.options.logger.warn({ err: error }, 'measuring storage failed'));
  }

  private errorResponse(error: unknown, request: RegistryRequest): RegistryResponse {
    let ociError: OciError;
    if (error instanceof OciError) ociError = error;
    else if (error instanceof StoreError) ociError = fromStoreError(error);
    else if (isStorageFull(error)) ociError = storageFull();
    else if (isClientAbort(error)) {
      ociError = new OciError('BLOB_UPLOAD_INVALID', 'request body ended early', undefined, 400);
    } else {
      this.options.logger.error({ err: error, requestId: request.requestId }, 'internal error');
      ociError = new OciError('UNKNOWN', 'internal error', { requestId: request.requestId });
    }
    if (ociError.status === 507) {
      this.metrics.storageFullErrors++;
      if (this.storageFullSince === undefined) {
        this.storageFullSince = Date.now();
        this.options.logger.error(
          { storage: this.options.storage.location },
          'storage is full: writes fail until space is freed; reads go on',
        );
      }
    }
    const body = Buffer.from(JSON.stringify(ociError.body()));
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': body.length,
      'Docker-Distribution-API-Version': 'registry/2.0',
    };
    if (ociError.code === 'UNAUTHORIZED') headers['WWW-Authenticate'] = this.options.access.challenge();
    const retryAfter = (ociError as { retryAfterSeconds?: number }).retryAfterSeconds;
    if (ociError.status === 429 && retryAfter !== undefined) headers['Retry-After'] = retryAfter;
    return { status: ociError.status, headers, body };
  }

  /** Serves one node:http exchange. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    this.metrics.inFlight++;
    // The raw path, not WHATWG-normalised: `/v2/../x` must reach the name check, not turn into `/x`.
    const rawUrl = req.url ?? '/';
    const queryStart = rawUrl.indexOf('?');
    const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
    const query = new URLSearchParams(queryStart === -1 ? '' : rawUrl.slice(queryStart + 1));
    const offered = req.headers['x-request-id'];
    const requestId = typeof offered === 'string' && requestIdPattern.test(offered) ? offered : randomUUID();
    const hasBody = req.method === 'PUT' || req.method === 'PATCH' || req.method === 'POST';
    // A client may hang up at any byte: stream errors end this exchange and nothing else. Whoever reads the
    // body sees its error through the read; these listeners keep an unread error from ending the process.
    req.on('error', ignore);
    res.on('error', ignore);
    // Body bytes are counted from the socket, not by an extra stream stage on the upload path.
    const socketBytesBefore = req.socket.bytesRead;
    const body: Readable = req;
    const request: RegistryRequest = {
      method: req.method ?? 'GET',
      path,
      query,
      headers: req.headers,
      body,
      requestId,
    };
    const response = await this.handle(request);
    response.headers['X-Request-Id'] = requestId;
    if (this.draining) response.headers.Connection = 'close';
    let sent = 0;
    try {
      sent = await writeResponse(response, req.method === 'HEAD', res);
    } catch (error) {
      if (!isClientAbort(error)) this.options.logger.warn({ err: error, requestId }, 'response failed');
      res.destroy();
    } finally {
      if (hasBody && !req.complete && !req.destroyed) discardUnreadBody(req);
      if (!res.writableFinished) this.metrics.clientAborts++;
      const received = hasBody ? bodyBytes(req, socketBytesBefore) : 0;
      this.metrics.inFlight--;
      this.metrics.bytesReceived += received;
      this.metrics.bytesSent += sent;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = this.routeName(request.path);
      this.metrics.observeRequest(route, request.method, response.status, seconds);
      const upstream = response.log?.upstream;
      if (upstream !== undefined && sent > 0 && res.writableEnded) {
        this.cache?.metrics.bytesServed(upstream, sent);
      }
      if (this.options.logRequests) {
        this.options.logger.info(
          {
            ...response.log,
            requestId,
            method: request.method,
            path: request.path,
            route,
            status: response.status,
            ms: Math.round(seconds * 1000),
            bytesIn: received,
            bytesOut: sent,
          },
          'request',
        );
      }
    }
  }
}

/** Starts the registry on `host:port` (port 0 picks a free one). */
export async function startServer(
  options: ServerOptions & { host: string; port: number },
): Promise<RunningServer> {
  const app = new RegistryApp(options);
  const maxAge = options.uploadMaxAgeMs ?? 60 * 60 * 1000;
  const removed = await options.storage.blobs.cleanUploads(maxAge);
  if (removed > 0) options.logger.info({ removed }, 'removed abandoned uploads');
  const cleaner = setInterval(
    () => {
      options.storage.blobs
        .cleanUploads(maxAge)
        .then((count) => count > 0 && options.logger.info({ removed: count }, 'removed abandoned uploads'))
        .catch((error: unknown) => options.logger.warn({ err: error }, 'upload cleanup failed'));
    },
    Math.max(60_000, Math.floor(maxAge / 4)),
  );
  cleaner.unref();

  const gcTimer = options.gc ? startOnlineGc(options, app.metrics, app.gcFence) : undefined;

  const server = createServer(
    { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 },
    (req, res) => {
      app.serve(req, res).catch((error: unknown) => {
        options.logger.error({ err: error }, 'request failed outside its handler');
        res.destroy();
      });
    },
  );

  server.setTimeout(5 * 60_000, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Errors of the listening socket after start-up (EMFILE on accept, say) are logged; the server goes on.
  server.on('error', (error) => options.logger.error({ err: error }, 'listener error'));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const close = (closeOptions: { immediate?: boolean } = {}): Promise<void> => {
    closing ??= (async () => {
      app.startDraining();
      clearInterval(cleaner);
      if (gcTimer) clearInterval(gcTimer);
      const delay = closeOptions.immediate ? 0 : (options.drainDelayMs ?? 0);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + (options.shutdownTimeoutMs ?? 30_000);
      while (app.metrics.inFlight > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        server.closeIdleConnections();
      }
      server.closeAllConnections();
      await closed;
      await options.cache?.close();
    })();
    return closing;
  };

  return {
    server,
    url: `http://${host}:${address.port}`,
    metrics: app.metrics,
    handle: (request) => app.handle(request),
    close,
  };
}

/**
 * Writes the head and body of `response` and returns the body's bytes. A sender body that is not sent (a
 * HEAD, or the head failed) is cancelled, so what it opened (an S3 GET) is closed.
 */
async function writeResponse(
  response: RegistryResponse,
  head: boolean,
  res: ServerResponse,
): Promise<number> {
  const body = response.body;
  let sending = false;
  try {
    res.writeHead(response.status, response.headers);
    if (body === undefined || head) {
      if (body instanceof Readable) body.destroy();
      res.end();
      return 0;
    }
    if (Buffer.isBuffer(body)) {
      res.end(body);
      return body.length;
    }
    if (body instanceof Readable) {
      await pipeline(body, res);
    } else {
      sending = true;
      await body.send(res);
      res.end();
    }
    return Number(response.headers['Content-Length'] ?? 0);
  } finally {
    if (!sending && body !== undefined && !Buffer.isBuffer(body) && !(body instanceof Readable)) {
      body.cancel?.();
    }
  }
}

/**
 * Runs gc on the storage every `gc.intervalMs` while serving, under a lease so that replicas sharing a
 * coordinator take turns. The fence keeps what pushes, mounts, uploads and fills under way rely on, and the
 * grace period (`minAgeMs`) what they wrote; reads never see a blob as present that gc removed, because
 * drivers answer from the storage.
 */
function startOnlineGc(options: ServerOptions, metrics: Metrics, fence: GcFence): NodeJS.Timeout {
  const gc = options.gc!;
  const coordinator = gc.coordinator ?? new LocalCoordinator();
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      const lease = await coordinator.acquire('gc', Math.max(gc.intervalMs, 60_000));
      if (!lease) return;
      try {
        const report = await collectGarbage(options.storage, {
          dryRun: false,
          minAgeMs: gc.minAgeMs,
          deleteUntagged: gc.deleteUntagged,
          fence,
        });
        metrics.gcRuns++;
        metrics.gcBytesSwept += report.bytesSwept;
        options.logger.info(
          {
            blobsSwept: report.blobsSwept.length,
            bytesSwept: report.bytesSwept,
            blobsProtected: report.blobsProtected,
            manifestsRemoved: report.manifestsRemoved.length,
            warnings: report.warnings.length,
          },
          'gc',
        );
      } finally {
        await lease.release().catch(() => undefined);
      }
    })()
      .catch((error: unknown) => options.logger.warn({ err: error }, 'gc failed'))
      .finally(() => (running = false));
  }, gc.intervalMs);
  timer.unref();
  return timer;
}

/** What the server still reads of a request body nobody consumed, after answering it. */
const unreadBodyLimit = { bytes: 64 * 1024 * 1024, ms: 10_000 };

/**
 * Reads and drops the rest of a request body that was answered early (an error before or while reading
 * it), so the client, still sending, reads the answer instead of a connection reset; the connection stays
 * usable. A client that sends more than `unreadBodyLimit` allows, or for longer, is cut off.
 */
function discardUnreadBody(req: IncomingMessage): void {
  const socket = req.socket;
  const readBefore = socket.bytesRead;
  const cut = (): void => void socket.destroy();
  const timer = setTimeout(cut, unreadBodyLimit.ms);
  timer.unref();
  const stop = (): void => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  req.on('data', () => {
    if (socket.bytesRead - readBefore > unreadBodyLimit.bytes) cut();
  });
}

function ignore(): void {}

/** Content-Length when the body arrived whole, else what the socket read during the request. */
function bodyBytes(req: IncomingMessage, socketBytesBefore: number): number {
  const declared = Number(req.headers['content-length']);
  if (req.complete && Number.isSafeInteger(declared)) return declared;
  return Math.max(0, req.socket.bytesRead - socketBytesBefore);
}

function actionFor(method: string): Action {
  if (method === 'GET' || method === 'HEAD') return 'pull';
  if (method === 'DELETE') return 'delete';
  return 'push';
}

function headerValue(request: RegistryRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function text(status: number, body: string, contentType = 'text/plain; charset=utf-8'): RegistryResponse {
  const bytes = Buffer.from(body);
  return { status, headers: { 'Content-Type': contentType, 'Content-Length': bytes.length }, body: bytes };
}

function fromStoreError(error: StoreError): OciError {
  switch (error.code) {
    case 'NOT_FOUND':
      return new OciError('BLOB_UNKNOWN', error.message);
    case 'DIGEST_MISMATCH':
      return new OciError('DIGEST_INVALID', error.message);
    case 'SIZE_MISMATCH':
      return new OciError('SIZE_INVALID', error.message);
    case 'TOO_LARGE':
      return new OciError('SIZE_INVALID', error.message, undefined, 413);
    case 'BUSY':
      return new OciError('BLOB_UPLOAD_INVALID', error.message, undefined, 409);
    case 'INVALID_KEY':
      return new OciError('NAME_INVALID', error.message);
    case 'FULL':
      return storageFull();
  }
}

/** 507 Insufficient Storage: the client learns the registry, not its request, is at fault. */
function storageFull(): OciError {
  return new OciError(
    'UNKNOWN',
    'storage is full: the registry refuses writes until space is freed (reads still work)',
    { reason: 'storage full' },
    507,
  );
}

function isStorageFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function isClientAbort(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE';
}
