/** Runs at most `size` tasks at once; the rest wait in order. */
export class Limiter {
  private readonly size: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.size = Math.max(1, size);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
