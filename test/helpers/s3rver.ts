/**
 * s3rver (npm, a devDependency): an S3 server for tests, run as a child process on 127.0.0.1, port chosen
 * by the kernel, one bucket, data in a temporary folder. Node runs it with --openssl-legacy-provider: s3rver
 * 3.7.1 signs ListObjectsV2 continuation tokens with DES, which OpenSSL 3 has only there, so without it
 * every listing longer than one page fails with a 500.
 *
 * What s3rver does not do, and what covers it instead (the same suites run against a real bucket when
 * PULLSAFE_TEST_S3_BUCKET and AWS credentials are set):
 * - AbortMultipartUpload answers 405: aborting is best effort in the driver; the bucket's lifecycle rule
 *   removes incomplete multipart uploads on AWS.
 * - Parts under 5 MiB are accepted: tests with small parts pass here that AWS would refuse, so the driver
 *   never makes them unless asked (partSize).
 * - UploadPartCopy is missing: the driver uses it only to copy blobs over 5 GiB.
 * - ListMultipartUploads and ListParts are missing: the driver keeps its parts in its own state instead.
 * - Conditional writes (If-None-Match) are ignored: the driver does not rely on them.
 * - Writes are not atomic (it streams into the final file), and concurrent copies to one key fail with a
 *   500: the driver writes each blob key once at a time per process.
 *
 * S3RVER_VERBOSE=1 keeps s3rver's request log, in logs().
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { makeTempDir, removeTempDir } from './tmp.ts';

export interface S3rverPeer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  bucket: string;
  /** s3rver's fixed account. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The environment a child process (pullsafe serve, gc, fsck) needs to reach this server. */
  env: Record<string, string>;
  /** The last 64 KiB of what s3rver printed. */
  logs(): string;
  stop(): Promise<void>;
}

const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

function s3rverBin(): string {
  try {
    return createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  } catch {
    throw new Error('peer missing: s3rver (npm install: it is a devDependency)');
  }
}

export async function startS3rver(options: { startTimeoutMs?: number } = {}): Promise<S3rverPeer> {
  const bin = s3rverBin();
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const directory = await makeTempDir('pullsafe-s3rver-');
  const bucket = `pullsafe-test-${randomBytes(4).toString('hex')}`;
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      bin,
      '--directory',
      directory,
      '--address',
      '127.0.0.1',
      '--port',
      '0',
      ...(process.env.S3RVER_VERBOSE ? [] : ['--silent']),
      '--no-vhost-buckets',
      '--configure-bucket',
      bucket,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let output = '';
  const record = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout.on('data', record);
  child.stderr.on('data', record);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await removeTempDir(directory);
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`s3rver did not report its port within ${timeoutMs} ms:\n${output}`)),
        timeoutMs,
      );
      const onData = (): void => {
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (!match) return;
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve(Number(match[1]));
      };
      child.stdout.on('data', onData);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited before listening:\n${output}`));
      });
    });
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      bucket,
      credentials,
      env: {
        AWS_ENDPOINT_URL_S3: endpoint,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_REGION: 'us-east-1',
      },
      logs: () => output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
