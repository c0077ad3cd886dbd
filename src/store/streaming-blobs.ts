/**
 * The part of BlobStore a driver must write itself is what only it can do: stat, open (a range), delete,
 * list, and uploads. `read`, `sendTo` and `put` follow from those; a driver overrides them only where it has
 * a cheaper way (the filesystem driver reads with pooled buffers, S3 puts small blobs in one request).
 */
import { Readable, type Writable } from 'node:stream';
import { digestAlgorithm, digestOf, type Digest } from '../oci/digest.ts';
import {
  StoreError,
  type BlobInfo,
  type BlobSend,
  type BlobStore,
  type ByteRange,
  type Upload,
} from './types.ts';

export abstract class StreamingBlobStore implements BlobStore {
  abstract stat(digest: Digest): Promise<BlobInfo | undefined>;
  abstract open(digest: Digest, range?: ByteRange): Promise<Readable>;
  abstract delete(digest: Digest): Promise<boolean>;
  abstract list(): AsyncIterable<BlobInfo & { modified: Date }>;
  abstract startUpload(owner?: string): Promise<Upload>;
  abstract findUpload(id: string): Promise<Upload | undefined>;
  abstract cleanUploads(olderThanMs: number): Promise<number>;

  async sendTo(digest: Digest, range: ByteRange | undefined, sink: Writable): Promise<void> {
    await pump(await this.open(digest, range), sink);
  }

  async openSend(digest: Digest): Promise<BlobSend | undefined> {
    return sendAfterStat(this, digest);
  }

  async read(digest: Digest, maxBytes: number): Promise<Buffer> {
    const info = await this.stat(digest);
    if (!info) throw new StoreError('NOT_FOUND', `blob unknown: ${digest}`);
    if (info.size > maxBytes) throw tooLarge(digest, info.size, maxBytes);
    return readWhole(await this.open(digest), digest, maxBytes);
  }

  async put(data: Uint8Array, digest?: Digest): Promise<BlobInfo> {
    const actual = checkedDigest(data, digest);
    const upload = await this.startUpload();
    try {
      await upload.append(Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
      return await upload.commit({ digest: actual, size: data.length });
    } catch (error) {
      await upload.abort().catch(() => undefined);
      throw error;
    }
  }
}

/** `openSend` for a storage where knowing the size costs its own request: stat, then send when asked. */
export async function sendAfterStat(blobs: BlobStore, digest: Digest): Promise<BlobSend | undefined> {
  const info = await blobs.stat(digest);
  if (!info) return undefined;
  return { size: info.size, sendTo: (sink) => blobs.sendTo(digest, undefined, sink), cancel: () => {} };
}

/** The digest of `data`; DIGEST_MISMATCH when it is not the `expected` one. */
export function checkedDigest(data: Uint8Array, expected: Digest | undefined): Digest {
  const actual = digestOf(data, expected ? digestAlgorithm(expected) : 'sha256');
  if (expected && actual !== expected) {
    throw new StoreError('DIGEST_MISMATCH', `content digest ${actual} does not match ${expected}`);
  }
  return actual;
}

export function tooLarge(digest: Digest, size: number, maxBytes: number): StoreError {
  return new StoreError('TOO_LARGE', `blob ${digest} is ${size} bytes, over ${maxBytes}`);
}

/** The stream's bytes in one buffer; TOO_LARGE (and the stream destroyed) past `maxBytes`. */
export async function readWhole(source: Readable, digest: Digest, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw tooLarge(digest, size, maxBytes);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** A failure of the source while pumping, told apart from the sink's (which ends the send for good). */
export class SourceFailure extends Error {
  constructor(cause: unknown) {
    super(`reading the blob failed: ${(cause as Error | undefined)?.message ?? String(cause)}`, { cause });
    this.name = 'SourceFailure';
  }
}

/**
 * Writes `source` into `sink` without ending it, pausing while the sink is full, and resolves once the sink
 * has taken the last chunk. Rejects with the sink's error or ERR_STREAM_PREMATURE_CLOSE when the sink fails
 * or closes first, and with a SourceFailure when the source does; either way the source is destroyed.
 * `onChunk` hears each chunk's length as it is handed to the sink.
 */
export function pump(source: Readable, sink: Writable, onChunk?: (length: number) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let lastWrite: Promise<void> = Promise.resolve();
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onSourceError);
      source.off('close', onSourceClose);
      sink.off('drain', onDrain);
      sink.off('close', onSinkClose);
      sink.off('error', onSinkError);
      if (error) {
        source.destroy();
        reject(error);
      } else {
        resolve();
      }
    };
    const onData = (chunk: Buffer): void => {
      onChunk?.(chunk.length);
      let written!: () => void;
      lastWrite = new Promise<void>((done) => (written = done));
      const more = sink.write(chunk, (error) => {
        if (error) finish(error);
        written();
      });
      if (!more) source.pause();
    };
    const onDrain = (): void => {
      source.resume();
    };
    const onEnd = (): void => {
      void lastWrite.then(() => finish());
    };
    const onSourceError = (error: Error): void => finish(new SourceFailure(error));
    const onSourceClose = (): void => {
      if (!source.readableEnded) finish(new SourceFailure(new Error('the stream closed before its end')));
    };
    const onSinkError = (error: Error): void => finish(error);
    const onSinkClose = (): void => finish(receiverGone());
    if (sink.destroyed) {
      finish(receiverGone());
      return;
    }
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onSourceError);
    source.once('close', onSourceClose);
    sink.on('drain', onDrain);
    sink.once('close', onSinkClose);
    sink.once('error', onSinkError);
  });
}

export function receiverGone(): Error {
  return Object.assign(new Error('the receiver went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
