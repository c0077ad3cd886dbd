/**
 * The processes of bench/s3.ts, all on 127.0.0.1: one s3rver, one counting proxy per registry in front of it
 * (s3-counter.ts), pullsafe serving from `s3://BUCKET/pullsafe` and distribution (docker-registry 2.8) on its
 * S3 driver under `/distribution` of the same bucket. Every process is a tracked child (proc.ts), so an
 * error or a signal ends it, and s3rver keeps its data in the bench's temporary folder.
 */
import { createRequire } from 'node:module';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep, startService, type Service } from './proc.ts';
import type { S3CounterReport } from './s3-counter.ts';
import {
  fetchCounts,
  ready,
  startCountingProxy,
  startDistribution,
  startPullsafe,
  type RunningTarget,
} from './servers.ts';

export type RegistryName = 'distribution' | 'pullsafe';

const counterScript = join(dirname(fileURLToPath(import.meta.url)), 's3-counter.ts');

/** s3rver's fixed account. */
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const bucket = 'bench';
const region = 'us-east-1';

export interface S3rver {
  base: string;
  service: Service;
}

/**
 * s3rver (the project's devDependency) with one bucket. Node runs it with --openssl-legacy-provider: s3rver
 * 3.7.1 signs listing continuation tokens with DES, which OpenSSL 3 has only there. --silent: its request
 * log would cost CPU on every request.
 */
export async function startS3rver(work: string): Promise<S3rver> {
  let bin: string;
  try {
    bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  } catch {
    throw new Error('s3rver is required (npm install: it is a devDependency)');
  }
  const directory = join(work, 's3rver');
  await mkdir(directory, { recursive: true });
  const port = await freePort();
  const service = await startService(
    's3rver',
    process.execPath,
    [
      '--openssl-legacy-provider',
      bin,
      '--directory',
      directory,
      '--address',
      '127.0.0.1',
      '--port',
      String(port),
      '--silent',
      '--no-vhost-buckets',
      '--configure-bucket',
      bucket,
    ],
    join(work, 's3rver.log'),
  );
  // Any answer will do: s3rver answers unsigned requests with 403.
  return ready({ name: 's3rver', base: `http://127.0.0.1:${port}`, service }, '/', () => true);
}

/** A counting proxy (s3-counter.ts) in front of s3rver, for one registry. */
export function startCounter(work: string, name: RegistryName, s3rverBase: string): Promise<RunningTarget> {
  return startCountingProxy(
    counterScript,
    `S3 counter for ${name}`,
    s3rverBase,
    join(work, `counter-${name}.log`),
  );
}

/**
 * The counts since the last reset, once the registry is done with S3: nothing in flight and no new request
 * for `quietMs` (a registry may remove an upload's objects after answering), or after `settleMs` whatever
 * is in flight.
 */
export async function readCounts(
  counter: RunningTarget,
  settleMs: number,
  quietMs = 300,
): Promise<S3CounterReport> {
  const deadline = Date.now() + settleMs;
  let previous = -1;
  for (;;) {
    const report = await fetchCounts<S3CounterReport>(counter);
    const total = report.operations.reduce((sum, count) => sum + count.requests, 0);
    if ((report.inFlight === 0 && total === previous) || Date.now() >= deadline) return report;
    previous = report.inFlight === 0 ? total : -1;
    await sleep(quietMs);
  }
}

/**
 * distribution on its S3 driver under `/distribution` of the bucket, through `endpoint` (the counting
 * proxy), with the stock Debian settings of bench/registry.ts otherwise.
 */
export function startDistributionS3(work: string, endpoint: string): Promise<RunningTarget> {
  const s3 = {
    endpoint,
    bucket,
    region,
    accessKey: credentials.accessKeyId,
    secretKey: credentials.secretAccessKey,
    rootDirectory: '/distribution',
  };
  return startDistribution(work, { storage: { s3 } });
}

/**
 * pullsafe serving `s3://BUCKET/pullsafe`, reaching S3 at `endpoint` (the counting proxy) through the AWS
 * SDK's own environment, as a user points it at an S3-compatible service. `entry` is a script run with
 * node (src/cli/main.ts, dist/cli/main.js) or the ./pullsafe launcher.
 */
export function startPullsafeS3(
  root: string,
  work: string,
  entry: string,
  endpoint: string,
): Promise<RunningTarget> {
  return startPullsafe(root, work, entry, {
    storage: `s3://${bucket}/pullsafe`,
    environment: [
      `AWS_ENDPOINT_URL_S3=${endpoint}`,
      `AWS_ACCESS_KEY_ID=${credentials.accessKeyId}`,
      `AWS_SECRET_ACCESS_KEY=${credentials.secretAccessKey}`,
      `AWS_REGION=${region}`,
    ],
  });
}
