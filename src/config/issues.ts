/**
 * Config errors worded for people: one line per zod issue, and for an unknown key the nearest key the
 * schema knows. Shared by every config file; holds no schema of its own, so loading one config does not
 * build the others.
 */
import type { z } from 'zod';

/**
 * One line per problem, `path: message`. An unknown key names the closest key `root` knows at that path
 * (through optional, nullable, default, array and record schemas). `formatPath` spells paths; dotted by
 * default (`auth.rules.0.users`).
 */
export function describeIssue(
  issue: z.core.$ZodIssue,
  root: unknown,
  formatPath: (path: readonly PropertyKey[]) => string = dottedPath,
): string {
  const path = issue.path.length ? formatPath(issue.path) : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const shape = shapeAt(root, issue.path);
    return issue.keys
      .map((key) => {
        const suggestion = shape ? closest(key, Object.keys(shape)) : undefined;
        return `${formatPath([...issue.path, key])}: unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
      })
      .join('\n  ');
  }
  return `${path}: ${issue.message}`;
}

function dottedPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

type SchemaInternals = {
  shape?: Record<string, unknown>;
  def?: { innerType?: unknown; element?: unknown; valueType?: unknown };
};

function shapeAt(root: unknown, path: readonly PropertyKey[]): Record<string, unknown> | undefined {
  let schema: unknown = root;
  for (const key of path) {
    const current = unwrap(schema) as SchemaInternals | undefined;
    if (!current) return undefined;
    if (typeof key === 'number') schema = current.def?.element;
    else if (typeof key === 'string' && current.shape) schema = current.shape[key];
    else if (typeof key === 'string') schema = current.def?.valueType;
    else return undefined;
  }
  return (unwrap(schema) as SchemaInternals | undefined)?.shape;
}

function unwrap(schema: unknown): unknown {
  let current = schema as SchemaInternals | undefined;
  for (let i = 0; i < 5 && current; i++) {
    if (current.def?.innerType) current = current.def.innerType;
    else break;
  }
  return current;
}

/** The candidate nearest to `word` (case-insensitive edit distance), when it is near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
