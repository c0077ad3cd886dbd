/** `pullsafe gc` and `pullsafe fsck`. */
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { parseDuration } from '../config/duration.ts';
import { PullsafeError } from '../errors/index.ts';
import { checkStorage, collectGarbage, openFsStorage } from '../store/index.ts';
import { exitCodes, formatBytes, printJson, printLines } from './output.ts';

async function openExisting(folder: string) {
  const root = resolve(folder);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new PullsafeError('USAGE', `storage folder not found: ${folder}`, {
      hint: 'pass the folder `pullsafe serve --storage` uses',
    });
  }
  return openFsStorage(root);
}

export async function runGc(flags: {
  storage: string;
  dryRun?: boolean;
  minAge?: string;
  json?: boolean;
}): Promise<number> {
  const minAgeMs = parseDuration(flags.minAge ?? '1h');
  if (minAgeMs === undefined) {
    throw new PullsafeError('USAGE', `--min-age: "${flags.minAge}" is not a duration`, {
      hint: 'for example 0, 30m, 1h',
    });
  }
  const storage = await openExisting(flags.storage);
  const report = await collectGarbage(storage, { dryRun: !!flags.dryRun, minAgeMs });
  if (flags.json) {
    printJson(report);
  } else {
    const verb = report.dryRun ? 'would remove' : 'removed';
    const lines = [
      `${report.repositories} repositories, ${report.manifests} manifests, ${report.blobsKept} blobs in use`,
      `${verb} ${report.blobsSwept.length} unreferenced blobs (${formatBytes(report.bytesSwept)})`,
    ];
    for (const blob of report.blobsSwept) lines.push(`  ${blob.digest}  ${formatBytes(blob.size)}`);
    if (report.blobsTooNew > 0)
      lines.push(`kept ${report.blobsTooNew} unreferenced blobs younger than --min-age`);
    for (const warning of report.warnings) lines.push(`warning: ${warning}`);
    printLines(lines);
  }
  return exitCodes.ok;
}

export async function runFsck(flags: { storage: string; json?: boolean }): Promise<number> {
  const storage = await openExisting(flags.storage);
  const report = await checkStorage(storage);
  if (flags.json) {
    printJson(report);
  } else {
    const lines = [
      `checked ${report.blobsChecked} blobs (${formatBytes(report.bytesChecked)}), ${report.repositories} repositories, ${report.manifests} manifests, ${report.tags} tags`,
    ];
    for (const problem of report.problems) {
      const where = [
        problem.repository,
        problem.tag ? `:${problem.tag}` : '',
        problem.digest ? ` ${problem.digest}` : '',
      ]
        .filter(Boolean)
        .join('');
      lines.push(`${problem.kind}: ${where}: ${problem.message}`);
    }
    lines.push(
      report.problems.length === 0 ? 'storage is consistent' : `${report.problems.length} problems found`,
    );
    printLines(lines);
  }
  return report.problems.length === 0 ? exitCodes.ok : exitCodes.findings;
}
