import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FsBlobStore } from './fs-blobs.ts';
import { FsRepositoryStore } from './fs-repositories.ts';
import { FsTemporaryFiles, staleTemporaryMs } from './fsutil.ts';
import type { BlobStore, RepositoryStore, TemporaryFiles } from './types.ts';

/** The two halves of a registry's storage, opened together. */
export interface Storage {
  blobs: BlobStore;
  repositories: RepositoryStore;
  /** Files between write and rename that interrupted writes left; absent for drivers with atomic writes. */
  temporaries?: TemporaryFiles;
  /** Where it lives, for logs (a folder, a bucket URL). */
  location: string;
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
  return { blobs, repositories, temporaries, location: root };
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
 * The file `pullsafe serve` writes at the storage's root when it runs a pull-through cache: the local
 * namespaces (`docker.io`, …) whose repositories are cache content, for maintenance run without the config.
 */
export const cacheMarkerFile = 'cache.json';

/** The cache namespaces recorded in a filesystem storage (none when it never ran as a cache). */
export async function readCacheNamespaces(root: string): Promise<string[]> {
  try {
    const value = JSON.parse(await readFile(join(root, cacheMarkerFile), 'utf8')) as { namespaces?: unknown };
    return Array.isArray(value.namespaces)
      ? value.namespaces.filter((name): name is string => typeof name === 'string')
      : [];
  } catch {
    return [];
  }
}
