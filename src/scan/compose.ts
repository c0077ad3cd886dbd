/**
 * docker-compose / compose files: `services.<name>.image`, with `${VAR:-default}` interpolation (resolved) and
 * `${VAR}` without a default (unresolved: its value comes from the environment or `.env`). A service with
 * only `build:` pulls nothing by name and is skipped. Anchors and merge keys (`<<: *defaults`) are followed;
 * the anchored value is reported once, where it is written.
 */
import type { Extractor, FoundReference } from './types.ts';
import { collectReferences, interpolate, isImageScalar, pathMatches } from './yaml-util.ts';

const COMPOSE_NAME = /^(?:docker-)?compose[^/]*\.ya?ml$/i;

export const composeExtractor: Extractor = {
  kind: 'compose',
  matches(path: string): boolean {
    return COMPOSE_NAME.test(path.slice(path.lastIndexOf('/') + 1));
  },
  extract(path: string, content: string): FoundReference[] {
    return collectReferences(path, content, 'compose', (scalar) => {
      if (!isImageScalar(scalar) || !pathMatches(scalar.path, ['services', '*', 'image'])) {
        return undefined;
      }
      const value = scalar.value ?? scalar.text;
      if (!value.includes('$')) return {};
      const result = interpolate(
        value,
        () => undefined,
        (name) => `uses $${name}, which has no default`,
      );
      return result.unresolved !== undefined
        ? { unresolved: result.unresolved }
        : result.resolved !== undefined
          ? { resolved: result.resolved }
          : {};
    });
  },
};
