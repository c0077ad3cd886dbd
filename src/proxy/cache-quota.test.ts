/**
 * Quota observations shared between replicas through the coordinator: what another replica (or anything
 * else writing to the same Redis) left there must never end this process.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openMemoryStorage } from '../store/index.ts';
import { PullThroughCache } from './cache.ts';
import { LocalCoordinator } from './coordination.ts';
import type { UpstreamOptions } from './upstream.ts';

function upstream(name: string): UpstreamOptions {
  return {
    name,
    url: new URL('http://127.0.0.1:9'),
    namespace: name,
    prefixes: [],
    anonymousPull: true,
    concurrency: 1,
    requestsPerSecond: 0,
    connectTimeoutMs: 1_000,
    responseTimeoutMs: 1_000,
    revalidateWaitMs: 1_000,
    tagTtlMs: 60_000,
    tagRules: [],
    notFoundTtlMs: 30_000,
    quotaReserve: 0,
  };
}

describe('shared quota observations', () => {
  it('a value that is not a quota is skipped; the process lives and the next upstream is read', async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => void rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    const coordinator = new LocalCoordinator();
    const hour = 3_600_000;
    await coordinator.set('quota:docker.io', 'not JSON', hour);
    await coordinator.set('quota:quay.io', 'null', hour);
    const shared = { limit: 100, remaining: 42, windowSeconds: 21_600, observedAt: Date.now() };
    await coordinator.set('quota:ghcr.io', JSON.stringify(shared), hour);
    const cache = new PullThroughCache(openMemoryStorage(), {
      upstreams: [upstream('docker.io'), upstream('quay.io'), upstream('ghcr.io')],
      hosted: [],
      spoolDir: '/nonexistent/pullsafe-fills',
      coordinator,
    });
    try {
      const ghcr = cache.upstreams.find((candidate) => candidate.name === 'ghcr.io');
      // The cache reads the coordinator every 2 s.
      for (let wait = 0; wait < 60 && ghcr?.quota === undefined; wait++) await sleep(100);
      await sleep(50);
      assert.deepEqual(rejections, [], 'no read of the shared quotas was left to reject');
      assert.deepEqual(ghcr?.quota, shared, 'the upstream after the bad values adopted its shared quota');
      assert.equal(cache.upstreams.find((candidate) => candidate.name === 'docker.io')?.quota, undefined);
      assert.equal(cache.upstreams.find((candidate) => candidate.name === 'quay.io')?.quota, undefined);
    } finally {
      await cache.close();
      process.off('unhandledRejection', onRejection);
    }
  });
});
