/**
 * S3Reads against node:https and node:http servers that answer as S3 does (real S3 is HTTPS; s3rver, which
 * the other S3 tests use, is plain HTTP): whole and ranged GETs over TLS, kept-alive connections reused and
 * replaced when the server closed them, and answers S3 does not give.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { S3ReadError, S3Reads } from './s3-reads.ts';

const cert = readFileSync(new URL('../client/fixtures/tls/cert.pem', import.meta.url));
const key = readFileSync(new URL('../client/fixtures/tls/key.pem', import.meta.url));
const object = randomBytes(1024 * 1024 + 17);

/** S3's answers for one object at /bucket/blob: 200, 206 with Content-Range, 404 NoSuchKey. */
function answer(request: IncomingMessage, response: ServerResponse): void {
  if (request.url?.split('?')[0] !== '/bucket/blob') {
    response.writeHead(404, { 'content-type': 'application/xml' });
    response.end('<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>');
    return;
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '');
  if (range) {
    const start = Number(range[1]);
    const end = Number(range[2]);
    response.writeHead(206, {
      'content-length': end - start + 1,
      'content-range': `bytes ${start}-${end}/${object.length}`,
    });
    response.end(object.subarray(start, end + 1));
    return;
  }
  response.writeHead(200, { 'content-length': object.length });
  response.end(object);
}

function collect(): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      setImmediate(done);
    },
  });
  return Object.assign(sink, { bytes: () => Buffer.concat(chunks) });
}

describe('S3Reads over TLS', () => {
  const server = createHttpsServer({ cert, key }, answer);
  let origin: string;
  const connections: number[] = [];
  before(async () => {
    server.on('secureConnection', () => connections.push(Date.now()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://localhost:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('reads whole and ranged objects byte-exact, on one kept-alive connection', async () => {
    const reads = new S3Reads(async (name) => new URL(`${origin}/bucket/${name}?X-Amz-Signature=x`), {
      tls: { ca: cert },
    });
    try {
      const before = connections.length;
      const whole = await reads.open('blob');
      assert.ok(whole);
      assert.equal(whole.size, object.length);
      const sink = collect();
      await whole.sendTo(sink);
      assert.ok(sink.bytes().equals(object));
      const part = await reads.open('blob', { start: 1000, end: 300_000 });
      assert.ok(part);
      assert.deepEqual([part.length, part.size], [299_001, object.length]);
      const partSink = collect();
      await part.sendTo(partSink);
      assert.ok(partSink.bytes().equals(object.subarray(1000, 300_001)));
      assert.equal(await reads.open('missing'), undefined);
      assert.equal(connections.length - before, 1, 'one TLS connection for the three GETs');
    } finally {
      reads.close();
    }
  });

  it('refuses a certificate it cannot trust, naming the failure', async () => {
    const reads = new S3Reads(async () => new URL(`${origin}/bucket/blob`), { attempts: 1 });
    try {
      await assert.rejects(reads.open('blob'), (error: unknown) => {
        assert.ok(error instanceof S3ReadError);
        assert.match(error.message, /cannot read blob from S3: .*(self-signed|certificate)/i);
        return true;
      });
    } finally {
      reads.close();
    }
  });
});

describe('S3Reads against answers S3 does not give', () => {
  let mode: 'short' | 'range-ignored' | 'close-idle' = 'short';
  const server = createHttpServer((request, response) => {
    if (mode === 'short') {
      // Announces the whole object and ends the connection halfway.
      response.writeHead(200, { 'content-length': object.length });
      response.write(object.subarray(0, 4096), () => response.socket?.destroy());
      return;
    }
    if (mode === 'range-ignored') {
      response.writeHead(200, { 'content-length': object.length });
      response.end(object);
      return;
    }
    answer(request, response);
  });
  let origin: string;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a body cut short is a source failure after the bytes that came, never a success', async () => {
    mode = 'short';
    const reads = new S3Reads(async () => new URL(`${origin}/bucket/blob`));
    try {
      const opened = await reads.open('blob');
      assert.ok(opened);
      let received = 0;
      await assert.rejects(
        opened.sendTo(collect(), (length) => (received += length)),
        { name: 'SourceFailure' },
      );
      assert.equal(received, 4096);
    } finally {
      reads.close();
    }
  });

  it('a range answered with the whole object is refused, not sent as the range', async () => {
    mode = 'range-ignored';
    const reads = new S3Reads(async () => new URL(`${origin}/bucket/blob`));
    try {
      await assert.rejects(reads.open('blob', { start: 0, end: 99 }), /expected 100/);
    } finally {
      reads.close();
    }
  });

  it('replaces a kept-alive connection the server closed while it was idle, without counting it as a failure', async () => {
    mode = 'close-idle';
    const reads = new S3Reads(async () => new URL(`${origin}/bucket/blob`), { attempts: 1 });
    try {
      const first = await reads.open('blob', { start: 0, end: 9 });
      await first!.sendTo(collect());
      // The server drops every idle connection, as S3 does after a while.
      server.closeIdleConnections();
      const second = await reads.open('blob', { start: 10, end: 19 });
      const sink = collect();
      await second!.sendTo(sink);
      assert.ok(sink.bytes().equals(object.subarray(10, 20)));
    } finally {
      reads.close();
    }
  });
});
