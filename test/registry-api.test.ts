/**
 * The distribution API, endpoint by endpoint, over a real socket: happy paths, every error code, and the
 * bad inputs a registry meets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

let registry: TestRegistry;
let base: string;

async function call(
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: Buffer | string } = {},
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
    redirect: 'manual',
  });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, text: body.toString('utf8') };
}

/** A request whose path is sent exactly as written (fetch would resolve `..` segments first). */
function rawCall(method: string, path: string): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function errorCode(response: { text: string }): Promise<string> {
  const parsed = JSON.parse(response.text) as { errors: { code: string }[] };
  return parsed.errors[0]!.code;
}

async function pushBlob(repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await call('POST', `/v2/${repo}/blobs/uploads/`);
  assert.equal(start.status, 202);
  const location = start.headers.get('location')!;
  const done = await call('PUT', `${location}?digest=${digest}`, {
    body: data,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  assert.equal(done.status, 201, done.text);
  return digest;
}

interface Image {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

async function pushImage(
  repo: string,
  tag: string | undefined,
  options: { mediaType?: string; extra?: Record<string, unknown>; seed?: string } = {},
): Promise<Image> {
  const mediaType = options.mediaType ?? OCI_MANIFEST;
  const docker = mediaType === DOCKER_MANIFEST;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      seed: options.seed ?? randomBytes(4).toString('hex'),
    }),
  );
  const layer = randomBytes(1000);
  const configDigest = await pushBlob(repo, config);
  const layerDigest = await pushBlob(repo, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: docker
        ? 'application/vnd.docker.container.image.v1+json'
        : 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: [
      {
        mediaType: docker
          ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
          : 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: layerDigest,
        size: layer.length,
      },
    ],
    ...options.extra,
  };
  // Three-space indentation: stored bytes must come back exactly, never re-serialised.
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
  const digest = sha256(bytes);
  const put = await call('PUT', `/v2/${repo}/manifests/${tag ?? digest}`, {
    body: bytes,
    headers: { 'Content-Type': mediaType },
  });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.headers.get('docker-content-digest'), digest);
  return { bytes, digest, mediaType };
}

before(async () => {
  registry = await startPullsafe({ registry: { maxManifestBytes: 64 * 1024 } });
  base = registry.url;
});

after(async () => {
  await registry.stop();
});

describe('base and operations endpoints', () => {
  it('GET /v2/ answers 200 with the API version header', async () => {
    const response = await call('GET', '/v2/');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.equal(response.text, '{}');
  });

  it('healthz, readyz and metrics answer', async () => {
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal((await call('GET', '/readyz')).status, 200);
    await call('GET', '/v2/');
    const metrics = await call('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /pullsafe_http_requests_total\{route="base",method="GET",status="200"\} \d+/);
    assert.match(metrics.text, /pullsafe_uploads_started_total \d+/);
    assert.match(metrics.text, /pullsafe_http_request_duration_seconds_bucket/);
  });

  it('unknown endpoints and methods get distribution error bodies', async () => {
    const unknown = await call('GET', '/v2/foo/unknown/thing');
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'UNSUPPORTED');
    const method = await call('POST', '/v2/foo/manifests/latest');
    assert.equal(method.status, 405);
    assert.equal(await errorCode(method), 'UNSUPPORTED');
  });

  it('every response carries a request id', async () => {
    const response = await call('GET', '/v2/', { headers: { 'X-Request-Id': 'trace-123' } });
    assert.equal(response.headers.get('x-request-id'), 'trace-123');
    const generated = await call('GET', '/v2/', { headers: { 'X-Request-Id': 'bad id with spaces' } });
    assert.match(generated.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
  });
});

describe('repository names', () => {
  for (const [label, name] of [
    ['dot-dot path', '../etc'],
    ['dot-dot component', 'a/../b'],
    ['uppercase', 'Library/Nginx'],
    ['too long', 'a'.repeat(256)],
    ['leading separator', '-abc'],
    ['double slash', 'a//b'],
    ['encoded slash', 'a%2Fb'],
  ] as const) {
    it(`rejects ${label} with NAME_INVALID`, async () => {
      const response = await rawCall('GET', `/v2/${name}/tags/list`);
      assert.equal(response.status, 400);
      assert.equal(await errorCode(response), 'NAME_INVALID');
    });
  }

  it('accepts the longest valid name', async () => {
    const name = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    assert.equal(name.length, 255);
    const response = await call('GET', `/v2/${name}/tags/list`);
    assert.equal(response.status, 404);
    assert.equal(await errorCode(response), 'NAME_UNKNOWN');
  });
});

describe('blobs', () => {
  const repo = 'blobs/test';
  const data = randomBytes(10_000);
  let digest: string;

  before(async () => {
    digest = await pushBlob(repo, data);
  });

  it('GET returns the bytes with digest and length headers', async () => {
    const response = await call('GET', `/v2/${repo}/blobs/${digest}`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, data);
    assert.equal(response.headers.get('docker-content-digest'), digest);
    assert.equal(response.headers.get('content-length'), String(data.length));
  });

  it('HEAD returns headers only', async () => {
    const response = await call('HEAD', `/v2/${repo}/blobs/${digest}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(data.length));
    assert.equal(response.headers.get('docker-content-digest'), digest);
    assert.equal(response.body.length, 0);
  });

  it('serves byte ranges with 206', async () => {
    const middle = await call('GET', `/v2/${repo}/blobs/${digest}`, { headers: { Range: 'bytes=100-199' } });
    assert.equal(middle.status, 206);
    assert.deepEqual(middle.body, data.subarray(100, 200));
    assert.equal(middle.headers.get('content-range'), `bytes 100-199/${data.length}`);
    assert.equal(middle.headers.get('content-length'), '100');
    const open = await call('GET', `/v2/${repo}/blobs/${digest}`, { headers: { Range: 'bytes=9990-' } });
    assert.deepEqual(open.body, data.subarray(9990));
    const suffix = await call('GET', `/v2/${repo}/blobs/${digest}`, { headers: { Range: 'bytes=-10' } });
    assert.deepEqual(suffix.body, data.subarray(data.length - 10));
  });

  it('answers unsatisfiable ranges with 416 RANGE_INVALID', async () => {
    for (const range of ['bytes=20000-', 'bytes=500-100', 'bytes=-']) {
      const response = await call('GET', `/v2/${repo}/blobs/${digest}`, { headers: { Range: range } });
      assert.equal(response.status, 416, range);
      assert.equal(await errorCode(response), 'RANGE_INVALID');
    }
  });

  it('unknown, unlinked and malformed digests', async () => {
    const unknown = await call('GET', `/v2/${repo}/blobs/${sha256('nothing')}`);
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'BLOB_UNKNOWN');
    const otherRepo = await call('GET', `/v2/elsewhere/blobs/${digest}`);
    assert.equal(otherRepo.status, 404, 'a blob is visible only in repositories it was pushed or mounted to');
    for (const bad of ['sha256:abc', 'sha256:' + 'A'.repeat(64), 'md5:' + 'a'.repeat(32), 'latest']) {
      const response = await call('GET', `/v2/${repo}/blobs/${bad}`);
      assert.equal(response.status, 400, bad);
      assert.ok(['DIGEST_INVALID', 'UNSUPPORTED'].includes(await errorCode(response)), bad);
    }
  });

  it('single-request POST ?digest= uploads', async () => {
    const body = randomBytes(5000);
    const response = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${sha256(body)}`, { body });
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('location'), `/v2/${repo}/blobs/${sha256(body)}`);
    assert.deepEqual((await call('GET', `/v2/${repo}/blobs/${sha256(body)}`)).body, body);
  });

  it('sha512 digests are verified too', async () => {
    const body = randomBytes(3000);
    const digest512 = `sha512:${createHash('sha512').update(body).digest('hex')}`;
    const response = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digest512}`, { body });
    assert.equal(response.status, 201, response.text);
    assert.deepEqual((await call('GET', `/v2/${repo}/blobs/${digest512}`)).body, body);
  });

  it('chunked PATCH uploads with Content-Range, status, and out-of-order rejection', async () => {
    const body = randomBytes(30_000);
    const start = await call('POST', `/v2/${repo}/blobs/uploads/`);
    const location = start.headers.get('location')!;
    assert.ok(start.headers.get('docker-upload-uuid'));
    const first = await call('PATCH', location, {
      body: body.subarray(0, 10_000),
      headers: { 'Content-Range': '0-9999', 'Content-Type': 'application/octet-stream' },
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-9999');

    const outOfOrder = await call('PATCH', location, {
      body: body.subarray(20_000),
      headers: { 'Content-Range': '20000-29999' },
    });
    assert.equal(outOfOrder.status, 416);
    assert.equal(await errorCode(outOfOrder), 'RANGE_INVALID');

    const mismatch = await call('PATCH', location, {
      body: body.subarray(10_000, 10_010),
      headers: { 'Content-Range': '10000-19999' },
    });
    assert.equal(mismatch.status, 400);
    assert.equal(await errorCode(mismatch), 'SIZE_INVALID');

    const second = await call('PATCH', location, {
      body: body.subarray(10_000, 20_000),
      headers: { 'Content-Range': '10000-19999' },
    });
    assert.equal(second.status, 202);
    const status = await call('GET', location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-19999');

    // The last chunk travels with the closing PUT.
    const done = await call('PUT', `${location}?digest=${sha256(body)}`, {
      body: body.subarray(20_000),
      headers: { 'Content-Range': '20000-29999' },
    });
    assert.equal(done.status, 201, done.text);
    assert.deepEqual((await call('GET', `/v2/${repo}/blobs/${sha256(body)}`)).body, body);
    assert.equal((await call('GET', location)).status, 404, 'a finished upload is gone');
  });

  it('chunked PATCH without Content-Range (streamed chunks) works', async () => {
    const body = randomBytes(20_000);
    const location = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.get('location')!;
    assert.equal((await call('PATCH', location, { body: body.subarray(0, 7000) })).status, 202);
    assert.equal((await call('PATCH', location, { body: body.subarray(7000) })).status, 202);
    const done = await call('PUT', `${location}?digest=${sha256(body)}`);
    assert.equal(done.status, 201);
  });

  it('rejects a wrong digest, removes the upload, and stores nothing', async () => {
    const body = randomBytes(1000);
    const wrong = sha256('something else');
    const location = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.get('location')!;
    const response = await call('PUT', `${location}?digest=${wrong}`, { body });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'DIGEST_INVALID');
    assert.equal((await call('HEAD', `/v2/${repo}/blobs/${wrong}`)).status, 404);
    assert.equal((await call('HEAD', `/v2/${repo}/blobs/${sha256(body)}`)).status, 404);
    assert.equal((await call('GET', location)).status, 404);
  });

  it('rejects a body longer than its Content-Range', async () => {
    const location = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.get('location')!;
    const response = await call('PUT', `${location}?digest=${sha256('x')}`, {
      body: randomBytes(100),
      headers: { 'Content-Range': '0-9' },
    });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'SIZE_INVALID');
  });

  it('PUT without digest is DIGEST_INVALID', async () => {
    const location = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.get('location')!;
    const response = await call('PUT', location, { body: 'abc' });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'DIGEST_INVALID');
  });

  it('unknown and malformed upload ids are BLOB_UPLOAD_UNKNOWN', async () => {
    for (const id of ['0b0f7c6e-1111-4222-8333-944455556666', 'not-a-uuid', '..']) {
      for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
        const response = await rawCall(method, `/v2/${repo}/blobs/uploads/${id}`);
        assert.equal(response.status, 404, `${method} ${id}`);
        assert.equal(await errorCode(response), 'BLOB_UPLOAD_UNKNOWN');
      }
    }
  });

  it('an upload started in one repository is unknown to every other', async () => {
    const location = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.get('location')!;
    const id = location.split('/').pop()!;
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const response = await rawCall(
        method,
        `/v2/other/repository/blobs/uploads/${id}?digest=${sha256('x')}`,
      );
      assert.equal(response.status, 404, method);
      assert.equal(await errorCode(response), 'BLOB_UPLOAD_UNKNOWN');
    }
    assert.equal((await call('GET', location)).status, 204, 'the upload itself is untouched');
  });

  it('cancels an upload with DELETE', async () => {
    const location = (await call('POST', `/v2/${repo}/blobs/uploads/`)).headers.get('location')!;
    await call('PATCH', location, { body: 'partial' });
    assert.equal((await call('DELETE', location)).status, 204);
    assert.equal((await call('GET', location)).status, 404);
  });

  it('mounts across repositories, and falls back to an upload when it cannot', async () => {
    const mounted = await call('POST', `/v2/mount/target/blobs/uploads/?mount=${digest}&from=${repo}`);
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers.get('location'), `/v2/mount/target/blobs/${digest}`);
    assert.deepEqual((await call('GET', `/v2/mount/target/blobs/${digest}`)).body, data);

    const missing = await call(
      'POST',
      `/v2/mount/target/blobs/uploads/?mount=${sha256('nope')}&from=${repo}`,
    );
    assert.equal(missing.status, 202, 'unknown blob: an upload session starts instead');
    const wrongSource = await call(
      'POST',
      `/v2/mount/other/blobs/uploads/?mount=${digest}&from=no/such/repo`,
    );
    assert.equal(wrongSource.status, 202);
    const badSource = await call('POST', `/v2/mount/other/blobs/uploads/?mount=${digest}&from=../x`);
    assert.equal(badSource.status, 400);
    assert.equal(await errorCode(badSource), 'NAME_INVALID');
  });

  it('DELETE unlinks a blob from the repository', async () => {
    const body = randomBytes(100);
    const blob = await pushBlob('blobs/deleted', body);
    assert.equal((await call('DELETE', `/v2/blobs/deleted/blobs/${blob}`)).status, 202);
    const gone = await call('GET', `/v2/blobs/deleted/blobs/${blob}`);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'BLOB_UNKNOWN');
    assert.equal((await call('DELETE', `/v2/blobs/deleted/blobs/${blob}`)).status, 404);
  });
});

describe('manifests', () => {
  const repo = 'manifests/test';
  let image: Image;

  before(async () => {
    image = await pushImage(repo, 'v1');
  });

  it('GET by tag and by digest return the exact bytes with headers', async () => {
    for (const reference of ['v1', image.digest]) {
      const response = await call('GET', `/v2/${repo}/manifests/${reference}`, {
        headers: { Accept: OCI_MANIFEST },
      });
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, image.bytes);
      assert.equal(response.headers.get('content-type'), OCI_MANIFEST);
      assert.equal(response.headers.get('docker-content-digest'), image.digest);
      assert.equal(response.headers.get('content-length'), String(image.bytes.length));
    }
  });

  it('HEAD carries length and digest', async () => {
    const response = await call('HEAD', `/v2/${repo}/manifests/v1`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(image.bytes.length));
    assert.equal(response.headers.get('docker-content-digest'), image.digest);
  });

  it('PUT by digest stores without a tag', async () => {
    const untagged = await pushImage(repo, undefined);
    assert.equal((await call('GET', `/v2/${repo}/manifests/${untagged.digest}`)).status, 200);
    const tags = JSON.parse((await call('GET', `/v2/${repo}/tags/list`)).text) as { tags: string[] };
    assert.deepEqual(tags.tags, ['v1']);
  });

  it('Accept negotiation: excluded types are MANIFEST_UNKNOWN', async () => {
    const response = await call('GET', `/v2/${repo}/manifests/v1`, { headers: { Accept: DOCKER_MANIFEST } });
    assert.equal(response.status, 404);
    assert.equal(await errorCode(response), 'MANIFEST_UNKNOWN');
    const wildcard = await call('GET', `/v2/${repo}/manifests/v1`, { headers: { Accept: '*/*' } });
    assert.equal(wildcard.status, 200);
    const list = await call('GET', `/v2/${repo}/manifests/v1`, {
      headers: { Accept: `${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.9` },
    });
    assert.equal(list.status, 200);
  });

  it('Docker schema 2 images and manifest lists round-trip byte-exact, with platform fallback', async () => {
    const amd64 = await pushImage('docker/app', undefined, { mediaType: DOCKER_MANIFEST, seed: 'amd64' });
    const arm64 = await pushImage('docker/app', undefined, { mediaType: DOCKER_MANIFEST, seed: 'arm64' });
    const list = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: DOCKER_LIST,
          manifests: [
            {
              mediaType: DOCKER_MANIFEST,
              digest: arm64.digest,
              size: arm64.bytes.length,
              platform: { architecture: 'arm64', os: 'linux' },
            },
            {
              mediaType: DOCKER_MANIFEST,
              digest: amd64.digest,
              size: amd64.bytes.length,
              platform: { architecture: 'amd64', os: 'linux' },
            },
          ],
        },
        null,
        2,
      ),
    );
    const put = await call('PUT', '/v2/docker/app/manifests/multi', {
      body: list,
      headers: { 'Content-Type': DOCKER_LIST },
    });
    assert.equal(put.status, 201, put.text);
    const full = await call('GET', '/v2/docker/app/manifests/multi', {
      headers: { Accept: `${DOCKER_LIST}, ${DOCKER_MANIFEST}` },
    });
    assert.deepEqual(full.body, list);
    assert.equal(full.headers.get('docker-content-digest'), sha256(list));
    // A client that cannot read lists gets linux/amd64, as distribution does.
    const single = await call('GET', '/v2/docker/app/manifests/multi', {
      headers: { Accept: DOCKER_MANIFEST },
    });
    assert.equal(single.status, 200);
    assert.equal(single.headers.get('docker-content-digest'), amd64.digest);
    assert.deepEqual(single.body, amd64.bytes);
  });

  it('an index referencing a missing manifest is MANIFEST_BLOB_UNKNOWN', async () => {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('missing'), size: 10 }],
      }),
    );
    const response = await call('PUT', `/v2/${repo}/manifests/broken`, {
      body: index,
      headers: { 'Content-Type': OCI_INDEX },
    });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a manifest referencing a missing blob is MANIFEST_BLOB_UNKNOWN', async () => {
    const manifest = JSON.parse(image.bytes.toString()) as { layers: { digest: string }[] };
    manifest.layers[0]!.digest = sha256('not uploaded');
    const response = await call('PUT', `/v2/${repo}/manifests/broken`, {
      body: JSON.stringify(manifest),
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await call('GET', `/v2/${repo}/manifests/broken`)).status, 404);
  });

  it('a descriptor with the wrong size is MANIFEST_INVALID', async () => {
    const manifest = JSON.parse(image.bytes.toString()) as { layers: { size: number }[] };
    manifest.layers[0]!.size += 1;
    const response = await call('PUT', `/v2/${repo}/manifests/broken`, {
      body: JSON.stringify(manifest),
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'MANIFEST_INVALID');
  });

  it('rejects malformed manifests with MANIFEST_INVALID', async () => {
    const cases: [string, string, string][] = [
      ['invalid JSON', '{"schemaVersion": 2,', OCI_MANIFEST],
      ['not an object', '[1,2,3]', OCI_MANIFEST],
      [
        'missing config',
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }),
        OCI_MANIFEST,
      ],
      [
        'bad descriptor digest',
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'x', digest: 'sha256:1', size: 1 },
          layers: [],
        }),
        OCI_MANIFEST,
      ],
      [
        'negative size',
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'x', digest: sha256('a'), size: -1 },
          layers: [],
        }),
        OCI_MANIFEST,
      ],
      ['content type mismatch', image.bytes.toString(), DOCKER_MANIFEST],
      [
        'unknown media type',
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-thing', config: {}, layers: [] }),
        'application/x-thing',
      ],
      [
        'schema 1',
        JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }),
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
      ],
      [
        'schemaVersion 3',
        JSON.stringify({
          schemaVersion: 3,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'x', digest: sha256('a'), size: 1 },
          layers: [],
        }),
        OCI_MANIFEST,
      ],
    ];
    for (const [label, body, contentType] of cases) {
      const response = await call('PUT', `/v2/${repo}/manifests/bad`, {
        body,
        headers: { 'Content-Type': contentType },
      });
      assert.equal(response.status, 400, label);
      assert.equal(await errorCode(response), 'MANIFEST_INVALID', label);
    }
    const schema1 = await call('PUT', `/v2/${repo}/manifests/bad`, {
      body: JSON.stringify({ schemaVersion: 1 }),
      headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
    });
    assert.match(schema1.text, /schema 1/);
  });

  it('refuses oversized manifests with 413 before reading them whole', async () => {
    const huge = Buffer.alloc(65 * 1024, 0x20);
    const response = await call('PUT', `/v2/${repo}/manifests/huge`, {
      body: huge,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(response.status, 413);
    assert.equal(await errorCode(response), 'SIZE_INVALID');
  });

  it('PUT by digest checks the digest', async () => {
    const response = await call('PUT', `/v2/${repo}/manifests/${sha256('other')}`, {
      body: image.bytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(response.status, 400);
    assert.equal(await errorCode(response), 'DIGEST_INVALID');
  });

  it('invalid tags and references are rejected', async () => {
    const longTag = await call('PUT', `/v2/${repo}/manifests/${'t'.repeat(129)}`, {
      body: image.bytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(longTag.status, 400);
    assert.equal(await errorCode(longTag), 'TAG_INVALID');
    const badDigest = await call('GET', `/v2/${repo}/manifests/sha256:xyz`);
    assert.equal(badDigest.status, 400);
    assert.equal(await errorCode(badDigest), 'DIGEST_INVALID');
    const unknown = await call('GET', `/v2/${repo}/manifests/nope`);
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'MANIFEST_UNKNOWN');
  });

  it('deletes tags and manifests', async () => {
    const victim = await pushImage('delete/me', 'a');
    const again = await call('PUT', '/v2/delete/me/manifests/b', {
      body: victim.bytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(again.status, 201);

    assert.equal((await call('DELETE', '/v2/delete/me/manifests/a')).status, 202);
    assert.equal((await call('GET', '/v2/delete/me/manifests/a')).status, 404);
    assert.equal(
      (await call('GET', `/v2/delete/me/manifests/${victim.digest}`)).status,
      200,
      'tag deletion keeps the manifest',
    );
    assert.equal((await call('DELETE', '/v2/delete/me/manifests/a')).status, 404);

    assert.equal((await call('DELETE', `/v2/delete/me/manifests/${victim.digest}`)).status, 202);
    assert.equal((await call('GET', `/v2/delete/me/manifests/${victim.digest}`)).status, 404);
    assert.equal(
      (await call('GET', '/v2/delete/me/manifests/b')).status,
      404,
      'deleting a manifest removes its tags',
    );
    const missing = await call('DELETE', `/v2/delete/me/manifests/${victim.digest}`);
    assert.equal(missing.status, 404);
    assert.equal(await errorCode(missing), 'MANIFEST_UNKNOWN');
  });
});

describe('discovery', () => {
  before(async () => {
    const image = await pushImage('list/a', 'tag-00');
    for (let i = 1; i < 7; i++) {
      const tag = `tag-${String(i).padStart(2, '0')}`;
      const response = await call('PUT', `/v2/list/a/manifests/${tag}`, {
        body: image.bytes,
        headers: { 'Content-Type': OCI_MANIFEST },
      });
      assert.equal(response.status, 201);
    }
    await pushImage('list/b', 'x');
    await pushImage('list/c', 'x');
  });

  it('tags/list pages with n, last and Link', async () => {
    const first = await call('GET', '/v2/list/a/tags/list?n=3');
    assert.deepEqual(JSON.parse(first.text), { name: 'list/a', tags: ['tag-00', 'tag-01', 'tag-02'] });
    assert.equal(first.headers.get('link'), '</v2/list/a/tags/list?last=tag-02&n=3>; rel="next"');
    const second = await call('GET', '/v2/list/a/tags/list?n=3&last=tag-02');
    assert.deepEqual((JSON.parse(second.text) as { tags: string[] }).tags, ['tag-03', 'tag-04', 'tag-05']);
    const last = await call('GET', '/v2/list/a/tags/list?n=3&last=tag-05');
    assert.deepEqual((JSON.parse(last.text) as { tags: string[] }).tags, ['tag-06']);
    assert.equal(last.headers.get('link'), null);
    const all = await call('GET', '/v2/list/a/tags/list');
    assert.equal((JSON.parse(all.text) as { tags: string[] }).tags.length, 7);
    const none = await call('GET', '/v2/list/a/tags/list?n=0');
    assert.deepEqual((JSON.parse(none.text) as { tags: string[] }).tags, []);
  });

  it('tags/list of an unknown repository is NAME_UNKNOWN; bad n is rejected', async () => {
    const unknown = await call('GET', '/v2/no/such/tags/list');
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'NAME_UNKNOWN');
    const bad = await call('GET', '/v2/list/a/tags/list?n=-1');
    assert.equal(bad.status, 400);
  });

  it('_catalog pages with n, last and Link', async () => {
    const all = JSON.parse((await call('GET', '/v2/_catalog')).text) as { repositories: string[] };
    assert.ok(all.repositories.includes('list/a'));
    assert.deepEqual(all.repositories, [...all.repositories].sort());
    const index = all.repositories.indexOf('list/a');
    const page = await call('GET', `/v2/_catalog?n=2&last=${all.repositories[index - 1] ?? ''}`);
    assert.deepEqual((JSON.parse(page.text) as { repositories: string[] }).repositories, [
      'list/a',
      'list/b',
    ]);
    assert.match(page.headers.get('link')!, /^<\/v2\/_catalog\?last=list%2Fb&n=2>; rel="next"$/);
  });
});

describe('referrers', () => {
  const repo = 'referrers/test';
  let subject: Image;
  let signature: Image;

  before(async () => {
    subject = await pushImage(repo, 'app');
    const emptyConfig = Buffer.from('{}');
    await pushBlob(repo, emptyConfig);
    const payload = Buffer.from('signature-bytes');
    const payloadDigest = await pushBlob(repo, payload);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(emptyConfig), size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: payloadDigest, size: payload.length }],
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length },
      annotations: { 'org.example.kind': 'sig' },
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const put = await call('PUT', `/v2/${repo}/manifests/${sha256(bytes)}`, {
      body: bytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers.get('oci-subject'), subject.digest);
    signature = { bytes, digest: sha256(bytes), mediaType: OCI_MANIFEST };
  });

  it('lists referrers as an OCI index', async () => {
    const response = await call('GET', `/v2/${repo}/referrers/${subject.digest}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), OCI_INDEX);
    const index = JSON.parse(response.text) as { manifests: Record<string, unknown>[] };
    assert.deepEqual(index.manifests, [
      {
        mediaType: OCI_MANIFEST,
        digest: signature.digest,
        size: signature.bytes.length,
        artifactType: 'application/vnd.example.signature',
        annotations: { 'org.example.kind': 'sig' },
      },
    ]);
  });

  it('filters by artifactType and says so', async () => {
    const match = await call(
      'GET',
      `/v2/${repo}/referrers/${subject.digest}?artifactType=application/vnd.example.signature`,
    );
    assert.equal(match.headers.get('oci-filters-applied'), 'artifactType');
    assert.equal((JSON.parse(match.text) as { manifests: unknown[] }).manifests.length, 1);
    const none = await call('GET', `/v2/${repo}/referrers/${subject.digest}?artifactType=application/sbom`);
    assert.equal((JSON.parse(none.text) as { manifests: unknown[] }).manifests.length, 0);
  });

  it('an unknown subject has an empty list; an invalid digest is 400', async () => {
    const empty = await call('GET', `/v2/${repo}/referrers/${sha256('nothing')}`);
    assert.equal(empty.status, 200);
    assert.deepEqual((JSON.parse(empty.text) as { manifests: unknown[] }).manifests, []);
    const bad = await call('GET', `/v2/${repo}/referrers/sha256:zz`);
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'DIGEST_INVALID');
  });

  it('deleting the referrer removes it from the list', async () => {
    assert.equal((await call('DELETE', `/v2/${repo}/manifests/${signature.digest}`)).status, 202);
    const response = await call('GET', `/v2/${repo}/referrers/${subject.digest}`);
    assert.deepEqual((JSON.parse(response.text) as { manifests: unknown[] }).manifests, []);
  });
});
