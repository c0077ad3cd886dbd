/**
 * Small helpers over the `yaml` package's document tree, used for YAML and JSON alike (JSON is a subset of
 * YAML 1.2, and the tree keeps exact source ranges, which `JSON.parse` loses). Nothing here throws: a file
 * that does not parse yields no documents.
 */
import { Document as YamlDocument, isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments } from 'yaml';
import type { Document, Node, Pair, YAMLMap } from 'yaml';
import { parseSimpleYaml } from './fast-yaml.ts';

export interface ParsedDocument {
  doc: Document.Parsed;
  root: Node | null;
}

/**
 * Every document of a YAML stream (or the one document of a JSON file) that parsed without errors. Unknown
 * tags (CloudFormation short forms such as `!Sub`, `!Ref`) are kept on the nodes as `node.tag` and only
 * produce warnings, so templates parse.
 *
 * Plain block YAML and JSON take a fast reader that builds the same nodes (see `fast-yaml.ts`); everything
 * else, and every caller that reads collection ranges (`fast: false`), takes the `yaml` package.
 */
export function parseDocuments(content: string, options: { fast?: boolean } = {}): ParsedDocument[] {
  if (options.fast !== false) {
    const roots = parseSimpleYaml(content);
    if (roots) return roots.map((root) => ({ doc: simpleDocument(), root }));
  }
  return parseDocumentsFully(content);
}

/** The `yaml` package's reading of every document (no fast path). */
export function parseDocumentsFully(content: string): ParsedDocument[] {
  try {
    const docs = parseAllDocuments(content, {
      uniqueKeys: false,
      merge: true,
      keepSourceTokens: false,
      prettyErrors: false,
    });
    if (!Array.isArray(docs)) return [];
    return docs
      .filter((doc) => doc.errors.length === 0)
      .map((doc) => ({ doc, root: (doc.contents as Node | null) ?? null }));
  } catch {
    return [];
  }
}

let sharedSimpleDocument: Document.Parsed | undefined;

/**
 * The document handed out with fast-path roots. Helpers only consult a document to resolve aliases, and the
 * fast path never produces one, so one empty document serves every file.
 */
export function simpleDocument(): Document.Parsed {
  sharedSimpleDocument ??= new YamlDocument(null) as unknown as Document.Parsed;
  return sharedSimpleDocument;
}

/** Follows an alias to the node it names (once; anchors cannot refer to themselves usefully). */
export function deref(node: unknown, doc: Document.Parsed): Node | undefined {
  if (isAlias(node)) {
    try {
      return node.resolve(doc);
    } catch {
      return undefined;
    }
  }
  if (isScalar(node) || isMap(node) || isSeq(node)) return node;
  return undefined;
}

/** The key of a pair as a plain string, or undefined. */
export function keyString(pair: Pair, doc: Document.Parsed): string | undefined {
  const key = deref(pair.key, doc);
  if (isScalar(key) && (typeof key.value === 'string' || typeof key.value === 'number')) {
    return String(key.value);
  }
  return undefined;
}

/** The pairs of a map, with `<<: *anchor` merge keys expanded (own keys first, so they win). */
export function mapPairs(map: YAMLMap, doc: Document.Parsed, depth = 0): Pair[] {
  const own: Pair[] = [];
  const merged: Pair[] = [];
  for (const item of map.items) {
    if (!isPair(item)) continue;
    const key = item.key;
    // With `merge: true` the yaml package gives merge keys a symbol value; the fast path never makes one.
    const isMerge =
      isScalar(key) &&
      (key.value === '<<' || typeof key.value === 'symbol') &&
      (key.source === '<<' || key.type === 'PLAIN');
    if (isMerge && depth < 8) {
      const sources = isSeq(item.value) ? item.value.items : [item.value];
      for (const source of sources) {
        const target = deref(source, doc);
        if (isMap(target)) merged.push(...mapPairs(target, doc, depth + 1));
      }
      continue;
    }
    own.push(item);
  }
  return [...own, ...merged];
}

/** The value node of `key` in a map (first match, merge keys considered). */
export function mapGet(node: unknown, key: string, doc: Document.Parsed): Node | undefined {
  const map = deref(node, doc);
  if (!isMap(map)) return undefined;
  for (const pair of mapPairs(map, doc)) {
    if (keyString(pair, doc) === key) return deref(pair.value, doc);
  }
  return undefined;
}

/** A string scalar's value, or undefined. */
export function stringValue(node: unknown, doc: Document.Parsed): string | undefined {
  const scalar = deref(node, doc);
  if (isScalar(scalar) && typeof scalar.value === 'string') return scalar.value;
  if (isScalar(scalar) && typeof scalar.value === 'number') return scalar.source ?? String(scalar.value);
  return undefined;
}

export function seqItems(node: unknown, doc: Document.Parsed): Node[] {
  const seq = deref(node, doc);
  if (!isSeq(seq)) return [];
  return seq.items.map((item) => deref(item, doc)).filter((item) => item !== undefined);
}

/**
 * Where a scalar's text stands in the source: offset of its first character and the text exactly as
 * written, without quotes (and the decoded `value` when escapes make it differ). Undefined for block scalars and anything whose source cannot be located.
 */
export function scalarSpan(
  node: unknown,
  content: string,
  doc: Document.Parsed,
): { offset: number; text: string; value?: string } | undefined {
  const scalar = deref(node, doc);
  if (!isScalar(scalar) || !scalar.range) return undefined;
  const value = typeof scalar.value === 'string' ? scalar.value : undefined;
  const [start, end] = scalar.range;
  switch (scalar.type) {
    case 'PLAIN': {
      const text = content.slice(start, end);
      return text.length > 0 ? { offset: start, text } : undefined;
    }
    case 'QUOTE_DOUBLE':
    case 'QUOTE_SINGLE': {
      const quote = scalar.type === 'QUOTE_DOUBLE' ? '"' : "'";
      if (content[start] !== quote || content[end - 1] !== quote || end - start < 2) return undefined;
      const text = content.slice(start + 1, end - 1);
      // A value written over several lines is not a single reference; leave it.
      if (text.includes('\n')) return undefined;
      if (text.length === 0) return undefined;
      // Escapes (`\u002F`, `''`) make the written text differ from the value: keep both.
      return value !== undefined && value !== text
        ? { offset: start + 1, text, value }
        : { offset: start + 1, text };
    }
    default:
      return undefined;
  }
}

/** The tag of a node (`!Ref`, `!Sub`, …), if any. */
export function tagOf(node: unknown): string | undefined {
  if (isScalar(node) || isMap(node) || isSeq(node)) return node.tag ?? undefined;
  return undefined;
}

/** JSON-path-like segment appended to a path: `a.b`, `a[0]`. */
export function joinPath(path: string, segment: string | number): string {
  if (typeof segment === 'number') return `${path}[${segment}]`;
  const safe = /^[A-Za-z_$][\w$-]*$/.test(segment) ? segment : JSON.stringify(segment);
  return path === '' ? safe : `${path}.${safe}`;
}

export { isMap, isScalar, isSeq };
