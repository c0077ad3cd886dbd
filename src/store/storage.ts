import { join } from 'node:path';
import { FsBlobStore } from './fs-blobs.ts';
import { FsRepositoryStore } from './fs-repositories.ts';
import {
  FsTemporaryFiles,
  readTextIfExists,
  staleTemporaryMs,
  temporaryDirectory,
  writeFileAtomic,
} from './fsutil.ts';
import type { LinkRemovalChannel } from './link-removals.ts';
import { checkDocumentName } from './objects.ts';
import { openS3Storage, type S3StorageOptions } from './s3-storage.ts';
import { StoreError, type BlobStore, type RepositoryStore, type TemporaryFiles } from './types.ts';

/** The two halves of a registry's storage, opened together. */
export interface Storage {
  blobs: BlobStore;
  repositories: RepositoryStore;
  /** Files between write and rename that interrupted writes left; absent for drivers with atomic writes. */
  temporaries?: TemporaryFiles;
  documents: StorageDocuments;
  /** Where it lives, for logs (a folder, a bucket URL). */
  location: string;
  /**
   * For drivers that remember repository links (S3): announces the links this storage removes on `channel`
   * and forgets those removed elsewhere, for processes sharing the storage. Returns the function that stops
   * hearing. Absent where every read goes to the storage (the filesystem).
   */
  shareLinkRemovals?(channel: LinkRemovalChannel): () => void;
}

export interface FsStorageOptions {
  /**
   * Remove temporaries that interrupted writes left (default true): those older than a minute at once,
   * younger ones once they are a minute old. Off for read-only checks (fsck).
   */
  removeStaleTemporaries?: boolean;
}

export async function openFsStorage(root: string, options: FsStorageOptions = {}): Promise<Storage> {
  const blobs = new FsBlobStore(root);
  const repositories = new FsRepositoryStore(root);
  const temporaries = new FsTemporaryFiles(root);
  await blobs.init();
  await repositories.init();
  if (options.removeStaleTemporaries ?? true) await removeStaleTemporaries(temporaries);
  return { blobs, repositories, temporaries, documents: new FsDocuments(root), location: root };
}

/**
 * Small named documents kept beside the content and read whole (the cache marker): files at the top of a
 * filesystem storage, objects at the top of a bucket's prefix.
 */
export interface StorageDocuments {
  /** Undefined when there is no such document. */
  read(name: string): Promise<string | undefined>;
  /** Replaces the document whole: a reader sees the old text or the new one. */
  write(name: string, text: string): Promise<void>;
}

class FsDocuments implements StorageDocuments {
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async read(name: string): Promise<string | undefined> {
    return readTextIfExists(join(this.root, checkDocumentName(name)));
  }

  async write(name: string, text: string): Promise<void> {
    await writeFileAtomic(join(this.root, checkDocumentName(name)), text, temporaryDirectory(this.root));
  }
}

/** Where a storage lives, as `--storage` and the `storage` key give it. */
export type StorageLocation = { kind: 'fs'; path: string } | { kind: 's3'; bucket: string; prefix: string };

const bucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Characters S3 calls safe in keys, and `/` between folders. */
const prefixPattern = /^[A-Za-z0-9!_.*'()-]+(?:\/[A-Za-z0-9!_.*'()-]+)*$/;

/**
 * `s3://BUCKET` or `s3://BUCKET/PREFIX` is a bucket (the prefix is a folder in it); anything without a
 * scheme is a folder. Throws a StoreError INVALID_KEY that says what is wrong.
 */
export function parseStorageLocation(value: string): StorageLocation {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme === undefined) return { kind: 'fs', path: value };
  if (scheme.toLowerCase() !== 's3') {
    throw new StoreError(
      'INVALID_KEY',
      `storage "${value}": ${scheme}:// is not supported (a folder, or s3://BUCKET/PREFIX)`,
    );
  }
  const rest = value.slice(scheme.length + 3);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/\/+$/, '');
  if (!bucketPattern.test(bucket) || bucket.includes('..')) {
    throw new StoreError(
      'INVALID_KEY',
      `storage "${value}": "${bucket}" is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)`,
    );
  }
  if (
    prefix !== '' &&
    (!prefixPattern.test(prefix) || prefix.split('/').some((part) => /^\.+$/.test(part)))
  ) {
    throw new StoreError(
      'INVALID_KEY',
      `storage "${value}": the prefix may hold letters, digits and !_.*'()- between single slashes, and no . or .. folder`,
    );
  }
  return { kind: 's3', bucket, prefix: prefix === '' ? '' : `${prefix}/` };
}

export type S3Connection = Pick<S3StorageOptions, 'endpoint' | 'region' | 'forcePathStyle'>;

/**
 * How to reach S3: the configured keys, else the AWS SDK's own environment variables for the endpoint
 * (AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL). Region and credentials not configured are left to the SDK's
 * chain. Explicit settings win over the SDK's environment, as in the SDK.
 */
export function s3Connection(
  configured: S3Connection | undefined,
  env: Record<string, string | undefined>,
): S3Connection {
  const fromEnvironment = env.AWS_ENDPOINT_URL_S3
    ? 'AWS_ENDPOINT_URL_S3'
    : env.AWS_ENDPOINT_URL
      ? 'AWS_ENDPOINT_URL'
      : undefined;
  const endpoint = configured?.endpoint ?? (fromEnvironment ? env[fromEnvironment] : undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/?#]+\/?$/.test(endpoint)) {
    throw new StoreError(
      'INVALID_KEY',
      `${configured?.endpoint !== undefined ? 's3.endpoint' : fromEnvironment}: "${endpoint}" is not http(s)://HOST[:PORT]`,
    );
  }
  return {
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(configured?.region !== undefined ? { region: configured.region } : {}),
    ...(configured?.forcePathStyle !== undefined ? { forcePathStyle: configured.forcePathStyle } : {}),
  };
}

export interface StorageOptions extends FsStorageOptions {
  /** How to reach S3 for an s3:// location: endpoint, region, addressing. */
  s3?: S3Connection;
  /** For an s3:// location: how long a repository link once seen is taken as present (S3StorageOptions). */
  rememberLinksMs?: number;
}

/** Opens the storage at `location` (a folder, or s3://BUCKET/PREFIX). */
export function openStorage(location: string, options: StorageOptions = {}): Promise<Storage> {
  const parsed = parseStorageLocation(location);
  if (parsed.kind === 'fs') return openFsStorage(parsed.path, options);
  return openS3Storage({
    ...options.s3,
    ...(options.rememberLinksMs !== undefined ? { rememberLinksMs: options.rememberLinksMs } : {}),
    bucket: parsed.bucket,
    prefix: parsed.prefix,
  });
}

/**
 * Temporaries present at open were left by a process that was killed, or belong to one writing right now;
 * the age tells them apart. The young ones are looked at again once they are old enough, in the background
 * (a process restarted at once after a crash finds only young ones).
 */
async function removeStaleTemporaries(temporaries: FsTemporaryFiles): Promise<void> {
  await temporaries.remove(staleTemporaryMs);
  const young = await temporaries.list();
  if (young.length === 0) return;
  const youngest = young.reduce((latest, file) => Math.max(latest, file.modified.getTime()), 0);
  const wait = Math.max(0, youngest + staleTemporaryMs - Date.now()) + 1000;
  setTimeout(() => {
    // Best effort: what stays is invisible to readers, and fsck reports it and gc removes it.
    temporaries.remove(staleTemporaryMs).catch(() => undefined);
  }, wait).unref();
}

/**
 * The document `pullsafe serve` writes when it runs a pull-through cache: the local namespaces
 * (`docker.io`, …) whose repositories are cache content, for maintenance run without the config.
 */
export const cacheMarkerFile = 'cache.json';

export async function writeCacheNamespaces(storage: Storage, namespaces: string[]): Promise<void> {
  await storage.documents.write(cacheMarkerFile, `${JSON.stringify({ namespaces })}\n`);
}

/** The cache namespaces recorded in a storage (none when it never ran as a cache). */
export async function readCacheNamespaces(storage: Storage): Promise<string[]> {
  const text = await storage.documents.read(cacheMarkerFile);
  let value: { namespaces?: unknown } | null;
  try {
    value = JSON.parse(text ?? '{}') as { namespaces?: unknown } | null;
  } catch {
    return [];
  }
  return Array.isArray(value?.namespaces)
    ? (value.namespaces as unknown[]).filter((name): name is string => typeof name === 'string')
    : [];
}
