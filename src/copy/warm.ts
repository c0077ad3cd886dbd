/**
 * `pullsafe warm`: fills a pullsafe pull-through cache ahead of a deploy by pulling every image of a mirror
 * file through it, as a runtime pulls: the tag's manifest, each platform's manifest by digest (all of an
 * index's, or those a platform filter keeps), and every blob, read to the end and verified against its
 * digest, then discarded. Everything goes through the cache's host-named prefix route
 * (`/v2/docker.io/library/nginx/...`), so what the cache stores is what a later pull asks for.
 *
 * Promises: the pull quota the cache passes on (`RateLimit-*` of its upstream) is guarded as `sync` guards a
 * source's (src/copy/quota.ts): an image starts only when its manifest GETs fit above the reserve, and
 * a 429 from the cache defers it and the rest from that upstream; a manifest the cache answered from its
 * storage (`Cache-Status: …; hit`) costs nothing and is given back. One failing image never stops the
 * others. A registry the cache does not proxy is named as such.
 */
import {
  RegistryError,
  TransportError,
  type CredentialSource,
  type RateLimit,
  type RegistryClient,
  type RepositoryRef,
} from '../client/index.ts';
import { errorFields, PullsafeError } from '../errors/index.ts';
import type { Digest } from '../oci/digest.ts';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.ts';
import { isNonDistributable } from '../oci/mediatypes.ts';
import type { ImageReference } from '../reference/index.ts';
import type { CopyEvent } from './copy.ts';
import { formatPlatform, parsePlatform, platformMatches, type PlatformFilter } from './filters.ts';
import { FirstFailure, Limiter } from './limit.ts';
import { QuotaGuards, type ImageBudget, type QuotaGuard } from './quota.ts';
import { expandEntry, imageLabel, type SyncEntry } from './sync.ts';

/** An upstream the cache reports (its `/status`), with the quota it last saw, when known. */
export interface CacheUpstream {
  /** The registry as image references name it: `docker.io`, `ghcr.io`, `localhost:5000`. */
  name: string;
  quota?: RateLimit;
}

export interface WarmOptions {
  /** The images, as a sync file names them; `referrers` is not used (runtimes do not pull referrers). */
  entries: SyncEntry[];
  /** The cache, as the client names a registry: `host[:port]`. */
  endpoint: string;
  /** The cache's repository for a source repository: `docker.io/library/nginx`. */
  cacheRepository: (source: RepositoryRef) => string;
  /**
   * The upstreams the cache reports, when it could be asked: an image from another registry then fails
   * before any request, and known quotas guard the first GET. Unset: the cache's answers tell.
   */
  upstreams?: CacheUpstream[];
  quotaReserve: number;
  concurrency: { images: number; blobs: number };
  onImage?: (event: WarmImageEvent) => void;
  onBlobEvent?: (image: string, event: CopyEvent) => void;
}

/** `warmed`: the cache fetched part of it from its upstream; `cached`: it held all of it already. */
export type WarmImageStatus = 'warmed' | 'cached' | 'failed' | 'deferred';

export interface WarmImageEvent {
  /** `docker.io/library/nginx:1.27`, `…@sha256:…`. */
  image: string;
  status: WarmImageStatus | 'started';
  result?: WarmResult;
  error?: { code: string; message: string; hint?: string };
}

export interface WarmResult {
  /** The digest of the tag's (or digest's) manifest. */
  digest: Digest;
  /** The platforms pulled from an index; empty for a single-platform image. */
  platforms: string[];
  manifests: number;
  /** Blobs and bytes read through the cache by this image (a blob another image of the run read is not counted twice). */
  blobs: number;
  bytes: number;
  /** Of those, what the cache had to fetch from its upstream (it did not hold it yet). */
  blobsFetched: number;
  bytesFetched: number;
}

export interface WarmSummary {
  images: number;
  warmed: number;
  cached: number;
  failed: number;
  deferred: number;
  blobsPulled: number;
  bytesPulled: number;
  bytesFetched: number;
  stoppedForQuota: boolean;
  /** Each upstream's quota as last seen, for upstreams that announce one. */
  quotas: Record<string, RateLimit>;
  warnings: string[];
}

interface Job {
  entry: SyncEntry;
  reference: string;
  label: string;
  repository: RepositoryRef;
}

/** What reading one blob found: `fetched` when the cache did not hold it. */
interface BlobOutcome {
  fetched: boolean;
}

export async function runWarm(client: RegistryClient, options: WarmOptions): Promise<WarmSummary> {
  const summary: WarmSummary = {
    images: 0,
    warmed: 0,
    cached: 0,
    failed: 0,
    deferred: 0,
    blobsPulled: 0,
    bytesPulled: 0,
    bytesFetched: 0,
    stoppedForQuota: false,
    quotas: {},
    warnings: [],
  };
  const guards = new QuotaGuards(options.quotaReserve);
  for (const upstream of options.upstreams ?? []) {
    if (upstream.quota) guards.for(upstream.name).observe(upstream.quota);
  }
  if (options.entries.some((entry) => entry.referrers)) {
    summary.warnings.push(
      'referrers: not warmed; runtimes do not pull them, and the cache serves only the referrers it holds',
    );
  }

  const run: WarmRun = {
    client,
    options,
    summary,
    guards,
    blobs: new Limiter(options.concurrency.blobs),
    blobsRead: new Map(),
  };
  const jobs = await planWarmJobs(run);
  summary.images = jobs.length + summary.failed;

  const images = new Limiter(options.concurrency.images);
  await Promise.all(jobs.map((job) => images.run(() => warmImage(job, run))));
  summary.stoppedForQuota = guards.stopped;
  summary.quotas = guards.lastSeen();
  return summary;
}

/** What the images of one run share. */
interface WarmRun {
  client: RegistryClient;
  options: WarmOptions;
  summary: WarmSummary;
  guards: QuotaGuards;
  blobs: Limiter;
  blobsRead: Map<string, Promise<BlobOutcome>>;
}

/** Counts and reports a failed image (or entry). */
function fail(run: WarmRun, image: string, error: unknown): void {
  run.summary.failed++;
  run.options.onImage?.({ image, status: 'failed', error: errorFields(error) });
}

/**
 * The run's images: each entry's tags (listed through the cache) or digest; an entry from a registry the
 * cache does not proxy, or that cannot be expanded, is counted and reported failed.
 */
async function planWarmJobs(run: WarmRun): Promise<Job[]> {
  const { client, options } = run;
  const jobs: Job[] = [];
  for (const entry of options.entries) {
    const repository = { registry: options.endpoint, repository: options.cacheRepository(entry.source) };
    try {
      checkProxied(entry.source, options);
      const images = await expandEntry(
        entry,
        async () => {
          try {
            return await client.listTags(repository);
          } catch (error) {
            throw explained(error, entry.source, options);
          }
        },
        run.summary.warnings,
      );
      for (const { reference } of images) {
        jobs.push({ entry, reference, label: imageLabel(entry.source, reference), repository });
      }
    } catch (error) {
      fail(run, describeEntry(entry), error);
    }
  }
  return jobs;
}

/**
 * One image pulled through the cache under its upstream's quota: deferred when the guard has stopped or
 * the cache refuses for its upstream's quota, else warmed; counted in the summary and reported either way.
 */
async function warmImage(job: Job, run: WarmRun): Promise<void> {
  const { summary, options } = run;
  const quota = run.guards.for(job.entry.source.registry);
  if (quota.stopped) {
    summary.deferred++;
    options.onImage?.({ image: job.label, status: 'deferred' });
    return;
  }
  options.onImage?.({ image: job.label, status: 'started' });
  const budget = quota.budget();
  try {
    // Inside the try: a platform of the file that does not parse fails this image, as in sync, not the run.
    const image = new ImageWarm(run.client, job, {
      quota,
      budget,
      blobs: run.blobs,
      blobsRead: run.blobsRead,
      platforms: (job.entry.platforms ?? []).map((text) => parsePlatform(text)),
      ...(options.onBlobEvent ? { onEvent: options.onBlobEvent } : {}),
    });
    const { result, fetchedAny } = await image.warm();
    if (fetchedAny) summary.warmed++;
    else summary.cached++;
    summary.blobsPulled += result.blobs;
    summary.bytesPulled += result.bytes;
    summary.bytesFetched += result.bytesFetched;
    options.onImage?.({ image: job.label, status: fetchedAny ? 'warmed' : 'cached', result });
  } catch (error) {
    // The cache refusing for its upstream's quota (429) ends that upstream's budget as the guard would.
    if (quota.defers(error, options.endpoint)) {
      summary.deferred++;
      options.onImage?.({ image: job.label, status: 'deferred', error: errorFields(error) });
      return;
    }
    fail(run, job.label, explained(error, job.entry.source, options));
  } finally {
    budget.end();
  }
}

interface ImageWarmContext {
  quota: QuotaGuard;
  budget: ImageBudget;
  blobs: Limiter;
  /** Blob reads of the whole run by `repository@digest`: each blob is read once however many images list it. */
  blobsRead: Map<string, Promise<BlobOutcome>>;
  platforms: PlatformFilter[];
  onEvent?: (image: string, event: CopyEvent) => void;
}

/** One image pulled through the cache: its manifests (quota-guarded) and blobs. */
class ImageWarm {
  private readonly client: RegistryClient;
  private readonly job: Job;
  private readonly context: ImageWarmContext;
  private readonly manifestsDone = new Map<string, Promise<void>>();
  /** The first failure of any task: later tasks start nothing. */
  private readonly failures = new FirstFailure();
  private fetchedAny = false;
  private readonly result: Omit<WarmResult, 'digest' | 'platforms'> = {
    manifests: 0,
    blobs: 0,
    bytes: 0,
    blobsFetched: 0,
    bytesFetched: 0,
  };

  constructor(client: RegistryClient, job: Job, context: ImageWarmContext) {
    this.client = client;
    this.job = job;
    this.context = context;
  }

  async warm(): Promise<{ result: WarmResult; fetchedAny: boolean }> {
    const { digest, parsed } = await this.manifest(this.job.reference);
    let platforms: string[] = [];
    if (parsed.kind === 'index') {
      let children = parsed.manifests;
      if (this.context.platforms.length > 0) {
        children = children.filter(
          (child) =>
            child.platform &&
            this.context.platforms.some((filter) => platformMatches(filter, child.platform!)),
        );
        if (children.length === 0) {
          throw new PullsafeError('USAGE', `${this.job.label}: no manifest for the requested platforms`, {
            hint: `the image has: ${platformsOf(parsed.manifests).join(', ') || 'no platform information'}`,
          });
        }
      }
      platforms = platformsOf(children);
      this.context.budget.expect(children.length);
      await this.failures.settle(children.map((child) => this.manifestTree(child.digest)));
    } else {
      // A single-platform image is pulled whole: whatever a platform filter says, it is all there is.
      this.context.budget.expect(0);
      await this.failures.settle(parsed.blobs.map((blob) => this.blob(blob)));
    }
    return { result: { digest, platforms, ...this.result }, fetchedAny: this.fetchedAny };
  }

  /** A manifest GET through the cache, spent from the quota unless the cache answered from its storage. */
  private async manifest(reference: string): Promise<{ digest: Digest; parsed: ParsedManifest }> {
    await this.context.budget.beforeGet();
    let fetched;
    try {
      fetched = await this.client.getManifest(this.job.repository, reference);
    } catch (error) {
      if (error instanceof RegistryError && error.rateLimit) this.context.quota.observe(error.rateLimit);
      throw error;
    }
    if (fetched.rateLimit) this.context.quota.observe(fetched.rateLimit);
    if (servedFromStorage(fetched.cacheStatus)) this.context.quota.refund();
    else this.fetchedAny = true;
    this.result.manifests++;
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(fetched.bytes, fetched.mediaType);
    } catch (error) {
      throw new PullsafeError(
        'MANIFEST_INVALID',
        `${this.job.label}: the manifest ${fetched.digest} cannot be read: ${(error as Error).message}`,
        {
          hint: 'the upstream serves a manifest runtimes cannot pull either (schema 1 images must be converted)',
        },
      );
    }
    return { digest: fetched.digest, parsed };
  }

  /** A manifest by digest and everything under it (an index's children: all of them, at any depth). */
  private manifestTree(digest: Digest): Promise<void> {
    let pending = this.manifestsDone.get(digest);
    if (!pending) {
      pending = (async () => {
        this.failures.throwIfFailed();
        const { parsed } = await this.manifest(digest);
        await this.failures.settle([
          ...parsed.manifests.map((child) => this.manifestTree(child.digest)),
          ...parsed.blobs.map((blob) => this.blob(blob)),
        ]);
      })();
      this.manifestsDone.set(digest, pending);
    }
    return pending;
  }

  /** Reads a blob to the end through the cache, verified; once per run for each repository and digest. */
  private async blob(blob: Descriptor): Promise<void> {
    // Foreign layers (Windows base images) are pulled by runtimes from their URLs, never from a registry.
    if (isNonDistributable(blob.mediaType) && blob.urls?.length) return;
    const key = `${this.job.repository.repository}@${blob.digest}`;
    let pending = this.context.blobsRead.get(key);
    if (!pending) {
      pending = this.context.blobs.run(() => this.read(blob.digest, blob.size));
      this.context.blobsRead.set(key, pending);
    }
    const { fetched } = await pending;
    if (fetched) this.fetchedAny = true;
  }

  private async read(digest: Digest, size: number): Promise<BlobOutcome> {
    this.failures.throwIfFailed();
    const onEvent = this.context.onEvent;
    const label = this.job.label;
    onEvent?.(label, { type: 'blob-start', digest, size });
    const download = await this.client.getBlob(this.job.repository, digest, { expectedSize: size });
    let bytes = 0;
    for await (const chunk of download.stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      onEvent?.(label, { type: 'blob-progress', digest, bytes, size });
    }
    const fetched = !servedFromStorage(download.cacheStatus);
    this.result.blobs++;
    this.result.bytes += bytes;
    if (fetched) {
      this.result.blobsFetched++;
      this.result.bytesFetched += bytes;
    }
    onEvent?.(label, { type: 'blob-done', digest, size });
    return { fetched };
  }
}

/** What `/status` says, or why it could not be read (the run goes on without it). */
export type CacheStatusReading = { upstreams: CacheUpstream[] } | { problem: string };

const statusBodyLimit = 4 * 1024 * 1024;

/**
 * The upstreams the cache at `endpoint` proxies and the quota each last saw, from its `/status`. It needs
 * the access a pull needs: a 401 is answered once with Basic authentication (the scheme `pullsafe serve`
 * takes) from `credentials`. A quota older than its window is left out (the window has started again).
 * A cache that cannot be reached at all is an error; any other failure is a `problem` to warn about.
 */
export async function readCacheStatus(
  client: RegistryClient,
  endpoint: string,
  credentials: CredentialSource | undefined,
  now = Date.now(),
): Promise<CacheStatusReading> {
  const url = client.transport.url(endpoint, '/status');
  const get = (authorization?: string) =>
    client.transport.request({
      method: 'GET',
      url,
      headers: { accept: 'application/json', ...(authorization ? { authorization } : {}) },
      bufferLimit: statusBodyLimit,
    });
  let response;
  try {
    response = await get();
    if (response.status === 401 && credentials) {
      const found = await credentials.get(endpoint);
      if (found && 'password' in found) {
        const basic = Buffer.from(`${found.username}:${found.password}`).toString('base64');
        response = await get(`Basic ${basic}`);
      }
    }
  } catch (error) {
    if (!(error instanceof TransportError)) throw error;
    throw new PullsafeError(
      'REGISTRY_UNAVAILABLE',
      `cannot reach the cache at ${endpoint}: ${error.message}`,
      {
        hint: error.hint ?? `check --endpoint, and that pullsafe serve runs there and is reachable from here`,
        cause: error,
      },
    );
  }
  if (response.status !== 200) {
    return { problem: `GET ${url.origin}/status answered HTTP ${response.status}` };
  }
  const document = parseJson(response.bytes ?? Buffer.alloc(0)) as { upstreams?: unknown } | undefined;
  if (!document || !Array.isArray(document.upstreams)) {
    return { problem: `GET ${url.origin}/status did not answer with a list of upstreams` };
  }
  const upstreams: CacheUpstream[] = [];
  for (const entry of document.upstreams as unknown[]) {
    const { name, quota } = (entry ?? {}) as { name?: unknown; quota?: unknown };
    if (typeof name !== 'string') continue;
    const upstream: CacheUpstream = { name };
    const seen = currentQuota(quota, now);
    if (seen) upstream.quota = seen;
    upstreams.push(upstream);
  }
  return { upstreams };
}

/** The quota `/status` reports, unless its window has passed since it was seen. */
function currentQuota(value: unknown, now: number): RateLimit | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { limit, remaining, windowSeconds, observedAt } = value as Record<string, unknown>;
  if (typeof remaining !== 'number') return undefined;
  if (typeof windowSeconds === 'number' && typeof observedAt === 'number') {
    if (observedAt + windowSeconds * 1000 <= now) return undefined;
  }
  return {
    remaining,
    ...(typeof limit === 'number' ? { limit } : {}),
    ...(typeof windowSeconds === 'number' ? { windowSeconds } : {}),
  };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Whether a `Cache-Status` (RFC 9211) says the cache answered from its storage without asking its upstream.
 * No header (a registry that is not a pullsafe cache, or an older one) counts as fetched.
 */
export function servedFromStorage(cacheStatus: string | undefined): boolean {
  if (cacheStatus === undefined) return false;
  const last = cacheStatus.split(',').at(-1) ?? '';
  return last
    .split(';')
    .slice(1)
    .some((parameter) => parameter.trim().toLowerCase() === 'hit');
}

/** An image whose registry the cache does not proxy fails before any request (when the cache said what it proxies). */
function checkProxied(source: ImageReference, options: WarmOptions): void {
  if (!options.upstreams || options.upstreams.some((upstream) => upstream.name === source.registry)) return;
  const names = options.upstreams.map((upstream) => upstream.name);
  throw new PullsafeError(
    'REGISTRY_NOT_FOUND',
    `the cache at ${options.endpoint} does not proxy ${source.registry} ` +
      `(it proxies ${names.length > 0 ? names.join(', ') : 'no registry'}), so it would answer 404 for ${source.registry}/${source.repository}`,
    {
      hint: `start the cache with --proxy ${source.registry} (or list it in proxy.upstreams), or take the image out of the file`,
    },
  );
}

/** A 404 from the cache says which of its two causes may apply. */
function explained(error: unknown, source: ImageReference, options: WarmOptions): unknown {
  if (!(error instanceof RegistryError) || error.code !== 'REGISTRY_NOT_FOUND') return error;
  const proxied = options.upstreams?.some((upstream) => upstream.name === source.registry);
  return new PullsafeError('REGISTRY_NOT_FOUND', error.message, {
    hint: proxied
      ? `${source.registry} has no such image: check the repository and the tag or digest`
      : `the cache answers 404 for a registry it does not proxy: check that it serves ${source.registry} ` +
        `(pullsafe serve --proxy ${source.registry}), and that the image exists there`,
    cause: error,
  });
}

function describeEntry(entry: SyncEntry): string {
  const { selection, source } = entry;
  if (selection.kind === 'filters') return `${source.registry}/${source.repository}`;
  return imageLabel(source, selection.kind === 'tag' ? selection.tag : selection.digest);
}

function platformsOf(manifests: Descriptor[]): string[] {
  return manifests.filter((entry) => entry.platform).map((entry) => formatPlatform(entry.platform!));
}
