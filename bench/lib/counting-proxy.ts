/**
 * What the counting proxies of the benches (cache-counter.ts, s3-counter.ts) share: the process's command
 * line, the control paths, and forwarding one request to the upstream with backpressure while keeping the
 * count of requests in flight and of failures to reach the upstream. What each proxy counts is its own.
 *
 * Control paths, which no registry or S3 client uses:
 *   GET  /-/counts  the proxy's report (JSON): its counts since the last reset and requests in flight
 *   POST /-/reset   zero the counts
 */
import {
  Agent,
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';

// Connection-level headers belong to one hop; `expect` was answered here already (Node sends 100 Continue).
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

export function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) kept[name] = value;
  }
  return kept;
}

export interface Upstream {
  url: URL;
  /** One keep-alive agent for all requests to the upstream. */
  agent: Agent;
}

/** What both proxies report beside their counts. */
export interface Traffic {
  inFlight: number;
  /** Requests that failed between the proxy and the upstream (connection errors). */
  upstreamErrors: number;
}

/** A proxy's own counting, called as one request passes. */
export interface Watch {
  /** The headers sent upstream. */
  headers: Record<string, string | string[]>;
  /** The upstream's answer, before its body. */
  onAnswer(answer: IncomingMessage): void;
  /** Each chunk of the answer's body, as it passes to the client. */
  onAnswerData(chunk: Buffer): void;
  /** The answer's body has passed whole (before the client's response ends). */
  onAnswerEnd?(answer: IncomingMessage): void;
}

/** Passes the upstream's answer on to the client, read only as fast as the client reads. */
function relay(answer: IncomingMessage, res: ServerResponse, watch: Watch, settle: () => void): void {
  watch.onAnswer(answer);
  res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
  answer.on('data', (chunk: Buffer) => {
    watch.onAnswerData(chunk);
    if (!res.write(chunk)) {
      answer.pause();
      res.once('drain', () => answer.resume());
    }
  });
  answer.once('end', () => {
    watch.onAnswerEnd?.(answer);
    res.end();
    settle();
  });
  const cut = (): void => {
    res.destroy();
    settle();
  };
  answer.once('error', cut);
  answer.once('aborted', cut);
}

/** Sends `req` to the upstream as it came (method, path, body; `watch.headers`) and its answer back. */
export function forward(
  upstream: Upstream,
  traffic: Traffic,
  req: IncomingMessage,
  res: ServerResponse,
  watch: Watch,
): void {
  traffic.inFlight++;
  let settled = false;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    traffic.inFlight--;
  };
  const outgoing = request(
    {
      host: upstream.url.hostname,
      port: upstream.url.port,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: watch.headers,
      agent: upstream.agent,
    },
    (answer) => relay(answer, res, watch, settle),
  );
  let clientGone = false;
  outgoing.once('error', () => {
    if (!clientGone) traffic.upstreamErrors++;
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
    settle();
  });
  // A client that hangs up stops the transfer to or from the upstream too.
  res.once('close', () => {
    if (!res.writableFinished) {
      clientGone = true;
      outgoing.destroy();
    }
    settle();
  });
  req.pipe(outgoing);
}

export interface CountingProxy {
  /** The JSON answer of GET /-/counts. */
  report(): unknown;
  /** Zeroes the counts (not the requests in flight). */
  reset(): void;
  /** Any other request: counts it and forwards it (or answers it). */
  handle(req: IncomingMessage, res: ServerResponse): void;
}

/**
 * Runs the proxy `make` builds, as `node SCRIPT LISTEN_PORT UPSTREAM_BASE` (`usage`), on 127.0.0.1 until
 * SIGTERM.
 */
export function serveCountingProxy(usage: string, make: (upstream: Upstream) => CountingProxy): void {
  const [portArg, upstreamArg] = process.argv.slice(2);
  if (!portArg || !upstreamArg) {
    console.error(`usage: ${usage}`);
    process.exit(64);
  }
  const proxy = make({ url: new URL(upstreamArg), agent: new Agent({ keepAlive: true, maxSockets: 256 }) });
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/-/counts' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(proxy.report()));
    } else if (url === '/-/reset' && req.method === 'POST') {
      proxy.reset();
      res.writeHead(204).end();
    } else {
      proxy.handle(req, res);
    }
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(portArg), '127.0.0.1');
  process.once('SIGTERM', () => process.exit(0));
}
