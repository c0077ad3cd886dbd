/**
 * Scan workers started before the scan modules load, so that a worker's own start-up (loading the same
 * modules) overlaps the main thread's instead of following it. Spare workers never keep the process alive,
 * and one that failed to start is never handed out.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

interface Spare {
  worker: Worker;
  exited: boolean;
}

const spares: Spare[] = [];

export function scanWorkerUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './scan-worker.ts' : './scan-worker.js', import.meta.url);
}

/**
 * One thread fewer than the machine has, at most 3: the main thread scans too. None on two cores: there,
 * V8's own background threads (compilers, garbage collector) already keep the second core half busy, and a
 * worker, which loads and warms up the same code again, made a 30,000-file scan about 7% slower.
 */
export function defaultWorkerCount(): number {
  const cores = availableParallelism();
  return cores <= 2 ? 0 : Math.min(3, cores - 1);
}

export function prewarmScanWorkers(count = defaultWorkerCount()): void {
  for (let n = spares.length; n < count; n++) {
    let worker: Worker;
    try {
      worker = new Worker(scanWorkerUrl());
    } catch {
      return;
    }
    const spare: Spare = { worker, exited: false };
    worker.on('error', () => (spare.exited = true));
    worker.on('exit', () => (spare.exited = true));
    worker.unref();
    spares.push(spare);
  }
}

/** A started worker, if one is waiting; it keeps the process alive again from now on. */
export function takeSpareWorker(): Worker | undefined {
  for (let spare = spares.shift(); spare; spare = spares.shift()) {
    if (spare.exited) continue;
    spare.worker.ref();
    return spare.worker;
  }
  return undefined;
}

export function releaseSpareWorkers(): void {
  for (const spare of spares.splice(0)) void spare.worker.terminate();
}
