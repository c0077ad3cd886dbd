/**
 * What the copy engine needs from a source and a target. Registries and OCI image layout folders both
 * implement these, so every combination copies the same way.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.ts';

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
}

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
}

export interface ImageSource {
  /** For messages: `docker.io/library/nginx`, `oci:./dir`. */
  readonly label: string;
  getManifest(reference: string): Promise<FetchedManifest>;
  /** What a reference resolves to, without fetching the manifest (a HEAD: free on Docker Hub). */
  resolveManifest(reference: string): Promise<ManifestHead | undefined>;
  /** A stream that errors (instead of ending) when the bytes do not hash to `digest`. */
  getBlob(digest: Digest, size: number): Promise<Readable>;
  /** Digests of manifests whose subject is `digest` (signatures, SBOMs); empty when none or unsupported. */
  referrers(digest: Digest): Promise<Digest[]>;
  /** Same registry as the target, for cross-repository mounts: the source repository name, else undefined. */
  mountableFrom(target: ImageTarget): string | undefined;
}

export interface BlobCopyEvents {
  onBytes?: (bytes: number) => void;
  onFallback?: (reason: string) => void;
}

export interface ImageTarget {
  readonly label: string;
  /** Registry host, for mount decisions; undefined for layouts. */
  readonly registry: string | undefined;
  /** Repository in that registry; undefined for layouts. */
  readonly repository: string | undefined;
  hasBlob(digest: Digest): Promise<boolean>;
  /**
   * True when `putBlob` finds out by itself, in the same request that starts the upload, whether the
   * target already holds the blob: callers then skip `hasBlob`. It may become true during a run, once
   * the target has shown it can.
   */
  readonly checksOnUpload?: boolean;
  /**
   * Writes a blob; bytes become visible only when complete and verified. `present` when the target
   * already held it and `open` was never called.
   */
  putBlob(digest: Digest, size: number, open: () => Promise<Readable>): Promise<'uploaded' | 'present'>;
  /**
   * `putBlob` with the bytes of `source`, when this target can take them from that source directly
   * (registry to registry): undefined when it cannot, and the caller uses `putBlob`. `onBytes` is called
   * with 0 when bytes start to flow, then with the running count; `onFallback` when a fast path gave up
   * and the blob is copied the general way instead.
   */
  copyBlobFrom?(
    source: ImageSource,
    digest: Digest,
    size: number,
    events: BlobCopyEvents,
  ): Promise<'uploaded' | 'present'> | undefined;
  /** True once the registry was seen to ignore mounts: mounting from other repositories is then not tried. */
  readonly ignoresMounts?: boolean;
  /** Cross-repository mount; false when the registry started an upload instead (nothing to clean up). */
  mountBlob(digest: Digest, fromRepository: string): Promise<boolean>;
  /** What a tag or digest reference resolves to now, or undefined. */
  resolveManifest(reference: string): Promise<ManifestHead | undefined>;
  /**
   * Writes a manifest. One with a `subject` becomes findable through the subject (`referrers`), also on a
   * registry without the referrers API.
   */
  putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<void>;
  /**
   * Digests of manifests the target lists as referrers of `digest`. Optional: a copy then puts a referrer the
   * target holds but does not list again, so that it becomes listed.
   */
  referrers?(digest: Digest): Promise<Digest[]>;
  /** Called once after everything was written (layouts rewrite index.json here). */
  finish?(): Promise<void>;
}
