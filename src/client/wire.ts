/**
 * pullsafe's own HTTP/1.1 client, over connections that read into one fixed buffer each, with no stream
 * objects and no per-chunk allocation. `pump` moves a blob from one registry to another: a GET whose body
 * is written straight into the PUT of an upload. `exchange` sends a small request and reads its answer
 * whole (the transport's first choice for such requests). It exists for speed: on the sync benchmark it
 * cut pullsafe's CPU from about 2.0 to about 0.9 seconds (docs/benchmarks.md).
 *
 * Promises:
 * - `pump` succeeds only when the source answered 200 with exactly `size` bytes hashing to `digest` and
 *   the target then answered 2xx. The last bytes are written only after the hash matched, so a target
 *   never receives a complete upload of wrong or short content.
 * - It decides nothing else. Any other outcome (a status, a redirect loop, a broken or slow connection, a
 *   wrong byte) comes back as `{ ok: false }` with what was seen, and the caller takes the general path,
 *   which owns retries, authentication challenges and error messages.
 * - Redirects of the download are followed; the source's Authorization goes only to the source's origin.
 * - Connections are kept alive per origin and reused only after a response was read to its end.
 * - HTTPS connections verify the certificate (with `tls`), except to hosts `insecure` names.
 */
import { createHash, type Hash } from 'node:crypto';
import { digestAlgorithm, type Digest } from '../oci/digest.ts';
import {
  ANSWER_LIMIT,
  ConnectionPool,
  WireFailure,
  sendReplacingStale,
  type BodySink,
  type Connection,
  type Head,
  type WireOptions,
} from '../shared/http-connection.ts';

export type { WireOptions } from '../shared/http-connection.ts';

export interface WireEndpoint {
  url: URL;
  /** Lower-case names. Host, User-Agent and Content-Length are set by the wire, and a pump's Content-Type. */
  headers: Record<string, string>;
}

export interface WireAnswer {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body, up to the limit (64 KiB unless asked otherwise); a longer one is cut, its connection given up. */
  body: Buffer;
}

export interface Exchanged extends WireAnswer {
  /** The body was longer than the limit asked for and was cut there. */
  truncated: boolean;
}

export type ExchangeOutcome =
  | ({ ok: true } & Exchanged)
  | {
      ok: false;
      reason: string;
      /** Set when the connection failed: ECONNRESET, UND_ERR_HEADERS_TIMEOUT, … */
      code?: string;
    };

export interface WireStats {
  pumped: number;
  declined: number;
  exchanged: number;
  unanswered: number;
  lastReason?: string;
}

export type PumpOutcome =
  | { ok: true; put: WireAnswer; bytes: number }
  | { ok: false; reason: string; get?: WireAnswer; put?: WireAnswer };

export interface PumpRequest {
  get: WireEndpoint;
  put: WireEndpoint;
  digest: Digest;
  size: number;
  maxRedirects?: number;
  /** Called once when the bytes start to flow, then with the running byte count. */
  onBytes?: (bytes: number) => void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The target answered while the upload was still being sent. */
class EarlyAnswer extends WireFailure {}

export class Wire {
  private readonly pool: ConnectionPool;
  /**
   * Pumps that finished, pumps handed back to the caller (`ok: false`), exchanges answered and not, and
   * why the last one that failed did.
   */
  readonly stats: WireStats = { pumped: 0, declined: 0, exchanged: 0, unanswered: 0 };

  constructor(options: WireOptions) {
    this.pool = new ConnectionPool(options);
  }

  /**
   * One request with a small body or none, its answer read whole, on a kept-alive connection. At most
   * `limit` bytes of the answer's body are kept: a longer body ends the connection and comes back
   * `truncated`. A kept-alive connection the server closed before answering is replaced once at once;
   * any other failure comes back `ok: false`, with the node or undici code of a connection failure, for
   * the caller to send the request again on the general path (so only requests safe to send twice
   * belong here).
   */
  async exchange(
    method: string,
    endpoint: WireEndpoint,
    body?: Buffer,
    limit = ANSWER_LIMIT,
  ): Promise<ExchangeOutcome> {
    const headers = { ...endpoint.headers };
    if (body !== undefined || method === 'POST' || method === 'PUT' || method === 'PATCH') {
      headers['content-length'] = String(body?.length ?? 0);
    }
    const { take, used } = this.borrow();
    try {
      const { connection, head } = await sendReplacingStale(take, method, endpoint.url, headers, body);
      const answer = await connection.readAll(method, limit);
      this.stats.exchanged++;
      return { ok: true, ...head, ...answer };
    } catch (error) {
      for (const connection of used) connection.destroy();
      const code = (error as { code?: unknown }).code;
      this.stats.unanswered++;
      this.stats.lastReason = (error as Error).message;
      return { ok: false, reason: (error as Error).message, ...(typeof code === 'string' ? { code } : {}) };
    } finally {
      for (const connection of used) this.pool.release(connection);
    }
  }

  /** Streams the blob at `get` into the upload at `put` (see the promises above). */
  async pump(request: PumpRequest): Promise<PumpOutcome> {
    const { take, used } = this.borrow();
    try {
      const outcome = await this.transfer(request, take);
      if (outcome.ok) this.stats.pumped++;
      else this.decline(outcome.reason);
      return outcome;
    } catch (error) {
      for (const connection of used) connection.destroy();
      this.decline((error as Error).message);
      return { ok: false, reason: (error as Error).message };
    } finally {
      for (const connection of used) this.pool.release(connection);
    }
  }

  /** Connections taken for one operation, to be released (or destroyed on failure) together. */
  private borrow(): { take: (url: URL) => Connection; used: Connection[] } {
    const used: Connection[] = [];
    const take = (url: URL): Connection => {
      const connection = this.pool.acquire(url);
      used.push(connection);
      return connection;
    };
    return { take, used };
  }

  private decline(reason: string): void {
    this.stats.declined++;
    this.stats.lastReason = reason;
  }

  close(): void {
    this.pool.close();
  }

  private async transfer(request: PumpRequest, take: (url: URL) => Connection): Promise<PumpOutcome> {
    const { digest, size } = request;
    const opened = await openSource(request, take);
    if (!opened.ok) return opened;
    const source = opened.connection;
    if (size === 0) {
      const empty = `${digestAlgorithm(digest)}:${createHash(digestAlgorithm(digest)).digest('hex')}`;
      if (empty !== digest) return { ok: false, reason: `an empty blob hashes to ${empty}` };
    }
    const target = take(request.put.url);
    target.startRequest('PUT', request.put.url, {
      ...request.put.headers,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
    });
    const answered = target.readHead();
    let early = false;
    answered.then(
      () => (early = true),
      () => {},
    );
    request.onBytes?.(0);
    const hash: Hash = createHash(digestAlgorithm(digest));
    let received = 0;
    let verified = size === 0;
    let writes = 0;
    let flushed: (() => void) | undefined;
    let writeError: Error | undefined;
    const afterWrite = (error?: Error | null): void => {
      if (error) writeError ??= error;
      writes--;
      if (writes === 0) flushed?.();
    };
    const sink: BodySink = {
      data(piece) {
        received += piece.length;
        if (received > size) throw new WireFailure(`the source sent more than ${size} bytes`);
        if (early) throw new EarlyAnswer('the target answered before the upload was complete');
        hash.update(piece);
        if (received === size) {
          const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
          if (actual !== digest) throw new WireFailure(`the source's bytes hash to ${actual}`);
          verified = true;
        }
        writes++;
        target.socket.write(piece, afterWrite);
        request.onBytes?.(received);
      },
      busy() {
        if (writeError) return Promise.reject(writeError);
        // A write still queued holds a slice of the source's read buffer: read on only once it is out.
        if (writes === 0 || target.socket.writableLength === 0) return undefined;
        return new Promise<void>((resolve, reject) => {
          flushed = () => {
            flushed = undefined;
            if (writeError) reject(writeError);
            else resolve();
          };
        });
      },
    };
    try {
      await source.readBody(sink, 'GET');
    } catch (error) {
      if (!(error instanceof EarlyAnswer)) throw error;
    }
    if (!early && (received !== size || !verified)) {
      throw new WireFailure(`the source sent ${received} of ${size} bytes`);
    }
    return uploadOutcome(target, await answered, received, size);
  }
}

type Declined = Extract<PumpOutcome, { ok: false }>;

/**
 * The GET of the blob, its redirects followed, on a connection whose head said 200 with the expected length
 * (or none): the body is next. Anything else is declined, its connection read to the end or given up.
 */
async function openSource(
  request: PumpRequest,
  take: (url: URL) => Connection,
): Promise<{ ok: true; connection: Connection } | Declined> {
  const sourceOrigin = request.get.url.origin;
  let url = request.get.url;
  let source: Connection;
  let head: Head;
  for (let hop = 0; ; hop++) {
    const headers =
      url.origin === sourceOrigin ? request.get.headers : withoutAuthorization(request.get.headers);
    ({ connection: source, head } = await sendReplacingStale(take, 'GET', url, headers));
    const location = head.headers.location;
    if (!REDIRECTS.has(head.status) || location === undefined) break;
    await source.readAll('GET');
    if (hop >= (request.maxRedirects ?? 5)) return { ok: false, reason: 'too many redirects' };
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      return { ok: false, reason: `redirect to a ${next.protocol} URL` };
    }
    url = next;
  }
  if (head.status !== 200) {
    const { body } = await source.readAll('GET');
    return { ok: false, reason: `the source answered ${head.status}`, get: { ...head, body } };
  }
  const announced = head.headers['content-length'];
  if (announced !== undefined && Number(announced) !== request.size) {
    source.destroy();
    return { ok: false, reason: `the source announced ${announced} bytes, expected ${request.size}` };
  }
  return { ok: true, connection: source };
}

/**
 * The pump's outcome from the target's answer, once the body was sent (or the target answered early): a
 * success only for a 2xx to a complete upload; otherwise the connection is not reused.
 */
async function uploadOutcome(
  target: Connection,
  putHead: Head,
  received: number,
  size: number,
): Promise<PumpOutcome> {
  const { body } = await target.readAll('PUT');
  const put = { ...putHead, body };
  if (received !== size || putHead.status < 200 || putHead.status >= 300) {
    target.reusable = false;
    return { ok: false, reason: `the target answered ${putHead.status}`, put };
  }
  return { ok: true, put, bytes: received };
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const { authorization: _dropped, ...rest } = headers;
  return rest;
}
