/**
 * Memory for serving blobs. Allocating a fresh Buffer per chunk makes V8 collect garbage every few tens of
 * megabytes served; recycling a bounded set keeps throughput and memory flat. `ByteBudget` bounds what all
 * sends together hold while sockets drain, so memory depends on the budget, not on how many clients read.
 */
export class BufferPool {
  readonly bufferSize: number;
  private readonly maxIdle: number;
  private readonly idle: Buffer[] = [];

  constructor(bufferSize: number, maxIdle: number) {
    this.bufferSize = bufferSize;
    this.maxIdle = maxIdle;
  }

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.bufferSize);
  }

  give(buffer: Buffer): void {
    if (this.idle.length < this.maxIdle) this.idle.push(buffer);
  }
}

/**
 * A shared allowance of bytes that is never waited for: a caller that cannot have more now goes on with what
 * it holds. Nobody can starve another by holding bytes (a client that never reads only slows itself).
 */
export class ByteBudget {
  readonly limit: number;
  private used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get inUse(): number {
    return this.used;
  }

  /** Takes `bytes` when they fit; the caller must `release` them exactly once. */
  tryAcquire(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}
