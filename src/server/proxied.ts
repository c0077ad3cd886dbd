/**
 * The Distribution API for repositories the pull-through cache serves: the cache makes sure the storage
 * holds what was asked (or explains why it cannot), then `Registry` answers from the storage as for any
 * repository, so negotiation, ranges and errors are the same. Blobs still being fetched are streamed from
 * the fill. Writes are refused: a proxied repository mirrors its upstream.
 */
import { OciError } from '../oci/errors.ts';
import { isDigest, parseDigest } from '../oci/digest.ts';
import { isTag } from '../oci/names.ts';
import {
  peerFillPrefix,
  peerTokenHeader,
  type CacheResult,
  type CacheRoute,
  type ManifestOutcome,
  type PullThroughCache,
} from '../proxy/index.ts';
import { acceptList, parseRange, type Registry } from './registry.ts';
import { header, type RegistryRequest, type RegistryResponse } from './types.ts';

export class ProxiedRegistry {
  private readonly cache: PullThroughCache;
  private readonly registry: Registry;

  constructor(cache: PullThroughCache, registry: Registry) {
    this.cache = cache;
    this.registry = registry;
  }

  async manifest(request: RegistryRequest, route: CacheRoute, reference: string): Promise<RegistryResponse> {
    // A reference that can be neither a tag nor a digest names nothing: answered locally, never asked upstream.
    if (!isTag(reference) && !isDigest(reference))
      return this.registry.getManifest(request, route.local, reference);
    let outcome: ManifestOutcome;
    try {
      outcome = await this.cache.ensureManifest(route, reference, acceptList(header(request, 'accept')));
    } catch (error) {
      this.cache.metrics.request(route.upstream.name, 'error');
      throw error;
    }
    const response = await this.registry.getManifest(request, route.local, reference);
    if (outcome.staleReason) response.headers.Warning = `110 - "Response is Stale" (${outcome.staleReason})`;
    const quota = route.upstream.quota;
    if (quota?.remaining !== undefined) {
      const window = quota.windowSeconds !== undefined ? `;w=${quota.windowSeconds}` : '';
      if (quota.limit !== undefined) response.headers['RateLimit-Limit'] = `${quota.limit}${window}`;
      response.headers['RateLimit-Remaining'] = `${quota.remaining}${window}`;
    }
    return this.logged(response, route, outcome.result);
  }

  async blob(request: RegistryRequest, route: CacheRoute, reference: string): Promise<RegistryResponse> {
    const digest = parseDigest(reference);
    if (request.method === 'HEAD') {
      if (await this.cache.holdsBlob(route, digest))
        return this.logged(await this.registry.getBlob(request, route.local, digest), route, 'hit');
      const size = await this.cache.headBlob(route, digest);
      return this.logged(
        { status: 200, headers: { ...blobHeaders(digest), 'Content-Length': size } },
        route,
        'miss',
      );
    }
    // Eviction leaves a blob alone from the moment it is found in the storage until it has been sent.
    const release = this.cache.holdBlob(digest);
    let sending = false;
    let source;
    try {
      source = await this.cache.openBlob(route, digest);
      if (source.kind === 'local') {
        const response = await this.registry.getBlob(request, route.local, digest);
        const body = response.body;
        if (body && 'send' in body) {
          sending = true;
          response.body = {
            send: (sink) => body.send(sink).finally(release),
            cancel: () => {
              body.cancel?.();
              release();
            },
          };
        }
        return this.logged(response, route, 'hit');
      }
    } finally {
      if (!sending) release();
    }
    const headers = blobHeaders(digest);
    const rangeHeader = header(request, 'range');
    const range =
      rangeHeader !== undefined && source.size !== undefined
        ? parseRange(rangeHeader, source.size)
        : undefined;
    if (range === 'unsatisfiable') {
      source.reader.leave();
      throw new OciError('RANGE_INVALID', 'requested range not satisfiable', {
        range: rangeHeader,
        size: source.size,
      });
    }
    if (range) {
      headers['Content-Range'] = `bytes ${range.start}-${range.end}/${source.size}`;
      headers['Content-Length'] = range.end - range.start + 1;
      return this.logged(
        {
          status: 206,
          headers,
          body: { send: (sink) => source.reader.sendTo(sink, range), cancel: () => source.reader.leave() },
        },
        route,
        source.result,
      );
    }
    if (source.size !== undefined) headers['Content-Length'] = source.size;
    return this.logged(
      {
        status: 200,
        headers,
        body: { send: (sink) => source.reader.sendTo(sink, undefined), cancel: () => source.reader.leave() },
      },
      route,
      source.result,
    );
  }

  /**
   * GET /_pullsafe/peer/fills/UPSTREAM/DIGEST: another replica asks for a fill under way here (peers.ts).
   * Only a token signed with the replicas' shared key opens it; anything else is 404, as if unknown.
   */
  async peerFill(request: RegistryRequest): Promise<RegistryResponse> {
    const [rawUpstream, rawDigest, ...rest] = request.path.slice(peerFillPrefix.length).split('/');
    const unknown = new OciError('BLOB_UNKNOWN', 'no such fill here', {}, 404);
    if (rawUpstream === undefined || rawDigest === undefined || rest.length > 0 || !isDigest(rawDigest)) {
      throw unknown;
    }
    let upstream: string;
    try {
      upstream = decodeURIComponent(rawUpstream);
    } catch {
      throw unknown;
    }
    const digest = parseDigest(rawDigest);
    const fill = await this.cache.peerFill(upstream, digest, header(request, peerTokenHeader));
    if (!fill) throw unknown;
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
    };
    if (fill.size !== undefined) headers['Content-Length'] = fill.size;
    return {
      status: 200,
      headers,
      body: { send: (sink) => fill.reader.sendTo(sink, undefined), cancel: () => fill.reader.leave() },
    };
  }

  async tags(route: CacheRoute, name: string): Promise<RegistryResponse> {
    const tags = await this.cache.tags(route);
    const body = Buffer.from(JSON.stringify({ name, tags }));
    return {
      status: 200,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
      body,
      log: { cache: 'hit', upstream: route.upstream.name },
    };
  }

  /** Pushes and deletes: a proxied repository mirrors its upstream and takes no writes. */
  refuse(route: CacheRoute, name: string): never {
    throw new OciError(
      'UNSUPPORTED',
      `${name} is served from ${route.upstream.name} by the pull-through cache and takes no pushes or deletes; push to a hosted repository (proxy.hosted in the configuration)`,
      { name, upstream: route.upstream.name },
      405,
    );
  }

  private logged(response: RegistryResponse, route: CacheRoute, result: CacheResult): RegistryResponse {
    response.log = { cache: result, upstream: route.upstream.name };
    response.headers['Cache-Status'] = cacheStatus(result);
    return response;
  }
}

/**
 * RFC 9211's `Cache-Status`: whether the answer came from the storage (`hit`) or the upstream was asked for
 * it (`fwd`), so that a client can tell what its pull cost (`pullsafe warm` counts on it).
 */
function cacheStatus(result: CacheResult): string {
  switch (result) {
    case 'hit':
      return 'pullsafe; hit';
    case 'stale':
      return 'pullsafe; hit; detail=stale';
    case 'revalidated':
      return 'pullsafe; fwd=stale';
    case 'coalesced':
      return 'pullsafe; fwd=miss; collapsed';
    default:
      return 'pullsafe; fwd=miss';
  }
}

function blobHeaders(digest: string): Record<string, string | number> {
  return {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    'Accept-Ranges': 'bytes',
    ETag: `"${digest}"`,
    'Cache-Control': 'max-age=31536000',
  };
}
