/**
 * Keeps the cache's blobs under a size: past the high watermark, the least recently used cached blobs are
 * removed until the total is under the low watermark. Never removed: blobs a hosted repository links (they
 * are not cache content), blobs of pinned repositories, and blobs being read right now. Manifests stay (they
 * are small); a blob evicted is fetched again on its next pull.
 */
import type { Digest } from '../oci/digest.ts';
import type { Storage } from '../store/index.ts';

export interface EvictionOptions {
  maxBytes: number;
  highWatermark: number;
  lowWatermark: number;
  /** Local namespaces of the upstreams (`docker.io`): repositories below them are cache content. */
  namespaces: string[];
  /** Cached repositories (local names) whose blobs are never evicted. */
  pinned: RegExp[];
}

export interface EvictionReport {
  cachedBytes: number;
  evicted: { digest: Digest; size: number }[];
  evictedBytes: number;
  /** Blobs that would have been evicted but were being read. */
  kept: number;
}

export class Evictor {
  private readonly storage: Storage;
  private readonly options: EvictionOptions;
  private readonly lastUse = new Map<string, number>();
  private readonly reading = new Map<string, number>();
  private readonly evicting = new Set<string>();
  private running: Promise<EvictionReport> | undefined;
  /** Cached bytes as of the last pass, plus what fills added since. */
  private estimate = 0;
  evictedTotal = 0;

  constructor(storage: Storage, options: EvictionOptions) {
    this.storage = storage;
    this.options = options;
  }

  get cachedBytes(): number {
    return this.estimate;
  }

  /** A blob was served or stored now. */
  touch(digest: Digest): void {
    this.lastUse.delete(digest);
    this.lastUse.set(digest, Date.now());
  }

  /** Marks a blob as being read until the returned function is called. */
  hold(digest: Digest): () => void {
    this.reading.set(digest, (this.reading.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const count = (this.reading.get(digest) ?? 1) - 1;
      if (count <= 0) this.reading.delete(digest);
      else this.reading.set(digest, count);
    };
  }

  /** Whether the blob is being removed (it must then be fetched, not served from storage). */
  isEvicting(digest: Digest): boolean {
    return this.evicting.has(digest);
  }

  /** A fill stored `bytes` more; a pass starts when the estimate crosses the high watermark. */
  added(bytes: number): void {
    this.estimate += bytes;
    if (this.estimate > this.options.maxBytes * this.options.highWatermark)
      void this.run().catch(() => undefined);
  }

  /** One pass (or the one under way): measures the cache, and evicts when it is over the high watermark. */
  run(): Promise<EvictionReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<EvictionReport> {
    const { repositories, blobs } = this.storage;
    const cachedLinks = new Map<string, string[]>();
    const protectedDigests = new Set<string>();
    for (const repository of await repositories.listRepositories()) {
      const cached = this.options.namespaces.some((namespace) => repository.startsWith(`${namespace}/`));
      const pinned = cached && this.options.pinned.some((pattern) => pattern.test(repository));
      for (const digest of await repositories.listBlobLinks(repository)) {
        if (!cached || pinned) protectedDigests.add(digest);
        if (cached) {
          const links = cachedLinks.get(digest) ?? [];
          links.push(repository);
          cachedLinks.set(digest, links);
        }
      }
    }
    const candidates: { digest: Digest; size: number; used: number }[] = [];
    let cachedBytes = 0;
    let kept = 0;
    for await (const blob of blobs.list()) {
      if (!cachedLinks.has(blob.digest)) continue;
      cachedBytes += blob.size;
      if (protectedDigests.has(blob.digest)) continue;
      candidates.push({
        digest: blob.digest,
        size: blob.size,
        used: this.lastUse.get(blob.digest) ?? blob.modified.getTime(),
      });
    }
    const report: EvictionReport = { cachedBytes, evicted: [], evictedBytes: 0, kept: 0 };
    this.estimate = cachedBytes;
    if (cachedBytes <= this.options.maxBytes * this.options.highWatermark) return report;
    const target = this.options.maxBytes * this.options.lowWatermark;
    candidates.sort((a, b) => a.used - b.used);
    let total = cachedBytes;
    for (const candidate of candidates) {
      if (total <= target) break;
      if (this.reading.has(candidate.digest)) {
        kept++;
        continue;
      }
      this.evicting.add(candidate.digest);
      try {
        await blobs.delete(candidate.digest);
        for (const repository of cachedLinks.get(candidate.digest) ?? []) {
          await repositories.unlinkBlob(repository, candidate.digest);
        }
      } finally {
        this.evicting.delete(candidate.digest);
      }
      this.lastUse.delete(candidate.digest);
      total -= candidate.size;
      report.evicted.push({ digest: candidate.digest, size: candidate.size });
      report.evictedBytes += candidate.size;
    }
    report.kept = kept;
    this.estimate = total;
    this.evictedTotal += report.evictedBytes;
    return report;
  }
}
