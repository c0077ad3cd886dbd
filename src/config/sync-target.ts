/**
 * Target templates: `name[:tag]` with placeholders filled from the source.
 *
 * - `{registry}`: the source registry as normalised (`docker.io`, `ghcr.io`; a `:port` makes the result
 *   invalid inside a repository path);
 * - `{repository}`: the whole normalised repository path, `library/` kept for Docker Hub's official images
 *   (`nginx` is `library/nginx`), as ECR pull-through caches lay them out;
 * - `{name}`: the last path component (`nginx`);
 * - `{tag}`: the source tag, only in the tag part after `:` (e.g. `mirror/{repository}:{tag}-amd64`).
 * Without a tag part the target keeps the source's tag, or its digest for a digest source. A tag part
 * without `{tag}` is a fixed tag, allowed only for an image that selects one tag or one digest. A template
 * never names a digest.
 */
import { PullsafeError } from '../errors/index.ts';
import {
  InvalidReferenceError,
  formatReference,
  parseReference,
  type ImageReference,
} from '../reference/index.ts';
import { closest } from './issues.ts';
import type { SyncPlanEntry } from './sync-model.ts';

const placeholders = ['registry', 'repository', 'name', 'tag'] as const;

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

const templateHint =
  'a target is a reference with placeholders {registry} {repository} {name} and, after ":", {tag}; ' +
  'e.g. registry.example.com/mirror/{repository}';

function reason(error: InvalidReferenceError): string {
  return error.message.replace(/^invalid image reference "(?:[^"\\]|\\.)*": /, '');
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

/** What is wrong with a target template, naming it, or undefined. */
export function templateProblem(text: string): string | undefined {
  const template = parseTemplate(text);
  return typeof template === 'string' ? `"${text}": ${template}` : undefined;
}

/** What is wrong with a `--dest` prefix (`registry[:port][/path]`, no tag, digest or placeholder). */
export function prefixProblem(dest: string): string | undefined {
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
export function checkTarget(
  entry: SyncPlanEntry,
  where: string,
  problems: string[],
): ImageReference | undefined {
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
export function sharedTargets(
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
