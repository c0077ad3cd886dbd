/**
 * The storage contract: every driver of BlobStore and RepositoryStore must pass these. A driver's test
 * file calls `storageContract(name, open)` with a function that opens a fresh, empty storage, and for a
 * driver whose storage outlives the process, `reopen`: a second, independent opening of the same storage
 * (what a restarted process sees).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { digestOf, type Digest } from '../src/oci/digest.ts';
import { StoreError, type Storage } from '../src/store/index.ts';

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof StoreError && error.code === code);
}

/** A sink that keeps what it is given; `failAfter` bytes make it fail like a client that hung up. */
function collector(failAfter = Infinity): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > failAfter) {
        done(Object.assign(new Error('client went away'), { code: 'ECONNRESET' }));
        return;
      }
      // Copied, as a socket copies into the kernel: senders may reuse a chunk's memory after its callback.
      chunks.push(Buffer.from(chunk));
      // Asynchronous, so the sender meets backpressure.
      setImmediate(done);
    },
  });
  // Its owner listens for errors, as the server does on responses.
  sink.on('error', () => undefined);
  return Object.assign(sink, { bytes: () => Buffer.concat(chunks) });
}

/** Yields `data`, then fails like a request whose client hung up mid-body. */
async function* cutAfter(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

export function storageContract(
  driver: string,
  open: () => Promise<Storage>,
  options: { reopen?: (storage: Storage) => Promise<Storage> } = {},
): void {
  describe(`${driver}: BlobStore`, () => {
    it('commits an upload only after checking digest and size', async () => {
      const { blobs } = await open();
      const data = randomBytes(100_000);
      const digest = digestOf(data);
      const upload = await blobs.startUpload();
      await upload.append(Readable.from([data.subarray(0, 40_000)]));
      assert.equal(await blobs.stat(digest), undefined, 'invisible before commit');
      await upload.append(Readable.from([data.subarray(40_000)]));
      assert.deepEqual(await upload.commit({ digest, size: data.length }), { digest, size: data.length });
      assert.deepEqual(await blobs.stat(digest), { digest, size: data.length });
      assert.deepEqual(await readAll(await blobs.open(digest)), data);
    });

    it('refuses a wrong digest or size and keeps nothing under the claimed digest', async () => {
      const { blobs } = await open();
      const data = randomBytes(1000);
      const claimed = digestOf('other');
      const upload = await blobs.startUpload();
      await upload.append(Readable.from([data]));
      await rejectsWith(upload.commit({ digest: claimed }), 'DIGEST_MISMATCH');
      assert.equal(await blobs.stat(claimed), undefined);
      assert.equal(await blobs.stat(digestOf(data)), undefined);
      const sized = await blobs.startUpload();
      await sized.append(Readable.from([data]));
      await rejectsWith(sized.commit({ digest: digestOf(data), size: 999 }), 'SIZE_MISMATCH');
      assert.equal(await blobs.stat(digestOf(data)), undefined);
    });

    it('reads ranges', async () => {
      const { blobs } = await open();
      const data = randomBytes(5000);
      const { digest } = await blobs.put(data);
      assert.deepEqual(
        await readAll(await blobs.open(digest, { start: 10, end: 19 })),
        data.subarray(10, 20),
      );
      assert.deepEqual(await blobs.read(digest, 5000), data);
      await rejectsWith(blobs.read(digest, 4999), 'TOO_LARGE');
    });

    it('reports missing blobs as NOT_FOUND', async () => {
      const { blobs } = await open();
      const digest = digestOf('missing');
      await rejectsWith(blobs.open(digest), 'NOT_FOUND');
      await rejectsWith(blobs.read(digest, 10), 'NOT_FOUND');
      assert.equal(await blobs.delete(digest), false);
    });

    it('survives concurrent uploads of the same content', async () => {
      const { blobs } = await open();
      const data = randomBytes(300_000);
      const digest = digestOf(data);
      const results = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const upload = await blobs.startUpload();
          // Several chunks so the uploads interleave.
          for (let offset = 0; offset < data.length; offset += 50_000) {
            await upload.append(Readable.from([data.subarray(offset, offset + 50_000)]));
          }
          return upload.commit({ digest });
        }),
      );
      for (const result of results) assert.deepEqual(result, { digest, size: data.length });
      assert.deepEqual(await readAll(await blobs.open(digest)), data);
    });

    it('finds uploads by id across handles, and aborts them', async () => {
      const { blobs } = await open();
      const upload = await blobs.startUpload();
      await upload.append(Readable.from([Buffer.from('hello ')]));
      const again = await blobs.findUpload(upload.id);
      assert.ok(again);
      assert.equal(again.size, 6);
      await again.append(Readable.from([Buffer.from('world')]));
      const info = await again.commit({ digest: digestOf('hello world') });
      assert.equal(info.size, 11);
      assert.equal(await blobs.findUpload(upload.id), undefined, 'committed uploads are gone');

      const owned = await blobs.startUpload('team/app');
      assert.equal(owned.owner, 'team/app');
      assert.equal(
        (await blobs.findUpload(owned.id))?.owner,
        'team/app',
        'the owner is kept with the upload',
      );
      assert.equal(upload.owner, undefined);
      await owned.abort();

      const aborted = await blobs.startUpload();
      await aborted.abort();
      assert.equal(await blobs.findUpload(aborted.id), undefined);
      assert.equal(await blobs.findUpload('../../etc'), undefined);
      assert.equal(await blobs.findUpload('not-an-id'), undefined);
    });

    it('bounds what one append accepts', async () => {
      const { blobs } = await open();
      const upload = await blobs.startUpload();
      await rejectsWith(upload.append(Readable.from([randomBytes(100)]), { maxBytes: 50 }), 'TOO_LARGE');
    });

    it('cleans uploads older than an age', async () => {
      const { blobs } = await open();
      const upload = await blobs.startUpload();
      assert.equal(await blobs.cleanUploads(60_000), 0);
      assert.ok(await blobs.findUpload(upload.id));
      assert.equal(await blobs.cleanUploads(0), 1);
      assert.equal(await blobs.findUpload(upload.id), undefined);
    });

    it('lists committed blobs, and deletes them', async () => {
      const { blobs } = await open();
      const a = await blobs.put(Buffer.from('a'));
      const b = await blobs.put(Buffer.from('b'));
      const sha512 = await blobs.put(Buffer.from('c'), digestOf('c', 'sha512'));
      const listed: string[] = [];
      for await (const blob of blobs.list()) listed.push(blob.digest);
      assert.deepEqual(listed.sort(), [a.digest, b.digest, sha512.digest].sort());
      assert.equal(await blobs.delete(a.digest), true);
      assert.equal(await blobs.stat(a.digest), undefined);
    });

    it('put verifies a given digest', async () => {
      const { blobs } = await open();
      await rejectsWith(blobs.put(Buffer.from('x'), digestOf('y')), 'DIGEST_MISMATCH');
    });

    it('sends a blob or a range into a sink without ending it, and NOT_FOUND before writing anything', async () => {
      const { blobs } = await open();
      const data = randomBytes(200_000);
      const { digest } = await blobs.put(data);
      const whole = collector();
      await blobs.sendTo(digest, undefined, whole);
      assert.equal(whole.writableEnded, false, 'the caller ends the response');
      assert.deepEqual(whole.bytes(), data);
      const part = collector();
      await blobs.sendTo(digest, { start: 1000, end: 150_000 }, part);
      assert.deepEqual(part.bytes(), data.subarray(1000, 150_001));
      const untouched = collector();
      await rejectsWith(blobs.sendTo(digestOf('missing'), undefined, untouched), 'NOT_FOUND');
      assert.equal(untouched.bytes().length, 0);
    });

    it('rejects a send whose sink fails, and goes on serving others', async () => {
      const { blobs } = await open();
      const data = randomBytes(1024 * 1024);
      const { digest } = await blobs.put(data);
      await assert.rejects(blobs.sendTo(digest, undefined, collector(100_000)));
      const next = collector();
      await blobs.sendTo(digest, undefined, next);
      assert.deepEqual(next.bytes(), data);
    });

    it('stores an empty blob', async () => {
      const { blobs } = await open();
      const digest = digestOf('');
      const upload = await blobs.startUpload();
      assert.deepEqual(await upload.commit({ digest, size: 0 }), { digest, size: 0 });
      assert.deepEqual(await blobs.stat(digest), { digest, size: 0 });
      assert.equal((await blobs.read(digest, 10)).length, 0);
    });

    it('keeps what arrived before a cut request, to resume from its size', async () => {
      const { blobs } = await open();
      const data = randomBytes(250_000);
      const upload = await blobs.startUpload();
      await upload.append(Readable.from([data.subarray(0, 50_000)]));
      await assert.rejects(upload.append(Readable.from(cutAfter(data.subarray(50_000, 120_000)))));
      const resumed = await blobs.findUpload(upload.id);
      assert.equal(resumed?.size, 120_000, 'the bytes before the cut are kept');
      await resumed.append(Readable.from([data.subarray(120_000)]));
      assert.deepEqual(await resumed.commit({ digest: digestOf(data), size: data.length }), {
        digest: digestOf(data),
        size: data.length,
      });
      assert.deepEqual(await blobs.read(digestOf(data), data.length), data);
    });

    it('an upload refused at commit can go on and commit with the right bytes', async () => {
      const { blobs } = await open();
      const data = randomBytes(180_000);
      const upload = await blobs.startUpload();
      await upload.append(Readable.from([data.subarray(0, 100_000)]));
      await rejectsWith(upload.commit({ digest: digestOf(data) }), 'DIGEST_MISMATCH');
      assert.equal(await blobs.stat(digestOf(data)), undefined);
      await upload.append(Readable.from([data.subarray(100_000)]));
      assert.equal((await upload.commit({ digest: digestOf(data) })).size, data.length);
      assert.deepEqual(await blobs.read(digestOf(data), data.length), data);
    });

    it('lists blobs with the time they were written', async () => {
      const { blobs } = await open();
      const before = Date.now();
      const { digest } = await blobs.put(Buffer.from('dated'));
      const listed: { digest: string; size: number; modified: Date }[] = [];
      for await (const blob of blobs.list()) listed.push(blob);
      assert.equal(listed.length, 1);
      assert.equal(listed[0]!.digest, digest);
      assert.equal(listed[0]!.size, 5);
      assert.ok(Math.abs(listed[0]!.modified.getTime() - before) < 60_000, listed[0]!.modified.toISOString());
    });

    it('reports upload owners and start times', async () => {
      const { blobs } = await open();
      const before = Date.now();
      const upload = await blobs.startUpload('team/app');
      const found = await blobs.findUpload(upload.id);
      assert.ok(found);
      assert.ok(Math.abs(found.startedAt.getTime() - before) < 60_000, found.startedAt.toISOString());
      assert.equal(found.size, 0);
    });
  });

  const reopen = options.reopen;
  if (reopen) {
    describe(`${driver}: after a restart`, () => {
      it('an upload keeps its owner, bytes and size, goes on, and commits verified', async () => {
        const first = await open();
        const data = randomBytes(300_000);
        const upload = await first.blobs.startUpload('team/app');
        await upload.append(Readable.from([data.subarray(0, 140_000)]));
        const second = await reopen(first);
        const found = await second.blobs.findUpload(upload.id);
        assert.equal(found?.owner, 'team/app');
        assert.equal(found.size, 140_000);
        await found.append(Readable.from([data.subarray(140_000)]));
        await rejectsWith(found.commit({ digest: digestOf('other') }), 'DIGEST_MISMATCH');
        assert.equal((await found.commit({ digest: digestOf(data), size: data.length })).size, data.length);
        assert.deepEqual(await first.blobs.read(digestOf(data), data.length), data);
      });

      it('an upload refused at commit after a restart goes on with more bytes', async () => {
        const first = await open();
        const data = randomBytes(260_000);
        const upload = await first.blobs.startUpload();
        await upload.append(Readable.from([data.subarray(0, 200_000)]));
        const second = await reopen(first);
        const found = (await second.blobs.findUpload(upload.id))!;
        await rejectsWith(found.commit({ digest: digestOf(data) }), 'DIGEST_MISMATCH');
        await found.append(Readable.from([data.subarray(200_000)]));
        assert.equal((await found.commit({ digest: digestOf(data) })).size, data.length);
        assert.deepEqual(await second.blobs.read(digestOf(data), data.length), data);
      });

      it('blobs, links, tags and documents are there', async () => {
        const first = await open();
        const { digest } = await first.blobs.put(Buffer.from('kept'));
        await first.repositories.linkManifest('app', { digest, mediaType: 'm', size: 4 });
        await first.repositories.setTag('app', 'v1', digest);
        await first.documents.write('cache.json', '{"namespaces":["docker.io"]}');
        const second = await reopen(first);
        assert.deepEqual(await second.blobs.stat(digest), { digest, size: 4 });
        assert.equal(await second.repositories.getTag('app', 'v1'), digest);
        assert.equal((await second.repositories.getManifest('app', digest))?.size, 4);
        assert.equal(await second.documents.read('cache.json'), '{"namespaces":["docker.io"]}');
      });
    });
  }

  describe(`${driver}: RepositoryStore`, () => {
    const d1 = digestOf('one') as Digest;
    const d2 = digestOf('two') as Digest;

    it('links blobs per repository', async () => {
      const { repositories } = await open();
      assert.equal(await repositories.hasBlob('a/b', d1), false);
      await repositories.linkBlob('a/b', d1);
      await repositories.linkBlob('a/b', d1);
      assert.equal(await repositories.hasBlob('a/b', d1), true);
      assert.equal(await repositories.hasBlob('a/c', d1), false);
      assert.deepEqual(await repositories.listBlobLinks('a/b'), [d1]);
      assert.equal(await repositories.unlinkBlob('a/b', d1), true);
      assert.equal(await repositories.unlinkBlob('a/b', d1), false);
    });

    it('keeps manifests, tags and referrers', async () => {
      const { repositories } = await open();
      await repositories.linkManifest('app', { digest: d1, mediaType: 'm', size: 3 });
      await repositories.linkManifest('app', {
        digest: d2,
        mediaType: 'm',
        size: 3,
        subject: d1,
        artifactType: 'sig',
      });
      await repositories.setTag('app', 'v1', d1);
      await repositories.setTag('app', 'latest', d1);
      assert.equal(await repositories.getTag('app', 'v1'), d1);
      assert.deepEqual(await repositories.listTags('app'), ['latest', 'v1']);
      assert.deepEqual(
        (await repositories.referrers('app', d1)).map((link) => link.digest),
        [d2],
      );
      assert.equal((await repositories.getManifest('app', d2))?.artifactType, 'sig');
      assert.equal(await repositories.deleteTag('app', 'latest'), true);
      assert.equal(await repositories.getTag('app', 'latest'), undefined);
      assert.equal(await repositories.unlinkManifest('app', d1), true);
      assert.equal(
        await repositories.getTag('app', 'v1'),
        undefined,
        'tags of a deleted manifest go with it',
      );
      assert.equal(await repositories.unlinkManifest('app', d2), true);
      assert.deepEqual(await repositories.referrers('app', d1), []);
    });

    it('concurrent writes of one tag leave it on one of them, listed once, and no temporaries', async () => {
      const storage = await open();
      const { repositories } = storage;
      const candidates = Array.from({ length: 16 }, (_, index) => digestOf(`m${index}`));
      await Promise.all(candidates.map((digest) => repositories.setTag('app', 'latest', digest)));
      assert.ok(candidates.includes((await repositories.getTag('app', 'latest'))!));
      assert.deepEqual(await repositories.listTags('app'), ['latest']);
      assert.deepEqual(await storage.temporaries?.list(), storage.temporaries ? [] : undefined);
    });

    it('unlinkManifest removes the tags on it, not a tag on another manifest', async () => {
      const { repositories } = await open();
      await repositories.linkManifest('app', { digest: d1, mediaType: 'm', size: 3 });
      await repositories.linkManifest('app', { digest: d2, mediaType: 'm', size: 3 });
      await repositories.setTag('app', 'old', d1);
      await repositories.setTag('app', 'moved', d1);
      await repositories.setTag('app', 'moved', d2);
      assert.equal(await repositories.unlinkManifest('app', d1), true);
      assert.equal(await repositories.unlinkManifest('app', d1), false);
      assert.deepEqual(await repositories.listTags('app'), ['moved']);
      assert.equal(await repositories.getTag('app', 'moved'), d2);
      assert.equal(await repositories.getManifest('app', d1), undefined);
    });

    it('tells when a manifest was linked', async () => {
      const { repositories } = await open();
      assert.equal(await repositories.manifestLinkedAt('app', d1), undefined);
      const before = Date.now();
      await repositories.linkManifest('app', { digest: d1, mediaType: 'm', size: 3 });
      const linkedAt = await repositories.manifestLinkedAt('app', d1);
      assert.ok(linkedAt, 'a time once linked');
      assert.ok(Math.abs(linkedAt.getTime() - before) < 60_000, linkedAt.toISOString());
      await repositories.unlinkManifest('app', d1);
      assert.equal(await repositories.manifestLinkedAt('app', d1), undefined);
    });

    it('lists repositories in byte order, nested names included', async () => {
      const { repositories } = await open();
      for (const name of ['b', 'a/x', 'a', 'a/x/y', 'B-not-valid'.toLowerCase()])
        await repositories.linkBlob(name, d1);
      assert.deepEqual(await repositories.listRepositories(), ['a', 'a/x', 'a/x/y', 'b', 'b-not-valid']);
      assert.equal(await repositories.repositoryExists('a/x'), true);
      assert.equal(await repositories.repositoryExists('zzz'), false);
    });

    it('refuses keys that could escape the storage', async () => {
      const { repositories } = await open();
      for (const name of ['../x', 'a/../../b', '/abs', 'UPPER', '']) {
        await rejectsWith(repositories.linkBlob(name, d1), 'INVALID_KEY');
      }
      await rejectsWith(repositories.setTag('ok', '../../tag', d1), 'INVALID_KEY');
      await rejectsWith(repositories.linkBlob('ok', 'sha256:../../x' as Digest), 'INVALID_KEY');
    });
  });

  describe(`${driver}: documents`, () => {
    it('reads back what was written, replaced whole; undefined when absent; no paths', async () => {
      const { documents } = await open();
      assert.equal(await documents.read('cache.json'), undefined);
      await documents.write('cache.json', 'first, and longer');
      await documents.write('cache.json', 'second');
      assert.equal(await documents.read('cache.json'), 'second');
      for (const name of ['../x', 'a/b', '', '.hidden', 'UPPER']) {
        await rejectsWith(documents.write(name, 'x'), 'INVALID_KEY');
      }
    });
  });
}
