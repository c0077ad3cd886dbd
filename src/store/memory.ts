/**
 * Storage in this process's memory: the smallest driver that passes the storage contract, so the contract
 * says what every driver must do and nothing about files. Gone when the process ends.
 */
/* eslint-disable @typescript-eslint/require-await -- the methods have nothing to wait for, but stay async as
   the contract's are: every failure (a bad digest, an unknown blob) is a rejection, as from disk or S3. */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestAlgorithm, type Digest } from '../oci/digest.ts';
import { blobKey, uploadIdPattern } from './object-keys.ts';
import { ObjectRepositoryStore } from './object-repositories.ts';
import { ObjectDocuments, type ObjectInfo, type ObjectStore } from './objects.ts';
import type { Storage } from './storage.ts';
import { StreamingBlobStore } from './streaming-blobs.ts';
import { StoreError, type BlobInfo, type ByteRange, type Upload } from './types.ts';

export function openMemoryStorage(): Storage {
  const objects = new MemoryObjects();
  return {
    blobs: new MemoryBlobStore(),
    repositories: new ObjectRepositoryStore(objects),
    documents: new ObjectDocuments(objects),
    location: 'memory',
  };
}

interface StoredBlob {
  data: Buffer;
  modified: Date;
}

interface UploadRecord {
  chunks: Buffer[];
  size: number;
  owner: string | undefined;
  startedAt: Date;
  touched: number;
  busy: boolean;
}

export class MemoryBlobStore extends StreamingBlobStore {
  private readonly blobs = new Map<Digest, StoredBlob>();
  private readonly uploads = new Map<string, UploadRecord>();

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const blob = this.blobs.get(checked(digest));
    return blob ? { digest, size: blob.data.length } : undefined;
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    const blob = this.blobs.get(checked(digest));
    if (!blob) throw new StoreError('NOT_FOUND', `blob unknown: ${digest}`);
    return Readable.from([range ? blob.data.subarray(range.start, range.end + 1) : blob.data]);
  }

  async delete(digest: Digest): Promise<boolean> {
    return this.blobs.delete(checked(digest));
  }

  async *list(): AsyncIterable<BlobInfo & { modified: Date }> {
    for (const [digest, blob] of [...this.blobs])
      yield { digest, size: blob.data.length, modified: blob.modified };
  }

  async startUpload(owner?: string): Promise<Upload> {
    const id = randomUUID();
    const record: UploadRecord = {
      chunks: [],
      size: 0,
      owner,
      startedAt: new Date(),
      touched: Date.now(),
      busy: false,
    };
    this.uploads.set(id, record);
    return new MemoryUpload(this, id, record);
  }

  async findUpload(id: string): Promise<Upload | undefined> {
    const record = uploadIdPattern.test(id) ? this.uploads.get(id) : undefined;
    return record ? new MemoryUpload(this, id, record) : undefined;
  }

  async cleanUploads(olderThanMs: number): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const [id, record] of [...this.uploads]) {
      if (record.busy || now - record.touched < olderThanMs) continue;
      this.uploads.delete(id);
      removed++;
    }
    return removed;
  }

  /** @internal used by MemoryUpload */
  async appendTo(record: UploadRecord, source: Readable, maxBytes: number | undefined): Promise<number> {
    if (record.busy) throw new StoreError('BUSY', 'another request is writing to this upload');
    record.busy = true;
    let received = 0;
    try {
      // What arrived before a failure is kept, as on disk: a client may resume from the upload's size.
      for await (const data of source.iterator({ destroyOnReturn: false })) {
        const chunk = data as Buffer;
        received += chunk.length;
        if (maxBytes !== undefined && received > maxBytes) {
          throw new StoreError('TOO_LARGE', `more than ${maxBytes} bytes in one request`);
        }
        record.chunks.push(Buffer.from(chunk));
        record.size += chunk.length;
      }
      return record.size;
    } finally {
      record.touched = Date.now();
      record.busy = false;
    }
  }

  /** @internal */
  async commitUpload(
    id: string,
    record: UploadRecord,
    expected: { digest: Digest; size?: number },
  ): Promise<BlobInfo> {
    if (record.busy) throw new StoreError('BUSY', 'another request is writing to this upload');
    if (expected.size !== undefined && expected.size !== record.size) {
      throw new StoreError('SIZE_MISMATCH', `received ${record.size} bytes, expected ${expected.size}`);
    }
    const algorithm = digestAlgorithm(checked(expected.digest));
    const hash = createHash(algorithm);
    for (const chunk of record.chunks) hash.update(chunk);
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== expected.digest) {
      throw new StoreError('DIGEST_MISMATCH', `content digest ${actual} does not match ${expected.digest}`);
    }
    this.blobs.set(expected.digest, {
      data: Buffer.concat(record.chunks, record.size),
      modified: new Date(),
    });
    this.uploads.delete(id);
    return { digest: expected.digest, size: record.size };
  }

  /** @internal */
  abortUpload(id: string): void {
    this.uploads.delete(id);
  }
}

class MemoryUpload implements Upload {
  readonly id: string;
  private readonly store: MemoryBlobStore;
  private readonly record: UploadRecord;

  constructor(store: MemoryBlobStore, id: string, record: UploadRecord) {
    this.store = store;
    this.id = id;
    this.record = record;
  }

  get size(): number {
    return this.record.size;
  }

  get startedAt(): Date {
    return this.record.startedAt;
  }

  get owner(): string | undefined {
    return this.record.owner;
  }

  append(source: Readable, options?: { maxBytes?: number }): Promise<number> {
    return this.store.appendTo(this.record, source, options?.maxBytes);
  }

  commit(expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    return this.store.commitUpload(this.id, this.record, expected);
  }

  async abort(): Promise<void> {
    this.store.abortUpload(this.id);
  }
}

/** Validates a digest the way keys do (INVALID_KEY), though no key is built from it here. */
function checked(digest: Digest): Digest {
  blobKey(digest);
  return digest;
}

/** Objects in a Map: each put replaces the whole object, as in S3. */
export class MemoryObjects implements ObjectStore {
  private readonly objects = new Map<string, { body: Buffer; modified: Date }>();

  async get(key: string): Promise<{ body: Buffer; modified: Date } | undefined> {
    return this.objects.get(key);
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    this.objects.set(key, { body: Buffer.from(body), modified: new Date() });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const object = this.objects.get(key);
    return object ? { key, size: object.body.length, modified: object.modified } : undefined;
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort();
    for (const key of keys) {
      const object = this.objects.get(key);
      if (object) yield { key, size: object.body.length, modified: object.modified };
    }
  }
}
