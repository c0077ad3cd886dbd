/**
 * The fence between gc and the writes that make a stored blob needed: its protocol over each store it
 * runs on (one process's memory, the cache's LocalCoordinator, a real redis-server through RedisCoordinator),
 * then gc against a running registry at the moments that matter, each shown to break the registry without
 * the fence, then `pullsafe gc --redis`.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { LocalCoordinator, RedisCoordinator, type RedisLike } from '../src/proxy/index.ts';
import { AccessControl } from '../src/server/auth.ts';
import { startServer, type RunningServer } from '../src/server/app.ts';
import {
  FsBlobStore,
  GcFence,
  MemoryFenceStore,
  checkStorage,
  collectGarbage,
  openFsStorage,
  type FenceStore,
  type GcReport,
  type Storage,
} from '../src/store/index.ts';
import type { Digest } from '../src/oci/digest.ts';
import { runCliInProcess } from './helpers/cli.ts';
import { OCI_CONFIG, OCI_LAYER, serializeManifest } from './helpers/fixtures.ts';
import { OCI_INDEX, OCI_MANIFEST, pushBlob, pushManifest, request, sha256 } from './helpers/http.ts';
import { startRedis, type RedisPeer } from './helpers/redis.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const digestOf = (text: string): Digest => sha256(text) as Digest;

let redis: RedisPeer;
const redisClients: { quit(): Promise<unknown> }[] = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const client of redisClients) await client.quit().catch(() => undefined);
  await redis?.stop();
});

async function redisCoordinator(prefix = `test-${randomUUID()}:`): Promise<RedisCoordinator> {
  const client = createClient({ url: redis.url });
  client.on('error', () => undefined);
  await client.connect();
  redisClients.push(client);
  return new RedisCoordinator(client as unknown as RedisLike, prefix);
}

const stores: [string, () => Promise<FenceStore>][] = [
  ['one process (MemoryFenceStore)', async () => new MemoryFenceStore()],
  ["the cache's LocalCoordinator", async () => new LocalCoordinator()],
  ['redis-server (RedisCoordinator)', () => redisCoordinator()],
];

for (const [name, makeStore] of stores) {
  describe(`the gc fence over ${name}`, () => {
    it('keeps what a writer protected before the claim, and lets gc delete the rest', async () => {
      const fence = new GcFence(await makeStore(), { pollMs: 10 });
      const [needed, garbage] = [digestOf(`needed ${name}`), digestOf(`garbage ${name}`)];
      await fence.protect([needed]);
      const claim = await fence.claim([needed, garbage], 0);
      assert.deepEqual(claim.protected, [needed]);
      assert.deepEqual(claim.deletable, [garbage]);
      assert.ok(claim.deleteBefore > Date.now());
      await claim.release();
    });

    it('makes a writer that comes after the claim wait until gc releases it', async () => {
      const fence = new GcFence(await makeStore(), { pollMs: 10 });
      const digest = digestOf(`claimed ${name}`);
      const claim = await fence.claim([digest], 0);
      assert.deepEqual(claim.deletable, [digest]);
      let protectedAt = 0;
      const protecting = fence.protect([digest]).then(() => (protectedAt = Date.now()));
      await sleep(200);
      assert.equal(protectedAt, 0, 'the writer waits while gc may delete');
      const releasedAt = Date.now();
      await claim.release();
      await protecting;
      assert.ok(protectedAt >= releasedAt && protectedAt - releasedAt < 1_000);
      const next = await fence.claim([digest], 0);
      assert.deepEqual(next.protected, [digest], 'and its protection holds against the next run');
      await next.release();
    });

    it('leaves a digest another gc holds to it', async () => {
      const fence = new GcFence(await makeStore());
      const digest = digestOf(`busy ${name}`);
      const first = await fence.claim([digest], 0);
      const second = await fence.claim([digest], 0);
      assert.deepEqual(second.busy, [digest]);
      assert.deepEqual(second.deletable, []);
      await first.release();
      await second.release();
    });

    it('lets writers go on once the claim of a gc that died has expired', async () => {
      const fence = new GcFence(await makeStore(), { claimMs: 400, pollMs: 10 });
      const digest = digestOf(`abandoned ${name}`);
      const claim = await fence.claim([digest], 0);
      assert.ok(claim.deleteBefore - Date.now() <= 200, 'gc deletes only in the first half');
      const started = Date.now();
      await fence.protect([digest]);
      const waited = Date.now() - started;
      assert.ok(waited >= 300 && waited < 2_000, `the writer waited ${waited} ms`);
    });

    it("counts a hold for gc's grace period from the write, and a protection whatever the grace", async () => {
      const fence = new GcFence(await makeStore());
      const [held, protectedOne] = [digestOf(`held ${name}`), digestOf(`protected ${name}`)];
      await fence.hold([held]);
      await fence.protect([protectedOne]);
      const within = await fence.claim([held, protectedOne], 60_000);
      assert.deepEqual(within.protected, [held, protectedOne]);
      await within.release();
      await sleep(50);
      const past = await fence.claim([held, protectedOne], 20);
      assert.deepEqual(past.protected, [protectedOne]);
      assert.deepEqual(past.deletable, [held]);
      await past.release();
    });

    it('forgets a protection after protectMs', async () => {
      const fence = new GcFence(await makeStore(), { protectMs: 150 });
      const digest = digestOf(`expired ${name}`);
      await fence.protect([digest]);
      await sleep(300);
      const claim = await fence.claim([digest], 0);
      assert.deepEqual(claim.deletable, [digest]);
      await claim.release();
    });
  });
}

/**
 * The storage as gc sees it, with a pause at one step of the sweep where a write may slip in: after gc
 * listed the blobs (it has marked), before it unlinks `digest` (it has claimed it), or before it reads when
 * untagged manifests were linked (it is choosing which to remove).
 */
function withPause(
  storage: Storage,
  at: 'after-listing-blobs' | 'before-unlinking' | 'before-reading-manifest-times',
  pause: () => Promise<void>,
  digest?: string,
): Storage {
  let paused = false;
  const once = async (): Promise<void> => {
    if (paused) return;
    paused = true;
    await pause();
  };
  const blobs = new Proxy(storage.blobs, {
    get(target, property, receiver) {
      if (property === 'list' && at === 'after-listing-blobs') {
        return async function* () {
          yield* target.list();
          await once();
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const repositories = new Proxy(storage.repositories, {
    get(target, property, receiver) {
      if (property === 'unlinkBlob' && at === 'before-unlinking') {
        return async (repository: string, unlinked: Digest) => {
          if (unlinked === digest) await once();
          return target.unlinkBlob(repository, unlinked);
        };
      }
      if (property === 'manifestLinkedAt' && at === 'before-reading-manifest-times') {
        return async (repository: string, digest: Digest) => {
          await once();
          return target.manifestLinkedAt(repository, digest);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { ...storage, blobs, repositories };
}

/** An image manifest of the config and layers given (bytes each), as JSON. */
function imageManifest(config: Buffer, layers: Buffer[]): Buffer {
  return serializeManifest({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((layer) => ({ mediaType: OCI_LAYER, digest: sha256(layer), size: layer.length })),
  });
}

describe('gc against a registry at the moments a write can slip in', () => {
  let folder: string;
  let storage: Storage;
  let server: RunningServer;
  let fence: GcFence;
  const config = Buffer.from(
    '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
  );
  const kept = Buffer.from('a layer a tag keeps');

  // A registry of its own per test: an unfenced gc breaks the storage on purpose, and a manifest it left
  // unreadable would make every later gc in the same storage remove nothing.
  beforeEach(async () => {
    folder = await makeTempDir('pullsafe-gc-fence-');
    storage = await openFsStorage(folder);
    fence = new GcFence(new MemoryFenceStore(), { pollMs: 10, claimMs: 10_000 });
    server = await startServer({
      storage,
      gcFence: fence,
      access: await AccessControl.load({ realm: 'pullsafe', anonymousPull: true, anonymousPush: true }),
      logger: { info() {}, warn() {}, error() {} },
      host: '127.0.0.1',
      port: 0,
    });
  });
  afterEach(async () => {
    await server?.close({ immediate: true });
    if (folder) await removeTempDir(folder);
  });

  /**
   * A repository holding a tagged image (config and `kept`) and `garbage`, a blob named by nothing and
   * written before anything protected it (as one pushed long ago, whose manifest was deleted).
   */
  async function repositoryWithGarbage(name: string, garbage: Buffer): Promise<void> {
    await pushBlob(server.url, name, config);
    await pushBlob(server.url, name, kept);
    const tagged = await pushManifest(server.url, name, 'kept', OCI_MANIFEST, imageManifest(config, [kept]));
    assert.equal(tagged.status, 201, tagged.response.text());
    const { digest } = await storage.blobs.put(garbage);
    await storage.repositories.linkBlob(name, digest);
    const longAgo = new Date(Date.now() - 2 * 60 * 60_000);
    await utimes(new FsBlobStore(folder).blobPath(digest), longAgo, longAgo);
  }

  /** gc with a grace period of a minute (garbage is older), or none for --delete-untagged. */
  async function gc(fenced: boolean, view: Storage, deleteUntagged = false): Promise<GcReport> {
    const minAgeMs = deleteUntagged ? 0 : 60_000;
    return collectGarbage(view, { dryRun: false, minAgeMs, deleteUntagged, ...(fenced ? { fence } : {}) });
  }

  async function problems(): Promise<string[]> {
    return (await checkStorage(storage)).problems.map((problem) => `${problem.kind} ${problem.digest ?? ''}`);
  }

  for (const fenced of [true, false]) {
    const outcome = fenced ? 'with the fence, it is kept' : 'without the fence, the registry breaks';
    it(`a manifest PUT naming an old unreferenced blob after gc marked: ${outcome}`, async () => {
      const name = `marked-${fenced}`;
      const garbage = Buffer.from(`garbage of ${name}`);
      await repositoryWithGarbage(name, garbage);
      let put = 0;
      const report = await gc(
        fenced,
        withPause(storage, 'after-listing-blobs', async () => {
          const manifest = imageManifest(config, [garbage]);
          put = (await pushManifest(server.url, name, 'reuse', OCI_MANIFEST, manifest)).status;
        }),
      );
      assert.equal(put, 201);
      if (fenced) {
        assert.equal(report.blobsProtected, 1);
        assert.ok(!report.blobsSwept.some((blob) => blob.digest === sha256(garbage)));
        assert.deepEqual(await problems(), []);
        assert.equal((await request(`${server.url}/v2/${name}/blobs/${sha256(garbage)}`)).status, 200);
      } else {
        assert.deepEqual(await problems(), [`missing-blob ${sha256(garbage)}`]);
      }
    });

    it(`a push that HEADs an old unreferenced blob after gc marked and skips it: ${outcome}`, async () => {
      const name = `head-${fenced}`;
      const garbage = Buffer.from(`garbage of ${name}`);
      await repositoryWithGarbage(name, garbage);
      await gc(
        fenced,
        withPause(storage, 'after-listing-blobs', async () => {
          const head = await request(`${server.url}/v2/${name}/blobs/${sha256(garbage)}`, { method: 'HEAD' });
          assert.equal(head.status, 200, 'the client skips the upload');
        }),
      );
      const put = await pushManifest(
        server.url,
        name,
        'reuse',
        OCI_MANIFEST,
        imageManifest(config, [garbage]),
      );
      if (fenced) assert.equal(put.status, 201, put.response.text());
      else
        assert.equal(
          put.response.json<{ errors: { code: string }[] }>().errors[0]?.code,
          'MANIFEST_BLOB_UNKNOWN',
        );
    });

    for (const how of ['mount', 'upload'] as const) {
      it(`${how === 'mount' ? 'a' : 'an'} ${how} of a blob gc has claimed, then its manifest: ${outcome}`, async () => {
        const name = `${how}-${fenced}`;
        const garbage = Buffer.from(`garbage of ${name}`);
        await repositoryWithGarbage(name, garbage);
        const target = how === 'mount' ? `${name}-target` : name;
        if (how === 'mount') await repositoryWithGarbage(target, Buffer.from(`other garbage of ${name}`));
        const steps: string[] = [];
        const push = async (): Promise<void> => {
          if (how === 'mount') {
            const mount = await request(
              `${server.url}/v2/${target}/blobs/uploads/?mount=${sha256(garbage)}&from=${name}`,
              { method: 'POST', headers: { 'Content-Length': 0 } },
            );
            steps.push(`mount ${mount.status}`);
            if (mount.status === 202) await pushBlob(server.url, target, garbage);
          } else {
            await pushBlob(server.url, target, garbage);
            steps.push('upload');
          }
          const manifest = imageManifest(config, [garbage]);
          steps.push(
            `manifest ${(await pushManifest(server.url, target, 'reuse', OCI_MANIFEST, manifest)).status}`,
          );
        };
        let pushing: Promise<void> | undefined;
        await gc(
          fenced,
          withPause(
            storage,
            'before-unlinking',
            async () => {
              // The push goes on by itself; gc goes on once it is done or stuck at the fence.
              pushing = push();
              await Promise.race([pushing, sleep(500)]);
            },
            sha256(garbage),
          ),
        );
        await pushing;
        if (fenced) {
          assert.deepEqual(
            steps,
            how === 'mount' ? ['mount 202', 'manifest 201'] : ['upload', 'manifest 201'],
          );
          assert.deepEqual(await problems(), []);
        } else {
          assert.deepEqual(
            steps,
            how === 'mount' ? ['mount 201', 'manifest 201'] : ['upload', 'manifest 201'],
          );
          assert.ok((await problems()).includes(`missing-blob ${sha256(garbage)}`));
        }
      });
    }

    it(`an index PUT naming an old untagged manifest gc --delete-untagged is about to remove: ${outcome}`, async () => {
      const name = `untagged-${fenced}`;
      await repositoryWithGarbage(name, Buffer.from(`garbage of ${name}`));
      // An untagged manifest pushed long ago: written directly, as nothing protects it any more.
      const layer = Buffer.from(`layer of the untagged manifest of ${name}`);
      const child = imageManifest(config, [layer]);
      await storage.repositories.linkBlob(name, (await storage.blobs.put(layer)).digest);
      await storage.blobs.put(child);
      await storage.repositories.linkManifest(name, {
        digest: digestOf(child.toString()),
        mediaType: OCI_MANIFEST,
        size: child.length,
      });
      await sleep(20);
      const index = serializeManifest({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          {
            mediaType: OCI_MANIFEST,
            digest: sha256(child),
            size: child.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      });
      let put = 0;
      const report = await gc(
        fenced,
        withPause(storage, 'before-reading-manifest-times', async () => {
          put = (await pushManifest(server.url, name, 'multi', OCI_INDEX, index)).status;
        }),
        true,
      );
      assert.equal(put, 201);
      if (fenced) {
        assert.equal(report.manifestsProtected, 1);
        assert.deepEqual(await problems(), []);
      } else {
        // Either the child is gone, or the index itself (its content, stored after gc listed blobs).
        const found = await problems();
        const broken = [sha256(child), sha256(index)].some((digest) =>
          found.includes(`missing-manifest ${digest}`),
        );
        assert.ok(broken, found.join('\n'));
      }
    });
  }
});

describe('pullsafe gc --redis', () => {
  let folder: string;

  before(async () => {
    folder = await makeTempDir('pullsafe-gc-redis-');
    await openFsStorage(folder);
  });
  after(async () => {
    if (folder) await removeTempDir(folder);
  });

  it("keeps what the replicas' writes under way protect through their Redis, and sweeps it without --redis", async () => {
    const storage = await openFsStorage(folder);
    const blob = await storage.blobs.put(Buffer.from('pushed, and its manifest is not there yet'));
    const garbage = await storage.blobs.put(Buffer.from('nothing needs this'));
    // What a replica does in a manifest PUT naming the blob (serve's coordinator has the default prefix).
    await new GcFence(await redisCoordinator('pullsafe:')).protect([blob.digest]);

    const fenced = await runCliInProcess([
      'gc',
      '--storage',
      folder,
      '--min-age',
      '0',
      '--redis',
      redis.url,
      '--json',
    ]);
    assert.equal(fenced.code, 0, fenced.stderr);
    const report = JSON.parse(fenced.stdout) as GcReport;
    assert.equal(report.blobsProtected, 1);
    assert.deepEqual(
      report.blobsSwept.map((swept) => swept.digest),
      [garbage.digest],
    );
    assert.ok(await storage.blobs.stat(blob.digest));

    const text = await runCliInProcess(['gc', '--storage', folder, '--min-age', '0', '--redis', redis.url]);
    assert.match(
      text.stdout,
      /kept 1 unreferenced blob and 0 untagged manifests that pushes or fills under way need/,
    );

    const alone = await runCliInProcess(['gc', '--storage', folder, '--min-age', '0', '--json']);
    assert.equal(alone.code, 0, alone.stderr);
    assert.deepEqual(
      (JSON.parse(alone.stdout) as GcReport).blobsSwept.map((swept) => swept.digest),
      [blob.digest],
    );
  });

  it('says what is wrong with a --redis that is no Redis URL, or that nobody answers on', async () => {
    const malformed = await runCliInProcess(['gc', '--storage', folder, '--redis', 'localhost:6379']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--redis: "localhost:6379" is not a Redis URL/);
    assert.doesNotMatch(malformed.stderr, /\n\s+at /, 'no stack trace');

    const silent = await runCliInProcess(['gc', '--storage', folder, '--redis', 'redis://127.0.0.1:1'], {
      timeoutMs: 20_000,
    });
    assert.notEqual(silent.code, 0);
    assert.match(silent.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });
});
