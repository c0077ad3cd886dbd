/**
 * An HTTP proxy on 127.0.0.1 in front of s3rver, for tests that need to see or disturb what a process sends
 * to S3: it counts requests by method and the connections open to it, records the Range of each blob GET,
 * and can cut the next blob GETs after 256 KiB (as a network or S3 may cut a long transfer) or answer them
 * with an S3 error of its own. Requests are passed on unchanged, Host included, so signatures still match.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Proxy {
  /** http://127.0.0.1:PORT, for AWS_ENDPOINT_URL_S3 or a storage's `endpoint`. */
  endpoint: string;
  /** Requests by HTTP method since the start or the last `clear()`. */
  methods: Map<string, number>;
  /** The Range header of each blob GET (`whole` without one). */
  ranges: string[];
  /** Cuts the next `count` blob GETs after 256 KiB. */
  cut(count: number): void;
  /**
   * Answers the next `count` requests `which` picks (default: blob GETs) with `status` and an S3 error body
   * naming `code`.
   */
  refuse(count: number, status: number, code: string, which?: (method: string, url: string) => boolean): void;
  openConnections(): number;
  requests(): number;
  stop(): void;
}

const cutAfter = 256 * 1024;

export async function startS3Proxy(target: string): Promise<S3Proxy> {
  const methods = new Map<string, number>();
  const ranges: string[] = [];
  let cuts = 0;
  const blobGets = (method: string, url: string): boolean =>
    method === 'GET' && url.includes('/blobs/sha256/');
  let refusal = { count: 0, status: 0, code: '', which: blobGets };
  let open = 0;
  const upstream = new URL(target);
  const server: Server = createServer((incoming, outgoing) => {
    const method = incoming.method ?? '';
    methods.set(method, (methods.get(method) ?? 0) + 1);
    const isBlobGet = method === 'GET' && incoming.url?.includes('/blobs/sha256/') === true;
    if (isBlobGet) ranges.push(incoming.headers.range ?? 'whole');
    if (refusal.count > 0 && refusal.which(method, incoming.url ?? '')) {
      refusal.count--;
      const body = `<?xml version="1.0"?><Error><Code>${refusal.code}</Code><Message>said by the test</Message></Error>`;
      outgoing.writeHead(refusal.status, { 'content-type': 'application/xml' }).end(body);
      return;
    }
    const cutThis = isBlobGet && cuts > 0;
    if (cutThis) cuts--;
    const forwarded = httpRequest(
      { host: upstream.hostname, port: upstream.port, method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!cutThis) {
          answer.pipe(outgoing);
          return;
        }
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent + chunk.length > cutAfter) {
            outgoing.write(chunk.subarray(0, cutAfter - sent));
            outgoing.socket?.destroy();
            answer.destroy();
            return;
          }
          sent += chunk.length;
          outgoing.write(chunk);
        });
        answer.on('end', () => outgoing.end());
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  server.on('connection', (socket) => {
    open++;
    socket.once('close', () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    methods,
    ranges,
    cut: (count) => (cuts = count),
    refuse: (count, status, code, which = blobGets) => (refusal = { count, status, code, which }),
    openConnections: () => open,
    requests: () => [...methods.values()].reduce((sum, count) => sum + count, 0),
    stop: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
