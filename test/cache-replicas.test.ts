/**
 * Three `pullsafe serve` processes on one S3 bucket (s3rver) and one Redis (Debian's redis-server) act as one
 * registry and one pull-through cache: requests spread over them as a load balancer spreads them, and
 * what the upstream saw is read from its own request log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { RedisCoordinator, type RedisLike } from '../src/proxy/index.ts';
import { addImage } from './helpers/cache.ts';
import type { ServeProcess } from './helpers/cli.ts';
import type { FakeUpstream, RecordedRequest } from './helpers/fake-upstream.ts';
import { makeImage } from './helpers/fixtures.ts';
import { OCI_INDEX, OCI_MANIFEST, request, sha256 } from './helpers/http.ts';
import type { RedisPeer } from './helpers/redis.ts';
import { startCacheReplicas, type CacheReplicas } from './helpers/cache-replicas.ts';

const ALL_TYPES = [OCI_INDEX, OCI_MANIFEST].join(', ');

describe('replicas on one S3 bucket and one Redis', () => {
  let cluster: CacheReplicas;
  let redis: RedisPeer;
  let upstream: FakeUpstream;
  let replicas: ServeProcess[] = [];
  let turn = 0;
  /** The next replica, round robin, as a load balancer would choose. */
  const next = (): string => replicas[turn++ % replicas.length]!.url;

  before(async () => {
    cluster = await startCacheReplicas('replicas', async () => ['--hosted', 'own/**']);
    ({ redis, upstream, replicas } = cluster);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('20 concurrent cold pulls spread over three replicas make one upstream GET per blob and per manifest', async () => {
    const image = await makeImage({
      format: 'oci',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
      seed: 'replicas',
      layers: 3,
      layerSize: 256 * 1024,
    });
    addImage(upstream, 'library/spread', '1.0', image);
    upstream.inject({ match: { kind: 'blob', server: 'cdn' }, times: 100, action: { delayMs: 200 } });
    const pullOnce = async (): Promise<void> => {
      const index = await request(`${next()}/v2/library/spread/manifests/1.0`, {
        headers: { Accept: ALL_TYPES },
      });
      assert.equal(index.status, 200, index.text());
      assert.equal(sha256(index.body), image.index.digest);
      for (const manifest of image.manifests) {
        const got = await request(`${next()}/v2/library/spread/manifests/${manifest.digest}`, {
          headers: { Accept: ALL_TYPES },
        });
        assert.equal(sha256(got.body), manifest.digest);
        for (const blob of [manifest.config.bytes, ...manifest.layers.map((layer) => layer.data)]) {
          const answer = await request(`${next()}/v2/library/spread/blobs/${sha256(blob)}`, {
            timeoutMs: 60_000,
          });
          assert.equal(answer.status, 200, answer.text().slice(0, 200));
          assert.equal(sha256(answer.body), sha256(blob));
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, () => pullOnce()));
    const counts = (entries: RecordedRequest[]): Map<string, number> => {
      const map = new Map<string, number>();
      for (const entry of entries) map.set(entry.path, (map.get(entry.path) ?? 0) + 1);
      return map;
    };
    const blobGets = counts(
      upstream.requests.filter((entry) => entry.server === 'cdn' && entry.status === 200),
    );
    const blobCount = image.manifests.reduce((sum, manifest) => sum + 1 + manifest.layers.length, 0);
    assert.equal(blobGets.size, blobCount, `${blobGets.size} distinct blobs fetched`);
    for (const [path, count] of blobGets) assert.equal(count, 1, `${path} fetched ${count} times`);
    const manifestGets = counts(
      upstream.requests.filter(
        (entry) =>
          entry.kind === 'manifest' &&
          entry.method === 'GET' &&
          entry.status === 200 &&
          entry.path.includes('/library/spread/'),
      ),
    );
    assert.equal(manifestGets.size, 1 + image.manifests.length);
    for (const [path, count] of manifestGets) assert.equal(count, 1, `${path} fetched ${count} times`);
  });

  it('continues a chunked push on whichever replica gets the next request', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const start = await request(`${next()}/v2/own/app/blobs/uploads/`, {
      method: 'POST',
      headers: { 'Content-Length': 0 },
    });
    assert.equal(start.status, 202, start.text());
    let location = String(start.headers.location);
    const cut = [0, 1024 * 1024, 2 * 1024 * 1024, data.length];
    for (let part = 0; part + 1 < cut.length; part++) {
      const chunk = data.subarray(cut[part], cut[part + 1]);
      const patched = await request(new URL(location, next()), {
        method: 'PATCH',
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `${cut[part]}-${cut[part + 1]! - 1}`,
        },
        body: chunk,
      });
      assert.equal(patched.status, 202, `chunk ${part}: ${patched.text()}`);
      location = String(patched.headers.location);
    }
    const done = new URL(location, next());
    done.searchParams.set('digest', sha256(data));
    const put = await request(done, { method: 'PUT', headers: { 'Content-Length': 0 } });
    assert.equal(put.status, 201, put.text());
    for (let index = 0; index < 3; index++) {
      const got = await request(`${next()}/v2/own/app/blobs/${sha256(data)}`);
      assert.equal(sha256(got.body), sha256(data));
    }
  });

  it('takes over the fill of a replica that died mid-way, and no client on another replica waits forever', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const digest = upstream.addBlob('library/orphan', big);
    // The first download of it starts late: the replica filling it is killed while it waits.
    upstream.inject({
      match: { kind: 'blob', pathIncludes: digest.slice(7) },
      times: 1,
      action: { delayMs: 3_000 },
    });
    const [doomed, survivor] = [replicas[0]!, replicas[1]!];
    const lost = request(`${doomed.url}/v2/library/orphan/blobs/${digest}`, { timeoutMs: 20_000 }).catch(
      (error: Error) => error,
    );
    await sleep(500);
    const started = Date.now();
    const waiting = request(`${survivor.url}/v2/library/orphan/blobs/${digest}`, { timeoutMs: 30_000 });
    await sleep(300);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const answer = await waiting;
    assert.equal(answer.status, 200, answer.text().slice(0, 200));
    assert.equal(sha256(answer.body), digest);
    assert.ok(Date.now() - started < 15_000, `the survivor answered after ${Date.now() - started} ms`);
    assert.ok((await lost) instanceof Error, "the killed replica's client saw its connection end");
  });

  it('shares leases and values through Redis: one holder at a time, taken over once expired, and a tag time only moves forward', async () => {
    const client = createClient({ url: redis.url });
    await client.connect();
    const coordinator = new RedisCoordinator(client as unknown as RedisLike, `test-${Date.now()}:`);
    try {
      const first = await coordinator.acquire('fill:x', 300);
      assert.ok(first);
      assert.equal(await coordinator.acquire('fill:x', 300), undefined, 'held by the first');
      await sleep(400);
      assert.equal(await first.renew(), false, 'an expired lease is lost');
      const second = await coordinator.acquire('fill:x', 300);
      assert.ok(second, 'taken over once expired');
      await first.release();
      assert.equal(
        await coordinator.held('fill:x'),
        true,
        "a lost lease's release does not free the new holder's",
      );
      await second.release();
      assert.equal(await coordinator.advance('asked:t', 200, 10_000), true);
      assert.equal(
        await coordinator.advance('asked:t', 100, 10_000),
        false,
        'an older observation never wins',
      );
      assert.equal(await coordinator.get('asked:t'), '200');
    } finally {
      await coordinator.close();
    }
  });
});
