/**
 * What bench/s3.ts records per registry: throughput samples, S3 requests by phase and by counted operation
 * (from the counting proxies), CPU by process per phase, and memory.
 */
import type { S3CounterReport } from './s3-counter.ts';
import type { RegistryName } from './s3-servers.ts';

/** The sizes and repetitions of one run. */
export interface Plan {
  bigBytes: number;
  singleRuns: number;
  clients: number;
  concurrentRounds: number;
  pushBytes: number;
  pushCount: number;
  pushConcurrency: number;
  pushRounds: number;
  /** PATCH size of the chunked push: neither registry's part size (8 and 10 MiB) divides it. */
  chunkBytes: number;
  /** Layer sizes of the images pulled and pushed in the count phase. */
  layerBytes: number[];
  quietWaitMs: number;
  deadlineMs: number;
}

/** S3 requests of one S3 operation (GetObject, UploadPart, …). */
export interface S3Tally {
  method: string;
  requests: number;
  /** Requests s3rver failed with a 5xx (its DeleteObjects races on its own folders); the SDKs repeat them. */
  failed: number;
  emulated: boolean;
  bytesIn: number;
  bytesOut: number;
}

export type S3Tallies = Record<string, S3Tally>;

/** CPU seconds of each process while a phase ran, summed over its samples. */
export interface CpuFigures {
  wall: number;
  registry: number;
  s3rver: number;
  counter: number;
  /** This script and the clients it ran (curl). */
  clients: number;
  /** Everything else on the machine (other people's work). */
  other: number;
}

export interface PhaseFigures {
  /** Client operations (blob GETs, blob pushes) in the phase, for requests per operation. */
  operations: number;
  /** Blob bytes the clients moved. */
  bytes: number;
  s3: S3Tallies;
  cpu: CpuFigures;
}

export type ThroughputPhase = 'single' | 'concurrent' | 'monolithic' | 'streamed';
export const throughputPhases: ThroughputPhase[] = ['single', 'concurrent', 'monolithic', 'streamed'];

/** Operations whose S3 requests are counted one at a time, after a restart of both registries. */
export type CountedOperation = 'pull-cold' | 'pull-warm' | 'push-image' | 'push-chunked';

export interface RegistryFigures {
  name: RegistryName;
  /** MB/s per sample. */
  samples: Record<ThroughputPhase, number[]>;
  phases: Partial<Record<ThroughputPhase, PhaseFigures>>;
  counted: Partial<Record<CountedOperation, S3Tallies>>;
  /** VmHWM at the end of the throughput phases, bytes. */
  peakRss?: number;
  /** Highest VmRSS sampled every 50 ms, per phase, bytes. */
  rssByPhase: Record<string, number>;
}

export function newFigures(name: RegistryName): RegistryFigures {
  return {
    name,
    samples: { single: [], concurrent: [], monolithic: [], streamed: [] },
    phases: {},
    counted: {},
    rssByPhase: {},
  };
}

/** Adds one counter report to `tallies`. */
export function addCounts(tallies: S3Tallies, report: S3CounterReport): void {
  for (const count of report.operations) {
    const tally = (tallies[count.operation] ??= {
      method: count.method,
      requests: 0,
      failed: 0,
      emulated: count.emulated,
      bytesIn: 0,
      bytesOut: 0,
    });
    tally.requests += count.requests;
    tally.bytesIn += count.bytesIn;
    tally.bytesOut += count.bytesOut;
    for (const [status, n] of Object.entries(count.statuses)) if (status.startsWith('5')) tally.failed += n;
  }
}

/** Requests that count: every one sent, less those s3rver failed with a 5xx (their repeats are counted). */
export function requestsOf(tallies: S3Tallies): number {
  return Object.values(tallies).reduce((sum, tally) => sum + tally.requests - tally.failed, 0);
}

/** The same requests grouped by HTTP method, e.g. "GET 1, HEAD 2". */
export function byMethod(tallies: S3Tallies, per = 1): string {
  const methods = new Map<string, number>();
  for (const tally of Object.values(tallies)) {
    methods.set(tally.method, (methods.get(tally.method) ?? 0) + tally.requests - tally.failed);
  }
  return [...methods.entries()]
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => methodOrder(a) - methodOrder(b))
    .map(([method, n]) => `${method} ${formatCount(n / per)}`)
    .join(', ');
}

/** The same requests by S3 operation, e.g. "HeadObject 2, GetObject 1". */
export function byOperation(tallies: S3Tallies, per = 1): string {
  return Object.entries(tallies)
    .filter(([, tally]) => tally.requests - tally.failed > 0)
    .sort(([, a], [, b]) => methodOrder(a.method) - methodOrder(b.method))
    .map(
      ([operation, tally]) =>
        `${operation}${tally.emulated ? '*' : ''} ${formatCount((tally.requests - tally.failed) / per)}`,
    )
    .join(', ');
}

function methodOrder(method: string): number {
  const order = ['HEAD', 'GET', 'POST', 'PUT', 'DELETE'];
  const index = order.indexOf(method);
  return index === -1 ? order.length : index;
}

export function formatCount(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
