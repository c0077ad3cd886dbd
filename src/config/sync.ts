/**
 * The file of `pullsafe sync -f FILE [--dest PREFIX]`: which images to copy where. Two formats, one model
 * (`sync-model.ts`): pullsafe's own (`sync-pullsafe.ts`) and skopeo sync's (`sync-skopeo.ts`), told apart
 * by `detectSyncFormat`; targets are filled from templates (`sync-target.ts`).
 *
 * Numbers in the file are read as the text written where a string is expected (`[1.10]` is the tag
 * `1.10`, not 1.1); only `latest`, `reserve`, `images` and `blobs` take numbers. Errors are
 * `PullsafeError('CONFIG_INVALID')` naming the path (`images[2].tags[0].semver: invalid range ">=x"`);
 * credentials are never echoed.
 */
import { readFile } from 'node:fs/promises';
import { isPair, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { PullsafeError, redact } from '../errors/index.ts';
import { describeIssue } from './issues.ts';
import {
  DEFAULT_BLOB_CONCURRENCY,
  DEFAULT_IMAGE_CONCURRENCY,
  DEFAULT_QUOTA_RESERVE,
  formatPath,
  looksLikeRegistry,
  type SyncConfig,
  type SyncLoadOptions,
  type SyncPlanEntry,
} from './sync-model.ts';
import { pullsafeEntries, pullsafeSchema } from './sync-pullsafe.ts';
import { skopeoEntries, skopeoSchema } from './sync-skopeo.ts';

export type { SyncConfig, SyncLoadOptions, SyncPlanEntry } from './sync-model.ts';
export { targetFor } from './sync-target.ts';

const numericKeys = new Set(['latest', 'reserve', 'images', 'blobs']);

/** Reads, detects the format of, and validates a sync file. */
export async function loadSyncConfig(file: string, options: SyncLoadOptions = {}): Promise<SyncConfig> {
  const value = await readSyncFile(file);
  return parseSyncConfig(value, file, options);
}

/** The model of an already-parsed sync file (`source` names it in errors). */
export function parseSyncConfig(value: unknown, source: string, options: SyncLoadOptions = {}): SyncConfig {
  const format = detectSyncFormat(value, source);
  const problems: string[] = [];
  const warnings: string[] = [];
  let entries: SyncPlanEntry[];
  let quotaReserve = DEFAULT_QUOTA_RESERVE;
  let concurrency = { images: DEFAULT_IMAGE_CONCURRENCY, blobs: DEFAULT_BLOB_CONCURRENCY };

  if (format === 'pullsafe') {
    const result = pullsafeSchema.safeParse(value);
    if (!result.success) fail(source, format, issueLines(result.error.issues, pullsafeSchema));
    const parsed = result.data;
    entries = pullsafeEntries(parsed, options, problems, warnings);
    quotaReserve = parsed.quota?.reserve ?? DEFAULT_QUOTA_RESERVE;
    concurrency = {
      images: parsed.concurrency?.images ?? DEFAULT_IMAGE_CONCURRENCY,
      blobs: parsed.concurrency?.blobs ?? DEFAULT_BLOB_CONCURRENCY,
    };
  } else {
    const result = skopeoSchema.safeParse(value);
    if (!result.success) fail(source, format, issueLines(result.error.issues, skopeoSchema));
    entries = skopeoEntries(result.data, options, problems, warnings);
  }

  if (problems.length > 0) fail(source, format, problems);
  return { entries, quotaReserve, concurrency, format, warnings };
}

/**
 * `pullsafe` when the top level has `images` as a list or a `target`; `skopeo` when it has a key that
 * looks like a registry (`.` or `:` in its first component, or `localhost`) holding a mapping; otherwise
 * `pullsafe`, whose validation then names what is wrong.
 */
export function detectSyncFormat(value: unknown, source = 'sync file'): 'pullsafe' | 'skopeo' {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PullsafeError('CONFIG_INVALID', `${source}: the top level must be a mapping of keys`, {
      hint: formatHint,
    });
  }
  const record = value as Record<string, unknown>;
  if (Array.isArray(record.images) || 'target' in record) return 'pullsafe';
  const hostKeyed = Object.entries(record).some(
    ([key, entry]) =>
      looksLikeRegistry(key) && (entry === null || (typeof entry === 'object' && !Array.isArray(entry))),
  );
  return hostKeyed ? 'skopeo' : 'pullsafe';
}

const formatHint =
  "pullsafe's format: images: [{ source, tags, target }] with a top-level target; " +
  "skopeo's: <registry host>: { images: { repo: [tags] } } with --dest PREFIX";

function fail(source: string, format: 'pullsafe' | 'skopeo', lines: string[]): never {
  const shown = lines.slice(0, 10);
  if (lines.length > shown.length) shown.push(`... and ${lines.length - shown.length} more`);
  throw new PullsafeError(
    'CONFIG_INVALID',
    `${source}: invalid sync file (${format} format)\n  ${shown.join('\n  ')}`,
    { hint: formatHint },
  );
}

function issueLines(issues: z.core.$ZodIssue[], root: unknown): string[] {
  return issues.map((issue) => describeIssue(issue, root, formatPath));
}

async function readSyncFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new PullsafeError(
      'CONFIG_UNREADABLE',
      `cannot read sync file ${file}: ${(error as Error).message}`,
      { hint: 'check the path given with -f' },
    );
  }
  const lines = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  const error = document.errors[0];
  if (error) {
    const position = lines.linePos(error.pos[0]);
    throw new PullsafeError(
      'CONFIG_INVALID',
      redact(
        `${file}: not valid YAML or JSON: ${error.message} at line ${position.line}, column ${position.col}`,
      ),
    );
  }
  // Numbers written where text is expected keep their text: tag 1.10 is "1.10", not 1.1.
  visit(document, {
    Scalar(key, node, path) {
      if (typeof node.value !== 'number' || node.source === undefined) return;
      const parent = path[path.length - 1];
      const inList = typeof key === 'number';
      const mapValue =
        key === 'value' &&
        isPair(parent) &&
        isScalar(parent.key) &&
        !numericKeys.has(String(parent.key.value));
      if (inList || mapValue) node.value = node.source;
    },
  });
  let value: unknown;
  try {
    // Anchors reused for every image are common in mirror files; the limit still stops alias bombs.
    value = document.toJS({ maxAliasCount: 10_000 });
  } catch (error) {
    throw new PullsafeError('CONFIG_INVALID', redact(`${file}: ${(error as Error).message}`), {
      hint: 'YAML aliases (*name) may repeat an anchor, but not expand without bound',
    });
  }
  if (value === null || value === undefined) {
    throw new PullsafeError('CONFIG_INVALID', `${file}: the file is empty`, { hint: formatHint });
  }
  return value;
}
