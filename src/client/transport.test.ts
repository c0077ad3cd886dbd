import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import {
  BodyTooLargeError,
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

describe('TLS', { timeout: 20_000 }, () => {
  const tlsDir = new URL('./fixtures/tls/', import.meta.url);
  const cert = readFileSync(new URL('cert.pem', tlsDir), 'utf8');
  const key = readFileSync(new URL('key.pem', tlsDir), 'utf8');

  // Names under .test (never in public DNS) reach 127.0.0.1; loopback names would be plain HTTP.
  const toLoopback = ((
    hostname: string,
    options: { all?: boolean },
    callback: (...answer: unknown[]) => void,
  ) => {
    if (!hostname.endsWith('.test')) callback(Object.assign(new Error(hostname), { code: 'ENOTFOUND' }));
    else if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
  }) as LookupFunction;

  /** An HTTPS server with the self-signed fixture certificate, counting TCP connections (handshakes). */
  async function serveTls(): Promise<{
    port: number;
    connections: () => number;
    close: () => Promise<void>;
  }> {
    let connections = 0;
    const server = createHttpsServer({ cert, key }, (req, res) =>
      res.writeHead(200).end(`${req.method} ${req.url}`),
    );
    server.on('connection', () => connections++);
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as AddressInfo).port,
      connections: () => connections,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }

  async function text(response: { body: AsyncIterable<unknown> }): Promise<string> {
    let result = '';
    for await (const piece of response.body) result += String(piece);
    return result;
  }

  for (const wireFirst of [true, false]) {
    const path = wireFirst ? 'wire first' : 'undici alone';

    test(`${path}: an insecure host is spoken to over HTTPS without certificate checks; others are verified`, async () => {
      const server = await serveTls();
      const host = `registry.test:${server.port}`;
      const transport = new Transport({ insecure: [host], lookup: toLoopback, wireFirst });
      try {
        assert.equal(transport.url(host, '/v2/').protocol, 'https:');
        const head = await transport.request({ method: 'HEAD', url: transport.url(host, '/v2/') });
        assert.equal(head.status, 200);
        const whole = await transport.request({
          method: 'GET',
          url: transport.url(host, '/v2/m'),
          bufferLimit: 100,
        });
        assert.equal(whole.bytes?.toString(), 'GET /v2/m');
        const streamed = await transport.request({ method: 'GET', url: transport.url(host, '/v2/blob') });
        assert.equal(await text(streamed), 'GET /v2/blob');
        assert.equal(transport.wire!.stats.exchanged, wireFirst ? 2 : 0);
        // The same server under a name not listed: its certificate is checked, and rejected.
        const other = `other.test:${server.port}`;
        await assert.rejects(
          transport.request({ method: 'HEAD', url: transport.url(other, '/v2/') }),
          (error: TransportError) => error.code === 'DEPTH_ZERO_SELF_SIGNED_CERT',
        );
      } finally {
        await transport.close();
        await server.close();
      }
    });

    test(`${path}: an untrusted certificate fails at once, not retried, saying why and what to do`, async () => {
      const server = await serveTls();
      const host = `registry.test:${server.port}`;
      const delays: number[] = [];
      const events: unknown[] = [];
      const transport = makeFastTransport(delays, {
        lookup: toLoopback,
        wireFirst,
        onEvent: (event) => events.push(event),
      });
      try {
        for (const method of ['HEAD', 'GET'] as const) {
          const error = await transport.request({ method, url: transport.url(host, '/v2/') }).then(
            () => assert.fail('no error'),
            (caught: unknown) => caught as TransportError,
          );
          assert.ok(error instanceof TransportError);
          assert.equal(error.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
          assert.equal(error.attempts, 1);
          assert.equal(
            error.message,
            `${method} ${host}/v2/: the certificate of ${host} is not trusted: self-signed (DEPTH_ZERO_SELF_SIGNED_CERT)`,
          );
          assert.match(error.hint ?? '', /NODE_EXTRA_CA_CERTS=FILE/);
          assert.match(error.hint ?? '', /--src-tls-verify=false \/ --dest-tls-verify=false/);
          assert.match(error.hint ?? '', /--tls-verify=false/);
          assert.doesNotMatch(`${error.message} ${error.hint}`, /reachable|use-system-ca|Node\.js/);
        }
        assert.deepEqual([delays, events], [[], []]);
        assert.equal(server.connections(), 2, 'one handshake per request');

        // Trusted, but issued for localhost and 127.0.0.1 only.
        const trusting = new Transport({ tls: { ca: cert }, lookup: toLoopback, wireFirst });
        try {
          await assert.rejects(
            trusting.request({ method: 'HEAD', url: trusting.url(host, '/v2/') }),
            (error: TransportError) =>
              error.code === 'ERR_TLS_CERT_ALTNAME_INVALID' &&
              error.message.endsWith(
                `the certificate of ${host} is not trusted: issued for another name (ERR_TLS_CERT_ALTNAME_INVALID)`,
              ) &&
              /name the registry as its certificate does/.test(error.hint ?? ''),
          );
        } finally {
          await trusting.close();
        }
      } finally {
        await transport.close();
        await server.close();
      }
    });

    test(`${path}: a host that answers plain HTTP is named so, with the flag to pass, without OpenSSL's text`, async () => {
      const server = await serve((req, res) => res.writeHead(200).end('plain'));
      const host = `plain.test:${server.host.split(':')[1]}`;
      const delays: number[] = [];
      const transport = makeFastTransport(delays, { lookup: toLoopback, wireFirst });
      try {
        const error = await transport
          .request({ method: 'GET', url: transport.url(host, '/v2/'), bufferLimit: 100 })
          .then(
            () => assert.fail('no error'),
            (caught: unknown) => caught as TransportError,
          );
        assert.ok(error instanceof TransportError);
        // OpenSSL's code, or EPROTO when the failure surfaces on a write (the wire writes at once).
        assert.match(error.code, /^(?:ERR_SSL_WRONG_VERSION_NUMBER|EPROTO)$/);
        assert.equal(error.message, `GET ${host}/v2/: ${host} answers plain HTTP, not HTTPS`);
        assert.match(error.hint ?? '', new RegExp(`^pass --plain-http ${host} `));
        assert.doesNotMatch(`${error.message} ${error.hint}`, /SSL routines|openssl|version number/i);
        assert.deepEqual(delays, []);
      } finally {
        await transport.close();
        await server.close();
      }
    });

    test(`${path}: an insecure host that answers plain HTTP is spoken to over plain HTTP from then on`, async () => {
      const server = await serve((req, res) => res.writeHead(200).end(`${req.method} ${req.url}`));
      const host = `plain.test:${server.host.split(':')[1]}`;
      const delays: number[] = [];
      const transport = makeFastTransport(delays, {
        insecure: ['plain.test'],
        lookup: toLoopback,
        wireFirst,
      });
      try {
        const url = transport.url(host, '/v2/m');
        const stale = transport.url(host, '/v2/stale');
        assert.equal(url.protocol, 'https:');
        const first = await transport.request({ method: 'GET', url, bufferLimit: 100 });
        assert.equal(first.bytes?.toString(), 'GET /v2/m');
        assert.equal(first.url.href, `http://${host}/v2/m`);
        assert.equal(first.attempts, 1);
        assert.deepEqual(delays, [], 'sent again at once, not as a retry');
        assert.equal(transport.isPlainHttp(host), true);
        assert.equal(transport.url(host, '/v2/').protocol, 'http:');
        const streamed = await transport.request({ method: 'GET', url: transport.url(host, '/v2/blob') });
        assert.equal(await text(streamed), 'GET /v2/blob');
        // A URL made before the host was found out goes straight to plain HTTP: no new connection.
        const connections = server.connections();
        const late = await transport.request({ method: 'GET', url: stale, bufferLimit: 100 });
        assert.equal(late.url.protocol, 'http:');
        assert.equal(server.connections(), connections);
        assert.deepEqual(
          server.seen.map((seen) => seen.url),
          ['/v2/m', '/v2/blob', '/v2/stale'],
        );
      } finally {
        await transport.close();
        await server.close();
      }
    });
  }

  test('each certificate failure is named by its code, with what to do about it, and not retried', async () => {
    const cases: [string, RegExp, RegExp][] = [
      ['DEPTH_ZERO_SELF_SIGNED_CERT', /self-signed/, /NODE_EXTRA_CA_CERTS=FILE/],
      [
        'SELF_SIGNED_CERT_IN_CHAIN',
        /issued by a self-signed CA this machine does not trust/,
        /NODE_EXTRA_CA_CERTS/,
      ],
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /issued by a CA this machine does not know/, /NODE_EXTRA_CA_CERTS/],
      [
        'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
        /issued by a CA this machine does not know/,
        /NODE_EXTRA_CA_CERTS/,
      ],
      ['CERT_HAS_EXPIRED', /expired/, /clock, or have the certificate of r\.example renewed/],
      [
        'ERR_TLS_CERT_ALTNAME_INVALID',
        /issued for another name/,
        /name the registry as its certificate does/,
      ],
    ];
    for (const [code, reason, fix] of cases) {
      const delays: number[] = [];
      const failing = {
        request: () => Promise.reject(Object.assign(new Error(`OpenSSL says ${code}`), { code })),
      } as unknown as TransportOptions['dispatcher'];
      const transport = makeFastTransport(delays, { dispatcher: failing! });
      const error = await transport.request({ method: 'GET', url: new URL('https://r.example/v2/') }).then(
        () => assert.fail('no error'),
        (caught: unknown) => caught as TransportError,
      );
      assert.equal(error.code, code);
      assert.equal(error.attempts, 1, code);
      assert.deepEqual(delays, [], code);
      assert.match(
        error.message,
        new RegExp(`the certificate of r\\.example is not trusted: .*\\(${code}\\)$`),
      );
      assert.match(error.message, reason, code);
      assert.match(error.hint ?? '', fix, code);
      assert.match(
        error.hint ?? '',
        /--dest-tls-verify=false \(sync\), --tls-verify=false \(inspect, ratelimit\)/,
      );
      assert.doesNotMatch(error.message, /OpenSSL says/);
    }
  });

  test('a streamed request to an insecure host that answers plain HTTP finds out on undici', async () => {
    const server = await serve((req, res) => res.writeHead(200).end(`${req.method} ${req.url}`));
    const host = `plain.test:${server.host.split(':')[1]}`;
    const transport = new Transport({ insecure: [host], lookup: toLoopback });
    try {
      const streamed = await transport.request({ method: 'GET', url: transport.url(host, '/v2/blob') });
      assert.equal(await text(streamed), 'GET /v2/blob');
      assert.equal(streamed.url.protocol, 'http:');
    } finally {
      await transport.close();
      await server.close();
    }
  });
});
