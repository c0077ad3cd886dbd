/**
 * Reusable read buffers for serving blobs. Allocating a fresh Buffer per chunk makes V8 collect garbage
 * every few tens of megabytes served; recycling a bounded set keeps throughput and memory flat.
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
