export * from './types.ts';
export { FsBlobStore } from './fs-blobs.ts';
export { FsRepositoryStore } from './fs-repositories.ts';
export { openMemoryStorage } from './memory.ts';
export type { LinkRemovalChannel, LinkRemovalListener } from './link-removals.ts';
export { openS3Storage, type S3StorageOptions } from './s3-storage.ts';
export { isLocalEndpoint } from './s3-objects.ts';
export {
  cacheMarkerFile,
  openFsStorage,
  openStorage,
  parseStorageLocation,
  readCacheNamespaces,
  s3Connection,
  writeCacheNamespaces,
  type S3Connection,
  type Storage,
  type StorageDocuments,
  type StorageLocation,
  type StorageOptions,
} from './storage.ts';
export * from './maintenance.ts';
export * from './gc-fence.ts';
