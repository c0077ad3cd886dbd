/**
 * `pullsafe serve` as a pull-through cache, in front of the project's Docker-Hub-like fake upstream (token
 * auth, quota headers, injected faults) and Debian's docker-registry. What the cache did is read from the
 * upstream's own request log, never from the cache's metrics; skopeo is the independent client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { explicitCredentials } from '../src/client/index.ts';
import type { Digest } from '../src/oci/digest.ts';
import { PullThroughCache, type UpstreamOptions } from '../src/proxy/index.ts';
import { AccessControl } from '../src/server/auth.ts';
import { startServer } from '../src/server/app.ts';
import { openFsStorage } from '../src/store/index.ts';
import { compileGlob } from '../src/shared/glob.ts';
import { addImage, startCache, upstreamOptions as cacheUpstream, type TestCache } from './helpers/cache.ts';
import { runCli, runCliInProcess, startServeProcess } from './helpers/cli.ts';
import { startFakeUpstream, type FakeUpstream, type RecordedRequest } from './helpers/fake-upstream.ts';
import { makeImage, type TestImage } from './helpers/fixtures.ts';
import { OCI_INDEX, OCI_MANIFEST, request, sha256, type HttpResponse } from './helpers/http.ts';
import { skopeoOk } from './helpers/peers.ts';

const ALL_TYPES = [OCI_INDEX, OCI_MANIFEST].join(', ');

/** docker.io at the fake upstream, with the short prefix hub. */
const upstreamOptions = (upstream: FakeUpstream, overrides: Partial<UpstreamOptions> = {}): UpstreamOptions =>
  cacheUpstream(upstream, { prefixes: ['hub'], quotaReserve: 2, ...overrides });

/** Pulls the whole image by HTTP as a runtime does: the tag, each platform's manifest, every blob. */
async function pull(base: string, path: string, tag: string, image: TestImage): Promise<void> {
  const index = await request(`${base}/v2/${path}/manifests/${tag}`, { headers: { Accept: ALL_TYPES } });
  assert.equal(index.status, 200, index.text());
  assert.equal(sha256(index.body), image.index.digest, 'the index is byte-exact');
  await Promise.all(
    image.manifests.map(async (manifest) => {
      const got = await request(`${base}/v2/${path}/manifests/${manifest.digest}`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(got.status, 200, got.text());
      assert.equal(sha256(got.body), manifest.digest);
      for (const blob of [manifest.config.bytes, ...manifest.layers.map((layer) => layer.data)]) {
        const answer = await request(`${base}/v2/${path}/blobs/${sha256(blob)}`, { timeoutMs: 30_000 });
        assert.equal(answer.status, 200, answer.text().slice(0, 300));
        assert.equal(sha256(answer.body), sha256(blob));
      }
    }),
  );
}

const upstreamGets = (upstream: FakeUpstream, kind: RecordedRequest['kind'], method = 'GET') =>
  upstream.requests.filter((entry) => entry.kind === kind && entry.method === method && entry.status === 200);

function countBy(entries: RecordedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const entry of entries) counts.set(entry.path, (counts.get(entry.path) ?? 0) + 1);
  return counts;
}

describe('pull-through cache: routing and byte-exact content', () => {
  let upstream: FakeUpstream;
  let cache: TestCache;
  let image: TestImage;

  before(async () => {
    upstream = await startFakeUpstream({ auth: 'token' });
    image = await makeImage({
      format: 'oci',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      seed: 'routing',
      layers: 2,
    });
    addImage(upstream, 'library/demo', '1.0', image);
    addImage(upstream, 'team/tool', 'v2', image);
    cache = await startCache([upstreamOptions(upstream)], { hosted: ['own/**'] });
  });
  after(async () => {
    await cache.stop();
    await upstream.close();
  });

  it('serves one image by every route form, from one cached copy, with the upstream digests', async () => {
    await pull(cache.url, 'docker.io/library/demo', '1.0', image);
    const fetchedOnce = upstreamGets(upstream, 'blob').length;
    for (const [path, query] of [
      ['library/demo', '?ns=docker.io'],
      ['hub/library/demo', ''],
      ['library/demo', ''],
      ['demo', ''],
    ] as const) {
      const answer = await request(`${cache.url}/v2/${path}/manifests/1.0${query}`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(answer.status, 200, `${path}${query}: ${answer.text()}`);
      assert.equal(answer.headers['docker-content-digest'], image.index.digest, `${path}${query}`);
      const layer = image.manifests[0]!.layers[0]!;
      const blob = await request(`${cache.url}/v2/${path}/blobs/${layer.digest}${query}`);
      assert.equal(sha256(blob.body), layer.digest);
    }
    assert.equal(upstreamGets(upstream, 'blob').length, fetchedOnce, 'no route fetched a blob again');
  });

  it('lets skopeo copy through the cache with unchanged digests', async () => {
    const out = await mkdtemp(join(tmpdir(), 'pullsafe-cache-skopeo-'));
    try {
      const host = new URL(cache.url).host;
      await skopeoOk([
        'copy',
        '--all',
        '--src-tls-verify=false',
        `docker://${host}/team/tool:v2`,
        `oci:${out}:v2`,
      ]);
      const raw = await skopeoOk([
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${host}/docker.io/team/tool:v2`,
      ]);
      assert.equal(sha256(Buffer.from(raw.stdout)), image.index.digest);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('keeps hosted repositories beside proxied ones, refuses pushes into proxied ones, and leaves unknown ?ns= alone', async () => {
    const data = Buffer.from('hosted blob');
    const pushed = await request(`${cache.url}/v2/own/app/blobs/uploads/?digest=${sha256(data)}`, {
      method: 'POST',
      body: data,
    });
    assert.equal(pushed.status, 201, pushed.text());
    const refused = await request(`${cache.url}/v2/library/demo/blobs/uploads/?digest=${sha256(data)}`, {
      method: 'POST',
      body: data,
    });
    assert.equal(refused.status, 405);
    assert.match(refused.text(), /UNSUPPORTED.*pull-through cache/);
    const before = upstream.requests.length;
    const other = await request(`${cache.url}/v2/library/demo/manifests/1.0?ns=quay.io`);
    assert.equal(other.status, 404, 'an upstream that is not configured is not proxied');
    assert.equal(upstream.requests.length, before);
  });
});

describe('pull-through cache: one upstream fetch for many clients', () => {
  it('32 concurrent cold pulls of a multi-arch image make one upstream GET per blob and per manifest', async () => {
    const upstream = await startFakeUpstream({ auth: 'token', blobRedirect: true });
    const image = await makeImage({
      format: 'oci',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      seed: 'single-flight',
      layers: 4,
      layerSize: 512 * 1024,
    });
    addImage(upstream, 'library/busy', 'latest', image);
    // A slow upstream: every blob body starts late, so the clients pile up on the fills.
    upstream.inject({ match: { kind: 'blob', server: 'cdn' }, times: 100, action: { delayMs: 150 } });
    const cache = await startCache([upstreamOptions(upstream)]);
    try {
      await Promise.all(Array.from({ length: 32 }, () => pull(cache.url, 'library/busy', 'latest', image)));
      const blobGets = countBy(
        upstream.requests.filter(
          (entry) => entry.kind === 'blob' && entry.server === 'cdn' && entry.status === 200,
        ),
      );
      const blobCount = image.manifests.reduce((sum, manifest) => sum + 1 + manifest.layers.length, 0);
      assert.equal(blobGets.size, blobCount, 'every blob was fetched');
      for (const [path, count] of blobGets) assert.equal(count, 1, `${path} fetched ${count} times`);
      const manifestGets = countBy(upstreamGets(upstream, 'manifest'));
      assert.equal(manifestGets.size, 1 + image.manifests.length);
      for (const [path, count] of manifestGets) assert.equal(count, 1, `${path} fetched ${count} times`);
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('finishes a fill whose clients all hung up, and serves the blob from storage afterwards', async () => {
    const upstream = await startFakeUpstream({ auth: 'none' });
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const digest = upstream.addBlob('library/big', big);
    upstream.inject({ match: { kind: 'blob' }, action: { delayMs: 200 } });
    const cache = await startCache([upstreamOptions(upstream)]);
    try {
      const { port } = new URL(cache.url);
      await new Promise<void>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: Number(port) });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
        socket.write(`GET /v2/library/big/blobs/${digest} HTTP/1.1\r\nHost: x\r\n\r\n`);
        socket.once('data', () => socket.resetAndDestroy());
      });
      let held = false;
      for (let wait = 0; wait < 100 && !held; wait++) {
        await sleep(50);
        held =
          (await request(`${cache.url}/v2/library/big/blobs/${digest}`, { method: 'HEAD' })).status === 200 &&
          upstreamGets(upstream, 'blob').length === 1 &&
          (await readdir(join(cache.storage, 'fills', 'docker.io')).catch(() => [])).length === 0;
      }
      const again = await request(`${cache.url}/v2/library/big/blobs/${digest}`);
      assert.equal(sha256(again.body), digest);
      assert.equal(
        upstreamGets(upstream, 'blob').length,
        1,
        'the blob was fetched once, by the fill the client left',
      );
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });

  it('discards a blob whose bytes do not match its digest, fails its clients, and fetches it afresh', async () => {
    const upstream = await startFakeUpstream({ auth: 'none' });
    const data = Buffer.alloc(300_000, 3);
    const digest = upstream.addBlob('library/bad', data);
    upstream.inject({ match: { kind: 'blob' }, action: 'wrong-digest' });
    const cache = await startCache([upstreamOptions(upstream)]);
    try {
      const first = await request(`${cache.url}/v2/library/bad/blobs/${digest}`).catch(
        (error: Error) => error,
      );
      assert.ok(
        first instanceof Error || sha256(first.body) !== digest,
        'the first client never gets wrong bytes as the blob',
      );
      assert.notEqual(
        (await request(`${cache.url}/v2/library/bad/blobs/${digest}`, { method: 'HEAD' })).status,
        500,
      );
      const second = await request(`${cache.url}/v2/library/bad/blobs/${digest}`);
      assert.equal(second.status, 200);
      assert.equal(sha256(second.body), digest, 'the next request fetched the right bytes');
    } finally {
      await cache.stop();
      await upstream.close();
    }
  });
});

describe('pull-through cache: tags, freshness and upstream failures', () => {
  let upstream: FakeUpstream;
  let image: TestImage;
  let newer: TestImage;

  before(async () => {
    upstream = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 100, windowSeconds: 3600 } });
    image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'tags-1',
    });
    newer = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'tags-2',
    });
    addImage(upstream, 'library/app', 'latest', image);
    addImage(upstream, 'library/app', 'v1.0', image);
  });
  after(async () => {
    await upstream.close();
  });

  const tagRequests = (path: string) =>
    upstream.requests.filter((entry) => entry.kind === 'manifest' && entry.path.endsWith(path)).length;

  it('serves a tag within its TTL without asking, revalidates after it with one HEAD, and follows a moved tag', async () => {
    const cache = await startCache([upstreamOptions(upstream, { tagTtlMs: 300 })]);
    try {
      const first = await request(`${cache.url}/v2/library/app/manifests/latest`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(first.headers['docker-content-digest'], image.index.digest);
      const asked = tagRequests('/manifests/latest');
      await request(`${cache.url}/v2/library/app/manifests/latest`, { headers: { Accept: ALL_TYPES } });
      assert.equal(tagRequests('/manifests/latest'), asked, 'within the TTL the upstream is not asked');
      await sleep(400);
      await request(`${cache.url}/v2/library/app/manifests/latest`, { headers: { Accept: ALL_TYPES } });
      const heads = upstream.requests.filter(
        (entry) =>
          entry.method === 'HEAD' && entry.path.endsWith('/manifests/latest') && entry.status === 200,
      );
      assert.equal(heads.length, 1, 'one HEAD revalidated the tag');
      addImage(upstream, 'library/app', 'latest', newer);
      await sleep(400);
      const moved = await request(`${cache.url}/v2/library/app/manifests/latest`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(moved.headers['docker-content-digest'], newer.index.digest, 'the moved tag is followed');
      assert.equal(sha256(moved.body), newer.index.digest);
      assert.match(String(moved.headers['ratelimit-remaining']), /^\d+;w=3600$/, 'the quota is passed on');
    } finally {
      await cache.stop();
      addImage(upstream, 'library/app', 'latest', image);
    }
  });

  it('never revalidates tags an immutable pattern names, and never asks for a cached digest', async () => {
    const cache = await startCache([
      upstreamOptions(upstream, { tagTtlMs: 1, tagRules: [{ pattern: compileGlob('v*'), immutable: true }] }),
    ]);
    try {
      await request(`${cache.url}/v2/library/app/manifests/v1.0`, { headers: { Accept: ALL_TYPES } });
      await request(`${cache.url}/v2/library/app/manifests/${image.index.digest}`, {
        headers: { Accept: ALL_TYPES },
      });
      const asked = upstream.requests.length;
      await sleep(20);
      for (let round = 0; round < 3; round++) {
        assert.equal((await request(`${cache.url}/v2/library/app/manifests/v1.0`)).status, 200);
        assert.equal(
          (await request(`${cache.url}/v2/library/app/manifests/${image.index.digest}`)).status,
          200,
        );
      }
      assert.equal(upstream.requests.length, asked);
    } finally {
      await cache.stop();
    }
  });

  /** An upstream of this test's own, holding the image as latest and v1.0: faults injected stay in it. */
  async function ownUpstream(): Promise<FakeUpstream> {
    const own = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 100, windowSeconds: 3600 } });
    addImage(own, 'library/app', 'latest', image);
    addImage(own, 'library/app', 'v1.0', image);
    return own;
  }

  for (const [label, action] of [
    ['429', { status: 429, retryAfter: 30 }],
    ['503', { status: 503 }],
    ['a reset connection', 'reset'],
    ['a timeout', { delayMs: 4_000 }],
  ] as const) {
    it(`serves a cached tag, marked stale and within the wait bound, when the upstream answers ${label}`, async () => {
      const own = await ownUpstream();
      const cache = await startCache([upstreamOptions(own, { tagTtlMs: 1, revalidateWaitMs: 500 })]);
      try {
        await request(`${cache.url}/v2/library/app/manifests/latest`, { headers: { Accept: ALL_TYPES } });
        await sleep(20);
        own.inject({ match: { kind: 'manifest' }, times: 10, action });
        const started = Date.now();
        const stale = await request(`${cache.url}/v2/library/app/manifests/latest`, {
          headers: { Accept: ALL_TYPES },
        });
        const waited = Date.now() - started;
        assert.equal(stale.status, 200, stale.text());
        assert.equal(stale.headers['docker-content-digest'], image.index.digest);
        assert.match(String(stale.headers.warning), /^110 - "Response is Stale"/);
        assert.ok(waited < 2_000, `the client waited ${waited} ms`);
      } finally {
        await cache.stop();
        await own.close();
      }
    });
  }

  it('serves every cached tag when the token endpoint fails', async () => {
    const own = await ownUpstream();
    const cache = await startCache([upstreamOptions(own, { tagTtlMs: 1, revalidateWaitMs: 500 })]);
    try {
      await request(`${cache.url}/v2/library/app/manifests/v1.0`, { headers: { Accept: ALL_TYPES } });
      await sleep(20);
      own.inject({ match: { kind: 'token' }, times: 10, action: { status: 500 } });
      own.inject({ match: { kind: 'manifest' }, times: 10, action: { status: 401 } });
      const started = Date.now();
      const answer = await request(`${cache.url}/v2/library/app/manifests/v1.0`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(answer.status, 200);
      assert.match(String(answer.headers.warning), /Stale/);
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await cache.stop();
      await own.close();
    }
  });

  it('passes an upstream 429 for an uncached image on as 429 with Retry-After, remembers a 404, and says 503 for an outage', async () => {
    const own = await ownUpstream();
    const cache = await startCache([upstreamOptions(own)]);
    try {
      own.inject({ match: { kind: 'manifest', method: 'GET' }, action: { status: 429, retryAfter: 42 } });
      const limited = await request(`${cache.url}/v2/library/app/manifests/latest`);
      assert.equal(limited.status, 429, limited.text());
      assert.equal(limited.headers['retry-after'], '42');
      assert.match(limited.text(), /TOOMANYREQUESTS/);

      const missing = await request(`${cache.url}/v2/library/nothing/manifests/1`);
      assert.equal(missing.status, 404, missing.text());
      const asked = own.requests.length;
      assert.equal((await request(`${cache.url}/v2/library/nothing/manifests/1`)).status, 404);
      assert.equal(own.requests.length, asked, 'the 404 was remembered');

      own.inject({ match: { kind: 'manifest' }, times: 10, action: { status: 502 } });
      const down = await request(`${cache.url}/v2/library/app/manifests/v1.0`);
      assert.equal(down.status, 503, down.text());
      assert.match(down.text(), /UNAVAILABLE/);
    } finally {
      await cache.stop();
      await own.close();
    }
  });

  it('stops revalidating when the quota is at its reserve, and serves the cached tags', async () => {
    const own = await ownUpstream();
    const cache = await startCache([upstreamOptions(own, { tagTtlMs: 1, quotaReserve: 50 })]);
    try {
      own.setRateLimitRemaining('127.0.0.1', 40);
      await request(`${cache.url}/v2/library/app/manifests/v1.0`, { headers: { Accept: ALL_TYPES } });
      const asked = own.requests.length;
      await sleep(20);
      const answer = await request(`${cache.url}/v2/library/app/manifests/v1.0`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(answer.status, 200);
      assert.match(String(answer.headers.warning), /quota/);
      assert.equal(own.requests.length, asked, 'no revalidation below the reserve');
    } finally {
      await cache.stop();
      await own.close();
    }
  });

  it('forgets a low quota once its window has passed, and revalidates again', async () => {
    const own = await startFakeUpstream({ auth: 'token', rateLimit: { limit: 100, windowSeconds: 1 } });
    addImage(own, 'library/app', 'v1.0', image);
    const cache = await startCache([upstreamOptions(own, { tagTtlMs: 1, quotaReserve: 50 })]);
    try {
      own.setRateLimitRemaining('127.0.0.1', 40);
      await request(`${cache.url}/v2/library/app/manifests/v1.0`, { headers: { Accept: ALL_TYPES } });
      await sleep(1_100);
      const heads = () =>
        own.requests.filter((entry) => entry.method === 'HEAD' && entry.kind === 'manifest').length;
      const before = heads();
      const answer = await request(`${cache.url}/v2/library/app/manifests/v1.0`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(answer.status, 200);
      assert.equal(heads(), before + 1, 'the tag was revalidated: the old quota no longer counts');
    } finally {
      await cache.stop();
      await own.close();
    }
  });

  it('serves every previously pulled tag with the upstream stopped', async () => {
    const own = await startFakeUpstream({ auth: 'token' });
    addImage(own, 'library/app', 'latest', image);
    addImage(own, 'library/app', 'v1.0', newer);
    const cache = await startCache([upstreamOptions(own, { tagTtlMs: 1, revalidateWaitMs: 500 })]);
    try {
      await pull(cache.url, 'library/app', 'latest', image);
      await pull(cache.url, 'library/app', 'v1.0', newer);
      await own.close();
      await sleep(20);
      await pull(cache.url, 'library/app', 'latest', image);
      await pull(cache.url, 'library/app', 'v1.0', newer);
    } finally {
      await cache.stop();
    }
  });
});

describe('pull-through cache: private upstreams', () => {
  it('serves content fetched with credentials only to authenticated clients, and never shows the credentials', async () => {
    const upstream = await startFakeUpstream({
      auth: 'token',
      users: { robot: 'upstream-s3cret' },
      anonymousPull: false,
    });
    const image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'private',
    });
    addImage(upstream, 'acme/secret', '1', image);
    const folder = await mkdtemp(join(tmpdir(), 'pullsafe-cache-auth-'));
    const bcrypt = (await import('bcryptjs')).default;
    const htpasswd = join(folder, 'htpasswd');
    await (await import('node:fs/promises')).writeFile(htpasswd, `alice:${bcrypt.hashSync('alice-pw', 4)}\n`);
    const cache = await startCache(
      [
        upstreamOptions(upstream, {
          name: 'ghcr.io',
          namespace: 'ghcr.io',
          prefixes: [],
          anonymousPull: false,
          credentials: explicitCredentials('robot:upstream-s3cret', { registry: 'ghcr.io' }),
        }),
      ],
      { htpasswd },
    );
    try {
      const anonymous = await request(`${cache.url}/v2/ghcr.io/acme/secret/manifests/1`);
      assert.equal(anonymous.status, 401);
      const alice = { Authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` };
      const answer: HttpResponse = await request(`${cache.url}/v2/ghcr.io/acme/secret/manifests/1`, {
        headers: { ...alice, Accept: ALL_TYPES },
      });
      assert.equal(answer.status, 200, answer.text());
      assert.equal(sha256(answer.body), image.index.digest);
      const metrics = await request(`${cache.url}/metrics`, { headers: alice });
      const status = await request(`${cache.url}/status`, { headers: alice });
      for (const text of [metrics.text(), status.text(), JSON.stringify(cache.logs)]) {
        assert.doesNotMatch(text, /upstream-s3cret/);
      }
      assert.match(metrics.text(), /pullsafe_cache_requests_total\{upstream="ghcr.io",result="miss"\}/);
    } finally {
      await cache.stop();
      await upstream.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('pull-through cache: eviction', () => {
  it('keeps cached blobs under the size by evicting the least recently used, never pinned, hosted or in-use ones', async () => {
    const upstream = await startFakeUpstream({ auth: 'none' });
    const MiB = 1024 * 1024;
    const blobs = new Map<string, string>();
    for (const name of ['a', 'b', 'c', 'd'])
      blobs.set(name, upstream.addBlob(`library/${name}`, Buffer.alloc(MiB, name)));
    const pinnedDigest = upstream.addBlob('library/pinned', Buffer.alloc(MiB, 'p'));
    const storageDir = await mkdtemp(join(tmpdir(), 'pullsafe-cache-evict-'));
    const storage = await openFsStorage(storageDir);
    const cache = new PullThroughCache(storage, {
      upstreams: [upstreamOptions(upstream)],
      hosted: ['own/**'],
      spoolDir: join(storageDir, 'fills'),
      eviction: {
        maxBytes: 4 * MiB,
        highWatermark: 0.9,
        lowWatermark: 0.5,
        pinned: ['docker.io/library/pinned'],
      },
    });
    const access = await AccessControl.load({ realm: 'pullsafe', anonymousPull: true, anonymousPush: true });
    const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const server = await startServer({ storage, access, logger, cache, host: '127.0.0.1', port: 0 });
    try {
      const get = async (repository: string, digest: string) => {
        const answer = await request(`${server.url}/v2/${repository}/blobs/${digest}`);
        assert.equal(sha256(answer.body), digest);
      };
      const hosted = Buffer.alloc(MiB, 'h');
      assert.equal(
        (
          await request(`${server.url}/v2/own/app/blobs/uploads/?digest=${sha256(hosted)}`, {
            method: 'POST',
            body: hosted,
          })
        ).status,
        201,
      );
      await get('library/pinned', pinnedDigest);
      for (const name of ['a', 'b', 'c']) await get(`library/${name}`, blobs.get(name)!);
      await get('library/a', blobs.get('a')!); // a is now more recent than b and c
      const release = cache.holdBlob(blobs.get('b')! as Digest);
      await get('library/d', blobs.get('d')!);
      // The fifth MiB crosses the high watermark once its fill is committed, which starts a pass.
      for (let wait = 0; wait < 250 && cache.evictor!.evictedTotal === 0; wait++) await sleep(20);
      await cache.evictor!.run();
      release();
      const stored = async (digest: string) => (await storage.blobs.stat(digest as Digest)) !== undefined;
      assert.ok(cache.evictor!.evictedTotal > 0, 'a pass evicted past the high watermark');
      assert.ok(
        cache.evictor!.cachedBytes <= 4.5 * MiB,
        `cached ${cache.evictor!.cachedBytes} bytes after the pass: under the high watermark`,
      );
      assert.ok(await stored(pinnedDigest), 'pinned blobs stay');
      assert.ok(await stored(blobs.get('b')!), 'a blob being read stays');
      assert.ok(!(await stored(blobs.get('c')!)), 'the least recently used goes');
      assert.ok(await stored(sha256(hosted)), 'hosted blobs are not cache content');
      const fetched = upstreamGets(upstream, 'blob').length;
      await get('library/c', blobs.get('c')!);
      assert.equal(
        upstreamGets(upstream, 'blob').length,
        fetched + 1,
        'an evicted blob is fetched again on its next pull',
      );
    } finally {
      await server.close({ immediate: true });
      await upstream.close();
      await rm(storageDir, { recursive: true, force: true });
    }
  });
});

describe('pull-through cache from the command line', () => {
  it('pullsafe serve --proxy docker.io=URL serves a pull, and a bad --proxy is a usage error', async () => {
    const upstream = await startFakeUpstream({ auth: 'token' });
    const image = await makeImage({
      format: 'oci',
      platforms: [{ os: 'linux', architecture: 'amd64' }],
      seed: 'cli',
    });
    addImage(upstream, 'library/cli', '1', image);
    const folder = await mkdtemp(join(tmpdir(), 'pullsafe-cache-cli-'));
    const server = await startServeProcess([
      '--storage',
      join(folder, 'data'),
      '--proxy',
      `docker.io=${upstream.url}`,
      '--hosted',
      'own/**',
    ]);
    try {
      await pull(server.url, 'library/cli', '1', image);
      await pull(server.url, 'docker.io/library/cli', '1', image);
      const data = Buffer.from('mine');
      const hosted = await request(`${server.url}/v2/own/app/blobs/uploads/?digest=${sha256(data)}`, {
        method: 'POST',
        body: data,
      });
      assert.equal(hosted.status, 201, 'a --hosted repository takes pushes beside the cache');
      const proxied = await request(`${server.url}/v2/team/app/blobs/uploads/?digest=${sha256(data)}`, {
        method: 'POST',
        body: data,
      });
      assert.equal(proxied.status, 405, 'a bare name goes to docker.io, which takes no pushes');
      // Only the amd64 half of a two-platform image was pulled: fsck knows the rest is fetched on demand.
      const twoPlatforms = await makeImage({
        format: 'oci',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
        seed: 'cli-fsck',
      });
      addImage(upstream, 'library/half', '1', twoPlatforms);
      await pull(server.url, 'library/half', '1', {
        ...twoPlatforms,
        manifests: [twoPlatforms.manifests[0]!],
      });
      const fsck = await runCliInProcess(['fsck', '--storage', join(folder, 'data')]);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
      assert.match(fsck.stdout, /not cached \(fetched on demand\)/);
      assert.match(fsck.stdout, /storage is consistent/);
      const bad = await runCli(['serve', '--proxy', 'docker.io=ftp://x', '--storage', join(folder, 'x')]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /only https:\/\//);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
      await upstream.close();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
