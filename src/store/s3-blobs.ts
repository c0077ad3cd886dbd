/**
 * The blob half on S3, in the layout of object-keys.ts: one object per blob, named by its verified digest.
 * Sends to clients go through s3-reads.ts (a range is a ranged GET); a send cut by S3 or the network goes on
 * with a ranged GET from the byte it reached, so a client that reads slowly still gets the whole blob. Other
 * reads go through the SDK. Uploads: s3-uploads.ts.
 */
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../oci/digest.ts';
import { blobKey, blobsPrefix, digestOfBlobKey } from './object-keys.ts';
import type { S3Objects } from './s3-objects.ts';
import type { OpenedRead, S3Reads } from './s3-reads.ts';
import type { S3Uploads } from './s3-uploads.ts';
import { SourceFailure, StreamingBlobStore, checkedDigest, readWhole, tooLarge } from './streaming-blobs.ts';
import { StoreError, type BlobInfo, type BlobSend, type ByteRange, type Upload } from './types.ts';

/** Ranged GETs one send may make after its first, when S3 or the network cuts it. */
const maxResumes = 3;
/** How long a redirect's URL works: long enough for a slow client's pull, as distribution's (20 min). */
const locationSeconds = 20 * 60;

export class S3BlobStore extends StreamingBlobStore {
  private readonly objects: S3Objects;
  private readonly uploads: S3Uploads;
  private readonly reads: S3Reads;

  constructor(objects: S3Objects, uploads: S3Uploads, reads: S3Reads) {
    super();
    this.objects = objects;
    this.uploads = uploads;
    this.reads = reads;
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
    const read = await this.reads.open(blobKey(digest), range);
    if (!read) throw notFound(digest);
    await this.sendResuming(digest, read, range?.start ?? 0, sink);
  }

  /** One GET: its answer's head gives the size, its body is sent when asked for. */
  override async openSend(digest: Digest): Promise<BlobSend | undefined> {
    const read = await this.reads.open(blobKey(digest));
    if (!read) return undefined;
    return {
      size: read.size,
      sendTo: (sink) => this.sendResuming(digest, read, 0, sink),
      cancel: () => read.cancel(),
    };
  }

  /** Sends `read`, which starts at byte `start`; a cut goes on with a ranged GET from where it stopped. */
  private async sendResuming(digest: Digest, read: OpenedRead, start: number, sink: Writable): Promise<void> {
    let position = start;
    const end = start + read.length - 1;
    let current = read;
    for (let resumes = 0; ; resumes++) {
      let failure: unknown;
      try {
        await current.sendTo(sink, (length) => (position += length));
      } catch (error) {
        if (!(error instanceof SourceFailure)) throw error;
        failure = error;
      }
      if (position > end) return;
      failure ??= new SourceFailure(new Error(`S3 ended ${digest} at byte ${position} of ${end + 1}`));
      if (resumes >= maxResumes || sink.destroyed) throw failure;
      const next = await this.reads.open(blobKey(digest), { start: position, end });
      if (!next) throw notFound(digest);
      current = next;
    }
  }

  async locate(digest: Digest): Promise<URL> {
    return this.objects.presignGet(blobKey(digest), locationSeconds);
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
