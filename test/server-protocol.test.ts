/**
 * Protocol edges of `pullsafe serve` that clients and the OCI conformance suite meet: hostile manifest
 * JSON, byte ranges as RFC 9110 reads them (also through curl), and references that cannot name anything.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { makeImage, pushImage, serializeManifest } from './helpers/fixtures.ts';
import { OCI_MANIFEST, pushBlob, request, type HttpResponse } from './helpers/http.ts';
import { requirePeer } from './helpers/peers.ts';
import { startPullsafe, type TestRegistry } from './helpers/pullsafe.ts';

const run = promisify(execFile);

let registry: TestRegistry;

before(async () => {
  registry = await startPullsafe();
});

after(async () => {
  await registry.stop();
});

function errorCode(response: HttpResponse): string | undefined {
  return response.json<{ errors: { code: string }[] }>().errors[0]?.code;
}

/** 1.9 million nested arrays, 3.6 MiB: under the manifest size limit, and seconds of work for JSON.parse. */
const deepManifest = Buffer.from(`${'['.repeat(1_900_000)}${']'.repeat(1_900_000)}`);

describe('manifest JSON nesting', () => {
  it('refuses a deeply nested manifest quickly with MANIFEST_INVALID', async () => {
    const started = performance.now();
    const response = await request(`${registry.url}/v2/deep/app/manifests/latest`, {
      method: 'PUT',
      headers: { 'Content-Type': OCI_MANIFEST },
      body: deepManifest,
    });
    const elapsed = performance.now() - started;
    assert.equal(response.status, 400, response.text());
    assert.equal(errorCode(response), 'MANIFEST_INVALID');
    assert.match(response.text(), /nests deeper than 64 levels/);
    assert.ok(elapsed < 2_000, `answered in ${Math.round(elapsed)} ms`);
  });

  it('keeps answering other clients while several such manifests arrive', async () => {
    const uploads = Array.from({ length: 8 }, (_, index) =>
      request(`${registry.url}/v2/deep/app/manifests/t${index}`, {
        method: 'PUT',
        headers: { 'Content-Type': OCI_MANIFEST },
        body: deepManifest,
      }),
    );
    let finished = false;
    const all = Promise.all(uploads).finally(() => (finished = true));
    // Probe /v2/ one request after the other for as long as the uploads run (bounded by count and time).
    const latencies: number[] = [];
    const deadline = Date.now() + 60_000;
    for (let probe = 0; probe < 2_000 && !finished && Date.now() < deadline; probe++) {
      const started = performance.now();
      const response = await request(`${registry.url}/v2/`, { timeoutMs: 30_000 });
      latencies.push(performance.now() - started);
      assert.equal(response.status, 200);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const response of await all) {
      assert.equal(response.status, 400);
      assert.equal(errorCode(response), 'MANIFEST_INVALID');
    }
    assert.ok(latencies.length > 0, 'probed while the uploads were in flight');
    const slowest = Math.max(...latencies);
    assert.ok(slowest < 500, `GET /v2/ took up to ${Math.round(slowest)} ms (${latencies.length} probes)`);
  });

  it('still accepts an ordinary manifest with annotations full of brackets and quotes', async () => {
    const image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'annotated',
    });
    const [manifest] = image.manifests;
    assert.ok(manifest);
    const annotated = JSON.parse(manifest.bytes.toString('utf8')) as Record<string, unknown>;
    annotated.annotations = {
      'org.opencontainers.image.description': 'brackets [[[{{{ and "quotes" \\ and ]]]}}}',
      'org.example.json': JSON.stringify({ nested: [[[[{ deep: [1, [2, [3]]] }]]]] }),
    };
    const bytes = serializeManifest(annotated);
    await pushImage(registry.url, 'deep/ok', 'base', image);
    const put = await request(`${registry.url}/v2/deep/ok/manifests/annotated`, {
      method: 'PUT',
      headers: { 'Content-Type': OCI_MANIFEST },
      body: bytes,
    });
    assert.equal(put.status, 201, put.text());
    const get = await request(`${registry.url}/v2/deep/ok/manifests/annotated`, {
      headers: { Accept: OCI_MANIFEST },
    });
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, bytes);
  });
});

describe('byte ranges', () => {
  const data = Buffer.from(Array.from({ length: 1000 }, (_, index) => index % 251));
  let blobUrl: string;

  before(async () => {
    const digest = await pushBlob(registry.url, 'ranges/app', data);
    blobUrl = `${registry.url}/v2/ranges/app/blobs/${digest}`;
  });

  it('answers an unsatisfiable range with 416, RANGE_INVALID and Content-Range: bytes */SIZE', async () => {
    for (const range of [
      'bytes=1000-',
      'bytes=5000-6000',
      'bytes=500-100',
      'bytes=-0',
      'bytes=-',
      'bytes=x-1',
    ]) {
      for (const method of ['GET', 'HEAD']) {
        const response = await request(blobUrl, { method, headers: { Range: range } });
        assert.equal(response.status, 416, `${method} ${range}`);
        assert.equal(response.headers['content-range'], 'bytes */1000', `${method} ${range}`);
        if (method === 'GET') assert.equal(errorCode(response), 'RANGE_INVALID');
      }
    }
  });

  it('ignores a Range with a unit other than bytes and serves the whole blob', async () => {
    for (const range of ['items=0-5', 'none', '0-5', 'pages=1']) {
      const response = await request(blobUrl, { headers: { Range: range } });
      assert.equal(response.status, 200, range);
      assert.equal(response.headers['content-range'], undefined, range);
      assert.deepEqual(response.body, data, range);
    }
  });

  it('reads the unit case-insensitively and serves several ranges whole', async () => {
    const upper = await request(blobUrl, { headers: { Range: 'Bytes=10-19' } });
    assert.equal(upper.status, 206);
    assert.equal(upper.headers['content-range'], 'bytes 10-19/1000');
    assert.deepEqual(upper.body, data.subarray(10, 20));
    for (const range of ['bytes=0-1,5-6', 'bytes=0-1, 2000-3000']) {
      const multi = await request(blobUrl, { headers: { Range: range } });
      assert.equal(multi.status, 200, range);
      assert.deepEqual(multi.body, data, range);
    }
  });

  it('behaves the same through curl', async () => {
    const curl = requirePeer('curl', 'curl');
    const fetchWith = async (...args: string[]) => {
      const { stdout } = await run(
        curl,
        ['-sS', '--max-time', '30', '-D', '-', '-o', '/dev/null', ...args, blobUrl],
        {
          timeout: 60_000,
        },
      );
      const headers = stdout.split('\r\n');
      return {
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers[0] ?? '')?.[1]),
        header: (name: string) =>
          headers
            .find((line) => line.toLowerCase().startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim(),
      };
    };
    const part = await fetchWith('-r', '100-199');
    assert.equal(part.status, 206);
    assert.equal(part.header('content-range'), 'bytes 100-199/1000');
    const beyond = await fetchWith('-r', '1000-');
    assert.equal(beyond.status, 416);
    assert.equal(beyond.header('content-range'), 'bytes */1000');
    const items = await fetchWith('-H', 'Range: items=0-5');
    assert.equal(items.status, 200);
    assert.equal(items.header('content-length'), '1000');
    const { stdout: body } = await run(curl, ['-sS', '--max-time', '30', '-H', 'Range: items=0-5', blobUrl], {
      encoding: 'buffer',
      timeout: 60_000,
    });
    assert.deepEqual(body, data);
  });
});

describe('references that cannot name a manifest', () => {
  let manifest: Buffer;

  before(async () => {
    const image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'references',
    });
    await pushImage(registry.url, 'refs/app', 'latest', image);
    manifest = image.manifests[0]!.bytes;
  });

  const url = (reference: string) => `${registry.url}/v2/refs/app/manifests/${reference}`;

  it('answers GET and HEAD of an invalid tag with 404 MANIFEST_UNKNOWN, as the conformance suite expects', async () => {
    for (const reference of ['.INVALID_MANIFEST_NAME', '-dash', 't'.repeat(129), 'a%2Fb']) {
      const get = await request(url(reference));
      assert.equal(get.status, 404, `GET ${reference}`);
      assert.equal(errorCode(get), 'MANIFEST_UNKNOWN', `GET ${reference}`);
      const head = await request(url(reference), { method: 'HEAD' });
      assert.equal(head.status, 404, `HEAD ${reference}`);
      assert.equal(head.body.length, 0);
    }
  });

  it('refuses PUT and DELETE of an invalid tag with 400 TAG_INVALID', async () => {
    const put = await request(url('.INVALID_MANIFEST_NAME'), {
      method: 'PUT',
      headers: { 'Content-Type': OCI_MANIFEST },
      body: manifest,
    });
    assert.equal(put.status, 400);
    assert.equal(errorCode(put), 'TAG_INVALID');
    const deleted = await request(url('.INVALID_MANIFEST_NAME'), { method: 'DELETE' });
    assert.equal(deleted.status, 400);
    assert.equal(errorCode(deleted), 'TAG_INVALID');
    assert.equal((await request(url('latest'))).status, 200, 'nothing else changed');
  });

  it('answers a malformed digest with 400 DIGEST_INVALID, and an unknown algorithm with 400 UNSUPPORTED', async () => {
    for (const reference of ['sha256:zz', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`]) {
      const get = await request(url(reference));
      assert.equal(get.status, 400, `GET ${reference}`);
      assert.equal(errorCode(get), 'DIGEST_INVALID', `GET ${reference}`);
      assert.equal((await request(url(reference), { method: 'HEAD' })).status, 400, `HEAD ${reference}`);
    }
    for (const reference of [`md5:${'a'.repeat(32)}`, 'latest:1']) {
      const get = await request(url(reference));
      assert.equal(get.status, 400, reference);
      assert.equal(errorCode(get), 'UNSUPPORTED', reference);
    }
  });
});
