/**
 * What path globs match (docs/configuration.md#patterns), as one table that every user of `glob.ts` runs
 * through its own entry point: access rules, rewrite rules, tag filters. Rows whose glob and name hold no `/`
 * and only tag characters (`tagRows`) are the tag filters' part of it.
 */

/** [glob, name, whether the glob matches the name]. */
export type GlobRow = readonly [glob: string, name: string, matches: boolean];

export const globRows: readonly GlobRow[] = [
  ['nginx', 'nginx', true],
  ['nginx', 'nginx2', false],
  ['nginx', 'ngin', false],
  ['library/nginx', 'library/nginx', true],
  ['library/nginx', 'x/library/nginx', false],
  ['library/nginx', 'library/nginx/x', false],
  ['a.b', 'a.b', true],
  ['a.b', 'axb', false],
  ['a-b', 'a-b', true],
  ['*', 'nginx', true],
  ['*', 'library/nginx', false],
  ['*', 'a.b-c_d', true],
  ['library/*', 'library/nginx', true],
  ['library/*', 'library/a/b', false],
  ['library/*', 'library', false],
  ['library/*', 'librar/nginx', false],
  ['team/app-*', 'team/app-web', true],
  ['team/app-*', 'team/app-', true],
  ['team/app-*', 'team/app', false],
  ['team/app-*', 'team/app-web/x', false],
  ['*/nginx', 'library/nginx', true],
  ['*/nginx', 'nginx', false],
  ['*/nginx', 'a/b/nginx', false],
  ['v1.*', 'v1.25', true],
  ['v1.*', 'v1.', true],
  ['v1.*', 'v1', false],
  ['v1.*', 'v10.0', false],
  ['*-alpine', '1.27-alpine', true],
  ['*-alpine', '1.27-alpine3.20', false],
  ['1.2?', '1.25', true],
  ['1.2?', '1.2', false],
  ['1.2?', '1.255', false],
  ['a?c', 'abc', true],
  ['a?c', 'a/c', false],
  ['c?', 'c1', true],
  ['?', 'a', true],
  ['?', '', false],
  ['**', 'nginx', true],
  ['**', 'library/nginx', true],
  ['**', 'a/b/c', true],
  ['**/nginx', 'nginx', true],
  ['**/nginx', 'library/nginx', true],
  ['**/nginx', 'a/b/nginx', true],
  ['**/nginx', 'nginx2', false],
  ['**/nginx', 'library/nginx/x', false],
  ['**/nginx', 'xnginx', false],
  ['team/**', 'team/a', true],
  ['team/**', 'team/a/b', true],
  ['team/**', 'team', false],
  ['team/**', 'teamx/a', false],
  ['team/**', 'x/team/a', false],
  ['a/**/b', 'a/b', true],
  ['a/**/b', 'a/x/b', true],
  ['a/**/b', 'a/x/y/b', true],
  ['a/**/b', 'a', false],
  ['a/**/b', 'b', false],
  ['a/**/b', 'a/bb', false],
  ['a/**/b', 'xa/b', false],
  ['a/**/**', 'a/b', true],
  ['a/**/**', 'a/b/c', true],
  ['a/**/**', 'a', false],
  ['**/**/b', 'b', true],
  ['lib**', 'library/nginx', true],
  ['lib**', 'lib', true],
  ['lib**', 'xlib', false],
  ['v1**', 'v1.25.3', true],
  ['**x', 'a/box', true],
  ['**x', 'a/bo', false],
];

const tagChars = /^[A-Za-z0-9_.*?-]+$/;

/** The rows a tag filter can express: no `/`, only tag characters in the glob. */
export const tagRows: readonly GlobRow[] = globRows.filter(
  ([glob, name]) => tagChars.test(glob) && !name.includes('/'),
);

/** [glob, name, matches] for IAM's flat wildcards. */
export const flatGlobRows: readonly GlobRow[] = [
  ['s3:Get*', 's3:GetObject', true],
  ['s3:Get*', 's3:PutObject', false],
  ['arn:aws:s3:::bucket/*', 'arn:aws:s3:::bucket/a/b', true],
  ['arn:aws:s3:::bucket/?', 'arn:aws:s3:::bucket/a', true],
  ['arn:aws:s3:::bucket/?', 'arn:aws:s3:::bucket/ab', false],
  ['*', 'a/b:c', true],
  ['a.b', 'axb', false],
  ['a(b)[c]{d}+$^|\\', 'a(b)[c]{d}+$^|\\', true],
  ['***', 'anything/at:all', true],
];
