/**
 * Shared YAML helpers for the extractors: parse every document of a file without throwing, and walk it,
 * yielding each scalar value with its YAML path and its exact place in the source, so that a reference can
 * be reported (and later rewritten) as written — between the quotes for quoted scalars.
 *
 * Aliases are followed, so a path pattern such as `services.*.image` also matches values that reach a
 * service through `<<: *defaults`; the scalar then still points at the anchor's definition, and
 * {@link collectReferences} reports each source position once.
 */
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import type { Document, Node, Scalar } from 'yaml';
import { parseSimpleYaml } from './fast-yaml.ts';
import { simpleDocument } from './json-util.ts';
import { positionOf } from './types.ts';
import type { FoundReference, ReferenceKind } from './types.ts';

export type YamlPath = readonly (string | number)[];

export interface YamlScalar {
  /** Keys (strings) and sequence indexes (numbers) from the document root to this value. */
  path: YamlPath;
  /** The parsed value (escapes processed), or undefined when the scalar is not a string/number/boolean. */
  value: string | undefined;
  /** The value as written: the source between the quotes for quoted scalars, the source for plain ones. */
  text: string;
  /** 0-based offset of `text` in the content. */
  offset: number;
  /** Where the whole scalar stands, quotes or block header included. */
  sourceStart: number;
  sourceEnd: number;
  style: Scalar.Type | undefined;
  /** Index of the document in a multi-document file. */
  document: number;
}

/** Parses every document of `content`; never throws (returns what could be read). */
export function parseYamlDocuments(content: string): Document[] {
  try {
    return parseAllDocuments(content, { prettyErrors: false, uniqueKeys: false });
  } catch {
    return [];
  }
}

/** `spec.containers[0].image` */
export function formatYamlPath(path: YamlPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

function keyOf(node: unknown): string | undefined {
  if (isScalar(node)) {
    const value = node.value;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      return String(value);
    }
    return value === null ? 'null' : undefined;
  }
  if (typeof node === 'string' || typeof node === 'number') return String(node);
  return undefined;
}

function scalarInfo(content: string, node: Scalar, path: YamlPath, document: number): YamlScalar | undefined {
  const range = node.range;
  if (!range) return undefined;
  const [start, end] = range;
  if (!(start >= 0 && end >= start && end <= content.length)) return undefined;
  let textStart = start;
  let textEnd = end;
  const first = content[start];
  if ((node.type === 'QUOTE_DOUBLE' && first === '"') || (node.type === 'QUOTE_SINGLE' && first === "'")) {
    textStart = start + 1;
    textEnd = content[end - 1] === first && end - 1 >= textStart ? end - 1 : end;
  }
  const raw = node.value;
  const value =
    typeof raw === 'string'
      ? raw
      : typeof raw === 'number' || typeof raw === 'boolean'
        ? String(raw)
        : undefined;
  return {
    path,
    value,
    text: content.slice(textStart, textEnd),
    offset: textStart,
    sourceStart: start,
    sourceEnd: end,
    style: node.type,
    document,
  };
}

/**
 * Every scalar value (not keys) in every document, depth first, with aliases followed (each alias at most
 * once per path, cycles cut) and merge keys (`<<`) flattened into the mapping that uses them.
 */
export function* yamlScalars(content: string, options: { fast?: boolean } = {}): Generator<YamlScalar> {
  const roots = options.fast === false ? undefined : parseSimpleYaml(content);
  const documents: { doc: Document; root: unknown }[] = roots
    ? roots.map((root) => ({ doc: simpleDocument(), root }))
    : parseYamlDocuments(content).map((doc) => ({ doc, root: doc.contents }));
  for (const [index, { doc, root }] of documents.entries()) {
    try {
      yield* walkNode(content, doc, root, [], index, new Set());
    } catch {
      // A malformed tree: keep what was yielded so far.
    }
  }
}

function* walkNode(
  content: string,
  doc: Document,
  node: unknown,
  path: YamlPath,
  index: number,
  active: Set<unknown>,
): Generator<YamlScalar> {
  if (node === null || node === undefined) return;
  if (isAlias(node)) {
    let target: unknown;
    try {
      target = node.resolve(doc);
    } catch {
      return;
    }
    if (target === undefined || active.has(target)) return;
    active.add(target);
    yield* walkNode(content, doc, target, path, index, active);
    active.delete(target);
    return;
  }
  if (isScalar(node)) {
    const info = scalarInfo(content, node, path, index);
    if (info) yield info;
    return;
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = keyOf(pair.key);
      if (key === undefined) continue;
      if (key === '<<') {
        // Merge key: the merged mapping(s) contribute keys to this mapping.
        const value = pair.value as Node | null;
        if (isSeq(value)) {
          for (const item of value.items) yield* walkNode(content, doc, item, path, index, active);
        } else {
          yield* walkNode(content, doc, value, path, index, active);
        }
        continue;
      }
      yield* walkNode(content, doc, pair.value, [...path, key], index, active);
    }
    return;
  }
  if (isSeq(node)) {
    for (const [position, item] of node.items.entries()) {
      yield* walkNode(content, doc, item, [...path, position], index, active);
    }
  }
}

/** Matches a path against a pattern: `*` matches any key, `#` any sequence index, `**` any run of parts. */
export function pathMatches(path: YamlPath, pattern: readonly (string | number)[]): boolean {
  return matchFrom(path, 0, pattern, 0);
}

function matchFrom(path: YamlPath, p: number, pattern: readonly (string | number)[], q: number): boolean {
  if (q === pattern.length) return p === path.length;
  const want = pattern[q];
  if (want === '**') {
    for (let skip = p; skip <= path.length; skip++) {
      if (matchFrom(path, skip, pattern, q + 1)) return true;
    }
    return false;
  }
  if (p === path.length) return false;
  const have = path[p];
  const ok =
    want === '*' ? typeof have === 'string' : want === '#' ? typeof have === 'number' : want === have;
  return ok && matchFrom(path, p + 1, pattern, q + 1);
}

/** What an extractor decides about one scalar: nothing, or the reference with its resolution. */
export interface ScalarDecision {
  /** Offset/text override (e.g. the part after `docker://`); defaults to the scalar's. */
  offset?: number;
  text?: string;
  resolved?: string;
  unresolved?: string;
  context?: string;
}

/**
 * Walks the YAML and turns the scalars `decide` accepts into references, each source position once (the
 * first path that reaches it wins, so an anchor used by several services is reported at its definition once).
 * Empty texts and multi-line texts are skipped. Never throws.
 */
export function collectReferences(
  file: string,
  content: string,
  kind: ReferenceKind,
  decide: (scalar: YamlScalar) => ScalarDecision | ScalarDecision[] | undefined,
): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<string>();
  try {
    for (const scalar of yamlScalars(content)) {
      const decided = decide(scalar);
      if (!decided) continue;
      for (const decision of Array.isArray(decided) ? decided : [decided]) {
        const offset = decision.offset ?? scalar.offset;
        const text = decision.text ?? scalar.text;
        if (text.trim() === '' || /[\r\n]/.test(text)) continue;
        if (content.slice(offset, offset + text.length) !== text) continue;
        const key = `${offset}:${text.length}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const { line, column } = positionOf(content, offset);
        const reference: FoundReference = { file, line, column, offset, text, kind };
        if (decision.resolved !== undefined && decision.resolved !== text) {
          reference.resolved = decision.resolved;
        }
        if (decision.unresolved !== undefined) reference.unresolved = decision.unresolved;
        reference.context = decision.context ?? formatYamlPath(scalar.path);
        found.push(reference);
      }
    }
  } catch {
    // Never throw on bad input.
  }
  found.sort((a, b) => a.offset - b.offset);
  return found;
}

/** A scalar usable as an image value: a single-line string (not a block scalar). */
export function isImageScalar(scalar: YamlScalar): boolean {
  return (
    scalar.value !== undefined &&
    scalar.style !== 'BLOCK_LITERAL' &&
    scalar.style !== 'BLOCK_FOLDED' &&
    !/[\r\n]/.test(scalar.text)
  );
}

export interface Interpolation {
  resolved?: string;
  unresolved?: string;
}

/**
 * Compose/shell-style interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
 * `${VAR:+alt}`, and `$$` for a literal `$`. `lookup` gives known values (undefined when unknown). A
 * variable with no value and no default makes the result unresolved, with the reason.
 */
export function interpolate(
  text: string,
  lookup: (name: string) => string | undefined = () => undefined,
  describe: (name: string) => string = (name) => `uses $${name}, which has no default`,
): Interpolation {
  let out = '';
  let reason: string | undefined;
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char !== '$') {
      out += char;
      index++;
      continue;
    }
    const next = text[index + 1];
    if (next === '$') {
      out += '$';
      index += 2;
      continue;
    }
    if (next === '{') {
      const close = findClose(text, index + 2);
      if (close === -1) {
        reason ??= 'has an unterminated ${…}';
        out += text.slice(index);
        break;
      }
      const body = text.slice(index + 2, close);
      index = close + 1;
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([\s\S]*))?$/.exec(body);
      if (!match) {
        reason ??= `uses \${${body}}, which cannot be resolved`;
        continue;
      }
      const name = match[1] ?? '';
      const colon = match[2] === ':';
      const operator = match[3];
      const argument = match[4] ?? '';
      const value = lookup(name);
      const missing = colon ? value === undefined || value === '' : value === undefined;
      if (operator === '-') {
        if (!missing) out += value ?? '';
        else {
          const inner = interpolate(argument, lookup, describe);
          if (inner.unresolved !== undefined) reason ??= inner.unresolved;
          out += inner.resolved ?? '';
        }
      } else if (operator === '+') {
        if (!missing) {
          const inner = interpolate(argument, lookup, describe);
          if (inner.unresolved !== undefined) reason ??= inner.unresolved;
          out += inner.resolved ?? '';
        }
      } else if (operator === '?') {
        if (missing) reason ??= `requires $${name}${argument ? ` (${argument})` : ''}`;
        else out += value ?? '';
      } else if (value === undefined) {
        reason ??= describe(name);
      } else {
        out += value;
      }
      continue;
    }
    const simple = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(index + 1));
    if (simple) {
      const name = simple[0];
      index += 1 + name.length;
      const value = lookup(name);
      if (value === undefined) reason ??= describe(name);
      else out += value;
      continue;
    }
    out += '$';
    index++;
  }
  if (reason !== undefined) return { unresolved: reason };
  return { resolved: out };
}

function findClose(text: string, from: number): number {
  let depth = 1;
  for (let index = from; index < text.length; index++) {
    if (text[index] === '{') depth++;
    else if (text[index] === '}') {
      depth--;
      if (depth === 0) return index;
    }
  }
  return -1;
}
