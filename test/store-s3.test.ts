/**
 * The S3 driver: the storage contract against s3rver (with S3's default part size, and with small parts so
 * the contract's uploads cross part boundaries), and against a real bucket when PULLSAFE_TEST_S3_BUCKET and
 * AWS credentials are set; then what only S3 has.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { digestOf, type Digest } from '../src/oci/digest.ts';
import {
  StoreError,
  isLocalEndpoint,
  openS3Storage,
  parseStorageLocation,
  s3Connection,
  type S3StorageOptions,
  type Storage,
} from '../src/store/index.ts';
import { startS3Proxy } from './helpers/s3-proxy.ts';
import { startS3rver, type S3rverPeer } from './helpers/s3rver.ts';
import { storageContract } from './store-contract.ts';

let s3rver: S3rverPeer;
before(async () => {
  s3rver = await startS3rver();
});
after(async () => {
  await s3rver?.stop();
});

function s3rverOptions(extra: Partial<S3StorageOptions> = {}): S3StorageOptions {
  return {
    bucket: s3rver.bucket,
    prefix: `t-${randomBytes(6).toString('hex')}/`,
    endpoint: s3rver.endpoint,
    credentials: s3rver.credentials,
    ...extra,
  };
}

/** Opens the same bucket and prefix again, as a restarted process would. */
function reopenWith(options: S3StorageOptions) {
  return (storage: Storage): Promise<Storage> => {
    const prefix = storage.location.slice(`s3://${options.bucket}/`.length);
    return openS3Storage({ ...options, prefix });
  };
}

storageContract('s3 (s3rver)', () => openS3Storage(s3rverOptions()), {
  reopen: (storage) => reopenWith(s3rverOptions())(storage),
});
storageContract('s3 (s3rver, 64 KiB parts)', () => openS3Storage(s3rverOptions({ partSize: 64 * 1024 })), {
  reopen: (storage) => reopenWith(s3rverOptions({ partSize: 64 * 1024 }))(storage),
});

/**
 * Multipart uploads at S3's real part size, which the contract's small blobs never reach: 20 MiB in 3 MiB
 * requests, a restart in the middle (the hash is gone, so commit reads the completed upload back), a
 * refused digest, then the right one.
 */
function multipartAcrossRestart(name: string, options: () => S3StorageOptions): void {
  it(`${name}: a 20 MiB upload in 3 MiB requests survives a restart and commits verified`, async () => {
    const settings = options();
    const first = await openS3Storage(settings);
    const data = randomBytes(20 * 1024 * 1024);
    const upload = await first.blobs.startUpload('team/app');
    const step = 3 * 1024 * 1024;
    for (let offset = 0; offset < 12 * 1024 * 1024; offset += step) {
      await upload.append(Readable.from([data.subarray(offset, offset + step)]));
    }
    const second = await openS3Storage(settings);
    const found = (await second.blobs.findUpload(upload.id))!;
    assert.equal(found.size, 12 * 1024 * 1024);
    for (let offset = 12 * 1024 * 1024; offset < data.length; offset += step) {
      await found.append(Readable.from([data.subarray(offset, offset + step)]));
    }
    await assert.rejects(found.commit({ digest: digestOf('other') }), (error: unknown) => {
      return error instanceof StoreError && error.code === 'DIGEST_MISMATCH';
    });
    assert.equal(await second.blobs.stat(digestOf(data)), undefined);
    assert.deepEqual(await found.commit({ digest: digestOf(data), size: data.length }), {
      digest: digestOf(data),
      size: data.length,
    });
    const copy = collect();
    await first.blobs.sendTo(digestOf(data), undefined, copy);
    assert.ok(copy.bytes().equals(data), 'byte-exact');
    assert.equal(await first.blobs.findUpload(upload.id), undefined);
  });
}

multipartAcrossRestart('s3 (s3rver)', () => s3rverOptions());

const realBucket = process.env.PULLSAFE_TEST_S3_BUCKET;
if (realBucket) {
  // The SDK's own chain: AWS_PROFILE or keys, AWS_REGION; AWS's endpoint unless AWS_ENDPOINT_URL_S3 says.
  const real = (prefix: string): S3StorageOptions => ({
    bucket: realBucket,
    prefix,
    ...(process.env.AWS_ENDPOINT_URL_S3 ? { endpoint: process.env.AWS_ENDPOINT_URL_S3 } : {}),
  });
  const fresh = (): string => `pullsafe-test/${randomBytes(6).toString('hex')}/`;
  storageContract(`s3 (${realBucket})`, () => openS3Storage(real(fresh())), {
    reopen: (storage) => openS3Storage(real(storage.location.slice(`s3://${realBucket}/`.length))),
  });
  multipartAcrossRestart(`s3 (${realBucket})`, () => real(fresh()));
} else {
  it(
    's3 (a real bucket): the contract against AWS',
    {
      skip: 'set PULLSAFE_TEST_S3_BUCKET and AWS credentials (and AWS_REGION) to run it',
    },
    () => undefined,
  );
}

/** The keys under a storage's prefix, relative to it. */
async function keysOf(options: S3StorageOptions): Promise<string[]> {
  const client = new S3Client({
    endpoint: s3rver.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3rver.credentials,
  });
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: options.bucket,
          Prefix: options.prefix,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const object of page.Contents ?? []) keys.push(object.Key!.slice(options.prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  } finally {
    client.destroy();
  }
}

/** `count` bytes in 64 KiB chunks of one repeated random MiB: a large stream that costs no memory to make. */
function repeated(count: number): { stream: () => Readable; digest: Digest } {
  const block = randomBytes(1024 * 1024);
  const chunks = function* (): Generator<Buffer> {
    for (let offset = 0; offset < count; offset += 64 * 1024) {
      const start = offset % block.length;
      yield block.subarray(start, start + Math.min(64 * 1024, count - offset));
    }
  };
  const hash = createHash('sha256');
  for (const chunk of chunks()) hash.update(chunk);
  return { stream: () => Readable.from(chunks()), digest: `sha256:${hash.digest('hex')}` as Digest };
}

describe('s3: uploads', () => {
  it('a blob becomes visible under its digest only at commit; the upload area goes with it', async () => {
    const options = s3rverOptions();
    const { blobs } = await openS3Storage(options);
    const data = randomBytes(20 * 1024 * 1024);
    const digest = digestOf(data);
    const upload = await blobs.startUpload('team/app');
    for (let offset = 0; offset < data.length; offset += 3 * 1024 * 1024) {
      await upload.append(Readable.from([data.subarray(offset, offset + 3 * 1024 * 1024)]));
    }
    const during = await keysOf(options);
    assert.ok(!during.some((key) => key.startsWith('blobs/')), during.join(' '));
    const area = `uploads/${upload.id}/`;
    // 20 MiB in 3 MiB requests: two 8 MiB parts (in the multipart upload, not listed), then what the
    // request that filled the second part left over, then the last request.
    assert.deepEqual(during, [
      `${area}pending-16777216-18874368`,
      `${area}pending-18874368-20971520`,
      `${area}state.json`,
    ]);
    assert.equal((await blobs.findUpload(upload.id))?.size, data.length);

    await upload.commit({ digest, size: data.length });
    const hex = digest.slice('sha256:'.length);
    assert.deepEqual(await keysOf(options), [`blobs/sha256/${hex.slice(0, 2)}/${hex}`]);
    const copy = collect();
    await blobs.sendTo(digest, undefined, copy);
    assert.ok(copy.bytes().equals(data), 'byte-exact');
  });

  it('an upload holds at most two parts in memory whatever its size', async () => {
    const { blobs } = await openS3Storage(s3rverOptions());
    const size = 96 * 1024 * 1024;
    const blob = repeated(size);
    global.gc?.();
    const baseline = process.memoryUsage();
    let peakBuffers = baseline.arrayBuffers;
    let peakRss = baseline.rss;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peakBuffers = Math.max(peakBuffers, now.arrayBuffers);
      peakRss = Math.max(peakRss, now.rss);
    }, 20);
    const started = Date.now();
    try {
      const upload = await blobs.startUpload();
      await upload.append(blob.stream());
      assert.deepEqual(await upload.commit({ digest: blob.digest, size }), { digest: blob.digest, size });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `96 MiB upload to s3rver: ${seconds.toFixed(1)} s, buffers +${mib(peakBuffers - baseline.arrayBuffers)} MiB, rss +${mib(peakRss - baseline.rss)} MiB`,
    );
    assert.ok(
      peakBuffers - baseline.arrayBuffers < 48 * 1024 * 1024,
      `buffers grew ${mib(peakBuffers - baseline.arrayBuffers)} MiB`,
    );
    assert.deepEqual(await blobs.stat(blob.digest), { digest: blob.digest, size });
  });

  it('cleanUploads removes an abandoned multipart upload whole', async () => {
    const options = s3rverOptions({ partSize: 64 * 1024 });
    const { blobs } = await openS3Storage(options);
    const upload = await blobs.startUpload();
    await upload.append(Readable.from([randomBytes(200_000)]));
    assert.equal((await keysOf(options)).length, 2, 'its state and its pending bytes');
    assert.equal(await blobs.cleanUploads(60_000), 0);
    assert.equal(await blobs.cleanUploads(0), 1);
    assert.deepEqual(await keysOf(options), []);
    assert.equal(await blobs.findUpload(upload.id), undefined);
  });

  it('a second request on an upload while one writes is BUSY', async () => {
    const { blobs } = await openS3Storage(s3rverOptions());
    const upload = await blobs.startUpload();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = Readable.from(
      (async function* () {
        yield Buffer.from('first');
        await gate;
        yield Buffer.from('second');
      })(),
    );
    const writing = upload.append(slow);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const again = (await blobs.findUpload(upload.id))!;
    await assert.rejects(again.append(Readable.from([Buffer.from('x')])), (error: unknown) => {
      return error instanceof StoreError && error.code === 'BUSY';
    });
    release();
    assert.equal(await writing, 'firstsecond'.length);
  });
});

/** A sink that keeps what it is given. */
function collect(): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk)); // a sender may reuse the memory after the callback
      done();
    },
  });
  return Object.assign(sink, { bytes: () => Buffer.concat(chunks) });
}

describe('s3: sending blobs', () => {
  it('a send cut by the network goes on with a ranged GET from where it was, at most three times', async () => {
    const proxy = await startS3Proxy(s3rver.endpoint);
    try {
      const { blobs } = await openS3Storage(s3rverOptions({ endpoint: proxy.endpoint }));
      const data = randomBytes(3 * 1024 * 1024);
      const { digest } = await blobs.put(data);
      proxy.cut(2);
      const whole = collect();
      await blobs.sendTo(digest, undefined, whole);
      assert.ok(whole.bytes().equals(data), 'every byte, once, in order');
      // Each resumed GET starts at the byte the send had reached (at most where the proxy cut it).
      const [first, second, third] = proxy.ranges.slice(-3);
      assert.equal(first, 'whole');
      const from = (range: string | undefined): number => {
        const match = new RegExp(`^bytes=(\\d+)-${data.length - 1}$`).exec(range ?? '');
        assert.ok(match, range);
        return Number(match[1]);
      };
      assert.ok(from(second) > 0 && from(second) <= 256 * 1024, second);
      assert.ok(from(third) > from(second) && from(third) <= from(second) + 256 * 1024, third);

      proxy.cut(2);
      const part = collect();
      await blobs.sendTo(digest, { start: 1000, end: 2_000_000 }, part);
      assert.ok(part.bytes().equals(data.subarray(1000, 2_000_001)));

      proxy.cut(10);
      await assert.rejects(blobs.sendTo(digest, undefined, collect()), /reading the blob failed/);
    } finally {
      proxy.stop();
    }
  });
});

describe('s3: a part S3 refuses', () => {
  it('fails the append, keeps the upload at what S3 holds, and the upload goes on from there', async () => {
    const proxy = await startS3Proxy(s3rver.endpoint);
    try {
      const { blobs } = await openS3Storage(s3rverOptions({ endpoint: proxy.endpoint, partSize: 64 * 1024 }));
      const data = randomBytes(400_000);
      const upload = await blobs.startUpload();
      await upload.append(Readable.from([data.subarray(0, 100_000)]));
      // Every attempt of the next part upload is refused (the SDK repeats a 500 twice).
      const partUploads = (method: string, url: string): boolean =>
        method === 'PUT' && url.includes('partNumber=');
      proxy.refuse(3, 500, 'InternalError', partUploads);
      await assert.rejects(upload.append(Readable.from([data.subarray(100_000, 300_000)])));
      proxy.refuse(0, 0, '');
      const resumed = await blobs.findUpload(upload.id);
      assert.ok(resumed, 'the upload is still there');
      assert.ok(resumed.size >= 100_000 && resumed.size <= 300_000, `size ${resumed.size}`);
      await resumed.append(Readable.from([data.subarray(resumed.size)]));
      assert.deepEqual(await resumed.commit({ digest: digestOf(data), size: data.length }), {
        digest: digestOf(data),
        size: data.length,
      });
      const sink = collect();
      await blobs.sendTo(digestOf(data), undefined, sink);
      assert.ok(sink.bytes().equals(data), 'byte-exact after the refused part');
    } finally {
      proxy.stop();
    }
  });
});

describe('s3: opening blobs to send', () => {
  it('knows the size from the GET itself: one request, no HEAD, and the bytes follow when asked', async () => {
    const proxy = await startS3Proxy(s3rver.endpoint);
    try {
      const { blobs } = await openS3Storage(s3rverOptions({ endpoint: proxy.endpoint }));
      const data = randomBytes(600_000);
      const { digest } = await blobs.put(data);
      proxy.methods.clear();
      const opened = await blobs.openSend(digest);
      assert.ok(opened);
      assert.equal(opened.size, data.length);
      const sink = collect();
      await opened.sendTo(sink);
      assert.ok(sink.bytes().equals(data), 'byte-exact');
      assert.deepEqual([...proxy.methods], [['GET', 1]]);
      assert.equal(await blobs.openSend(digestOf('not stored')), undefined);
    } finally {
      proxy.stop();
    }
  });

  it('closes the GET of a send given up unused, and a send to a sink already gone', async () => {
    const proxy = await startS3Proxy(s3rver.endpoint);
    try {
      const { blobs } = await openS3Storage(s3rverOptions({ endpoint: proxy.endpoint }));
      const { digest } = await blobs.put(randomBytes(4 * 1024 * 1024));
      const before = proxy.openConnections();
      for (let round = 0; round < 5; round++) {
        const opened = await blobs.openSend(digest);
        assert.ok(opened);
        opened.cancel();
      }
      const gone = collect();
      gone.destroy();
      const opened = await blobs.openSend(digest);
      await assert.rejects(opened!.sendTo(gone), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      for (let wait = 0; wait < 50 && proxy.openConnections() > before; wait++) await sleep(20);
      assert.ok(proxy.openConnections() <= before, `${proxy.openConnections()} open, ${before} before`);
    } finally {
      proxy.stop();
    }
  });

  it('repeats a GET S3 answered with SlowDown or a 500, and reports an access denial at once', async () => {
    const proxy = await startS3Proxy(s3rver.endpoint);
    try {
      const { blobs } = await openS3Storage(s3rverOptions({ endpoint: proxy.endpoint }));
      const data = randomBytes(100_000);
      const { digest } = await blobs.put(data);
      proxy.refuse(1, 503, 'SlowDown');
      let sink = collect();
      await blobs.sendTo(digest, undefined, sink);
      assert.ok(sink.bytes().equals(data));
      proxy.refuse(2, 500, 'InternalError');
      sink = collect();
      await blobs.sendTo(digest, undefined, sink);
      assert.ok(sink.bytes().equals(data));
      proxy.ranges.length = 0;
      proxy.refuse(1, 403, 'AccessDenied');
      await assert.rejects(blobs.sendTo(digest, undefined, collect()), /403 AccessDenied.*said by the test/);
      assert.equal(proxy.ranges.length, 1, 'a denial is not repeated');
      proxy.refuse(5, 503, 'SlowDown');
      await assert.rejects(blobs.openSend(digest), /503 SlowDown/);
    } finally {
      proxy.refuse(0, 0, '');
      proxy.stop();
    }
  });
});

describe('s3: locations and endpoints', () => {
  it('parses s3://BUCKET/PREFIX and refuses what S3 would not take', () => {
    assert.deepEqual(parseStorageLocation('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseStorageLocation('s3://my.bucket/a/b/'), {
      kind: 's3',
      bucket: 'my.bucket',
      prefix: 'a/b/',
    });
    assert.deepEqual(parseStorageLocation('./data'), { kind: 'fs', path: './data' });
    assert.deepEqual(parseStorageLocation('/srv/registry'), { kind: 'fs', path: '/srv/registry' });
    for (const bad of [
      's3://',
      's3://ab',
      's3://UPPER/x',
      's3://a_b/x',
      's3://bucket/a//b',
      's3://bucket/../x',
      's3://bucket/a b',
      'gs://bucket/x',
      'https://bucket/x',
    ]) {
      assert.throws(
        () => parseStorageLocation(bad),
        (error: unknown) => error instanceof StoreError && error.code === 'INVALID_KEY',
        bad,
      );
    }
  });

  it('takes the endpoint from the config, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL', () => {
    assert.deepEqual(s3Connection(undefined, {}), {});
    assert.deepEqual(s3Connection(undefined, { AWS_ENDPOINT_URL: 'http://a:1' }), { endpoint: 'http://a:1' });
    assert.deepEqual(
      s3Connection(undefined, { AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://b:2' }),
      { endpoint: 'http://b:2' },
    );
    assert.deepEqual(
      s3Connection(
        { endpoint: 'https://c', region: 'eu-west-1', forcePathStyle: false },
        { AWS_ENDPOINT_URL_S3: 'http://b:2' },
      ),
      { endpoint: 'https://c', region: 'eu-west-1', forcePathStyle: false },
    );
    assert.throws(
      () => s3Connection(undefined, { AWS_ENDPOINT_URL_S3: 'localhost:9000' }),
      /AWS_ENDPOINT_URL_S3: "localhost:9000" is not/,
    );
  });

  it('uses path-style addressing by default for localhost and IP endpoints only', () => {
    for (const local of [
      'http://localhost:9000',
      'http://127.0.0.1:4566',
      'http://10.0.0.5',
      'http://[::1]:9000',
      'http://minio.localhost',
    ]) {
      assert.equal(isLocalEndpoint(local), true, local);
    }
    for (const named of ['https://s3.eu-west-1.amazonaws.com', 'https://minio.example.com', 'not a url']) {
      assert.equal(isLocalEndpoint(named), false, named);
    }
  });
});
