/**
 * The repository half over any ObjectStore (S3, memory), in the layout of object-keys.ts. Tags and listings
 * go to the objects every time, so processes sharing one bucket see each other's writes. Links (a blob's or
 * a manifest's presence in a repository) may be remembered for `rememberLinksMs`: their content never
 * changes for a digest, only their presence, and a blob's own presence is still read from the storage by
 * whoever sends it, so a remembered link can never make a removed blob look present.
 *
 * What remembering could do is serve, by digest, content that another process unlinked (an API delete, gc).
 * A link this process removes is forgotten at once; one removed elsewhere is forgotten when the
 * LinkRemovalChannel (shareLinkRemovals) says so, and while that channel is disconnected nothing is remembered
 * and everything remembered before is dropped. Without a channel a link removed elsewhere may be answered for
 * up to `rememberLinksMs`. A read that overlaps a removal never remembers what it found.
 *
 * Each write of a tag, and each removal of a tag that checks what it points to first, runs under a lock of
 * the tag in this process, so a manifest delete never removes a tag that a concurrent push of this process
 * just moved. A repository enters the catalog before its first link, so no link exists outside it.
 */
import { isDigest, type Digest } from '../oci/digest.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';
import { BoundedMap, ExpiringMap } from '../shared/bounded.ts';
import { compareStrings } from './fs-repositories.ts';
import { KeyedLock } from './fsutil.ts';
import type { LinkRemovalChannel } from './link-removals.ts';
import {
  catalogKey,
  catalogPrefix,
  linkKey,
  referrerKey,
  referrersPrefix,
  repositoryPrefix,
  tagKey,
} from './object-keys.ts';
import type { ObjectStore } from './objects.ts';
import { StoreError, type ManifestLink, type RepositoryStore } from './types.ts';

/** Links read at once when a listing needs every one (gc, fsck, referrers). */
const readConcurrency = 16;
const maxRemembered = 100_000;

export interface ObjectRepositoryOptions {
  /** How long a link read or written here is taken as present without asking again (default 0: never). */
  rememberLinksMs?: number;
}

export class ObjectRepositoryStore implements RepositoryStore {
  private readonly objects: ObjectStore;
  private readonly tagLocks = new KeyedLock();
  /** Repositories this process has put in the catalog, so a push writes its entry once. */
  private readonly cataloged = new BoundedMap<string, true>(maxRemembered);
  /** By link key: `true` for a blob link, the link itself for a manifest. */
  private links = newLinkMemory();
  private readonly rememberLinksMs: number;
  /**
   * Counts the times links were forgotten: a read or write that began before the latest one may have seen
   * what was removed since, so it remembers nothing.
   */
  private forgettings = 0;
  /** False while the shared channel is disconnected: removals elsewhere go unheard, so nothing is remembered. */
  private hearingRemovals = true;
  private channel: LinkRemovalChannel | undefined;

  constructor(objects: ObjectStore, options: ObjectRepositoryOptions = {}) {
    this.objects = objects;
    this.rememberLinksMs = options.rememberLinksMs ?? 0;
  }

  /**
   * Announces every link this store removes on `channel`, and forgets every link removed elsewhere that it
   * hears of there. Returns the function that stops hearing.
   */
  shareLinkRemovals(channel: LinkRemovalChannel): () => void {
    this.channel = channel;
    return channel.listen({
      removed: (key) => this.forget(key),
      hearing: (connected) => {
        this.hearingRemovals = connected;
        this.forgettings++;
        this.links = newLinkMemory();
      },
    });
  }

  /** Remembers `value` unless links were forgotten since `since` (a value of `forgettings`). */
  private remember(key: string, value: true | ManifestLink, since: number): void {
    if (this.rememberLinksMs > 0 && this.hearingRemovals && since === this.forgettings) {
      this.links.set(key, value, this.rememberLinksMs);
    }
  }

  private forget(key: string): void {
    this.forgettings++;
    this.links.delete(key);
  }

  /**
   * Removes the link object, then forgets it (a read overlapping the delete may have remembered it) and tells
   * the other processes, also when it was already gone: one that missed that removal hears it now.
   */
  private async removeLink(key: string): Promise<boolean> {
    const removed = await this.removeIfPresent(key);
    this.forget(key);
    await this.channel?.announce(key);
    return removed;
  }

  async listRepositories(): Promise<string[]> {
    const names: string[] = [];
    for await (const object of this.objects.list(catalogPrefix)) {
      const name = object.key.slice(catalogPrefix.length);
      if (isRepositoryName(name)) names.push(name);
    }
    return names.sort(compareStrings);
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return (await this.objects.head(catalogKey(repository))) !== undefined;
  }

  private async catalog(repository: string): Promise<void> {
    if (this.cataloged.has(repository)) return;
    await this.objects.put(catalogKey(repository), '');
    this.cataloged.set(repository, true);
  }

  async linkBlob(repository: string, digest: Digest): Promise<void> {
    const key = linkKey(repository, '_layers', digest);
    const since = this.forgettings;
    await this.catalog(repository);
    await this.objects.put(key, '');
    this.remember(key, true, since);
  }

  async hasBlob(repository: string, digest: Digest): Promise<boolean> {
    const key = linkKey(repository, '_layers', digest);
    if (this.links.has(key)) return true;
    const since = this.forgettings;
    const present = (await this.objects.head(key)) !== undefined;
    if (present) this.remember(key, true, since);
    return present;
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.removeLink(linkKey(repository, '_layers', digest));
  }

  async listBlobLinks(repository: string): Promise<Digest[]> {
    return this.listDigests(`${repositoryPrefix(repository)}_layers/`);
  }

  async linkManifest(repository: string, link: ManifestLink): Promise<void> {
    const key = linkKey(repository, '_manifests', link.digest);
    const body = JSON.stringify(link);
    const since = this.forgettings;
    await this.catalog(repository);
    // The referrers entry goes first: a failure in between leaves an entry that names no manifest, which
    // referrers() skips, never a manifest missing from its subject's referrers.
    if (link.subject) await this.objects.put(referrerKey(repository, link.subject, link.digest), body);
    await this.objects.put(key, body);
    this.remember(key, link, since);
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestLink | undefined> {
    const key = linkKey(repository, '_manifests', digest);
    const remembered = this.links.get(key);
    if (remembered !== undefined && remembered !== true) return remembered;
    const since = this.forgettings;
    const link = await this.readManifestLink(key, digest);
    if (link) this.remember(key, link, since);
    return link;
  }

  private async readManifestLink(key: string, digest: Digest): Promise<ManifestLink | undefined> {
    const object = await this.objects.get(key);
    return object ? parseLink(object.body.toString('utf8'), digest) : undefined;
  }

  async unlinkManifest(repository: string, digest: Digest): Promise<boolean> {
    const key = linkKey(repository, '_manifests', digest);
    const link = await this.readManifestLink(key, digest);
    const removed = await this.removeLink(key);
    // The referrers entry goes after the link, for the same reason as in linkManifest.
    if (link?.subject) await this.objects.delete(referrerKey(repository, link.subject, digest));
    for (const tag of await this.listTags(repository)) await this.deleteTagIf(repository, tag, digest);
    return removed;
  }

  async listManifests(repository: string): Promise<ManifestLink[]> {
    const digests = await this.listDigests(`${repositoryPrefix(repository)}_manifests/`);
    const links = await mapConcurrent(digests, readConcurrency, (digest) =>
      this.getManifest(repository, digest),
    );
    return links.filter((link): link is ManifestLink => link !== undefined);
  }

  async manifestLinkedAt(repository: string, digest: Digest): Promise<Date | undefined> {
    return (await this.objects.head(linkKey(repository, '_manifests', digest)))?.modified;
  }

  async setTag(repository: string, tag: string, digest: Digest): Promise<void> {
    const key = tagKey(repository, tag);
    if (!isDigest(digest)) throw new StoreError('INVALID_KEY', 'invalid digest');
    await this.tagLocks.run(key, () => this.objects.put(key, digest));
  }

  async getTag(repository: string, tag: string): Promise<Digest | undefined> {
    const object = await this.objects.get(tagKey(repository, tag));
    const text = object?.body.toString('utf8').trim();
    return text !== undefined && isDigest(text) ? (text as Digest) : undefined;
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const key = tagKey(repository, tag);
    return this.tagLocks.run(key, () => this.removeIfPresent(key));
  }

  /** Deletes the tag only if it points at `digest` at that moment (a concurrent push may have moved it). */
  private async deleteTagIf(repository: string, tag: string, digest: Digest): Promise<void> {
    const key = tagKey(repository, tag);
    await this.tagLocks.run(key, async () => {
      if ((await this.getTag(repository, tag)) === digest) await this.objects.delete(key);
    });
  }

  async listTags(repository: string): Promise<string[]> {
    const prefix = `${repositoryPrefix(repository)}_tags/`;
    const tags: string[] = [];
    for await (const object of this.objects.list(prefix)) {
      const tag = object.key.slice(prefix.length);
      if (isTag(tag)) tags.push(tag);
    }
    return tags.sort(compareStrings);
  }

  async referrers(repository: string, subject: Digest): Promise<ManifestLink[]> {
    const prefix = referrersPrefix(repository, subject);
    const digests: Digest[] = [];
    for await (const object of this.objects.list(prefix)) {
      const digest = object.key.slice(prefix.length).replace('-', ':');
      if (isDigest(digest)) digests.push(digest as Digest);
    }
    const links = await mapConcurrent(digests.sort(compareStrings), readConcurrency, (digest) =>
      this.getManifest(repository, digest),
    );
    return links.filter((link): link is ManifestLink => link !== undefined);
  }

  private async removeIfPresent(key: string): Promise<boolean> {
    if (!(await this.objects.head(key))) return false;
    await this.objects.delete(key);
    return true;
  }

  /** Digests named by keys `<prefix><alg>/<hex>`, sorted. */
  private async listDigests(prefix: string): Promise<Digest[]> {
    const digests: Digest[] = [];
    for await (const object of this.objects.list(prefix)) {
      const digest = object.key.slice(prefix.length).replace('/', ':');
      if (isDigest(digest)) digests.push(digest as Digest);
    }
    return digests.sort(compareStrings);
  }
}

function newLinkMemory(): ExpiringMap<string, true | ManifestLink> {
  return new ExpiringMap({ maxEntries: maxRemembered });
}

function parseLink(text: string, digest: Digest): ManifestLink | undefined {
  try {
    const value = JSON.parse(text) as ManifestLink;
    return typeof value.digest === 'string' && value.digest === digest ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in the order of `items`. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
