/**
 * Filesystem repository store. Layout under `<root>/repositories/<name>/`:
 *   _layers/<alg>/<hex>                          a blob belongs to the repository (empty file)
 *   _manifests/<alg>/<hex>                        a manifest belongs to it (JSON ManifestLink)
 *   _tags/<tag>                                   the digest the tag points to
 *   _referrers/<alg>/<subject hex>/<alg>-<hex>    a manifest whose subject is that digest
 * Path components of names cannot start with `_`, so these folders never collide with a nested name.
 * Every key is re-validated here, so no path is ever built from unchecked input.
 *
 * Small files are written in `<root>/tmp/` and renamed into place, so no folder above ever holds a
 * temporary that a listing could take for a key.
 *
 * Tags and manifest links are served from memory after the first touch: this process is the only writer of
 * its storage, so the caches stay exact (a restart re-reads from disk). Each write of such a key and its
 * cache update, and each cache fill and the read it comes from, run under the key's lock: without it two
 * writers could rename in one order and update the cache in the other.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestAlgorithm, digestHex, isDigest, type Digest } from '../oci/digest.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';
import {
  KeyedLock,
  isMissing,
  readTextIfExists,
  removeIfExists,
  temporaryDirectory,
  writeFileAtomic,
} from './fsutil.ts';
import { StoreError, type ManifestLink, type RepositoryStore } from './types.ts';
import { BoundedMap } from '../shared/bounded.ts';

const maxCachedEntries = 100_000;

export class FsRepositoryStore implements RepositoryStore {
  readonly root: string;
  private readonly tagCache = new BoundedMap<string, Digest | null>(maxCachedEntries);
  private readonly manifestCache = new BoundedMap<string, ManifestLink | null>(maxCachedEntries);
  /** Keys are `<repository>:<tag>` and `<repository>@<digest>`; names contain neither `:` nor `@`. */
  private readonly locks = new KeyedLock();
  private readonly temporaryDir: string;

  constructor(root: string) {
    this.root = root;
    this.temporaryDir = temporaryDirectory(root);
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'repositories'), { recursive: true });
    await mkdir(this.temporaryDir, { recursive: true });
  }

  private write(path: string, data: string): Promise<void> {
    return writeFileAtomic(path, data, this.temporaryDir);
  }

  private repositoryDir(repository: string): string {
    if (!isRepositoryName(repository)) throw new StoreError('INVALID_KEY', 'invalid repository name');
    return join(this.root, 'repositories', ...repository.split('/'));
  }

  private digestPath(repository: string, folder: string, digest: Digest): string {
    if (!isDigest(digest)) throw new StoreError('INVALID_KEY', 'invalid digest');
    return join(this.repositoryDir(repository), folder, digestAlgorithm(digest), digestHex(digest));
  }

  private tagPath(repository: string, tag: string): string {
    if (!isTag(tag)) throw new StoreError('INVALID_KEY', 'invalid tag');
    return join(this.repositoryDir(repository), '_tags', tag);
  }

  async listRepositories(): Promise<string[]> {
    const names: string[] = [];
    const walk = async (dir: string, prefix: string[], depth: number): Promise<void> => {
      if (depth > 64) return;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (isMissing(error)) return;
        throw error;
      }
      let isRepository = false;
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        if (entry.name === '_manifests' || entry.name === '_layers') isRepository = true;
        else if (!entry.name.startsWith('_'))
          await walk(join(dir, entry.name), [...prefix, entry.name], depth + 1);
      }
      const name = prefix.join('/');
      if (isRepository && isRepositoryName(name)) names.push(name);
    };
    await walk(join(this.root, 'repositories'), [], 0);
    return names.sort(compareStrings);
  }

  async repositoryExists(repository: string): Promise<boolean> {
    const dir = this.repositoryDir(repository);
    for (const folder of ['_manifests', '_layers']) {
      try {
        if ((await stat(join(dir, folder))).isDirectory()) return true;
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
    return false;
  }

  async linkBlob(repository: string, digest: Digest): Promise<void> {
    const path = this.digestPath(repository, '_layers', digest);
    if (await exists(path)) return;
    await this.write(path, '');
  }

  async hasBlob(repository: string, digest: Digest): Promise<boolean> {
    return exists(this.digestPath(repository, '_layers', digest));
  }

  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return removeIfExists(this.digestPath(repository, '_layers', digest));
  }

  async listBlobLinks(repository: string): Promise<Digest[]> {
    return this.listDigests(join(this.repositoryDir(repository), '_layers'));
  }

  async linkManifest(repository: string, link: ManifestLink): Promise<void> {
    const path = this.digestPath(repository, '_manifests', link.digest);
    const referrer = link.subject ? this.referrerPath(repository, link.subject, link.digest) : undefined;
    const key = `${repository}@${link.digest}`;
    await this.locks.run(key, async () => {
      try {
        // The referrers entry goes first: a crash in between leaves an entry that names no manifest, which
        // referrers() skips, never a manifest missing from its subject's referrers.
        if (referrer) await this.write(referrer, JSON.stringify(link));
        await this.write(path, JSON.stringify(link));
      } catch (error) {
        // The link may be on disk even though the write failed (the folder's fsync): read it again.
        this.manifestCache.delete(key);
        throw error;
      }
      this.manifestCache.set(key, link);
    });
  }

  private referrerPath(repository: string, subject: Digest, digest: Digest): string {
    if (!isDigest(digest)) throw new StoreError('INVALID_KEY', 'invalid digest');
    return join(
      this.digestPath(repository, '_referrers', subject),
      `${digestAlgorithm(digest)}-${digestHex(digest)}`,
    );
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestLink | undefined> {
    const path = this.digestPath(repository, '_manifests', digest);
    const key = `${repository}@${digest}`;
    const cached = this.manifestCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    return this.locks.run(key, () => this.loadManifest(key, path));
  }

  /** The cached link, else the one on disk (then cached). Callers hold the key's lock. */
  private async loadManifest(key: string, path: string): Promise<ManifestLink | undefined> {
    const cached = this.manifestCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const text = await readTextIfExists(path);
    const link = text === undefined ? undefined : parseLink(text);
    this.manifestCache.set(key, link ?? null);
    return link;
  }

  async unlinkManifest(repository: string, digest: Digest): Promise<boolean> {
    const path = this.digestPath(repository, '_manifests', digest);
    const key = `${repository}@${digest}`;
    const removed = await this.locks.run(key, async () => {
      const link = await this.loadManifest(key, path);
      let removedLink: boolean;
      try {
        removedLink = await removeIfExists(path);
      } finally {
        this.manifestCache.delete(key);
      }
      // The referrers entry goes after the link: a crash in between leaves an entry that names no manifest,
      // which referrers() skips.
      if (link?.subject) await removeIfExists(this.referrerPath(repository, link.subject, digest));
      return removedLink;
    });
    for (const tag of await this.listTags(repository)) await this.deleteTagIf(repository, tag, digest);
    return removed;
  }

  async listManifests(repository: string): Promise<ManifestLink[]> {
    const links: ManifestLink[] = [];
    for (const digest of await this.listDigests(join(this.repositoryDir(repository), '_manifests'))) {
      const link = await this.getManifest(repository, digest);
      if (link) links.push(link);
    }
    return links;
  }

  async manifestLinkedAt(repository: string, digest: Digest): Promise<Date | undefined> {
    try {
      return (await stat(this.digestPath(repository, '_manifests', digest))).mtime;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async setTag(repository: string, tag: string, digest: Digest): Promise<void> {
    if (!isDigest(digest)) throw new StoreError('INVALID_KEY', 'invalid digest');
    const path = this.tagPath(repository, tag);
    const key = `${repository}:${tag}`;
    await this.locks.run(key, async () => {
      try {
        await this.write(path, digest);
      } catch (error) {
        // The tag may be on disk even though the write failed (the folder's fsync): read it again.
        this.tagCache.delete(key);
        throw error;
      }
      this.tagCache.set(key, digest);
    });
  }

  async getTag(repository: string, tag: string): Promise<Digest | undefined> {
    const path = this.tagPath(repository, tag);
    const key = `${repository}:${tag}`;
    const cached = this.tagCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    return this.locks.run(key, () => this.loadTag(key, path));
  }

  /** The cached digest, else the one on disk (then cached). Callers hold the key's lock. */
  private async loadTag(key: string, path: string): Promise<Digest | undefined> {
    const cached = this.tagCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const text = (await readTextIfExists(path))?.trim();
    const digest = text !== undefined && isDigest(text) ? (text as Digest) : undefined;
    this.tagCache.set(key, digest ?? null);
    return digest;
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const path = this.tagPath(repository, tag);
    const key = `${repository}:${tag}`;
    return this.locks.run(key, async () => {
      try {
        return await removeIfExists(path);
      } finally {
        this.tagCache.delete(key);
      }
    });
  }

  /** Deletes the tag only if it points at `digest` at that moment (a concurrent push may have moved it). */
  private async deleteTagIf(repository: string, tag: string, digest: Digest): Promise<void> {
    const path = this.tagPath(repository, tag);
    const key = `${repository}:${tag}`;
    await this.locks.run(key, async () => {
      if ((await this.loadTag(key, path)) !== digest) return;
      try {
        await removeIfExists(path);
      } finally {
        this.tagCache.delete(key);
      }
    });
  }

  async listTags(repository: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(this.repositoryDir(repository), '_tags'));
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    return names.filter(isTag).sort(compareStrings);
  }

  async referrers(repository: string, subject: Digest): Promise<ManifestLink[]> {
    const dir = this.digestPath(repository, '_referrers', subject);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    const links: ManifestLink[] = [];
    for (const name of names.sort(compareStrings)) {
      const digest = name.replace('-', ':');
      if (!isDigest(digest)) continue;
      const link = await this.getManifest(repository, digest as Digest);
      if (link) links.push(link);
    }
    return links;
  }

  private async listDigests(dir: string): Promise<Digest[]> {
    const digests: Digest[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      let names: string[];
      try {
        names = await readdir(join(dir, algorithm));
      } catch (error) {
        if (isMissing(error)) continue;
        throw error;
      }
      for (const hex of names) {
        const digest = `${algorithm}:${hex}`;
        if (isDigest(digest)) digests.push(digest as Digest);
      }
    }
    return digests.sort(compareStrings);
  }
}

function parseLink(text: string): ManifestLink | undefined {
  try {
    const value = JSON.parse(text) as ManifestLink;
    return typeof value.digest === 'string' && isDigest(value.digest) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** Byte-order comparison, as distribution sorts names (not locale order). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
