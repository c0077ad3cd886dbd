/** The fake Docker Hub used by client, copy and cache tests: each promised behaviour, checked over HTTP. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { FAKE_SERVICE, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.ts';

const SCHEMA2 = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

async function call(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer;
    redirect?: 'manual' | 'follow' | 'error';
  } = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    redirect: init.redirect ?? 'manual',
    ...(init.body ? { body: init.body } : {}),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: Buffer.from(await response.arrayBuffer()),
  };
}

function errorCode(answer: Answer): string | undefined {
  return (JSON.parse(answer.body.toString()) as { errors: { code: string }[] }).errors[0]?.code;
}

/** Parses `Bearer k="v",...` into its parameters. */
function challengeParams(header: string | null): Record<string, string> {
  if (header === null || !header.startsWith('Bearer '))
    assert.fail(`expected a Bearer challenge, got ${header}`);
  const params: Record<string, string> = {};
  for (const m of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return params;
}

async function getToken(fake: FakeUpstream, scopes: string[], credentials?: string): Promise<string> {
  const url = new URL(`${fake.url}/token`);
  url.searchParams.set('service', FAKE_SERVICE);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const answer = await call(url.href, { headers: credentials ? { Authorization: credentials } : {} });
  assert.equal(answer.status, 200, answer.body.toString());
  return (JSON.parse(answer.body.toString()) as { token: string }).token;
}

/** A GET through node:http that keeps whatever arrived before the connection died. */
function rawGet(
  url: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => undefined);
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes: Buffer.concat(chunks),
          complete: res.complete,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** A small image: config, one layer, a manifest. */
function image(fake: FakeUpstream, repository: string, tag: string, seed: string) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer bytes of ${seed} `.repeat(20));
  const configDigest = fake.addBlob(repository, config);
  const layerDigest = fake.addBlob(repository, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: SCHEMA2,
      config: {
        mediaType: 'application/vnd.docker.container.image.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
          digest: layerDigest,
          size: layer.length,
        },
      ],
    }),
  );
  const digest = fake.addManifest(repository, tag, SCHEMA2, manifest);
  return { config, configDigest, layer, layerDigest, manifest, digest };
}

describe('token flow (Docker Hub style)', () => {
  let fake: FakeUpstream;
  let alpine: ReturnType<typeof image>;

  before(async () => {
    fake = await startFakeUpstream({ auth: 'token', users: { alice: 'alice-pw' } });
    alpine = image(fake, 'library/alpine', 'latest', 'alpine');
    image(fake, 'library/busybox', 'latest', 'busybox');
  });
  after(() => fake.close());

  it('challenges /v2/ with the realm and service but no scope', async () => {
    const answer = await call(`${fake.url}/v2/`);
    assert.equal(answer.status, 401);
    assert.equal(
      answer.headers.get('www-authenticate'),
      `Bearer realm="${fake.url}/token",service="fake.registry"`,
    );
    assert.equal(errorCode(answer), 'UNAUTHORIZED');
    assert.equal(answer.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('challenges repository endpoints with the pull scope, and push methods with pull,push', async () => {
    const pull = await call(`${fake.url}/v2/library/alpine/manifests/latest`);
    assert.equal(pull.status, 401);
    assert.deepEqual(challengeParams(pull.headers.get('www-authenticate')), {
      realm: `${fake.url}/token`,
      service: 'fake.registry',
      scope: 'repository:library/alpine:pull',
    });
    const push = await call(`${fake.url}/v2/library/alpine/blobs/uploads/`, { method: 'POST' });
    assert.equal(push.status, 401);
    assert.equal(
      challengeParams(push.headers.get('www-authenticate')).scope,
      'repository:library/alpine:pull,push',
    );
  });

  it('issues a token from the challenge and serves the manifest byte-exact with it', async () => {
    const challenge = challengeParams(
      (await call(`${fake.url}/v2/library/alpine/manifests/latest`)).headers.get('www-authenticate'),
    );
    const tokenUrl = new URL(challenge.realm!);
    tokenUrl.searchParams.set('service', challenge.service!);
    tokenUrl.searchParams.set('scope', challenge.scope!);
    const tokenAnswer = await call(tokenUrl.href);
    assert.equal(tokenAnswer.status, 200);
    const body = JSON.parse(tokenAnswer.body.toString()) as Record<string, unknown>;
    assert.equal(typeof body.token, 'string');
    assert.equal(body.access_token, body.token);
    assert.equal(body.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(body.issued_at as string)));
    const auth = { Authorization: `Bearer ${body.token as string}` };

    assert.equal((await call(`${fake.url}/v2/`, { headers: auth })).status, 200);
    const got = await call(`${fake.url}/v2/library/alpine/manifests/latest`, { headers: auth });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, alpine.manifest);
    assert.equal(got.headers.get('content-type'), SCHEMA2);
    assert.equal(got.headers.get('docker-content-digest'), alpine.digest);
    assert.equal(got.headers.get('content-length'), String(alpine.manifest.length));

    const head = await call(`${fake.url}/v2/library/alpine/manifests/${alpine.digest}`, {
      method: 'HEAD',
      headers: auth,
    });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.get('content-length'), String(alpine.manifest.length));
    assert.equal(head.headers.get('docker-content-digest'), alpine.digest);

    const blob = await call(`${fake.url}/v2/library/alpine/blobs/${alpine.layerDigest}`, { headers: auth });
    assert.equal(blob.status, 200);
    assert.deepEqual(blob.body, alpine.layer);

    const issued = fake.tokensIssued.at(-1)!;
    assert.deepEqual(issued, {
      scope: 'repository:library/alpine:pull',
      service: 'fake.registry',
      granted: ['repository:library/alpine:pull'],
    });
  });

  it('accepts several scope parameters in one token request', async () => {
    const token = await getToken(fake, ['repository:library/alpine:pull', 'repository:library/busybox:pull']);
    const auth = { Authorization: `Bearer ${token}` };
    assert.equal(
      (await call(`${fake.url}/v2/library/alpine/manifests/latest`, { headers: auth })).status,
      200,
    );
    assert.equal(
      (await call(`${fake.url}/v2/library/busybox/manifests/latest`, { headers: auth })).status,
      200,
    );
  });

  it('refuses a token that does not cover the repository or the action (insufficient_scope)', async () => {
    const token = await getToken(fake, ['repository:library/alpine:pull']);
    const other = await call(`${fake.url}/v2/library/busybox/manifests/latest`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(other.status, 401);
    const params = challengeParams(other.headers.get('www-authenticate'));
    assert.equal(params.scope, 'repository:library/busybox:pull');
    assert.equal(params.error, 'insufficient_scope');

    const anonymousPush = await getToken(fake, ['repository:library/alpine:pull,push']);
    assert.deepEqual(fake.tokensIssued.at(-1)!.granted, ['repository:library/alpine:pull']);
    const push = await call(`${fake.url}/v2/library/alpine/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${anonymousPush}` },
    });
    assert.equal(push.status, 401);
    assert.equal(challengeParams(push.headers.get('www-authenticate')).error, 'insufficient_scope');

    const userPush = await getToken(
      fake,
      ['repository:library/alpine:pull,push'],
      basic('alice', 'alice-pw'),
    );
    assert.deepEqual(fake.tokensIssued.at(-1), {
      scope: 'repository:library/alpine:pull,push',
      service: 'fake.registry',
      user: 'alice',
      granted: ['repository:library/alpine:pull', 'repository:library/alpine:push'],
    });
    const pushed = await call(`${fake.url}/v2/library/alpine/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${userPush}` },
    });
    assert.equal(pushed.status, 202);
  });

  it('rejects forged tokens, wrong passwords and a wrong service', async () => {
    const token = await getToken(fake, ['repository:library/alpine:pull']);
    const forged = `${token.split('.')[0]}.AAAA`;
    const answer = await call(`${fake.url}/v2/library/alpine/manifests/latest`, {
      headers: { Authorization: `Bearer ${forged}` },
    });
    assert.equal(answer.status, 401);
    assert.equal(challengeParams(answer.headers.get('www-authenticate')).error, 'invalid_token');

    const wrongPassword = await call(`${fake.url}/token?service=fake.registry&scope=repository:x:pull`, {
      headers: { Authorization: basic('alice', 'nope') },
    });
    assert.equal(wrongPassword.status, 401);
    const wrongService = await call(`${fake.url}/token?service=registry.docker.io&scope=repository:x:pull`);
    assert.equal(wrongService.status, 400);
  });

  it('does not let a 401 challenge or a HEAD consume a truncate fault', async () => {
    fake.inject({ match: { kind: 'blob' }, action: 'truncate' });
    const url = `${fake.url}/v2/library/alpine/blobs/${alpine.layerDigest}`;
    assert.equal((await call(url)).status, 401);
    const token = await getToken(fake, ['repository:library/alpine:pull']);
    assert.equal(
      (await call(url, { method: 'HEAD', headers: { Authorization: `Bearer ${token}` } })).status,
      200,
    );
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    await assert.rejects(response.arrayBuffer());
    assert.equal(fake.requests.at(-1)!.fault, 'truncate');
  });

  it('injects faults on the token endpoint', async () => {
    fake.inject({ match: { kind: 'token' }, action: { status: 503, retryAfter: 1 } });
    const failed = await call(`${fake.url}/token?service=fake.registry&scope=repository:library/alpine:pull`);
    assert.equal(failed.status, 503);
    assert.equal(failed.headers.get('retry-after'), '1');
    assert.equal(errorCode(failed), 'UNAVAILABLE');
    await getToken(fake, ['repository:library/alpine:pull']);
  });
});

describe('token flow without anonymous pull', () => {
  let fake: FakeUpstream;
  before(async () => {
    fake = await startFakeUpstream({ anonymousPull: false, users: { bob: 'bob-pw' } });
    image(fake, 'private/app', 'v1', 'app');
  });
  after(() => fake.close());

  it('issues anonymous tokens with no access, and full tokens with credentials', async () => {
    const anonymous = await getToken(fake, ['repository:private/app:pull']);
    assert.deepEqual(fake.tokensIssued.at(-1)!.granted, []);
    const refused = await call(`${fake.url}/v2/private/app/manifests/v1`, {
      headers: { Authorization: `Bearer ${anonymous}` },
    });
    assert.equal(refused.status, 401);
    assert.equal(challengeParams(refused.headers.get('www-authenticate')).error, 'insufficient_scope');

    const token = await getToken(fake, ['repository:private/app:pull'], basic('bob', 'bob-pw'));
    assert.equal(fake.tokensIssued.at(-1)!.user, 'bob');
    const answer = await call(`${fake.url}/v2/private/app/manifests/v1`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(answer.status, 200);
  });
});

describe('token expiry', () => {
  let fake: FakeUpstream;
  before(async () => {
    fake = await startFakeUpstream({ tokenTtlSeconds: 1 });
    image(fake, 'library/alpine', 'latest', 'alpine');
  });
  after(() => fake.close());

  it('reports the TTL and refuses the token once it has expired', async () => {
    const answer = await call(`${fake.url}/token?service=fake.registry&scope=repository:library/alpine:pull`);
    const body = JSON.parse(answer.body.toString()) as { token: string; expires_in: number };
    assert.equal(body.expires_in, 1);
    const auth = { Authorization: `Bearer ${body.token}` };
    const url = `${fake.url}/v2/library/alpine/manifests/latest`;
    assert.equal((await call(url, { headers: auth })).status, 200);
    await delay(1100);
    const expired = await call(url, { headers: auth });
    assert.equal(expired.status, 401);
    const params = challengeParams(expired.headers.get('www-authenticate'));
    assert.equal(params.error, 'invalid_token');
    assert.equal(params.scope, 'repository:library/alpine:pull');
  });
});

describe('basic auth mode', () => {
  let fake: FakeUpstream;
  before(async () => {
    fake = await startFakeUpstream({ auth: 'basic', users: { carol: 'carol-pw' } });
    image(fake, 'team/app', 'v1', 'app');
  });
  after(() => fake.close());

  it('challenges with Basic and accepts only the right password', async () => {
    const none = await call(`${fake.url}/v2/`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="fake.registry"');
    const wrong = await call(`${fake.url}/v2/team/app/manifests/v1`, {
      headers: { Authorization: basic('carol', 'bad') },
    });
    assert.equal(wrong.status, 401);
    const right = await call(`${fake.url}/v2/team/app/manifests/v1`, {
      headers: { Authorization: basic('carol', 'carol-pw') },
    });
    assert.equal(right.status, 200);
    assert.equal((await call(`${fake.url}/token?service=fake.registry`)).status, 404);
  });
});

describe('read endpoints', () => {
  let fake: FakeUpstream;
  let app: ReturnType<typeof image>;
  before(async () => {
    fake = await startFakeUpstream({ auth: 'none' });
    app = image(fake, 'acme/app', 'v1', 'app');
  });
  after(() => fake.close());

  it('serves manifests by tag and by digest, as stored, whatever the Accept header says', async () => {
    const byTag = await call(`${fake.url}/v2/acme/app/manifests/v1`, { headers: { Accept: OCI_MANIFEST } });
    assert.equal(byTag.status, 200);
    assert.equal(byTag.headers.get('content-type'), SCHEMA2);
    const byDigest = await call(`${fake.url}/v2/acme/app/manifests/${app.digest}`);
    assert.deepEqual(byDigest.body, app.manifest);
    assert.equal(fake.getManifest('acme/app', 'v1')?.digest, app.digest);
  });

  it('keeps a digest reference honest in addManifest', () => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    assert.equal(fake.addManifest('acme/app', sha256(bytes), OCI_MANIFEST, bytes), sha256(bytes));
    assert.throws(() => fake.addManifest('acme/app', sha256('other'), OCI_MANIFEST, bytes));
  });

  it('answers with distribution error bodies', async () => {
    const missingTag = await call(`${fake.url}/v2/acme/app/manifests/nope`);
    assert.equal(missingTag.status, 404);
    assert.equal(errorCode(missingTag), 'MANIFEST_UNKNOWN');
    const missingRepo = await call(`${fake.url}/v2/acme/none/manifests/v1`);
    assert.equal(missingRepo.status, 404);
    assert.equal(errorCode(missingRepo), 'NAME_UNKNOWN');
    const missingBlob = await call(`${fake.url}/v2/acme/app/blobs/${sha256('absent')}`);
    assert.equal(missingBlob.status, 404);
    assert.equal(errorCode(missingBlob), 'BLOB_UNKNOWN');
    const badDigest = await call(`${fake.url}/v2/acme/app/blobs/sha256:abc`);
    assert.equal(badDigest.status, 400);
    assert.equal(errorCode(badDigest), 'DIGEST_INVALID');
    const badName = await call(`${fake.url}/v2/Acme/App/manifests/v1`);
    assert.equal(errorCode(badName), 'NAME_INVALID');
  });

  it('serves blobs with HEAD and byte ranges', async () => {
    const url = `${fake.url}/v2/acme/app/blobs/${app.layerDigest}`;
    const head = await call(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(app.layer.length));
    assert.equal(head.headers.get('docker-content-digest'), app.layerDigest);
    const part = await call(url, { headers: { Range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${app.layer.length}`);
    assert.deepEqual(part.body, app.layer.subarray(10, 20));
    const rest = await call(url, { headers: { Range: 'bytes=100-' } });
    assert.deepEqual(rest.body, app.layer.subarray(100));
    const suffix = await call(url, { headers: { Range: 'bytes=-5' } });
    assert.deepEqual(suffix.body, app.layer.subarray(-5));
    const beyond = await call(url, { headers: { Range: `bytes=${app.layer.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${app.layer.length}`);
  });

  it('pages tags/list with n and last, and Link headers', async () => {
    for (const tag of ['v2', 'v3', 'v4', 'v5', 'latest'])
      fake.addManifest('acme/app', tag, SCHEMA2, app.manifest);
    const seen: string[] = [];
    let next: string | undefined = `/v2/acme/app/tags/list?n=2`;
    for (let page = 0; next && page < 10; page++) {
      const answer = await call(`${fake.url}${next}`);
      assert.equal(answer.status, 200);
      const body = JSON.parse(answer.body.toString()) as { name: string; tags: string[] };
      assert.equal(body.name, 'acme/app');
      assert.ok(body.tags.length <= 2);
      seen.push(...body.tags);
      next = /^<([^>]+)>; rel="next"$/.exec(answer.headers.get('link') ?? '')?.[1];
    }
    assert.deepEqual(seen, ['latest', 'v1', 'v2', 'v3', 'v4', 'v5']);
    const all = await call(`${fake.url}/v2/acme/app/tags/list`);
    assert.equal(all.headers.get('link'), null);
    assert.deepEqual((JSON.parse(all.body.toString()) as { tags: string[] }).tags, seen);
    const after = await call(`${fake.url}/v2/acme/app/tags/list?last=v3`);
    assert.deepEqual((JSON.parse(after.body.toString()) as { tags: string[] }).tags, ['v4', 'v5']);
    assert.equal(errorCode(await call(`${fake.url}/v2/acme/nothing/tags/list`)), 'NAME_UNKNOWN');
  });

  it('lists referrers as an OCI index, added directly or through a subject, filtered by artifactType', async () => {
    fake.addReferrer('acme/app', app.digest, {
      mediaType: OCI_MANIFEST,
      digest: sha256('sbom'),
      size: 123,
      artifactType: 'application/spdx+json',
    });
    const signature = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
        layers: [],
        subject: { mediaType: SCHEMA2, digest: app.digest, size: app.manifest.length },
      }),
    );
    const signatureDigest = fake.addManifest('acme/app', sha256(signature), OCI_MANIFEST, signature);
    const index = await call(`${fake.url}/v2/acme/app/referrers/${app.digest}`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), OCI_INDEX);
    const body = JSON.parse(index.body.toString()) as { mediaType: string; manifests: { digest: string }[] };
    assert.equal(body.mediaType, OCI_INDEX);
    assert.deepEqual(
      body.manifests.map((m) => m.digest),
      [sha256('sbom'), signatureDigest],
    );
    const filtered = await call(
      `${fake.url}/v2/acme/app/referrers/${app.digest}?artifactType=application/spdx%2Bjson`,
    );
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(
      (JSON.parse(filtered.body.toString()) as { manifests: { digest: string }[] }).manifests.map(
        (m) => m.digest,
      ),
      [sha256('sbom')],
    );
    const none = await call(`${fake.url}/v2/acme/app/referrers/${sha256('nothing')}`);
    assert.deepEqual((JSON.parse(none.body.toString()) as { manifests: unknown[] }).manifests, []);
  });
});

describe('rate limit', () => {
  it('counts manifest GETs (not HEADs), answers 429 with Retry-After past the limit', async () => {
    const fake = await startFakeUpstream({ auth: 'none', rateLimit: { limit: 3, windowSeconds: 600 } });
    try {
      image(fake, 'library/nginx', 'latest', 'nginx');
      const url = `${fake.url}/v2/library/nginx/manifests/latest`;
      const head = await call(url, { method: 'HEAD' });
      assert.equal(head.headers.get('ratelimit-limit'), '3;w=600');
      assert.equal(head.headers.get('ratelimit-remaining'), '3;w=600');
      assert.equal(head.headers.get('docker-ratelimit-source'), '127.0.0.1');
      const remaining: (string | null)[] = [];
      for (let i = 0; i < 3; i++) {
        const answer = await call(url);
        assert.equal(answer.status, 200);
        remaining.push(answer.headers.get('ratelimit-remaining'));
      }
      assert.deepEqual(remaining, ['2;w=600', '1;w=600', '0;w=600']);
      const limited = await call(url);
      assert.equal(limited.status, 429);
      assert.equal(errorCode(limited), 'TOOMANYREQUESTS');
      assert.match(limited.body.toString(), /You have reached your pull rate limit/);
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter > 0 && retryAfter <= 600, `Retry-After ${retryAfter}`);
      assert.equal(limited.headers.get('ratelimit-remaining'), '0;w=600');
      const stillHead = await call(url, { method: 'HEAD' });
      assert.equal(stillHead.status, 200);
      assert.equal(stillHead.headers.get('ratelimit-remaining'), '0;w=600');
      assert.equal(
        (await call(`${fake.url}/v2/library/nginx/blobs/${sha256('x')}`)).headers.get('ratelimit-limit'),
        null,
      );
    } finally {
      await fake.close();
    }
  });

  it('starts from setRateLimitRemaining and counts per user', async () => {
    const fake = await startFakeUpstream({
      users: { alice: 'alice-pw' },
      rateLimit: { limit: 100, windowSeconds: 21600 },
    });
    try {
      image(fake, 'library/nginx', 'latest', 'nginx');
      fake.setRateLimitRemaining('127.0.0.1', 77);
      const url = `${fake.url}/v2/library/nginx/manifests/latest`;
      const anonymous = await getToken(fake, ['repository:library/nginx:pull']);
      const answer = await call(url, { headers: { Authorization: `Bearer ${anonymous}` } });
      assert.equal(answer.headers.get('ratelimit-limit'), '100;w=21600');
      assert.equal(answer.headers.get('ratelimit-remaining'), '76;w=21600');
      const user = await getToken(fake, ['repository:library/nginx:pull'], basic('alice', 'alice-pw'));
      const mine = await call(url, { headers: { Authorization: `Bearer ${user}` } });
      assert.equal(mine.headers.get('docker-ratelimit-source'), 'alice');
      assert.equal(mine.headers.get('ratelimit-remaining'), '99;w=21600');
      fake.setRateLimitRemaining('alice', 0);
      assert.equal((await call(url, { headers: { Authorization: `Bearer ${user}` } })).status, 429);
      assert.equal((await call(url, { headers: { Authorization: `Bearer ${anonymous}` } })).status, 200);
    } finally {
      await fake.close();
    }
  });

  it('uses the X-RateLimit-* spelling when asked, and refills after the window', async () => {
    const fake = await startFakeUpstream({
      auth: 'none',
      rateLimit: { limit: 1, windowSeconds: 1, headerStyle: 'x' },
    });
    try {
      image(fake, 'library/nginx', 'latest', 'nginx');
      const url = `${fake.url}/v2/library/nginx/manifests/latest`;
      const first = await call(url);
      assert.equal(first.headers.get('x-ratelimit-limit'), '1;w=1');
      assert.equal(first.headers.get('x-ratelimit-remaining'), '0;w=1');
      assert.equal(first.headers.get('ratelimit-limit'), null);
      assert.equal((await call(url)).status, 429);
      await delay(1050);
      assert.equal((await call(url)).status, 200);
    } finally {
      await fake.close();
    }
  });
});

describe('blob redirect to a CDN', () => {
  let fake: FakeUpstream;
  let app: ReturnType<typeof image>;
  let token: string;
  before(async () => {
    fake = await startFakeUpstream({ blobRedirect: true });
    app = image(fake, 'library/app', 'v1', 'app');
    token = await getToken(fake, ['repository:library/app:pull']);
  });
  after(() => fake.close());

  async function redirectLocation(): Promise<string> {
    const answer = await call(`${fake.url}/v2/library/app/blobs/${app.layerDigest}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(answer.status, 307);
    return answer.headers.get('location')!;
  }

  it('answers blob GETs with 307 to a signed URL on a separate server; HEADs are answered directly', async () => {
    const location = await redirectLocation();
    assert.ok(fake.cdnUrl && location.startsWith(`${fake.cdnUrl}/`));
    assert.notEqual(fake.cdnUrl, fake.url);
    assert.match(location, /\?verify=\d+-/);
    const head = await call(`${fake.url}/v2/library/app/blobs/${app.layerDigest}`, {
      method: 'HEAD',
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(head.status, 200);
    const served = await call(location);
    assert.equal(served.status, 200);
    assert.deepEqual(served.body, app.layer);
    assert.equal(served.headers.get('docker-content-digest'), app.layerDigest);
    const ranged = await call(location, { headers: { Range: 'bytes=0-3' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(ranged.body, app.layer.subarray(0, 4));
  });

  it('refuses CDN requests carrying Authorization and records them', async () => {
    const location = await redirectLocation();
    const refused = await call(location, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(refused.status, 400);
    const cdnWithAuth = fake.requests.filter(
      (r) => r.server === 'cdn' && r.headers.authorization !== undefined,
    );
    assert.equal(cdnWithAuth.length, 1);
    assert.equal(cdnWithAuth[0]!.status, 400);
    assert.equal(cdnWithAuth[0]!.headers.authorization, `Bearer ${token}`);
  });

  it('refuses tampered signatures', async () => {
    const location = new URL(await redirectLocation());
    location.searchParams.set('verify', `${Date.now() + 60_000}-forged`);
    assert.equal((await call(location.href)).status, 403);
  });

  it('applies body faults where the bytes are served (the CDN), not to the redirect', async () => {
    fake.inject({ match: { kind: 'blob' }, action: 'wrong-digest' });
    const location = await redirectLocation();
    const served = await call(location);
    assert.equal(served.status, 200);
    assert.equal(served.body.length, app.layer.length);
    assert.notEqual(sha256(served.body), app.layerDigest);
    assert.equal(served.headers.get('docker-content-digest'), app.layerDigest);
    assert.equal(fake.requests.at(-1)!.server, 'cdn');
    assert.equal(fake.requests.at(-1)!.fault, 'wrong-digest');
  });
});

describe('fault injection', () => {
  let fake: FakeUpstream;
  let app: ReturnType<typeof image>;
  before(async () => {
    fake = await startFakeUpstream({ auth: 'none' });
    app = image(fake, 'acme/app', 'v1', 'app');
  });
  after(() => fake.close());

  it('answers with an injected status for the given number of times, then normally', async () => {
    fake.inject({
      match: { kind: 'manifest', method: 'GET' },
      times: 2,
      action: { status: 503, retryAfter: 2 },
    });
    const url = `${fake.url}/v2/acme/app/manifests/v1`;
    assert.equal((await call(url, { method: 'HEAD' })).status, 200);
    for (let i = 0; i < 2; i++) {
      const answer = await call(url);
      assert.equal(answer.status, 503);
      assert.equal(answer.headers.get('retry-after'), '2');
      assert.equal(errorCode(answer), 'UNAVAILABLE');
    }
    assert.equal((await call(url)).status, 200);
    fake.inject({ match: { pathIncludes: '/tags/list' }, action: { status: 500, body: 'boom' } });
    const custom = await call(`${fake.url}/v2/acme/app/tags/list`);
    assert.equal(custom.status, 500);
    assert.equal(custom.body.toString(), 'boom');
    assert.equal(fake.requests.at(-1)!.fault, 'status');
  });

  it('consumes faults in the order they were added', async () => {
    fake.inject({ match: { kind: 'manifest' }, action: { status: 500 } });
    fake.inject({ match: { kind: 'manifest' }, action: { status: 502 } });
    const url = `${fake.url}/v2/acme/app/manifests/v1`;
    assert.deepEqual(
      [(await call(url)).status, (await call(url)).status, (await call(url)).status],
      [500, 502, 200],
    );
  });

  it('resets the connection before any response', async () => {
    fake.inject({ match: { kind: 'blob' }, action: 'reset' });
    await assert.rejects(fetch(`${fake.url}/v2/acme/app/blobs/${app.layerDigest}`));
    const record = fake.requests.at(-1)!;
    assert.equal(record.status, 0);
    assert.equal(record.fault, 'reset');
    assert.equal((await call(`${fake.url}/v2/acme/app/blobs/${app.layerDigest}`)).status, 200);
  });

  it('truncates: full Content-Length, half the body, then a dead connection', async () => {
    fake.inject({ match: { kind: 'blob' }, action: 'truncate' });
    const answer = await rawGet(`${fake.url}/v2/acme/app/blobs/${app.layerDigest}`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-length'], String(app.layer.length));
    assert.equal(answer.complete, false);
    assert.deepEqual(answer.bytes, app.layer.subarray(0, Math.floor(app.layer.length / 2)));
  });

  it('serves different bytes of the same length for wrong-digest', async () => {
    fake.inject({ match: { kind: 'blob' }, action: 'wrong-digest' });
    const answer = await call(`${fake.url}/v2/acme/app/blobs/${app.layerDigest}`);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.length, app.layer.length);
    assert.notDeepEqual(answer.body, app.layer);
    assert.equal(answer.headers.get('docker-content-digest'), app.layerDigest);
    assert.deepEqual((await call(`${fake.url}/v2/acme/app/blobs/${app.layerDigest}`)).body, app.layer);
  });

  it('delays a request, then answers it normally', async () => {
    fake.inject({ match: { kind: 'manifest' }, action: { delayMs: 300 } });
    const started = Date.now();
    const answer = await call(`${fake.url}/v2/acme/app/manifests/v1`);
    assert.equal(answer.status, 200);
    assert.ok(Date.now() - started >= 280, `took ${Date.now() - started} ms`);
    assert.equal(fake.requests.at(-1)!.fault, 'delay');
  });

  it('closes promptly while a delayed request is pending', async () => {
    const other = await startFakeUpstream({ auth: 'none' });
    other.inject({ match: {}, action: { delayMs: 60_000 } });
    const pending = fetch(`${other.url}/v2/`).catch(() => undefined);
    await delay(50);
    const started = Date.now();
    await other.close();
    await pending;
    assert.ok(Date.now() - started < 2000);
  });
});

describe('request recording', () => {
  it('records method, path, query, lowercase headers with Authorization, status and server', async () => {
    const fake = await startFakeUpstream({ auth: 'basic', users: { dave: 'dave-pw' } });
    try {
      image(fake, 'acme/app', 'v1', 'app');
      await call(`${fake.url}/v2/acme/app/tags/list?n=1`, {
        headers: { Authorization: basic('dave', 'dave-pw'), 'X-Custom': 'yes' },
      });
      await call(`${fake.url}/v2/acme/app/manifests/v1`, { method: 'HEAD' });
      assert.equal(fake.requests.length, 2);
      const [tags, head] = fake.requests;
      assert.equal(tags!.method, 'GET');
      assert.equal(tags!.path, '/v2/acme/app/tags/list');
      assert.equal(tags!.query, 'n=1');
      assert.equal(tags!.headers.authorization, basic('dave', 'dave-pw'));
      assert.equal(tags!.headers['x-custom'], 'yes');
      assert.equal(tags!.status, 200);
      assert.equal(tags!.server, 'registry');
      assert.equal(tags!.kind, 'tags');
      assert.equal(head!.method, 'HEAD');
      assert.equal(head!.status, 401);
      assert.equal(head!.query, '');
      assert.equal(
        fake.count((r) => r.status === 401),
        1,
      );
      assert.equal(
        fake.count((r) => r.kind === 'manifest' && r.method === 'HEAD'),
        1,
      );
    } finally {
      await fake.close();
    }
  });
});

describe('push endpoints', () => {
  let fake: FakeUpstream;
  before(async () => {
    fake = await startFakeUpstream({ auth: 'none' });
  });
  after(() => fake.close());

  async function startUpload(repository: string): Promise<URL> {
    const answer = await call(`${fake.url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    assert.equal(answer.status, 202);
    assert.ok(answer.headers.get('docker-upload-uuid'));
    assert.equal(answer.headers.get('range'), '0-0');
    const location = new URL(answer.headers.get('location')!);
    assert.equal(location.origin, fake.url);
    assert.ok(location.searchParams.has('_state'));
    return location;
  }

  async function pushBlob(repository: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const answer = await call(`${fake.url}/v2/${repository}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: data,
    });
    assert.equal(answer.status, 201);
    return digest;
  }

  it('takes chunked uploads and verifies the digest on the final PUT', async () => {
    const data = Buffer.from('0123456789abcdef');
    let location = await startUpload('dst/app');
    const first = await call(location.href, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-7', 'Content-Type': 'application/octet-stream' },
      body: data.subarray(0, 8),
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-7');
    location = new URL(first.headers.get('location')!);
    const outOfOrder = await call(location.href, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-7' },
      body: data.subarray(0, 8),
    });
    assert.equal(outOfOrder.status, 416);
    const status = await call(location.href);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-7');

    const wrong = new URL(location);
    wrong.searchParams.set('digest', sha256('not this'));
    const refused = await call(wrong.href, { method: 'PUT', body: data.subarray(8) });
    assert.equal(refused.status, 400);
    assert.equal(errorCode(refused), 'DIGEST_INVALID');
    assert.equal(fake.getBlob('dst/app', sha256(data)), undefined);

    location = await startUpload('dst/app');
    await call(location.href, { method: 'PATCH', body: data.subarray(0, 8) });
    location.searchParams.set('digest', sha256(data));
    const done = await call(location.href, { method: 'PUT', body: data.subarray(8) });
    assert.equal(done.status, 201);
    assert.equal(done.headers.get('docker-content-digest'), sha256(data));
    assert.equal(done.headers.get('location'), `${fake.url}/v2/dst/app/blobs/${sha256(data)}`);
    assert.deepEqual(fake.getBlob('dst/app', sha256(data)), data);
    assert.equal((await call(location.href, { method: 'PATCH', body: data })).status, 404);
  });

  it('takes monolithic POST uploads and mounts from another repository', async () => {
    const data = Buffer.from('shared layer');
    const digest = await pushBlob('src/app', data);
    const mounted = await call(`${fake.url}/v2/dst/other/blobs/uploads/?mount=${digest}&from=src/app`, {
      method: 'POST',
    });
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers.get('docker-content-digest'), digest);
    assert.deepEqual(fake.getBlob('dst/other', digest), data);
    const fallback = await call(
      `${fake.url}/v2/dst/other/blobs/uploads/?mount=${sha256('absent')}&from=src/app`,
      {
        method: 'POST',
      },
    );
    assert.equal(fallback.status, 202);
  });

  it('takes manifests once their blobs and children exist, and serves them back byte-exact', async () => {
    const config = Buffer.from('{"architecture":"arm64","os":"linux"}');
    const layer = Buffer.from('a layer');
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256(config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: sha256(layer),
            size: layer.length,
          },
        ],
      }) + '\n',
    );
    const put = (reference: string, bytes: Buffer, mediaType: string) =>
      call(`${fake.url}/v2/dst/image/manifests/${reference}`, {
        method: 'PUT',
        headers: { 'Content-Type': mediaType },
        body: bytes,
      });
    const early = await put('v1', manifest, OCI_MANIFEST);
    assert.equal(early.status, 400);
    assert.equal(errorCode(early), 'MANIFEST_BLOB_UNKNOWN');
    await pushBlob('dst/image', config);
    await pushBlob('dst/image', layer);
    assert.equal(errorCode(await put(sha256('other'), manifest, OCI_MANIFEST)), 'DIGEST_INVALID');
    const done = await put('v1', manifest, OCI_MANIFEST);
    assert.equal(done.status, 201);
    assert.equal(done.headers.get('docker-content-digest'), sha256(manifest));
    const back = await call(`${fake.url}/v2/dst/image/manifests/v1`);
    assert.deepEqual(back.body, manifest);
    assert.equal(back.headers.get('content-type'), OCI_MANIFEST);
    assert.deepEqual(fake.listTags('dst/image'), ['v1']);

    const index = (child: string) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [{ mediaType: OCI_MANIFEST, digest: child, size: 1 }],
        }),
      );
    assert.equal(errorCode(await put('multi', index(sha256('missing')), OCI_INDEX)), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await put('multi', index(sha256(manifest)), OCI_INDEX)).status, 201);

    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/example',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256(config),
          size: config.length,
        },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length },
      }),
    );
    const withSubject = await put(sha256(referrer), referrer, OCI_MANIFEST);
    assert.equal(withSubject.status, 201);
    assert.equal(withSubject.headers.get('oci-subject'), sha256(manifest));
    const referrers = await call(`${fake.url}/v2/dst/image/referrers/${sha256(manifest)}`);
    assert.deepEqual(JSON.parse(referrers.body.toString()), {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: sha256(referrer),
          size: referrer.length,
          artifactType: 'application/example',
        },
      ],
    });
  });
});

describe('push with tokens', () => {
  it('needs push scope on the target and pull scope on a mount source', async () => {
    const fake = await startFakeUpstream({ users: { erin: 'erin-pw' } });
    try {
      const digest = fake.addBlob('src/app', Buffer.from('mountable'));
      const credentials = basic('erin', 'erin-pw');
      const targetOnly = await getToken(fake, ['repository:dst/app:pull,push'], credentials);
      const url = `${fake.url}/v2/dst/app/blobs/uploads/?mount=${digest}&from=src/app`;
      const noSource = await call(url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${targetOnly}` },
      });
      assert.equal(noSource.status, 202);
      const both = await getToken(
        fake,
        ['repository:dst/app:pull,push', 'repository:src/app:pull'],
        credentials,
      );
      const mounted = await call(url, { method: 'POST', headers: { Authorization: `Bearer ${both}` } });
      assert.equal(mounted.status, 201);
    } finally {
      await fake.close();
    }
  });
});
