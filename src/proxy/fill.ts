/**
 * A blob being fetched from an upstream once, however many clients want it. The download is written to a
 * spool file as it arrives; every client reads the spool from its own position as it grows (a client that
 * joins late starts from the beginning, at disk speed), and so does the store, which commits the blob under
 * its digest only after the bytes were verified. The fill goes on when every client has hung up; when the
 * bytes do not match the digest, or the upstream breaks off, nothing is committed and every reader fails.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { Digest } from '../oci/digest.ts';
import type { ByteRange, GcFence, Storage } from '../store/index.ts';

/** What one read of the spool takes: large enough for few syscalls, small enough for many readers. */
const readChunk = 256 * 1024;
/**
 * Reads of one reader that may wait for its socket at once: four while few read (throughput), one when
 * many do (memory: each waiting read holds `readChunk` bytes).
 */
const sendDepth = (readers: number): number => (readers <= 16 ? 4 : 1);
let activeReaders = 0;
/** Read buffers kept for reuse across readers. */
const spoolPoolSize = 64;
const spoolPool: Buffer[] = [];

/** A place among a fill's readers: send once, or leave without sending. */
export interface FillReader {
  sendTo(sink: Writable, range: ByteRange | undefined): Promise<void>;
  leave(): void;
}

export interface FillSource {
  size: number | undefined;
  stream: AsyncIterable<Buffer | Uint8Array>;
  /** Called once the download is over, however it ended. */
  done(): void;
}

export class BlobFill {
  readonly digest: Digest;
  /** From the upstream's Content-Length; undefined when it sent none. */
  readonly size: number | undefined;
  /** Settles once the blob is committed to the store (or the fill failed); never rejects. */
  readonly finished: Promise<void>;
  private written = 0;
  private complete = false;
  private failure: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly spoolPath: string;
  private spool: FileHandle | undefined;
  private readers = 0;
  private closed = false;
  /** Streamed from the replica that fills the blob: spooled for the clients here, committed by that one. */
  readonly relayed: boolean;

  private constructor(digest: Digest, size: number | undefined, spoolPath: string, relayed: boolean) {
    this.digest = digest;
    this.size = size;
    this.spoolPath = spoolPath;
    this.relayed = relayed;
    this.finished = Promise.resolve();
  }

  /**
   * Starts writing `source` to a spool under `spoolDir`, and then into `storage` under `digest`, linked in
   * `repository`. `onCommitted` runs once the blob is visible in the store; `onFailed` once it cannot be.
   */
  static async start(
    digest: Digest,
    source: FillSource,
    options: {
      spoolDir: string;
      storage: Storage;
      repository: string;
      /** Protects the blob from a gc sweeping meanwhile, before it is committed and linked. */
      gcFence?: GcFence | undefined;
      /** The bytes come from the replica that fills the blob: serve them, commit nothing. */
      relayed?: boolean;
      onBytes: (count: number) => void;
      /** Runs once the blob is visible in the store, with its size. */
      onCommitted?: (size: number) => void;
    },
  ): Promise<BlobFill> {
    await mkdir(options.spoolDir, { recursive: true });
    const spoolPath = join(options.spoolDir, `${randomUUID()}.part`);
    const fill = new BlobFill(digest, source.size, spoolPath, options.relayed ?? false);
    let writer: FileHandle;
    try {
      writer = await open(spoolPath, 'w+');
    } catch (error) {
      source.done();
      throw error;
    }
    fill.spool = writer;
    (fill as { finished: Promise<void> }).finished = fill.run(writer, source, options);
    return fill;
  }

  get bytesWritten(): number {
    return this.written;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  private async run(
    writer: FileHandle,
    source: FillSource,
    options: {
      storage: Storage;
      repository: string;
      gcFence?: GcFence | undefined;
      onBytes: (count: number) => void;
      onCommitted?: (size: number) => void;
    },
  ): Promise<void> {
    try {
      for await (const chunk of source.stream) {
        const bytes = chunk as Buffer;
        let offset = 0;
        while (offset < bytes.length) {
          const { bytesWritten } = await writer.write(bytes, offset, bytes.length - offset, this.written);
          offset += bytesWritten;
          this.written += bytesWritten;
        }
        options.onBytes(bytes.length);
        this.wake();
      }
      // The stream is verified as it flows: reaching its end means the bytes match the digest.
      this.complete = true;
      this.wake();
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    } finally {
      source.done();
    }
    if (this.failure || this.relayed) {
      await this.release();
      return;
    }
    try {
      await options.gcFence?.hold([this.digest]);
      const blobs = options.storage.blobs;
      if (blobs.commitFile) {
        // The spool is on the storage's filesystem and its bytes were verified as they arrived: it becomes
        // the blob by a rename. Readers that hold it open go on reading the same file.
        await blobs.commitFile(this.spoolPath, { digest: this.digest, size: this.written });
      } else {
        const upload = await blobs.startUpload(options.repository);
        try {
          await upload.append(createReadStream(this.spoolPath));
          await upload.commit({ digest: this.digest, size: this.written });
        } catch (error) {
          await upload.abort().catch(() => undefined);
          throw error;
        }
      }
      await options.storage.repositories.linkBlob(options.repository, this.digest);
      options.onCommitted?.(this.written);
    } catch {
      // Readers had every byte, verified; only the store missed it: the next request fetches it again.
    }
    await this.release();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /** The spool goes once the fill is over and no reader holds it. */
  private async release(): Promise<void> {
    this.closed = true;
    if (this.readers > 0) return;
    await this.dispose();
  }

  private async dispose(): Promise<void> {
    const spool = this.spool;
    this.spool = undefined;
    await spool?.close().catch(() => undefined);
    await rm(this.spoolPath, { force: true }).catch(() => undefined);
  }

  /**
   * A place among the fill's readers, or undefined once the spool is gone (the blob is then in the store,
   * or the fill failed). Taking it keeps the spool until the reader has sent (see `sendTo`).
   */
  join(): FillReader | undefined {
    const spool = this.spool;
    if (!spool || this.failure) return undefined;
    this.readers++;
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      this.readers--;
      if (this.closed && this.readers === 0) void this.dispose();
    };
    return {
      sendTo: (sink, range) => this.send(spool, sink, range).finally(leave),
      leave,
    };
  }

  /**
   * Writes the blob (or a range of it) into `sink` as the fill makes it available, honouring the sink's
   * backpressure. Rejects when the fill fails (the client must not take a partial blob for a whole one) or
   * the sink goes away.
   */
  private async send(spool: FileHandle, sink: Writable, range: ByteRange | undefined): Promise<void> {
    let gone = false;
    const onClose = (): void => {
      gone = true;
      this.wake();
    };
    sink.once('close', onClose);
    // Up to `sendDepth` reads wait for the socket at once, each in a buffer of its own that returns to the
    // pool when the socket has taken it; a write that failed keeps its buffer (the socket may still hold it).
    const pending = new Set<Promise<void>>();
    let failure: Error | undefined;
    // A write's callback sets `failure`; checking through a function keeps TypeScript from taking the
    // check after the loop for dead code.
    const throwIfWriteFailed = (): void => {
      if (failure) throw failure;
    };
    activeReaders++;
    try {
      let position = range?.start ?? 0;
      const end = range ? range.end + 1 : undefined;
      for (;;) {
        throwIfWriteFailed();
        if (gone || sink.destroyed) throw receiverGone();
        if (this.failure) throw this.failure;
        const limit = end ?? (this.complete ? this.written : Infinity);
        if (position >= limit) break;
        if (position >= this.written) {
          await this.changed();
          continue;
        }
        if (pending.size >= sendDepth(activeReaders)) {
          await Promise.race(pending);
          continue;
        }
        const buffer = spoolPool.pop() ?? Buffer.allocUnsafeSlow(readChunk);
        const length = Math.min(readChunk, this.written - position, limit - position);
        const { bytesRead } = await spool.read(buffer, 0, length, position);
        if (bytesRead === 0) throw new Error(`spool of ${this.digest} ended early`);
        position += bytesRead;
        const written: Promise<void> = new Promise<void>((resolve) => {
          sink.write(buffer.subarray(0, bytesRead), (error) => {
            if (error) failure ??= error;
            else if (spoolPool.length < spoolPoolSize) spoolPool.push(buffer);
            resolve();
          });
        }).then(() => void pending.delete(written));
        pending.add(written);
      }
      await Promise.race([Promise.all(pending), closed(sink)]);
      throwIfWriteFailed();
    } finally {
      activeReaders--;
      sink.off('close', onClose);
    }
  }
}

/** Resolves when the sink closes (a write callback may then never come). */
function closed(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (sink.destroyed) resolve();
    else sink.once('close', () => resolve());
  });
}

function receiverGone(): Error {
  return Object.assign(new Error('the receiver went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
