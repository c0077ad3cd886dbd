/**
 * docker-compose / compose files: `services.<name>.image`, with `${VAR:-default}` interpolation (resolved) and
 * `${VAR}` without a default (unresolved: its value comes from the environment or `.env`). Anchors and merge
 * keys (`<<: *defaults`) are followed; the anchored value is reported once, where it is written.
 *
 * A service with `build:` builds its image: its `image:` names what the build produces, and is reported as
 * kind `built` (not pulled, never rewritten) unless its `pull_policy` says compose pulls it first (`always`,
 * `missing`, `if_not_present`, `daily`, `weekly`, `every_<duration>`). A service with only `build:` names
 * nothing and is skipped.
 */
import type { Document } from 'yaml';
import {
  isMap,
  isScalar,
  joinPath,
  keyString,
  mapGet,
  mapPairs,
  parseDocuments,
  scalarSpan,
  stringValue,
} from './json-util.ts';
import type { Extractor, FoundReference } from './types.ts';
import { positionOf } from './types.ts';
import { interpolate } from './yaml-util.ts';

const COMPOSE_NAME = /^(?:docker-)?compose[^/]*\.ya?ml$/i;

/** `pull_policy` values with which compose pulls the image even though the service has `build:`. */
function pulls(policy: string | undefined): boolean {
  if (policy === undefined) return false;
  return /^(?:always|missing|if_not_present|daily|weekly|every_\w+)$/.test(policy);
}

function serviceImage(
  path: string,
  content: string,
  doc: Document.Parsed,
  name: string,
  service: unknown,
): FoundReference | undefined {
  const image = mapGet(service, 'image', doc);
  const span = scalarSpan(image, content, doc);
  // Numbers and booleans are not image names.
  const value = isScalar(image) && typeof image.value === 'string' ? image.value : undefined;
  if (!span || value === undefined) return undefined;
  const imagePath = joinPath(joinPath('services', name), 'image');
  const built =
    mapGet(service, 'build', doc) !== undefined &&
    !pulls(stringValue(mapGet(service, 'pull_policy', doc), doc));
  const { line, column } = positionOf(content, span.offset);
  const reference: FoundReference = {
    file: path,
    line,
    column,
    offset: span.offset,
    text: span.text,
    kind: built ? 'built' : 'compose',
    context: built ? `${imagePath} (the image services.${name}.build produces)` : imagePath,
  };
  if (value.includes('$')) {
    const result = interpolate(
      value,
      () => undefined,
      (variable) => `uses $${variable}, which has no default`,
    );
    if (result.unresolved !== undefined) reference.unresolved = result.unresolved;
    else if (result.resolved !== undefined && result.resolved !== span.text)
      reference.resolved = result.resolved;
  } else if (value !== span.text) reference.resolved = value;
  return reference;
}

function extractCompose(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<number>();
  for (const { doc, root } of parseDocuments(content)) {
    const services = mapGet(root, 'services', doc);
    if (!isMap(services)) continue;
    for (const pair of mapPairs(services, doc)) {
      const name = keyString(pair, doc);
      if (name === undefined) continue;
      const reference = serviceImage(path, content, doc, name, pair.value);
      if (!reference || seen.has(reference.offset)) continue;
      seen.add(reference.offset);
      found.push(reference);
    }
  }
  return found.sort((a, b) => a.offset - b.offset);
}

export const composeExtractor: Extractor = {
  kind: 'compose',
  matches(path: string): boolean {
    return COMPOSE_NAME.test(path.slice(path.lastIndexOf('/') + 1));
  },
  extract(path: string, content: string): FoundReference[] {
    try {
      return extractCompose(path, content);
    } catch {
      return [];
    }
  },
};
