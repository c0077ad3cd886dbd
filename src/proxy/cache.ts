/**
 * The pull-through cache: which requests go to which upstream, and what the local storage must hold before
 * a request is answered from it. Promises:
 * - anything named by digest is immutable: once held, it is served without asking the upstream;
 * - a tag is served from the storage within its TTL (or always, when its pattern marks it immutable, or the
 *   upstream's quota is at its reserve); after that one HEAD revalidates it, and a client waits for that at
 *   most `revalidateWait` before it gets the tag the cache holds;
 * - when the upstream fails in any way (429, 5xx, timeout, reset, token endpoint) a held tag is served,
 *   marked stale; an uncached one fails with the upstream's status (429 with Retry-After, 404, 503), never
 *   500; a 404 is remembered for `notFoundTtl`;
 * - one upstream fetch per manifest and per blob however many clients ask at once (see `BlobFill`);
 * - manifests are stored byte-exact, so digests through the cache are the upstream's.
 * The server answers from the storage once these have run; this module never speaks HTTP to clients.
 */
import { join } from 'node:path';
import { OciError } from '../oci/errors.ts';
import { digestOf, isDigest, type Digest } from '../oci/digest.ts';
import { defaultPlatformManifest, parseManifest } from '../oci/manifest.ts';
import { manifestKinds } from '../oci/mediatypes.ts';
import type { GcFence, ManifestLink, Storage } from '../store/index.ts';
import { compileRepositoryGlob } from '../shared/glob.ts';
import { LocalCoordinator, type Coordinator } from './coordination.ts';
import { Evictor } from './eviction.ts';
import { BlobFill, type FillReader } from './fill.ts';
import { clientError, describeFailure, notFoundError, type Wanted } from './client-errors.ts';
import { CacheMetrics, type CacheResult } from './metrics.ts';
import { checkPeerToken, openPeerFill, type PeerOptions } from './peers.ts';
import { Upstream, UpstreamFailure, type QuotaState, type UpstreamOptions } from './upstream.ts';

export interface CacheOptions {
  upstreams: UpstreamOptions[];
  /** Repository globs served as hosted repositories even where bare names would go upstream. */
  hosted: string[];
  /** Where in-progress fills are spooled (a local folder; the storage folder's `fills/` for filesystem storage). */
  spoolDir: string;
  /** A size limit for cached blobs; no limit when absent. */
  eviction?: { maxBytes: number; highWatermark: number; lowWatermark: number; pinned: string[] };
  /** What replicas share (Redis); one process's own memory when absent. */
  coordinator?: Coordinator;
  /**
   * How long a replica's claim on a fill or fetch lasts without renewal (renewed every third of it): a
   * replica that dies mid-fill is taken over by another within this time. Default 15 s.
   */
  leaseMs?: number;
  /** Keeps gc from deleting a blob or manifest while the cache stores or links it (shared with the server). */
  gcFence?: GcFence;
  /** Replicas' shared key and this replica's address: fills are then streamed between replicas (peers.ts). */
  peer?: PeerOptions;
}
/** How often a replica waiting on another's fill or fetch looks whether it is done. */
const pollMs = 200;
/** The longest a request waits on another replica's fill while that replica keeps it alive. */
const remoteFillWaitMs = 30 * 60_000;

/** A request's repository as the cache sees it. */
export interface CacheRoute {
  upstream: Upstream;
  /** The repository at the upstream (`library/nginx`). */
  remote: string;
  /** The repository in local storage (`docker.io/library/nginx`). */
  local: string;
}

export interface ManifestOutcome {
  result: CacheResult;
  /** Set when the answer is what the cache held because the upstream could not be asked. */
  staleReason?: string;
}

export type BlobSource =
  | { kind: 'local' }
  | {
      kind: 'fill';
      size: number | undefined;
      result: CacheResult;
      reader: FillReader;
    };

export class PullThroughCache {
  readonly metrics = new CacheMetrics();
  readonly upstreams: Upstream[];
  private readonly storage: Storage;
  private readonly spoolDir: string;
  private readonly hosted: RegExp[];
  private readonly byRoute = new Map<string, Upstream>();
  private readonly defaultUpstream: Upstream | undefined;
  /** Whether some upstream's content is fetched with credentials (then blobs are shared only when confirmed). */
  private readonly anyCredentialed: boolean;
  private readonly coordinator: Coordinator;
  private readonly leaseMs: number;
  private readonly gcFence: GcFence | undefined;
  private readonly peer: PeerOptions | undefined;
  private readonly quotaTimer: NodeJS.Timeout | undefined;
  private readonly manifestFlights = new Map<string, Promise<unknown>>();
  /** Fills by `upstream@digest`, from the moment one is asked for: concurrent requests share its start. */
  private readonly fills = new Map<string, Promise<BlobFill | 'stored'>>();
  readonly evictor: Evictor | undefined;
  private readonly evictionTimer: NodeJS.Timeout | undefined;

  constructor(storage: Storage, options: CacheOptions) {
    this.storage = storage;
    this.spoolDir = options.spoolDir;
    this.hosted = options.hosted.map((glob) => compileRepositoryGlob(glob));
    this.coordinator = options.coordinator ?? new LocalCoordinator();
    this.leaseMs = options.leaseMs ?? 15_000;
    this.gcFence = options.gcFence;
    this.peer = options.peer;
    this.upstreams = options.upstreams.map(
      (upstream) =>
        new Upstream(upstream, {
          request: (name, method, status, seconds) =>
            this.metrics.upstreamRequest(name, method, status, seconds),
          quota: (name, state) => {
            const windowMs = (state.windowSeconds ?? 6 * 60 * 60) * 1000;
            void this.coordinator
              .set(`quota:${name}`, JSON.stringify(state), windowMs)
              .catch(() => undefined);
          },
        }),
    );
    if (options.coordinator) {
      // Other replicas' quota observations count here too.
      this.quotaTimer = setInterval(() => void this.readQuotas(), 2_000);
      this.quotaTimer.unref();
    }
    for (const upstream of this.upstreams) {
      this.byRoute.set(upstream.options.namespace, upstream);
      for (const prefix of upstream.options.prefixes) this.byRoute.set(prefix, upstream);
    }
    this.defaultUpstream =
      this.upstreams.find((upstream) => upstream.options.default === true) ??
      this.upstreams.find((upstream) => upstream.name === 'docker.io');
    this.anyCredentialed = this.upstreams.some((upstream) => upstream.options.credentials !== undefined);
    for (const upstream of this.upstreams) this.metrics.quota(upstream.name, () => upstream.quota?.remaining);
    if (options.eviction) {
      this.evictor = new Evictor(storage, {
        ...options.eviction,
        namespaces: this.upstreams.map((upstream) => upstream.options.namespace),
        pinned: options.eviction.pinned.map((glob) => compileRepositoryGlob(glob)),
      });
      const evictor = this.evictor;
      this.metrics.size(() => ({ cached: evictor.cachedBytes, evicted: evictor.evictedTotal }));
      // Measured at start and every minute: what other processes or a restart changed is caught up.
      void evictor.run().catch(() => undefined);
      this.evictionTimer = setInterval(() => void evictor.run().catch(() => undefined), 60_000);
      this.evictionTimer.unref();
    }
  }

  get defaultUpstreamName(): string | undefined {
    return this.defaultUpstream?.name;
  }

  /**
   * The upstream a repository name belongs to, or undefined for a hosted repository. `ns` is containerd's
   * `?ns=` parameter; an upstream not configured is no route (the client moves on to its next host).
   */
  route(name: string, ns: string | null): CacheRoute | undefined {
    if (ns !== null && ns !== '') {
      const upstream = this.upstreams.find((candidate) => candidate.name === ns);
      return upstream ? this.routeTo(upstream, name) : undefined;
    }
    const slash = name.indexOf('/');
    if (slash > 0) {
      const upstream = this.byRoute.get(name.slice(0, slash));
      if (upstream) return this.routeTo(upstream, name.slice(slash + 1));
    }
    if (this.hosted.some((pattern) => pattern.test(name))) return undefined;
    return this.defaultUpstream ? this.routeTo(this.defaultUpstream, name) : undefined;
  }

  /** Whether a hosted repository name would be taken for a proxied one (then pushes to it are refused). */
  private routeTo(upstream: Upstream, remote: string): CacheRoute {
    const repository = upstream.name === 'docker.io' && !remote.includes('/') ? `library/${remote}` : remote;
    return { upstream, remote: repository, local: `${upstream.options.namespace}/${repository}` };
  }

  /**
   * Makes sure the storage holds `reference` (a tag or digest) in the route's local repository, fetching it
   * when needed; throws an OciError a client can act on when it cannot. `accepts` are the client's
   * Accept media types: a client that cannot read an index gets the linux/amd64 manifest of a tagged one,
   * which is then fetched too.
   */
  async ensureManifest(route: CacheRoute, reference: string, accepts: string[]): Promise<ManifestOutcome> {
    const outcome = isDigest(reference)
      ? await this.ensureManifestByDigest(route, reference as Digest)
      : await this.ensureTag(route, reference);
    if (
      !isDigest(reference) &&
      accepts.length > 0 &&
      !accepts.some((type) => manifestKinds.get(type) === 'index')
    ) {
      await this.ensureDefaultPlatform(route, reference).catch(() => undefined);
    }
    this.metrics.request(route.upstream.name, outcome.result);
    return outcome;
  }

  private async ensureManifestByDigest(route: CacheRoute, digest: Digest): Promise<ManifestOutcome> {
    const present = async (): Promise<boolean> =>
      (await this.storage.repositories.getManifest(route.local, digest)) !== undefined;
    if (await present()) return { result: 'hit' };
    await this.checkNotFound(route, 'manifest', digest);
    const key = `${route.local}@${digest}`;
    const { coalesced } = await this.flight(key, () =>
      this.once(
        key,
        present,
        () => this.checkNotFound(route, 'manifest', digest),
        async () => {
          try {
            const fetched = await route.upstream.getManifest(route.remote, digest);
            await this.storeManifest(route, fetched.bytes, fetched.digest, fetched.mediaType);
          } catch (error) {
            throw await this.asClientError(route, 'manifest', digest, error);
          }
        },
      ),
    );
    return { result: coalesced ? 'coalesced' : 'miss' };
  }

  private async ensureTag(route: CacheRoute, tag: string): Promise<ManifestOutcome> {
    const key = `${route.local}:${tag}`;
    const held = await this.storage.repositories.getTag(route.local, tag);
    if (held !== undefined) {
      const rule = route.upstream.options.tagRules.find((candidate) => candidate.pattern.test(tag));
      if (rule?.immutable) return { result: 'hit' };
      if ((await this.coordinator.get(`fresh:${key}`)) !== undefined) return { result: 'hit' };
      if (route.upstream.quotaLow()) {
        return { result: 'stale', staleReason: `${route.upstream.name}'s quota is at its reserve` };
      }
      const revalidation = this.flight(`${key}#revalidate`, () => this.revalidate(route, tag, held));
      const waited = await Promise.race([
        revalidation.then(
          () => 'done' as const,
          (error: unknown) => error,
        ),
        sleep(route.upstream.options.revalidateWaitMs).then(() => 'late' as const),
      ]);
      if (waited === 'done') return { result: 'revalidated' };
      if (waited === 'late') {
        return {
          result: 'stale',
          staleReason: `${route.upstream.name} did not answer within the revalidation wait`,
        };
      }
      if (waited instanceof OciError && waited.code === 'MANIFEST_UNKNOWN') throw waited;
      return { result: 'stale', staleReason: describeFailure(waited) };
    }
    await this.checkNotFound(route, 'manifest', tag);
    const present = async (): Promise<boolean> =>
      (await this.storage.repositories.getTag(route.local, tag)) !== undefined;
    const { coalesced } = await this.flight(`${key}#fetch`, () =>
      this.once(
        `${key}#fetch`,
        present,
        () => this.checkNotFound(route, 'manifest', tag),
        async () => {
          const asked = Date.now();
          try {
            const fetched = await route.upstream.getManifest(route.remote, tag);
            await this.storeManifest(route, fetched.bytes, fetched.digest, fetched.mediaType);
            await this.setTagIfNewest(route, tag, fetched.digest, asked);
          } catch (error) {
            throw await this.asClientError(route, 'manifest', tag, error);
          }
        },
      ),
    );
    return { result: coalesced ? 'coalesced' : 'miss' };
  }

  /**
   * Points the tag at `digest` as the upstream said at `asked`, unless a replica has since stored what the
   * upstream said later: a slow replica never moves a tag back. Marks the tag fresh for its TTL.
   */
  private async setTagIfNewest(route: CacheRoute, tag: string, digest: Digest, asked: number): Promise<void> {
    const key = `${route.local}:${tag}`;
    const keepMs = 7 * 24 * 60 * 60_000;
    if (await this.coordinator.advance(`asked:${key}`, asked, keepMs)) {
      await this.storage.repositories.setTag(route.local, tag, digest);
    }
    await this.markFresh(route, tag);
  }

  private async markFresh(route: CacheRoute, tag: string): Promise<void> {
    const rule = route.upstream.options.tagRules.find((candidate) => candidate.pattern.test(tag));
    const ttl = rule?.ttlMs ?? route.upstream.options.tagTtlMs;
    await this.coordinator.set(`fresh:${route.local}:${tag}`, '1', ttl);
  }

  /**
   * Runs `work` in one replica at a time for `key`: the replica holding the lease does it (renewing the
   * lease while it runs); the others wait until `done` says its result is in the storage, or `failed`
   * throws the failure the worker remembered, or the lease is gone (its holder died or gave up), and then
   * take the lease themselves.
   */
  private async once(
    key: string,
    done: () => Promise<boolean>,
    failed: () => Promise<void>,
    work: () => Promise<void>,
  ): Promise<void> {
    const until = Date.now() + remoteFillWaitMs;
    for (;;) {
      const lease = await this.coordinator.acquire(`lock:${key}`, this.leaseMs);
      if (lease) {
        const renewal = setInterval(() => void lease.renew().catch(() => undefined), this.leaseMs / 3);
        try {
          if (!(await done())) await work();
          return;
        } finally {
          clearInterval(renewal);
          await lease.release().catch(() => undefined);
        }
      }
      while (Date.now() < until && (await this.coordinator.held(`lock:${key}`))) {
        if (await done()) return;
        await sleep(pollMs);
      }
      if (await done()) return;
      await failed();
      if (Date.now() >= until) {
        throw new OciError('UNAVAILABLE', 'another replica is still fetching this; try again', { key }, 503);
      }
    }
  }

  /** One HEAD: the same digest renews the tag; another is fetched and stored; a 404 removes the tag. */
  private async revalidate(route: CacheRoute, tag: string, held: Digest): Promise<void> {
    const key = `${route.local}:${tag}`;
    const asked = Date.now();
    let head;
    try {
      head = await route.upstream.headManifest(route.remote, tag);
    } catch (error) {
      if (error instanceof UpstreamFailure && error.kind === 'not-found') head = undefined;
      else throw error;
    }
    if (head === undefined) {
      await this.storage.repositories.deleteTag(route.local, tag);
      await this.coordinator.set(`fresh:${key}`, '', 1);
      await this.rememberNotFound(route, 'manifest', tag);
      throw new OciError('MANIFEST_UNKNOWN', `${route.upstream.name} no longer has ${route.remote}:${tag}`, {
        name: route.local,
        tag,
      });
    }
    if (head.digest !== held && !(await this.storage.repositories.getManifest(route.local, head.digest))) {
      const fetched = await route.upstream.getManifest(route.remote, head.digest);
      await this.storeManifest(route, fetched.bytes, fetched.digest, fetched.mediaType);
    }
    await this.setTagIfNewest(route, tag, head.digest, asked);
  }

  private async ensureDefaultPlatform(route: CacheRoute, tag: string): Promise<void> {
    const digest = await this.storage.repositories.getTag(route.local, tag);
    const link = digest ? await this.storage.repositories.getManifest(route.local, digest) : undefined;
    if (!link || manifestKinds.get(link.mediaType) !== 'index') return;
    const child = defaultPlatformManifest(await this.storage.blobs.read(link.digest, 64 * 1024 * 1024));
    if (child) await this.ensureManifestByDigest(route, child.digest);
  }

  private async storeManifest(
    route: CacheRoute,
    bytes: Buffer,
    digest: Digest,
    mediaType: string,
  ): Promise<void> {
    if (digestOf(bytes, 'sha256') !== digest && !digest.startsWith('sha512:')) {
      throw new UpstreamFailure(
        'unavailable',
        route.upstream.name,
        `the manifest does not hash to ${digest}`,
      );
    }
    await this.gcFence?.protect([digest]);
    await this.storage.blobs.put(bytes, digest);
    const link: ManifestLink = { digest, mediaType, size: bytes.length };
    try {
      const parsed = parseManifest(bytes, mediaType);
      if (parsed.subject) link.subject = parsed.subject.digest;
      if (parsed.artifactType) link.artifactType = parsed.artifactType;
      if (parsed.annotations) link.annotations = parsed.annotations;
    } catch {
      // Stored byte-exact as the upstream serves it, even where pullsafe would refuse it as a push.
    }
    await this.storage.repositories.linkManifest(route.local, link);
  }

  /**
   * Where a blob GET is answered from: the storage (linking a blob the storage already holds for another
   * repository, once the upstream confirmed this repository has it when credentials are involved), or a
   * fill from the upstream, joined when one is under way.
   */
  async openBlob(route: CacheRoute, digest: Digest): Promise<BlobSource> {
    if (await this.holdsBlob(route, digest)) {
      this.metrics.request(route.upstream.name, 'hit');
      this.evictor?.touch(digest);
      return { kind: 'local' };
    }
    await this.checkNotFound(route, 'blob', digest);
    const key = `${route.upstream.name}@${digest}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      let starting = this.fills.get(key);
      const own = starting === undefined;
      if (starting === undefined) {
        starting = this.startFillOnce(route, digest, key);
        this.fills.set(key, starting);
        const started = starting;
        const forget = (): void => {
          if (this.fills.get(key) === started) this.fills.delete(key);
        };
        started.then((fill) => (fill === 'stored' ? forget() : fill.finished.then(forget)), forget);
      }
      const fill = await starting;
      if (fill !== 'stored') {
        const reader = fill.join();
        if (reader) {
          const result = own && !fill.relayed ? 'miss' : 'coalesced';
          this.metrics.request(route.upstream.name, result);
          return { kind: 'fill', size: fill.size, result, reader };
        }
        // The fill is over: the blob is in the storage, or the fill failed and the next attempt starts anew.
        await fill.finished;
      }
      if (await this.holdsBlob(route, digest)) {
        this.metrics.request(route.upstream.name, fill === 'stored' ? 'coalesced' : 'hit');
        return { kind: 'local' };
      }
      if (fill !== 'stored' && (own || attempt === 1)) {
        throw await this.asClientError(
          route,
          'blob',
          digest,
          fill.failed ?? new Error('the fill ended without the blob'),
        );
      }
    }
    throw new OciError('UNAVAILABLE', `blob ${digest} could not be fetched`, { digest }, 503);
  }

  /**
   * This replica's fill of the blob, when no other replica is filling it; 'stored' when another replica
   * filled it meanwhile (it is then in the storage). The lease is renewed while the fill runs, so a replica
   * that dies mid-fill lets another take over within the lease's time.
   */
  private async startFillOnce(route: CacheRoute, digest: Digest, key: string): Promise<BlobFill | 'stored'> {
    const until = Date.now() + remoteFillWaitMs;
    for (;;) {
      const lease = await this.coordinator.acquire(`fill:${key}`, this.leaseMs);
      if (lease) {
        if (await this.storage.blobs.stat(digest)) {
          await lease.release().catch(() => undefined);
          return 'stored';
        }
        let fill: BlobFill;
        try {
          fill = await this.startFill(route, digest);
        } catch (error) {
          await lease.release().catch(() => undefined);
          throw error;
        }
        const announce = (): Promise<void> =>
          this.peer?.url
            ? this.coordinator.set(`fill-at:${key}`, this.peer.url, this.leaseMs)
            : Promise.resolve();
        await announce().catch(() => undefined);
        const renewal = setInterval(() => {
          void lease.renew().catch(() => undefined);
          void announce().catch(() => undefined);
        }, this.leaseMs / 3);
        void fill.finished.finally(() => {
          clearInterval(renewal);
          void lease.release().catch(() => undefined);
        });
        return fill;
      }
      const asked = new Set<string>();
      while (Date.now() < until && (await this.coordinator.held(`fill:${key}`))) {
        if (await this.storage.blobs.stat(digest)) return 'stored';
        const relayed = await this.relayPeerFill(route, digest, key, asked);
        if (relayed) return relayed;
        await sleep(pollMs);
      }
      if (await this.storage.blobs.stat(digest)) return 'stored';
      await this.checkNotFound(route, 'blob', digest);
      if (Date.now() >= until) {
        throw new OciError(
          'UNAVAILABLE',
          `another replica is still fetching blob ${digest}`,
          { digest },
          503,
        );
      }
    }
  }

  /**
   * The fill another replica runs, streamed from it into a spool of this replica's for the clients here;
   * undefined when no replica says it fills the blob, or the one that says so has no such fill (then the
   * commit is waited for). Each replica is asked once per wait. The filling replica commits the blob.
   */
  private async relayPeerFill(
    route: CacheRoute,
    digest: Digest,
    key: string,
    asked: Set<string>,
  ): Promise<BlobFill | undefined> {
    if (!this.peer?.keys.length) return undefined;
    const at = await this.coordinator.get(`fill-at:${key}`);
    if (at === undefined || at === this.peer.url || asked.has(at)) return undefined;
    asked.add(at);
    const source = await openPeerFill(at, this.peer.keys, route.upstream.name, digest);
    if (!source) return undefined;
    this.metrics.peerFill(route.upstream.name, 'relayed');
    return BlobFill.start(digest, source, {
      spoolDir: join(this.spoolDir, route.upstream.options.namespace),
      storage: this.storage,
      repository: route.local,
      relayed: true,
      onBytes: (count) => this.metrics.peerRelayed(route.upstream.name, count),
    });
  }

  /**
   * A reader of a fill this replica runs, for another replica (peers.ts); undefined when none is under
   * way here, or it is itself relayed from a peer.
   */
  async peerFill(
    upstream: string,
    digest: Digest,
    token: string | undefined,
  ): Promise<{ size: number | undefined; reader: FillReader } | undefined> {
    if (!this.peer?.keys.length || !checkPeerToken(this.peer.keys, upstream, digest, token)) return undefined;
    const starting = this.fills.get(`${upstream}@${digest}`);
    const fill = starting ? await starting.catch(() => undefined) : undefined;
    if (fill === undefined || fill === 'stored' || fill.relayed) return undefined;
    const reader = fill.join();
    if (reader) this.metrics.peerFill(upstream, 'served');
    return reader ? { size: fill.size, reader } : undefined;
  }

  /** Where the other replicas reach this one, once the listener is up. */
  setPeerUrl(url: string): void {
    if (this.peer) this.peer.url = url;
  }

  /**
   * Whether the storage holds the blob for this repository, linking one it holds for another repository
   * (after the upstream confirmed this repository has it, when some upstream's content is private).
   */
  async holdsBlob(route: CacheRoute, digest: Digest): Promise<boolean> {
    const repositories = this.storage.repositories;
    if (this.evictor?.isEvicting(digest)) return false;
    if (!(await this.storage.blobs.stat(digest))) return false;
    if (await repositories.hasBlob(route.local, digest)) return true;
    if (this.anyCredentialed && !(await this.confirmBlob(route, digest))) return false;
    if (this.gcFence) {
      // Looked at again once protected: gc may have been deleting it.
      await this.gcFence.hold([digest]);
      if (!(await this.storage.blobs.stat(digest))) return false;
    }
    await repositories.linkBlob(route.local, digest);
    return true;
  }

  private async startFill(route: CacheRoute, digest: Digest): Promise<BlobFill> {
    let download;
    try {
      download = await route.upstream.getBlob(route.remote, digest);
    } catch (error) {
      throw await this.asClientError(route, 'blob', digest, error);
    }
    return BlobFill.start(digest, download, {
      spoolDir: join(this.spoolDir, route.upstream.options.namespace),
      storage: this.storage,
      repository: route.local,
      gcFence: this.gcFence,
      onBytes: (count) => this.metrics.fetched(route.upstream.name, count),
      onCommitted: (size) => {
        this.evictor?.touch(digest);
        this.evictor?.added(size);
      },
    });
  }

  /** A blob HEAD for a blob the storage does not hold: the upstream's size, or an OciError. */
  async headBlob(route: CacheRoute, digest: Digest): Promise<number> {
    await this.checkNotFound(route, 'blob', digest);
    let size: number | undefined;
    try {
      size = await route.upstream.headBlob(route.remote, digest);
    } catch (error) {
      throw await this.asClientError(route, 'blob', digest, error);
    }
    if (size === undefined) {
      await this.rememberNotFound(route, 'blob', digest);
      throw notFoundError(route, 'blob', digest);
    }
    return size;
  }

  /** The upstream's tags for a proxied repository; the locally held ones when it cannot be asked. */
  async tags(route: CacheRoute): Promise<string[]> {
    try {
      return await route.upstream.client.listTags(route.upstream.repository(route.remote), { maxPages: 100 });
    } catch {
      return this.storage.repositories.listTags(route.local);
    }
  }

  /** Keeps a blob from eviction while it is read; call the result when done. */
  holdBlob(digest: Digest): () => void {
    return this.evictor?.hold(digest) ?? (() => undefined);
  }

  async close(): Promise<void> {
    if (this.evictionTimer) clearInterval(this.evictionTimer);
    if (this.quotaTimer) clearInterval(this.quotaTimer);
    await this.coordinator.close().catch(() => undefined);
    await Promise.allSettled(
      [...this.fills.values()].map(async (starting) => {
        const fill = await starting;
        if (fill !== 'stored') await fill.finished;
      }),
    );
    await Promise.allSettled(this.upstreams.map((upstream) => upstream.close()));
  }

  private async confirmBlob(route: CacheRoute, digest: Digest): Promise<boolean> {
    try {
      return (await route.upstream.headBlob(route.remote, digest)) !== undefined;
    } catch {
      return false;
    }
  }

  private async checkNotFound(route: CacheRoute, wanted: Wanted, reference: string): Promise<void> {
    if ((await this.coordinator.get(`notfound:${route.local}@${wanted}:${reference}`)) !== undefined) {
      this.metrics.request(route.upstream.name, 'negative');
      throw notFoundError(route, wanted, reference);
    }
  }

  private async rememberNotFound(route: CacheRoute, wanted: Wanted, reference: string): Promise<void> {
    const key = `notfound:${route.local}@${wanted}:${reference}`;
    await this.coordinator.set(key, '1', route.upstream.options.notFoundTtlMs).catch(() => undefined);
  }

  /**
   * Quota observations other replicas shared, when newer than this replica's own. A value that is not an
   * observation (anything can write to a shared Redis) is skipped: it runs on a timer, so a throw here would
   * be an unhandled rejection, which ends the process.
   */
  private async readQuotas(): Promise<void> {
    for (const upstream of this.upstreams) {
      const text = await this.coordinator.get(`quota:${upstream.name}`).catch(() => undefined);
      if (text === undefined) continue;
      let state: unknown;
      try {
        state = JSON.parse(text);
      } catch {
        continue;
      }
      if (state !== null && typeof state === 'object') upstream.adoptQuota(state as QuotaState);
    }
  }

  /**
   * Runs `work` once per key at a time: callers that arrive while it runs share its outcome
   * (`coalesced`). A failure is shared too, and the next caller starts afresh.
   */
  private async flight(key: string, work: () => Promise<void>): Promise<{ coalesced: boolean }> {
    const running = this.manifestFlights.get(key);
    if (running) {
      await running;
      return { coalesced: true };
    }
    const started = work().finally(() => this.manifestFlights.delete(key));
    this.manifestFlights.set(key, started);
    await started;
    return { coalesced: false };
  }

  private async asClientError(
    route: CacheRoute,
    wanted: Wanted,
    reference: string,
    error: unknown,
  ): Promise<OciError> {
    if (error instanceof UpstreamFailure && error.kind === 'not-found') {
      await this.rememberNotFound(route, wanted, reference);
    }
    return clientError(route, wanted, reference, error);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
