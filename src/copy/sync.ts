/**
 * Many images in one run: expand each entry to concrete tags, copy each to its target, and guard pull
 * quotas. Promises: a re-run does only what is missing (up-to-date images cost two HEADs, which Docker Hub
 * does not count); the run stops cleanly before a manifest GET would take a registry's announced quota
 * (`RateLimit-Remaining`, as Docker Hub sends) below the reserve, and says so; one failing image never
 * stops the others.
 */
import type { RateLimit, RegistryClient } from '../client/index.ts';
import { errorFields } from '../errors/index.ts';
import type { ImageReference } from '../reference/index.ts';
import type { TagFilter } from '../shared/tag-filter.ts';
import type { BlobLocations } from './blob-locations.ts';
import { copyImage, type CopyEvent, type CopyResult } from './copy.ts';
import { parsePlatform, selectTags, missingExactTags } from './filters.ts';
import { Limiter } from './limit.ts';
import { QuotaGuards, type ImageBudget } from './quota.ts';
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
  const guards = new QuotaGuards(options.quotaReserve);
  const jobs = await planJobs(client, options, summary);
  summary.images = jobs.length + summary.failed;

  const images = new Limiter(options.concurrency.images);
  const run: SyncRun = { client, options, summary, guards, blobs: new Limiter(options.concurrency.blobs) };
  await Promise.all(jobs.map((job) => images.run(() => syncImage(job, run))));
  summary.stoppedForQuota = guards.stopped;
  summary.quotas = guards.lastSeen();
  return summary;
}

/** What the images of one run share. */
interface SyncRun {
  client: RegistryClient;
  options: SyncOptions;
  summary: SyncSummary;
  guards: QuotaGuards;
  blobs: Limiter;
}

/** One image being synced: its job, both ends, and the names its events give. */
interface ImageSync {
  job: Job;
  source: RegistryEndpoint;
  target: RegistryEndpoint;
  targetReference: string;
  sourceLabel: string;
  targetLabel: string;
}

/** The run's images: each entry's tags or digest; an entry that cannot be expanded is counted and reported failed. */
async function planJobs(client: RegistryClient, options: SyncOptions, summary: SyncSummary): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const entry of options.entries) {
    try {
      const images = await expandEntry(entry, (repo) => client.listTags(repo), summary.warnings);
      jobs.push(
        ...images.map(({ reference, selected }) => ({
          entry,
          sourceReference: reference,
          source: repositoryOf(entry.source),
          target: options.targetFor(entry, selected),
        })),
      );
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
  return jobs;
}

/**
 * One image, under its source registry's quota: deferred when the guard has stopped or the source refuses
 * for its quota, else copied (or, in a dry run, compared); counted in the summary and reported either way.
 */
async function syncImage(job: Job, run: SyncRun): Promise<void> {
  const sourceLabel = imageLabel(job.source, job.sourceReference);
  const targetLabel = describe(job.target);
  const { summary, options } = run;
  const quota = run.guards.for(job.source.registry);
  if (quota.stopped) {
    summary.deferred++;
    options.onImage?.({ source: sourceLabel, target: targetLabel, status: 'deferred' });
    return;
  }
  options.onImage?.({ source: sourceLabel, target: targetLabel, status: 'started' });
  const source = new RegistryEndpoint(run.client, job.source);
  const target = new RegistryEndpoint(run.client, job.target);
  const budget = quota.budget();
  source.onRateLimit = (rate) => quota.observe(rate);
  source.beforeManifestGet = () => budget.beforeGet();
  const targetReference = job.target.digest ?? job.target.tag ?? job.sourceReference;
  const image: ImageSync = { job, source, target, targetReference, sourceLabel, targetLabel };
  try {
    if (options.dryRun) await compareImage(image, run);
    else await copyOne(image, budget, run);
  } catch (error) {
    // The source refusing for its quota (429) ends its budget just as the guard would have.
    if (quota.defers(error, job.source.registry)) {
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
}

/** A dry run's look at one image: two HEADs say whether it would be copied; nothing is written. */
async function compareImage(image: ImageSync, run: SyncRun): Promise<void> {
  const { job, sourceLabel, targetLabel } = image;
  const { summary, options } = run;
  const [from, to] = await Promise.all([
    image.source.resolveManifest(job.sourceReference),
    image.target.resolveManifest(image.targetReference),
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
}

/** Copies one image, its child manifests announced to its quota budget; counts and reports the result. */
async function copyOne(image: ImageSync, budget: ImageBudget, run: SyncRun): Promise<void> {
  const { job, sourceLabel, targetLabel } = image;
  const { summary, options } = run;
  const result = await copyImage(image.source, job.sourceReference, image.target, image.targetReference, {
    platforms: (job.entry.platforms ?? []).map((text) => parsePlatform(text)),
    referrers: job.entry.referrers,
    blobs: run.blobs,
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
}

/** One image an entry names: the tag or digest to fetch, and what its target is named after. */
export interface ExpandedImage {
  reference: string;
  selected: { tag?: string; digest?: string };
}

/**
 * The images of one entry: its tag or digest, or the tags its filters select among `listTags`. A filter
 * that selects nothing and a named tag that does not exist are added to `warnings`.
 */
export async function expandEntry(
  entry: SyncEntry,
  listTags: (repository: ImageReference) => Promise<string[]>,
  warnings: string[],
): Promise<ExpandedImage[]> {
  switch (entry.selection.kind) {
    case 'tag':
      return [{ reference: entry.selection.tag, selected: { tag: entry.selection.tag } }];
    case 'digest':
      return [{ reference: entry.selection.digest, selected: { digest: entry.selection.digest } }];
    case 'filters': {
      const base = repositoryOf(entry.source);
      const tags = await listTags(base);
      const missing = missingExactTags(tags, entry.selection.filters);
      for (const tag of missing) warnings.push(`${describe(base)}: tag ${tag} does not exist`);
      const selected = selectTags(tags, entry.selection.filters);
      if (selected.length === 0 && missing.length === 0) {
        warnings.push(
          `${describe(base)}: no tag matches the filters (${tags.length} ${tags.length === 1 ? 'tag' : 'tags'} looked at)`,
        );
      }
      return selected.map((tag) => ({ reference: tag, selected: { tag } }));
    }
  }
}

/** The source's repository, without its tag or digest. */
function repositoryOf(source: ImageReference): ImageReference {
  return { registry: source.registry, repository: source.repository, original: source.original };
}

/** `docker.io/library/nginx:1.25`, `…@sha256:…`: a repository and the tag or digest fetched from it. */
export function imageLabel(
  repository: Pick<ImageReference, 'registry' | 'repository'>,
  reference: string,
): string {
  return `${repository.registry}/${repository.repository}${referenceSuffix(reference)}`;
}

function describe(reference: ImageReference): string {
  const name = `${reference.registry}/${reference.repository}`;
  if (reference.digest) return `${name}@${reference.digest}`;
  return reference.tag ? `${name}:${reference.tag}` : name;
}

function referenceSuffix(reference: string): string {
  return reference.includes(':') ? `@${reference}` : `:${reference}`;
}
