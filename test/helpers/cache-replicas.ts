/**
 * Three `pullsafe serve` processes of one pull-through cache, as a deployment runs them: one s3rver bucket,
 * one redis-server (fill leases of 2 s, so a dead replica is taken over quickly), and a fake upstream that
 * redirects blob GETs to its CDN (its request log says what the upstream saw). `args` go to every replica.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServeProcess, type ServeProcess } from './cli.ts';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.ts';
import { startRedis, type RedisPeer } from './redis.ts';
import { startS3rver, type S3rverPeer } from './s3rver.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface CacheReplicas {
  s3rver: S3rverPeer;
  redis: RedisPeer;
  upstream: FakeUpstream;
  /** A folder of the test's own, removed by `stop`. */
  folder: string;
  replicas: ServeProcess[];
  stop(): Promise<void>;
}

/** `args(folder)`: the replicas' extra arguments, given the test's folder for files they name. */
export async function startCacheReplicas(
  name: string,
  args: (folder: string) => Promise<string[]> = async () => [],
): Promise<CacheReplicas> {
  const started: { stop(): Promise<void> }[] = [];
  const replicas: ServeProcess[] = [];
  const stopAll = async (): Promise<void> => {
    for (const replica of replicas) {
      if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
      await replica.exited;
    }
    for (const part of started.reverse()) await part.stop();
  };
  try {
    const redis = await startRedis();
    started.push(redis);
    const s3rver = await startS3rver();
    started.push(s3rver);
    Object.assign(process.env, s3rver.env);
    const upstream = await startFakeUpstream({ auth: 'token', blobRedirect: true });
    started.push({ stop: () => upstream.close() });
    const folder = await makeTempDir(`pullsafe-${name}-`);
    started.push({ stop: () => removeTempDir(folder) });
    const config = join(folder, 'serve.yaml');
    await writeFile(config, `redis:\n  url: ${redis.url}\n  leaseTtl: 2s\n`);
    const extra = await args(folder);
    for (let index = 0; index < 3; index++) {
      replicas.push(
        await startServeProcess([
          '--config',
          config,
          '--storage',
          `s3://${s3rver.bucket}/${name}`,
          '--proxy',
          `docker.io=${upstream.url}`,
          ...extra,
        ]),
      );
    }
    return { s3rver, redis, upstream, folder, replicas, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
