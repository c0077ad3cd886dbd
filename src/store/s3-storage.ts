/** Opening a storage in an S3 bucket: `s3://BUCKET/PREFIX`. */
import { ObjectRepositoryStore } from './object-repositories.ts';
import { ObjectDocuments } from './objects.ts';
import { S3BlobStore } from './s3-blobs.ts';
import { S3Objects, createS3Client, type S3ConnectionOptions } from './s3-objects.ts';
import { S3Reads } from './s3-reads.ts';
import { S3Uploads, defaultPartSize } from './s3-uploads.ts';
import type { Storage } from './storage.ts';

export interface S3StorageOptions extends S3ConnectionOptions {
  /** Bytes per multipart part (default 8 MiB; S3 refuses parts under 5 MiB but the last). */
  partSize?: number;
  /**
   * How long a repository's link to a blob or manifest, once seen, is taken as present (default 10 minutes;
   * 0: ask S3 every time). Processes sharing the bucket keep it exact through `Storage.shareLinkRemovals`;
   * see object-repositories.ts for what it can and cannot make stale.
   */
  rememberLinksMs?: number;
}

const defaultRememberLinksMs = 600_000;

/** A read's URL is used at once; the margin covers a clock a little behind S3's. */
const presignedReadSeconds = 900;

/**
 * Opens the bucket and checks at once that it can be listed (credentials, region, endpoint, bucket), so a
 * misconfiguration fails at start-up with what is wrong instead of at the first push.
 */
export async function openS3Storage(options: S3StorageOptions): Promise<Storage> {
  const client = await createS3Client(options);
  const objects = new S3Objects(client, options.bucket, options.prefix);
  const location = `s3://${options.bucket}/${options.prefix}`;
  try {
    await objects.any('');
  } catch (error) {
    client.destroy();
    throw new Error(describeS3Error(error, options), { cause: error });
  }
  const uploads = new S3Uploads(objects, options.partSize ?? defaultPartSize);
  const reads = new S3Reads((key) => objects.presignGet(key, presignedReadSeconds));
  const repositories = new ObjectRepositoryStore(objects, {
    rememberLinksMs: options.rememberLinksMs ?? defaultRememberLinksMs,
  });
  return {
    blobs: new S3BlobStore(objects, uploads, reads),
    repositories,
    documents: new ObjectDocuments(objects),
    location,
    shareLinkRemovals: (channel) => repositories.shareLinkRemovals(channel),
  };
}

/** What the first request's failure means, in the terms of the settings that fix it. */
function describeS3Error(error: unknown, options: S3StorageOptions): string {
  const { name, message } = error as { name?: string; message?: string };
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (name === 'CredentialsProviderError') {
    return 'no AWS credentials found (environment, AWS_PROFILE, SSO, web identity, or a task or instance role)';
  }
  if (message?.includes('Region is missing')) return 'no region: set s3.region or AWS_REGION';
  if (name === 'NoSuchBucket') return `the bucket ${options.bucket} does not exist`;
  if (name === 'AccessDenied' || status === 403) {
    return `access denied listing the bucket (s3:ListBucket on ${options.bucket}): ${message ?? name}`;
  }
  if (name === 'PermanentRedirect' || status === 301) {
    return 'the bucket is in another region: set s3.region or AWS_REGION to its region';
  }
  const where = options.endpoint ?? 'S3';
  const what = message ?? name ?? String(error);
  return status === undefined ? `cannot reach ${where}: ${what}` : `${where} answered ${status}: ${what}`;
}
