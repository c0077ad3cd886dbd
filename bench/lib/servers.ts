/**
 * Starting the processes the benches measure or lean on, on 127.0.0.1: pullsafe, distribution (on a folder
 * or on S3, as a registry or as a pull-through cache), the counting proxies and the nginx reference.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { httpRequest, waitForOk } from './http.ts';
import { freePort, logTail, startService, stopService, type Service } from './proc.ts';

export type ServerName = 'distribution' | 'pullsafe';

export interface RunningTarget {
  name: string;
  base: string;
  storage: string;
  service: Service;
}

/**
 * Resolves with `target` once GET `path` answers (200, or what `accepts` takes); otherwise stops the
 * process and fails with the tail of its log.
 */
export async function ready<T extends Omit<RunningTarget, 'storage'>>(
  target: T,
  path: string,
  accepts?: (status: number) => boolean,
): Promise<T> {
  const { service } = target;
  try {
    await waitForOk(`${target.base}${path}`, 60_000, () => !service.hasExited(), accepts);
  } catch (error) {
    const tail = await logTail(service);
    await stopService(service);
    throw new Error(`${target.name} did not start: ${(error as Error).message}\n${tail}`, { cause: error });
  }
  return target;
}

export interface PullsafeOptions {
  /** Default: a fresh folder pullsafe-storage in `work`. */
  storage?: string;
  /** Arguments for `serve` beyond listen, storage and log level. */
  serveArgs?: string[];
  /** NAME=VALUE settings for pullsafe's environment alone. */
  environment?: string[];
}

/**
 * pullsafe serve. `entry` is the ./pullsafe launcher (how users run it: it execs node with the project's
 * flags, same PID) or a script run with plain node (src/cli/main.ts, dist/cli/main.js).
 */
export async function startPullsafe(
  root: string,
  work: string,
  entry: string,
  options: PullsafeOptions = {},
): Promise<RunningTarget> {
  const port = await freePort();
  const storage = options.storage ?? join(work, 'pullsafe-storage');
  if (options.storage === undefined) await mkdir(storage, { recursive: true });
  const serveArgs = [
    ...['serve', '--listen', `127.0.0.1:${port}`, '--storage', storage, '--log-level', 'warn'],
    ...(options.serveArgs ?? []),
  ];
  const script = entry.endsWith('.ts') || entry.endsWith('.js');
  const command = [...(script ? [process.execPath, entry] : [entry]), ...serveArgs];
  // env execs node (or the launcher, which execs node): the service's pid is pullsafe's.
  const [program, ...args] = options.environment
    ? ['/usr/bin/env', ...options.environment, ...command]
    : command;
  const service = await startService('pullsafe', program!, args, join(work, 'pullsafe.log'), root);
  return ready({ name: 'pullsafe', base: `http://127.0.0.1:${port}`, storage, service }, '/v2/');
}

export const distributionBinary = '/usr/bin/docker-registry';

/** distribution on S3 (or an S3-compatible service at `endpoint`), under `rootDirectory` of `bucket`. */
export interface DistributionS3 {
  endpoint: string;
  bucket: string;
  region: string;
  accessKey: string;
  secretKey: string;
  rootDirectory: string;
}

export interface DistributionOptions {
  /** Default: a fresh folder distribution-storage in `work`. */
  storage?: { folder: string } | { s3: DistributionS3 };
  /** Proxy mode: a pull-through cache of the registry at this URL. */
  proxyRemoteUrl?: string;
}

/**
 * The S3 driver's settings, with two that s3rver and the comparison with pullsafe need:
 * - `redirect.disable`: distribution streams blobs through itself, as pullsafe does by default (otherwise it
 *   answers GETs with a redirect to a presigned S3 URL);
 * - `multipartcopythresholdsize` at its maximum (5 GiB): blobs are moved into place with one CopyObject, as
 *   pullsafe does under 5 GiB; over the default 32 MiB distribution would use UploadPartCopy, which s3rver
 *   lacks.
 * The 2.8 driver uses path-style addressing whenever `regionendpoint` is set (it has no forcepathstyle).
 */
function s3Lines(s3: DistributionS3): string[] {
  return [
    '  s3:',
    `    accesskey: ${s3.accessKey}`,
    `    secretkey: ${s3.secretKey}`,
    `    region: ${s3.region}`,
    `    regionendpoint: ${s3.endpoint}`,
    `    bucket: ${s3.bucket}`,
    '    secure: false',
    '    v4auth: true',
    `    rootdirectory: ${s3.rootDirectory}`,
    '    multipartcopythresholdsize: 5368709120',
    '  redirect:',
    '    disable: true',
  ];
}

/**
 * The stock Debian configuration, on loopback, with the access log off (pullsafe logs no requests at
 * warn), the blob descriptor cache in memory and delete on, with the lines of `storage` and, in proxy
 * mode, the remote it caches.
 */
function distributionConfig(port: number, storage: string[], proxyRemoteUrl: string | undefined): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    ...storage,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(proxyRemoteUrl === undefined ? [] : ['proxy:', `  remoteurl: ${proxyRemoteUrl}`]),
    '',
  ].join('\n');
}

/** distribution (docker-registry 2.8), with its configuration and log in `work`. */
export async function startDistribution(
  work: string,
  options: DistributionOptions = {},
): Promise<RunningTarget> {
  const port = await freePort();
  const storage = options.storage ?? { folder: join(work, 'distribution-storage') };
  if ('folder' in storage) await mkdir(storage.folder, { recursive: true });
  const config = join(work, 'distribution.yml');
  const storageLines =
    'folder' in storage ? ['  filesystem:', `    rootdirectory: ${storage.folder}`] : s3Lines(storage.s3);
  await writeFile(config, distributionConfig(port, storageLines, options.proxyRemoteUrl));
  // On S3, AWS_CA_BUNDLE goes: the Go SDK refuses to start with it set and a transport of distribution's
  // own (the endpoint is plain HTTP anyway). env execs the registry: the service's pid is the registry's.
  const [program, ...args] = [
    ...('s3' in storage ? ['/usr/bin/env', '-u', 'AWS_CA_BUNDLE'] : []),
    distributionBinary,
    ...['serve', config],
  ];
  const service = await startService('distribution', program!, args, join(work, 'distribution.log'));
  return ready(
    {
      name: 'distribution',
      base: `http://127.0.0.1:${port}`,
      storage: 'folder' in storage ? storage.folder : storage.s3.rootDirectory,
      service,
    },
    '/v2/',
  );
}

/**
 * A counting proxy (`script`: cache-counter.ts, s3-counter.ts) in front of `upstreamBase`, ready once its
 * GET /-/counts answers.
 */
export async function startCountingProxy(
  script: string,
  name: string,
  upstreamBase: string,
  logFile: string,
): Promise<RunningTarget> {
  const port = await freePort();
  const service = await startService(name, process.execPath, [script, String(port), upstreamBase], logFile);
  return ready({ name, base: `http://127.0.0.1:${port}`, storage: '', service }, '/-/counts');
}

/** Zeroes a counting proxy's counts (POST /-/reset). */
export async function resetCounts(counter: RunningTarget): Promise<void> {
  const answer = await httpRequest(`${counter.base}/-/reset`, { method: 'POST', timeoutMs: 10_000 });
  if (answer.status !== 204) throw new Error(`${counter.name}: reset answered ${answer.status}`);
}

/** A counting proxy's report as it stands (GET /-/counts). */
export async function fetchCounts<Report>(counter: RunningTarget): Promise<Report> {
  const answer = await httpRequest(`${counter.base}/-/counts`, { method: 'GET', timeoutMs: 10_000 });
  if (answer.status !== 200) throw new Error(`${counter.name}: counts answered ${answer.status}`);
  return JSON.parse(answer.body.toString()) as Report;
}

/** Path under distribution's storage root where a blob's bytes live (used by the nginx reference). */
export function distributionBlobPath(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

/**
 * nginx with sendfile serving `root` as static files: the loopback ceiling for the same bytes. Returns
 * undefined if nginx is not installed.
 */
export async function startNginx(
  nginxBinary: string,
  work: string,
  root: string,
): Promise<RunningTarget | undefined> {
  const port = await freePort();
  const prefix = join(work, 'nginx');
  await mkdir(join(prefix, 'body'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  const asRoot = process.getuid?.() === 0;
  await writeFile(
    conf,
    [
      // As root, workers would switch to nobody, who cannot read the private temp dir.
      asRoot ? 'user root;' : '',
      'worker_processes auto;',
      'daemon off;',
      `pid ${join(prefix, 'nginx.pid')};`,
      `error_log ${join(prefix, 'error.log')} error;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  keepalive_requests 1000000;',
      '  default_type application/octet-stream;',
      `  client_body_temp_path ${join(prefix, 'body')};`,
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    root ${root};`,
      '    location / { }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const service = await startService(
    'nginx',
    nginxBinary,
    ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', conf],
    join(prefix, 'stdout.log'),
  );
  await writeFile(join(root, 'ready'), 'ok\n');
  return ready({ name: 'nginx', base: `http://127.0.0.1:${port}`, storage: root, service }, '/ready');
}
