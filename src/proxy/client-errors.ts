/**
 * What a client of the cache is told when the upstream could not give what it asked for: each upstream
 * failure as the distribution error a registry client understands (404, 429 with Retry-After, 502, 503).
 */
import { OciError } from '../oci/errors.ts';
import { isDigest } from '../oci/digest.ts';
import type { CacheRoute } from './cache.ts';
import { UpstreamFailure } from './upstream.ts';

export type Wanted = 'manifest' | 'blob';

export function clientError(route: CacheRoute, wanted: Wanted, reference: string, error: unknown): OciError {
  if (error instanceof OciError) return error;
  if (!(error instanceof UpstreamFailure)) {
    return new OciError('UNAVAILABLE', `${route.upstream.name}: ${(error as Error).message}`, undefined, 503);
  }
  switch (error.kind) {
    case 'not-found':
      return notFoundError(route, wanted, reference);
    case 'rate-limited': {
      const retryAfter = error.retryAfterSeconds ?? 60;
      return Object.assign(
        new OciError(
          'TOOMANYREQUESTS',
          `${route.upstream.name} is rate limiting the cache and ${route.remote}:${reference} is not cached yet`,
          { upstream: route.upstream.name, retryAfterSeconds: retryAfter },
          429,
        ),
        { retryAfterSeconds: retryAfter },
      );
    }
    case 'refused':
      return new OciError(
        'UNAVAILABLE',
        `${route.upstream.name} refused the cache's credentials (HTTP ${error.status}) for ${route.remote}`,
        { upstream: route.upstream.name },
        502,
      );
    case 'unavailable':
      return new OciError(
        'UNAVAILABLE',
        `${route.upstream.name} is unavailable and ${route.remote}:${reference} is not cached`,
        { upstream: route.upstream.name },
        503,
      );
  }
}

export function notFoundError(route: CacheRoute, wanted: Wanted, reference: string): OciError {
  if (wanted === 'blob') {
    return new OciError(
      'BLOB_UNKNOWN',
      `${route.upstream.name} has no blob ${reference} in ${route.remote}`,
      {
        digest: reference,
      },
    );
  }
  return isDigest(reference)
    ? new OciError('MANIFEST_UNKNOWN', `${route.upstream.name} has no ${route.remote}@${reference}`, {
        name: route.local,
        reference,
      })
    : new OciError('MANIFEST_UNKNOWN', `${route.upstream.name} has no ${route.remote}:${reference}`, {
        name: route.local,
        tag: reference,
      });
}

export function describeFailure(error: unknown): string {
  if (error instanceof UpstreamFailure) {
    return error.status !== undefined
      ? `${error.upstream} answered HTTP ${error.status}`
      : `${error.upstream}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
