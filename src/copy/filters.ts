/**
 * Which tags and which platforms of a repository a copy takes. Pure functions, no I/O.
 *
 * Tags: an entry lists filters; a tag is selected when it matches any exact/glob/regex/semver filter (all
 * tags when there is none), then `latest: N` keeps the N highest versions of those. Platforms: `os/arch[/variant]`
 * normalised the way containerd normalises them, so `linux/aarch64` and `linux/arm64/v8` are `linux/arm64`.
 */
import type { SemVer } from 'semver';
import { PullsafeError } from '../errors/index.ts';
import { compileGlob } from '../shared/glob.ts';
import {
  loadSemver,
  regexSyntaxProblem,
  semverRangeProblem,
  tagFilterProblem,
  tagGlobProblem,
  wholeTagRegex,
  type TagFilter,
} from '../shared/tag-filter.ts';

const versionPattern = /^[vV]?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$/;

/**
 * The version a tag names, read leniently: an optional `v`, then one to three numbers and an optional
 * `-prerelease` (`1` is 1.0.0, `v1.25` is 1.25.0, `1.25.3-alpine` is a prerelease of 1.25.3). Anything else
 * (`latest`, `1.2.3.4`, `stable-alpine`) is not a version: `undefined`.
 */
export function parseTagVersion(tag: string): SemVer | undefined {
  const match = versionPattern.exec(tag);
  if (!match) return undefined;
  const [, major, minor = '0', patch = '0', prerelease] = match;
  const text = `${major}.${minor}.${patch}${prerelease === undefined ? '' : `-${prerelease}`}`;
  try {
    return new (loadSemver().SemVer)(text, { loose: true });
  } catch {
    return undefined;
  }
}

/** True when the range text names a prerelease (e.g. `>=1.25.0-0`): prerelease tags are then eligible. */
function rangeNamesPrerelease(range: string): boolean {
  return /\d-[0-9A-Za-z]/.test(range);
}

type Matcher = (tag: string, version: SemVer | undefined) => boolean;

function matcherFor(filter: Exclude<TagFilter, { latest: number }>): Matcher {
  if ('exact' in filter) {
    const wanted = new Set(filter.exact);
    return (tag) => wanted.has(tag);
  }
  if ('glob' in filter) {
    const problem = tagGlobProblem(filter.glob);
    if (problem) throw invalidFilter(`glob: ${problem}`);
    const regex = compileGlob(filter.glob);
    return (tag) => regex.test(tag);
  }
  if ('regex' in filter) {
    const problem = regexSyntaxProblem(filter.regex);
    if (problem) throw invalidFilter(`regex: ${problem}`);
    const regex = wholeTagRegex(filter.regex);
    return (tag) => regex.test(tag);
  }
  const range = filter.semver;
  const problem = typeof range === 'string' ? semverRangeProblem(range) : 'not a string';
  if (problem) throw invalidFilter(`semver: ${problem}`);
  const compiled = new (loadSemver().Range)(range, { includePrerelease: rangeNamesPrerelease(range) });
  return (_tag, version) => version !== undefined && compiled.test(version);
}

function invalidFilter(message: string): PullsafeError {
  return new PullsafeError('CONFIG_INVALID', `invalid tag filter: ${message}`);
}

/**
 * The tags of `allTags` the filters select, each once. Without `latest` they keep the order of `allTags`;
 * with `latest: N` they are the N highest versions, highest first (equal versions such as `1.25` and
 * `1.25.0` keep input order). Tags that are not versions never pass `semver` or `latest`; when `latest`
 * stands alone, prereleases (`1.26.0-rc1`, `1.25.3-alpine`) are left out, while tags another filter of
 * the entry selected are ranked as they are. No filter at all selects every tag.
 *
 * Throws `PullsafeError('CONFIG_INVALID')` for a filter that cannot be evaluated (a bad regex, glob or
 * range); the length limit of a regex (src/shared/tag-filter.ts) is for validation, not enforced here. Several `latest`
 * filters: the smallest N applies.
 */
export function selectTags(allTags: readonly string[], filters: readonly TagFilter[]): string[] {
  const matchers: Matcher[] = [];
  let latest: number | undefined;
  for (const filter of filters) {
    if ('latest' in filter) {
      const problem = tagFilterProblem(filter);
      if (problem) throw invalidFilter(problem);
      latest = latest === undefined ? filter.latest : Math.min(latest, filter.latest);
    } else {
      matchers.push(matcherFor(filter));
    }
  }

  const seen = new Set<string>();
  const selected: { tag: string; version: SemVer | undefined; index: number }[] = [];
  for (const tag of allTags) {
    if (seen.has(tag)) continue;
    seen.add(tag);
    const version = parseTagVersion(tag);
    if (matchers.length > 0 && !matchers.some((matches) => matches(tag, version))) continue;
    selected.push({ tag, version, index: selected.length });
  }
  if (latest === undefined) return selected.map((entry) => entry.tag);

  const ranked = selected.filter(
    (entry): entry is { tag: string; version: SemVer; index: number } =>
      entry.version !== undefined && (matchers.length > 0 || entry.version.prerelease.length === 0),
  );
  ranked.sort((a, b) => loadSemver().rcompare(a.version, b.version) || a.index - b.index);
  return ranked.slice(0, latest).map((entry) => entry.tag);
}

/** The tags of `exact` filters that `allTags` does not hold, in filter order: worth a warning. */
export function missingExactTags(allTags: readonly string[], filters: readonly TagFilter[]): string[] {
  const present = new Set(allTags);
  const missing: string[] = [];
  for (const filter of filters) {
    if (!('exact' in filter)) continue;
    for (const tag of filter.exact) if (!present.has(tag) && !missing.includes(tag)) missing.push(tag);
  }
  return missing;
}

/** A platform as an OCI index describes it (the `platform` of a descriptor); other fields are ignored. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A normalised platform to keep: `variant` absent means any variant of `os/architecture`. */
export interface PlatformFilter {
  os: string;
  architecture: string;
  variant?: string;
}

const knownOs = new Set([
  'aix',
  'android',
  'darwin',
  'dragonfly',
  'freebsd',
  'hurd',
  'illumos',
  'ios',
  'js',
  'linux',
  'nacl',
  'netbsd',
  'openbsd',
  'plan9',
  'solaris',
  'wasip1',
  'windows',
  'zos',
]);
const knownArchitectures = new Set([
  '386',
  'amd64',
  'amd64p32',
  'arm',
  'armbe',
  'arm64',
  'arm64be',
  'loong64',
  'mips',
  'mipsle',
  'mips64',
  'mips64le',
  'mips64p32',
  'mips64p32le',
  'ppc',
  'ppc64',
  'ppc64le',
  'riscv',
  'riscv64',
  's390',
  's390x',
  'sparc',
  'sparc64',
  'wasm',
]);
const platformComponent = /^[a-z0-9_.-]+$/;

/**
 * containerd's normalisation: lowercase; `macos` is `darwin`; `x86_64`/`x86-64` are `amd64` (variant `v1`
 * dropped); `aarch64` is `arm64` (variant `8`/`v8`/`v8.0` dropped, `9`/`9.0`/`v9.0` is `v9`); `i386` is
 * `386`; `armhf` is `arm/v7`, `armel` is `arm/v6`; `arm` without a variant is `arm/v7`, `arm/5|6|7|8` get
 * a `v`.
 */
export function normalizePlatform(platform: Platform): PlatformFilter {
  let os = platform.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = platform.architecture.toLowerCase();
  let variant = (platform.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  return variant === '' ? { os, architecture } : { os, architecture, variant };
}

/**
 * Parses `os/arch[/variant]` (e.g. `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`, `windows/amd64`) into a
 * normalised filter. Throws `PullsafeError('CONFIG_INVALID')` for another shape or an unknown os or
 * architecture.
 */
export function parsePlatform(text: string): PlatformFilter {
  const parts = typeof text === 'string' ? text.trim().toLowerCase().split('/') : [];
  if (parts.length < 2 || parts.length > 3 || !parts.every((part) => platformComponent.test(part))) {
    throw new PullsafeError(
      'CONFIG_INVALID',
      `invalid platform ${JSON.stringify(text)}: expected os/arch[/variant]`,
      {
        hint: 'for example linux/amd64, linux/arm64, linux/arm/v7 or windows/amd64',
      },
    );
  }
  const [os = '', architecture = '', variant] = parts;
  const platform = normalizePlatform(
    variant === undefined ? { os, architecture } : { os, architecture, variant },
  );
  if (!knownOs.has(platform.os)) {
    throw new PullsafeError(
      'CONFIG_INVALID',
      `invalid platform ${JSON.stringify(text)}: unknown os "${os}"`,
      {
        hint: `known: ${[...knownOs].join(', ')}`,
      },
    );
  }
  if (!knownArchitectures.has(platform.architecture)) {
    throw new PullsafeError(
      'CONFIG_INVALID',
      `invalid platform ${JSON.stringify(text)}: unknown architecture "${architecture}"`,
      {
        hint: `known: ${[...knownArchitectures].join(', ')} (and aliases x86_64, aarch64, armhf, armel, i386)`,
      },
    );
  }
  return platform;
}

/** `os/arch[/variant]`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/**
 * Whether `platform` (from an index) is one the filter keeps: both are normalised, then os and architecture
 * must be equal, and the variant too when the filter names one (`linux/amd64` keeps `linux/amd64/v3`;
 * `linux/arm` is `linux/arm/v7` and keeps only v7).
 */
export function platformMatches(filter: PlatformFilter, platform: Platform): boolean {
  const want = normalizePlatform(filter);
  const have = normalizePlatform(platform);
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  return want.variant === undefined || want.variant === have.variant;
}
