import { FsBlobStore } from './fs-blobs.ts';
import { FsRepositoryStore } from './fs-repositories.ts';
import type { BlobStore, RepositoryStore } from './types.ts';

/** The two halves of a registry's storage, opened together. */
export interface Storage {
  blobs: BlobStore;
  repositories: RepositoryStore;
  /** Where it lives, for logs (a folder, a bucket URL). */
  location: string;
}

export async function openFsStorage(root: string): Promise<Storage> {
  const blobs = new FsBlobStore(root);
  const repositories = new FsRepositoryStore(root);
  await blobs.init();
  await repositories.init();
  return { blobs, repositories, location: root };
}
