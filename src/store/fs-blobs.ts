/**
 * Filesystem blob store. Layout under the root:
 *   blobs/<alg>/<first two hex>/<hex>     committed content, named by its verified digest
 *   uploads/<id>/data                     bytes of an upload in progress (invisible to readers)
 * Commit hashes what was received, fsyncs, and renames into place: a crash at any moment leaves either
 * nothing or the whole verified blob. Two uploads of the same content race harmlessly: both renames put
 * identical bytes under the same name.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  mkdir,
  open,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import {
  digestAlgorithm,
  digestHex,
  digestOf,
  isDigest,
  type Digest,
  type DigestAlgorithm,
} from '../oci/digest.ts';
import { BufferPool, ByteBudget } from './buffer-pool.ts';
import { isMissing, syncDirectory } from './fsutil.ts';
import { sendAfterStat } from './streaming-blobs.ts';
import {
  StoreError,
  type BlobInfo,
  type BlobSend,
  type BlobStore,
  type ByteRange,
  type Upload,
} from './types.ts';

const uploadIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const readHighWaterMark = 1024 * 1024;
/**
 * Read buffers by how many blobs are being sent at once. Few sends get large reads (fewer, larger socket
 * writes are worth about half again as much throughput on one stream); many get small ones, so the memory
 * held for clients that read slowly grows by little per client.
 */
const sendTiers: { upTo: number; pool: BufferPool }[] = [
  { upTo: 2, pool: new BufferPool(2 * 1024 * 1024, 8) },
  { upTo: 16, pool: new BufferPool(512 * 1024, 16) },
  { upTo: 256, pool: new BufferPool(128 * 1024, 64) },
  { upTo: 2048, pool: new BufferPool(32 * 1024, 256) },
  { upTo: Infinity, pool: new BufferPool(16 * 1024, 256) },
];
/**
 * Chunks one send may have waiting for its socket, to overlap disk reads with socket writes. The first is
 * always allowed; the others come from one budget shared by every send, which caps what slow readers can
 * hold together and is never waited for.
 */
const sendDepth = 4;
const sendBudget = new ByteBudget(32 * 1024 * 1024);
let activeSends = 0;
const writePool = new BufferPool(1024 * 1024, 8);
/** How much an upload writes before it starts flushing to disk in the background. */
const backgroundFlushBytes = 8 * 1024 * 1024;

interface HashState {
  sha256: Hash;
  size: number;
}

export class FsBlobStore implements BlobStore {
  readonly root: string;
  /** Running hashes of uploads this process has seen, so commit need not re-read the bytes. */
  private readonly hashes = new Map<string, HashState>();
  /** Owners of uploads this process has seen (undefined: started without one). */
  private readonly owners = new Map<string, string | undefined>();
  private readonly busy = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs'), { recursive: true });
    await mkdir(join(this.root, 'uploads'), { recursive: true });
  }

  blobPath(digest: Digest): string {
    if (!isDigest(digest)) throw new StoreError('INVALID_KEY', 'invalid digest');
    const hex = digestHex(digest);
    return join(this.root, 'blobs', digestAlgorithm(digest), hex.slice(0, 2), hex);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return { digest, size: info.size };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    const path = this.blobPath(digest);
    // Open first so a missing blob is an error here, not an 'error' event after headers went out.
    const handle = await open(path, 'r').catch((error: unknown) => {
      if (isMissing(error)) throw new StoreError('NOT_FOUND', `blob unknown: ${digest}`);
      throw error;
    });
    return createReadStream('', {
      fd: handle,
      highWaterMark: readHighWaterMark,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  /** A stat is one system call here: nothing to save by opening first. */
  openSend(digest: Digest): Promise<BlobSend | undefined> {
    return sendAfterStat(this, digest);
  }

  async sendTo(digest: Digest, range: ByteRange | undefined, sink: Writable): Promise<void> {
    const handle = await open(this.blobPath(digest), 'r').catch((error: unknown) => {
      if (isMissing(error)) throw new StoreError('NOT_FOUND', `blob unknown: ${digest}`);
      throw error;
    });
    activeSends++;
    // Each write settles its promise exactly once, from its callback or when the sink closes first; a failed
    // write is recorded, never left as a rejected promise nobody awaits (that would end the process).
    const pending = new Map<Promise<void>, () => void>();
    let failure: Error | undefined;
    const settleAll = (): void => {
      failure ??= receiverGone();
      for (const settle of pending.values()) settle();
    };
    sink.once('close', settleAll);
    try {
      let position = range?.start ?? 0;
      const end = range ? range.end + 1 : (await handle.stat()).size;
      while (position < end) {
        if (failure) throw failure;
        if (sink.destroyed) throw receiverGone();
        const pool = sendTiers.find((tier) => activeSends <= tier.upTo)!.pool;
        const budgeted = pending.size > 0;
        if (budgeted && (pending.size >= sendDepth || !sendBudget.tryAcquire(pool.bufferSize))) {
          await Promise.race(pending.keys());
          continue;
        }
        const buffer = pool.take();
        const release = (): void => {
          if (budgeted) sendBudget.release(pool.bufferSize);
        };
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position));
        } catch (error) {
          pool.give(buffer);
          release();
          throw error;
        }
        if (bytesRead === 0) {
          pool.give(buffer);
          release();
          break;
        }
        position += bytesRead;
        let settled = false;
        let settle!: () => void;
        const written = new Promise<void>((resolve) => {
          settle = () => {
            if (settled) return;
            settled = true;
            release();
            pending.delete(written);
            resolve();
          };
        });
        pending.set(written, settle);
        sink.write(buffer.subarray(0, bytesRead), (error) => {
          // The buffer returns to the pool only once the socket has taken its bytes; after a failed write
          // the socket may still hold it.
          if (error) failure ??= error;
          else if (!settled) pool.give(buffer);
          settle();
        });
      }
      await Promise.all(pending.keys());
      if (failure) throw failure;
    } finally {
      await Promise.all(pending.keys());
      sink.off('close', settleAll);
      activeSends--;
      await handle.close();
    }
  }

  async commitFile(path: string, expected: { digest: Digest; size: number }): Promise<BlobInfo> {
    const target = this.blobPath(expected.digest);
    try {
      const handle = await open(path, 'r+');
      try {
        const { size } = await handle.stat();
        if (size !== expected.size) {
          throw new StoreError('SIZE_MISMATCH', `file holds ${size} bytes, expected ${expected.size}`);
        }
        await handle.datasync();
      } finally {
        await handle.close();
      }
      const targetDir = join(target, '..');
      await mkdir(targetDir, { recursive: true });
      await rename(path, target);
      await syncDirectory(targetDir);
      return { digest: expected.digest, size: expected.size };
    } catch (error) {
      throw asStoreError(error);
    }
  }

  async read(digest: Digest, maxBytes: number): Promise<Buffer> {
    const path = this.blobPath(digest);
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) throw new StoreError('NOT_FOUND', `blob unknown: ${digest}`);
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size > maxBytes)
        throw new StoreError('TOO_LARGE', `blob ${digest} is ${size} bytes, over ${maxBytes}`);
      const buffer = Buffer.allocUnsafe(size);
      let offset = 0;
      while (offset < size) {
        const { bytesRead } = await handle.read(buffer, offset, size - offset, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
      }
      return offset === size ? buffer : buffer.subarray(0, offset);
    } finally {
      await handle.close();
    }
  }

  async put(data: Uint8Array, digest?: Digest): Promise<BlobInfo> {
    const algorithm: DigestAlgorithm = digest ? digestAlgorithm(digest) : 'sha256';
    const actual = digestOf(data, algorithm);
    if (digest && actual !== digest) {
      throw new StoreError('DIGEST_MISMATCH', `content digest ${actual} does not match ${digest}`);
    }
    const existing = await this.stat(actual);
    if (existing && existing.size === data.length) return existing;
    const upload = await this.startUpload();
    try {
      const handle = await open(join(this.uploadDir(upload.id), 'data'), 'w');
      try {
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      this.hashes.delete(upload.id);
      return await upload.commit({ digest: actual, size: data.length });
    } catch (error) {
      await upload.abort();
      throw asStoreError(error);
    }
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await rm(this.blobPath(digest));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async *list(): AsyncIterable<BlobInfo & { modified: Date }> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const algorithmDir = join(this.root, 'blobs', algorithm);
      for (const prefix of await readdirIfExists(algorithmDir)) {
        for (const name of await readdirIfExists(join(algorithmDir, prefix))) {
          const candidate = `${algorithm}:${name}`;
          if (!isDigest(candidate) || !name.startsWith(prefix)) continue;
          try {
            const info = await stat(join(algorithmDir, prefix, name));
            yield { digest: candidate as Digest, size: info.size, modified: info.mtime };
          } catch (error) {
            if (!isMissing(error)) throw error;
          }
        }
      }
    }
  }

  private uploadDir(id: string): string {
    if (!uploadIdPattern.test(id)) throw new StoreError('INVALID_KEY', 'invalid upload id');
    return join(this.root, 'uploads', id);
  }

  async startUpload(owner?: string): Promise<Upload> {
    const id = randomUUID();
    const dir = this.uploadDir(id);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(join(dir, 'data'), 'w');
      await handle.close();
      // The owner survives a restart in a file beside the data; this process remembers it without reading.
      if (owner !== undefined) await writeFile(join(dir, 'owner'), owner);
    } catch (error) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw asStoreError(error);
    }
    this.owners.set(id, owner);
    this.hashes.set(id, { sha256: createHash('sha256'), size: 0 });
    return new FsUpload(this, id, 0, new Date(), owner);
  }

  async findUpload(id: string): Promise<Upload | undefined> {
    if (!uploadIdPattern.test(id)) return undefined;
    try {
      const dir = this.uploadDir(id);
      const info = await stat(join(dir, 'data'));
      let owner = this.owners.get(id);
      if (!this.owners.has(id)) {
        owner = await readFile(join(dir, 'owner'), 'utf8').catch((error: unknown) => {
          if (isMissing(error)) return undefined;
          throw error;
        });
        this.owners.set(id, owner);
      }
      const started = info.birthtime.getTime() > 0 ? info.birthtime : info.ctime;
      return new FsUpload(this, id, info.size, started, owner);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async cleanUploads(olderThanMs: number): Promise<number> {
    const now = Date.now();
    let removed = 0;
    for (const id of await readdirIfExists(join(this.root, 'uploads'))) {
      const dir = join(this.root, 'uploads', id);
      if (!uploadIdPattern.test(id)) {
        await rm(dir, { recursive: true, force: true });
        removed++;
        continue;
      }
      if (this.busy.has(id)) continue;
      try {
        const info = await stat(join(dir, 'data')).catch(() => stat(dir));
        if (now - info.mtime.getTime() >= olderThanMs) {
          await rm(dir, { recursive: true, force: true });
          this.hashes.delete(id);
          this.owners.delete(id);
          removed++;
        }
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return removed;
  }

  /** @internal used by FsUpload */
  async appendTo(id: string, source: Readable, maxBytes: number | undefined): Promise<number> {
    if (this.busy.has(id)) throw new StoreError('BUSY', 'another request is writing to this upload');
    this.busy.add(id);
    const path = join(this.uploadDir(id), 'data');
    try {
      const start = (await stat(path)).size;
      let state = this.hashes.get(id);
      if (state && state.size !== start) state = undefined;
      this.hashes.delete(id);
      let received = 0;
      // Chunks are hashed as they arrive and copied into pooled buffers, written when full: memory stays
      // bounded whatever the upload's size, and the disk sees large writes.
      const handle = await open(path, 'r+').catch((error: unknown) => {
        throw asStoreError(error);
      });
      const writer = new WriteBehind(handle, start);
      try {
        // The request is not destroyed when the append stops early: the caller still answers it.
        for await (const data of source.iterator({ destroyOnReturn: false })) {
          writer.throwIfWriteFailed();
          const chunk = data as Buffer;
          received += chunk.length;
          if (maxBytes !== undefined && received > maxBytes) {
            throw new StoreError('TOO_LARGE', `more than ${maxBytes} bytes in one request`);
          }
          state?.sha256.update(chunk);
          await writer.write(chunk);
        }
        await writer.flush();
      } catch (error) {
        // Whatever arrived intact is kept (a client may resume from the upload's size); the running hash is
        // dropped, so commit re-reads the file.
        if (!writer.failed) await writer.flush().catch(() => undefined);
        throw error;
      } finally {
        await writer.close();
      }
      const size = start + received;
      if (state) this.hashes.set(id, { sha256: state.sha256, size });
      return size;
    } finally {
      this.busy.delete(id);
    }
  }

  /** @internal */
  async commitUpload(id: string, expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    if (this.busy.has(id)) throw new StoreError('BUSY', 'another request is writing to this upload');
    this.busy.add(id);
    try {
      return await this.commitVerified(id, expected);
    } catch (error) {
      throw asStoreError(error);
    } finally {
      this.busy.delete(id);
    }
  }

  private async commitVerified(id: string, expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    const dir = this.uploadDir(id);
    const dataPath = join(dir, 'data');
    const handle = await open(dataPath, 'r+');
    let size: number;
    try {
      size = (await handle.stat()).size;
      await handle.datasync();
    } finally {
      await handle.close();
    }
    if (expected.size !== undefined && expected.size !== size) {
      throw new StoreError('SIZE_MISMATCH', `received ${size} bytes, expected ${expected.size}`);
    }
    const algorithm = digestAlgorithm(expected.digest);
    const state = this.hashes.get(id);
    let actual: string;
    if (algorithm === 'sha256' && state && state.size === size) {
      actual = `sha256:${state.sha256.copy().digest('hex')}`;
    } else {
      actual = await hashFile(dataPath, algorithm);
    }
    if (actual !== expected.digest) {
      throw new StoreError('DIGEST_MISMATCH', `content digest ${actual} does not match ${expected.digest}`);
    }
    const target = this.blobPath(expected.digest);
    const targetDir = join(target, '..');
    await mkdir(targetDir, { recursive: true });
    await rename(dataPath, target);
    await syncDirectory(targetDir);
    await rm(dir, { recursive: true, force: true });
    this.hashes.delete(id);
    this.owners.delete(id);
    return { digest: expected.digest, size };
  }

  /** @internal */
  async abortUpload(id: string): Promise<void> {
    this.hashes.delete(id);
    this.owners.delete(id);
    await rm(this.uploadDir(id), { recursive: true, force: true });
  }
}

/**
 * An append's bytes on their way into the upload's file, from `position` on. Two pooled buffers: one fills
 * from the request while the other is being written, so receiving and the disk overlap. Writes stay in order
 * (one in flight at a time); the first failure is kept and thrown at the next `throwIfWriteFailed`, `write`
 * or `flush`, so no write's rejection is ever left unobserved. Written data is flushed to disk in the
 * background while more arrives, so the fsync at commit only waits for the tail instead of the whole blob;
 * at most one flush is in flight.
 */
class WriteBehind {
  private readonly handle: FileHandle;
  private readonly buffers = [writePool.take(), writePool.take()];
  private current = 0;
  private filled = 0;
  private position: number;
  private writing: Promise<void> = Promise.resolve();
  private writeFailure: Error | undefined;
  private flushing: Promise<void> | undefined;
  private unflushed = 0;

  constructor(handle: FileHandle, position: number) {
    this.handle = handle;
    this.position = position;
  }

  /** A write has failed (its error, mapped to a StoreError, is what the append throws). */
  get failed(): boolean {
    return this.writeFailure !== undefined;
  }

  throwIfWriteFailed(): void {
    if (this.writeFailure) throw this.writeFailure;
  }

  /** Copies a chunk into the buffers; a full one is written out once the other one's write has finished. */
  async write(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const target = this.buffers[this.current]!;
      const copied = chunk.copy(target, this.filled, offset);
      this.filled += copied;
      offset += copied;
      if (this.filled === target.length) {
        // The other buffer must be written out before it is filled again.
        await this.writing;
        this.throwIfWriteFailed();
        this.writeOut(target, this.filled);
        this.current = 1 - this.current;
        this.filled = 0;
      }
    }
  }

  /** Writes out what is buffered and waits for every write. */
  async flush(): Promise<void> {
    if (this.filled > 0) {
      this.writeOut(this.buffers[this.current]!, this.filled);
      this.current = 1 - this.current;
      this.filled = 0;
    }
    await this.writing;
    this.throwIfWriteFailed();
  }

  /** Waits for the writes and the background flush, gives the buffers back and closes the file. */
  async close(): Promise<void> {
    await this.writing;
    await this.flushing;
    for (const buffer of this.buffers) writePool.give(buffer);
    await this.handle.close();
  }

  private writeOut(buffer: Buffer, length: number): void {
    const at = this.position;
    this.position += length;
    this.writing = this.writing
      .then(async () => {
        if (this.writeFailure) return;
        let offset = 0;
        while (offset < length) {
          const { bytesWritten } = await this.handle.write(buffer, offset, length - offset, at + offset);
          offset += bytesWritten;
        }
        this.unflushed += length;
        if (this.unflushed >= backgroundFlushBytes && !this.flushing) {
          this.unflushed = 0;
          this.flushing = this.handle.datasync().then(
            () => void (this.flushing = undefined),
            () => void (this.flushing = undefined),
          );
        }
      })
      .catch((error: unknown) => {
        this.writeFailure ??= asStoreError(error);
      });
  }
}

class FsUpload implements Upload {
  readonly id: string;
  readonly startedAt: Date;
  readonly owner: string | undefined;
  private readonly store: FsBlobStore;
  private bytes: number;

  constructor(store: FsBlobStore, id: string, size: number, startedAt: Date, owner: string | undefined) {
    this.store = store;
    this.id = id;
    this.bytes = size;
    this.startedAt = startedAt;
    this.owner = owner;
  }

  get size(): number {
    return this.bytes;
  }

  async append(source: Readable, options?: { maxBytes?: number }): Promise<number> {
    this.bytes = await this.store.appendTo(this.id, source, options?.maxBytes);
    return this.bytes;
  }

  commit(expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    return this.store.commitUpload(this.id, expected);
  }

  abort(): Promise<void> {
    return this.store.abortUpload(this.id);
  }
}

/** A full disk or exhausted quota becomes the store's FULL error; anything else passes unchanged. */
function asStoreError(error: unknown): Error {
  if (error instanceof StoreError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StoreError('FULL', 'storage is full', { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

function receiverGone(): Error {
  return Object.assign(new Error('the receiver went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path, { highWaterMark: readHighWaterMark }), async function (source) {
    for await (const chunk of source) hash.update(chunk as Buffer);
  });
  return `${algorithm}:${hash.digest('hex')}`;
}

async function readdirIfExists(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

export { hashFile, readdirIfExists };
