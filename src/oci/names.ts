/**
 * Repository names and tags as the distribution API accepts them. A name or tag that passes these checks
 * contains no `..`, no leading `.`, no `/` at either end and no byte outside [a-z0-9._/-] (tags: [A-Za-z0-9._-]),
 * so it is safe as a storage key.
 */
import { OciError } from './errors.ts';

const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const namePattern = new RegExp(`^${component}(?:/${component})*$`);
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** distribution's limit for a repository name (the path part of the reference). */
export const maxNameLength = 255;

export function isRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= maxNameLength && namePattern.test(name);
}

export function checkRepositoryName(name: string): string {
  if (!isRepositoryName(name)) {
    const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
    const why =
      name.length > maxNameLength
        ? `longer than ${maxNameLength} characters`
        : /[A-Z]/.test(name)
          ? 'must be lowercase'
          : 'must be path components of [a-z0-9] joined by ".", "_", "__" or "-", separated by "/"';
    throw new OciError('NAME_INVALID', `invalid repository name: ${why}`, { name: shown });
  }
  return name;
}

export function isTag(tag: string): boolean {
  return tagPattern.test(tag);
}

export function checkTag(tag: string): string {
  if (!isTag(tag)) {
    throw new OciError(
      'TAG_INVALID',
      'invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}',
      {
        tag: tag.slice(0, 140),
      },
      400,
    );
  }
  return tag;
}
