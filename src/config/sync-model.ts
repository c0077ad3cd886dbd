/**
 * The model every sync file format is read into (`SyncConfig`: entries of source, selection and target
 * template), and the pieces both formats share: registry keys, paths in messages, credentials.
 */
import { z } from 'zod';
import { InvalidReferenceError, parseReference, type ImageReference } from '../reference/index.ts';
import type { TagFilter } from '../shared/tag-filter.ts';

export type SyncSelection =
  | { kind: 'tag'; tag: string }
  | { kind: 'digest'; digest: string }
  /** Tags of the repository chosen by filters; an empty list is every tag. */
  | { kind: 'filters'; filters: TagFilter[] };

export interface SyncPlanEntry {
  /** The source repository; it carries the tag or digest of a `tag`/`digest` selection, none for `filters`. */
  source: ImageReference;
  selection: SyncSelection;
  /** See the placeholders above; `targetFor` fills it. Empty when loaded with `sourcesOnly`. */
  targetTemplate: string;
  /** `os/arch[/variant]` as written, to parse with src/copy/filters.ts `parsePlatform`; absent = all. */
  platforms?: string[];
  referrers: boolean;
  tlsVerify: boolean;
  credentials?: { username: string; password: string };
}

export interface SyncConfig {
  entries: SyncPlanEntry[];
  quotaReserve: number;
  concurrency: { images: number; blobs: number };
  format: 'pullsafe' | 'skopeo';
  /** Things that load but deserve a look: ignored keys, empty registries, targets shared by sources. */
  warnings: string[];
}

export interface SyncLoadOptions {
  /** `--dest`: required for skopeo's format; replaces the top-level `target` of pullsafe's. */
  dest?: string;
  /** skopeo's `--scoped`: keep the whole source name under `dest`. */
  scoped?: boolean;
  /**
   * For `warm`, which pulls the sources and copies nowhere: targets (`target`, `dest`, `scoped`) are
   * neither needed nor read, and entries' `targetTemplate` is empty.
   */
  sourcesOnly?: boolean;
}

export const DEFAULT_QUOTA_RESERVE = 10;
export const DEFAULT_IMAGE_CONCURRENCY = 2;
export const DEFAULT_BLOB_CONCURRENCY = 4;

export const credentialsSchema = z.strictObject({
  username: z.string().min(1),
  password: z.string(),
});

/** `images[2].tags[0].semver`; keys that are not identifiers are quoted: `["docker.io"].images["a/b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) {
      text += text ? `.${segment}` : segment;
    } else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text || '(top level)';
}

/** Whether a key names a registry host: `localhost`, or a first component with `.`, `:` or `[`. */
export function looksLikeRegistry(key: string): boolean {
  const first = key.split('/')[0] ?? '';
  return first === 'localhost' || first.includes('.') || first.includes(':') || first.startsWith('[');
}

/** The normalised `host[:port]` of a registries key, or `undefined` when it is not one. */
export function registryHost(key: string): string | undefined {
  try {
    const probe = parseReference(`${key}/probe/x`);
    return probe.repository === 'probe/x' && looksLikeRegistry(key) ? probe.registry : undefined;
  } catch {
    return undefined;
  }
}

/** An invalid reference as a problem line (its message and hint); any other error is thrown again. */
export function referenceProblem(error: unknown): string {
  if (error instanceof InvalidReferenceError) return `${error.message} (${error.hint})`;
  throw error;
}
