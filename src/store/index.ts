export * from './types.ts';
export { FsBlobStore } from './fs-blobs.ts';
export { FsRepositoryStore } from './fs-repositories.ts';
export { openFsStorage, type Storage } from './storage.ts';
export * from './maintenance.ts';
