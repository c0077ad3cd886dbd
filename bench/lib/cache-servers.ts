/**
 * The processes of bench/cache.ts, all on 127.0.0.1: the upstream registry, one counting proxy per cache
 * in front of it, and the two caches (pullsafe's pull-through cache and distribution in proxy mode), each
 * started on a fresh storage folder.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CounterReport } from './cache-counter.ts';
import { httpRequest, waitForOk } from './http.ts';
import { freePort, logTail, sleep, startService, stopService } from './proc.ts';
import { distributionBinary, startDistribution, type RunningTarget } from './servers.ts';

export type CacheName = 'distribution' | 'pullsafe';

const here = dirname(fileURLToPath(import.meta.url));
export const pullScript = join(here, 'cache-pull.ts');
const counterScript = join(here, 'cache-counter.ts');

async function ready(target: RunningTarget, path: string): Promise<RunningTarget> {
  try {
    await waitForOk(`${target.base}${path}`, 30_000, () => !target.service.hasExited());
  } catch (error) {
    const tail = await logTail(target.service);
    await stopService(target.service);
    throw new Error(`${target.name} did not start: ${(error as Error).message}\n${tail}`, { cause: error });
  }
  return target;
}

/** The upstream: a plain docker-registry with the stock Debian configuration, on its own storage. */
export async function startUpstream(work: string): Promise<RunningTarget> {
  const folder = join(work, 'upstream');
  await mkdir(folder, { recursive: true });
  return { ...(await startDistribution(folder)), name: 'upstream' };
}

/** A counting proxy (cache-counter.ts) in front of `upstreamBase`. */
export async function startCounter(
  work: string,
  cache: CacheName,
  upstreamBase: string,
): Promise<RunningTarget> {
  const port = await freePort();
  const service = await startService(
    `counter for ${cache}`,
    process.execPath,
    [counterScript, String(port), upstreamBase],
    join(work, `counter-${cache}.log`),
  );
  return ready(
    { name: `counter for ${cache}`, base: `http://127.0.0.1:${port}`, storage: '', service },
    '/-/counts',
  );
}

export async function resetCounts(counter: RunningTarget): Promise<void> {
  const answer = await httpRequest(`${counter.base}/-/reset`, { method: 'POST', timeoutMs: 10_000 });
  if (answer.status !== 204) throw new Error(`${counter.name}: reset answered ${answer.status}`);
}

/**
 * The counts since the last reset, once no upstream request is in flight (a cache may finish a fill
 * after its clients are done), or after `settleMs` whatever is in flight.
 */
export async function readCounts(counter: RunningTarget, settleMs: number): Promise<CounterReport> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const answer = await httpRequest(`${counter.base}/-/counts`, { method: 'GET', timeoutMs: 10_000 });
    if (answer.status !== 200) throw new Error(`${counter.name}: counts answered ${answer.status}`);
    const report = JSON.parse(answer.body.toString()) as CounterReport;
    if (report.inFlight === 0 || Date.now() >= deadline) return report;
    await sleep(100);
  }
}

/** distribution (docker-registry 2.8) in proxy mode in front of `remoteUrl`, on a fresh storage folder. */
export async function startDistributionCache(work: string, remoteUrl: string): Promise<RunningTarget> {
  const port = await freePort();
  const storage = join(work, 'storage');
  await mkdir(storage, { recursive: true });
  const config = join(work, 'distribution.yml');
  // The stock Debian configuration (as in bench/registry.ts) plus the proxy section.
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      'proxy:',
      `  remoteurl: ${remoteUrl}`,
      '',
    ].join('\n'),
  );
  const service = await startService(
    'distribution',
    distributionBinary,
    ['serve', config],
    join(work, 'distribution.log'),
  );
  return ready({ name: 'distribution', base: `http://127.0.0.1:${port}`, storage, service }, '/v2/');
}

/**
 * pullsafe's pull-through cache with docker.io pointing at `remoteUrl`, on a fresh storage folder.
 * `entry` is the ./pullsafe launcher (as users run it) or a script run with plain node.
 */
export async function startPullsafeCache(
  root: string,
  work: string,
  entry: string,
  remoteUrl: string,
): Promise<RunningTarget> {
  const port = await freePort();
  const storage = join(work, 'storage');
  await mkdir(storage, { recursive: true });
  const args = [
    'serve',
    '--listen',
    `127.0.0.1:${port}`,
    '--storage',
    storage,
    '--log-level',
    'warn',
    '--proxy',
    `docker.io=${remoteUrl}`,
  ];
  const launcher = entry.endsWith('.ts') || entry.endsWith('.js') ? undefined : entry;
  const service = await startService(
    'pullsafe',
    launcher ?? process.execPath,
    launcher ? args : [entry, ...args],
    join(work, 'pullsafe.log'),
    root,
  );
  return ready({ name: 'pullsafe', base: `http://127.0.0.1:${port}`, storage, service }, '/v2/');
}
