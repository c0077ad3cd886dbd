/**
 * `pullsafe serve --storage s3://…` as a user runs it, against s3rver through AWS_ENDPOINT_URL_S3: skopeo
 * round trips byte-exact (layers over one multipart part), a chunked upload continued by a restarted
 * server, `pullsafe gc` and `pullsafe fsck` on the bucket, and the mistakes a user makes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { runCli, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { startFakeUpstream } from './helpers/fake-upstream.ts';
import { makeImage, writeOciLayout, type TestImage } from './helpers/fixtures.ts';
import { getBlob, pushBlob, request, sha256 } from './helpers/http.ts';
import { skopeoOk } from './helpers/peers.ts';
import { startS3Proxy, type S3Proxy } from './helpers/s3-proxy.ts';
import { startS3rver, type S3rverPeer } from './helpers/s3rver.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const insecure = ['--src-tls-verify=false', '--dest-tls-verify=false'];

let s3rver: S3rverPeer;
let work: string;
let image: TestImage;
const servers: ServeProcess[] = [];

/** A fresh folder in the bucket, so each test starts from an empty storage. */
function storageUrl(): string {
  return `s3://${s3rver.bucket}/cli-${randomBytes(4).toString('hex')}`;
}

async function serve(storage: string, args: string[] = []): Promise<ServeProcess> {
  const server = await startServeProcess(['--storage', storage, ...args]);
  servers.push(server);
  return server;
}

/** serve on a fresh storage, reaching s3rver through `proxy`. */
async function serveThrough(proxy: S3Proxy): Promise<ServeProcess> {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
  try {
    return await serve(storageUrl());
  } finally {
    process.env.AWS_ENDPOINT_URL_S3 = endpoint;
  }
}

/** skopeo pushes the test image (both platforms) into `repository:v1` of `server`. */
async function pushFixture(server: ServeProcess, repository: string): Promise<void> {
  const host = new URL(server.url).host;
  await skopeoOk([
    'copy',
    '--all',
    ...insecure,
    `oci:${join(work, 'src')}:v1`,
    `docker://${host}/${repository}:v1`,
  ]);
}

async function stop(server: ServeProcess): Promise<void> {
  server.child.kill('SIGTERM');
  await server.exited;
}

before(async () => {
  s3rver = await startS3rver();
  // Children (serve, gc, fsck) reach s3rver the way a user points the AWS SDK at an S3-compatible service.
  Object.assign(process.env, s3rver.env);
  work = await makeTempDir('pullsafe-s3-cli-');
  image = await makeImage({
    format: 'oci',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
    seed: 's3-cli',
    layers: 2,
    // Over one 8 MiB part: the layers go through a multipart upload.
    layerSize: 9 * 1024 * 1024,
  });
  await writeOciLayout(join(work, 'src'), image, 'v1');
});

after(async () => {
  for (const server of servers) {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
  await s3rver?.stop();
  if (work) await removeTempDir(work);
});

describe('pullsafe serve on S3 storage', () => {
  it('skopeo copy --all round trips byte-exact, and a restarted server serves the same', async () => {
    const storage = storageUrl();
    const first = await serve(storage);
    await pushFixture(first, 'rt/app');
    await stop(first);

    const second = await serve(storage);
    const again = new URL(second.url).host;
    const out = join(work, 'out');
    await skopeoOk(['copy', '--all', ...insecure, `docker://${again}/rt/app:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]!.digest, image.index.digest);
    const expected = new Map<string, Buffer>();
    expected.set(image.index.digest, image.index.bytes);
    for (const manifest of image.manifests) {
      expected.set(manifest.digest, manifest.bytes);
      expected.set(manifest.config.digest, manifest.config.bytes);
      for (const layer of manifest.layers) expected.set(layer.digest, layer.data);
    }
    const written = await readdir(join(out, 'blobs', 'sha256'));
    assert.equal(written.length, expected.size);
    for (const [digest, bytes] of expected) {
      const copy = await readFile(join(out, 'blobs', 'sha256', digest.slice('sha256:'.length)));
      assert.ok(copy.equals(bytes), `${digest} byte-exact`);
    }
    const layer = image.manifests[0]!.layers[0]!;
    const ranged = await request(`${second.url}/v2/rt/app/blobs/${layer.digest}`, {
      headers: { Range: 'bytes=8388600-8388700' },
    });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.body.equals(layer.data.subarray(8388600, 8388701)), 'a range across the first part');
    await stop(second);
  });

  it('with s3.redirect, blob GETs answer 307 to a presigned S3 URL: skopeo pulls through it byte-exact, ranges go to S3', async () => {
    const storage = storageUrl();
    const config = join(work, 'redirect.yaml');
    await writeFile(config, 's3:\n  redirect: true\n');
    const server = await serve(storage, ['--config', config]);
    await pushFixture(server, 'redirect/app');
    const layer = image.manifests[0]!.layers[0]!;
    const answer = await request(`${server.url}/v2/redirect/app/blobs/${layer.digest}`);
    assert.equal(answer.status, 307);
    assert.equal(answer.body.length, 0, 'no bytes from serve');
    const location = new URL(String(answer.headers.location));
    assert.equal(location.origin, new URL(s3rver.endpoint).origin, 'the bytes come from S3');
    assert.ok(location.searchParams.get('X-Amz-Signature'), 'presigned');
    assert.equal(location.searchParams.get('X-Amz-Expires'), '1200');
    const direct = await request(location.href);
    assert.equal(direct.status, 200);
    assert.equal(sha256(direct.body), layer.digest);
    const ranged = await request(location.href, { headers: { Range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.body.equals(layer.data.subarray(100, 200)), 'a range goes to S3 with the URL');
    // HEAD stays with serve: a client learns size and digest without a route to S3.
    const head = await request(`${server.url}/v2/redirect/app/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers['content-length']), layer.data.length);
    // Access control comes first: a repository that does not hold the blob gets no URL.
    const elsewhere = await request(`${server.url}/v2/other/app/blobs/${layer.digest}`);
    assert.equal(elsewhere.status, 404);

    const out = join(work, 'redirected');
    const host = new URL(server.url).host;
    await skopeoOk(['copy', '--all', ...insecure, `docker://${host}/redirect/app:v1`, `oci:${out}:v1`]);
    for (const manifest of image.manifests) {
      for (const blob of [manifest.config, ...manifest.layers]) {
        const bytes = 'data' in blob ? blob.data : (blob as { bytes: Buffer }).bytes;
        const copy = await readFile(join(out, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)));
        assert.ok(copy.equals(bytes), `${blob.digest} byte-exact through the redirect`);
      }
    }
    await stop(server);
  });

  it('a repeated pull costs one S3 GET for the tag and one per blob, and no HEAD', async () => {
    const counter = await startS3Proxy(s3rver.endpoint);
    const server = await serveThrough(counter);
    try {
      await pushFixture(server, 'count/app');
      const manifest = image.manifests[0]!;
      const pull = async (): Promise<void> => {
        const accept = { Accept: 'application/vnd.oci.image.index.v1+json' };
        const index = await request(`${server.url}/v2/count/app/manifests/v1`, { headers: accept });
        assert.equal(index.status, 200);
        const one = await request(`${server.url}/v2/count/app/manifests/${manifest.digest}`, {
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
        });
        assert.equal(one.status, 200);
        for (const blob of [manifest.config.bytes, ...manifest.layers.map((layer) => layer.data)]) {
          const got = await request(`${server.url}/v2/count/app/blobs/${sha256(blob)}`);
          assert.equal(got.status, 200);
          assert.equal(sha256(got.body), sha256(blob));
        }
      };
      await pull();
      counter.methods.clear();
      await pull();
      const blobs = 1 + manifest.layers.length;
      assert.deepEqual([...counter.methods], [['GET', 1 + blobs]], 'the tag, then each blob once');
    } finally {
      await stop(server);
      counter.stop();
    }
  });

  it('outlives clients that hang up before or during a blob, and leaves no S3 connection behind', async () => {
    const counter = await startS3Proxy(s3rver.endpoint);
    const server = await serveThrough(counter);
    try {
      const data = randomBytes(12 * 1024 * 1024);
      const digest = await pushBlob(server.url, 'cut/app', data);
      const before = counter.openConnections();
      const { hostname, port } = new URL(server.url);
      // Half hang up as soon as the answer starts, half before it: the send, and the GET never sent on.
      const hangUp = (early: boolean): Promise<void> =>
        new Promise((resolve) => {
          const socket = connect(Number(port), hostname, () => {
            socket.write(`GET /v2/cut/app/blobs/${digest} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
            if (early) setImmediate(() => socket.destroy());
          });
          socket.once('data', () => socket.resetAndDestroy());
          socket.once('close', () => resolve());
          socket.on('error', () => undefined);
        });
      for (let round = 0; round < 3; round++) {
        await Promise.all(Array.from({ length: 16 }, (_, index) => hangUp(index % 2 === 0)));
      }
      const whole = await request(`${server.url}/v2/cut/app/blobs/${digest}`);
      assert.equal(whole.status, 200, 'still serving');
      assert.equal(sha256(whole.body), digest);
      // Idle kept-alive reads close after 4 s: then only what was open before is left.
      for (let wait = 0; wait < 80 && counter.openConnections() > before + 1; wait++) await sleep(100);
      assert.ok(
        counter.openConnections() <= before + 1,
        `${counter.openConnections()} connections to S3 open, ${before} before`,
      );
      assert.equal(server.child.exitCode, null, 'serve is alive');
    } finally {
      await stop(server);
      counter.stop();
    }
  });

  it('refuses s3.redirect on a filesystem storage, naming the setting', async () => {
    const config = join(work, 'redirect-fs.yaml');
    await writeFile(config, 's3:\n  redirect: true\n');
    const result = await runCli([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--storage',
      join(work, 'fs'),
      '--config',
      config,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /s3\.redirect needs an s3:\/\/BUCKET\/PREFIX storage/);
  });

  it('a chunked upload goes on after the server is killed and started again', async () => {
    const storage = storageUrl();
    const data = randomBytes(11 * 1024 * 1024);
    const first = await serve(storage);
    const started = await request(`${first.url}/v2/chunked/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'Content-Length': 0 },
    });
    assert.equal(started.status, 202);
    const location = new URL(started.headers.location!, first.url);
    const cut = 9 * 1024 * 1024 + 12_345;
    const chunk = await request(new URL(location.pathname + location.search, first.url), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${cut - 1}` },
      body: data.subarray(0, cut),
    });
    assert.equal(chunk.status, 202, chunk.text());
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await serve(storage);
    const here = (path: URL): URL => new URL(path.pathname + path.search, second.url);
    const status = await request(here(location));
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, `0-${cut - 1}`, 'the bytes before the kill are there');
    const rest = await request(here(location), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${cut}-${data.length - 1}` },
      body: data.subarray(cut),
    });
    assert.equal(rest.status, 202, rest.text());
    const next = new URL(rest.headers.location!, second.url);
    next.searchParams.set('digest', sha256(data));
    const done = await request(here(next), { method: 'PUT', headers: { 'Content-Length': 0 } });
    assert.equal(done.status, 201, done.text());
    const blob = await getBlob(second.url, 'chunked/app', sha256(data));
    assert.equal(blob.status, 200);
    assert.ok(blob.body.equals(data), 'byte-exact');
    await stop(second);
  });
});

describe('the pull-through cache on S3 storage', () => {
  it('spools fills locally, stores them in the bucket, and fsck knows what is fetched on demand', async () => {
    const upstream = await startFakeUpstream({ auth: 'token' });
    try {
      const twoPlatforms = await makeImage({
        format: 'oci',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
        seed: 's3-cache',
      });
      for (const manifest of twoPlatforms.manifests) {
        upstream.addBlob('library/half', manifest.config.bytes);
        for (const layer of manifest.layers) upstream.addBlob('library/half', layer.data);
        upstream.addManifest('library/half', manifest.digest, manifest.mediaType, manifest.bytes);
      }
      upstream.addManifest('library/half', '1', twoPlatforms.index.mediaType, twoPlatforms.index.bytes);
      const storage = storageUrl();
      const server = await serve(storage, ['--proxy', `docker.io=${upstream.url}`]);
      const host = new URL(server.url).host;
      // One platform only: the other one's manifest and blobs are never fetched.
      await skopeoOk([
        'copy',
        '--override-arch',
        'amd64',
        ...insecure,
        `docker://${host}/docker.io/library/half:1`,
        `oci:${join(work, 'half')}:1`,
      ]);
      await stop(server);
      const layer = twoPlatforms.manifests[0]!.layers[0]!;
      const stored = await readFile(
        join(work, 'half', 'blobs', 'sha256', layer.digest.slice('sha256:'.length)),
      );
      assert.ok(stored.equals(layer.data));
      const fsck = await runCli(['fsck', '--storage', storage]);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
      assert.match(fsck.stdout, /not cached \(fetched on demand\)/);
      assert.match(fsck.stdout, /storage is consistent/);
    } finally {
      await upstream.close();
    }
  });
});

describe('pullsafe gc and fsck on S3 storage', () => {
  it('gc removes an unreferenced blob, fsck is clean, then finds a corrupted blob', async () => {
    const storage = storageUrl();
    const server = await serve(storage);
    await pushFixture(server, 'gc/app');
    const orphan = await pushBlob(server.url, 'gc/app', randomBytes(50_000));
    await stop(server);

    const gc = await runCli(['gc', '--storage', storage, '--min-age', '0', '--json']);
    assert.equal(gc.code, 0, gc.stderr);
    const report = JSON.parse(gc.stdout) as { blobsSwept: { digest: string }[]; blobsKept: number };
    assert.deepEqual(
      report.blobsSwept.map((blob) => blob.digest),
      [orphan],
    );
    assert.equal(
      report.blobsKept,
      1 + 2 * (1 + 1 + 2),
      'index, and per platform: manifest, config, 2 layers',
    );

    const clean = await runCli(['fsck', '--storage', storage]);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /storage is consistent/);

    const config = image.manifests[0]!.config.digest.slice('sha256:'.length);
    const client = new S3Client({
      endpoint: s3rver.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: s3rver.credentials,
    });
    const prefix = storage.slice(`s3://${s3rver.bucket}/`.length);
    await client.send(
      new PutObjectCommand({
        Bucket: s3rver.bucket,
        Key: `${prefix}/blobs/sha256/${config.slice(0, 2)}/${config}`,
        Body: Buffer.from('not the config'),
      }),
    );
    client.destroy();
    const corrupt = await runCli(['fsck', '--storage', storage]);
    assert.equal(corrupt.code, 1, corrupt.stdout + corrupt.stderr);
    assert.match(corrupt.stdout, new RegExp(`corrupt-blob: sha256:${config}`));
  });
});

describe('S3 storage: what a user gets wrong', () => {
  it('a bucket that does not exist stops serve at start with what is wrong', async () => {
    const result = await runCli(['serve', '--listen', '127.0.0.1:0', '--storage', 's3://no-such-bucket/x'], {
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 3, result.stderr);
    assert.match(
      result.stderr,
      /cannot open storage s3:\/\/no-such-bucket\/x: the bucket no-such-bucket does not exist/,
    );
  });

  it('a malformed storage URL or endpoint is a usage error naming it', async () => {
    const badBucket = await runCli(['serve', '--listen', '127.0.0.1:0', '--storage', 's3://Bad_Bucket/x']);
    assert.equal(badBucket.code, 2, badBucket.stderr);
    assert.match(badBucket.stderr, /"Bad_Bucket" is not an S3 bucket name/);
    const scheme = await runCli(['fsck', '--storage', 'gs://bucket/x']);
    assert.equal(scheme.code, 2, scheme.stderr);
    assert.match(scheme.stderr, /gs:\/\/ is not supported/);
    const endpoint = await runCli(['gc', '--storage', storageUrl()], {
      env: { AWS_ENDPOINT_URL_S3: 'ftp://127.0.0.1:1' },
    });
    assert.equal(endpoint.code, 2, endpoint.stderr);
    assert.match(
      endpoint.stderr,
      /AWS_ENDPOINT_URL_S3: "ftp:\/\/127.0.0.1:1" is not http\(s\):\/\/HOST\[:PORT\]/,
    );
  });

  it('an endpoint nobody answers on fails gc with the endpoint named, in bounded time', async () => {
    const started = Date.now();
    const result = await runCli(['gc', '--storage', storageUrl()], {
      env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' },
      timeoutMs: 60_000,
    });
    assert.equal(result.code, 3, result.stderr);
    assert.match(
      result.stderr,
      /cannot open storage s3:.*: cannot reach http:\/\/127\.0\.0\.1:9: connect ECONNREFUSED/,
    );
    assert.ok(Date.now() - started < 30_000);
  });
});
