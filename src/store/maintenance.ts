/**
 * Offline maintenance over any Storage: `gc` (mark every blob a manifest in some repository references,
 * sweep the rest) and `fsck` (re-hash every blob, check every link). Both work through the storage
 * interfaces only, so they run the same against any driver.
 */
import { createHash } from 'node:crypto';
import { digestAlgorithm, type Digest } from '../oci/digest.ts';
import { parseManifest } from '../oci/manifest.ts';
import { isNonDistributable } from '../oci/mediatypes.ts';
import type { Storage } from './storage.ts';

const manifestReadLimit = 64 * 1024 * 1024;

export interface GcOptions {
  dryRun: boolean;
  /** Blobs written more recently than this are kept: a push may be between its layers and its manifest. */
  minAgeMs: number;
  now?: Date;
}

export interface GcReport {
  dryRun: boolean;
  repositories: number;
  manifests: number;
  blobsKept: number;
  blobsSwept: { digest: Digest; size: number }[];
  bytesSwept: number;
  blobsTooNew: number;
  linksRemoved: number;
  warnings: string[];
}

export async function collectGarbage(storage: Storage, options: GcOptions): Promise<GcReport> {
  const now = (options.now ?? new Date()).getTime();
  const marked = new Set<string>();
  const warnings: string[] = [];
  const repositories = await storage.repositories.listRepositories();
  let manifests = 0;
  // A manifest that cannot be read or parsed may reference anything: then nothing is swept.
  let unsure = false;
  for (const repository of repositories) {
    for (const link of await storage.repositories.listManifests(repository)) {
      manifests++;
      marked.add(link.digest);
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
        for (const blob of parsed.blobs) marked.add(blob.digest);
        for (const child of parsed.manifests) marked.add(child.digest);
      } catch (error) {
        warnings.push(`${repository}@${link.digest}: manifest unparseable: ${(error as Error).message}`);
        unsure = true;
      }
    }
  }

  const report: GcReport = {
    ...emptyReport(options.dryRun),
    repositories: repositories.length,
    manifests,
    warnings,
  };
  if (unsure) {
    warnings.push(
      'nothing was swept: fix or delete the manifests above (pullsafe fsck lists them), then run gc again',
    );
    return report;
  }
  for await (const blob of storage.blobs.list()) {
    if (marked.has(blob.digest)) {
      report.blobsKept++;
      continue;
    }
    if (now - blob.modified.getTime() < options.minAgeMs) {
      report.blobsTooNew++;
      continue;
    }
    report.blobsSwept.push({ digest: blob.digest, size: blob.size });
    report.bytesSwept += blob.size;
  }
  if (!options.dryRun) {
    const swept = new Set<string>(report.blobsSwept.map((blob) => blob.digest));
    for (const blob of report.blobsSwept) await storage.blobs.delete(blob.digest);
    for (const repository of repositories) {
      for (const digest of await storage.repositories.listBlobLinks(repository)) {
        if (swept.has(digest) && (await storage.repositories.unlinkBlob(repository, digest)))
          report.linksRemoved++;
      }
    }
  }
  return report;
}

function emptyReport(dryRun: boolean): GcReport {
  return {
    dryRun,
    repositories: 0,
    manifests: 0,
    blobsKept: 0,
    blobsSwept: [],
    bytesSwept: 0,
    blobsTooNew: 0,
    linksRemoved: 0,
    warnings: [],
  };
}

export interface FsckProblem {
  kind: 'corrupt-blob' | 'missing-manifest' | 'missing-blob' | 'dangling-tag' | 'invalid-manifest';
  digest?: string;
  repository?: string;
  tag?: string;
  message: string;
}

export interface FsckReport {
  blobsChecked: number;
  bytesChecked: number;
  repositories: number;
  manifests: number;
  tags: number;
  problems: FsckProblem[];
}

export async function checkStorage(storage: Storage): Promise<FsckReport> {
  const report: FsckReport = {
    blobsChecked: 0,
    bytesChecked: 0,
    repositories: 0,
    manifests: 0,
    tags: 0,
    problems: [],
  };
  const present = new Set<string>();
  for await (const blob of storage.blobs.list()) {
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

  const repositories = await storage.repositories.listRepositories();
  report.repositories = repositories.length;
  for (const repository of repositories) {
    const links = await storage.repositories.listManifests(repository);
    const linked = new Set<string>(links.map((link) => link.digest));
    for (const link of links) {
      report.manifests++;
      if (!present.has(link.digest)) {
        report.problems.push({
          kind: 'missing-manifest',
          repository,
          digest: link.digest,
          message: 'manifest content is missing or corrupt',
        });
        continue;
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
        continue;
      }
      for (const blob of parsed.blobs) {
        if (isNonDistributable(blob.mediaType) && blob.urls?.length) continue;
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
  return report;
}
