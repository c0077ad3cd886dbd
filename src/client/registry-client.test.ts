import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { digestOf } from '../oci/digest.ts';
import { explicitCredentials, type CredentialSource } from './credentials.ts';
import { RegistryError } from './errors.ts';
import { imageName, RegistryClient } from './registry-client.ts';
import { nextLink, parseErrorBody } from './registry-requests.ts';

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A scripted registry on 127.0.0.1:0. */
async function scripted(handler: (seen: Seen, host: string) => Answer) {
  const seen: Seen[] = [];
  let host = '';
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(entry);
      const answer = handler(entry, host);
      const body = answer.body === undefined ? Buffer.alloc(0) : Buffer.from(answer.body);
      res.writeHead(answer.status, { 'content-length': String(body.length), ...answer.headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function client(credentials?: CredentialSource): RegistryClient {
  return new RegistryClient({
    ...(credentials ? { credentials } : {}),
    transport: { sleep: async () => {}, retry: { attempts: 2, baseDelayMs: 1 } },
  });
}

test('imageName, nextLink, parseErrorBody', () => {
  assert.equal(
    imageName({ registry: 'docker.io', repository: 'library/nginx' }, '1.25'),
    'docker.io/library/nginx:1.25',
  );
  assert.equal(
    imageName({ registry: 'r:5000', repository: 'a' }, digestOf('x')),
    `r:5000/a@${digestOf('x')}`,
  );
  assert.equal(imageName({ registry: 'r', repository: 'a' }), 'r/a');
  const base = new URL('https://reg.example.com/v2/a/tags/list?n=2');
  assert.equal(
    nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"', base)?.toString(),
    'https://reg.example.com/v2/a/tags/list?n=2&last=b',
  );
  assert.equal(
    nextLink('<https://x.example/p>; rel="prev", <https://x.example/n>; rel=next', base)?.toString(),
    'https://x.example/n',
  );
  assert.equal(nextLink('</p>; rel="prev"', base), undefined);
  assert.equal(nextLink(undefined, base), undefined);
  assert.deepEqual(
    parseErrorBody(Buffer.from('{"errors":[{"code":"DENIED","message":"token=abc123 refused"}]}')),
    {
      code: 'DENIED',
      message: 'token=[redacted] refused',
    },
  );
  assert.equal(parseErrorBody(Buffer.from('<html>')), undefined);
});

test('pushBlob: a registry that answers the POST with 201 already has the blob', async () => {
  const server = await scripted(() => ({ status: 201 }));
  const registry = client();
  let opened = 0;
  try {
    await registry.pushBlob({ registry: server.host, repository: 'a/b' }, digestOf('x'), 1, () => {
      opened++;
      return Readable.from([Buffer.from('x')]);
    });
    assert.equal(opened, 0);
    assert.deepEqual(
      server.seen.map((s) => s.method),
      ['POST'],
    );
  } finally {
    await registry.close();
    await server.close();
  }
});

test('pushBlob with probe: the POST mounts from the repository itself; 201 means present, 202 uploads', async () => {
  const data = Buffer.from('layer bytes');
  const digest = digestOf(data);
  const present = await scripted(() => ({ status: 201 }));
  const absent = await scripted((seen) =>
    seen.method === 'POST'
      ? { status: 202, headers: { location: '/v2/a/b/blobs/uploads/u1' } }
      : { status: 201 },
  );
  const registry = client();
  try {
    const skipped = await registry.pushBlob(
      { registry: present.host, repository: 'a/b' },
      digest,
      data.length,
      () => assert.fail('nothing is read when the registry has the blob'),
      { probe: true },
    );
    assert.equal(skipped, 'present');
    assert.equal(
      present.seen[0]?.url,
      `/v2/a/b/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=a%2Fb`,
    );
    const uploaded = await registry.pushBlob(
      { registry: absent.host, repository: 'a/b' },
      digest,
      data.length,
      () => Readable.from([data]),
      { probe: true },
    );
    assert.equal(uploaded, 'uploaded');
    assert.deepEqual(
      absent.seen.map((s) => s.method),
      ['POST', 'PUT'],
    );
    assert.equal(absent.seen[1]?.body, data.toString());
  } finally {
    await registry.close();
    await present.close();
    await absent.close();
  }
});

test("pushBlob with probe 'auto': probes only registries seen to honour a mount from the repository itself", async () => {
  const first = Buffer.from('first layer');
  const second = Buffer.from('second layer');
  // One registry mounts what the repository holds; the other ignores mount parameters (ECR by default).
  const stored = new Set<string>();
  const honours = await scripted((seen) => {
    const url = new URL(seen.url, 'http://x');
    if (
      seen.method === 'POST' &&
      url.searchParams.get('mount') &&
      stored.has(url.searchParams.get('mount')!)
    ) {
      return { status: 201 };
    }
    if (seen.method === 'POST') return { status: 202, headers: { location: '/v2/a/b/blobs/uploads/u1' } };
    if (seen.method === 'PUT') stored.add(url.searchParams.get('digest')!);
    return { status: seen.method === 'DELETE' ? 204 : 201 };
  });
  const ignores = await scripted((seen) =>
    seen.method === 'POST'
      ? { status: 202, headers: { location: '/v2/a/b/blobs/uploads/u2' } }
      : { status: seen.method === 'DELETE' ? 204 : 201 },
  );
  const registry = client();
  try {
    for (const server of [honours, ignores]) {
      const repo = { registry: server.host, repository: 'a/b' };
      assert.equal(registry.probesBlobs(server.host), false, 'unknown at first: HEADs stay in charge');
      const result = await registry.pushBlob(
        repo,
        digestOf(first),
        first.length,
        () => Readable.from([first]),
        {
          probe: 'auto',
        },
      );
      assert.equal(result, 'uploaded');
    }
    assert.deepEqual(
      honours.seen.map((s) => `${s.method} ${new URL(s.url, 'http://x').searchParams.has('mount')}`),
      ['POST false', 'PUT false', 'POST true'],
      'a plain upload, then one probe for the blob just stored',
    );
    assert.equal(registry.probesBlobs(honours.host), true);
    assert.deepEqual(
      ignores.seen.map((s) => s.method),
      ['POST', 'PUT', 'POST', 'DELETE'],
      'the ignored probe opened an upload, which is cancelled',
    );
    assert.equal(registry.probesBlobs(ignores.host), false);

    const again = await registry.pushBlob(
      { registry: honours.host, repository: 'a/b' },
      digestOf(first),
      first.length,
      () => assert.fail('a present blob is not read'),
      { probe: 'auto' },
    );
    assert.equal(again, 'present');
    ignores.seen.length = 0;
    await registry.pushBlob(
      { registry: ignores.host, repository: 'a/b' },
      digestOf(second),
      second.length,
      () => Readable.from([second]),
      { probe: 'auto' },
    );
    assert.deepEqual(
      ignores.seen.map((s) => `${s.method} ${new URL(s.url, 'http://x').searchParams.has('mount')}`),
      ['POST false', 'PUT false'],
      'no probe where probes are ignored',
    );
  } finally {
    await registry.close();
    await honours.close();
    await ignores.close();
  }
});

test('pushBlob: relative Location keeps its query; digest appended; Content-Length sent', async () => {
  const data = Buffer.from('hello blob');
  const server = await scripted((seen): Answer => {
    if (seen.method === 'POST')
      return { status: 202, headers: { location: '/v2/a/b/blobs/uploads/u1?_state=a%2Bb%3D' } };
    return { status: 201, headers: { 'docker-content-digest': digestOf(data) } };
  });
  const registry = client();
  try {
    await registry.pushBlob({ registry: server.host, repository: 'a/b' }, digestOf(data), data.length, () =>
      Readable.from([data]),
    );
    const put = server.seen[1]!;
    assert.equal(put.method, 'PUT');
    assert.equal(
      put.url,
      `/v2/a/b/blobs/uploads/u1?_state=a%2Bb%3D&digest=${encodeURIComponent(digestOf(data))}`,
    );
    assert.equal(put.headers['content-length'], String(data.length));
    assert.equal(put.body, 'hello blob');
  } finally {
    await registry.close();
    await server.close();
  }
});

test('pushBlob: a PUT whose earlier answer was lost (404 upload unknown) succeeds when the blob is there', async () => {
  const data = Buffer.from('lost answer');
  const server = await scripted((seen): Answer => {
    if (seen.method === 'POST') return { status: 202, headers: { location: '/v2/a/b/blobs/uploads/u1' } };
    if (seen.method === 'PUT') return { status: 404, body: '{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}' };
    return { status: 200, headers: { 'content-length': String(data.length) } };
  });
  const registry = client();
  try {
    await registry.pushBlob({ registry: server.host, repository: 'a/b' }, digestOf(data), data.length, () =>
      Readable.from([data]),
    );
    assert.deepEqual(
      server.seen.map((s) => s.method),
      ['POST', 'PUT', 'HEAD'],
    );
  } finally {
    await registry.close();
    await server.close();
  }
});

test('checkManifest falls back to GET when HEAD has no Docker-Content-Digest; manifests are size-capped', async () => {
  const manifest = Buffer.from(
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
  );
  const server = await scripted((seen) =>
    seen.url.includes('/big')
      ? { status: 200, body: 'x'.repeat(5000), headers: { 'content-type': 'application/json' } }
      : {
          status: 200,
          body: manifest,
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        },
  );
  const registry = new RegistryClient({ maxManifestBytes: 1000 });
  try {
    const head = await registry.checkManifest({ registry: server.host, repository: 'a/b' }, 'v1');
    assert.equal(head?.digest, digestOf(manifest));
    assert.equal(head?.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(
      server.seen.map((s) => s.method),
      ['HEAD', 'GET'],
    );
    await assert.rejects(
      registry.getManifest({ registry: server.host, repository: 'a/big' }, 'v1'),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, 'MANIFEST_INVALID');
        assert.match(error.message, /more than 1000 bytes/);
        return true;
      },
    );
  } finally {
    await registry.close();
    await server.close();
  }
});

test('listTags: a next link to another host is refused; a repeated link ends the listing', async () => {
  const server = await scripted((seen) => {
    if (seen.url.includes('/evil/'))
      return {
        status: 200,
        body: '{"tags":["a"]}',
        headers: { link: '<http://other.example/v2/x>; rel="next"' },
      };
    return {
      status: 200,
      body: '{"tags":["a"]}',
      headers: { link: '</v2/loop/tags/list>; rel="next"' },
    };
  });
  const registry = client();
  try {
    await assert.rejects(
      registry.listTags({ registry: server.host, repository: 'evil' }),
      (error: unknown) => error instanceof RegistryError && /another host/.test(error.message),
    );
    assert.deepEqual(await registry.listTags({ registry: server.host, repository: 'loop' }), ['a']);
    await assert.rejects(
      registry.listTags({ registry: server.host, repository: 'evil2' }, { maxPages: 1 }),
      /more than 1 pages/,
    );
  } finally {
    await registry.close();
    await server.close();
  }
});

test('referrers: 405 from the API falls back to the sha256-<hex> tag', async () => {
  const subject = digestOf('subject');
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf('r1'),
        size: 2,
        artifactType: 'x/sig',
      },
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf('r2'),
        size: 2,
        artifactType: 'x/sbom',
      },
    ],
  });
  const server = await scripted((seen) => {
    if (seen.url.includes('/referrers/')) return { status: 405 };
    if (seen.url.endsWith(`/manifests/sha256-${subject.slice(7)}`)) {
      return {
        status: 200,
        body: index,
        headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
      };
    }
    return { status: 404 };
  });
  const registry = client();
  try {
    const all = await registry.listReferrers({ registry: server.host, repository: 'a' }, subject);
    assert.equal(all.length, 2);
    const sboms = await registry.listReferrers({ registry: server.host, repository: 'a' }, subject, 'x/sbom');
    assert.deepEqual(
      sboms.map((d) => d.digest),
      [digestOf('r2')],
    );
  } finally {
    await registry.close();
    await server.close();
  }
});

test('token flow: identity tokens use the OAuth2 refresh grant; insufficient_scope widens the scope', async () => {
  let posted = '';
  const server = await scripted((seen, host): Answer => {
    if (seen.url.startsWith('/token')) {
      posted = seen.body;
      return { status: 200, body: '{"access_token":"tok-1","expires_in":300}' };
    }
    if (seen.headers.authorization !== 'Bearer tok-1') {
      return {
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="http://${host}/token",service="svc",scope="repository:a:pull repository:extra:pull",error="insufficient_scope"`,
        },
      };
    }
    return { status: 200, headers: { 'docker-content-digest': digestOf('m'), 'content-type': 'x/y' } };
  });
  const source: CredentialSource = {
    description: 'test identity token',
    get: async () => ({ identityToken: 'refresh-me' }),
  };
  const registry = client(source);
  try {
    assert.equal(
      (await registry.checkManifest({ registry: server.host, repository: 'a' }, 'v1'))?.digest,
      digestOf('m'),
    );
    const form = new URLSearchParams(posted);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('refresh_token'), 'refresh-me');
    assert.equal(form.get('service'), 'svc');
    assert.equal(form.get('scope'), 'repository:a:pull repository:extra:pull');
    // Later requests of the same need go out with the token at once.
    await registry.checkManifest({ registry: server.host, repository: 'a' }, 'v2');
    assert.equal(server.seen.filter((s) => s.url.startsWith('/token')).length, 1);
    assert.equal(server.seen.at(-1)?.headers.authorization, 'Bearer tok-1');
  } finally {
    await registry.close();
    await server.close();
  }
});

test('token service failures name the image, the token host and the status', async () => {
  const server = await scripted((seen, host) =>
    seen.url.startsWith('/token')
      ? { status: 500 }
      : { status: 401, headers: { 'www-authenticate': `Bearer realm="http://${host}/token",service="svc"` } },
  );
  const registry = client(explicitCredentials('u:topsecret'));
  try {
    await assert.rejects(
      registry.getManifest({ registry: server.host, repository: 'team/app' }, 'v1'),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.code, 'REGISTRY_UNAVAILABLE');
        assert.equal(error.status, 500);
        assert.ok(error.message.includes(`${server.host}/team/app:v1`), error.message);
        assert.match(error.message, /token service .* HTTP 500/);
        assert.doesNotMatch(error.message, /topsecret/);
        return true;
      },
    );
    // The token request carried Basic credentials and the account.
    const token = server.seen.find((s) => s.url.startsWith('/token'));
    assert.match(token?.headers.authorization ?? '', /^Basic /);
    assert.match(token?.url ?? '', /account=u/);
  } finally {
    await registry.close();
    await server.close();
  }
});

test('pushBlob: a failing source fails the push with its own error, and the upload is cancelled', async () => {
  const server = await scripted((seen) => {
    if (seen.method === 'POST') return { status: 202, headers: { location: '/v2/a/b/blobs/uploads/u1' } };
    return { status: 204 };
  });
  const registry = client();
  const failure = new Error('source disk vanished');
  try {
    const source = () =>
      new Readable({
        read() {
          this.push(Buffer.alloc(1000));
          setImmediate(() => this.destroy(failure));
        },
      });
    await assert.rejects(
      registry.pushBlob({ registry: server.host, repository: 'a/b' }, digestOf('x'), 100_000, source),
      (error: unknown) => error === failure,
    );
    assert.ok(server.seen.some((s) => s.method === 'DELETE' && s.url === '/v2/a/b/blobs/uploads/u1'));
  } finally {
    await registry.close();
    await server.close();
  }
});
