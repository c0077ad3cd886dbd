/**
 * pullsafe's own sync file format (YAML or JSON, strict: unknown keys are errors naming the closest
 * known key):
 *
 * ```yaml
 * target: registry.example.com/mirror/{repository}   # template (sync-target.ts); required unless every image has one
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
 * `--dest` given with this format replaces the top-level `target`: `PREFIX` becomes `PREFIX/{repository}`,
 * a value with `{` is used as the template itself.
 */
import { z } from 'zod';
import { parseReference, type ImageReference } from '../reference/index.ts';
import { tagFilterProblems, type TagFilter } from '../shared/tag-filter.ts';
import {
  credentialsSchema,
  formatPath,
  referenceProblem,
  registryHost,
  type SyncLoadOptions,
  type SyncPlanEntry,
  type SyncSelection,
} from './sync-model.ts';
import { checkTarget, prefixProblem, sharedTargets, templateProblem } from './sync-target.ts';

const platformPattern = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)?$/;

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

export const pullsafeSchema = z.strictObject({
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

type PullsafeFile = z.infer<typeof pullsafeSchema>;

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

export function pullsafeEntries(
  file: PullsafeFile,
  options: SyncLoadOptions,
  problems: string[],
  warnings: string[],
): SyncPlanEntry[] {
  const sourcesOnly = options.sourcesOnly === true;
  const defaultTarget = defaultTargetOf(file, options, problems, warnings);
  const registries = registrySettings(file, problems);
  const usedRegistries = new Set<string>();

  const defaultPlatforms = platformProblems(file.defaults?.platforms, 'defaults.platforms', problems);
  const entries: SyncPlanEntry[] = [];
  const targets: { target: ImageReference; source: ImageReference; where: string }[] = [];
  let missingTarget = false;

  file.images.forEach((image, index) => {
    const where = `images[${index}]`;
    const selected = imageSelection(image, where, problems, warnings);
    if (!selected) return;
    const { source, selection } = selected;

    const targetTemplate = sourcesOnly ? '' : (image.target ?? defaultTarget.template);
    if (targetTemplate === undefined) {
      missingTarget = true;
      return;
    }
    if (!sourcesOnly && image.target === undefined && !defaultTarget.valid) return;
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

/**
 * The template for images that name no target of their own: `--dest` (a prefix or a template) over the
 * file's `target`; `valid` is false when it has a problem (added to `problems`).
 */
function defaultTargetOf(
  file: PullsafeFile,
  options: SyncLoadOptions,
  problems: string[],
  warnings: string[],
): { template: string | undefined; valid: boolean } {
  const sourcesOnly = options.sourcesOnly === true;
  let template = sourcesOnly ? undefined : file.target;
  let valid = true;
  if (options.scoped && !sourcesOnly) {
    warnings.push(
      "--scoped: applies to skopeo sync files only; in pullsafe's format, name targets with {registry} and {repository}",
    );
  }
  if (options.dest !== undefined && !sourcesOnly) {
    const dest = options.dest.trim().replace(/\/+$/, '');
    template = dest.includes('{') ? dest : `${dest}/{repository}`;
    const problem = dest.includes('{') ? templateProblem(dest) : prefixProblem(dest);
    if (problem) problems.push(`--dest: ${problem}`);
    valid = problem === undefined;
  } else if (template !== undefined) {
    const problem = templateProblem(template);
    if (problem) problems.push(`target: ${problem}`);
    valid = problem === undefined;
  }
  return { template, valid };
}

type RegistrySettings = { tlsVerify?: boolean; credentials?: { username: string; password: string } };

/** The `registries` section by normalised host; a key that is no host[:port] is a problem. */
function registrySettings(file: PullsafeFile, problems: string[]): Map<string, RegistrySettings> {
  const registries = new Map<string, RegistrySettings>();
  for (const [key, settings] of Object.entries(file.registries ?? {})) {
    const host = registryHost(key);
    if (host === undefined) problems.push(`${formatPath(['registries', key])}: not a registry host[:port]`);
    else registries.set(host, settings);
  }
  return registries;
}

/**
 * What an image copies: the tags its filters select, its digest, or its tag (`latest` when it names
 * none), with the source named accordingly. Undefined when the source or filters have a problem.
 */
function imageSelection(
  image: PullsafeFile['images'][number],
  where: string,
  problems: string[],
  warnings: string[],
): { source: ImageReference; selection: SyncSelection } | undefined {
  let source: ImageReference;
  try {
    source = parseReference(image.source);
  } catch (error) {
    problems.push(`${where}.source: ${referenceProblem(error)}`);
    return undefined;
  }
  if (image.tags !== undefined) {
    if (source.tag !== undefined || source.digest !== undefined) {
      problems.push(
        `${where}.tags: the source "${image.source}" names a ${source.digest ? 'digest' : 'tag'}; ` +
          'remove it to select tags with filters, or remove tags',
      );
      return undefined;
    }
    if (image.tags.length === 0) {
      problems.push(`${where}.tags: list at least one filter; for every tag write [{ glob: '*' }]`);
      return undefined;
    }
    const filters = tagFilters(image.tags, where, problems);
    return { source: stripSelection(source), selection: { kind: 'filters', filters } };
  }
  if (source.digest !== undefined) {
    const digest = source.digest;
    if (source.tag !== undefined) {
      warnings.push(
        `${where}.source: "${image.source}" has a tag and a digest; the digest is copied, the tag ignored`,
      );
      source = { ...stripSelection(source), digest };
    }
    return { source, selection: { kind: 'digest', digest } };
  }
  const tag = source.tag ?? 'latest';
  return { source: { ...source, tag }, selection: { kind: 'tag', tag } };
}

/** An image's valid tag filters; each problem (and a second `latest`) is added to `problems`. */
function tagFilters(
  written: NonNullable<PullsafeFile['images'][number]['tags']>,
  where: string,
  problems: string[],
): TagFilter[] {
  const filters: TagFilter[] = [];
  let latestSeen = false;
  written.forEach((filter, filterIndex) => {
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
  return filters;
}
