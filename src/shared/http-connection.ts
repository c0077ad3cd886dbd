/**
 * One HTTP/1.1 connection to an origin, reading into a fixed buffer, and the request and response heads it
 * writes and reads: the fast path under sync's wire (`client/wire.ts`, which pools them and decides what to
 * send) and under the S3 driver's blob reads (`store/s3-reads.ts`). No allocation per read over plain TCP.
 */
import { connect as connectTcp, isIP, type LookupFunction, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';

/** Longest response head, and longest answer an exchange reads whole. */
const HEAD_LIMIT = 64 * 1024;
export const ANSWER_LIMIT = 64 * 1024;

export interface WireOptions {
  connectMs: number;
  /** From sending a request to receiving its complete response head. */
  headersMs: number;
  /** Longest pause while a body is being read or written. */
  bodyIdleMs: number;
  userAgent: string;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** Whether the certificate of `host` (`name` or `name:port`, as in URLs) goes unverified. */
  insecure?: (host: string) => boolean;
  /** Injected for tests: resolves host names, as node:net's `lookup` option. */
  lookup?: LookupFunction;
  /** Bytes each connection reads into (default 256 KiB). */
  readBufferBytes?: number;
  /** Idle connections kept per origin (default 16), each for `idleMs` (default 4 s). */
  maxIdlePerOrigin?: number;
  idleMs?: number;
}

/**
 * Fails the pump or exchange; its message becomes the outcome's `reason`. Failures of the connection
 * itself carry the code undici gives the same failure, so callers treat both paths alike.
 */
export class WireFailure extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** An exchange's answer is longer than the caller wants: its connection is given up. */
class AnswerTooLong extends WireFailure {}

export interface Head {
  status: number;
  headers: Record<string, string>;
}

type Framing =
  | { kind: 'none' }
  | { kind: 'length'; left: number }
  | { kind: 'chunked'; state: 'size' | 'data' | 'data-end' | 'trailer'; left: number; line: string }
  | { kind: 'close' };

/** What a body's bytes go to: `data` for each piece, then `busy` says whether to wait before reading on. */
export interface BodySink {
  data(piece: Buffer): void;
  busy(): Promise<void> | undefined;
}

/**
 * One HTTP/1.1 connection, one request at a time. Over plain TCP, reads land in one fixed buffer: a body
 * piece handed to the sink is a slice of it, valid until the sink's `busy()` settles, and no read happens
 * before. TLS sockets cannot promise that (they decrypt several records into the buffer in one go, paused
 * or not), so over TLS each read gets a buffer of its own. Bytes that arrive while the connection cannot
 * hand them on are kept aside and handed on in order later.
 */
export class Connection {
  readonly origin: string;
  readonly socket: Socket;
  reusable = true;
  failure: Error | undefined;
  head: Head | undefined;
  /** Requests answered on this connection. */
  served = 0;
  idleTimer: NodeJS.Timeout | undefined;
  /** The start of a response head whose end has not arrived yet (a copy: the read buffer is reused). */
  private partialHead: Buffer | undefined;
  /** idle: no request; head: reading a response head; headed: head read, body not asked for yet. */
  private mode: 'idle' | 'head' | 'headed' | 'body' = 'idle';
  private framing: Framing = { kind: 'none' };
  private sink: BodySink | undefined;
  /** The sink is busy: bytes read meanwhile go to `held`. */
  private holding = false;
  private held: Buffer[] = [];
  /** The server ended its side. */
  private ended = false;
  private waiting: { resolve: (value: Head) => void; reject: (error: Error) => void } | undefined;
  private bodyWaiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly options: WireOptions;
  /** Each read arrives in a buffer of its own (TLS), rather than in the fixed one. */
  private readonly ownsReads: boolean;

  constructor(url: URL, options: WireOptions) {
    this.options = options;
    this.origin = url.origin;
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const tlsOptions: ConnectionOptions = {
      host,
      port,
      ...(isIP(host) ? {} : { servername: host }),
      ALPNProtocols: ['http/1.1'],
      ...options.tls,
      ...(options.insecure?.(url.host) ? { rejectUnauthorized: false } : {}),
      ...(options.lookup ? { lookup: options.lookup } : {}),
    };
    this.ownsReads = url.protocol === 'https:';
    if (this.ownsReads) {
      this.socket = connectTls(tlsOptions);
      this.socket.on('data', (data: Buffer) => {
        if (!this.onRead(data, data.length)) this.socket.pause();
      });
    } else {
      const buffer = Buffer.allocUnsafe(options.readBufferBytes ?? 256 * 1024);
      const onread = { buffer, callback: (length: number, data: Buffer) => this.onRead(data, length) };
      this.socket = connectTcp({ host, port, onread, ...(options.lookup ? { lookup: options.lookup } : {}) });
    }
    this.socket.setNoDelay(true);
    const connectTimer = setTimeout(
      () =>
        this.fail(
          new WireFailure(
            `no connection to ${this.origin} within ${options.connectMs} ms`,
            'UND_ERR_CONNECT_TIMEOUT',
          ),
        ),
      options.connectMs,
    );
    this.socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () =>
      clearTimeout(connectTimer),
    );
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => {
      clearTimeout(connectTimer);
      this.reusable = false;
      // After an orderly end, what was read is still handed on (see onEnd).
      if (!this.ended) this.fail(new WireFailure(`${this.origin} closed the connection`, 'UND_ERR_SOCKET'));
    });
    this.socket.on('timeout', () =>
      this.fail(
        new WireFailure(
          `${this.origin} sent nothing for ${this.socket.timeout} ms`,
          this.mode === 'body' ? 'UND_ERR_BODY_TIMEOUT' : 'UND_ERR_HEADERS_TIMEOUT',
        ),
      ),
    );
  }

  /** Sends a request head (and a small body) and waits for the response head. */
  async request(method: string, url: URL, headers: Record<string, string>, body?: Buffer): Promise<Head> {
    this.startRequest(method, url, headers);
    if (body?.length) this.socket.write(body);
    return this.readHead();
  }

  /** Writes a request head whose body the caller writes next; the response head is read with readHead. */
  startRequest(method: string, url: URL, headers: Record<string, string>): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw new WireFailure(`${this.origin} closed the connection`, 'UND_ERR_SOCKET');
    const head = requestHead(method, url, headers, this.options.userAgent);
    this.head = undefined;
    this.mode = 'head';
    this.partialHead = undefined;
    this.socket.write(head);
    this.socket.resume();
  }

  readHead(): Promise<Head> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.head) return Promise.resolve(this.head);
    this.socket.setTimeout(this.options.headersMs);
    return new Promise<Head>((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Reads the body of the response whose head was read, piece by piece into `sink`. */
  readBody(sink: BodySink, method: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.framing = framingOf(method, this.head!);
    return new Promise<void>((resolve, reject) => {
      this.bodyWaiting = { resolve, reject };
      if (this.framing.kind === 'none') {
        this.finishBody();
        return;
      }
      this.mode = 'body';
      this.sink = sink;
      this.socket.setTimeout(this.options.bodyIdleMs);
      this.drain();
    });
  }

  /**
   * The whole body, keeping `limit` bytes at most: past that the connection is given up (it is not worth
   * reading on) and the body comes back cut, `truncated`.
   */
  async readAll(method: string, limit = ANSWER_LIMIT): Promise<{ body: Buffer; truncated: boolean }> {
    const parts: Buffer[] = [];
    let length = 0;
    let truncated = false;
    try {
      await this.readBody(
        {
          data(piece) {
            const room = limit - length;
            // Copied: the piece is a slice of the connection's read buffer.
            parts.push(Buffer.from(piece.subarray(0, room)));
            length += Math.min(room, piece.length);
            if (piece.length > room) throw new AnswerTooLong('the answer is longer than asked for');
          },
          busy: () => undefined,
        },
        method,
      );
    } catch (error) {
      if (!(error instanceof AnswerTooLong)) throw error;
      truncated = true;
    }
    return { body: Buffer.concat(parts, length), truncated };
  }

  destroy(): void {
    this.reusable = false;
    this.socket.destroy();
  }

  /**
   * Back in the pool: keep reading, so that a close or stray bytes from the server are noticed, without
   * keeping the process alive for it.
   */
  park(): void {
    this.mode = 'idle';
    this.socket.unref();
    this.socket.resume();
  }

  /** Out of the pool, for a request. */
  unpark(): void {
    this.socket.ref();
  }

  private onRead(buffer: Buffer, length: number): boolean {
    const data = buffer.subarray(0, length);
    if (this.holding || this.mode === 'headed') {
      this.held.push(this.ownsReads ? data : Buffer.from(data));
      return false;
    }
    if (this.mode === 'head') return this.onHeadBytes(data);
    if (this.mode === 'body') {
      this.deliver(data);
      return this.mode === 'body' && !this.holding && !this.failure;
    }
    // Bytes nobody asked for: the server is out of step with us.
    this.fail(new WireFailure(`${this.origin} sent bytes outside a response`));
    return false;
  }

  /**
   * Bytes of a response head, often followed by the body's first bytes. The bytes after a complete head
   * are not copied: returning false stops reading (so the read buffer is not reused) until the body is
   * asked for, and they are handed on before reading resumes.
   */
  private onHeadBytes(data: Buffer): boolean {
    const all = this.partialHead ? Buffer.concat([this.partialHead, data]) : data;
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      this.partialHead = this.ownsReads || all !== data ? all : Buffer.from(all);
      if (all.length > HEAD_LIMIT)
        this.fail(new WireFailure(`${this.origin} sent a response head over 64 KiB`));
      return true;
    }
    this.partialHead = undefined;
    let head: Head;
    try {
      head = parseHead(all.subarray(0, end).toString('latin1'));
    } catch (error) {
      this.fail(error as Error);
      return false;
    }
    const rest = all.subarray(end + 4);
    if (head.status >= 100 && head.status < 200) {
      return rest.length ? this.onHeadBytes(rest) : true;
    }
    this.mode = 'headed';
    this.head = head;
    this.served++;
    if ((head.headers.connection ?? '').toLowerCase().includes('close')) this.reusable = false;
    if (rest.length) this.held.push(rest);
    const waiting = this.waiting;
    this.waiting = undefined;
    this.socket.setTimeout(0);
    waiting?.resolve(head);
    return false;
  }

  /** Hands on what was held, in order, while the sink is free; then reads on. */
  private drain(): void {
    while (this.held.length && !this.holding && this.mode === 'body' && !this.failure) {
      this.deliver(this.held.shift()!);
    }
    if (this.mode !== 'body' || this.holding || this.failure) return;
    if (this.ended) this.onEnd();
    else this.socket.resume();
  }

  /** Feeds body bytes through the framing into the sink. */
  private deliver(data: Buffer): void {
    let offset = 0;
    const framing = this.framing;
    try {
      while (offset < data.length && this.mode === 'body') {
        if (framing.kind === 'length') {
          offset = this.feedCounted(framing, data, offset);
          if (framing.left === 0) this.mode = 'idle';
        } else if (framing.kind === 'close') {
          this.sink!.data(offset === 0 ? data : data.subarray(offset));
          offset = data.length;
        } else if (framing.kind === 'chunked') {
          offset = this.chunked(framing, data, offset);
        }
      }
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (offset < data.length) {
      // Bytes past the end of the response: a pipelined answer we never asked for.
      this.fail(new WireFailure(`${this.origin} sent bytes past the end of a response`));
      return;
    }
    const finished = this.mode !== 'body';
    const wait = this.sink?.busy();
    if (!wait) {
      if (finished) this.finishBody();
      return;
    }
    this.holding = true;
    this.socket.pause();
    wait.then(
      () => {
        this.holding = false;
        if (finished) this.finishBody();
        else this.drain();
      },
      (error: unknown) => this.fail(error as Error),
    );
  }

  /** Hands the sink up to `counted.left` bytes of `data` from `offset`; returns the offset after them. */
  private feedCounted(counted: { left: number }, data: Buffer, offset: number): number {
    const take = Math.min(counted.left, data.length - offset);
    this.sink!.data(data.subarray(offset, offset + take));
    counted.left -= take;
    return offset + take;
  }

  private chunked(framing: Extract<Framing, { kind: 'chunked' }>, data: Buffer, start: number): number {
    let offset = start;
    if (framing.state === 'data') {
      offset = this.feedCounted(framing, data, offset);
      if (framing.left === 0) framing.state = 'data-end';
      return offset;
    }
    // size line, the CRLF after data, or trailer lines: read up to the next LF.
    const lf = data.indexOf(10, offset);
    const upTo = lf < 0 ? data.length : lf;
    framing.line += data.subarray(offset, upTo).toString('latin1');
    if (framing.line.length > 4096) throw new WireFailure(`${this.origin} sent a malformed chunked body`);
    if (lf < 0) return data.length;
    const line = framing.line.endsWith('\r') ? framing.line.slice(0, -1) : framing.line;
    framing.line = '';
    if (framing.state === 'data-end') {
      if (line !== '') throw new WireFailure(`${this.origin} sent a malformed chunked body`);
      framing.state = 'size';
    } else if (framing.state === 'size') {
      const sizeText = line.split(';')[0]!.trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText))
        throw new WireFailure(`${this.origin} sent a malformed chunked body`);
      framing.left = Number.parseInt(sizeText, 16);
      framing.state = framing.left === 0 ? 'trailer' : 'data';
    } else if (line === '') {
      this.mode = 'idle';
    }
    return lf + 1;
  }

  private finishBody(): void {
    if (this.held.length) {
      this.fail(new WireFailure(`${this.origin} sent bytes past the end of a response`));
      return;
    }
    this.mode = 'idle';
    this.sink = undefined;
    this.socket.setTimeout(0);
    if (this.framing.kind === 'close') this.reusable = false;
    const done = this.bodyWaiting;
    this.bodyWaiting = undefined;
    done?.resolve();
  }

  /**
   * The server ended its side. A close-delimited body ends here; bytes still held are handed on first.
   * Anything else still expected fails.
   */
  private onEnd(): void {
    this.ended = true;
    this.reusable = false;
    if (this.mode === 'headed' || this.holding || (this.mode === 'body' && this.held.length)) return;
    if (this.mode === 'body' && this.framing.kind === 'close') this.finishBody();
    else if (this.mode !== 'idle') {
      this.fail(new WireFailure(`${this.origin} closed the connection`, 'UND_ERR_SOCKET'));
    }
  }

  private fail(error: Error): void {
    this.reusable = false;
    if (this.failure) return;
    this.failure = error;
    this.mode = 'idle';
    this.held = [];
    if (!this.socket.destroyed) this.socket.destroy();
    const waiting = this.waiting;
    const body = this.bodyWaiting;
    this.waiting = undefined;
    this.bodyWaiting = undefined;
    waiting?.reject(error);
    body?.reject(error);
  }
}

function requestHead(method: string, url: URL, headers: Record<string, string>, userAgent: string): string {
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nuser-agent: ${userAgent}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value))
      throw new WireFailure(`header ${name} holds a line break`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!status)
    throw new WireFailure(`not an HTTP/1.1 status line: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new WireFailure(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(status[1]), headers };
}

function framingOf(method: string, head: Head): Framing {
  if (method === 'HEAD' || head.status === 204 || head.status === 304) return { kind: 'none' };
  const encoding = head.headers['transfer-encoding'];
  if (encoding !== undefined) {
    if (
      encoding
        .toLowerCase()
        .split(',')
        .map((part) => part.trim())
        .at(-1) !== 'chunked'
    ) {
      throw new WireFailure(`unsupported transfer-encoding ${encoding}`);
    }
    return { kind: 'chunked', state: 'size', left: 0, line: '' };
  }
  const length = head.headers['content-length'];
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) throw new WireFailure(`malformed content-length ${length}`);
    const left = Number(length);
    return left === 0 ? { kind: 'none' } : { kind: 'length', left };
  }
  return { kind: 'close' };
}

/**
 * Connections kept alive between requests, by origin: at most `maxIdlePerOrigin` (default 16) idle per
 * origin, each for `idleMs` (default 4 s). A connection that failed, ended or may not be reused is closed
 * instead of kept.
 */
export class ConnectionPool {
  private readonly options: WireOptions;
  private readonly idle = new Map<string, Connection[]>();
  private closed = false;

  constructor(options: WireOptions) {
    this.options = options;
  }

  /** An idle connection to the URL's origin, or a new one. */
  acquire(url: URL): Connection {
    const list = this.idle.get(url.origin);
    while (list?.length) {
      const connection = list.pop()!;
      clearTimeout(connection.idleTimer);
      if (!connection.socket.destroyed && connection.reusable && !connection.failure) {
        connection.unpark();
        return connection;
      }
      connection.destroy();
    }
    return new Connection(url, this.options);
  }

  /** Back after a request whose response was read whole. */
  release(connection: Connection): void {
    if (this.closed || !connection.reusable || connection.failure || connection.socket.destroyed) {
      connection.destroy();
      return;
    }
    let list = this.idle.get(connection.origin);
    if (!list) this.idle.set(connection.origin, (list = []));
    if (list.length >= (this.options.maxIdlePerOrigin ?? 16)) {
      connection.destroy();
      return;
    }
    list.push(connection);
    connection.park();
    connection.idleTimer = setTimeout(() => {
      const at = list.indexOf(connection);
      if (at >= 0) list.splice(at, 1);
      connection.destroy();
    }, this.options.idleMs ?? 4_000);
    connection.idleTimer.unref();
  }

  /** Closes the idle connections; later releases close theirs. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const connection of list) connection.destroy();
    this.idle.clear();
  }
}

/**
 * Sends a request on a connection from `take` and waits for its head. A kept-alive connection the server
 * closed before answering cannot be told from a live one until it is used: it is replaced by a new one,
 * once, as HTTP allows for requests safe to send twice (the only kind sent this way).
 */
export async function sendReplacingStale(
  take: (url: URL) => Connection,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ connection: Connection; head: Head }> {
  const connection = take(url);
  try {
    return { connection, head: await connection.request(method, url, headers, body) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const closedUnseen = code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
    if (connection.served === 0 || !closedUnseen) throw error;
    connection.destroy();
    const fresh = take(url);
    return { connection: fresh, head: await fresh.request(method, url, headers, body) };
  }
}
