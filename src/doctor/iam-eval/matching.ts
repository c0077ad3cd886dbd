/**
 * Matching in IAM's terms: three-valued logic (a part the request cannot decide is `unknown`), wildcards,
 * policy variables, and a statement's actions and resources.
 */
import { compileGlob } from '../../shared/glob.ts';
import type { PolicyStatement } from '../types.ts';

/** Three-valued answer: a statement part that cannot be decided from the request is `unknown`. */
export type Tri = true | false | 'unknown';

export function and(values: Tri[]): Tri {
  if (values.includes(false)) return false;
  return values.includes('unknown') ? 'unknown' : true;
}

export function or(values: Tri[]): Tri {
  if (values.includes(true)) return true;
  return values.includes('unknown') ? 'unknown' : false;
}

export function not(value: Tri): Tri {
  return value === 'unknown' ? 'unknown' : !value;
}

export function toList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

const globCache = new Map<string, RegExp>();

/** IAM wildcard match: `*` any run of characters (including `:` and `/`), `?` exactly one. */
function globMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  const cacheKey = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let regex = globCache.get(cacheKey);
  if (regex === undefined) {
    regex = compileGlob(pattern, { kind: 'flat', ignoreCase });
    globCache.set(cacheKey, regex);
  }
  return regex.test(value);
}

/** Marks a character produced by `${*}`, `${?}` or `${$}`: it must match literally, not as a wildcard. */
const literalMark = '\uE000';
const literalMarkSplit = new RegExp(`(${literalMark}.)`, 's');

/** The special policy variables that stand for a literal character. */
const literalVariables: Record<string, string> = { '*': '*', '?': '?', $: '$' };

/**
 * Substitutes `${key}` policy variables (and `${key, 'default'}`) from the context. Returns undefined when one
 * cannot be resolved. Only documents of Version 2012-10-17 have variables; older ones are literal. The
 * `${*}`, `${?}` and `${$}` forms become characters that must match literally, so they are marked with
 * `literalMark` for `patternMatch`.
 */
export function substituteVariables(text: string, variables: boolean, context: Context): string | undefined {
  if (!variables || !text.includes('${')) return text;
  let unresolved = false;
  const result = text.replace(/\$\{([^}]*)\}/g, (_whole, inner: string) => {
    const literal = literalVariables[inner.trim()];
    if (literal !== undefined) return `${literalMark}${literal}`;
    const match = /^\s*([^,\s]+)\s*(?:,\s*'([^']*)'\s*)?$/.exec(inner);
    const key = match?.[1];
    if (key === undefined) {
      unresolved = true;
      return '';
    }
    const values = context.get(key.toLowerCase());
    if (values !== undefined && values.length === 1 && values[0] !== undefined) return values[0];
    if (values?.length === 0 && match?.[2] !== undefined) return match[2];
    unresolved = true;
    return '';
  });
  return unresolved ? undefined : result;
}

/** A wildcard match in which characters marked by `substituteVariables` as literal are not wildcards. */
export function patternMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  if (!pattern.includes(literalMark)) return globMatch(pattern, value, ignoreCase);
  const escaped = pattern
    .split(literalMarkSplit)
    .map((part) => {
      if (part.startsWith(literalMark)) return part.slice(1).replace(/[\\^$.|+()[\]{}*?]/g, '\\$&');
      return part
        .split('')
        .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
        .join('');
    })
    .join('');
  return new RegExp(`^${escaped}$`, ignoreCase ? 'is' : 's').test(value);
}

/** The text with the marks `substituteVariables` put on literal characters removed. */
export function unmark(text: string): string {
  return text.split(literalMark).join('');
}

export type Context = Map<string, string[]>;

export function matchesAction(statement: PolicyStatement, action: string): boolean {
  if (statement.NotAction !== undefined) {
    return !toList(statement.NotAction).some((pattern) => globMatch(pattern, action, true));
  }
  return toList(statement.Action).some((pattern) => globMatch(pattern, action, true));
}

export function matchesResource(
  statement: PolicyStatement,
  resource: string,
  variables: boolean,
  context: Context,
): Tri {
  const negated = statement.NotResource !== undefined;
  const patterns = toList(negated ? statement.NotResource : statement.Resource);
  // Resource policies (ECR repository policies) omit Resource: the resource is the one the policy is on.
  if (!negated && statement.Resource === undefined) return true;
  const results = patterns.map((pattern): Tri => {
    const resolved = substituteVariables(pattern, variables, context);
    if (resolved === undefined) return 'unknown';
    return patternMatch(resolved, resource, false);
  });
  const any = or(results);
  return negated ? not(any) : any;
}
