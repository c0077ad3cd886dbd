// The one glob language of pullsafe, for repository names (access rules of `serve`, rewrite rules of
// `rewrite --rules`) and tags (tag filters of `sync`), and IAM's wildcards in policy strings. The rules for
// users are in docs/configuration.md#patterns; a change here is a change there.
//
// Path globs (the default) work on `/`-separated names, matched whole:
// - `?` is one character other than `/`; `*` is any run of characters other than `/`, empty included;
// - `**` as a whole component is any number of components: `**` alone matches every name, `**/b` is `b` at
//   any depth (the top included), `a/**/b` is `a/b`, `a/x/b`, …, and `a/**` every name below `a`, not `a`
//   itself;
// - `**` inside a component (`foo**`) is any run of characters, `/` included;
// - everything else is literal. `***`, an empty glob and empty components (a leading or trailing `/`,
//   `//`) are errors.
//
// Flat globs are IAM's (`StringLike`, `Action`, `Resource`): `*` is any run of characters, `/` and `:`
// included, `?` any one character; nothing is an error.

export interface GlobOptions {
  /** `path` (the default) or `flat`, as described above. */
  kind?: 'path' | 'flat';
  ignoreCase?: boolean;
}

/** Why `glob` is not a path glob, or undefined when it is one. */
export function globProblem(glob: string): string | undefined {
  if (glob === '') return 'a pattern may not be empty';
  if (glob.includes('***')) return 'a pattern may not contain "***"';
  if (glob.startsWith('/') || glob.endsWith('/') || glob.includes('//')) {
    return 'a pattern may not start or end with "/" or contain "//"';
  }
  return undefined;
}

/** An anchored regular expression for `glob`. Throws an Error saying what is wrong with an invalid path glob. */
export function compileGlob(glob: string, options: GlobOptions = {}): RegExp {
  const flags = options.ignoreCase ? 'is' : 's';
  if (options.kind === 'flat') {
    return new RegExp(`^${wildcards(glob, '.', '.*')}$`, flags);
  }
  const problem = globProblem(glob);
  if (problem !== undefined) throw new Error(problem);
  // Consecutive `**` components mean the same as one.
  const components = glob
    .split('/')
    .filter((part, index, all) => !(part === '**' && all[index - 1] === '**'));
  let source = '';
  components.forEach((component, index) => {
    const first = index === 0;
    const last = index === components.length - 1;
    if (component === '**') {
      if (first && last) source += '.+';
      else if (last) source += '(?:/[^/]+)+';
      else if (first) source += '(?:[^/]+/)*';
      else source += '/(?:[^/]+/)*';
      return;
    }
    // A preceding `**` component already supplied the separator.
    if (!first && components[index - 1] !== '**') source += '/';
    source += component
      .split('**')
      .map((part) => wildcards(part, '[^/]', '[^/]*'))
      .join('.*');
  });
  return new RegExp(`^${source}$`, flags);
}

/** `text` as regular-expression source, with `?` and `*` replaced and everything else literal. */
function wildcards(text: string, one: string, run: string): string {
  let source = '';
  for (const char of text) {
    if (char === '*') source += run;
    else if (char === '?') source += one;
    else source += char.replace(/[\\^$.*+?()[\]{}|/-]/, '\\$&');
  }
  return source;
}

const repositoryGlobChars = /^[a-z0-9._\-/*?]+$/;

/**
 * Why `glob` is not a glob over repository names, or undefined: a path glob of the characters repository
 * names use (lowercase letters, digits, `.`, `_`, `-`, `/`) and the wildcards.
 */
export function repositoryGlobProblem(glob: string): string | undefined {
  if (glob !== '' && !repositoryGlobChars.test(glob)) {
    return 'a repository pattern may use only a-z, 0-9, ".", "_", "-", "/" and the wildcards *, ** and ?';
  }
  return globProblem(glob);
}

/** A repository glob as an anchored regular expression; throws an Error saying what is wrong with it. */
export function compileRepositoryGlob(glob: string): RegExp {
  const problem = repositoryGlobProblem(glob);
  if (problem !== undefined) throw new Error(problem);
  return compileGlob(glob);
}
