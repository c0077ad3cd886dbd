// Remembered repository links and the channel on which processes sharing a bucket tell each other which links
// they removed: in process (the store's promises), over a real redis-server between two storages on one
// s3rver bucket, and between two `pullsafe serve` replicas.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { connectLinkRemovals } from '../src/cli/link-channel.ts';
import { validateServeConfig } from '../src/config/serve.ts';
import type { Digest } from '../src/oci/digest.ts';
import { MemoryObjects } from '../src/store/memory.ts';
import { ObjectRepositoryStore } from '../src/store/object-repositories.ts';
import type { ObjectStore } from '../src/store/objects.ts';
import {
  openS3Storage,
  type LinkRemovalChannel,
  type LinkRemovalListener,
  type ManifestLink,
  type S3StorageOptions,
  type Storage,
} from '../src/store/index.ts';
import { runCli, startServeProcess, type ServeProcess } from './helpers/cli.ts';
import { OCI_MANIFEST, getManifest, pushBlob, pushManifest, request, sha256 } from './helpers/http.ts';
import { startRedis, type RedisPeer } from './helpers/redis.ts';
import { startS3Proxy, type S3Proxy } from './helpers/s3-proxy.ts';
import { startS3rver, type S3rverPeer } from './helpers/s3rver.ts';
import { makeTempDir, removeTempDir } from './helpers/tmp.ts';

const digest = (seed: string): Digest => sha256(seed) as Digest;
const manifestLink = (seed: string): ManifestLink => ({
  digest: digest(seed),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  size: 100,
});

/** Counts the reads of link objects (head, get) that reach the objects, as an S3 request count would. */
class CountingObjects implements ObjectStore {
  reads = 0;
  /** When set, a head waits for it after the objects answered (a reply still on its way). */
  heldHead: Promise<void> | undefined;
  private readonly inner: ObjectStore;

  constructor(inner: ObjectStore) {
    this.inner = inner;
  }

  async get(key: string) {
    this.reads++;
    return this.inner.get(key);
  }
  put(key: string, body: Buffer | string) {
    return this.inner.put(key, body);
  }
  async head(key: string) {
    this.reads++;
    const info = await this.inner.head(key);
    await this.heldHead;
    return info;
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
}

/** One process's end of a channel whose other ends are in this process; a disconnected end hears nothing. */
class InProcessChannel implements LinkRemovalChannel {
  private readonly ends: Set<InProcessChannel>;
  private listener: LinkRemovalListener | undefined;
  private connected = true;

  constructor(ends: Set<InProcessChannel>) {
    this.ends = ends;
  }

  async announce(key: string): Promise<void> {
    for (const end of this.ends) if (end.connected) end.listener?.removed(key);
  }

  listen(listener: LinkRemovalListener): () => void {
    this.listener = listener;
    this.ends.add(this);
    listener.hearing(this.connected);
    return () => this.ends.delete(this);
  }

  disconnect(): void {
    this.connected = false;
    this.listener?.hearing(false);
  }

  reconnect(): void {
    this.connected = true;
    this.listener?.hearing(true);
  }
}

describe('remembered links, with removals shared in process', () => {
  const tenMinutes = 600_000;
  function twoProcesses(options: { share: boolean }) {
    const bucket = new MemoryObjects();
    const ends = new Set<InProcessChannel>();
    const counted = new CountingObjects(bucket);
    const a = new ObjectRepositoryStore(counted, { rememberLinksMs: tenMinutes });
    const b = new ObjectRepositoryStore(bucket, { rememberLinksMs: tenMinutes });
    const channelA = new InProcessChannel(ends);
    if (options.share) {
      a.shareLinkRemovals(channelA);
      b.shareLinkRemovals(new InProcessChannel(ends));
    }
    return { a, b, counted, channelA };
  }

  it('a link read once is answered from memory, and forgotten as soon as another process removes it', async () => {
    const { a, b, counted } = twoProcesses({ share: true });
    await b.linkBlob('app', digest('layer'));
    await b.linkManifest('app', manifestLink('manifest'));
    assert.equal(await a.hasBlob('app', digest('layer')), true);
    assert.deepEqual(await a.getManifest('app', digest('manifest')), manifestLink('manifest'));
    const reads = counted.reads;
    assert.equal(await a.hasBlob('app', digest('layer')), true);
    assert.ok(await a.getManifest('app', digest('manifest')));
    assert.equal(counted.reads, reads, 'remembered: no read');

    assert.equal(await b.unlinkBlob('app', digest('layer')), true);
    assert.equal(await b.unlinkManifest('app', digest('manifest')), true);
    assert.equal(await a.hasBlob('app', digest('layer')), false);
    assert.equal(await a.getManifest('app', digest('manifest')), undefined);
  });

  it('without the channel, a link another process removed is still answered (what the channel fixes)', async () => {
    const { a, b } = twoProcesses({ share: false });
    await b.linkBlob('app', digest('layer'));
    assert.equal(await a.hasBlob('app', digest('layer')), true);
    await b.unlinkBlob('app', digest('layer'));
    assert.equal(await a.hasBlob('app', digest('layer')), true);
  });

  it('a process forgets a link it removes itself, channel or not', async () => {
    const { a } = twoProcesses({ share: false });
    await a.linkBlob('app', digest('layer'));
    assert.equal(await a.hasBlob('app', digest('layer')), true);
    assert.equal(await a.unlinkBlob('app', digest('layer')), true);
    assert.equal(await a.hasBlob('app', digest('layer')), false);
    assert.equal(await a.unlinkBlob('app', digest('layer')), false);
  });

  it('while disconnected nothing is remembered, and what was remembered before is dropped', async () => {
    const { a, b, counted, channelA } = twoProcesses({ share: true });
    await b.linkBlob('app', digest('kept'));
    await b.linkBlob('app', digest('removed'));
    assert.equal(await a.hasBlob('app', digest('kept')), true);
    assert.equal(await a.hasBlob('app', digest('removed')), true);

    channelA.disconnect();
    await b.unlinkBlob('app', digest('removed')); // a misses this message
    assert.equal(await a.hasBlob('app', digest('removed')), false);
    const reads = counted.reads;
    assert.equal(await a.hasBlob('app', digest('kept')), true);
    assert.equal(await a.hasBlob('app', digest('kept')), true);
    assert.equal(counted.reads, reads + 2, 'every answer read from the objects while disconnected');

    channelA.reconnect();
    assert.equal(await a.hasBlob('app', digest('kept')), true);
    const afterReconnect = counted.reads;
    assert.equal(await a.hasBlob('app', digest('kept')), true);
    assert.equal(counted.reads, afterReconnect, 'remembered again once connected');
  });

  it('a read whose answer crosses a removal does not remember what it found', async () => {
    const { a, b, counted } = twoProcesses({ share: true });
    await b.linkBlob('app', digest('layer'));
    let release = (): void => undefined;
    counted.heldHead = new Promise((resolve) => (release = resolve));
    const reading = a.hasBlob('app', digest('layer'));
    await sleep(10); // the objects answered "present"; the answer is held
    await b.unlinkBlob('app', digest('layer'));
    release();
    counted.heldHead = undefined;
    assert.equal(await reading, true, 'present when it was read');
    assert.equal(await a.hasBlob('app', digest('layer')), false, 'not remembered');
  });
});

describe('s3.rememberLinksSeconds', () => {
  it('defaults to 10 minutes and takes 0 to 3600 whole seconds', () => {
    assert.equal(validateServeConfig({}, 'test').s3.rememberLinksSeconds, 600);
    assert.equal(validateServeConfig({ s3: {} }, 'test').s3.rememberLinksSeconds, 600);
    assert.equal(validateServeConfig({ s3: { rememberLinksSeconds: 0 } }, 'test').s3.rememberLinksSeconds, 0);
    for (const bad of [-1, 3601, 1.5, '60']) {
      assert.throws(
        () => validateServeConfig({ s3: { rememberLinksSeconds: bad } }, 'test'),
        /s3\.rememberLinksSeconds/,
        String(bad),
      );
    }
  });
});

/** Polls `check` every 20 ms until it is true; returns how long that took, or fails after `limitMs`. */
async function within(limitMs: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (let attempt = 0; attempt < limitMs / 20 + 1; attempt++) {
    if (await check()) return Date.now() - started;
    await sleep(20);
  }
  assert.fail(`${what}: not within ${limitMs} ms`);
}

describe('removals shared through Redis, two storages on one s3rver bucket', () => {
  let redis: RedisPeer;
  let s3rver: S3rverPeer;
  let proxy: S3Proxy;
  const channels: { close(): Promise<void> }[] = [];

  before(async () => {
    redis = await startRedis();
    s3rver = await startS3rver();
    proxy = await startS3Proxy(s3rver.endpoint);
  });
  after(async () => {
    for (const channel of channels) await channel.close();
    proxy?.stop();
    await s3rver?.stop();
    await redis?.stop();
  });

  /** Storage A through the counting proxy, B straight to s3rver, both on one prefix. */
  async function twoReplicas(options: { share: boolean }): Promise<{ a: Storage; b: Storage }> {
    const settings: S3StorageOptions = {
      bucket: s3rver.bucket,
      prefix: `links-${randomBytes(4).toString('hex')}/`,
      endpoint: s3rver.endpoint,
      credentials: s3rver.credentials,
    };
    const a = await openS3Storage({ ...settings, endpoint: proxy.endpoint });
    const b = await openS3Storage(settings);
    if (options.share) {
      for (const storage of [a, b]) {
        const channel = await connectLinkRemovals(redis.url, { listen: true });
        channels.push(channel);
        storage.shareLinkRemovals?.(channel);
      }
    }
    return { a, b };
  }

  it('A forgets within 2 s a link B removes, and asks S3 nothing for a link it remembers', async () => {
    const { a, b } = await twoReplicas({ share: true });
    await b.repositories.linkBlob('app', digest('layer'));
    await b.repositories.linkManifest('app', manifestLink('manifest'));
    assert.equal(await a.repositories.hasBlob('app', digest('layer')), true);
    assert.ok(await a.repositories.getManifest('app', digest('manifest')));
    const requests = proxy.requests();
    for (let round = 0; round < 5; round++) {
      assert.equal(await a.repositories.hasBlob('app', digest('layer')), true);
      assert.ok(await a.repositories.getManifest('app', digest('manifest')));
    }
    assert.equal(proxy.requests(), requests, 'remembered links cost no S3 request');

    await b.repositories.unlinkBlob('app', digest('layer'));
    await b.repositories.unlinkManifest('app', digest('manifest'));
    await within(
      2_000,
      'A answers hasBlob false',
      async () => !(await a.repositories.hasBlob('app', digest('layer'))),
    );
    await within(
      2_000,
      'A answers getManifest undefined',
      async () => (await a.repositories.getManifest('app', digest('manifest'))) === undefined,
    );
  });

  it('without the channel A answers from memory for a link B removed (what the channel fixes)', async () => {
    const { a, b } = await twoReplicas({ share: false });
    await b.repositories.linkBlob('app', digest('stale'));
    assert.equal(await a.repositories.hasBlob('app', digest('stale')), true);
    await b.repositories.unlinkBlob('app', digest('stale'));
    await sleep(500);
    assert.equal(await a.repositories.hasBlob('app', digest('stale')), true);
  });

  it('a subscriber cut off and back forgets everything, so a removal it missed is not answered', async () => {
    const { a, b } = await twoReplicas({ share: true });
    const settings: S3StorageOptions = {
      bucket: s3rver.bucket,
      prefix: b.location.slice(`s3://${s3rver.bucket}/`.length),
      endpoint: s3rver.endpoint,
      credentials: s3rver.credentials,
    };
    const deaf = await openS3Storage(settings); // removes without telling anyone: a message A never gets
    await b.repositories.linkBlob('app', digest('missed'));
    assert.equal(await a.repositories.hasBlob('app', digest('missed')), true);
    await deaf.repositories.unlinkBlob('app', digest('missed'));
    assert.equal(await a.repositories.hasBlob('app', digest('missed')), true, 'still remembered');

    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      await within(5_000, 'A forgets after its subscriber reconnects', async () => {
        return !(await a.repositories.hasBlob('app', digest('missed')));
      });
      // Subscribed again: A remembers, ignores what is not a link key, and hears the next removal.
      await b.repositories.linkBlob('app', digest('after'));
      await within(5_000, 'A remembers again', async () => {
        const before = proxy.requests();
        await a.repositories.hasBlob('app', digest('after'));
        return proxy.requests() === before;
      });
      await admin.publish('pullsafe:links', 'x'.repeat(5000));
      await admin.publish('pullsafe:links', '');
      await sleep(100);
      const before = proxy.requests();
      assert.equal(await a.repositories.hasBlob('app', digest('after')), true);
      assert.equal(proxy.requests(), before, 'still remembered after messages that name no link');
      await b.repositories.unlinkBlob('app', digest('after'));
      await within(2_000, 'A hears the next removal', async () => {
        return !(await a.repositories.hasBlob('app', digest('after')));
      });
    } finally {
      await admin.quit();
    }
  });
});

describe('connecting the links channel', () => {
  it('a Redis nobody answers on is a configuration error naming it, within about 5 s', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await new Promise((resolve) => closed.close(resolve));
    const started = Date.now();
    await assert.rejects(
      connectLinkRemovals(`redis://127.0.0.1:${port}`, { listen: true }),
      (error: Error) => {
        assert.match(error.message, new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}`));
        assert.equal((error as { code?: string }).code, 'CONFIG_INVALID');
        return true;
      },
    );
    assert.ok(Date.now() - started < 8_000);
  });
});

describe('two pullsafe serve replicas with --redis on one bucket', () => {
  let redis: RedisPeer;
  let s3rver: S3rverPeer;
  let folder: string;
  const replicas: ServeProcess[] = [];

  before(async () => {
    redis = await startRedis();
    s3rver = await startS3rver();
    Object.assign(process.env, s3rver.env);
    folder = await makeTempDir('pullsafe-links-');
    const config = join(folder, 'serve.yaml');
    await writeFile(config, `s3:\n  rememberLinksSeconds: 3600\n`);
    for (let index = 0; index < 2; index++) {
      replicas.push(
        await startServeProcess(
          ['--config', config, '--storage', `s3://${s3rver.bucket}/served`, '--redis', redis.url],
          30_000,
        ),
      );
    }
  });
  after(async () => {
    for (const replica of replicas) {
      if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
      await replica.exited;
    }
    await s3rver?.stop();
    await redis?.stop();
    if (folder) await removeTempDir(folder);
  });

  it('a blob deleted through one replica is unknown on the other within 2 s', async () => {
    const [a, b] = replicas as [ServeProcess, ServeProcess];
    const blob = await pushBlob(b.url, 'team/app', randomBytes(1024));
    const url = (base: string): string => `${base}/v2/team/app/blobs/${blob}`;
    assert.equal((await request(url(a.url), { method: 'HEAD' })).status, 200);
    assert.equal((await request(url(b.url), { method: 'DELETE' })).status, 202);
    await within(2_000, 'HEAD on the other replica answers 404', async () => {
      return (await request(url(a.url), { method: 'HEAD' })).status === 404;
    });
  });

  it('a manifest pullsafe gc --redis removes is unknown on a replica that had read it', async () => {
    const [a, b] = replicas as [ServeProcess, ServeProcess];
    const config = Buffer.from('{}');
    const layer = randomBytes(512);
    const descriptor = async (data: Buffer, mediaType: string) => ({
      mediaType,
      digest: await pushBlob(b.url, 'team/gone', data),
      size: data.length,
    });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: await descriptor(config, 'application/vnd.oci.image.config.v1+json'),
        layers: [await descriptor(layer, 'application/vnd.oci.image.layer.v1.tar')],
      }),
    );
    const pushed = await pushManifest(b.url, 'team/gone', sha256(manifest), OCI_MANIFEST, manifest);
    assert.equal(pushed.status, 201);
    assert.equal((await getManifest(a.url, 'team/gone', pushed.digest)).status, 200);

    // A manifest PUT keeps the manifest from gc for an hour (the gc fence, in Redis): that hour has passed.
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.flushAll();
    await admin.quit();
    const gc = await runCli(
      ['gc', '--storage', `s3://${s3rver.bucket}/served`, '--min-age', '0', '--delete-untagged', '--json'],
      { env: { ...s3rver.env, PULLSAFE_REDIS: redis.url } },
    );
    assert.equal(gc.code, 0, gc.stderr);
    const report = JSON.parse(gc.stdout) as { manifestsRemoved: { digest: string }[] };
    assert.deepEqual(
      report.manifestsRemoved.map((removed) => removed.digest),
      [pushed.digest],
      gc.stdout,
    );
    await within(2_000, 'GET by digest on the replica that read it answers 404', async () => {
      return (await getManifest(a.url, 'team/gone', pushed.digest)).status === 404;
    });
  });
});
