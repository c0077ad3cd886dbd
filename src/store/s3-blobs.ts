/**
 * The blob half on S3, in the layout of object-keys.ts: one object per blob, named by its verified digest.
 * Reads stream from S3 (a range is a ranged GET); a send cut by S3 or the network goes on with a ranged GET
 * from the byte it reached, so a client that reads slowly still gets the whole blob. Uploads: s3-uploads.ts.
 */
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../oci/digest.ts';
import { blobKey, blobsPrefix, digestOfBlobKey } from './object-keys.ts';
import type { S3Objects } from './s3-objects.ts';
import type { S3Uploads } from './s3-uploads.ts';
import {
  SourceFailure,
  StreamingBlobStore,
  checkedDigest,
  pump,
  readWhole,
  tooLarge,
} from './streaming-blobs.ts';
import { StoreError, type BlobInfo, type ByteRange, type Upload } from './types.ts';

/** Ranged GETs one send may make after its first, when S3 or the network cuts it. */
const maxResumes = 3;

export class S3BlobStore extends StreamingBlobStore {
  private readonly objects: S3Objects;
  private readonly uploads: S3Uploads;

  constructor(objects: S3Objects, uploads: S3Uploads) {
    super();
    this.objects = objects;
    this.uploads = uploads;
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const info = await this.objects.head(blobKey(digest));
    return info ? { digest, size: info.size } : undefined;
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    const stream = await this.objects.stream(blobKey(digest), range);
    if (!stream) throw notFound(digest);
    return stream.body;
  }

  override async sendTo(digest: Digest, range: ByteRange | undefined, sink: Writable): Promise<void> {
    const key = blobKey(digest);
    let stream = await this.objects.stream(key, range);
    if (!stream) throw notFound(digest);
    let position = range?.start ?? 0;
    const end = position + stream.length - 1;
    for (let resumes = 0; ; resumes++) {
      let failure: unknown;
      try {
        await pump(stream.body, sink, (length) => (position += length));
      } catch (error) {
        if (!(error instanceof SourceFailure)) throw error;
        failure = error;
      }
      if (position > end) return;
      failure ??= new SourceFailure(new Error(`S3 ended ${digest} at byte ${position} of ${end + 1}`));
      if (resumes >= maxResumes || sink.destroyed) throw failure;
      stream = await this.objects.stream(key, { start: position, end });
      if (!stream) throw notFound(digest);
    }
  }

  override async read(digest: Digest, maxBytes: number): Promise<Buffer> {
    const stream = await this.objects.stream(blobKey(digest));
    if (!stream) throw notFound(digest);
    if (stream.length > maxBytes) {
      stream.body.destroy();
      throw tooLarge(digest, stream.length, maxBytes);
    }
    return readWhole(stream.body, digest, maxBytes);
  }

  /** One PUT under the digest, verified first (manifests are small). */
  override async put(data: Uint8Array, digest?: Digest): Promise<BlobInfo> {
    const actual = checkedDigest(data, digest);
    await this.objects.put(blobKey(actual), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return { digest: actual, size: data.length };
  }

  async delete(digest: Digest): Promise<boolean> {
    const key = blobKey(digest);
    if (!(await this.objects.head(key))) return false;
    await this.objects.delete(key);
    return true;
  }

  async *list(): AsyncIterable<BlobInfo & { modified: Date }> {
    for await (const object of this.objects.list(blobsPrefix)) {
      const digest = digestOfBlobKey(object.key);
      if (digest) yield { digest, size: object.size, modified: object.modified };
    }
  }

  startUpload(owner?: string): Promise<Upload> {
    return this.uploads.start(owner);
  }

  findUpload(id: string): Promise<Upload | undefined> {
    return this.uploads.find(id);
  }

  cleanUploads(olderThanMs: number): Promise<number> {
    return this.uploads.clean(olderThanMs);
  }
}

function notFound(digest: Digest): StoreError {
  return new StoreError('NOT_FOUND', `blob unknown: ${digest}`);
}
