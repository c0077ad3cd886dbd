import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import {
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../oci/digest.ts';
import { Wire, type ExchangeOutcome, type PumpOutcome, type PumpRequest, type WireOptions } from './wire.ts';

const MiB = 1024 * 1024;
const tlsDir = new URL('./fixtures/tls/', import.meta.url);
const cert = readFileSync(new URL('cert.pem', tlsDir), 'utf8');
const key = readFileSync(new URL('key.pem', tlsDir), 'utf8');

/** A hang fails the test instead of stalling the run. */
const bounded = { timeout: 10_000 };

function digestOf(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

interface Listening {
  url(path: string): URL;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Resolves once every accepted connection has closed (bounded, so a test cannot hang here). */
  quiet(): Promise<void>;
}

/** Listens on 127.0.0.1:0 and closes the server (and its connections) after the test. */
async function listen(
  t: TestContext,
  server: NetServer,
  scheme: 'http' | 'https' = 'http',
): Promise<Listening> {
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  );
  return {
    url: (path) => new URL(`${scheme}://127.0.0.1:${port}${path}`),
    connections: () => connections,
    quiet: async () => {
      for (let waited = 0; sockets.size > 0 && waited < 3_000; waited += 5) await sleep(5);
    },
  };
}

function wireFor(t: TestContext, options: Partial<WireOptions> = {}): Wire {
  const wire = new Wire({
    connectMs: 2_000,
    headersMs: 2_000,
    bodyIdleMs: 2_000,
    userAgent: 'pullsafe-wire-test',
    ...options,
  });
  t.after(() => wire.close());
  return wire;
}

function pumpRequest(source: URL, target: URL, blob: Buffer, extra: Partial<PumpRequest> = {}): PumpRequest {
  return {
    get: { url: source, headers: {} },
    put: { url: target, headers: {} },
    digest: digestOf(blob),
    size: blob.length,
    ...extra,
  };
}

function expectOk(outcome: PumpOutcome): Extract<PumpOutcome, { ok: true }> {
  if (!outcome.ok) assert.fail(`the pump failed: ${outcome.reason}`);
  return outcome;
}

function expectFailure(outcome: PumpOutcome): Extract<PumpOutcome, { ok: false }> {
  if (outcome.ok) assert.fail(`the pump succeeded (${outcome.bytes} bytes, target ${outcome.put.status})`);
  return outcome;
}

/** Pumps `blob` from the source's /blob into the target's /upload; it must arrive whole and exact. */
async function assertDelivered(
  wire: Wire,
  source: Listening,
  target: Listening,
  uploads: Upload[],
  blob: Buffer,
): Promise<void> {
  const outcome = expectOk(await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)));
  assert.equal(outcome.bytes, blob.length);
  assert.equal(uploads[0]?.received, blob.length);
  assert.equal(uploads[0]?.digest, digestOf(blob));
}

/** A GET handler answering 200 with `blob` and a Content-Length; records the request headers. */
function blobHandler(blob: Buffer, seen: IncomingHttpHeaders[] = []) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(blob);
  };
}

/** What an upload target saw of one request. */
interface Upload {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  received: number;
  /** The digest of the received body, once it ended. */
  digest: string | undefined;
  complete: boolean;
  /** The status the target answered with, if it answered. */
  status: number | undefined;
}

interface TargetOptions {
  status?: number;
  body?: string;
  /** Answer as soon as the request head arrives, without reading the body. */
  early?: boolean;
  /** Pause the request after every piece and resume it a little later. */
  slow?: boolean;
  /** Called once the answer was written. */
  onAnswer?: () => void;
}

/** An upload target: hashes what it receives and answers once the body ended (or at once if `early`). */
function targetHandler(uploads: Upload[], options: TargetOptions = {}) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const upload: Upload = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      received: 0,
      digest: undefined,
      complete: false,
      status: undefined,
    };
    uploads.push(upload);
    const answer = (): void => {
      const status = options.status ?? 201;
      upload.status = status;
      res.writeHead(status, {
        'content-type': options.body === undefined ? 'text/plain' : 'application/json',
        location: '/v2/done',
      });
      res.end(options.body ?? '', () => options.onAnswer?.());
    };
    if (options.early) {
      answer();
      return;
    }
    const hash = createHash('sha256');
    req.on('data', (piece: Buffer) => {
      hash.update(piece);
      upload.received += piece.length;
      if (options.slow) {
        req.pause();
        setTimeout(() => req.resume(), 2);
      }
    });
    req.on('end', () => {
      upload.complete = true;
      upload.digest = `sha256:${hash.digest('hex')}`;
      answer();
    });
  };
}

/** A raw TCP server that calls `answer` once a request head has arrived. */
function rawServer(answer: (socket: Socket, head: string) => void): NetServer {
  return createNetServer((socket) => {
    let head = '';
    socket.on('error', () => {});
    const onData = (piece: Buffer): void => {
      head += piece.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      answer(socket, head);
    };
    socket.on('data', onData);
  });
}

/** Writes `parts` one by one, letting each go out on its own before the next. */
async function writeApart(socket: Socket, parts: (string | Buffer)[]): Promise<void> {
  for (const part of parts) {
    await new Promise<void>((resolve) => socket.write(part, () => resolve()));
    await sleep(1);
  }
}

/** A fresh source/target pair of plain HTTP servers; the source serves `blob` at any path. */
async function plainPair(
  t: TestContext,
  blob: Buffer,
  target: TargetOptions = {},
): Promise<{ source: Listening; target: Listening; sourceSeen: IncomingHttpHeaders[]; uploads: Upload[] }> {
  const sourceSeen: IncomingHttpHeaders[] = [];
  const uploads: Upload[] = [];
  return {
    source: await listen(t, createServer(blobHandler(blob, sourceSeen))),
    target: await listen(t, createServer(targetHandler(uploads, target))),
    sourceSeen,
    uploads,
  };
}

describe('Wire.pump: transfers', bounded, () => {
  test('streams a 3 MiB blob into the PUT with its length and type, reporting progress', async (t) => {
    const blob = randomBytes(3 * MiB);
    const { source, target, sourceSeen, uploads } = await plainPair(t, blob);
    const wire = wireFor(t);
    const progress: number[] = [];
    const outcome = expectOk(
      await wire.pump({
        get: { url: source.url('/v2/a/blobs/x'), headers: { authorization: 'Bearer source-token' } },
        put: {
          url: target.url('/v2/b/blobs/uploads/u1?state=s&digest=d'),
          headers: { authorization: 'Bearer target-token' },
        },
        digest: digestOf(blob),
        size: blob.length,
        onBytes: (bytes) => progress.push(bytes),
      }),
    );
    assert.equal(outcome.bytes, blob.length);
    assert.equal(outcome.put.status, 201);
    assert.equal(outcome.put.headers.location, '/v2/done');

    assert.equal(sourceSeen.length, 1);
    assert.equal(sourceSeen[0]?.authorization, 'Bearer source-token');
    assert.equal(sourceSeen[0]?.['user-agent'], 'pullsafe-wire-test');

    assert.equal(uploads.length, 1);
    const upload = uploads[0]!;
    assert.equal(upload.method, 'PUT');
    assert.equal(upload.url, '/v2/b/blobs/uploads/u1?state=s&digest=d');
    assert.equal(upload.received, blob.length);
    assert.equal(upload.digest, digestOf(blob));
    assert.equal(upload.headers['content-length'], String(blob.length));
    assert.equal(upload.headers['content-type'], 'application/octet-stream');
    assert.equal(upload.headers.authorization, 'Bearer target-token');
    assert.equal(upload.headers['user-agent'], 'pullsafe-wire-test');

    assert.ok(progress.length > 2, `progress ${JSON.stringify(progress)}`);
    assert.equal(progress[0], 0);
    assert.equal(progress.at(-1), blob.length);
    for (let i = 1; i < progress.length; i++) {
      assert.ok(
        progress[i]! >= progress[i - 1]!,
        `progress went back at ${i}: ${progress[i - 1]} → ${progress[i]}`,
      );
    }
  });

  test('a chunked source body written in odd-sized pieces', async (t) => {
    const blob = randomBytes(MiB + 12_345);
    const cuts = [0, 1, 7_919, 65_537, 65_538, 300_001, 777_777, blob.length];
    let chunked: boolean | undefined;
    const source = await listen(
      t,
      createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        void (async () => {
          for (let i = 1; i < cuts.length; i++) {
            res.write(blob.subarray(cuts[i - 1], cuts[i]));
            await sleep(1);
          }
          chunked = res.chunkedEncoding;
          res.end();
        })();
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    const outcome = expectOk(await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)));
    assert.equal(chunked, true, 'the source did not use chunked encoding');
    assert.equal(outcome.bytes, blob.length);
    assert.equal(uploads.length, 1);
    assert.equal(uploads[0]?.received, blob.length);
    assert.equal(uploads[0]?.digest, digestOf(blob));
  });

  test('a raw chunked body with chunk extensions, lines split across reads, and a trailer', async (t) => {
    const blob = randomBytes(200_000);
    const first = blob.subarray(0, 65_537);
    const second = blob.subarray(65_537, 65_538);
    const third = blob.subarray(65_538);
    const source = await listen(
      t,
      rawServer((socket) => {
        void writeApart(socket, [
          'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n',
          'Trailer: X-Checksum\r\n\r\n',
          `${first.length.toString(16)};ext=1\r\n`,
          first,
          '\r\n',
          `${second.length.toString(16)};name="quoted value"\r`,
          '\n',
          Buffer.concat([second, Buffer.from(`\r\n${third.length.toString(16).toUpperCase()}`)]),
          ';ext=1\r\n',
          third.subarray(0, 1_000),
          Buffer.concat([third.subarray(1_000), Buffer.from('\r')]),
          '\n0;ext=1\r\nX-Checksum: whatever\r\n',
          '\r\n',
        ]);
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    await assertDelivered(wire, source, target, uploads, blob);
  });

  test('a zero-byte blob: the PUT carries Content-Length 0', async (t) => {
    const empty = Buffer.alloc(0);
    const { source, target, uploads } = await plainPair(t, empty);
    const wire = wireFor(t);
    const outcome = expectOk(await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), empty)));
    assert.equal(outcome.bytes, 0);
    assert.equal(outcome.put.status, 201);
    assert.equal(uploads.length, 1);
    assert.equal(uploads[0]?.headers['content-length'], '0');
    assert.equal(uploads[0]?.received, 0);
    assert.equal(uploads[0]?.complete, true);
  });

  test('a zero-byte blob with a wrong digest: fails and sends no PUT', async (t) => {
    const empty = Buffer.alloc(0);
    const { source, target } = await plainPair(t, empty);
    const wire = wireFor(t);
    const failure = expectFailure(
      await wire.pump({
        ...pumpRequest(source.url('/blob'), target.url('/upload'), empty),
        digest: digestOf(randomBytes(8)),
      }),
    );
    assert.match(failure.reason, /empty blob/);
    assert.equal(target.connections(), 0);
  });

  test('a close-delimited source body of exactly the right bytes', async (t) => {
    const blob = randomBytes(500_000);
    const source = await listen(
      t,
      rawServer((socket) => {
        socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
        socket.end(blob);
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    await assertDelivered(wire, source, target, uploads, blob);
  });
});

describe('Wire.pump: redirects', bounded, () => {
  test('follows a 307 to another origin without the Authorization header', async (t) => {
    const blob = randomBytes(256 * 1024);
    const storageSeen: { url: string; headers: IncomingHttpHeaders }[] = [];
    const storage = await listen(
      t,
      createServer((req, res) => {
        storageSeen.push({ url: req.url ?? '', headers: req.headers });
        blobHandler(blob)(req, res);
      }),
    );
    const registrySeen: IncomingHttpHeaders[] = [];
    const registry = await listen(
      t,
      createServer((req, res) => {
        registrySeen.push(req.headers);
        res.writeHead(307, { location: storage.url('/bucket/blob?sig=abc').toString() }).end();
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    const outcome = expectOk(
      await wire.pump({
        ...pumpRequest(registry.url('/v2/a/blobs/x'), target.url('/upload'), blob),
        get: {
          url: registry.url('/v2/a/blobs/x'),
          headers: { authorization: 'Bearer secret', accept: 'application/octet-stream' },
        },
      }),
    );
    assert.equal(outcome.bytes, blob.length);
    assert.equal(registrySeen.length, 1);
    assert.equal(registrySeen[0]?.authorization, 'Bearer secret');
    assert.equal(storageSeen.length, 1);
    assert.equal(storageSeen[0]?.url, '/bucket/blob?sig=abc');
    assert.equal(storageSeen[0]?.headers.authorization, undefined);
    assert.equal(storageSeen[0]?.headers.accept, 'application/octet-stream');
    assert.equal(uploads[0]?.digest, digestOf(blob));
  });

  test('keeps the Authorization header on a redirect within the same origin', async (t) => {
    const blob = randomBytes(64 * 1024);
    const seen: { url: string; authorization: string | undefined }[] = [];
    const source = await listen(
      t,
      createServer((req, res) => {
        seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
        if (req.url === '/v2/a/blobs/x') res.writeHead(302, { location: '/elsewhere/blob' }).end('moved');
        else blobHandler(blob)(req, res);
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    expectOk(
      await wire.pump({
        ...pumpRequest(source.url('/v2/a/blobs/x'), target.url('/upload'), blob),
        get: { url: source.url('/v2/a/blobs/x'), headers: { authorization: 'Bearer secret' } },
      }),
    );
    assert.deepEqual(seen, [
      { url: '/v2/a/blobs/x', authorization: 'Bearer secret' },
      { url: '/elsewhere/blob', authorization: 'Bearer secret' },
    ]);
    assert.equal(uploads[0]?.digest, digestOf(blob));
  });
});

describe('Wire.pump: a bad source never completes an upload', bounded, () => {
  test('wrong bytes of the right size: the last bytes are withheld', async (t) => {
    const blob = randomBytes(3 * MiB);
    const wrong = randomBytes(blob.length);
    const source = await listen(t, createServer(blobHandler(wrong)));
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)),
    );
    assert.match(failure.reason, /hash/);
    assert.equal(failure.put, undefined);
    await target.quiet();
    assert.ok(uploads.length <= 1);
    for (const upload of uploads) {
      assert.equal(upload.complete, false);
      assert.equal(upload.status, undefined);
      assert.ok(upload.received < blob.length, `the target received ${upload.received} bytes`);
    }
  });

  test('a source that sends fewer bytes than announced and closes', async (t) => {
    const blob = randomBytes(2 * MiB);
    const sent = MiB + 17;
    const source = await listen(
      t,
      createServer((_req, res) => {
        res.writeHead(200, { 'content-length': blob.length });
        res.write(blob.subarray(0, sent), () => setTimeout(() => res.socket?.destroy(), 20));
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)),
    );
    assert.equal(failure.put, undefined);
    await target.quiet();
    for (const upload of uploads) {
      assert.equal(upload.complete, false);
      assert.equal(upload.status, undefined);
      assert.ok(upload.received <= sent, `the target received ${upload.received} bytes`);
    }
  });

  test('a close-delimited source body longer than the size', async (t) => {
    const blob = randomBytes(500_000);
    const source = await listen(
      t,
      rawServer((socket) => {
        socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
        socket.end(Buffer.concat([blob, Buffer.from('trailing garbage')]));
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads)));
    const wire = wireFor(t);
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)),
    );
    assert.match(failure.reason, /more than/);
    await target.quiet();
    for (const upload of uploads) {
      assert.equal(upload.status, undefined);
      assert.equal(upload.complete, false);
    }
  });

  test('a source 404 comes back with its body, and nothing is uploaded', async (t) => {
    const error = JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] });
    const source = await listen(
      t,
      createServer((_req, res) => {
        res.writeHead(404, { 'content-type': 'application/json' }).end(error);
      }),
    );
    const target = await listen(t, createServer(targetHandler([])));
    const wire = wireFor(t);
    const blob = randomBytes(1024);
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)),
    );
    assert.equal(failure.get?.status, 404);
    assert.equal(failure.get?.headers['content-type'], 'application/json');
    assert.equal(failure.get?.body.toString('utf8'), error);
    assert.equal(failure.put, undefined);
    assert.equal(target.connections(), 0);
  });

  test('a source that never answers fails within about headersMs', async (t) => {
    let asked = 0;
    const source = await listen(
      t,
      createServer(() => {
        asked++;
      }),
    );
    const target = await listen(t, createServer(targetHandler([])));
    const wire = wireFor(t, { headersMs: 300 });
    const started = performance.now();
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), randomBytes(1024))),
    );
    const elapsed = performance.now() - started;
    assert.equal(asked, 1);
    assert.match(failure.reason, /sent nothing/);
    assert.ok(elapsed >= 250 && elapsed < 5_000, `resolved after ${elapsed} ms`);
    assert.equal(target.connections(), 0);
  });
});

describe('Wire.pump: target answers', bounded, () => {
  test('an early 401 before the body was read: fails with the answer, without hanging', async (t) => {
    const blob = randomBytes(8 * MiB);
    const head = MiB;
    const error = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    let answered!: () => void;
    const targetAnswered = new Promise<void>((resolve) => (answered = resolve));
    // The source sends the rest only after the target has answered, so the answer surely comes early.
    const source = await listen(
      t,
      createServer((_req, res) => {
        res.on('error', () => {});
        res.writeHead(200, { 'content-length': blob.length });
        res.write(blob.subarray(0, head));
        void targetAnswered.then(async () => {
          await sleep(30);
          res.end(blob.subarray(head));
        });
      }),
    );
    const uploads: Upload[] = [];
    const target = await listen(
      t,
      createServer(targetHandler(uploads, { early: true, status: 401, body: error, onAnswer: answered })),
    );
    const wire = wireFor(t);
    let forwarded = 0;
    const started = performance.now();
    const failure = expectFailure(
      await wire.pump({
        ...pumpRequest(source.url('/blob'), target.url('/upload'), blob),
        onBytes: (bytes) => (forwarded = bytes),
      }),
    );
    assert.ok(performance.now() - started < 5_000);
    assert.equal(failure.put?.status, 401);
    assert.equal(failure.put?.body.toString('utf8'), error);
    assert.equal(uploads.length, 1);
    assert.ok(forwarded <= head, `forwarded ${forwarded} bytes after the answer`);
  });

  test('a 400 after reading the body comes back with its error text', async (t) => {
    const blob = randomBytes(MiB);
    const error = JSON.stringify({
      errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match' }],
    });
    const { source, target, uploads } = await plainPair(t, blob, { status: 400, body: error });
    const wire = wireFor(t);
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)),
    );
    assert.equal(failure.put?.status, 400);
    assert.equal(failure.put?.headers['content-type'], 'application/json');
    assert.match(failure.put?.body.toString('utf8') ?? '', /provided digest did not match/);
    assert.equal(uploads[0]?.digest, digestOf(blob));
  });
});

describe('Wire.pump: connections', bounded, () => {
  /** A source serving a different blob per path, and a target; both count connections. */
  async function servers(t: TestContext, blobs: Map<string, Buffer>) {
    const source = createServer((req, res) => {
      const blob = blobs.get(req.url ?? '');
      if (blob) blobHandler(blob)(req, res);
      else res.writeHead(404).end();
    });
    const uploads: Upload[] = [];
    return {
      sourceServer: source,
      source: await listen(t, source),
      target: await listen(t, createServer(targetHandler(uploads))),
      uploads,
    };
  }

  test('three pumps in a row reuse one connection per origin', async (t) => {
    const blobs = new Map([1, 2, 3].map((n) => [`/blob/${n}`, randomBytes(n * 100_000)]));
    const { source, target, uploads } = await servers(t, blobs);
    const wire = wireFor(t);
    for (const [path, blob] of blobs) {
      const outcome = expectOk(
        await wire.pump(pumpRequest(source.url(path), target.url(`/upload${path}`), blob)),
      );
      assert.equal(outcome.bytes, blob.length);
    }
    assert.equal(source.connections(), 1);
    assert.equal(target.connections(), 1);
    assert.deepEqual(
      uploads.map((upload) => [upload.url, upload.digest]),
      [...blobs].map(([path, blob]) => [`/upload${path}`, digestOf(blob)]),
    );
  });

  for (const when of ['just before', 'a while before'] as const) {
    test(`a source that closed its idle connection ${when} the next pump`, async (t) => {
      const blobs = new Map([1, 2].map((n) => [`/blob/${n}`, randomBytes(300_000)]));
      const { sourceServer, source, target, uploads } = await servers(t, blobs);
      const wire = wireFor(t);
      expectOk(
        await wire.pump(pumpRequest(source.url('/blob/1'), target.url('/upload/1'), blobs.get('/blob/1')!)),
      );
      sourceServer.closeIdleConnections();
      if (when === 'a while before') {
        await source.quiet();
        await sleep(20);
      }
      expectOk(
        await wire.pump(pumpRequest(source.url('/blob/2'), target.url('/upload/2'), blobs.get('/blob/2')!)),
      );
      assert.equal(source.connections(), 2);
      assert.equal(target.connections(), 1);
      assert.equal(uploads[1]?.digest, digestOf(blobs.get('/blob/2')!));
    });
  }

  test('16 MiB into a slow target through a 64 KiB read buffer arrives intact', async (t) => {
    const blob = randomBytes(16 * MiB);
    const { source, target, uploads } = await plainPair(t, blob, { slow: true });
    const wire = wireFor(t, { readBufferBytes: 64 * 1024 });
    await assertDelivered(wire, source, target, uploads, blob);
  });
});

describe('Wire: process lifetime', bounded, () => {
  test('kept-alive connections do not keep a process alive that forgot to close the wire', async (t) => {
    const blob = randomBytes(100_000);
    const { source, target, uploads } = await plainPair(t, blob);
    const wireModule = new URL('./wire.ts', import.meta.url).href;
    const script = `
      import { Wire } from ${JSON.stringify(wireModule)};
      const wire = new Wire({ connectMs: 2000, headersMs: 2000, bodyIdleMs: 2000, userAgent: 't', idleMs: 60000 });
      const outcome = await wire.pump({
        get: { url: new URL(${JSON.stringify(source.url('/blob').href)}), headers: {} },
        put: { url: new URL(${JSON.stringify(target.url('/upload').href)}), headers: {} },
        digest: ${JSON.stringify(digestOf(blob))},
        size: ${blob.length},
      });
      console.log(outcome.ok);
    `;
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (piece: Buffer) => (output += piece.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    assert.equal(output.trim(), 'true');
    assert.equal(uploads[0]?.digest, digestOf(blob));
    // Held by its parked connections, the process would live until the servers drop them (node:http's
    // keep-alive timeout, 5 s) or the wire's idle timer (60 s here); alone it takes a few hundred ms.
    assert.ok(Date.now() - started < 3_000, `the process took ${Date.now() - started} ms to exit`);
  });
});

function answered(outcome: ExchangeOutcome): Extract<ExchangeOutcome, { ok: true }> {
  if (!outcome.ok) assert.fail(`no answer: ${outcome.reason}`);
  return outcome;
}

describe('Wire.exchange', bounded, () => {
  test('a POST gets its answer, and the PUT after it reuses the same connection', async (t) => {
    const blob = randomBytes(300_000);
    const { source, target, uploads } = await plainPair(t, blob, { status: 202 });
    const wire = wireFor(t);
    const answer = answered(
      await wire.exchange('POST', {
        url: target.url('/v2/app/blobs/uploads/'),
        headers: { authorization: 'Basic eA==' },
      }),
    );
    assert.equal(answer.status, 202);
    assert.equal(answer.headers.location, '/v2/done');
    assert.equal(answer.truncated, false);
    assert.equal(uploads[0]?.method, 'POST');
    assert.equal(uploads[0]?.headers['content-length'], '0');
    assert.equal(uploads[0]?.headers.authorization, 'Basic eA==');
    const outcome = await wire.pump(pumpRequest(source.url('/blob'), target.url('/v2/done'), blob));
    // The target answers 202 to everything here, which a pump also takes as done (2xx).
    expectOk(outcome);
    assert.equal(uploads[1]?.digest, digestOf(blob));
    assert.equal(target.connections(), 1);
    assert.deepEqual([wire.stats.exchanged, wire.stats.unanswered], [1, 0]);
  });

  test('a body is sent with its length; HEAD, chunked and repeated headers are read as HTTP says', async (t) => {
    const seen: { method: string; length: string | undefined; body: string }[] = [];
    const server = await listen(
      t,
      createServer((request, response) => {
        const parts: Buffer[] = [];
        request.on('data', (part: Buffer) => parts.push(part));
        request.on('end', () => {
          seen.push({
            method: request.method!,
            length: request.headers['content-length'],
            body: Buffer.concat(parts).toString(),
          });
          response.setHeader('www-authenticate', ['Bearer realm="a"', 'Basic realm="b"']);
          if (request.method === 'HEAD') {
            response.writeHead(200, { 'content-length': '1234' }).end();
          } else {
            // No content-length: node:http sends the body chunked.
            response.writeHead(201);
            response.write('{"stored":');
            response.end('true}');
          }
        });
      }),
    );
    const wire = wireFor(t);
    const put = answered(
      await wire.exchange(
        'PUT',
        { url: server.url('/v2/app/manifests/v1'), headers: { 'content-type': 'application/json' } },
        Buffer.from('{"schemaVersion":2}'),
      ),
    );
    assert.equal(put.status, 201);
    assert.equal(put.body.toString(), '{"stored":true}');
    assert.equal(put.headers['www-authenticate'], 'Bearer realm="a", Basic realm="b"');
    const head = answered(
      await wire.exchange('HEAD', { url: server.url('/v2/app/manifests/v1'), headers: {} }),
    );
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], '1234');
    assert.deepEqual(seen, [
      { method: 'PUT', length: '19', body: '{"schemaVersion":2}' },
      { method: 'HEAD', length: undefined, body: '' },
    ]);
    assert.equal(server.connections(), 1);
  });

  test('an interim 1xx answer, the head and the body in one read; then a head split across reads', async (t) => {
    const server = await listen(
      t,
      rawServer((socket, head) => {
        if (head.startsWith('GET /one ')) {
          socket.write(
            'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello',
          );
        } else {
          void writeApart(socket, ['HTTP/1.1 404 Not', ' Found\r\nContent-Length: 4\r\n', '\r\nnope']);
        }
      }),
    );
    const wire = wireFor(t);
    const one = answered(await wire.exchange('GET', { url: server.url('/one'), headers: {} }));
    assert.deepEqual([one.status, one.body.toString(), one.headers.link], [200, 'hello', undefined]);
    const two = answered(await wire.exchange('GET', { url: server.url('/two'), headers: {} }));
    assert.deepEqual([two.status, two.body.toString()], [404, 'nope']);
  });

  test('an answer longer than the limit comes back cut and truncated, without reading the rest', async (t) => {
    let written = 0;
    const server = await listen(
      t,
      createServer((_request, response) => {
        response.writeHead(200, { 'content-length': String(64 * MiB) });
        const piece = Buffer.alloc(64 * 1024, 0x61);
        const more = (): void => {
          while (written < 64 * MiB) {
            written += piece.length;
            if (!response.write(piece)) {
              response.once('drain', more);
              return;
            }
          }
          response.end();
        };
        response.on('close', () => response.removeAllListeners('drain'));
        more();
      }),
    );
    const wire = wireFor(t);
    const answer = answered(
      await wire.exchange('GET', { url: server.url('/big'), headers: {} }, undefined, 1000),
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.truncated, true);
    assert.equal(answer.body.length, 1000);
    assert.equal(answer.body.toString(), 'a'.repeat(1000));
    assert.ok(written < 16 * MiB, `the server wrote ${written} bytes before the wire gave up`);
  });

  test('no answer (connection refused) is an outcome with the code, not an error', async (t) => {
    const closed = createNetServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const wire = wireFor(t, { connectMs: 500 });
    const url = new URL(`http://127.0.0.1:${port}/v2/x/blobs/uploads/`);
    const outcome = await wire.exchange('POST', { url, headers: {} });
    assert.deepEqual(
      { ok: outcome.ok, code: !outcome.ok && outcome.code },
      { ok: false, code: 'ECONNREFUSED' },
    );
    assert.equal(wire.stats.unanswered, 1);
    assert.match(wire.stats.lastReason ?? '', /ECONNREFUSED/);
  });

  test('a reply that is not HTTP is an outcome without a connection code', async (t) => {
    const server = await listen(
      t,
      createNetServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n')),
    );
    const wire = wireFor(t);
    const outcome = await wire.exchange('GET', { url: server.url('/v2/'), headers: {} });
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.code, undefined);
    assert.match(wire.stats.lastReason ?? '', /not an HTTP\/1\.1 status line/);
  });

  test('a kept-alive connection the server dropped unseen is replaced once; a server that never answers is not', async (t) => {
    // Each connection answers its first request and drops the second without a word: the second request
    // finds a parked connection that looks alive and must go out again on a new one.
    let requests = 0;
    const server = await listen(
      t,
      createServer((request, response) => {
        requests++;
        const seen = ((request.socket as Socket & { seen?: number }).seen ?? 0) + 1;
        (request.socket as Socket & { seen?: number }).seen = seen;
        if (seen > 1) return void request.socket.destroy();
        response.writeHead(200, { 'content-length': '2' }).end('ok');
      }),
    );
    const wire = wireFor(t);
    const url = server.url('/v2/');
    for (let round = 0; round < 3; round++) {
      assert.equal(answered(await wire.exchange('GET', { url, headers: {} })).body.toString(), 'ok');
    }
    assert.equal(server.connections(), 3);
    assert.equal(requests, 5);
    assert.equal(wire.stats.unanswered, 0);

    const silent = await listen(
      t,
      createServer((request) => request.socket.destroy()),
    );
    const outcome = await wire.exchange('GET', { url: silent.url('/v2/'), headers: {} });
    assert.equal(!outcome.ok && outcome.code, 'UND_ERR_SOCKET');
    assert.equal(silent.connections(), 1);
  });
});

describe('Wire.pump: TLS', bounded, () => {
  async function tlsPair(t: TestContext, blob: Buffer, target: TargetOptions = {}) {
    const uploads: Upload[] = [];
    return {
      source: await listen(t, createHttpsServer({ cert, key }, blobHandler(blob)), 'https'),
      target: await listen(t, createHttpsServer({ cert, key }, targetHandler(uploads, target)), 'https'),
      uploads,
    };
  }

  test('source and target over https with a private CA', async (t) => {
    const blob = randomBytes(3 * MiB);
    const { source, target, uploads } = await tlsPair(t, blob);
    const wire = wireFor(t, { tls: { ca: cert } });
    await assertDelivered(wire, source, target, uploads, blob);
  });

  test('16 MiB from a TLS source into a slow target through a 64 KiB read buffer arrives intact', async (t) => {
    const blob = randomBytes(16 * MiB);
    const source = await listen(t, createHttpsServer({ cert, key }, blobHandler(blob)), 'https');
    const uploads: Upload[] = [];
    const target = await listen(t, createServer(targetHandler(uploads, { slow: true })));
    const wire = wireFor(t, { tls: { ca: cert }, readBufferBytes: 64 * 1024 });
    await assertDelivered(wire, source, target, uploads, blob);
  });

  test('a certificate the wire does not trust fails without an upload', async (t) => {
    const blob = randomBytes(1024);
    const { source, target, uploads } = await tlsPair(t, blob);
    const wire = wireFor(t);
    const failure = expectFailure(
      await wire.pump(pumpRequest(source.url('/blob'), target.url('/upload'), blob)),
    );
    assert.match(failure.reason, /certificate/i);
    assert.equal(target.connections(), 0);
    assert.equal(uploads.length, 0);
  });
});

describe('Wire: insecure hosts', bounded, () => {
  test('a host insecure names is spoken to without certificate checks; others are verified', async (t) => {
    const blob = randomBytes(512 * 1024);
    const uploads: Upload[] = [];
    const source = await listen(t, createHttpsServer({ cert, key }, blobHandler(blob)), 'https');
    const target = await listen(t, createHttpsServer({ cert, key }, targetHandler(uploads)), 'https');
    const insecureHosts = new Set([source.url('/').host, target.url('/').host]);
    const wire = wireFor(t, { insecure: (host) => insecureHosts.has(host) });
    await assertDelivered(wire, source, target, uploads, blob);
    const answer = await wire.exchange('HEAD', { url: source.url('/blob'), headers: {} });
    assert.equal(answer.ok && answer.status, 200);

    const verifying = wireFor(t, { insecure: () => false });
    const refused = await verifying.exchange('HEAD', { url: source.url('/blob'), headers: {} });
    assert.equal(!refused.ok && refused.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  test('a TLS handshake answered in plain HTTP fails with OpenSSL’s code, for the caller to fall back', async (t) => {
    const server = await listen(
      t,
      createServer((_, response) => response.end('plain')),
    );
    const wire = wireFor(t, { insecure: () => true });
    const url = new URL(server.url('/v2/').href.replace('http:', 'https:'));
    const outcome = await wire.exchange('GET', { url, headers: {} });
    assert.match((!outcome.ok && outcome.code) || '', /^(?:ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)$/);
  });
});
