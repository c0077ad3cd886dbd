/**
 * The processes of bench/cache.ts, all on 127.0.0.1: the upstream registry, one counting proxy per cache
 * in front of it, and the two caches (pullsafe's pull-through cache and distribution in proxy mode), each
 * started on a fresh storage folder.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CounterReport } from './cache-counter.ts';
import { sleep } from './proc.ts';
import {
  fetchCounts,
  startCountingProxy,
  startDistribution,
  startPullsafe,
  type RunningTarget,
} from './servers.ts';

export type CacheName = 'distribution' | 'pullsafe';

const here = dirname(fileURLToPath(import.meta.url));
export const pullScript = join(here, 'cache-pull.ts');
const counterScript = join(here, 'cache-counter.ts');

/** The upstream: a plain docker-registry with the stock Debian configuration, on its own storage. */
export async function startUpstream(work: string): Promise<RunningTarget> {
  const folder = join(work, 'upstream');
  await mkdir(folder, { recursive: true });
  return { ...(await startDistribution(folder)), name: 'upstream' };
}

/** A counting proxy (cache-counter.ts) in front of `upstreamBase`. */
export function startCounter(work: string, cache: CacheName, upstreamBase: string): Promise<RunningTarget> {
  return startCountingProxy(
    counterScript,
    `counter for ${cache}`,
    upstreamBase,
    join(work, `counter-${cache}.log`),
  );
}

/**
 * The counts since the last reset, once no upstream request is in flight (a cache may finish a fill
 * after its clients are done), or after `settleMs` whatever is in flight.
 */
export async function readCounts(counter: RunningTarget, settleMs: number): Promise<CounterReport> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const report = await fetchCounts<CounterReport>(counter);
    if (report.inFlight === 0 || Date.now() >= deadline) return report;
    await sleep(100);
  }
}

/** distribution (docker-registry 2.8) in proxy mode in front of `remoteUrl`, on a fresh storage folder. */
export function startDistributionCache(work: string, remoteUrl: string): Promise<RunningTarget> {
  return startDistribution(work, { proxyRemoteUrl: remoteUrl });
}

/**
 * pullsafe's pull-through cache with docker.io pointing at `remoteUrl`, on a fresh storage folder.
 * `entry` is the ./pullsafe launcher (as users run it) or a script run with plain node.
 */
export function startPullsafeCache(
  root: string,
  work: string,
  entry: string,
  remoteUrl: string,
): Promise<RunningTarget> {
  return startPullsafe(root, work, entry, { serveArgs: ['--proxy', `docker.io=${remoteUrl}`] });
}
