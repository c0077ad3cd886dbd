/**
 * A counting HTTP proxy in front of the upstream registry of bench/cache.ts: it forwards every request
 * unchanged (one keep-alive agent to the upstream) and counts, per method and path, the requests, status
 * codes and body bytes the upstream sent. Each cache under test gets its own counter, so upstream traffic
 * is measured outside the caches, independently of their own metrics.
 *
 *   node bench/lib/cache-counter.ts LISTEN_PORT UPSTREAM_BASE
 *
 * Control paths GET /-/counts (JSON, see CounterReport) and POST /-/reset: see counting-proxy.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { endToEnd, forward, serveCountingProxy, type Traffic, type Upstream } from './counting-proxy.ts';

/** One method and path of the upstream, with what it answered. */
export interface CountedPath {
  method: string;
  /** The path without its query, e.g. /v2/library/demo/blobs/sha256:…, /v2/library/demo/manifests/v1. */
  path: string;
  requests: number;
  /** Body bytes the upstream sent for this path (all requests). */
  bytes: number;
  statuses: Record<string, number>;
}

export interface CounterReport extends Traffic {
  paths: CountedPath[];
}

class PathCounter implements Traffic {
  private counts = new Map<string, CountedPath>();
  inFlight = 0;
  upstreamErrors = 0;

  entry(method: string, path: string): CountedPath {
    const key = `${method} ${path}`;
    let entry = this.counts.get(key);
    if (!entry) {
      entry = { method, path, requests: 0, bytes: 0, statuses: {} };
      this.counts.set(key, entry);
    }
    return entry;
  }

  report(): CounterReport {
    return { paths: [...this.counts.values()], inFlight: this.inFlight, upstreamErrors: this.upstreamErrors };
  }

  reset(): void {
    this.counts = new Map();
    this.upstreamErrors = 0;
  }
}

/** Counts the request under its method and path (without query) and forwards it to the upstream. */
function countAndForward(
  counter: PathCounter,
  upstream: Upstream,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const entry = counter.entry(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!);
  entry.requests++;
  forward(upstream, counter, req, res, {
    headers: { ...endToEnd(req.headers), host: upstream.url.host },
    onAnswer: (answer) => {
      const status = String(answer.statusCode ?? 0);
      entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
    },
    onAnswerData: (chunk) => {
      entry.bytes += chunk.length;
    },
  });
}

serveCountingProxy('node bench/lib/cache-counter.ts LISTEN_PORT UPSTREAM_BASE', (upstream) => {
  const counter = new PathCounter();
  return {
    report: () => counter.report(),
    reset: () => counter.reset(),
    handle: (req, res) => countAndForward(counter, upstream, req, res),
  };
});
