/** `pullsafe gc` and `pullsafe fsck`. */
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { parseDuration } from '../config/duration.ts';
import { PullsafeError, redact } from '../errors/index.ts';
import {
  GcFence,
  StoreError,
  checkStorage,
  collectGarbage,
  openFsStorage,
  openStorage,
  parseStorageLocation,
  readCacheNamespaces,
  s3Connection,
  type FsckReport,
  type GcReport,
  type Storage,
} from '../store/index.ts';
import type { RedisLinkRemovals } from '../proxy/index.ts';
import {
  exitCodes,
  formatBytes,
  writeJson,
  writeLines,
  type CommandIo,
  type OutputStream,
} from './output.ts';

/** A folder, or s3://BUCKET/PREFIX reached with the AWS SDK's environment (AWS_ENDPOINT_URL_S3, AWS_REGION). */
async function openExisting(value: string, env: Record<string, string | undefined>): Promise<Storage> {
  let location;
  try {
    location = parseStorageLocation(value);
    // Links are read from the bucket every time: gc and fsck judge what is stored now, not what was once seen.
    if (location.kind === 's3') {
      return await openStorage(value, { s3: s3Connection(undefined, env), rememberLinksMs: 0 });
    }
  } catch (error) {
    if (error instanceof StoreError) {
      throw new PullsafeError('USAGE', error.message, {
        hint: 'pass the folder or s3://BUCKET/PREFIX `pullsafe serve --storage` uses',
      });
    }
    throw new PullsafeError(
      'STORAGE_UNAVAILABLE',
      `cannot open storage ${value}: ${(error as Error).message}`,
      {
        hint: 'check the bucket, the AWS credentials, AWS_REGION and AWS_ENDPOINT_URL_S3; see docs/storage.md',
      },
    );
  }
  const root = resolve(location.path);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new PullsafeError('USAGE', `storage folder not found: ${value}`, {
      hint: 'pass the folder `pullsafe serve --storage` uses',
    });
  }
  // gc removes temporaries itself (and lists them; --dry-run removes nothing), fsck only reports them.
  return openFsStorage(root, { removeStaleTemporaries: false });
}

/** `1 problem`, `2 problems`, `0 repositories`. */
function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

export interface GcFlags {
  storage: string;
  dryRun?: boolean;
  minAge?: string;
  deleteUntagged?: boolean;
  /** The Redis the serving replicas share: this run then meets their writes at the gc fence. */
  redis?: string;
  json?: boolean;
}

export async function runGc(flags: GcFlags, io: CommandIo): Promise<number> {
  printGc(await gc(flags, io.env), flags, io.stdout);
  return exitCodes.ok;
}

/** Removes what nothing references (or, with --dry-run, says what it would remove). */
export async function gc(flags: GcFlags, env: Record<string, string | undefined>): Promise<GcReport> {
  const minAgeMs = parseDuration(flags.minAge ?? '1h');
  if (minAgeMs === undefined) {
    throw new PullsafeError('USAGE', `--min-age: "${flags.minAge}" is not a duration`, {
      hint: 'for example 0, 30m, 1h',
    });
  }
  const redis = flags.redis ?? env.PULLSAFE_REDIS;
  if (redis !== undefined && !/^rediss?:\/\/[^/?#\s]+/.test(redis)) {
    throw new PullsafeError('USAGE', `--redis: "${redact(redis)}" is not a Redis URL`, {
      hint: 'redis://HOST:PORT or rediss://HOST:PORT, as serve --redis is given',
    });
  }
  const storage = await openExisting(flags.storage, env);
  // Without the replicas' Redis, writes under way are safe from this run through --min-age alone.
  const coordinator = redis ? await (await import('./serve.ts')).connectRedis(redis) : undefined;
  let links: RedisLinkRemovals | undefined;
  try {
    // Serving replicas remember links: told on the Redis channel, they forget at once those this run removes.
    if (redis && storage.shareLinkRemovals) {
      links = await (await import('./link-channel.ts')).connectLinkRemovals(redis, { listen: false });
      storage.shareLinkRemovals(links);
    }
    return await collectGarbage(storage, {
      dryRun: !!flags.dryRun,
      minAgeMs,
      deleteUntagged: !!flags.deleteUntagged,
      ...(coordinator ? { fence: new GcFence(coordinator) } : {}),
    });
  } finally {
    await coordinator?.close();
    await links?.close();
  }
}

export function printGc(report: GcReport, flags: { json?: boolean }, out: OutputStream): void {
  if (flags.json) {
    writeJson(out, report);
  } else {
    const verb = report.dryRun ? 'would remove' : 'removed';
    const lines = [
      `${count(report.repositories, 'repository', 'repositories')}, ${count(report.manifests, 'manifest')}, ${count(report.blobsKept, 'blob')} in use`,
    ];
    if (report.deleteUntagged) {
      lines.push(`${verb} ${count(report.manifestsRemoved.length, 'untagged manifest')}`);
      for (const { repository, digest } of report.manifestsRemoved) lines.push(`  ${repository}@${digest}`);
      if (report.manifestsTooNew > 0)
        lines.push(
          `kept ${count(report.manifestsTooNew, 'untagged manifest')} linked more recently than --min-age`,
        );
    }
    lines.push(
      `${verb} ${count(report.blobsSwept.length, 'unreferenced blob')} (${formatBytes(report.bytesSwept)})`,
    );
    for (const blob of report.blobsSwept) lines.push(`  ${blob.digest}  ${formatBytes(blob.size)}`);
    if (report.blobsTooNew > 0)
      lines.push(`kept ${count(report.blobsTooNew, 'unreferenced blob')} younger than --min-age`);
    if (report.blobsProtected + report.manifestsProtected > 0) {
      lines.push(
        `kept ${count(report.blobsProtected, 'unreferenced blob')} and ${count(report.manifestsProtected, 'untagged manifest')} that pushes or fills under way need`,
      );
    }
    if (report.danglingLinks.length > 0) {
      lines.push(`${verb} ${count(report.danglingLinks.length, 'link')} to blobs that are no longer stored`);
      for (const { repository, digest } of report.danglingLinks) lines.push(`  ${repository} ${digest}`);
    }
    if (report.temporariesRemoved.length > 0) {
      lines.push(
        `${verb} ${count(report.temporariesRemoved.length, 'temporary file')} of interrupted writes`,
      );
      for (const path of report.temporariesRemoved) lines.push(`  ${path}`);
    }
    for (const warning of report.warnings) lines.push(`warning: ${warning}`);
    writeLines(out, lines);
  }
}

export interface FsckFlags {
  storage: string;
  json?: boolean;
}

export async function runFsck(flags: FsckFlags, io: CommandIo): Promise<number> {
  const report = await fsck(flags, io.env);
  printFsck(report, flags, io.stdout);
  return report.problems.length === 0 ? exitCodes.ok : exitCodes.findings;
}

/** Re-hashes every blob and checks every link; blobs of the pull-through cache may be absent. */
export async function fsck(flags: FsckFlags, env: Record<string, string | undefined>): Promise<FsckReport> {
  const storage = await openExisting(flags.storage, env);
  const namespaces = await readCacheNamespaces(storage);
  return checkStorage(storage, {
    onDemand: (repository) => namespaces.some((namespace) => repository.startsWith(`${namespace}/`)),
  });
}

export function printFsck(report: FsckReport, flags: { json?: boolean }, out: OutputStream): void {
  if (flags.json) {
    writeJson(out, report);
  } else {
    const lines = [
      `checked ${count(report.blobsChecked, 'blob')} (${formatBytes(report.bytesChecked)}), ${count(report.repositories, 'repository', 'repositories')}, ${count(report.manifests, 'manifest')}, ${count(report.tags, 'tag')}`,
    ];
    for (const problem of report.problems) {
      const where = [
        problem.repository && (problem.tag ? `${problem.repository}:${problem.tag}` : problem.repository),
        problem.digest,
        problem.path,
      ]
        .filter(Boolean)
        .join(' ');
      lines.push(`${problem.kind}: ${where}: ${problem.message}`);
    }
    if (report.notCached > 0) {
      lines.push(
        `${count(report.notCached, 'blob or manifest', 'blobs or manifests')} of the pull-through cache not cached (fetched on demand)`,
      );
    }
    lines.push(
      report.problems.length === 0
        ? 'storage is consistent'
        : `${count(report.problems.length, 'problem')} found`,
    );
    writeLines(out, lines);
  }
}
