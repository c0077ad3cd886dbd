export * from './types.ts';
export { FsBlobStore } from './fs-blobs.ts';
export { FsRepositoryStore } from './fs-repositories.ts';
export { cacheMarkerFile, openFsStorage, readCacheNamespaces, type Storage } from './storage.ts';
export * from './maintenance.ts';
