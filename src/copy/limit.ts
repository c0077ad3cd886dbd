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

/**
 * The first failure among one run's tasks. Tasks check it before they start work, so once one failed, tasks
 * not yet started start nothing, and when the run reports its failure nothing of it is still running.
 */
export class FirstFailure {
  private failure: { reason: unknown } | undefined;

  /** Waits for every task, then fails with the first failure. */
  async settle(tasks: Promise<void>[]): Promise<void> {
    const results = await Promise.allSettled(
      tasks.map((task) =>
        task.catch((reason: unknown) => {
          this.failure ??= { reason };
          throw reason;
        }),
      ),
    );
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure.reason;
  }
}
