/**
 * Where target registries hold blobs, so that a copy mounts a blob from another repository of the same
 * registry instead of sending its bytes again. It knows uploads in flight in this run, blobs stored or
 * found in this run and, with a file, what earlier runs recorded there.
 *
 * Everything here is a hint, never trusted for content: a registry mounts a blob only when it holds those
 * exact bytes, and a mount it does not make is forgotten and the blob is sent as usual, so a stale entry
 * costs one request. The file holds registry hosts, repository names and digests only (never credentials),
 * at most `maxEntries` of them (the most recently used are kept), and at most `repositoriesPerBlob`
 * repositories for one blob of one registry.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDigest } from '../oci/digest.ts';

export interface BlobLocationsOptions {
  /** Where earlier runs' records are read from and this run's are merged into; none: this run only. */
  file?: string;
  maxEntries?: number;
}

/** About 130 bytes each in the file: at most about 1.3 MB. */
export const defaultMaxEntries = 10_000;
const repositoriesPerBlob = 3;
/** Recorded repositories a copy tries to mount one blob from before sending it. */
const mountAttempts = 2;
const fileVersion = 1;

type Entry = readonly [registry: string, repository: string, digest: string];
type Change = { record: boolean; entry: Entry };

/** An upload of a blob to a registry that has started in this run; `done` resolves true once it is there. */
export interface BlobInFlight {
  repository: string;
  done: Promise<boolean>;
}

export class BlobLocations {
  private readonly file: string | undefined;
  private readonly maxEntries: number;
  private readonly table: LocationTable;
  /** This run's records and forgettings, replayed onto the file's current content when saving. */
  private readonly changes: Change[] = [];
  private readonly inFlight = new Map<string, BlobInFlight>();
  /** A hash of the file as it was read (undefined: there was none), to tell whether another run wrote it since. */
  private readonly readFingerprint: string | undefined;

  private constructor(options: BlobLocationsOptions, text: string | undefined) {
    this.file = options.file;
    this.maxEntries = options.maxEntries ?? defaultMaxEntries;
    this.table = new LocationTable(parseEntries(text), this.maxEntries);
    this.readFingerprint = fingerprintOf(text);
  }

  /** Reads the file when there is one; a missing, unreadable or malformed file counts as empty. */
  static async open(options: BlobLocationsOptions = {}): Promise<BlobLocations> {
    return new BlobLocations(options, options.file === undefined ? undefined : await readText(options.file));
  }

  /** Other repositories of `registry` recorded to hold `digest`, the most recently seen first. */
  candidates(registry: string, digest: string, except: string): string[] {
    return this.table
      .repositories(registry, digest)
      .filter((repository) => repository !== except)
      .reverse()
      .slice(0, mountAttempts);
  }

  record(registry: string, repository: string, digest: string): void {
    const entry: Entry = [registry, repository, digest];
    this.table.record(entry);
    this.changes.push({ record: true, entry });
  }

  forget(registry: string, repository: string, digest: string): void {
    const entry: Entry = [registry, repository, digest];
    this.table.forget(entry);
    this.changes.push({ record: false, entry });
  }

  /** The upload of `digest` to `registry` another copy of this run has started and not finished. */
  uploading(registry: string, digest: string): BlobInFlight | undefined {
    return this.inFlight.get(blobKey(registry, digest));
  }

  /**
   * Announces an upload of `digest` to `registry`/`repository`, so that other copies wait for it rather
   * than send the same bytes; call the returned function with whether the blob is now there.
   */
  startUpload(registry: string, repository: string, digest: string): (stored: boolean) => void {
    const key = blobKey(registry, digest);
    let settle!: (stored: boolean) => void;
    const done = new Promise<boolean>((resolve) => (settle = resolve));
    const upload: BlobInFlight = { repository, done };
    this.inFlight.set(key, upload);
    return (stored) => {
      if (this.inFlight.get(key) === upload) this.inFlight.delete(key);
      if (stored) this.record(registry, repository, digest);
      settle(stored);
    };
  }

  /**
   * Merges this run's records into the file as it is now (other runs may have written it meanwhile): the
   * newest records win, the oldest beyond `maxEntries` are dropped. Written to a temporary file and renamed,
   * so a reader never sees half a file; two runs saving at once may lose one's records, which only costs
   * uploads later. A cache that cannot be written is left as it was. When no other run wrote the file since
   * it was read, the merge is this run's own table, and the file is not parsed again (a full file takes tens
   * of milliseconds to parse and index, at the end of every run).
   */
  async save(): Promise<void> {
    if (this.file === undefined || this.changes.length === 0) return;
    const current = await readText(this.file);
    let merged = this.table;
    if (fingerprintOf(current) !== this.readFingerprint) {
      merged = new LocationTable(parseEntries(current), this.maxEntries);
      for (const change of this.changes) {
        if (change.record) merged.record(change.entry);
        else merged.forget(change.entry);
      }
    }
    const text = `${JSON.stringify({ version: fileVersion, entries: merged.entries() })}\n`;
    const temporary = `${this.file}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFile(temporary, text, { mode: 0o600 });
      await rename(temporary, this.file);
    } catch {
      await rm(temporary, { force: true }).catch(() => undefined);
    }
  }
}

/** Entries in recency order (oldest first), indexed by registry and digest. */
class LocationTable {
  private readonly maxEntries: number;
  /** `registry repository digest` → entry; Map order is recency. */
  private readonly byEntry = new Map<string, Entry>();
  /** `registry digest` → repositories, oldest first. */
  private readonly byBlob = new Map<string, string[]>();

  constructor(entries: Entry[], maxEntries: number) {
    this.maxEntries = maxEntries;
    for (const entry of entries) this.record(entry);
  }

  repositories(registry: string, digest: string): string[] {
    return [...(this.byBlob.get(blobKey(registry, digest)) ?? [])];
  }

  record(entry: Entry): void {
    const known = entryKey(entry);
    if (this.byEntry.has(known)) this.forget(entry);
    const [registry, repository, digest] = entry;
    this.byEntry.set(known, entry);
    const key = blobKey(registry, digest);
    const repositories = this.byBlob.get(key) ?? [];
    repositories.push(repository);
    this.byBlob.set(key, repositories);
    if (repositories.length > repositoriesPerBlob) this.forget([registry, repositories[0]!, digest]);
    if (this.byEntry.size > this.maxEntries) {
      const oldest = this.byEntry.values().next().value;
      if (oldest) this.forget(oldest);
    }
  }

  forget(entry: Entry): void {
    if (!this.byEntry.delete(entryKey(entry))) return;
    const [registry, repository, digest] = entry;
    const key = blobKey(registry, digest);
    const remaining = (this.byBlob.get(key) ?? []).filter((held) => held !== repository);
    if (remaining.length > 0) this.byBlob.set(key, remaining);
    else this.byBlob.delete(key);
  }

  entries(): Entry[] {
    return [...this.byEntry.values()];
  }
}

function blobKey(registry: string, digest: string): string {
  return `${registry} ${digest}`;
}

function entryKey([registry, repository, digest]: Entry): string {
  return `${registry} ${repository} ${digest}`;
}

/** A registry host and a repository path as references spell them: no spaces, no control characters. */
const namePattern = /^[\w.:[\]-]+(\/[\w.-]+)*$/;

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

function fingerprintOf(text: string | undefined): string | undefined {
  return text === undefined ? undefined : createHash('sha256').update(text).digest('hex');
}

function parseEntries(text: string | undefined): Entry[] {
  if (text === undefined) return [];
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return [];
  }
  const { version, entries } = (document ?? {}) as { version?: unknown; entries?: unknown };
  if (version !== fileVersion || !Array.isArray(entries)) return [];
  return entries.filter(
    (entry): entry is Entry =>
      Array.isArray(entry) &&
      entry.length === 3 &&
      typeof entry[0] === 'string' &&
      typeof entry[1] === 'string' &&
      typeof entry[2] === 'string' &&
      !entry[0].includes('/') &&
      namePattern.test(entry[0]) &&
      namePattern.test(entry[1]) &&
      isDigest(entry[2]),
  );
}
