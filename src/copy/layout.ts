/**
 * OCI image layout folders (`oci:DIR[:TAG]`) as a copy source or target. As a target, blobs are written to a
 * temporary name owned by this process, verified, and renamed, so a blob is visible under its digest only
 * complete. index.json is merged under a lock file at the end: entries other writers added meanwhile are
 * kept, and it is replaced by a rename, never rewritten in place.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { PullsafeError } from '../errors/index.ts';
import {
  digestAlgorithm,
  digestHex,
  digestOf,
  isDigest,
  parseDigest,
  verifyingStream,
  type Digest,
} from '../oci/digest.ts';
import { parseManifest, type ParsedManifest } from '../oci/manifest.ts';
import { isNonDistributable, manifestKinds, mediaTypes } from '../oci/mediatypes.ts';
import type { FetchedManifest, ImageSource, ImageTarget, ManifestHead } from './endpoints.ts';

const refNameAnnotation = 'org.opencontainers.image.ref.name';
const maxManifestBytes = 8 * 1024 * 1024;
/** How long a writer waits for another one's index.json lock. */
const lockWaitMs = 30_000;
/** A lock is held for one merge (milliseconds); one older than this was left by a crash. */
const lockStaleMs = 20_000;
/** Temporaries named before they carried an owner: removed once untouched this long. */
const ownerlessTempStaleMs = 60 * 60 * 1000;
const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'localhost';
/** `<name>.partial-<pid>@<host>-<random>`: the owner can be checked before a temporary is removed. */
const ownedTemp = /\.partial-(\d+)@(.+)-[0-9a-f]{12}$/;
const ownerlessTemp = /\.partial-[0-9a-f]{12}$/;

export interface LayoutReference {
  dir: string;
  /** Tag or digest; undefined when the layout is named without one. */
  reference: string | undefined;
}

/**
 * `oci:DIR`, `oci:DIR:TAG` or `oci:DIR:DIGEST` (the first colon after the folder separates the tag), and
 * `oci:DIR@DIGEST` as registry references write digests.
 */
export function parseLayoutReference(text: string): LayoutReference | undefined {
  if (!text.startsWith('oci:')) return undefined;
  const rest = text.slice(4);
  const pinned = /^(.+)@((?:sha256|sha384|sha512|blake3):[0-9a-fA-F]{32,})$/i.exec(rest);
  if (pinned) {
    if (!isDigest(pinned[2]!)) throw new PullsafeError('USAGE', `${text}: "${pinned[2]}" is not a digest`);
    return { dir: resolve(pinned[1]!), reference: pinned[2]! };
  }
  const folder = rest.includes(':') ? rest.slice(0, rest.indexOf(':')) : rest;
  if (/@(?:sha256|sha384|sha512|blake3)$/i.test(folder)) {
    throw new PullsafeError(
      'USAGE',
      `${text}: a digest after "@" is ALGORITHM:HEX, as in oci:./dir@sha256:…`,
    );
  }
  const at = rest.indexOf(':');
  const dir = at === -1 ? rest : rest.slice(0, at);
  const reference = at === -1 ? undefined : rest.slice(at + 1);
  if (!dir) throw new PullsafeError('USAGE', `${text}: an OCI layout needs a folder, as in oci:./dir:tag`);
  if (
    reference !== undefined &&
    !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(reference) &&
    !isDigest(reference)
  ) {
    throw new PullsafeError('USAGE', `${text}: "${reference}" is neither a tag nor a digest`);
  }
  return { dir: resolve(dir), reference };
}

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  [key: string]: unknown;
}

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: IndexEntry[];
  [key: string]: unknown;
}

/** What the layout learnt about one stored manifest. */
interface ManifestFacts {
  parsed: ParsedManifest;
  /** The manifest's own artifactType field (not the config fallback). */
  artifactType: string | undefined;
}

function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

const pathErrors: Record<string, string> = {
  ENOENT: 'a parent folder does not exist or cannot hold folders',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  EISDIR: 'a folder is in the way',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links',
  EEXIST: 'a file is in the way',
};

/** A file-system failure as an error a person can act on (never a stack trace). */
function fsError(error: unknown, path: string, doing: string): PullsafeError {
  if (error instanceof PullsafeError) return error;
  const code = errnoOf(error) ?? 'unknown';
  const known = pathErrors[code];
  if (known) {
    return new PullsafeError('USAGE', `${path}: cannot ${doing}: ${known} (${code})`, {
      hint: 'an OCI layout is a folder (new or existing) you can read and write, as in oci:./dir:tag',
      cause: error,
    });
  }
  return new PullsafeError('STORAGE_UNAVAILABLE', `${path}: cannot ${doing}: ${(error as Error).message}`, {
    hint: 'check the disk (space, quota, health) and run the copy again; it resumes',
    cause: error,
  });
}

/** Creates `path` one level at a time from its nearest existing ancestor (a recursive mkdir can spin on /proc). */
async function ensureFolder(path: string): Promise<void> {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      const info = await stat(current);
      if (!info.isDirectory()) {
        throw new PullsafeError('USAGE', `${current} is a file, not a folder: it cannot hold an OCI layout`, {
          hint: 'name a folder (new or existing), as in oci:./dir:tag',
        });
      }
      break;
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') throw fsError(error, current, 'use it as a folder');
      const parent = dirname(current);
      if (parent === current) throw fsError(error, current, 'create the folder');
      missing.unshift(current);
      current = parent;
    }
  }
  for (const folder of missing) {
    try {
      await mkdir(folder);
    } catch (error) {
      if (errnoOf(error) === 'EEXIST' && (await stat(folder).catch(() => undefined))?.isDirectory()) continue;
      throw fsError(error, folder, 'create the folder');
    }
  }
}

/** False only when `pid` is certainly gone (ESRCH); EPERM means alive under another user. */
function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) !== 'ESRCH';
  }
}

function tempName(path: string): string {
  return `${path}.partial-${process.pid}@${host}-${randomBytes(6).toString('hex')}`;
}

/** Writes `data` to a temporary sibling, fsyncs it, renames it over `path`, and fsyncs the folder. */
async function replaceFile(path: string, data: string): Promise<void> {
  const temp = tempName(path);
  try {
    const file = await open(temp, 'wx');
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw fsError(error, path, 'write');
  }
  const folder = await open(dirname(path), 'r').catch(() => undefined);
  await folder?.sync().catch(() => undefined);
  await folder?.close();
}

export class OciLayout implements ImageSource, ImageTarget {
  readonly label: string;
  readonly registry = undefined;
  readonly repository = undefined;
  private readonly dir: string;
  private index: LayoutIndex | undefined;
  /** False once index.json was found missing (the folder may not exist either). */
  private indexExists = true;
  /** Tags this run wrote, by tag. */
  private readonly tagged = new Map<string, IndexEntry>();
  /** Manifests this run wrote by digest, in order, to be recorded untagged when nothing else holds them. */
  private readonly byDigest = new Map<string, IndexEntry>();
  /** Manifests that manifests written this run list as children. */
  private readonly children = new Set<string>();
  private readonly facts = new Map<string, ManifestFacts | undefined>();
  /** Manifests whose whole tree was found complete on disk. */
  private readonly complete = new Set<string>();
  /** Blobs found with the wrong size: treated as absent so that a copy rewrites them. */
  private readonly damaged = new Set<string>();
  private reachable: Set<string> | undefined;
  private prepared: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
    this.label = `oci:${dir}`;
  }

  private blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  private async loadIndex(): Promise<LayoutIndex | undefined> {
    const path = join(this.dir, 'index.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      if (errnoOf(error) === 'ENOTDIR') await ensureFolder(this.dir);
      throw fsError(error, path, 'read the layout index');
    }
    try {
      const parsed = JSON.parse(text) as LayoutIndex;
      if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.manifests)) {
        throw new Error('manifests is not a list');
      }
      return parsed;
    } catch (error) {
      throw new PullsafeError(
        'LAYOUT_INVALID',
        `${this.label}: index.json is invalid: ${(error as Error).message}`,
      );
    }
  }

  private async readIndex(): Promise<LayoutIndex> {
    if (this.index) return this.index;
    const loaded = await this.loadIndex();
    this.indexExists = loaded !== undefined;
    this.index = loaded ?? { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] };
    return this.index;
  }

  /** The parsed manifest stored under `digest`, or undefined when missing or unreadable. */
  private async manifestFacts(digest: string): Promise<ManifestFacts | undefined> {
    if (this.facts.has(digest)) return this.facts.get(digest);
    let facts: ManifestFacts | undefined;
    try {
      const bytes = await readFile(this.blobPath(parseDigest(digest)));
      if (bytes.length <= maxManifestBytes) {
        const document = JSON.parse(bytes.toString('utf8')) as { artifactType?: unknown };
        facts = {
          parsed: parseManifest(bytes, undefined),
          artifactType: typeof document.artifactType === 'string' ? document.artifactType : undefined,
        };
      }
    } catch {
      facts = undefined;
    }
    if (facts) this.facts.set(digest, facts);
    return facts;
  }

  /** Digests index.json holds, directly or as children of an index it holds. */
  private async reachableFrom(index: LayoutIndex): Promise<Set<string>> {
    const seen = new Set<string>();
    const walk = async (digest: string, mediaType: string): Promise<void> => {
      if (seen.has(digest)) return;
      seen.add(digest);
      if (manifestKinds.get(mediaType) !== 'index') return;
      const facts = await this.manifestFacts(digest);
      for (const child of facts?.parsed.manifests ?? []) await walk(child.digest, child.mediaType);
    };
    for (const entry of index.manifests) {
      if (isDigest(entry.digest)) await walk(entry.digest, entry.mediaType);
    }
    return seen;
  }

  /** True when the manifest, and every manifest and blob under it, is on disk with the right size. */
  private async treeComplete(digest: string, size: number | undefined): Promise<boolean> {
    if (this.complete.has(digest)) return true;
    if (!(await this.blobHasSize(digest, size))) return false;
    const facts = await this.manifestFacts(digest);
    if (!facts) return false;
    for (const child of facts.parsed.manifests) {
      if (!(await this.treeComplete(child.digest, child.size))) return false;
    }
    for (const blob of facts.parsed.blobs) {
      if (isNonDistributable(blob.mediaType) && blob.urls?.length) continue;
      if (!(await this.blobHasSize(blob.digest, blob.size))) return false;
    }
    this.complete.add(digest);
    return true;
  }

  private async blobHasSize(digest: string, size: number | undefined): Promise<boolean> {
    if (!isDigest(digest)) return false;
    const info = await stat(this.blobPath(parseDigest(digest))).catch(() => undefined);
    if (!info?.isFile()) return false;
    if (size !== undefined && info.size !== size) {
      this.damaged.add(digest);
      return false;
    }
    return true;
  }

  /** Entries that are images rather than referrers (manifests with a subject). */
  private async images(index: LayoutIndex): Promise<IndexEntry[]> {
    if (index.manifests.length <= 1) return index.manifests;
    const images: IndexEntry[] = [];
    for (const entry of index.manifests) {
      if (entry.annotations?.[refNameAnnotation] !== undefined) images.push(entry);
      else if (!(await this.manifestFacts(entry.digest))?.parsed.subject) images.push(entry);
    }
    return images;
  }

  private async findEntry(reference: string | undefined): Promise<IndexEntry | undefined> {
    const index = await this.readIndex();
    if (reference === '') reference = undefined;
    const pending = reference === undefined ? undefined : this.tagged.get(reference);
    if (pending) return pending;
    if (reference === undefined) {
      const images = await this.images(index);
      if (images.length === 1) return images[0];
      if (images.length === 0) return undefined;
      const names = images.map((entry) => entry.annotations?.[refNameAnnotation] ?? `@${entry.digest}`);
      throw new PullsafeError(
        'USAGE',
        `${this.label}: the layout holds ${images.length} images; name one as oci:DIR:TAG or oci:DIR@DIGEST`,
        { hint: `here: ${names.join(', ')}` },
      );
    }
    if (isDigest(reference)) {
      const entry = index.manifests.find((candidate) => candidate.digest === reference);
      if (entry) return entry;
      const info = await stat(this.blobPath(parseDigest(reference))).catch(() => undefined);
      if (!info) return undefined;
      const facts = await this.manifestFacts(reference);
      if (!facts) return undefined;
      return { mediaType: facts.parsed.mediaType, digest: reference, size: info.size };
    }
    return index.manifests.find((entry) => entry.annotations?.[refNameAnnotation] === reference);
  }

  /** What the image `oci:DIR` without a tag stands for is called: its tag, else its digest. */
  async nameOfOnlyImage(): Promise<string | undefined> {
    const entry = await this.findEntry(undefined);
    return entry?.annotations?.[refNameAnnotation] ?? entry?.digest;
  }

  /**
   * The layout holds an image under `reference` only when index.json (or this run) names it, directly or
   * through an index it names, and every manifest and blob of its tree is on disk with the right size.
   */
  async resolveManifest(reference: string): Promise<ManifestHead | undefined> {
    const entry = await this.findEntry(reference);
    if (!entry || !isDigest(entry.digest)) return undefined;
    if (isDigest(reference) && !this.byDigest.has(reference)) {
      this.reachable ??= await this.reachableFrom(await this.readIndex());
      if (!this.reachable.has(reference)) return undefined;
    }
    if (!(await this.treeComplete(entry.digest, entry.size))) return undefined;
    return { digest: entry.digest as Digest, mediaType: entry.mediaType };
  }

  async getManifest(reference: string | undefined): Promise<FetchedManifest> {
    const entry = await this.findEntry(reference);
    if (!entry || !isDigest(entry.digest)) {
      if (!this.indexExists) {
        const folder = await stat(this.dir).catch(() => undefined);
        throw new PullsafeError(
          'USAGE',
          folder
            ? `${this.label}: not an OCI layout: ${join(this.dir, 'index.json')} does not exist`
            : `${this.label}: the folder ${this.dir} does not exist`,
          { hint: 'an OCI layout is a folder holding oci-layout, index.json and blobs/; check the path' },
        );
      }
      throw new PullsafeError(
        'USAGE',
        reference
          ? `${this.label}: no image ${reference} in the layout`
          : `${this.label}: no usable image in the layout`,
      );
    }
    const digest = entry.digest as Digest;
    const bytes = await readFile(this.blobPath(digest)).catch(() => {
      throw new PullsafeError('LAYOUT_INVALID', `${this.label}: manifest blob ${digest} is missing`);
    });
    if (bytes.length > maxManifestBytes || digestOf(bytes, digestAlgorithm(digest)) !== digest) {
      throw new PullsafeError('DIGEST_MISMATCH', `${this.label}: manifest blob ${digest} does not verify`);
    }
    const mediaType =
      (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? entry.mediaType;
    return { bytes, digest, mediaType };
  }

  async getBlob(digest: Digest, size: number): Promise<Readable> {
    const path = this.blobPath(digest);
    await stat(path).catch(() => {
      throw new PullsafeError('LAYOUT_INVALID', `${this.label}: blob ${digest} is missing`);
    });
    const verifier = verifyingStream(digest, size);
    const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
    file.on('error', (error) => verifier.destroy(error));
    return file.pipe(verifier);
  }

  /** Manifests index.json lists whose subject is `digest`. */
  async referrers(digest: Digest): Promise<Digest[]> {
    const index = await this.readIndex();
    const found: Digest[] = [];
    for (const entry of index.manifests) {
      if (!isDigest(entry.digest) || found.includes(entry.digest as Digest)) continue;
      const facts = await this.manifestFacts(entry.digest);
      if (facts?.parsed.subject?.digest === digest) found.push(entry.digest as Digest);
    }
    return found;
  }

  mountableFrom(): string | undefined {
    return undefined;
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    if (this.damaged.has(digest)) return false;
    return (await stat(this.blobPath(digest)).catch(() => undefined)) !== undefined;
  }

  /** Once per run, before the first write: folders, oci-layout, and other runs' abandoned temporaries. */
  private prepare(): Promise<void> {
    this.prepared ??= (async () => {
      await ensureFolder(this.dir);
      const marker = join(this.dir, 'oci-layout');
      await writeFile(marker, '{"imageLayoutVersion":"1.0.0"}', { flag: 'wx' }).catch((error: unknown) => {
        if (errnoOf(error) !== 'EEXIST') throw fsError(error, marker, 'write');
      });
      await ensureFolder(join(this.dir, 'blobs', 'sha256'));
      await this.removeAbandonedTemporaries();
    })();
    return this.prepared;
  }

  /** Removes temporaries whose owner process is gone; another live process's are never touched. */
  private async removeAbandonedTemporaries(): Promise<void> {
    const folders = [this.dir];
    for (const name of await readdir(join(this.dir, 'blobs')).catch(() => [])) {
      folders.push(join(this.dir, 'blobs', name));
    }
    for (const folder of folders) {
      for (const name of await readdir(folder).catch(() => [] as string[])) {
        const owned = ownedTemp.exec(name);
        let abandoned = false;
        if (owned) {
          abandoned =
            owned[2] === host && Number(owned[1]) !== process.pid && !processAlive(Number(owned[1]));
        } else if (ownerlessTemp.test(name)) {
          const info = await stat(join(folder, name)).catch(() => undefined);
          abandoned = info !== undefined && Date.now() - info.mtimeMs > ownerlessTempStaleMs;
        }
        if (abandoned) await rm(join(folder, name), { force: true }).catch(() => undefined);
      }
    }
  }

  async putBlob(digest: Digest, size: number, open: () => Promise<Readable>): Promise<'uploaded'> {
    await this.prepare();
    const path = this.blobPath(digest);
    await ensureFolder(dirname(path));
    const temp = tempName(path);
    let writeError: unknown;
    try {
      const file = createWriteStream(temp, { flags: 'wx' });
      file.on('error', (error) => (writeError = error));
      await pipeline(await open(), verifyingStream(digest, size), file);
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw writeError === undefined ? error : fsError(writeError, path, 'write the blob');
    }
    this.damaged.delete(digest);
    return 'uploaded';
  }

  mountBlob(): Promise<boolean> {
    return Promise.resolve(false);
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    const digest = digestOf(bytes);
    if (!(await this.blobHasSize(digest, bytes.length))) {
      await this.putBlob(digest, bytes.length, () => Promise.resolve(Readable.from([bytes])));
    } else {
      await this.prepare();
    }
    let facts: ManifestFacts | undefined;
    try {
      const document = JSON.parse(bytes.toString('utf8')) as { artifactType?: unknown };
      facts = {
        parsed: parseManifest(bytes, mediaType),
        artifactType: typeof document.artifactType === 'string' ? document.artifactType : undefined,
      };
      this.facts.set(digest, facts);
      for (const child of facts.parsed.manifests) this.children.add(child.digest);
    } catch {
      facts = undefined;
    }
    const entry: IndexEntry = { mediaType, digest, size: bytes.length };
    if (facts?.artifactType) entry.artifactType = facts.artifactType;
    if (!isDigest(reference)) {
      entry.annotations = { [refNameAnnotation]: reference };
      this.tagged.set(reference, entry);
    } else {
      this.byDigest.set(digest, entry);
    }
  }

  /** Untagged entries this run adds: referrers, and manifests written by digest that nothing else holds. */
  private async untaggedEntries(index: LayoutIndex): Promise<IndexEntry[]> {
    const entries: IndexEntry[] = [];
    let reachable: Set<string> | undefined;
    for (const entry of this.byDigest.values()) {
      if (!this.facts.get(entry.digest)?.parsed.subject) {
        if (this.children.has(entry.digest)) continue;
        reachable ??= await this.reachableFrom(index);
        if (reachable.has(entry.digest)) continue;
      }
      entries.push(entry);
    }
    return entries;
  }

  async finish(): Promise<void> {
    if (this.tagged.size === 0 && this.byDigest.size === 0) return;
    await this.prepare();
    await this.withIndexLock(async () => {
      const current = (await this.loadIndex()) ?? {
        schemaVersion: 2,
        mediaType: mediaTypes.ociIndex,
        manifests: [],
      };
      // Children listed by tags written now do not need entries of their own.
      const pendingTagged = { ...current, manifests: [...current.manifests, ...this.tagged.values()] };
      const added = await this.untaggedEntries(pendingTagged);
      const kept = current.manifests.filter((entry) => {
        const name = entry.annotations?.[refNameAnnotation];
        return name === undefined || !this.tagged.has(name);
      });
      const fresh = added.filter(
        (entry) =>
          !kept.some(
            (old) => old.digest === entry.digest && old.annotations?.[refNameAnnotation] === undefined,
          ),
      );
      const updated: LayoutIndex = { ...current, manifests: [...kept, ...fresh, ...this.tagged.values()] };
      await replaceFile(join(this.dir, 'index.json'), JSON.stringify(updated));
      this.index = updated;
      this.indexExists = true;
    });
    this.reachable = undefined;
    this.tagged.clear();
    this.byDigest.clear();
    this.children.clear();
  }

  /** Runs `work` holding DIR/index.json.lock; waits up to lockWaitMs for another writer's lock. */
  private async withIndexLock(work: () => Promise<void>): Promise<void> {
    const lock = join(this.dir, 'index.json.lock');
    const token = JSON.stringify({ pid: process.pid, host, token: randomBytes(8).toString('hex') });
    const deadline = Date.now() + lockWaitMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 250)) {
      try {
        await writeFile(lock, token, { flag: 'wx' });
        break;
      } catch (error) {
        if (errnoOf(error) !== 'EEXIST') throw fsError(error, lock, 'create the lock file');
      }
      if (await this.breakStaleLock(lock)) continue;
      if (Date.now() > deadline) {
        throw new PullsafeError(
          'STORAGE_UNAVAILABLE',
          `${this.label}: another process has held ${lock} for over ${lockWaitMs / 1000} s`,
          { hint: `wait for the other copy to finish; if no copy is writing this layout, delete ${lock}` },
        );
      }
      await sleep(delay + Math.floor(Math.random() * delay));
    }
    try {
      await work();
    } finally {
      const holder = await readFile(lock, 'utf8').catch(() => undefined);
      if (holder === token) await rm(lock, { force: true });
    }
  }

  /** True when the lock was gone or left by a dead process (or too old), and has been removed. */
  private async breakStaleLock(lock: string): Promise<boolean> {
    let text: string;
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      [text, info] = await Promise.all([readFile(lock, 'utf8'), stat(lock)]);
    } catch (error) {
      return errnoOf(error) === 'ENOENT';
    }
    let owner: { pid?: unknown; host?: unknown } = {};
    try {
      owner = JSON.parse(text) as typeof owner;
    } catch {
      // being written, or damaged: judged by age alone
    }
    const dead = owner.host === host && typeof owner.pid === 'number' && !processAlive(owner.pid);
    if (!dead && Date.now() - info.mtimeMs < lockStaleMs) return false;
    // Move it aside first, so that only one waiter breaks it; put back a lock that turned out to be fresh.
    const aside = `${lock}.stale-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await rename(lock, aside);
    } catch (error) {
      return errnoOf(error) === 'ENOENT';
    }
    if ((await readFile(aside, 'utf8').catch(() => undefined)) !== text) {
      await link(aside, lock).catch(() => undefined);
    }
    await rm(aside, { force: true });
    return true;
  }
}
