/**
 * Tag filters, the `tags:` of a sync file: their shape and what makes one valid. `config/` checks a file's
 * filters with these rules, and `copy/` evaluates them (src/copy/filters.ts), so the two cannot disagree
 * on what a filter means.
 */
import { createRequire } from 'node:module';
import type Semver from 'semver';
import { globProblem } from './glob.ts';

/** One tag filter: exactly one of these keys. */
export type TagFilter =
  /** These tags, when the repository has them. */
  | { exact: string[] }
  /** A glob over the whole tag (docs/configuration.md#patterns): `*` any run of characters, `?` one. */
  | { glob: string }
  /** A JavaScript regular expression that must match the whole tag. */
  | { regex: string }
  /** A node-semver range, e.g. `>=1.25 <2` or `^3.19`, over tags read as versions. */
  | { semver: string }
  /** The N highest versions among the tags the other filters selected (all tags when there is none). */
  | { latest: number };

/** Longest regex or glob accepted: a bound on the work a hostile or careless pattern can cause. */
export const MAX_TAG_PATTERN_LENGTH = 256;
/** Largest `latest: N`. */
export const MAX_LATEST = 1000;

const kinds = ['exact', 'glob', 'regex', 'semver', 'latest'] as const;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const tagGlobPattern = /^[A-Za-z0-9_.*?-]+$/;

const require = createRequire(import.meta.url);
let semver: typeof Semver | undefined;
/** `semver` (47 modules), loaded when a filter first needs it rather than at every start. */
export function loadSemver(): typeof Semver {
  return (semver ??= require('semver') as typeof Semver);
}

/**
 * The problems of one filter as `[path below the filter, message]` pairs (the path is `''` for the filter
 * itself, `exact[1]` for one of its tags); none when it is usable. A filter read from a file may hold
 * anything, so each value's type is checked too.
 */
export function tagFilterProblems(filter: Readonly<Record<string, unknown>>): [string, string][] {
  const keys = Object.keys(filter);
  if (keys.length !== 1) {
    return [
      [
        '',
        keys.length === 0
          ? `a tag filter needs one of ${kinds.join(', ')}`
          : `one kind per filter (got ${keys.join(', ')}); write each as its own list item`,
      ],
    ];
  }
  const key = keys[0] ?? '';
  const value = filter[key];
  const problem = (message: string | undefined): [string, string][] => (message ? [[key, message]] : []);
  switch (key) {
    case 'exact':
      if (!Array.isArray(value) || value.length === 0) return [['exact', 'list at least one tag']];
      return value.flatMap((tag: unknown, index): [string, string][] =>
        typeof tag === 'string' && tagPattern.test(tag)
          ? []
          : [[`exact[${index}]`, `"${String(tag)}" is not a valid tag`]],
      );
    case 'glob':
      return problem(typeof value === 'string' ? tagGlobProblem(value) : 'must be a pattern');
    case 'regex':
      return problem(typeof value === 'string' ? tagRegexProblem(value) : 'must be a pattern');
    case 'semver':
      return problem(typeof value === 'string' ? semverRangeProblem(value) : 'must be a range');
    case 'latest':
      return problem(
        typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_LATEST
          ? undefined
          : `must be a whole number from 1 to ${MAX_LATEST}`,
      );
    default:
      return [['', `unknown tag filter "${key}" (known: ${kinds.join(', ')})`]];
  }
}

/** The first problem of a filter as one line (`glob: the pattern is empty`), or undefined when it is usable. */
export function tagFilterProblem(filter: Readonly<Record<string, unknown>>): string | undefined {
  const [first] = tagFilterProblems(filter);
  if (first === undefined) return undefined;
  const [path, message] = first;
  return path ? `${path}: ${message}` : message;
}

/** What is wrong with a tag glob (empty, too long, characters a tag cannot hold, bad wildcards), or undefined. */
export function tagGlobProblem(glob: string): string | undefined {
  if (glob === '') return 'the pattern is empty';
  if (glob.length > MAX_TAG_PATTERN_LENGTH) {
    return `the pattern is ${glob.length} characters; at most ${MAX_TAG_PATTERN_LENGTH} are allowed`;
  }
  if (!tagGlobPattern.test(glob)) {
    return `"${glob}" may contain only tag characters (letters, digits, _ . -) and the wildcards * and ?`;
  }
  return globProblem(glob);
}

/**
 * What is wrong with a tag regex (empty, too long, or not a JavaScript regular expression), or undefined.
 * `whole`: the pattern is to match the whole tag, as a filter's does (skopeo's match anywhere).
 */
export function tagRegexProblem(pattern: string, whole = true): string | undefined {
  if (pattern === '') return 'the pattern is empty';
  if (pattern.length > MAX_TAG_PATTERN_LENGTH) {
    return `the pattern is ${pattern.length} characters; at most ${MAX_TAG_PATTERN_LENGTH} are allowed`;
  }
  return regexSyntaxProblem(pattern, whole);
}

/** Why `pattern` is not a JavaScript regular expression, or undefined; no length limit. */
export function regexSyntaxProblem(pattern: string, whole = true): string | undefined {
  try {
    if (whole) wholeTagRegex(pattern);
    else new RegExp(pattern);
  } catch (error) {
    const why = (error as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    return `invalid regular expression ${JSON.stringify(pattern)}: ${why}`;
  }
  return undefined;
}

/** The regular expression of a filter's `regex`: it must match the whole tag. Throws on an invalid one. */
export function wholeTagRegex(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}

/**
 * What is wrong with a semver range, or undefined. node-semver's grammar, minus its reading of a bound
 * without a number (`>=x`) as "any version": a comparison must name a number. `*`, `x` and `1.x` stay valid.
 */
export function semverRangeProblem(range: string): string | undefined {
  const invalid = `invalid range ${JSON.stringify(range)}`;
  if (range.trim() === '' || loadSemver().validRange(range) === null) return invalid;
  const compact = range.replace(/(<=|>=|<|>|=|~>|~|\^)\s+/g, '$1');
  if (/(?:^|[\s|])(?:<=|>=|<|>|=|~>|~|\^)v?[xX*]/.test(compact)) {
    return `${invalid}: a comparison needs a version`;
  }
  return undefined;
}
