/**
 * pullsafe's pull-through cache in this process, in front of upstreams the test starts (the fake upstream),
 * on a fresh temporary storage folder; and the images the tests put into a fake upstream.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PullThroughCache, type UpstreamOptions } from '../../src/proxy/index.ts';
import { AccessControl } from '../../src/server/auth.ts';
import { startServer, type RunningServer } from '../../src/server/app.ts';
import { openFsStorage } from '../../src/store/index.ts';
import type { FakeUpstream } from './fake-upstream.ts';
import type { TestImage } from './fixtures.ts';

export interface TestCache {
  url: string;
  server: RunningServer;
  /** The storage folder. */
  storage: string;
  /** What the server logged, for assertions (no secrets). */
  logs: object[];
  stop(): Promise<void>;
}

/** An upstream named docker.io at the fake upstream's address, with short timeouts; `overrides` win. */
export function upstreamOptions(
  upstream: FakeUpstream,
  overrides: Partial<UpstreamOptions> = {},
): UpstreamOptions {
  return {
    name: 'docker.io',
    url: new URL(upstream.url),
    namespace: 'docker.io',
    prefixes: [],
    anonymousPull: true,
    concurrency: 16,
    requestsPerSecond: 0,
    connectTimeoutMs: 2_000,
    responseTimeoutMs: 5_000,
    revalidateWaitMs: 1_000,
    tagTtlMs: 60_000,
    tagRules: [],
    notFoundTtlMs: 30_000,
    quotaReserve: 0,
    ...overrides,
  };
}

/**
 * Starts the cache on 127.0.0.1:0. Without `htpasswd` anyone may pull and push; with it, only its users
 * may pull (and read /metrics and /status).
 */
export async function startCache(
  upstreams: UpstreamOptions[],
  options: { hosted?: string[]; htpasswd?: string } = {},
): Promise<TestCache> {
  const storageDir = await mkdtemp(join(tmpdir(), 'pullsafe-cache-'));
  const storage = await openFsStorage(storageDir);
  const cache = new PullThroughCache(storage, {
    upstreams,
    hosted: options.hosted ?? [],
    spoolDir: join(storageDir, 'fills'),
  });
  const open = options.htpasswd === undefined;
  const access = await AccessControl.load({
    realm: 'pullsafe',
    anonymousPull: open,
    anonymousPush: open,
    ...(options.htpasswd ? { htpasswd: options.htpasswd } : {}),
  });
  const logs: object[] = [];
  const log = (fields: object): void => void logs.push(fields);
  const server = await startServer({
    storage,
    access,
    logger: { info: log, warn: log, error: log },
    cache,
    host: '127.0.0.1',
    port: 0,
    logRequests: true,
  });
  return {
    url: server.url,
    server,
    storage: storageDir,
    logs,
    async stop() {
      await server.close({ immediate: true });
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}

/** Puts a multi-platform image into the fake upstream: every blob and manifest, and the index under `tag`. */
export function addImage(upstream: FakeUpstream, repository: string, tag: string, image: TestImage): void {
  for (const manifest of image.manifests) {
    upstream.addBlob(repository, manifest.config.bytes);
    for (const layer of manifest.layers) upstream.addBlob(repository, layer.data);
    upstream.addManifest(repository, manifest.digest, manifest.mediaType, manifest.bytes);
  }
  upstream.addManifest(repository, tag, image.index.mediaType, image.index.bytes);
}
