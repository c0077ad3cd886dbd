/**
 * Copies one image (a manifest, or an index and everything under it) from a source to a target.
 * Promises: digests are preserved byte-exact (unless a platform filter rewrites the index, which the result
 * reports); a blob the target has is never transferred again; bytes are streamed, never held whole;
 * nothing unverified is ever written; a re-run after an interruption transfers only what is missing.
 */
import { Transform } from 'node:stream';
import { digestAlgorithm, digestOf, isDigest, type Digest } from '../oci/digest.ts';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.ts';
import { isNonDistributable, mediaTypes } from '../oci/mediatypes.ts';
import { PullsafeError } from '../errors/index.ts';
import { RegistryError } from '../client/index.ts';
import type { BlobLocations } from './blob-locations.ts';
import type { FetchedManifest, ImageSource, ImageTarget } from './endpoints.ts';
import { formatPlatform, platformMatches, type Platform, type PlatformFilter } from './filters.ts';
import { FirstFailure, Limiter } from './limit.ts';

export type CopyEvent =
  | { type: 'blob-start'; digest: Digest; size: number }
  | { type: 'blob-progress'; digest: Digest; bytes: number; size: number }
  | { type: 'blob-done'; digest: Digest; size: number }
  | { type: 'blob-skip'; digest: Digest; size: number; reason: 'exists' | 'mounted' }
  /** The fast registry-to-registry path gave up on a blob (why); the general path copies it instead. */
  | { type: 'blob-fallback'; digest: Digest; reason: string }
  | { type: 'manifest-done'; digest: Digest; reference: string; written: boolean };

export interface CopyOptions {
  /**
   * Keep only these platforms of an index (changes the top-level digest); a single image must be one of
   * them (its config says which it is), else the copy is refused.
   */
  platforms?: PlatformFilter[];
  /** Also copy manifests whose subject is a copied manifest (signatures, SBOMs, attestations). */
  referrers?: boolean;
  /**
   * Called once the top manifest is read and before any other manifest is fetched from the source, with
   * the most child manifests the copy will fetch: an index's children (after a platform filter, those
   * selected), 0 for a single image. Referrers are not counted. Throwing stops the copy there.
   */
  beforeChildManifests?: (count: number) => void | Promise<void>;
  /** Blob transfers at once. Share one Limiter across images to bound a whole sync. */
  blobs?: Limiter;
  /**
   * Where the target's registry holds blobs in other repositories (and uploads in flight there): a blob
   * found there is mounted instead of sent. Share one across the images of a run.
   */
  blobLocations?: BlobLocations;
  onEvent?: (event: CopyEvent) => void;
}

export interface CopyResult {
  sourceDigest: Digest;
  targetDigest: Digest;
  mediaType: string;
  /** Nothing was written: the target already held the image under the reference. */
  upToDate: boolean;
  /** Set when a platform filter made the target's top-level digest differ from the source's. */
  digestChanged: boolean;
  /**
   * Platforms of the copied index, or of a single image checked against a platform filter; empty when
   * nothing had to be fetched (up to date) or for a single image copied without a filter.
   */
  platforms: string[];
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesCopied: number;
  manifestsWritten: number;
  referrersCopied: number;
}

const referrerDepth = 3;
/** The most of an image config read to learn its platform. */
const maxConfigBytes = 8 * 1024 * 1024;

export async function copyImage(
  source: ImageSource,
  sourceReference: string,
  target: ImageTarget,
  targetReference: string,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const run = new CopyRun(source, target, options);
  return run.copy(sourceReference, targetReference);
}

class CopyRun {
  private readonly source: ImageSource;
  private readonly target: ImageTarget;
  private readonly options: CopyOptions;
  private readonly blobs: Limiter;
  private readonly blobsDone = new Map<string, Promise<void>>();
  private readonly manifestsDone = new Map<string, Promise<void>>();
  /** The first failure of any task: later tasks start nothing. */
  private readonly failures = new FirstFailure();
  private readonly result: Omit<
    CopyResult,
    'sourceDigest' | 'targetDigest' | 'mediaType' | 'upToDate' | 'digestChanged' | 'platforms'
  > = {
    blobsCopied: 0,
    blobsSkipped: 0,
    blobsMounted: 0,
    bytesCopied: 0,
    manifestsWritten: 0,
    referrersCopied: 0,
  };

  constructor(source: ImageSource, target: ImageTarget, options: CopyOptions) {
    this.source = source;
    this.target = target;
    this.options = options;
    this.blobs = options.blobs ?? new Limiter(4);
  }

  async copy(sourceReference: string, targetReference: string): Promise<CopyResult> {
    const filtering = (this.options.platforms?.length ?? 0) > 0;
    // What the target's tag pointed to when the copy began, when that was asked: no second HEAD later.
    let targetAtStart: { digest: string } | undefined | null = null;
    if (!filtering && !this.options.referrers) {
      const heads = await this.compareHeads(sourceReference, targetReference);
      if ('upToDate' in heads) return heads.upToDate;
      targetAtStart = heads.targetAtStart;
    }

    const fetched = await this.source.getManifest(sourceReference);
    const parsed = parse(fetched, this.source.label);
    let top = fetched;
    let platforms = platformsOf(parsed);
    if (filtering) ({ top, platforms } = await this.filteredTop(fetched, parsed));
    else await this.options.beforeChildManifests?.(parsed.manifests.length);
    if (isDigest(targetReference)) this.checkTargetDigest(targetReference as Digest, top, fetched);

    await this.copyTree(top, parse(top, this.source.label), 0);
    await this.putTop(top, targetReference, targetAtStart);
    await this.target.finish?.();
    return {
      ...this.result,
      sourceDigest: fetched.digest,
      targetDigest: top.digest,
      mediaType: top.mediaType,
      upToDate:
        this.result.manifestsWritten === 0 && this.result.blobsCopied === 0 && this.result.blobsMounted === 0,
      digestChanged: top.digest !== fetched.digest,
      platforms,
    };
  }

  /**
   * A HEAD on each side (free against Docker Hub's pull quota): the result when the target already holds
   * the source's manifest under the reference, else what the target's reference pointed to.
   */
  private async compareHeads(
    sourceReference: string,
    targetReference: string,
  ): Promise<{ upToDate: CopyResult } | { targetAtStart: { digest: string } | undefined }> {
    const [sourceHead, targetHead] = await Promise.all([
      this.source.resolveManifest(sourceReference),
      this.target.resolveManifest(targetReference),
    ]);
    if (sourceHead && sourceHead.digest === targetHead?.digest) {
      return {
        upToDate: {
          ...this.result,
          sourceDigest: sourceHead.digest,
          targetDigest: sourceHead.digest,
          mediaType: sourceHead.mediaType,
          platforms: [],
          upToDate: true,
          digestChanged: false,
        },
      };
    }
    return { targetAtStart: targetHead ?? undefined };
  }

  /**
   * What a platform filter leaves of the source's manifest, to be written to the target: the one selected
   * child, an index of the selected children, or a single image whose platform matches; refused when
   * nothing matches. Tells `beforeChildManifests` how many child manifests follow.
   */
  private async filteredTop(
    fetched: FetchedManifest,
    parsed: ParsedManifest,
  ): Promise<{ top: FetchedManifest; platforms: string[] }> {
    if (parsed.kind !== 'index') {
      const platform = await this.platformOfImage(parsed, fetched);
      if (!platform || !this.options.platforms!.some((filter) => platformMatches(filter, platform))) {
        throw new PullsafeError('USAGE', `${this.source.label}: no manifest for the requested platforms`, {
          hint: `the image has: ${platform ? `${formatPlatform(platform)} (a single-platform image)` : 'no platform information'}`,
        });
      }
      await this.options.beforeChildManifests?.(0);
      return { top: fetched, platforms: [formatPlatform(platform)] };
    }
    const selected = parsed.manifests.filter(
      (entry) =>
        entry.platform && this.options.platforms!.some((filter) => platformMatches(filter, entry.platform!)),
    );
    if (selected.length === 0) {
      throw new PullsafeError('USAGE', `${this.source.label}: no manifest for the requested platforms`, {
        hint: `the image has: ${platformsOf(parsed).join(', ') || 'no platform information'}`,
      });
    }
    const platforms = platformsOf({ ...parsed, manifests: selected });
    await this.options.beforeChildManifests?.(selected.length);
    if (selected.length === 1) return { top: await this.source.getManifest(selected[0]!.digest), platforms };
    const document = JSON.parse(fetched.bytes.toString('utf8')) as Record<string, unknown>;
    const bytes = Buffer.from(JSON.stringify({ ...document, manifests: selected }));
    return { top: { bytes, digest: digestOf(bytes), mediaType: fetched.mediaType }, platforms };
  }

  /** Refused before any upload: the registry would reject the manifest only at the very end. */
  private checkTargetDigest(wanted: Digest, top: FetchedManifest, fetched: FetchedManifest): void {
    if (digestOf(top.bytes, digestAlgorithm(wanted)) === wanted) return;
    throw new PullsafeError(
      'USAGE',
      `${this.target.label}@${wanted}: the copy writes ${top.digest}, not the digest the target names`,
      {
        hint:
          `name the target by tag, or by the digest of what is copied (@${top.digest})` +
          (top.digest !== fetched.digest
            ? `; --platform made it differ from the source's ${fetched.digest}`
            : ''),
      },
    );
  }

  /** Writes the top manifest under the reference unless the target's reference already names it. */
  private async putTop(
    top: FetchedManifest,
    targetReference: string,
    targetAtStart: { digest: string } | undefined | null,
  ): Promise<void> {
    const existing =
      targetAtStart === null ? await this.target.resolveManifest(targetReference) : targetAtStart;
    let written = false;
    if (existing?.digest !== top.digest) {
      await this.target.putManifest(targetReference, top.bytes, top.mediaType);
      this.result.manifestsWritten++;
      written = true;
    }
    this.options.onEvent?.({
      type: 'manifest-done',
      digest: top.digest,
      reference: targetReference,
      written,
    });
  }

  /** Copies everything a manifest references (children, blobs, referrers), then nothing else. */
  private async copyTree(manifest: FetchedManifest, parsed: ParsedManifest, depth: number): Promise<void> {
    await this.failures.settle([
      ...parsed.manifests.map((child) => this.copyManifestByDigest(child.digest, depth)),
      ...parsed.blobs.map((blob) => this.copyBlob(blob)),
    ]);
    if (this.options.referrers && depth < referrerDepth) await this.copyReferrers(manifest.digest, depth);
  }

  /**
   * `listedOnTarget`, for referrers: what the target lists as referrers of their subject; a referrer the
   * target holds but does not list is put again, so that it becomes listed.
   */
  private copyManifestByDigest(
    digest: Digest,
    depth: number,
    listedOnTarget?: () => Promise<Set<string> | undefined>,
  ): Promise<void> {
    let pending = this.manifestsDone.get(digest);
    if (!pending) {
      pending = (async () => {
        this.failures.throwIfFailed();
        const present = (await this.target.resolveManifest(digest))?.digest === digest;
        if (present && !this.options.referrers) return;
        const fetched = await this.source.getManifest(digest);
        if (fetched.digest !== digest) {
          throw new PullsafeError(
            'DIGEST_MISMATCH',
            `${this.source.label}@${digest}: manifest content hashes to ${fetched.digest}`,
            {
              hint: 'the source registry served different bytes than its index promised; nothing was written',
            },
          );
        }
        await this.copyTree(fetched, parse(fetched, this.source.label), depth);
        const unlisted = present && (await listedOnTarget?.())?.has(digest) === false;
        if (!present || unlisted) {
          await this.target.putManifest(digest, fetched.bytes, fetched.mediaType);
          this.result.manifestsWritten++;
          this.options.onEvent?.({ type: 'manifest-done', digest, reference: digest, written: true });
        }
      })();
      this.manifestsDone.set(digest, pending);
    }
    return pending;
  }

  private async copyReferrers(subject: Digest, depth: number): Promise<void> {
    const referrers = await this.source.referrers(subject);
    let listed: Promise<Set<string> | undefined> | undefined;
    // Asked only once a referrer turns out to be on the target already.
    const listedOnTarget = () =>
      (listed ??= (async () => {
        try {
          const found = await this.target.referrers?.(subject);
          return found && new Set<string>(found);
        } catch {
          return undefined; // a target that cannot list keeps what it holds as it is
        }
      })());
    await this.failures.settle(
      referrers.map(async (digest) => {
        const before = this.result.manifestsWritten;
        await this.copyManifestByDigest(digest, depth + 1, listedOnTarget);
        if (this.result.manifestsWritten > before) this.result.referrersCopied++;
      }),
    );
  }

  /** The platform a single image's config names; undefined when it is not an image config or names none. */
  private async platformOfImage(
    parsed: ParsedManifest,
    manifest: FetchedManifest,
  ): Promise<Platform | undefined> {
    const config = parsed.blobs[0];
    if (
      !config ||
      (config.mediaType !== mediaTypes.ociConfig && config.mediaType !== mediaTypes.dockerConfig)
    ) {
      return undefined;
    }
    if (config.size > maxConfigBytes) {
      throw new PullsafeError(
        'MANIFEST_INVALID',
        `${this.source.label}@${manifest.digest}: the image config is ${config.size} bytes, more than pullsafe reads to learn its platform`,
        { hint: 'copy it without --platform' },
      );
    }
    const chunks: Buffer[] = [];
    const stream = await this.source.getBlob(config.digest, config.size);
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    let document: { os?: unknown; architecture?: unknown; variant?: unknown };
    try {
      document = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof document;
    } catch {
      return undefined;
    }
    if (typeof document?.os !== 'string' || typeof document.architecture !== 'string') return undefined;
    return typeof document.variant === 'string' && document.variant !== ''
      ? { os: document.os, architecture: document.architecture, variant: document.variant }
      : { os: document.os, architecture: document.architecture };
  }

  private copyBlob(blob: Descriptor): Promise<void> {
    if (isNonDistributable(blob.mediaType) && blob.urls?.length) return Promise.resolve();
    let pending = this.blobsDone.get(blob.digest);
    if (!pending) {
      pending = this.blobs.run(() => this.transferBlob(blob.digest, blob.size));
      this.blobsDone.set(blob.digest, pending);
    }
    return pending;
  }

  private async transferBlob(digest: Digest, size: number): Promise<void> {
    this.failures.throwIfFailed();
    const onEvent = this.options.onEvent;
    const skipExisting = (): void => {
      this.result.blobsSkipped++;
      onEvent?.({ type: 'blob-skip', digest, size, reason: 'exists' });
    };
    const mounted = (): void => {
      this.result.blobsMounted++;
      onEvent?.({ type: 'blob-skip', digest, size, reason: 'mounted' });
    };
    if (!this.target.checksOnUpload && (await this.target.hasBlob(digest))) {
      this.noteStored(digest);
      skipExisting();
      return;
    }
    const from = this.source.mountableFrom(this.target);
    if (from !== undefined && (await this.target.mountBlob(digest, from))) {
      this.noteStored(digest);
      mounted();
      return;
    }
    const claim = await this.claimUpload(digest);
    if (claim === 'exists') return skipExisting();
    if (claim === 'mounted') return mounted();
    let started = false;
    const start = (): void => {
      if (!started) onEvent?.({ type: 'blob-start', digest, size });
      started = true;
    };
    const onBytes = onEvent
      ? (bytes: number): void => {
          start();
          if (bytes > 0) onEvent({ type: 'blob-progress', digest, bytes, size });
        }
      : undefined;
    let outcome: 'uploaded' | 'present';
    try {
      outcome =
        (await this.target.copyBlobFrom?.(this.source, digest, size, {
          ...(onBytes ? { onBytes } : {}),
          ...(onEvent ? { onFallback: (reason) => onEvent({ type: 'blob-fallback', digest, reason }) } : {}),
        })) ??
        (await this.target.putBlob(digest, size, async () => {
          start();
          const stream = await this.source.getBlob(digest, size);
          if (!onBytes) return stream;
          let bytes = 0;
          const counter = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              bytes += chunk.length;
              onBytes(bytes);
              callback(null, chunk);
            },
          });
          stream.on('error', (error) => counter.destroy(error));
          return stream.pipe(counter);
        }));
    } catch (error) {
      claim?.(false);
      throw error;
    }
    claim?.(true);
    if (outcome === 'present') {
      skipExisting();
      return;
    }
    this.result.blobsCopied++;
    this.result.bytesCopied += size;
    onEvent?.({ type: 'blob-done', digest, size });
  }

  /** The target's registry and repository, when blob locations are kept for it. */
  private located(): { locations: BlobLocations; registry: string; repository: string } | undefined {
    const { registry, repository } = this.target;
    const locations = this.options.blobLocations;
    return locations && registry !== undefined && repository !== undefined
      ? { locations, registry, repository }
      : undefined;
  }

  private noteStored(digest: Digest): void {
    const here = this.located();
    here?.locations.record(here.registry, here.repository, digest);
  }

  /**
   * Before sending a blob: waits for an upload of it to the same registry that another image of the run has
   * in flight, then mounts it from a repository known to hold it. Otherwise announces this upload and
   * returns the function to report its outcome with (undefined when no locations are kept).
   */
  private async claimUpload(
    digest: Digest,
  ): Promise<'exists' | 'mounted' | ((stored: boolean) => void) | undefined> {
    const here = this.located();
    if (!here) return undefined;
    const { locations, registry, repository } = here;
    // Bounded: each round waits for a different upload to end; after that, this one is sent regardless.
    for (let round = 0; round < 3; round++) {
      const pending = locations.uploading(registry, digest);
      if (pending && (pending.repository === repository || !this.target.ignoresMounts)) {
        const stored = await pending.done;
        this.failures.throwIfFailed();
        if (stored && pending.repository === repository) return 'exists';
      }
      if (this.target.ignoresMounts) break;
      for (const from of locations.candidates(registry, digest, repository)) {
        if (await this.mountFrom(digest, from)) {
          locations.record(registry, from, digest);
          locations.record(registry, repository, digest);
          return 'mounted';
        }
        locations.forget(registry, from, digest);
      }
      if (!locations.uploading(registry, digest)) break;
    }
    return locations.startUpload(registry, repository, digest);
  }

  /**
   * A mount from a repository recorded to hold the blob. A refusal (the repository or blob is gone, or
   * these credentials may not read it) is false: the blob is then sent as usual.
   */
  private async mountFrom(digest: Digest, from: string): Promise<boolean> {
    try {
      return await this.target.mountBlob(digest, from);
    } catch (error) {
      const status = error instanceof RegistryError ? error.status : undefined;
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) return false;
      throw error;
    }
  }
}

function parse(manifest: FetchedManifest, label: string): ParsedManifest {
  try {
    return parseManifest(manifest.bytes, manifest.mediaType);
  } catch (error) {
    throw new PullsafeError('MANIFEST_INVALID', `${label}@${manifest.digest}: ${(error as Error).message}`, {
      hint: 'the source holds a manifest pullsafe cannot copy (schema 1 images must be converted first)',
    });
  }
}

function platformsOf(parsed: ParsedManifest): string[] {
  return parsed.manifests
    .filter((entry) => entry.platform)
    .map((entry) =>
      [entry.platform!.os, entry.platform!.architecture, entry.platform!.variant].filter(Boolean).join('/'),
    );
}
