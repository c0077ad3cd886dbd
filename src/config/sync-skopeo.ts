/**
 * skopeo sync's YAML source format, which pullsafe sync reads too: top-level keys are registries
 * (`host[:port][/namespace]`), each with `images: { repo: [tags or digests] }` (an empty list or no value =
 * every tag), `images-by-tag-regex: { repo: regex }` (matching anywhere in the tag, as Go's MatchString),
 * `images-by-semver: { repo: range }` (Masterminds syntax; commas are ANDs), `credentials: { username,
 * password }`, `tls-verify`, and `cert-dir` (accepted, warned about, not used). The target comes from
 * `--dest PREFIX`, the DESTINATION of `skopeo sync --src yaml --dest docker FILE DESTINATION`, named as
 * skopeo names it: the last path component of the source with its tag or digest under PREFIX
 * (`docker.io/library/nginx:1.25` → `PREFIX/nginx:1.25`), or with `scoped` (skopeo's `--scoped`) the whole
 * normalised source (`PREFIX/docker.io/library/nginx:1.25`).
 */
import { z } from 'zod';
import { parseReference, type ImageReference } from '../reference/index.ts';
import { semverRangeProblem, tagRegexProblem } from '../shared/tag-filter.ts';
import {
  credentialsSchema,
  formatPath,
  looksLikeRegistry,
  referenceProblem,
  registryHost,
  type SyncLoadOptions,
  type SyncPlanEntry,
  type SyncSelection,
} from './sync-model.ts';
import { checkTarget, prefixProblem, sharedTargets } from './sync-target.ts';

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

export const skopeoSchema = z.record(z.string(), skopeoRegistrySchema.nullable());

type SkopeoFile = z.infer<typeof skopeoSchema>;

export function skopeoEntries(
  file: SkopeoFile,
  options: SyncLoadOptions,
  problems: string[],
  warnings: string[],
): SyncPlanEntry[] {
  const targetTemplate = skopeoTargetTemplate(options, problems);
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

    const add: AddEntry = (where, source, selection) => {
      if (targetTemplate === undefined) return;
      const entry: SyncPlanEntry = { source, selection, targetTemplate, ...common };
      if (!options.sourcesOnly) {
        const target = checkTarget(entry, where, problems);
        if (target) targets.push({ target, source, where });
      }
      entries.push(entry);
    };
    addListedImages(key, images, add, problems);
    addImagesByRegex(key, byRegex, add, problems);
    addImagesBySemver(key, bySemver, add, problems);
  }
  const shared = sharedTargets(targets);
  if (shared.length > 0) {
    warnings.push(...shared.map((line) => `${line}${options.scoped ? '' : ' (--scoped keeps them apart)'}`));
  }
  return entries;
}

/** Adds one entry of the plan (unless the target is unusable), `where` naming it in problems. */
type AddEntry = (where: string, source: ImageReference, selection: SyncSelection) => void;

/**
 * The target template every entry gets, from `--dest` (skopeo sync's DESTINATION; the whole source under
 * it with `scoped`); undefined, with a problem, when `--dest` is missing or not a prefix.
 */
function skopeoTargetTemplate(options: SyncLoadOptions, problems: string[]): string | undefined {
  if (options.sourcesOnly) return '';
  if (options.dest === undefined || options.dest.trim() === '') {
    problems.push(
      "--dest: skopeo's format names no target; pass --dest PREFIX (skopeo sync's DESTINATION), " +
        'e.g. --dest registry.example.com/mirror',
    );
    return undefined;
  }
  const dest = options.dest.trim().replace(/\/+$/, '');
  const problem = prefixProblem(dest);
  if (problem) {
    problems.push(`--dest: ${problem}`);
    return undefined;
  }
  return options.scoped ? `${dest}/{registry}/{repository}` : `${dest}/{name}`;
}

/** `key/repo` as a repository (no tag, no digest); undefined, with a problem, otherwise. */
function registryRepository(
  key: string,
  repo: string,
  where: string,
  problems: string[],
): ImageReference | undefined {
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
}

/** `images`: each listed tag or digest, or every tag of a repository listed with none. */
function addListedImages(
  key: string,
  images: Record<string, string[] | null>,
  add: AddEntry,
  problems: string[],
): void {
  for (const [repo, refs] of Object.entries(images)) {
    const where = formatPath([key, 'images', repo]);
    const source = registryRepository(key, repo, where, problems);
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
}

/** `images-by-tag-regex`: Go regexes matching anywhere in the tag, as tag filters. */
function addImagesByRegex(
  key: string,
  byRegex: Record<string, string>,
  add: AddEntry,
  problems: string[],
): void {
  for (const [repo, written] of Object.entries(byRegex)) {
    const where = formatPath([key, 'images-by-tag-regex', repo]);
    // Go's leading flag group `(?i)` (skopeo's regexes are Go's) is a modifier group in JavaScript.
    const flags = /^\(\?([ims]+)\)/.exec(written);
    const pattern = flags ? `(?${flags[1]}:${written.slice(flags[0].length)})` : written;
    const source = registryRepository(key, repo, where, problems);
    if (!source) continue;
    const problem = tagRegexProblem(pattern, false);
    if (problem) problems.push(`${where}: ${problem}`);
    // skopeo matches anywhere in the tag; a TagFilter regex matches the whole tag.
    else add(where, source, { kind: 'filters', filters: [{ regex: `.*(?:${pattern}).*` }] });
  }
}

/** `images-by-semver`: Masterminds ranges, as node-semver tag filters. */
function addImagesBySemver(
  key: string,
  bySemver: Record<string, string>,
  add: AddEntry,
  problems: string[],
): void {
  for (const [repo, range] of Object.entries(bySemver)) {
    const where = formatPath([key, 'images-by-semver', repo]);
    const source = registryRepository(key, repo, where, problems);
    if (!source) continue;
    // Masterminds separates ANDed comparisons with commas or spaces; node-semver with spaces only.
    const converted = range.replace(/\s*,\s*/g, ' ').trim();
    const problem = semverRangeProblem(converted);
    if (problem)
      problems.push(`${where}: ${problem.replace(JSON.stringify(converted), JSON.stringify(range))}`);
    else add(where, source, { kind: 'filters', filters: [{ semver: converted }] });
  }
}
