/**
 * Many images in one run: expand each entry to concrete tags, copy each to its target, and guard pull
 * quotas. Promises: a re-run does only what is missing (up-to-date images cost two HEADs, which Docker Hub
 * does not count); the run stops cleanly before a manifest GET would take a registry's announced quota
 * (`RateLimit-Remaining`, as Docker Hub sends) below the reserve, and says so; one failing image never
 * stops the others.
 */
import { RegistryError, type RateLimit, type RegistryClient } from '../client/index.ts';
import { errorFields, PullsafeError } from '../errors/index.ts';
import type { ImageReference } from '../reference/index.ts';
import type { BlobLocations } from './blob-locations.ts';
import { copyImage, type CopyEvent, type CopyResult } from './copy.ts';
import { parsePlatform, selectTags, missingExactTags, type TagFilter } from './filters.ts';
import { Limiter } from './limit.ts';
import { RegistryEndpoint } from './registry-endpoint.ts';

export interface SyncEntry {
  source: ImageReference;
  selection:
    | { kind: 'tag'; tag: string }
    | { kind: 'digest'; digest: string }
    | { kind: 'filters'; filters: TagFilter[] };
  platforms?: string[];
  referrers: boolean;
}

export interface SyncOptions {
  entries: SyncEntry[];
  /** Fills an entry's target for one tag or digest. */
  targetFor: (entry: SyncEntry, selected: { tag?: string; digest?: string }) => ImageReference;
  quotaReserve: number;
  concurrency: { images: number; blobs: number };
  dryRun: boolean;
  /** Where target registries hold blobs; shared by every image of the run (see BlobLocations). */
  blobLocations?: BlobLocations;
  onImage?: (event: SyncImageEvent) => void;
  onCopyEvent?: (image: string, event: CopyEvent) => void;
}

export type SyncImageStatus = 'copied' | 'up-to-date' | 'failed' | 'deferred' | 'would-copy';

export interface SyncImageEvent {
  source: string;
  target: string;
  status: SyncImageStatus | 'started';
  result?: CopyResult;
  error?: { code: string; message: string; hint?: string };
  /** Why a dry run cannot say more (e.g. a platform filter needs the source index). */
  note?: string;
}

export interface SyncSummary {
  images: number;
  copied: number;
  upToDate: number;
  failed: number;
  deferred: number;
  wouldCopy: number;
  bytesCopied: number;
  blobsCopied: number;
  stoppedForQuota: boolean;
  /** Each source registry's quota as last seen, for registries that announce one. */
  quotas: Record<string, RateLimit>;
  warnings: string[];
}

interface Job {
  entry: SyncEntry;
  sourceReference: string;
  source: ImageReference;
  target: ImageReference;
}

/**
 * One registry's quota, shared by every source on it: counted down locally, corrected by headers.
 * Images spend it through an `ImageBudget`: an image starts only when its top manifest GET fits above the
 * reserve, and once that manifest says how many child manifests it has, they are reserved in one go or the
 * image is deferred before fetching any of them. While the budget is known, images take their first GET one
 * at a time, so each one's reservation is made knowing what the images before it need.
 */
class QuotaGuard {
  private readonly reserve: number;
  remaining: number | undefined;
  /** GETs promised to images in flight and not yet spent. */
  private reserved = 0;
  /** The quota header with the fewest pulls left. */
  last: RateLimit | undefined;
  stopped = false;
  /** Resolves when the image now between its first GET and its reservation has made it (or ended). */
  private admitting: Promise<void> = Promise.resolve();

  constructor(reserve: number) {
    this.reserve = reserve;
  }

  /** Every quota header seen, HEADs included, as it arrives: the lowest figure is the one that counts. */
  observe(rate: RateLimit): void {
    if (rate.remaining === undefined) return;
    if (this.last?.remaining === undefined || rate.remaining <= this.last.remaining) this.last = rate;
    this.remaining = this.remaining === undefined ? rate.remaining : Math.min(this.remaining, rate.remaining);
  }

  budget(): ImageBudget {
    return new ImageBudget(this);
  }

  /** Waits until no other image is between its first GET and its reservation; returns the release. */
  async admit(): Promise<() => void> {
    const before = this.admitting;
    let release!: () => void;
    this.admitting = new Promise<void>((resolve) => (release = resolve));
    await before;
    return release;
  }

  /** Spends one GET: `held` when the image reserved it, else it must fit beside every reservation. */
  spend(held: boolean): void {
    if (this.remaining !== undefined) {
      const room = this.remaining - (held ? 0 : this.reserved) - 1;
      if ((!held && this.stopped) || room < this.reserve) throw this.refuse();
      this.remaining--;
    } else if (!held && this.stopped) {
      throw this.refuse();
    }
    if (held) this.reserved--;
  }

  /** Reserves `count` more GETs for one image, or stops the registry's images (nothing spent). */
  hold(count: number): void {
    if (this.remaining !== undefined && this.remaining - this.reserved - count < this.reserve) {
      throw this.refuse();
    }
    this.reserved += count;
  }

  /** Gives back GETs an image reserved and did not spend (children the target already had). */
  unhold(count: number): void {
    this.reserved -= count;
  }

  private refuse(): PullsafeError {
    this.stopped = true;
    return new PullsafeError(
      'QUOTA_RESERVE_REACHED',
      `stopped before the pull quota falls below the reserve of ${this.reserve} (${this.remaining} left)`,
      {
        hint: 'run the same command again after the quota window; images already copied are not fetched again',
      },
    );
  }
}

/**
 * One image's manifest GETs against its registry's quota: the top manifest (admitted alone while the budget
 * is known), then the children it announces, reserved together before the first of them.
 */
class ImageBudget {
  private readonly guard: QuotaGuard;
  private held = 0;
  private started = false;
  private release: (() => void) | undefined;

  constructor(guard: QuotaGuard) {
    this.guard = guard;
  }

  async beforeGet(): Promise<void> {
    if (!this.started) {
      this.started = true;
      if (this.guard.remaining !== undefined) this.release = await this.guard.admit();
      try {
        this.guard.spend(false);
      } catch (error) {
        this.end();
        throw error;
      }
      return;
    }
    const held = this.held > 0;
    this.guard.spend(held);
    if (held) this.held--;
  }

  /** The copy will make up to `count` more manifest GETs (an index's children): all fit, or none is made. */
  expect(count: number): void {
    try {
      this.guard.hold(count);
      this.held += count;
    } finally {
      this.admitted();
    }
  }

  end(): void {
    this.guard.unhold(this.held);
    this.held = 0;
    this.admitted();
  }

  private admitted(): void {
    this.release?.();
    this.release = undefined;
  }
}

export async function runSync(client: RegistryClient, options: SyncOptions): Promise<SyncSummary> {
  const summary: SyncSummary = {
    images: 0,
    copied: 0,
    upToDate: 0,
    failed: 0,
    deferred: 0,
    wouldCopy: 0,
    bytesCopied: 0,
    blobsCopied: 0,
    stoppedForQuota: false,
    quotas: {},
    warnings: [],
  };
  const guards = new Map<string, QuotaGuard>();
  const guardFor = (registry: string): QuotaGuard => {
    let guard = guards.get(registry);
    if (!guard) {
      guard = new QuotaGuard(options.quotaReserve);
      guards.set(registry, guard);
    }
    return guard;
  };
  const stopped = () => [...guards.values()].some((guard) => guard.stopped);
  const jobs: Job[] = [];
  for (const entry of options.entries) {
    try {
      jobs.push(...(await expand(client, entry, options, summary)));
    } catch (error) {
      summary.failed++;
      options.onImage?.({
        source: describe(entry.source),
        target: '',
        status: 'failed',
        error: errorFields(error),
      });
    }
  }
  summary.images = jobs.length + summary.failed;

  const images = new Limiter(options.concurrency.images);
  const blobs = new Limiter(options.concurrency.blobs);
  await Promise.all(
    jobs.map((job) =>
      images.run(async () => {
        const sourceLabel = `${describe(job.source)}${referenceSuffix(job.sourceReference)}`;
        const targetLabel = describe(job.target);
        const quota = guardFor(job.source.registry);
        if (quota.stopped) {
          summary.deferred++;
          options.onImage?.({ source: sourceLabel, target: targetLabel, status: 'deferred' });
          return;
        }
        options.onImage?.({ source: sourceLabel, target: targetLabel, status: 'started' });
        const source = new RegistryEndpoint(client, job.source);
        const target = new RegistryEndpoint(client, job.target);
        const budget = quota.budget();
        source.onRateLimit = (rate) => quota.observe(rate);
        source.beforeManifestGet = () => budget.beforeGet();
        const targetReference = job.target.digest ?? job.target.tag ?? job.sourceReference;
        try {
          if (options.dryRun) {
            const [from, to] = await Promise.all([
              source.resolveManifest(job.sourceReference),
              target.resolveManifest(targetReference),
            ]);
            if (!from) {
              summary.failed++;
              options.onImage?.({
                source: sourceLabel,
                target: targetLabel,
                status: 'failed',
                error: {
                  code: 'REGISTRY_NOT_FOUND',
                  message: `${sourceLabel} does not exist at the source`,
                  hint: 'check the repository and the tag or digest',
                },
              });
              return;
            }
            const filtered = !!job.entry.platforms?.length;
            const status = !filtered && from.digest === to?.digest ? 'up-to-date' : 'would-copy';
            if (status === 'up-to-date') summary.upToDate++;
            else summary.wouldCopy++;
            options.onImage?.({
              source: sourceLabel,
              target: targetLabel,
              status,
              // The filtered index's digest is known only from the source index, which a dry run does not GET.
              ...(filtered && to
                ? {
                    note: 'unless already up to date: the target holds this tag, and telling needs the source index',
                  }
                : {}),
            });
            return;
          }
          const result = await copyImage(source, job.sourceReference, target, targetReference, {
            platforms: (job.entry.platforms ?? []).map((text) => parsePlatform(text)),
            referrers: job.entry.referrers,
            blobs,
            ...(options.blobLocations ? { blobLocations: options.blobLocations } : {}),
            beforeChildManifests: (count) => budget.expect(count),
            onEvent: (event) => options.onCopyEvent?.(sourceLabel, event),
          });
          if (result.upToDate) summary.upToDate++;
          else summary.copied++;
          summary.bytesCopied += result.bytesCopied;
          summary.blobsCopied += result.blobsCopied;
          options.onImage?.({
            source: sourceLabel,
            target: targetLabel,
            status: result.upToDate ? 'up-to-date' : 'copied',
            result,
          });
        } catch (error) {
          // The source refusing for its quota (429) ends its budget just as the guard would have.
          const exhausted =
            error instanceof RegistryError &&
            error.code === 'RATE_LIMITED' &&
            error.registry === job.source.registry;
          if (exhausted) {
            if (error.rateLimit) quota.observe(error.rateLimit);
            quota.stopped = true;
          }
          if (exhausted || (error instanceof PullsafeError && error.code === 'QUOTA_RESERVE_REACHED')) {
            summary.deferred++;
            options.onImage?.({
              source: sourceLabel,
              target: targetLabel,
              status: 'deferred',
              error: errorFields(error),
            });
            return;
          }
          summary.failed++;
          options.onImage?.({
            source: sourceLabel,
            target: targetLabel,
            status: 'failed',
            error: errorFields(error),
          });
        } finally {
          budget.end();
        }
      }),
    ),
  );
  summary.stoppedForQuota = stopped();
  for (const [registry, guard] of guards) if (guard.last) summary.quotas[registry] = guard.last;
  return summary;
}

async function expand(
  client: RegistryClient,
  entry: SyncEntry,
  options: SyncOptions,
  summary: SyncSummary,
): Promise<Job[]> {
  const base: ImageReference = {
    registry: entry.source.registry,
    repository: entry.source.repository,
    original: entry.source.original,
  };
  const job = (reference: string, selected: { tag?: string; digest?: string }): Job => ({
    entry,
    sourceReference: reference,
    source: base,
    target: options.targetFor(entry, selected),
  });
  switch (entry.selection.kind) {
    case 'tag':
      return [job(entry.selection.tag, { tag: entry.selection.tag })];
    case 'digest':
      return [job(entry.selection.digest, { digest: entry.selection.digest })];
    case 'filters': {
      const tags = await client.listTags(base);
      const missing = missingExactTags(tags, entry.selection.filters);
      for (const tag of missing) summary.warnings.push(`${describe(base)}: tag ${tag} does not exist`);
      const selected = selectTags(tags, entry.selection.filters);
      if (selected.length === 0 && missing.length === 0) {
        summary.warnings.push(
          `${describe(base)}: no tag matches the filters (${tags.length} ${tags.length === 1 ? 'tag' : 'tags'} looked at)`,
        );
      }
      return selected.map((tag) => job(tag, { tag }));
    }
  }
}

function describe(reference: ImageReference): string {
  const name = `${reference.registry}/${reference.repository}`;
  if (reference.digest) return `${name}@${reference.digest}`;
  return reference.tag ? `${name}:${reference.tag}` : name;
}

function referenceSuffix(reference: string): string {
  return reference.includes(':') ? `@${reference}` : `:${reference}`;
}
