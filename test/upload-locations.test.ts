/**
 * `pullsafe serve --secret-file`: replicas on one S3 bucket (s3rver) that share the key take each other's
 * upload locations; one with another key refuses them before asking the storage; skopeo pushes through
 * signed locations; and the mistakes a user makes with the key are configuration errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { makeImage, writeOciLayout } from './helpers/fixtures.ts';
import { request, sha256 } from './helpers/http.ts';
import { skopeoOk } from './helpers/peers.ts';
import { startS3Proxy, type S3Proxy } from './helpers/s3-proxy.ts';
import { startS3rver, type S3rverPeer } from './helpers/s3rver.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

let s3rver: S3rverPeer;
let work: string;
const servers: ServeProcess[] = [];

async function keyFile(name: string, ...keys: string[]): Promise<string> {
  const file = join(work, name);
  await writeFile(file, `# upload signing keys\n${keys.join('\n')}\n`, { mode: 0o600 });
  return file;
}

async function serve(args: string[]): Promise<ServeProcess> {
  const server = await startServeProcess(args);
  servers.push(server);
  return server;
}

before(async () => {
  s3rver = await startS3rver();
  Object.assign(process.env, s3rver.env);
  work = await makeTempDir('pullsafe-upload-keys-');
});

after(async () => {
  for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await s3rver?.stop();
  if (work) await removeTempDir(work);
});

describe('serve --secret-file', () => {
  it('replicas sharing the key continue each other’s uploads; another key is refused before the storage', async () => {
    const storage = `s3://${s3rver.bucket}/keys-${randomBytes(4).toString('hex')}`;
    const shared = await keyFile('shared.key', randomBytes(32).toString('base64'));
    const a = await serve(['--storage', storage, '--secret-file', shared]);
    const b = await serve(['--storage', storage, '--secret-file', shared]);
    const data = randomBytes(3 * 1024 * 1024);

    const started = await request(`${a.url}/v2/team/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'Content-Length': 0 },
    });
    assert.equal(started.status, 202);
    const location = String(started.headers.location);
    assert.match(location, /^\/v2\/team\/app\/blobs\/uploads\/[0-9a-f-]{36}\?_sig=[\w-]{43}$/);

    // The first half on B, through A's location.
    const half = 1024 * 1024 + 7;
    const patched = await request(`${b.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${half - 1}` },
      body: data.subarray(0, half),
    });
    assert.equal(patched.status, 202);
    const next = String(patched.headers.location);
    assert.equal(next, location, 'every replica signs the same location');

    // Without the signature, or with a replica on another key, the upload is unknown: nothing reached S3.
    const bare = location.split('?')[0]!;
    const proxy: S3Proxy = await startS3Proxy(s3rver.endpoint);
    const endpoint = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint;
    let stranger: ServeProcess;
    try {
      const other = await keyFile('other.key', randomBytes(32).toString('base64'));
      stranger = await serve(['--storage', storage, '--secret-file', other]);
    } finally {
      process.env.AWS_ENDPOINT_URL_S3 = endpoint;
    }
    try {
      proxy.methods.clear();
      for (const [server, path] of [
        [a, bare],
        [stranger, location],
      ] as const) {
        const refused = await request(`${server.url}${path}`, { method: 'GET' });
        assert.equal(refused.status, 404);
        const body = JSON.parse(refused.body.toString()) as { errors: { code: string; message: string }[] };
        assert.equal(body.errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
        assert.match(body.errors[0]!.message, /not signed with this registry's key/);
      }
      assert.equal(proxy.requests(), 0, 'a refused location costs no S3 request');
    } finally {
      proxy.stop();
    }

    // The rest on A; the blob is whole and readable from both.
    const target = new URL(`${a.url}${next}`);
    target.searchParams.set('digest', sha256(data));
    const done = await request(target, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${half}-${data.length - 1}` },
      body: data.subarray(half),
    });
    assert.equal(done.status, 201, done.body.toString());
    for (const server of [a, b]) {
      const got = await request(`${server.url}/v2/team/app/blobs/${sha256(data)}`);
      assert.equal(sha256(got.body), sha256(data));
    }
  });

  it('skopeo pushes through signed locations; the key may come from PULLSAFE_SECRET; a rotated key still verifies', async () => {
    const storage = `s3://${s3rver.bucket}/keys-${randomBytes(4).toString('hex')}`;
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64');
    const image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'upload-keys',
      layers: 2,
      layerSize: 300_000,
    });
    await writeOciLayout(join(work, 'image'), image, 'v1');
    process.env.PULLSAFE_SECRET = oldKey;
    let old: ServeProcess;
    try {
      old = await serve(['--storage', storage]);
    } finally {
      delete process.env.PULLSAFE_SECRET;
    }
    const host = new URL(old.url).host;
    await skopeoOk([
      'copy',
      '--dest-tls-verify=false',
      `oci:${join(work, 'image')}:v1`,
      `docker://${host}/sk/app:v1`,
    ]);
    const started = await request(`${old.url}/v2/sk/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'Content-Length': 0 },
    });
    const location = String(started.headers.location);

    // After rotation: new locations use the new key, the old one's uploads go on.
    const rotated = await serve([
      '--storage',
      storage,
      '--secret-file',
      await keyFile('rotated.key', newKey, oldKey),
    ]);
    const status = await request(`${rotated.url}${location}`);
    assert.equal(status.status, 204);
    const fresh = await request(`${rotated.url}/v2/sk/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'Content-Length': 0 },
    });
    assert.notEqual(String(fresh.headers.location).split('_sig=')[1], location.split('_sig=')[1]);
  });

  it('a missing file, an empty one or a short key stops serve with what is wrong', async () => {
    const storage = join(work, 'fs');
    const cases: [string, RegExp][] = [
      [join(work, 'no-such.key'), /cannot read secretFile .*no-such\.key/],
      [await keyFile('empty.key'), /holds no key/],
      [await keyFile('short.key', 'too short'), /is 9 characters; keys need at least 32/],
    ];
    for (const [file, message] of cases) {
      const result = await runCli([
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--storage',
        storage,
        '--secret-file',
        file,
      ]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.match(result.stderr, /openssl rand -base64 32/);
    }
  });
});
