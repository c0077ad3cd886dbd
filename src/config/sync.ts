/**
 * The file of `pullsafe sync -f FILE [--dest PREFIX]`: which images to copy where. Two formats, one model.
 *
 * pullsafe's own (YAML or JSON, strict: unknown keys are errors naming the closest known key):
 *
 * ```yaml
 * target: registry.example.com/mirror/{repository}   # template, see below; required unless every image has one
 * defaults: { platforms: [linux/amd64, linux/arm64], referrers: false }
 * registries:                       # per source registry, optional
 *   registry.internal:5000: { tlsVerify: false, credentials: { username: u, password: p } }
 * images:
 *   - source: nginx                 # as users write it; no tag and no digest means :latest, as docker pull
 *     tags: [{ semver: '>=1.25 <2' }, { latest: 3 }]   # filters; the source then names no tag or digest
 *   - source: ghcr.io/org/app
 *     tags: [{ glob: 'v1.*' }]
 *     target: registry.example.com/apps/app              # per-image template
 *   - source: redis:7.2             # exactly that tag
 *   - source: alpine@sha256:...     # exactly that manifest (a tag next to the digest is ignored)
 * quota: { reserve: 10 }            # stop when Docker Hub's remaining pulls would drop below this
 * concurrency: { images: 2, blobs: 4 }
 * ```
 *
 * Target templates are `name[:tag]` with placeholders filled from the source:
 * - `{registry}`: the source registry as normalised (`docker.io`, `ghcr.io`; a `:port` makes the result
 *   invalid inside a repository path);
 * - `{repository}`: the whole normalised repository path, `library/` kept for Docker Hub's official images
 *   (`nginx` is `library/nginx`), as ECR pull-through caches lay them out;
 * - `{name}`: the last path component (`nginx`);
 * - `{tag}`: the source tag, only in the tag part after `:` (e.g. `mirror/{repository}:{tag}-amd64`).
 * Without a tag part the target keeps the source's tag, or its digest for a digest source. A tag part
 * without `{tag}` is a fixed tag, allowed only for an image that selects one tag or one digest. A template
 * never names a digest. `--dest` given with this format replaces the top-level `target`: `PREFIX` becomes
 * `PREFIX/{repository}`, a value with `{` is used as the template itself.
 *
 * skopeo sync's YAML source format: top-level keys are registries (`host[:port][/namespace]`), each with
 * `images: { repo: [tags or digests] }` (an empty list or no value = every tag), `images-by-tag-regex:
 * { repo: regex }` (matching anywhere in the tag, as Go's MatchString), `images-by-semver: { repo: range }`
 * (Masterminds syntax; commas are ANDs), `credentials: { username, password }`, `tls-verify`, and
 * `cert-dir` (accepted, warned about, not used). The target comes from `--dest PREFIX`, the DESTINATION of
 * `skopeo sync --src yaml --dest docker FILE DESTINATION`, named as skopeo names it: the last path component
 * of the source with its tag or digest under PREFIX (`docker.io/library/nginx:1.25` → `PREFIX/nginx:1.25`),
 * or with `scoped` (skopeo's `--scoped`) the whole normalised source (`PREFIX/docker.io/library/nginx:1.25`).
 *
 * Numbers in the file are read as the text written where a string is expected (`[1.10]` is the tag
 * `1.10`, not 1.1); only `latest`, `reserve`, `images` and `blobs` take numbers. Errors are
 * `PullsafeError('CONFIG_INVALID')` naming the path (`images[2].tags[0].semver: invalid range ">=x"`);
 * credentials are never echoed.
 */
import { readFile } from 'node:fs/promises';
import { isPair, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import { z } from 'zod';
import { PullsafeError, redact } from '../errors/index.ts';
import {
  semverRangeProblem,
  tagFilterProblems,
  tagRegexProblem,
  type TagFilter,
} from '../shared/tag-filter.ts';
import {
  InvalidReferenceError,
  formatReference,
  parseReference,
  type ImageReference,
} from '../reference/index.ts';
import { closest, describeIssue } from './issues.ts';

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

const placeholders = ['registry', 'repository', 'name', 'tag'] as const;
const numericKeys = new Set(['latest', 'reserve', 'images', 'blobs']);
const platformPattern = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)?$/;

const credentialsSchema = z.strictObject({
  username: z.string().min(1),
  password: z.string(),
});

const tagFilterSchema = z.strictObject({
  exact: z.array(z.string()).optional().describe('These tags'),
  glob: z.string().optional().describe('* any run of characters, ? one character; the whole tag'),
  regex: z.string().optional().describe('Regular expression matching the whole tag'),
  semver: z.string().optional().describe('Range such as ">=1.25 <2" over tags read as versions'),
  latest: z.number().optional().describe('The N highest versions of what the other filters select'),
});

const platformsSchema = z
  .union([z.literal('all'), z.array(z.string()).min(1)])
  .describe('os/arch[/variant] list, or "all"');

const imageSchema = z.strictObject({
  source: z.string().describe('Image reference as users write it'),
  tags: z.array(tagFilterSchema).optional(),
  target: z.string().optional().describe('Target template for this image'),
  platforms: platformsSchema.optional(),
  referrers: z.boolean().optional(),
});

const pullsafeSchema = z.strictObject({
  target: z.string().optional(),
  defaults: z
    .strictObject({ platforms: platformsSchema.optional(), referrers: z.boolean().optional() })
    .optional(),
  registries: z
    .record(
      z.string(),
      z.strictObject({ tlsVerify: z.boolean().optional(), credentials: credentialsSchema.optional() }),
    )
    .optional(),
  images: z.array(imageSchema).min(1),
  quota: z.strictObject({ reserve: z.number().int().nonnegative().optional() }).optional(),
  concurrency: z
    .strictObject({
      images: z.number().int().min(1).max(32).optional(),
      blobs: z.number().int().min(1).max(64).optional(),
    })
    .optional(),
});

/** skopeo reads its files with YAML 1.1's booleans for bool fields (yes/no, on/off), so these do too. */
const yaml11Boolean = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const word = value.toLowerCase();
  if (['y', 'yes', 'on', 'true'].includes(word)) return true;
  if (['n', 'no', 'off', 'false'].includes(word)) return false;
  return value;
}, z.boolean());

const skopeoRegistrySchema = z.strictObject({
  images: z.record(z.string(), z.array(z.string()).nullable()).nullable().optional(),
  'images-by-tag-regex': z.record(z.string(), z.string()).nullable().optional(),
  'images-by-semver': z.record(z.string(), z.string()).nullable().optional(),
  credentials: credentialsSchema.optional(),
  'tls-verify': yaml11Boolean.optional(),
  'cert-dir': z.string().optional(),
});

const skopeoSchema = z.record(z.string(), skopeoRegistrySchema.nullable());

type PullsafeFile = z.infer<typeof pullsafeSchema>;
type SkopeoFile = z.infer<typeof skopeoSchema>;

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

/**
 * The target of one image of `entry`: the template filled for `tag` (or, without a tag, for `digest`).
 * The result is a parsed, valid reference; a template that does not give one is
 * `PullsafeError('CONFIG_INVALID')`.
 */
export function targetFor(
  entry: SyncPlanEntry,
  tagOrDigest: { tag?: string; digest?: string },
): ImageReference {
  const template = parseTemplate(entry.targetTemplate);
  if (typeof template === 'string') {
    throw new PullsafeError('CONFIG_INVALID', `target "${entry.targetTemplate}": ${template}`, {
      hint: templateHint,
    });
  }
  const { tag, digest } = tagOrDigest;
  if (tag === undefined && digest === undefined) {
    throw new PullsafeError('INTERNAL', 'targetFor needs a tag or a digest');
  }
  let text = fill(template.name, entry.source, undefined);
  if (tag !== undefined) {
    text += `:${template.tag === undefined ? tag : fill(template.tag, entry.source, tag)}`;
  } else if (template.tag !== undefined) {
    if (template.tag.includes('{tag}')) {
      throw new PullsafeError(
        'CONFIG_INVALID',
        `target "${entry.targetTemplate}" uses {tag}, but ${formatReference(entry.source)} is copied by digest`,
        { hint: templateHint },
      );
    }
    text += `:${template.tag}`;
  } else {
    text += `@${digest}`;
  }
  try {
    return parseReference(text);
  } catch (error) {
    if (!(error instanceof InvalidReferenceError)) throw error;
    throw new PullsafeError(
      'CONFIG_INVALID',
      `target "${entry.targetTemplate}" for ${formatReference(entry.source)} gives "${text}": ${reason(error)}`,
      { hint: error.hint },
    );
  }
}

const formatHint =
  "pullsafe's format: images: [{ source, tags, target }] with a top-level target; " +
  "skopeo's: <registry host>: { images: { repo: [tags] } } with --dest PREFIX";
const templateHint =
  'a target is a reference with placeholders {registry} {repository} {name} and, after ":", {tag}; ' +
  'e.g. registry.example.com/mirror/{repository}';

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

function looksLikeRegistry(key: string): boolean {
  const first = key.split('/')[0] ?? '';
  return first === 'localhost' || first.includes('.') || first.includes(':') || first.startsWith('[');
}

function reason(error: InvalidReferenceError): string {
  return error.message.replace(/^invalid image reference "(?:[^"\\]|\\.)*": /, '');
}

function referenceProblem(error: unknown): string {
  if (error instanceof InvalidReferenceError) return `${error.message} (${error.hint})`;
  throw error;
}

function stripSelection(reference: ImageReference): ImageReference {
  return { registry: reference.registry, repository: reference.repository, original: reference.original };
}

function platformProblems(
  platforms: 'all' | string[] | undefined,
  path: string,
  problems: string[],
): string[] | undefined {
  if (platforms === undefined || platforms === 'all') return undefined;
  platforms.forEach((platform, index) => {
    if (!platformPattern.test(platform.trim())) {
      problems.push(
        `${path}[${index}]: "${platform}" is not os/arch[/variant] (e.g. linux/amd64, linux/arm/v7)`,
      );
    }
  });
  return platforms.map((platform) => platform.trim());
}

interface Template {
  /** The part before the tag, with {registry} {repository} {name}. */
  name: string;
  /** The part after `:`, with {tag} or fixed. */
  tag?: string;
}

/** The template split into name and tag parts, or what is wrong with it. */
function parseTemplate(text: string): Template | string {
  if (text.trim() === '') return 'the template is empty';
  if (text.includes('@')) return 'a target cannot name a digest; a copy keeps the source digest';
  const known: readonly string[] = placeholders;
  const word = [...text.matchAll(/\{([^{}]*)\}/g)]
    .map((match) => match[1] ?? '')
    .find((key) => !known.includes(key));
  if (word !== undefined) {
    const suggestion =
      closest(word, [...placeholders]) ??
      (word ? placeholders.find((name) => name.startsWith(word)) : undefined);
    return (
      `unknown placeholder {${word}}` +
      (suggestion ? ` (did you mean {${suggestion}}?)` : '') +
      `; known: ${placeholders.map((name) => `{${name}}`).join(' ')}`
    );
  }
  const stripped = text.replace(/\{[^{}]*\}/g, 'x');
  if (/[{}]/.test(stripped)) return 'unbalanced "{" or "}"';
  const slash = text.lastIndexOf('/');
  const colon = text.indexOf(':', slash + 1);
  const name = colon === -1 ? text : text.slice(0, colon);
  const tag = colon === -1 ? undefined : text.slice(colon + 1);
  if (name.includes('{tag}')) return '{tag} may appear only in the tag part, after ":"';
  if (tag === '') return 'the tag after ":" is empty';
  return tag === undefined ? { name } : { name, tag };
}

function templateProblem(text: string): string | undefined {
  const template = parseTemplate(text);
  return typeof template === 'string' ? `"${text}": ${template}` : undefined;
}

/** What is wrong with a `--dest` prefix (`registry[:port][/path]`, no tag, digest or placeholder). */
function prefixProblem(dest: string): string | undefined {
  if (dest === '') return 'the prefix is empty';
  if (/[{}@]/.test(dest)) return `"${dest}" must be a plain prefix, registry[:port][/path]`;
  try {
    const probe = parseReference(`${dest}/probe`);
    if (probe.tag !== undefined) return `"${dest}" must be a plain prefix, registry[:port][/path]`;
  } catch (error) {
    if (!(error instanceof InvalidReferenceError)) throw error;
    return `"${dest}" is not a registry[:port][/path] prefix: ${reason(error)} (${error.hint})`;
  }
  return undefined;
}

function fill(part: string, source: ImageReference, tag: string | undefined): string {
  return part.replace(/\{(registry|repository|name|tag)\}/g, (_match, key: string) => {
    if (key === 'registry') return source.registry;
    if (key === 'repository') return source.repository;
    if (key === 'name') return source.repository.slice(source.repository.lastIndexOf('/') + 1);
    return tag ?? '';
  });
}

/** Checks the template against one entry: it parses, fits the selection, and names another repository. */
function checkTarget(entry: SyncPlanEntry, where: string, problems: string[]): ImageReference | undefined {
  const template = parseTemplate(entry.targetTemplate);
  if (typeof template === 'string') {
    problems.push(`${where}: ${template}`);
    return undefined;
  }
  const selection = entry.selection;
  if (template.tag !== undefined && !template.tag.includes('{tag}') && selection.kind === 'filters') {
    problems.push(
      `${where}: the fixed tag ":${template.tag}" would give every selected tag the same name; use {tag}`,
    );
    return undefined;
  }
  if (template.tag?.includes('{tag}') && selection.kind === 'digest') {
    problems.push(`${where}: {tag} needs a tag, but the source is a digest`);
    return undefined;
  }
  let target: ImageReference;
  try {
    target =
      selection.kind === 'digest'
        ? targetFor(entry, { digest: selection.digest })
        : targetFor(entry, { tag: selection.kind === 'tag' ? selection.tag : 'latest' });
  } catch (error) {
    if (!(error instanceof PullsafeError)) throw error;
    problems.push(`${where}: ${error.message}`);
    return undefined;
  }
  if (target.registry === entry.source.registry && target.repository === entry.source.repository) {
    problems.push(`${where}: the target ${target.registry}/${target.repository} is the source itself`);
    return undefined;
  }
  return target;
}

/** Different source repositories sent to one target repository: tags of one would overwrite the other's. */
function sharedTargets(
  targets: { target: ImageReference; source: ImageReference; where: string }[],
): string[] {
  const byTarget = new Map<string, { source: string; where: string }>();
  const lines: string[] = [];
  for (const { target, source, where } of targets) {
    const key = `${target.registry}/${target.repository}`;
    const from = `${source.registry}/${source.repository}`;
    const seen = byTarget.get(key);
    if (!seen) byTarget.set(key, { source: from, where });
    else if (seen.source !== from) {
      lines.push(`${where}: ${from} and ${seen.source} (${seen.where}) both go to ${key}`);
    }
  }
  return lines;
}

function pullsafeEntries(
  file: PullsafeFile,
  options: SyncLoadOptions,
  problems: string[],
  warnings: string[],
): SyncPlanEntry[] {
  const sourcesOnly = options.sourcesOnly === true;
  let defaultTarget = sourcesOnly ? undefined : file.target;
  let defaultTargetValid = true;
  if (options.scoped && !sourcesOnly) {
    warnings.push(
      "--scoped: applies to skopeo sync files only; in pullsafe's format, name targets with {registry} and {repository}",
    );
  }
  if (options.dest !== undefined && !sourcesOnly) {
    const dest = options.dest.trim().replace(/\/+$/, '');
    defaultTarget = dest.includes('{') ? dest : `${dest}/{repository}`;
    const problem = dest.includes('{') ? templateProblem(dest) : prefixProblem(dest);
    if (problem) problems.push(`--dest: ${problem}`);
    defaultTargetValid = problem === undefined;
  } else if (defaultTarget !== undefined) {
    const problem = templateProblem(defaultTarget);
    if (problem) problems.push(`target: ${problem}`);
    defaultTargetValid = problem === undefined;
  }

  const registries = new Map<
    string,
    { tlsVerify?: boolean; credentials?: { username: string; password: string } }
  >();
  for (const [key, settings] of Object.entries(file.registries ?? {})) {
    const host = registryHost(key);
    if (host === undefined) problems.push(`${formatPath(['registries', key])}: not a registry host[:port]`);
    else registries.set(host, settings);
  }
  const usedRegistries = new Set<string>();

  const defaultPlatforms = platformProblems(file.defaults?.platforms, 'defaults.platforms', problems);
  const entries: SyncPlanEntry[] = [];
  const targets: { target: ImageReference; source: ImageReference; where: string }[] = [];
  let missingTarget = false;

  file.images.forEach((image, index) => {
    const where = `images[${index}]`;
    let source: ImageReference;
    try {
      source = parseReference(image.source);
    } catch (error) {
      problems.push(`${where}.source: ${referenceProblem(error)}`);
      return;
    }

    let selection: SyncSelection;
    if (image.tags !== undefined) {
      if (source.tag !== undefined || source.digest !== undefined) {
        problems.push(
          `${where}.tags: the source "${image.source}" names a ${source.digest ? 'digest' : 'tag'}; ` +
            'remove it to select tags with filters, or remove tags',
        );
        return;
      }
      if (image.tags.length === 0) {
        problems.push(`${where}.tags: list at least one filter; for every tag write [{ glob: '*' }]`);
        return;
      }
      const filters: TagFilter[] = [];
      let latestSeen = false;
      image.tags.forEach((filter, filterIndex) => {
        const filterPath = `${where}.tags[${filterIndex}]`;
        const found = tagFilterProblems(filter);
        for (const [relative, message] of found) {
          problems.push(`${filterPath}${relative ? `.${relative}` : ''}: ${message}`);
        }
        if (found.length > 0) return;
        if (filter.latest !== undefined) {
          if (latestSeen) problems.push(`${filterPath}.latest: one latest filter per image`);
          latestSeen = true;
        }
        filters.push(filter as TagFilter);
      });
      selection = { kind: 'filters', filters };
      source = stripSelection(source);
    } else if (source.digest !== undefined) {
      const digest = source.digest;
      if (source.tag !== undefined) {
        warnings.push(
          `${where}.source: "${image.source}" has a tag and a digest; the digest is copied, the tag ignored`,
        );
        source = { ...stripSelection(source), digest };
      }
      selection = { kind: 'digest', digest };
    } else {
      const tag = source.tag ?? 'latest';
      source = { ...source, tag };
      selection = { kind: 'tag', tag };
    }

    const targetTemplate = sourcesOnly ? '' : (image.target ?? defaultTarget);
    if (targetTemplate === undefined) {
      missingTarget = true;
      return;
    }
    if (!sourcesOnly && image.target === undefined && !defaultTargetValid) return;
    const platforms =
      image.platforms === undefined
        ? defaultPlatforms
        : platformProblems(image.platforms, `${where}.platforms`, problems);
    const registry = registries.get(source.registry);
    if (registry) usedRegistries.add(source.registry);
    const entry: SyncPlanEntry = {
      source,
      selection,
      targetTemplate,
      referrers: image.referrers ?? file.defaults?.referrers ?? false,
      tlsVerify: registry?.tlsVerify ?? true,
    };
    if (platforms !== undefined) entry.platforms = platforms;
    if (registry?.credentials) entry.credentials = { ...registry.credentials };
    if (!sourcesOnly) {
      const target = checkTarget(entry, image.target !== undefined ? `${where}.target` : where, problems);
      if (target) targets.push({ target, source, where });
    }
    entries.push(entry);
  });

  if (missingTarget) {
    problems.push('target: missing; give a top-level target (or --dest), or a target for every image');
  }
  problems.push(...sharedTargets(targets));
  for (const host of registries.keys()) {
    if (!usedRegistries.has(host))
      warnings.push(`${formatPath(['registries', host])}: no image comes from this registry`);
  }
  return entries;
}

/** The normalised `host[:port]` of a registries key, or `undefined` when it is not one. */
function registryHost(key: string): string | undefined {
  try {
    const probe = parseReference(`${key}/probe/x`);
    return probe.repository === 'probe/x' && looksLikeRegistry(key) ? probe.registry : undefined;
  } catch {
    return undefined;
  }
}

function skopeoEntries(
  file: SkopeoFile,
  options: SyncLoadOptions,
  problems: string[],
  warnings: string[],
): SyncPlanEntry[] {
  let targetTemplate: string | undefined;
  if (options.sourcesOnly) {
    targetTemplate = '';
  } else if (options.dest === undefined || options.dest.trim() === '') {
    problems.push(
      "--dest: skopeo's format names no target; pass --dest PREFIX (skopeo sync's DESTINATION), " +
        'e.g. --dest registry.example.com/mirror',
    );
  } else {
    const dest = options.dest.trim().replace(/\/+$/, '');
    const problem = prefixProblem(dest);
    if (problem) problems.push(`--dest: ${problem}`);
    else targetTemplate = options.scoped ? `${dest}/{registry}/{repository}` : `${dest}/{name}`;
  }

  const entries: SyncPlanEntry[] = [];
  const targets: { target: ImageReference; source: ImageReference; where: string }[] = [];
  for (const [key, settings] of Object.entries(file)) {
    const registryPath = formatPath([key]);
    if (!looksLikeRegistry(key) || registryHost(key.split('/')[0] ?? '') === undefined) {
      problems.push(
        `${registryPath}: not a registry; skopeo's format has registry hosts (with "." or ":", or localhost) ` +
          'at the top level',
      );
      continue;
    }
    const images = settings?.images ?? {};
    const byRegex = settings?.['images-by-tag-regex'] ?? {};
    const bySemver = settings?.['images-by-semver'] ?? {};
    if (Object.keys(images).length + Object.keys(byRegex).length + Object.keys(bySemver).length === 0) {
      warnings.push(`${registryPath}: no images listed; nothing is copied from this registry`);
      continue;
    }
    if (settings?.['cert-dir'] !== undefined) {
      warnings.push(
        `${registryPath}.cert-dir: not supported and ignored; add the CA to the system trust store ` +
          '(or NODE_EXTRA_CA_CERTS)',
      );
    }
    const common = {
      tlsVerify: settings?.['tls-verify'] ?? true,
      referrers: false,
      ...(settings?.credentials ? { credentials: { ...settings.credentials } } : {}),
    };

    const add = (where: string, source: ImageReference, selection: SyncSelection): void => {
      if (targetTemplate === undefined) return;
      const entry: SyncPlanEntry = { source, selection, targetTemplate, ...common };
      if (!options.sourcesOnly) {
        const target = checkTarget(entry, where, problems);
        if (target) targets.push({ target, source, where });
      }
      entries.push(entry);
    };
    const repository = (repo: string, where: string): ImageReference | undefined => {
      try {
        const parsed = parseReference(`${key}/${repo}`);
        if (parsed.tag !== undefined || parsed.digest !== undefined) {
          problems.push(`${where}: name a repository; list tags or digests under it`);
          return undefined;
        }
        return parsed;
      } catch (error) {
        problems.push(`${where}: ${referenceProblem(error)}`);
        return undefined;
      }
    };

    for (const [repo, refs] of Object.entries(images)) {
      const where = formatPath([key, 'images', repo]);
      const source = repository(repo, where);
      if (!source) continue;
      if (!refs || refs.length === 0) {
        add(where, source, { kind: 'filters', filters: [] });
        continue;
      }
      refs.forEach((ref, index) => {
        const refWhere = `${where}[${index}]`;
        const isDigest = ref.includes(':');
        try {
          const parsed = parseReference(`${source.original}${isDigest ? '@' : ':'}${ref}`);
          add(
            refWhere,
            parsed,
            isDigest
              ? { kind: 'digest', digest: parsed.digest ?? ref }
              : { kind: 'tag', tag: parsed.tag ?? ref },
          );
        } catch (error) {
          problems.push(`${refWhere}: ${referenceProblem(error)}`);
        }
      });
    }
    for (const [repo, written] of Object.entries(byRegex)) {
      const where = formatPath([key, 'images-by-tag-regex', repo]);
      // Go's leading flag group `(?i)` (skopeo's regexes are Go's) is a modifier group in JavaScript.
      const flags = /^\(\?([ims]+)\)/.exec(written);
      const pattern = flags ? `(?${flags[1]}:${written.slice(flags[0].length)})` : written;
      const source = repository(repo, where);
      if (!source) continue;
      const problem = tagRegexProblem(pattern, false);
      if (problem) problems.push(`${where}: ${problem}`);
      // skopeo matches anywhere in the tag; a TagFilter regex matches the whole tag.
      else add(where, source, { kind: 'filters', filters: [{ regex: `.*(?:${pattern}).*` }] });
    }
    for (const [repo, range] of Object.entries(bySemver)) {
      const where = formatPath([key, 'images-by-semver', repo]);
      const source = repository(repo, where);
      if (!source) continue;
      // Masterminds separates ANDed comparisons with commas or spaces; node-semver with spaces only.
      const converted = range.replace(/\s*,\s*/g, ' ').trim();
      const problem = semverRangeProblem(converted);
      if (problem)
        problems.push(`${where}: ${problem.replace(JSON.stringify(converted), JSON.stringify(range))}`);
      else add(where, source, { kind: 'filters', filters: [{ semver: converted }] });
    }
  }
  const shared = sharedTargets(targets);
  if (shared.length > 0) {
    warnings.push(...shared.map((line) => `${line}${options.scoped ? '' : ' (--scoped keeps them apart)'}`));
  }
  return entries;
}
