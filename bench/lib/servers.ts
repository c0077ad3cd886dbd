/** Starting the servers under test (pullsafe, distribution) and the nginx reference, on 127.0.0.1. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitForOk } from './http.ts';
import { freePort, logTail, startService, stopService, type Service } from './proc.ts';

export type ServerName = 'distribution' | 'pullsafe';

export interface RunningTarget {
  name: string;
  base: string;
  storage: string;
  service: Service;
}

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

export async function startPullsafe(root: string, work: string, entry: string): Promise<RunningTarget> {
  const port = await freePort();
  const storage = join(work, 'pullsafe-storage');
  await mkdir(storage, { recursive: true });
  // The launcher (./pullsafe) is how users run it: it execs node with the project's flags, same PID.
  const serveArgs = ['serve', '--listen', `127.0.0.1:${port}`, '--storage', storage, '--log-level', 'warn'];
  const launcher = entry.endsWith('.ts') || entry.endsWith('.js') ? undefined : entry;
  const service = await startService(
    'pullsafe',
    launcher ?? process.execPath,
    launcher ? serveArgs : [entry, ...serveArgs],
    join(work, 'pullsafe.log'),
    root,
  );
  return ready({ name: 'pullsafe', base: `http://127.0.0.1:${port}`, storage, service }, '/v2/');
}

export const distributionBinary = '/usr/bin/docker-registry';

export async function startDistribution(work: string): Promise<RunningTarget> {
  const port = await freePort();
  const storage = join(work, 'distribution-storage');
  await mkdir(storage, { recursive: true });
  const config = join(work, 'distribution.yml');
  // The stock Debian config, on loopback, with the access log off (pullsafe logs no requests at warn).
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
