/**
 * The processes of bench/s3.ts, all on 127.0.0.1: one s3rver, one counting proxy per registry in front of it
 * (s3-counter.ts), pullsafe serving from `s3://BUCKET/pullsafe` and distribution (docker-registry 2.8) on its
 * S3 driver under `/distribution` of the same bucket. Every process is a tracked child (proc.ts), so an
 * error or a signal ends it, and s3rver keeps its data in the bench's temporary folder.
 */
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRequest, waitForOk } from './http.ts';
import { freePort, logTail, sleep, startService, stopService, type Service } from './proc.ts';
import type { S3CounterReport } from './s3-counter.ts';
import { distributionBinary, type RunningTarget } from './servers.ts';

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

async function stopOnFailure<T>(service: Service, name: string, ready: Promise<T>): Promise<T> {
  try {
    return await ready;
  } catch (error) {
    const tail = await logTail(service);
    await stopService(service);
    throw new Error(`${name} did not start: ${(error as Error).message}\n${tail}`, { cause: error });
  }
}

/** Polls `url` until anything answers over HTTP (s3rver answers unsigned requests with 403). */
async function waitForAnswer(url: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process exited before ${url} answered`);
    try {
      await httpRequest(url, { method: 'GET', timeoutMs: 2_000 });
      return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url} not answering after ${timeoutMs} ms (${last})`);
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
  const base = `http://127.0.0.1:${port}`;
  await stopOnFailure(
    service,
    's3rver',
    waitForAnswer(`${base}/`, 30_000, () => !service.hasExited()),
  );
  return { base, service };
}

/** A counting proxy (s3-counter.ts) in front of s3rver, for one registry. */
export async function startCounter(
  work: string,
  name: RegistryName,
  s3rverBase: string,
): Promise<RunningTarget> {
  const port = await freePort();
  const service = await startService(
    `S3 counter for ${name}`,
    process.execPath,
    [counterScript, String(port), s3rverBase],
    join(work, `counter-${name}.log`),
  );
  const base = `http://127.0.0.1:${port}`;
  await stopOnFailure(
    service,
    `S3 counter for ${name}`,
    waitForOk(`${base}/-/counts`, 30_000, () => !service.hasExited()),
  );
  return { name: `S3 counter for ${name}`, base, storage: '', service };
}

export async function resetCounts(counter: RunningTarget): Promise<void> {
  const answer = await httpRequest(`${counter.base}/-/reset`, { method: 'POST', timeoutMs: 10_000 });
  if (answer.status !== 204) throw new Error(`${counter.name}: reset answered ${answer.status}`);
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
    const answer = await httpRequest(`${counter.base}/-/counts`, { method: 'GET', timeoutMs: 10_000 });
    if (answer.status !== 200) throw new Error(`${counter.name}: counts answered ${answer.status}`);
    const report = JSON.parse(answer.body.toString()) as S3CounterReport;
    const total = report.operations.reduce((sum, count) => sum + count.requests, 0);
    if ((report.inFlight === 0 && total === previous) || Date.now() >= deadline) return report;
    previous = report.inFlight === 0 ? total : -1;
    await sleep(quietMs);
  }
}

async function ready(target: RunningTarget): Promise<RunningTarget> {
  const { service } = target;
  await stopOnFailure(
    service,
    target.name,
    waitForOk(`${target.base}/v2/`, 60_000, () => !service.hasExited()),
  );
  return target;
}

/**
 * distribution on its S3 driver, through `endpoint` (the counting proxy), with the stock Debian settings of
 * bench/registry.ts otherwise (descriptor cache in memory, delete on, access log off). Two settings that
 * s3rver and the comparison need:
 * - `redirect.disable`: distribution streams blobs through itself, as pullsafe does by default (otherwise it
 *   answers GETs with a redirect to a presigned S3 URL);
 * - `multipartcopythresholdsize` at its maximum (5 GiB): blobs are moved into place with one CopyObject, as
 *   pullsafe does under 5 GiB; over the default 32 MiB distribution would use UploadPartCopy, which s3rver
 *   lacks.
 * The 2.8 driver uses path-style addressing whenever `regionendpoint` is set (it has no forcepathstyle).
 * AWS_CA_BUNDLE is removed from its environment: the Go SDK refuses to start with it set and a transport of
 * distribution's own, and the endpoint is plain HTTP anyway.
 */
export async function startDistributionS3(work: string, endpoint: string): Promise<RunningTarget> {
  const listen = await freePort();
  const config = join(work, 'distribution.yml');
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
      '  s3:',
      `    accesskey: ${credentials.accessKeyId}`,
      `    secretkey: ${credentials.secretAccessKey}`,
      `    region: ${region}`,
      `    regionendpoint: ${endpoint}`,
      `    bucket: ${bucket}`,
      '    secure: false',
      '    v4auth: true',
      '    rootdirectory: /distribution',
      '    multipartcopythresholdsize: 5368709120',
      '  redirect:',
      '    disable: true',
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${listen}`,
      '',
    ].join('\n'),
  );
  // env execs the registry: the service's pid is the registry's.
  const service = await startService(
    'distribution',
    '/usr/bin/env',
    ['-u', 'AWS_CA_BUNDLE', distributionBinary, 'serve', config],
    join(work, 'distribution.log'),
  );
  return ready({
    name: 'distribution',
    base: `http://127.0.0.1:${listen}`,
    storage: '/distribution',
    service,
  });
}

/**
 * pullsafe serving `s3://BUCKET/pullsafe`, reaching S3 at `endpoint` (the counting proxy) through the AWS
 * SDK's own environment, as a user points it at an S3-compatible service. `entry` is a script run with
 * node (src/cli/main.ts, dist/cli/main.js) or the ./pullsafe launcher.
 */
export async function startPullsafeS3(
  root: string,
  work: string,
  entry: string,
  endpoint: string,
): Promise<RunningTarget> {
  const listen = await freePort();
  const storage = `s3://${bucket}/pullsafe`;
  const environment = [
    `AWS_ENDPOINT_URL_S3=${endpoint}`,
    `AWS_ACCESS_KEY_ID=${credentials.accessKeyId}`,
    `AWS_SECRET_ACCESS_KEY=${credentials.secretAccessKey}`,
    `AWS_REGION=${region}`,
  ];
  const serveArgs = ['serve', '--listen', `127.0.0.1:${listen}`, '--storage', storage, '--log-level', 'warn'];
  const script = entry.endsWith('.ts') || entry.endsWith('.js');
  // env execs node (or the launcher, which execs node): the service's pid is pullsafe's.
  const service = await startService(
    'pullsafe',
    '/usr/bin/env',
    [...environment, ...(script ? [process.execPath, entry] : [entry]), ...serveArgs],
    join(work, 'pullsafe.log'),
    root,
  );
  return ready({ name: 'pullsafe', base: `http://127.0.0.1:${listen}`, storage, service });
}
