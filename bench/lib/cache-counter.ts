/**
 * A counting HTTP proxy in front of the upstream registry of bench/cache.ts: it forwards every request
 * unchanged (one keep-alive agent to the upstream) and counts, per method and path, the requests, status
 * codes and body bytes the upstream sent. Each cache under test gets its own counter, so upstream traffic
 * is measured outside the caches, independently of their own metrics.
 *
 *   node bench/lib/cache-counter.ts LISTEN_PORT UPSTREAM_BASE
 *
 * Control paths, which no registry client uses:
 *   GET  /-/counts  the counts since the last reset (JSON, see CounterReport) and requests in flight
 *   POST /-/reset   zero the counts
 */
import { Agent, createServer, request, type IncomingHttpHeaders } from 'node:http';

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

export interface CounterReport {
  paths: CountedPath[];
  inFlight: number;
  /** Requests that failed between the counter and the upstream (connection errors). */
  upstreamErrors: number;
}

// Connection-level headers belong to one hop; the rest passes through as it is.
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) kept[name] = value;
  }
  return kept;
}

function main(): void {
  const [portArg, upstreamArg] = process.argv.slice(2);
  if (!portArg || !upstreamArg) {
    console.error('usage: node bench/lib/cache-counter.ts LISTEN_PORT UPSTREAM_BASE');
    process.exit(64);
  }
  const upstream = new URL(upstreamArg);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let counts = new Map<string, CountedPath>();
  let inFlight = 0;
  let upstreamErrors = 0;

  const entryFor = (method: string, path: string): CountedPath => {
    const key = `${method} ${path}`;
    let entry = counts.get(key);
    if (!entry) {
      entry = { method, path, requests: 0, bytes: 0, statuses: {} };
      counts.set(key, entry);
    }
    return entry;
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/-/counts' && req.method === 'GET') {
      const report: CounterReport = { paths: [...counts.values()], inFlight, upstreamErrors };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(report));
      return;
    }
    if (url === '/-/reset' && req.method === 'POST') {
      counts = new Map();
      upstreamErrors = 0;
      res.writeHead(204).end();
      return;
    }
    const method = req.method ?? 'GET';
    const entry = entryFor(method, url.split('?')[0]!);
    entry.requests++;
    inFlight++;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      inFlight--;
    };
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path: url,
        headers: { ...endToEnd(req.headers), host: upstream.host },
        agent,
      },
      (answer) => {
        const status = String(answer.statusCode ?? 0);
        entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.on('data', (chunk: Buffer) => {
          entry.bytes += chunk.length;
          // Backpressure: the upstream is read only as fast as the cache reads.
          if (!res.write(chunk)) {
            answer.pause();
            res.once('drain', () => answer.resume());
          }
        });
        answer.once('end', () => {
          res.end();
          settle();
        });
        answer.once('error', () => {
          res.destroy();
          settle();
        });
        answer.once('aborted', () => {
          res.destroy();
          settle();
        });
      },
    );
    let cacheGone = false;
    forward.once('error', () => {
      if (!cacheGone) upstreamErrors++;
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
      settle();
    });
    // A cache that hangs up stops the upstream transfer too.
    res.once('close', () => {
      if (!res.writableFinished) {
        cacheGone = true;
        forward.destroy();
      }
      settle();
    });
    req.pipe(forward);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(portArg), '127.0.0.1');
  process.once('SIGTERM', () => process.exit(0));
}

main();
