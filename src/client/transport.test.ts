import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import {
  backoffDelay,
  BodyTooLargeError,
  defaultRetry,
  hostWithoutPort,
  isLoopbackHost,
  parseRetryAfter,
  Transport,
  TransportError,
  USER_AGENT,
  type TransportOptions,
} from './transport.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A server on 127.0.0.1:0 whose handler gets the request number (0-based) and the read body. */
async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, index: number, body: string) => void,
): Promise<{ host: string; seen: Seen[]; connections: () => number; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const index = seen.length;
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, index, body);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function makeFastTransport(delays: number[], options: TransportOptions = {}): Transport {
  return new Transport({
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 0.5,
    ...options,
  });
}

test('loopback hosts use plain HTTP; others HTTPS unless listed', async () => {
  for (const host of [
    'localhost',
    'localhost:5000',
    '127.0.0.1',
    '127.1.2.3:80',
    '[::1]',
    '[::1]:5000',
    '::1',
  ]) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ['example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com', '[::2]:5000']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
  assert.equal(hostWithoutPort('[::1]:5000'), '::1');
  assert.equal(hostWithoutPort('reg:5000'), 'reg');
  const transport = new Transport({ plainHttp: ['insecure.example.com', 'port.example.com:5000'] });
  try {
    assert.equal(transport.url('127.0.0.1:5000', '/v2/').toString(), 'http://127.0.0.1:5000/v2/');
    assert.equal(transport.url('[::1]:5000', '/v2/').toString(), 'http://[::1]:5000/v2/');
    assert.equal(
      transport.url('registry-1.docker.io', '/v2/').toString(),
      'https://registry-1.docker.io/v2/',
    );
    assert.equal(transport.url('insecure.example.com:8080', '/v2/').protocol, 'http:');
    assert.equal(transport.url('port.example.com:5000', '/v2/').protocol, 'http:');
    assert.equal(transport.url('port.example.com:5001', '/v2/').protocol, 'https:');
  } finally {
    await transport.close();
  }
});

test('parseRetryAfter: seconds and HTTP-date', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30);
  assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('-5', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test('backoffDelay: exponential, capped, jittered within ±50%', () => {
  const retry = { ...defaultRetry, baseDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(
    backoffDelay(1, retry, () => 0.999999),
    100,
  );
  assert.equal(
    backoffDelay(1, retry, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(3, retry, () => 0.999999),
    400,
  );
  assert.equal(
    backoffDelay(10, retry, () => 0.999999),
    1000,
  );
  for (let attempt = 1; attempt < 8; attempt++) {
    const value = backoffDelay(attempt, retry, Math.random);
    assert.ok(value >= 50 && value <= 1000, String(value));
  }
});

/**
 * The transport's promises hold whichever path carries a request: the wire for answers read whole (the
 * default), undici for everything else and when the wire is off.
 */
function requestTests(wireFirst: boolean): void {
  const fastTransport = (delays: number[], options: TransportOptions = {}): Transport =>
    makeFastTransport(delays, { wireFirst, ...options });

  test('retries 502/503/504 for GET and sends User-Agent', async () => {
    const server = await serve((_req, res, index) => {
      res.writeHead([502, 503, 504][index] ?? 200).end(index >= 3 ? 'ok' : 'fail');
    });
    const delays: number[] = [];
    const transport = fastTransport(delays);
    try {
      const response = await transport.request({
        method: 'GET',
        url: new URL(`http://${server.host}/x`),
        bufferLimit: 100,
      });
      assert.equal(response.status, 200);
      assert.equal(response.attempts, 4);
      assert.equal(response.bytes?.toString(), 'ok');
      assert.equal(delays.length, 3);
      assert.ok(delays[1]! > delays[0]!);
      assert.equal(server.seen[0]?.headers['user-agent'], USER_AGENT);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('after the last attempt the failing answer is returned', async () => {
    const server = await serve((_req, res) => res.writeHead(503).end());
    const transport = fastTransport([], { retry: { attempts: 2 } });
    try {
      const response = await transport.request({ method: 'HEAD', url: new URL(`http://${server.host}/x`) });
      assert.equal(response.status, 503);
      assert.equal(response.attempts, 2);
      assert.equal(server.seen.length, 2);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('429: Retry-After is honoured; a wait beyond the cap is returned at once; can be disabled', async () => {
    const server = await serve((req, res, index) => {
      if (req.url === '/long') return void res.writeHead(429, { 'retry-after': '3600' }).end();
      if (req.url === '/probe') return void res.writeHead(429, { 'retry-after': '1' }).end();
      res.writeHead(index === 0 ? 429 : 200, { 'retry-after': '2' }).end();
    });
    const delays: number[] = [];
    const transport = fastTransport(delays);
    try {
      const ok = await transport.request({ method: 'GET', url: new URL(`http://${server.host}/short`) });
      assert.equal(ok.status, 200);
      assert.deepEqual(delays, [2000]);
      const long = await transport.request({ method: 'GET', url: new URL(`http://${server.host}/long`) });
      assert.equal(long.status, 429);
      assert.equal(long.attempts, 1);
      const probe = await transport.request({
        method: 'HEAD',
        url: new URL(`http://${server.host}/probe`),
        retryRateLimited: false,
      });
      assert.equal(probe.status, 429);
      assert.equal(delays.length, 1);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('POST is retried only when marked retry-safe; a bare stream body never', async () => {
    const server = await serve((_req, res) => res.writeHead(503).end());
    const transport = fastTransport([], { retry: { attempts: 3 } });
    try {
      const url = new URL(`http://${server.host}/post`);
      assert.equal((await transport.request({ method: 'POST', url })).attempts, 1);
      assert.equal((await transport.request({ method: 'POST', url, retrySafe: true })).attempts, 3);
      const once = await transport.request({ method: 'PUT', url, body: Readable.from([Buffer.from('abc')]) });
      assert.equal(once.attempts, 1);
      assert.equal(server.seen.length, 5);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('a replayable stream body is opened again for each attempt', async () => {
    const server = await serve((_req, res, index) => res.writeHead(index === 0 ? 503 : 201).end());
    const transport = fastTransport([]);
    let opened = 0;
    try {
      const response = await transport.request({
        method: 'PUT',
        url: new URL(`http://${server.host}/put`),
        body: {
          length: 6,
          open: () => {
            opened++;
            return Readable.from([Buffer.from('abc'), Buffer.from('def')]);
          },
        },
      });
      assert.equal(response.status, 201);
      assert.equal(opened, 2);
      assert.deepEqual(
        server.seen.map((s) => [s.body, s.headers['content-length']]),
        [
          ['abcdef', '6'],
          ['abcdef', '6'],
        ],
      );
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('connection resets are retried; keep-alive reuses connections', async () => {
    const server = await serve((req, res, index) => {
      if (index === 0) return void req.socket.destroy();
      res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    const delays: number[] = [];
    const transport = fastTransport(delays);
    try {
      const response = await transport.request({
        method: 'GET',
        url: new URL(`http://${server.host}/a`),
        bufferLimit: 10,
      });
      assert.equal(response.status, 200);
      assert.equal(response.attempts, 2);
      const before = server.connections();
      for (let i = 0; i < 5; i++) {
        const again = await transport.request({
          method: 'GET',
          url: new URL(`http://${server.host}/b`),
          bufferLimit: 10,
        });
        assert.equal(again.bytes?.toString(), 'ok');
      }
      // undici may open one more connection while the previous one is being released, never one per request.
      assert.ok(server.connections() - before <= 1, `${server.connections() - before} new connections`);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('HEAD requests keep their connection alive, as GETs do', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1234', 'docker-content-digest': 'sha256:00' }).end();
    });
    const transport = fastTransport([]);
    try {
      for (let i = 0; i < 6; i++) {
        const response = await transport.request({
          method: 'HEAD',
          url: new URL(`http://${server.host}/m${i}`),
        });
        assert.equal(response.status, 200);
        assert.equal(response.header('content-length'), '1234');
        await response.discard();
      }
      // undici's default would be a new connection for every HEAD (six).
      assert.ok(server.connections() <= 2, `${server.connections()} connections for six HEADs`);
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('refused connections fail with TransportError after the attempts', async () => {
    const server = await serve((_req, res) => res.end());
    const host = server.host;
    await server.close();
    const delays: number[] = [];
    const transport = fastTransport(delays, { retry: { attempts: 3 } });
    try {
      await assert.rejects(
        transport.request({ method: 'GET', url: new URL(`http://${host}/v2/x?secret=1`) }),
        (error: unknown) => {
          assert.ok(error instanceof TransportError);
          assert.equal(error.code, 'ECONNREFUSED');
          assert.equal(error.attempts, 3);
          assert.match(error.message, /GET 127\.0\.0\.1:\d+\/v2\/x: connection refused \(after 3 attempts\)/);
          assert.doesNotMatch(error.message, /secret/);
          return true;
        },
      );
      assert.equal(delays.length, 2);
    } finally {
      await transport.close();
    }
  });

  test('headers and body-idle timeouts are separate and retried', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/stall-headers') return; // never answers
      res.writeHead(200, { 'content-length': '10' });
      res.write('12345'); // then stalls
    });
    const transport = fastTransport([], {
      timeouts: { headersMs: 150, bodyIdleMs: 150 },
      retry: { attempts: 2 },
    });
    try {
      await assert.rejects(
        transport.request({ method: 'GET', url: new URL(`http://${server.host}/stall-headers`) }),
        (error: unknown) =>
          error instanceof TransportError && error.code === 'UND_ERR_HEADERS_TIMEOUT' && error.attempts === 2,
      );
      await assert.rejects(
        transport.request({
          method: 'GET',
          url: new URL(`http://${server.host}/stall-body`),
          bufferLimit: 100,
        }),
        (error: unknown) =>
          error instanceof TransportError && error.code === 'UND_ERR_BODY_TIMEOUT' && error.attempts === 2,
      );
    } finally {
      await transport.close();
      await server.close();
    }
  });

  test('redirects: Authorization kept on the same origin, dropped on another', async () => {
    const cdn = await serve((_req, res) => res.writeHead(200).end('cdn-bytes'));
    const registry = await serve((req, res) => {
      if (req.url === '/blob')
        return void res.writeHead(307, { location: `http://${cdn.host}/data?sig=1` }).end();
      if (req.url === '/moved') return void res.writeHead(301, { location: '/here' }).end();
      res.writeHead(200).end('here');
    });
    const transport = fastTransport([]);
    try {
      const headers = { authorization: 'Bearer secret-token' };
      const blob = await transport.request({
        method: 'GET',
        url: new URL(`http://${registry.host}/blob`),
        headers,
        bufferLimit: 100,
      });
      assert.equal(blob.bytes?.toString(), 'cdn-bytes');
      assert.equal(blob.url.host, cdn.host);
      assert.equal(cdn.seen[0]?.headers.authorization, undefined);
      assert.equal(cdn.seen[0]?.url, '/data?sig=1');
      const moved = await transport.request({
        method: 'GET',
        url: new URL(`http://${registry.host}/moved`),
        headers,
        bufferLimit: 100,
      });
      assert.equal(moved.bytes?.toString(), 'here');
      assert.equal(registry.seen[2]?.headers.authorization, 'Bearer secret-token');
      const notFollowed = await transport.request({
        method: 'GET',
        url: new URL(`http://${registry.host}/blob`),
        followRedirects: false,
      });
      assert.equal(notFollowed.status, 307);
      await notFollowed.discard();
    } finally {
      await transport.close();
      await registry.close();
      await cdn.close();
    }
  });

  test('bufferLimit: a larger 2xx body fails; a larger error body is cut', async () => {
    const server = await serve((req, res) =>
      res.writeHead(req.url === '/ok' ? 200 : 500).end('x'.repeat(1000)),
    );
    const transport = fastTransport([], { retry: { attempts: 1 } });
    try {
      await assert.rejects(
        transport.request({ method: 'GET', url: new URL(`http://${server.host}/ok`), bufferLimit: 100 }),
        BodyTooLargeError,
      );
      const error = await transport.request({
        method: 'GET',
        url: new URL(`http://${server.host}/err`),
        bufferLimit: 100,
      });
      assert.equal(error.status, 500);
      assert.equal(error.bytes?.length, 100);
    } finally {
      await transport.close();
      await server.close();
    }
  });
}

describe('requests, wire first', () => requestTests(true));
describe('requests, undici alone (wireFirst: false)', () => requestTests(false));

describe('the wire in the transport', () => {
  test('answers read whole go over the wire; undici loads only for a request that needs it', async () => {
    const server = await serve((req, res) => {
      if (req.method === 'HEAD')
        return void res.writeHead(200, { 'docker-content-digest': 'sha256:00' }).end();
      res.writeHead(req.method === 'PUT' ? 201 : 200).end(`${req.method} ${req.url}`);
    });
    try {
      // A process of its own, to see which modules a fresh transport loads.
      const script = `
        import { registerHooks } from 'node:module';
        const loaded = [];
        registerHooks({
          load(url, context, next) {
            if (url.includes('/node_modules/undici/')) loaded.push(url);
            return next(url, context);
          },
        });
        const { Transport } = await import(${JSON.stringify(new URL('./transport.ts', import.meta.url).href)});
        const transport = new Transport();
        const at = (path) => new URL('http://${server.host}' + path);
        const head = await transport.request({ method: 'HEAD', url: at('/m') });
        const got = await transport.request({ method: 'GET', url: at('/m'), bufferLimit: 100 });
        const put = await transport.request({ method: 'PUT', url: at('/m'), body: '{}', bufferLimit: 100 });
        const beforeStream = loaded.length;
        const streamed = await transport.request({ method: 'GET', url: at('/blob') });
        let text = '';
        for await (const piece of streamed.body) text += piece;
        console.log(JSON.stringify({
          statuses: [head.status, got.status, put.status, streamed.status],
          got: got.bytes.toString(),
          text,
          beforeStream,
          afterStream: loaded.length > 0,
          exchanged: transport.wire.stats.exchanged,
        }));
        await transport.close();
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      child.stdout.on('data', (piece: Buffer) => (output += piece.toString()));
      assert.equal(await new Promise((resolve) => child.on('exit', resolve)), 0);
      assert.deepEqual(JSON.parse(output), {
        statuses: [200, 200, 201, 200],
        got: 'GET /m',
        text: 'GET /blob',
        beforeStream: 0,
        afterStream: true,
        exchanged: 3,
      });
      assert.deepEqual(
        server.seen.map((seen) => [seen.method, seen.body, seen.headers['content-length']]),
        [
          ['HEAD', '', undefined],
          ['GET', '', undefined],
          ['PUT', '{}', '2'],
          ['GET', '', undefined],
        ],
      );
    } finally {
      await server.close();
    }
  });

  test('an answer the wire cannot read is asked again on undici at once; the origin stays there for a minute', async () => {
    const server = await serve((req, res, index) => {
      // Two Content-Length values that disagree: the wire refuses to guess which one frames the body.
      if (index === 0)
        return void req.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok');
      res.writeHead(200).end(`answer ${index}`);
    });
    let now = Date.parse('2026-11-28T12:00:00Z');
    const delays: number[] = [];
    const transport = makeFastTransport(delays, { now: () => now });
    const get = () =>
      transport.request({ method: 'GET', url: new URL(`http://${server.host}/v2/`), bufferLimit: 100 });
    try {
      const first = await get();
      assert.equal(first.bytes?.toString(), 'answer 1');
      assert.equal(first.attempts, 1);
      assert.deepEqual(delays, []);
      const stats = transport.wire!.stats;
      assert.deepEqual([stats.exchanged, stats.unanswered], [0, 1]);
      assert.match(stats.lastReason ?? '', /content-length/);

      assert.equal((await get()).bytes?.toString(), 'answer 2');
      assert.equal(stats.exchanged, 0, 'within the minute, undici answers');
      now += 61_000;
      assert.equal((await get()).bytes?.toString(), 'answer 3');
      assert.equal(stats.exchanged, 1, 'a minute later, the wire again');
    } finally {
      await transport.close();
      await server.close();
    }
  });
});

test('[::1] registries are reached over plain HTTP on both paths', async () => {
  const server = createServer((req, res) => res.writeHead(200).end(`${req.method} ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
  const { port } = server.address() as AddressInfo;
  const transport = new Transport();
  try {
    const host = `[::1]:${port}`;
    assert.equal(transport.isPlainHttp(host), true);
    const whole = await transport.request({
      method: 'GET',
      url: transport.url(host, '/v2/'),
      bufferLimit: 100,
    });
    assert.equal(whole.bytes?.toString(), 'GET /v2/');
    assert.equal(transport.wire?.stats.exchanged, 1);
    const streamed = await transport.request({ method: 'GET', url: transport.url(host, '/v2/blob') });
    let text = '';
    for await (const piece of streamed.body) text += String(piece);
    assert.equal(text, 'GET /v2/blob');
  } finally {
    await transport.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
