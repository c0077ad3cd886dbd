/**
 * Storage interfaces. Everything above `store/` talks to these, never to files: a driver for object
 * storage implements the same two interfaces and passes the same contract suite (test/store-contract.ts).
 */
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../oci/digest.ts';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** Inclusive byte range, as in HTTP. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A blob opened for sending: its size known before a byte is written. */
export interface BlobSend {
  size: number;
  /** As `BlobStore.sendTo`, once. */
  sendTo(sink: Writable): Promise<void>;
  /** Gives the send up unused, releasing what the opening holds; a no-op after `sendTo`. */
  cancel(): void;
}

/** Content-addressed bytes, shared by every repository. */
export interface BlobStore {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /**
   * The whole blob, opened for sending; undefined when absent. Where the storage can, one request both
   * proves the blob is there and starts reading it (S3: one GET, where stat and sendTo cost a HEAD and a
   * GET), so that the answer's headers can carry its size without a second request.
   */
  openSend(digest: Digest): Promise<BlobSend | undefined>;
  /**
   * Optional: a URL from which a client may GET the blob's bytes itself for a while (S3: presigned), for
   * answering blob GETs with a redirect. Signed locally: it says nothing of whether the blob is there.
   */
  locate?(digest: Digest): Promise<URL>;
  /** Throws a StoreError 'NOT_FOUND' when the blob is absent. */
  open(digest: Digest, range?: ByteRange): Promise<Readable>;
  /**
   * Writes the blob (or a range) into `sink` without ending it, honouring backpressure; the fast path for
   * serving. Rejects when the sink fails (a client that went away). Throws NOT_FOUND before writing anything.
   * A chunk's memory may be reused once its write callback has run: a sink that keeps chunks copies them
   * (a socket does: it hands them to the kernel).
   */
  sendTo(digest: Digest, range: ByteRange | undefined, sink: Writable): Promise<void>;
  /**
   * Optional fast path: makes a finished local file (on the storage's own filesystem, already verified by
   * the caller as it was written) the blob `digest`, by moving it rather than copying. Checks the size.
   * Drivers without it are given the bytes through an upload instead.
   */
  commitFile?(path: string, expected: { digest: Digest; size: number }): Promise<BlobInfo>;
  /** Small blobs (manifests) read whole; refuses anything over `maxBytes`. */
  read(digest: Digest, maxBytes: number): Promise<Buffer>;
  /** Writes small bytes in one step (manifests); verified, durable and visible when the promise resolves. */
  put(data: Uint8Array, digest?: Digest): Promise<BlobInfo>;
  delete(digest: Digest): Promise<boolean>;
  /** Every committed blob, with the time it was written (for gc grace periods). */
  list(): AsyncIterable<BlobInfo & { modified: Date }>;

  /** `owner` (a repository name) is kept with the upload: only that repository may continue it. */
  startUpload(owner?: string): Promise<Upload>;
  /** An upload started earlier (possibly by a previous process); undefined when unknown or expired. */
  findUpload(id: string): Promise<Upload | undefined>;
  /** Removes uploads untouched for longer than `olderThanMs`; returns how many. */
  cleanUploads(olderThanMs: number): Promise<number>;
}

/**
 * Bytes being uploaded. They stay invisible under any digest until `commit` has checked the size and
 * digest; an aborted or crashed upload leaves nothing behind but its own temporary area.
 */
export interface Upload {
  readonly id: string;
  /** Bytes received so far. */
  readonly size: number;
  readonly startedAt: Date;
  /** The repository the upload was started for, when it was given. */
  readonly owner: string | undefined;
  /** Appends the whole stream; resolves to the new size. `maxBytes` bounds what one call accepts. */
  append(source: Readable, options?: { maxBytes?: number }): Promise<number>;
  commit(expected: { digest: Digest; size?: number }): Promise<BlobInfo>;
  abort(): Promise<void>;
}

export interface ManifestLink {
  digest: Digest;
  mediaType: string;
  size: number;
  /** Set when the manifest has an OCI `subject`: makes it show in the subject's referrers. */
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What a repository holds: links to blobs and manifests, tags, and the referrers index. */
export interface RepositoryStore {
  listRepositories(): Promise<string[]>;
  repositoryExists(repository: string): Promise<boolean>;

  linkBlob(repository: string, digest: Digest): Promise<void>;
  hasBlob(repository: string, digest: Digest): Promise<boolean>;
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;
  listBlobLinks(repository: string): Promise<Digest[]>;

  linkManifest(repository: string, link: ManifestLink): Promise<void>;
  getManifest(repository: string, digest: Digest): Promise<ManifestLink | undefined>;
  /** Removes the manifest, every tag pointing at it, and its referrers entry. */
  unlinkManifest(repository: string, digest: Digest): Promise<boolean>;
  listManifests(repository: string): Promise<ManifestLink[]>;
  /** When the manifest was last linked (pushed) in the repository, for gc's grace period. */
  manifestLinkedAt(repository: string, digest: Digest): Promise<Date | undefined>;

  setTag(repository: string, tag: string, digest: Digest): Promise<void>;
  getTag(repository: string, tag: string): Promise<Digest | undefined>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  /** Sorted lexically. */
  listTags(repository: string): Promise<string[]>;

  /** Manifests in the repository whose subject is `subject`. */
  referrers(repository: string, subject: Digest): Promise<ManifestLink[]>;
}

export interface TemporaryFile {
  /** Relative to the storage's location. */
  path: string;
  size: number;
  modified: Date;
}

/**
 * Where a driver keeps files between writing and renaming them into place. Only an interrupted write
 * leaves one behind; none is ever read as a key. Drivers whose writes are atomic have none.
 */
export interface TemporaryFiles {
  list(): Promise<TemporaryFile[]>;
  /** Removes those last modified at least `olderThanMs` before `now`; returns them. */
  remove(olderThanMs: number, now?: Date): Promise<TemporaryFile[]>;
}

/** `FULL`: the storage has no room for a write (a full disk, a quota); reads still work. */
export type StoreErrorCode =
  'NOT_FOUND' | 'DIGEST_MISMATCH' | 'SIZE_MISMATCH' | 'TOO_LARGE' | 'BUSY' | 'INVALID_KEY' | 'FULL';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}
