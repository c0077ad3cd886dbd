/**
 * Blob reads from S3 on connections that read into a fixed buffer (shared/http-connection.ts) instead of the
 * SDK's node:http, which hands every socket read over in a fresh 64 KiB buffer: at hundreds of MB/s that
 * churn kept V8's collector busy for about half of serve's CPU. Each read is a GET of a presigned URL
 * (signed locally by the SDK, so credentials, region, endpoint and addressing stay the SDK's), with the
 * `Range` header when a range is asked for. Answers 5xx, SlowDown and connection failures before the
 * response head are retried with backoff (a kept-alive connection S3 closed unseen is replaced at once, as
 * sync's wire does); a missing key is `undefined`, never an error.
 */
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay } from '../shared/backoff.ts';
import {
  ConnectionPool,
  sendReplacingStale,
  type BodySink,
  type Connection,
  type Head,
  type WireOptions,
} from '../shared/http-connection.ts';
import { SourceFailure, receiverGone } from './streaming-blobs.ts';
import type { ByteRange } from './types.ts';

export interface S3ReadOptions {
  /** Bytes each connection reads into (default 128 KiB): the memory a blob being sent holds. */
  readBufferBytes?: number;
  /** Idle connections kept per endpoint (default 32), each for `idleMs` (default 4 s). */
  maxIdle?: number;
  idleMs?: number;
  /** Attempts per read before its failure is final (default 3). */
  attempts?: number;
  /** Given for tests: what the connections pass to node:net / node:tls. */
  tls?: WireOptions['tls'];
}

/** A GET whose head has arrived: its body is sent with `sendTo` or given up with `cancel`. */
export interface OpenedRead {
  /** Bytes this answer carries: the range's length for a range. */
  length: number;
  /** The object's whole size. */
  size: number;
  /**
   * Writes the bytes into `sink` without ending it, reading on only once the sink has taken what it was
   * given. Rejects with the sink's error when the sink fails or closes first, and with a SourceFailure when
   * S3 or the network does (`onBytes` has then heard how far it got). Either way the connection is closed.
   */
  sendTo(sink: Writable, onBytes?: (length: number) => void): Promise<void>;
  cancel(): void;
}

export class S3ReadError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'S3ReadError';
    this.status = status;
  }
}

export class S3Reads {
  private readonly presign: (key: string) => Promise<URL>;
  private readonly options: Required<Omit<S3ReadOptions, 'tls'>>;
  private readonly pool: ConnectionPool;
  private closed = false;

  constructor(presign: (key: string) => Promise<URL>, options: S3ReadOptions = {}) {
    this.presign = presign;
    this.options = {
      readBufferBytes: options.readBufferBytes ?? 128 * 1024,
      maxIdle: options.maxIdle ?? 32,
      idleMs: options.idleMs ?? 4_000,
      attempts: options.attempts ?? 3,
    };
    this.pool = new ConnectionPool({
      connectMs: 10_000,
      headersMs: 30_000,
      // Idle time while the body is read, not the length of a transfer: a send to a client that stopped
      // reading is cut here and resumed with a ranged GET by the caller.
      bodyIdleMs: 60_000,
      userAgent: 'pullsafe',
      readBufferBytes: this.options.readBufferBytes,
      maxIdlePerOrigin: this.options.maxIdle,
      idleMs: this.options.idleMs,
      ...(options.tls ? { tls: options.tls } : {}),
    });
  }

  /** The object's bytes (or a range of them) ready to be sent; undefined when there is no such object. */
  async open(key: string, range?: ByteRange): Promise<OpenedRead | undefined> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    for (let attempt = 1; ; attempt++) {
      const url = await this.presign(key);
      const taken: Connection[] = [];
      const take = (at: URL): Connection => {
        const connection = this.pool.acquire(at);
        taken.push(connection);
        return connection;
      };
      let connection: Connection;
      let head: Head;
      try {
        ({ connection, head } = await sendReplacingStale(take, 'GET', url, headers));
      } catch (error) {
        for (const failed of taken) failed.destroy();
        if (attempt >= this.options.attempts || this.closed) {
          throw new S3ReadError(`cannot read ${key} from S3: ${(error as Error).message}`);
        }
        await sleep(backoffDelay(attempt, { baseDelayMs: 100, maxDelayMs: 2_000 }));
        continue;
      }
      if (head.status === 200 || head.status === 206) return this.opened(connection, head, key, range);
      const { body } = await connection.readAll('GET').catch(() => ({ body: Buffer.alloc(0) }));
      this.pool.release(connection);
      const code = errorCode(body);
      if (head.status === 404 && code !== 'NoSuchBucket') return undefined;
      const retryable = head.status >= 500 || code === 'SlowDown';
      if (!retryable || attempt >= this.options.attempts) {
        throw new S3ReadError(
          `S3 answered ${head.status}${code ? ` ${code}` : ''} reading ${key}${messageOf(body)}`,
          head.status,
        );
      }
      await sleep(backoffDelay(attempt, { baseDelayMs: 100, maxDelayMs: 2_000 }));
    }
  }

  close(): void {
    this.closed = true;
    this.pool.close();
  }

  private opened(connection: Connection, head: Head, key: string, range?: ByteRange): OpenedRead {
    const length = Number(head.headers['content-length']);
    const total = /\/(\d+)$/.exec(head.headers['content-range'] ?? '');
    const size = total ? Number(total[1]) : length;
    const expected = range ? range.end - range.start + 1 : undefined;
    if (!Number.isSafeInteger(length) || !Number.isSafeInteger(size) || (expected ?? length) !== length) {
      connection.destroy();
      throw new S3ReadError(
        `S3 answered ${key} with ${head.headers['content-length'] ?? 'no'} bytes${expected === undefined ? '' : `, expected ${expected}`}`,
      );
    }
    let used = false;
    return {
      length,
      size,
      cancel: () => {
        if (used) return;
        used = true;
        connection.destroy();
      },
      sendTo: async (sink, onBytes) => {
        if (used) throw new Error(`the read of ${key} was already used`);
        used = true;
        await this.send(connection, sink, onBytes);
      },
    };
  }

  private async send(
    connection: Connection,
    sink: Writable,
    onBytes: ((length: number) => void) | undefined,
  ): Promise<void> {
    let writes = 0;
    let sinkError: Error | undefined;
    let flushed: (() => void) | undefined;
    const afterWrite = (error?: Error | null): void => {
      if (error) sinkError ??= error;
      writes--;
      if (writes === 0 || sinkError) flushed?.();
    };
    const onSinkClose = (): void => {
      sinkError ??= receiverGone();
      connection.destroy();
      flushed?.();
    };
    const bodySink: BodySink = {
      data(piece) {
        writes++;
        sink.write(piece, afterWrite);
        onBytes?.(piece.length);
      },
      busy() {
        if (sinkError) return Promise.reject(sinkError);
        // A write still queued holds a slice of the connection's read buffer: read on only once it is out.
        if (writes === 0 || sink.writableLength === 0) return undefined;
        return new Promise<void>((resolve, reject) => {
          flushed = () => {
            flushed = undefined;
            if (sinkError) reject(sinkError);
            else resolve();
          };
        });
      },
    };
    if (sink.destroyed) {
      connection.destroy();
      throw receiverGone();
    }
    sink.once('close', onSinkClose);
    try {
      await connection.readBody(bodySink, 'GET');
    } catch (error) {
      connection.destroy();
      if (sinkError || sink.destroyed) throw sinkError ?? receiverGone();
      throw new SourceFailure(error);
    } finally {
      sink.off('close', onSinkClose);
    }
    if (sinkError) {
      connection.destroy();
      throw sinkError;
    }
    this.pool.release(connection);
  }
}

/** The `<Code>` of an S3 error body. */
function errorCode(body: Buffer): string | undefined {
  return /<Code>([^<]{1,100})<\/Code>/.exec(body.toString('utf8'))?.[1];
}

function messageOf(body: Buffer): string {
  const message = /<Message>([^<]{1,300})<\/Message>/.exec(body.toString('utf8'))?.[1];
  return message ? `: ${message}` : '';
}
