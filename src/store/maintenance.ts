/**
 * Offline maintenance over any Storage: `gc` (mark every blob a manifest in some repository references,
 * sweep the rest) and `fsck` (re-hash every blob, check every link and tag, list leftover temporaries).
 * Both work through the storage interfaces only, so they run the same against any driver.
 */
import { createHash } from 'node:crypto';
import { digestAlgorithm, type Digest } from '../oci/digest.ts';
import { parseManifest } from '../oci/manifest.ts';
import { isNonDistributable } from '../oci/mediatypes.ts';
import { staleTemporaryMs } from './fsutil.ts';
import type { GcClaim, GcFence } from './gc-fence.ts';
import type { Storage } from './storage.ts';
import type { ManifestLink } from './types.ts';

const manifestReadLimit = 64 * 1024 * 1024;

export interface GcOptions {
  dryRun: boolean;
  /**
   * Blobs written, and untagged manifests linked, more recently than this are kept: a push may be between
   * its layers and its manifest, or between the platform manifests and the index that tags them.
   */
  minAgeMs: number;
  /** Also remove manifests no tag reaches, directly or through indexes, and that refer to no kept manifest. */
  deleteUntagged?: boolean;
  now?: Date;
  /**
   * Shared with the writers (serve and its replicas): what a manifest PUT, mount, upload or fill under way
   * needs is kept whatever its age (see gc-fence.ts). Without it, only `minAgeMs` keeps such writes safe.
   */
  fence?: GcFence;
}

export interface RepositoryDigest {
  repository: string;
  digest: Digest;
}

export interface GcReport {
  dryRun: boolean;
  deleteUntagged: boolean;
  repositories: number;
  manifests: number;
  /** Untagged manifests removed (with `deleteUntagged`). */
  manifestsRemoved: RepositoryDigest[];
  /** Untagged manifests kept only because they, or an index or subject of theirs, are younger than `minAgeMs`. */
  manifestsTooNew: number;
  /** Untagged manifests kept because a write under way needs them (a push of an index naming them). */
  manifestsProtected: number;
  blobsKept: number;
  blobsSwept: { digest: Digest; size: number }[];
  bytesSwept: number;
  blobsTooNew: number;
  /** Unreferenced blobs kept because a write under way needs them (a manifest PUT, mount, upload or fill). */
  blobsProtected: number;
  /** Repository links removed: those to swept blobs and those to blobs already missing. */
  linksRemoved: number;
  /** Links to blobs that were missing before this run (left by an interrupted gc). */
  danglingLinks: RepositoryDigest[];
  /** Temporaries that interrupted writes left, relative to the storage's location. */
  temporariesRemoved: string[];
  warnings: string[];
}

interface ManifestNode {
  link: ManifestLink;
  /** Blobs and child manifests it references; undefined when its content could not be read or parsed. */
  references?: Digest[];
  children?: Digest[];
}

/**
 * Mark and sweep. Every step that removes something runs only after the ones that make it unreachable, so
 * a gc killed at any point leaves a state that the next run finishes: untagged manifests go first (their
 * blobs are then unmarked), then, blob by blob, the repository links of a blob to sweep and the blob itself
 * (a blob left behind is still unmarked next time), then stale temporaries. With a fence, each removal is
 * claimed first and what a write under way protects is kept.
 */
export async function collectGarbage(storage: Storage, options: GcOptions): Promise<GcReport> {
  const startedAt = Date.now();
  const now = options.now ?? new Date();
  const deleteUntagged = options.deleteUntagged ?? false;
  const warnings: string[] = [];
  const repositories = await storage.repositories.listRepositories();
  const { graph, manifests, unsure } = await readManifests(storage, repositories, warnings);

  const report = emptyReport(options.dryRun, deleteUntagged, repositories.length, manifests, warnings);
  const fence = options.dryRun ? undefined : options.fence;
  // A write protected just before this run marked stays protected for protectMs: sweep only within half.
  const sweep: Sweep = {
    dryRun: options.dryRun,
    minAgeMs: options.minAgeMs,
    fence,
    until: fence ? startedAt + fence.protectMs / 2 : Infinity,
    stopped: 0,
  };

  const marked = new Set<string>();
  for (const [repository, nodes] of graph) {
    let kept = new Set<Digest>(nodes.keys());
    if (deleteUntagged && !unsure) {
      kept = await removeUntagged(
        storage,
        repository,
        nodes,
        now.getTime() - options.minAgeMs,
        report,
        sweep,
      );
    }
    for (const digest of kept) {
      marked.add(digest);
      for (const reference of nodes.get(digest)?.references ?? []) marked.add(reference);
    }
  }

  const stored = new Set<string>();
  const candidates: { digest: Digest; size: number }[] = [];
  for await (const blob of storage.blobs.list()) {
    stored.add(blob.digest);
    if (marked.has(blob.digest)) {
      report.blobsKept++;
    } else if (now.getTime() - blob.modified.getTime() < options.minAgeMs) {
      report.blobsTooNew++;
    } else if (!unsure) {
      candidates.push({ digest: blob.digest, size: blob.size });
    }
  }
  if (unsure) {
    warnings.push(
      `nothing was swept${deleteUntagged ? ' and no manifest removed' : ''}: fix or delete the manifests above (pullsafe fsck lists them), then run gc again`,
    );
  }

  const linkedIn = await blobLinks(storage, repositories, candidates, stored, report);
  await sweepBlobs(storage, candidates, linkedIn, report, sweep);
  if (sweep.stopped > 0) {
    warnings.push(
      `stopped sweeping before ${sweep.stopped} removals: the run outlasted the fence's time; the next run removes them`,
    );
  }

  if (storage.temporaries) {
    // A temporary older than a minute is dead whatever --min-age says: writes hold one for milliseconds.
    const age = Math.min(options.minAgeMs, staleTemporaryMs);
    const dead = options.dryRun
      ? (await storage.temporaries.list()).filter((file) => now.getTime() - file.modified.getTime() >= age)
      : await storage.temporaries.remove(age, now);
    report.temporariesRemoved = dead.map((file) => file.path);
  }
  return report;
}

function emptyReport(
  dryRun: boolean,
  deleteUntagged: boolean,
  repositories: number,
  manifests: number,
  warnings: string[],
): GcReport {
  return {
    dryRun,
    deleteUntagged,
    repositories,
    manifests,
    manifestsRemoved: [],
    manifestsTooNew: 0,
    manifestsProtected: 0,
    blobsKept: 0,
    blobsSwept: [],
    bytesSwept: 0,
    blobsTooNew: 0,
    blobsProtected: 0,
    linksRemoved: 0,
    danglingLinks: [],
    temporariesRemoved: [],
    warnings,
  };
}

/** How this run removes things: whether it does, under which fence, until when; `stopped` counts what it left. */
interface Sweep {
  dryRun: boolean;
  minAgeMs: number;
  fence: GcFence | undefined;
  until: number;
  stopped: number;
}

/** Blobs claimed per round trip to the fence. */
const sweepBatch = 32;

/** The fence's claim, or, without a fence, everything deletable for as long as the run takes. */
async function claim(sweep: Sweep, digests: Digest[]): Promise<GcClaim> {
  if (sweep.fence) return sweep.fence.claim(digests, sweep.minAgeMs);
  return { deletable: digests, protected: [], busy: [], deleteBefore: Infinity, release: async () => {} };
}

async function readManifests(
  storage: Storage,
  repositories: string[],
  warnings: string[],
): Promise<{ graph: Map<string, Map<Digest, ManifestNode>>; manifests: number; unsure: boolean }> {
  const graph = new Map<string, Map<Digest, ManifestNode>>();
  let manifests = 0;
  // A manifest that cannot be read or parsed may reference anything: then nothing is swept.
  let unsure = false;
  for (const repository of repositories) {
    const nodes = new Map<Digest, ManifestNode>();
    graph.set(repository, nodes);
    for (const link of await storage.repositories.listManifests(repository)) {
      manifests++;
      const node: ManifestNode = { link };
      nodes.set(link.digest, node);
      let bytes: Buffer;
      try {
        bytes = await storage.blobs.read(link.digest, manifestReadLimit);
      } catch (error) {
        warnings.push(
          `${repository}@${link.digest}: manifest content unreadable: ${(error as Error).message}`,
        );
        unsure = true;
        continue;
      }
      try {
        const parsed = parseManifest(bytes, link.mediaType);
        node.children = parsed.manifests.map((child) => child.digest);
        node.references = [...parsed.blobs.map((blob) => blob.digest), ...node.children];
      } catch (error) {
        warnings.push(`${repository}@${link.digest}: manifest unparseable: ${(error as Error).message}`);
        unsure = true;
      }
    }
  }
  return { graph, manifests, unsure };
}

/**
 * Removes the untagged manifests of a repository that nothing keeps (see `reachable`), indexes before the
 * manifests they name; returns the manifests kept. Those a write under way protects are kept, and so is
 * what they reach.
 */
async function removeUntagged(
  storage: Storage,
  repository: string,
  nodes: Map<Digest, ManifestNode>,
  youngSince: number,
  report: GcReport,
  sweep: Sweep,
): Promise<Set<Digest>> {
  let found = await reachable(storage, repository, nodes, youngSince, []);
  const doomed = [...nodes.keys()]
    .filter((digest) => !found.kept.has(digest))
    .sort((a, b) => Number(!nodes.get(a)?.children?.length) - Number(!nodes.get(b)?.children?.length));
  if (sweep.dryRun || doomed.length === 0) {
    for (const digest of doomed) report.manifestsRemoved.push({ repository, digest });
    report.manifestsTooNew += found.tooNew;
    return found.kept;
  }
  const claimed = await claim(sweep, doomed);
  try {
    report.manifestsProtected += claimed.protected.length;
    const keptAnyway = [...claimed.protected, ...claimed.busy];
    if (keptAnyway.length > 0) found = await reachable(storage, repository, nodes, youngSince, keptAnyway);
    const left: Digest[] = [];
    for (const digest of claimed.deletable) {
      if (found.kept.has(digest)) continue;
      if (left.length > 0 || Date.now() >= Math.min(claimed.deleteBefore, sweep.until)) {
        left.push(digest);
        continue;
      }
      await storage.repositories.unlinkManifest(repository, digest);
      report.manifestsRemoved.push({ repository, digest });
    }
    sweep.stopped += left.length;
    for (const digest of left) found.kept.add(digest);
  } finally {
    await claimed.release();
  }
  report.manifestsTooNew += found.tooNew;
  return found.kept;
}

/**
 * The repositories linking each blob to sweep; links to blobs no longer stored are removed here (a blob
 * may have been stored since the listing: it is looked at again first).
 */
async function blobLinks(
  storage: Storage,
  repositories: string[],
  candidates: { digest: Digest }[],
  stored: Set<string>,
  report: GcReport,
): Promise<Map<string, string[]>> {
  const linkedIn = new Map<string, string[]>(candidates.map((blob) => [blob.digest, []]));
  for (const repository of repositories) {
    for (const digest of await storage.repositories.listBlobLinks(repository)) {
      const linking = linkedIn.get(digest);
      if (linking) {
        linking.push(repository);
        continue;
      }
      if (stored.has(digest) || (await storage.blobs.stat(digest))) continue;
      report.danglingLinks.push({ repository, digest });
      if (report.dryRun || (await storage.repositories.unlinkBlob(repository, digest))) report.linksRemoved++;
    }
  }
  return linkedIn;
}

/** Removes each blob to sweep after its links, in batches claimed from the fence. */
async function sweepBlobs(
  storage: Storage,
  candidates: { digest: Digest; size: number }[],
  linkedIn: Map<string, string[]>,
  report: GcReport,
  sweep: Sweep,
): Promise<void> {
  for (let start = 0; start < candidates.length; start += sweepBatch) {
    const batch = candidates.slice(start, start + sweepBatch);
    if (sweep.dryRun) {
      for (const blob of batch) {
        report.blobsSwept.push(blob);
        report.bytesSwept += blob.size;
        report.linksRemoved += linkedIn.get(blob.digest)?.length ?? 0;
      }
      continue;
    }
    if (Date.now() >= sweep.until) {
      sweep.stopped += candidates.length - start;
      return;
    }
    const claimed = await claim(
      sweep,
      batch.map((blob) => blob.digest),
    );
    report.blobsProtected += claimed.protected.length;
    const deletable = new Set<string>(claimed.deletable);
    try {
      for (const blob of batch) {
        if (!deletable.has(blob.digest)) continue;
        if (Date.now() >= Math.min(claimed.deleteBefore, sweep.until)) {
          sweep.stopped++;
          continue;
        }
        for (const repository of linkedIn.get(blob.digest) ?? []) {
          if (await storage.repositories.unlinkBlob(repository, blob.digest)) report.linksRemoved++;
        }
        await storage.blobs.delete(blob.digest);
        report.blobsSwept.push(blob);
        report.bytesSwept += blob.size;
      }
    } finally {
      await claimed.release();
    }
  }
}

/**
 * The manifests of a repository that gc --delete-untagged keeps: every tagged one, every one in `alsoKeep`,
 * every one linked since `youngSince` (a push in progress; counted in `tooNew`), and, until nothing changes,
 * the children of kept indexes and the manifests whose subject is kept (referrers: signatures, SBOMs, and
 * their own referrers).
 */
async function reachable(
  storage: Storage,
  repository: string,
  nodes: Map<Digest, ManifestNode>,
  youngSince: number,
  alsoKeep: Digest[],
): Promise<{ kept: Set<Digest>; tooNew: number }> {
  const kept = new Set<Digest>();
  const pending: Digest[] = [];
  const keep = (digest: Digest): void => {
    if (!nodes.has(digest) || kept.has(digest)) return;
    kept.add(digest);
    pending.push(digest);
  };
  for (const tag of await storage.repositories.listTags(repository)) {
    const digest = await storage.repositories.getTag(repository, tag);
    if (digest) keep(digest);
  }
  for (const digest of alsoKeep) keep(digest);
  const referrers = new Map<Digest, Digest[]>();
  for (const [digest, node] of nodes) {
    const subject = node.link.subject;
    if (!subject) continue;
    const list = referrers.get(subject);
    if (list) list.push(digest);
    else referrers.set(subject, [digest]);
  }
  const drain = (): void => {
    for (let digest = pending.pop(); digest !== undefined; digest = pending.pop()) {
      for (const child of nodes.get(digest)?.children ?? []) keep(child);
      for (const referrer of referrers.get(digest) ?? []) keep(referrer);
    }
  };
  drain();
  const reachedByTags = kept.size;
  for (const digest of nodes.keys()) {
    if (kept.has(digest)) continue;
    const linkedAt = await storage.repositories.manifestLinkedAt(repository, digest);
    if (linkedAt === undefined || linkedAt.getTime() <= youngSince) continue;
    keep(digest);
    drain();
  }
  return { kept, tooNew: kept.size - reachedByTags };
}

export interface FsckProblem {
  kind:
    | 'corrupt-blob'
    | 'missing-manifest'
    | 'missing-blob'
    | 'dangling-tag'
    | 'invalid-manifest'
    | 'dangling-layer-link'
    | 'temporary-file';
  digest?: string;
  repository?: string;
  tag?: string;
  /** A file relative to the storage's location (temporaries). */
  path?: string;
  message: string;
}

export interface FsckReport {
  /** Blobs and child manifests that cached repositories reference but were never fetched (or were evicted). */
  notCached: number;
  blobsChecked: number;
  bytesChecked: number;
  repositories: number;
  manifests: number;
  tags: number;
  problems: FsckProblem[];
}

export interface FsckOptions {
  /**
   * Repositories of a pull-through cache: their blobs and child manifests are fetched on demand, so one that
   * is not stored is not a problem (a stored one that is corrupt still is).
   */
  onDemand?: (repository: string) => boolean;
}

export async function checkStorage(storage: Storage, options: FsckOptions = {}): Promise<FsckReport> {
  const report: FsckReport = {
    notCached: 0,
    blobsChecked: 0,
    bytesChecked: 0,
    repositories: 0,
    manifests: 0,
    tags: 0,
    problems: [],
  };
  const blobs = await checkBlobs(storage, report);
  const repositories = await storage.repositories.listRepositories();
  report.repositories = repositories.length;
  for (const repository of repositories) {
    await checkRepository(storage, repository, options.onDemand?.(repository) === true, blobs, report);
  }
  for (const file of (await storage.temporaries?.list()) ?? []) {
    report.problems.push({
      kind: 'temporary-file',
      path: file.path,
      message: `left by an interrupted write at ${file.modified.toISOString()}; nothing reads it, and gc removes it`,
    });
  }
  return report;
}

interface CheckedBlobs {
  /** Every blob the storage lists. */
  stored: Set<string>;
  /** The stored blobs whose content hashes to their digest. */
  present: Set<string>;
}

/** Re-hashes every stored blob, counting it in the report and reporting those that do not match their digest. */
async function checkBlobs(storage: Storage, report: FsckReport): Promise<CheckedBlobs> {
  const present = new Set<string>();
  const stored = new Set<string>();
  for await (const blob of storage.blobs.list()) {
    stored.add(blob.digest);
    const hash = createHash(digestAlgorithm(blob.digest));
    let size = 0;
    for await (const chunk of await storage.blobs.open(blob.digest)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const actual = `${digestAlgorithm(blob.digest)}:${hash.digest('hex')}`;
    report.blobsChecked++;
    report.bytesChecked += size;
    if (actual !== blob.digest) {
      report.problems.push({
        kind: 'corrupt-blob',
        digest: blob.digest,
        message: `content hashes to ${actual}`,
      });
    } else {
      present.add(blob.digest);
    }
  }
  return { stored, present };
}

/** One repository's manifests, blob links and tags, in that order. */
async function checkRepository(
  storage: Storage,
  repository: string,
  onDemand: boolean,
  blobs: CheckedBlobs,
  report: FsckReport,
): Promise<void> {
  const links = await storage.repositories.listManifests(repository);
  const linked = new Set<string>(links.map((link) => link.digest));
  for (const link of links) {
    await checkManifest(storage, { repository, onDemand, linked, blobs }, link, report);
  }
  for (const digest of await storage.repositories.listBlobLinks(repository)) {
    if (blobs.stored.has(digest) || (await storage.blobs.stat(digest))) continue;
    report.problems.push({
      kind: 'dangling-layer-link',
      repository,
      digest,
      message: 'the repository links a blob that is not stored (gc removes the link)',
    });
  }
  for (const tag of await storage.repositories.listTags(repository)) {
    report.tags++;
    const digest = await storage.repositories.getTag(repository, tag);
    if (!digest || !linked.has(digest)) {
      report.problems.push({
        kind: 'dangling-tag',
        repository,
        tag,
        message: `tag points to ${digest ?? 'nothing readable'}, which is not in the repository`,
      });
    }
  }
}

interface RepositoryCheck {
  repository: string;
  onDemand: boolean;
  /** The digests of the manifests the repository links. */
  linked: Set<string>;
  blobs: CheckedBlobs;
}

/** One linked manifest: its content is present and parses, and what it references is stored or linked. */
async function checkManifest(
  storage: Storage,
  check: RepositoryCheck,
  link: ManifestLink,
  report: FsckReport,
): Promise<void> {
  const { repository, onDemand, linked } = check;
  const { present, stored } = check.blobs;
  report.manifests++;
  if (!present.has(link.digest)) {
    report.problems.push({
      kind: 'missing-manifest',
      repository,
      digest: link.digest,
      message: 'manifest content is missing or corrupt',
    });
    return;
  }
  let parsed;
  try {
    parsed = parseManifest(await storage.blobs.read(link.digest, manifestReadLimit), link.mediaType);
  } catch (error) {
    report.problems.push({
      kind: 'invalid-manifest',
      repository,
      digest: link.digest,
      message: (error as Error).message,
    });
    return;
  }
  for (const blob of parsed.blobs) {
    if (isNonDistributable(blob.mediaType) && blob.urls?.length) continue;
    if (onDemand && !stored.has(blob.digest)) {
      report.notCached++;
      continue;
    }
    if (!present.has(blob.digest)) {
      report.problems.push({
        kind: 'missing-blob',
        repository,
        digest: blob.digest,
        message: `referenced by manifest ${link.digest} but missing or corrupt`,
      });
    }
  }
  for (const child of parsed.manifests) {
    if (onDemand && !linked.has(child.digest)) {
      report.notCached++;
      continue;
    }
    if (!linked.has(child.digest)) {
      report.problems.push({
        kind: 'missing-manifest',
        repository,
        digest: child.digest,
        message: `referenced by index ${link.digest} but not in the repository`,
      });
    }
  }
}
