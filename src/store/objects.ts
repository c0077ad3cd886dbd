/**
 * What a driver that keeps storage as named objects (S3, memory) must provide for the repository half and
 * the storage's documents: small objects written whole, read whole, listed by prefix. Every write replaces
 * an object atomically, so these drivers have no temporaries.
 */
import type { StorageDocuments } from './storage.ts';
import { StoreError } from './types.ts';

export interface ObjectInfo {
  /** Relative to the storage's prefix. */
  key: string;
  size: number;
  modified: Date;
}

export interface ObjectStore {
  /** The whole object, or undefined when there is none. For small objects only (links, tags, state). */
  get(key: string): Promise<{ body: Buffer; modified: Date } | undefined>;
  put(key: string, body: Buffer | string): Promise<void>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Removing an object that is not there is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
}

/** Names of the storage's documents: one lowercase file name, never a path. */
const documentNamePattern = /^[a-z0-9][a-z0-9.-]*$/;

export function checkDocumentName(name: string): string {
  if (!documentNamePattern.test(name)) throw new StoreError('INVALID_KEY', 'invalid document name');
  return name;
}

/** The storage's documents as objects at the top of its prefix, beside `blobs/` and `repositories/`. */
export class ObjectDocuments implements StorageDocuments {
  private readonly objects: ObjectStore;

  constructor(objects: ObjectStore) {
    this.objects = objects;
  }

  async read(name: string): Promise<string | undefined> {
    return (await this.objects.get(checkDocumentName(name)))?.body.toString('utf8');
  }

  async write(name: string, text: string): Promise<void> {
    await this.objects.put(checkDocumentName(name), text);
  }
}
