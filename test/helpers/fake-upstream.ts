/**
 * A fake upstream registry that behaves like Docker Hub, for tests of the registry client, the copy tool and
 * the pull-through cache. It listens on 127.0.0.1 only (port 0), and optionally runs a second "CDN" server
 * (also 127.0.0.1) that blob GETs are redirected to.
 *
 * What it promises:
 * - Content added with `addBlob`/`addManifest`/`addReferrer` or pushed over HTTP is served byte-exact.
 * - Auth modes: `token` (Docker Hub's Bearer flow with the token endpoint at `/token` on the same server,
 *   service "fake.registry"), `basic`, or `none`. Default: `token`.
 * - Docker Hub's rate limit: manifest GETs (not HEADs) are counted per source (the user, or the client IP),
 *   manifest GET and HEAD answers carry the RateLimit headers, and GETs past the limit get 429.
 * - Fault injection (`inject`): status, reset and delay faults fire when a matching request arrives, before
 *   authentication; truncate and wrong-digest faults fire only when a matching request is about to receive
 *   content (a manifest or blob body), so 401 challenges, HEADs and redirects do not consume them.
 * - Every request is recorded, in arrival order, with the status it was answered with (0 for a reset).
 * - Self-contained: it does not use pullsafe's own code, so it can judge that code.
 *
 * Its parts are in `fake-upstream/`: content, faults, auth, rate limit, the registry endpoints and the CDN.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { FakeAuth } from './fake-upstream/auth.ts';
import { handleCdn } from './fake-upstream/cdn.ts';
import { FakeContent, sha256Digest } from './fake-upstream/content.ts';
import { FakeFaults } from './fake-upstream/faults.ts';
import {
  BodyTooLarge,
  headerRecord,
  listen,
  parseRoute,
  sendError,
  type Context,
  type FakeUrls,
  type Route,
} from './fake-upstream/http.ts';
import { FakeQuota } from './fake-upstream/rate-limit.ts';
import { FakeRegistry } from './fake-upstream/registry.ts';
import type {
  FakeUpstream,
  FakeUpstreamOptions,
  RecordedRequest,
  ServerName,
} from './fake-upstream/types.ts';

export { FAKE_SERVICE } from './fake-upstream/auth.ts';
export { sha256Digest } from './fake-upstream/content.ts';
export type {
  Descriptor,
  FakeUpstream,
  FakeUpstreamOptions,
  Fault,
  FaultAction,
  FaultMatch,
  IssuedToken,
  RateLimitOptions,
  RecordedRequest,
  RequestKind,
  ServerName,
  StoredManifest,
} from './fake-upstream/types.ts';

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const urls: FakeUrls = { base: '', cdn: '' };
  const content = new FakeContent();
  const faults = new FakeFaults();
  const auth = new FakeAuth(options, urls);
  const quota = new FakeQuota(options.rateLimit);
  const registry = new FakeRegistry({ options, urls, content, faults, auth, quota });
  const requests: RecordedRequest[] = [];
  const parts: HandlerParts = {
    requests,
    faults,
    routeRegistry: (ctx, route) => registry.routeRegistry(ctx, route),
    handleCdn: (ctx) => handleCdn(ctx, content, auth, faults),
  };

  const registryServer = createServer(handlerFor('registry', parts));
  const port = await listen(registryServer);
  urls.base = `http://127.0.0.1:${port}`;
  let cdnServer: Server | undefined;
  if (options.blobRedirect) {
    cdnServer = createServer(handlerFor('cdn', parts));
    urls.cdn = `http://127.0.0.1:${await listen(cdnServer)}`;
  }

  return {
    url: urls.base,
    host: `127.0.0.1:${port}`,
    ...(cdnServer ? { cdnUrl: urls.cdn } : {}),
    addBlob(repository, data) {
      const digest = sha256Digest(data);
      content.repo(repository, true)!.blobs.set(digest, Buffer.from(data));
      return digest;
    },
    addManifest: (repository, reference, mediaType, bytes) =>
      content.storeManifest(repository, reference, mediaType, bytes),
    addReferrer: (repository, subjectDigest, descriptor) =>
      content.addReferrer(repository, subjectDigest, descriptor),
    getBlob(repository, digest) {
      return content.repositories.get(repository)?.blobs.get(digest);
    },
    getManifest: (repository, reference) => content.findManifest(repository, reference),
    listTags(repository) {
      return [...(content.repositories.get(repository)?.tags.keys() ?? [])].sort();
    },
    inject: (fault) => faults.inject(fault),
    requests,
    count(predicate) {
      return requests.filter(predicate).length;
    },
    tokensIssued: auth.tokensIssued,
    setRateLimitRemaining(source, remaining) {
      const rateLimit = options.rateLimit;
      if (!rateLimit) throw new Error('setRateLimitRemaining needs the rateLimit option');
      quota.quotaOf(source).used = Math.max(0, rateLimit.limit - remaining);
    },
    async close() {
      faults.wakeSleepers();
      const servers = [registryServer, ...(cdnServer ? [cdnServer] : [])];
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

interface HandlerParts {
  requests: RecordedRequest[];
  faults: FakeFaults;
  routeRegistry: (ctx: Context, route: Route) => Promise<void>;
  handleCdn: (ctx: Context) => void;
}

/** The request listener of one server: records the request, applies arrival faults, then answers. */
function handlerFor(server: ServerName, parts: HandlerParts) {
  const { requests, faults, routeRegistry, handleCdn } = parts;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route: Route = server === 'cdn' ? { kind: 'blob' } : parseRoute(url.pathname);
    const record: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.search.replace(/^\?/, ''),
      headers: headerRecord(req),
      status: 0,
      server,
      kind: route.kind,
    };
    requests.push(record);
    const ctx: Context = { req, res, record, server, url };
    const run = async (): Promise<void> => {
      if (!(await faults.arrivalFault(ctx))) return;
      if (server === 'cdn') handleCdn(ctx);
      else await routeRegistry(ctx, route);
    };
    run().catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
      } else if (error instanceof BodyTooLarge) {
        sendError(ctx, 413, 'SIZE_INVALID', 'request body too large');
      } else {
        sendError(ctx, 500, 'UNKNOWN', error instanceof Error ? error.message : String(error));
      }
    });
  };
}
