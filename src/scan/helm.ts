/**
 * Helm values: the images a chart pulls, as values files write them.
 *
 * An image map is one reference, under any key: a mapping holding `repository` (with optional `registry`,
 * `tag`, `digest`) whose key names an image (`image`, `gitImage`, `metrics.image`, ...) or which has a tag,
 * digest, registry or pull policy beside it; also `{registry, image, tag}` under an image key, and
 * `image: {name, tag}`. It is reported at its repository value, with the composed reference as `resolved`
 * and, in `parts`, where each part is written so that `rewrite` can edit them. A non-empty
 * `global.imageRegistry` in the same file replaces every map's registry, as charts that declare it do.
 * Plain strings under `image` (and under `...Image` keys when they look like references) are references too.
 *
 * `repository` values that are chart repositories (`https://...`, `oci://...`, `@alias`) are never images.
 */
import type { Document, YAMLMap } from 'yaml';
import {
  deref,
  isMap,
  isScalar,
  isSeq,
  joinPath,
  keyString,
  mapGet,
  mapPairs,
  parseDocuments,
  scalarSpan,
  seqItems,
  stringValue,
} from './json-util.ts';
import type { Extractor, FoundReference, ReferenceKind, ReferenceParts, TextSpan } from './types.ts';
import { positionOf } from './types.ts';

const MAX_DEPTH = 64;

/** Keys beside `repository` that only image maps have. */
const IMAGE_MAP_KEYS = ['registry', 'tag', 'digest', 'pullPolicy', 'imagePullPolicy'];

/** Why a reference cannot be resolved, when it is a template or variable rather than an image name. */
export function templateReason(text: string): string | undefined {
  if (text.includes('{{')) return `uses a Helm/Go template expression (${text})`;
  const variable = /\$\{?([A-Za-z_][A-Za-z0-9_]*)/.exec(text);
  if (variable) return `uses $${variable[1] ?? ''}, substituted when the manifest is rendered`;
  return undefined;
}

/** A repository value that can name an image: no spaces (templates aside), no URL, no chart repository alias. */
function looksLikeRepository(text: string): boolean {
  if (text.includes('{{')) return true;
  return /^[A-Za-z0-9$][^\s]*$/.test(text) && !text.includes('://') && !/^(?:oci|file|https?):/i.test(text);
}

/** A key that holds an image as a string: `image`, or a camelCase `...Image` key whose value looks like one. */
function isImageKey(key: string, value: string): boolean {
  if (key === 'image') return true;
  return /^[a-z][A-Za-z0-9]*Image$/.test(key) && /[:/@]/.test(value) && !/\s/.test(value);
}

/** A scalar's text span, also for an empty quoted value (`""`), which has nothing between its quotes. */
function editableSpan(node: unknown, content: string, doc: Document.Parsed): TextSpan | undefined {
  const span = scalarSpan(node, content, doc);
  if (span) return { offset: span.offset, text: span.text };
  const scalar = deref(node, doc);
  if (!isScalar(scalar) || !scalar.range) return undefined;
  const [start, end] = scalar.range;
  const quote = scalar.type === 'QUOTE_DOUBLE' ? '"' : scalar.type === 'QUOTE_SINGLE' ? "'" : undefined;
  if (quote && end - start === 2 && content[start] === quote && content[start + 1] === quote) {
    return { offset: start + 1, text: '' };
  }
  return undefined;
}

/** A part value as text: strings, and numbers as written (`tag: 7.2` is "7.2", not 7.2). */
function partValue(node: unknown, doc: Document.Parsed): string {
  return stringValue(node, doc) ?? '';
}

export interface HelmWalkOptions {
  kind: ReferenceKind;
  chart: ReferenceParts['chart'];
  /** Added to every offset: the walked text starts there in the file (a document of a stream, a heredoc). */
  base?: number;
  /** The whole file, for lines and columns (defaults to the walked text). */
  file?: string;
  /** The key path of the walked node, for contexts. */
  path?: string;
  /**
   * The values' non-empty `global.imageRegistry`, when the walked node is not the root that holds it (a
   * top-level block of a values file); null when there is none. Looked up under the node by default.
   */
  globalRegistry?: GlobalRegistry | null;
}

interface GlobalRegistry {
  value: string;
  line: number;
}

/** What reading one values tree needs at every node. */
interface Walk {
  path: string;
  content: string;
  doc: Document.Parsed;
  options: HelmWalkOptions;
  base: number;
  file: string;
  globalRegistry: GlobalRegistry | undefined;
  found: FoundReference[];
  seen: Set<number>;
}

/**
 * Every image reference under `root` (a values tree). `content` is the text the nodes' ranges point into.
 */
export function helmImageReferences(
  path: string,
  content: string,
  doc: Document.Parsed,
  root: unknown,
  options: HelmWalkOptions,
): FoundReference[] {
  const base = options.base ?? 0;
  const file = options.file ?? content;
  const globalRegistry =
    options.globalRegistry === undefined
      ? findGlobalRegistry(root, doc, content, file, base)
      : (options.globalRegistry ?? undefined);
  const walk: Walk = { path, content, doc, options, base, file, globalRegistry, found: [], seen: new Set() };
  walkValues(walk, root, options.path ?? '', 0);
  return walk.found;
}

function walkValues(walk: Walk, node: unknown, nodePath: string, depth: number): void {
  if (depth > MAX_DEPTH) return;
  const { doc, content } = walk;
  const current = deref(node, doc);
  if (isSeq(current)) {
    seqItems(current, doc).forEach((item, index) =>
      walkValues(walk, item, joinPath(nodePath, index), depth + 1),
    );
    return;
  }
  if (!isMap(current)) return;
  for (const pair of mapPairs(current, doc)) {
    const key = keyString(pair, doc);
    if (key === undefined) continue;
    const childPath = joinPath(nodePath, key);
    const value = deref(pair.value, doc);
    if (isMap(value) && imageMap(walk, key, value, childPath)) continue;
    if (isScalar(value)) {
      const text = typeof value.value === 'string' ? value.value : undefined;
      if (text !== undefined && isImageKey(key, text)) {
        const span = scalarSpan(value, content, doc);
        if (span) report(walk, { offset: span.offset, text: span.text }, childPath, span.value ?? span.text);
      }
      continue;
    }
    walkValues(walk, value, childPath, depth + 1);
  }
}

function report(walk: Walk, span: TextSpan, context: string, resolved: string, parts?: ReferenceParts): void {
  const offset = walk.base + span.offset;
  if (walk.seen.has(offset)) return;
  walk.seen.add(offset);
  const { line, column } = positionOf(walk.file, offset);
  const reference: FoundReference = {
    file: walk.path,
    line,
    column,
    offset,
    text: span.text,
    kind: walk.options.kind,
  };
  if (resolved !== span.text) reference.resolved = resolved;
  const reason = templateReason(resolved);
  if (reason) reference.unresolved = reason;
  reference.context = context;
  if (parts) reference.parts = parts;
  walk.found.push(reference);
}

/** Which key of a map names its image, when the map is an image map under `key`. */
function repositoryKeyOf(walk: Walk, key: string, map: YAMLMap): 'repository' | 'image' | 'name' | undefined {
  const { doc } = walk;
  const repositoryNode = mapGet(map, 'repository', doc);
  const imageKey = /image$/i.test(key);
  if (repositoryNode !== undefined) {
    const repository = stringValue(repositoryNode, doc);
    if (repository === undefined || !looksLikeRepository(repository)) return undefined;
    const besides = IMAGE_MAP_KEYS.some((name) => mapGet(map, name, doc) !== undefined);
    return imageKey || besides ? 'repository' : undefined;
  }
  if (imageKey && mapGet(map, 'registry', doc) !== undefined && stringValue(mapGet(map, 'image', doc), doc)) {
    return 'image';
  }
  if (key === 'image' && stringValue(mapGet(map, 'name', doc), doc)) return 'name';
  return undefined;
}

/** Reports `map` as one reference when it is an image map; whether it was. */
function imageMap(walk: Walk, key: string, map: YAMLMap, mapPath: string): boolean {
  const { doc, content, base, globalRegistry } = walk;
  const repositoryKey = repositoryKeyOf(walk, key, map);
  if (!repositoryKey) return false;
  const node = mapGet(map, repositoryKey, doc);
  const span = editableSpan(node, content, doc);
  const repository = stringValue(node, doc);
  if (!span || !repository) return false;
  const registryNode = mapGet(map, 'registry', doc);
  const registry = partValue(registryNode, doc);
  const tag = partValue(mapGet(map, 'tag', doc), doc);
  const digest = partValue(mapGet(map, 'digest', doc), doc);
  const effectiveRegistry = globalRegistry?.value || registry;
  let composed = effectiveRegistry ? `${effectiveRegistry}/${repository}` : repository;
  if (tag) composed += `:${tag}`;
  if (digest) composed += `@${digest}`;
  const named = [joinPath(mapPath, repositoryKey)];
  if (globalRegistry) named.unshift(`global.imageRegistry (line ${globalRegistry.line})`);
  else if (registry) named.unshift(joinPath(mapPath, 'registry'));
  if (tag) named.push(joinPath(mapPath, 'tag'));
  if (digest) named.push(joinPath(mapPath, 'digest'));
  let context = `${joinPath(mapPath, repositoryKey)}: composed reference (${named.join(' + ')})`;
  if (!tag && !digest) context += '; no tag set, the chart usually defaults it to its appVersion';
  const shift = (part: TextSpan): TextSpan => ({ offset: base + part.offset, text: part.text });
  const parts: ReferenceParts = { path: mapPath, repository: shift(span), chart: walk.options.chart };
  if (registryNode !== undefined) {
    const registrySpan = editableSpan(registryNode, content, doc);
    if (registrySpan) parts.registry = shift(registrySpan);
    else parts.registryUnwritable = true;
  } else if (!map.flow) {
    const line = registryLineAfter(map, repositoryKey, content, doc);
    if (line) parts.registryLine = { offset: base + line.offset, indent: line.indent };
  }
  if (globalRegistry) parts.globalRegistry = { line: globalRegistry.line, value: globalRegistry.value };
  report(walk, span, context, composed, parts);
  return true;
}

/**
 * Where a `registry:` line can be added to a block map: at the end of its repository key's line, with the
 * indentation of that key. Undefined when the key does not start its own line in a way that can be matched.
 */
function registryLineAfter(
  map: YAMLMap,
  repositoryKey: string,
  content: string,
  doc: Document.Parsed,
): { offset: number; indent: string } | undefined {
  const pair = map.items.find((item) => keyString(item, doc) === repositoryKey);
  const key = pair?.key;
  const value = deref(pair?.value, doc);
  if (!isScalar(key) || !key.range || !isScalar(value) || !value.range) return undefined;
  const keyStart = key.range[0];
  const lineStart = content.lastIndexOf('\n', keyStart - 1) + 1;
  const before = content.slice(lineStart, keyStart);
  if (!/^[ -]*$/.test(before)) return undefined;
  const lineEnd = content.indexOf('\n', value.range[1]);
  return { offset: lineEnd === -1 ? content.length : lineEnd, indent: ' '.repeat(before.length) };
}

/** A non-empty `global.imageRegistry` at the root of the values. */
function findGlobalRegistry(
  root: unknown,
  doc: Document.Parsed,
  content: string,
  file: string,
  base: number,
): GlobalRegistry | undefined {
  const node = mapGet(mapGet(root, 'global', doc), 'imageRegistry', doc);
  const value = stringValue(node, doc);
  if (!value) return undefined;
  const span = scalarSpan(node, content, doc);
  return { value, line: span ? positionOf(file, base + span.offset).line : 0 };
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `values.yaml`, `values-prod.yaml`, `prod-values.yaml`, `prod.values.yml`, and any YAML in a `values/` folder. */
export function isValuesFile(path: string): boolean {
  const base = basename(path);
  if (!/\.ya?ml$/i.test(base)) return false;
  return (
    /^values[\w.-]*\.ya?ml$/i.test(base) ||
    /[-_.]values\.ya?ml$/i.test(base) ||
    /(?:^|\/)values\/[^/]+$/i.test(path)
  );
}

/** What may stand before an image-like key on its line: indentation, `- `, a flow collection, a quote. */
const KEY_PREFIX = /^[ \t]*(?:- +)?(?:[^#\n]*[{,][ \t]*)?["']?[\w.-]*$/;

/**
 * Whether `text` has a key an image could be under (`image`, `repository`, `...Image`, `...Repository`),
 * not in a comment. Text without one is not parsed. Found with plain string searches: a regular expression
 * anchored at line starts is several times slower over a 100 KB values file.
 */
export function hasImageLikeKey(text: string): boolean {
  for (const needle of ['mage', 'epository']) {
    for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
      let end = at + needle.length;
      if (text[end] === '"' || text[end] === "'") end++;
      while (text[end] === ' ' || text[end] === '\t') end++;
      if (text[end] !== ':') continue;
      if (KEY_PREFIX.test(text.slice(text.lastIndexOf('\n', at) + 1, at))) return true;
    }
  }
  return false;
}

/** Whether `text` has an anchor or an alias (`&name`, `*name` after a space or a flow indicator). */
function hasAnchorOrAlias(text: string): boolean {
  for (const mark of ['&', '*']) {
    for (let at = text.indexOf(mark); at !== -1; at = text.indexOf(mark, at + 1)) {
      const before = at === 0 ? '\n' : text[at - 1]!;
      if (' \t\n[{,'.includes(before) && /[\w-]/.test(text[at + 1] ?? '')) return true;
    }
  }
  return false;
}

interface Block {
  start: number;
  text: string;
  key: string;
}

/**
 * A values file cut into its top-level entries (`image:`, `primary:`, ...), each with the lines under it: a
 * block mapping at the root is the union of these, so each can be read alone. Undefined when the file is
 * something else (one flow collection, several documents, directives, complex keys, anchors or aliases).
 */
export function topLevelBlocks(content: string): Block[] | undefined {
  if (hasAnchorOrAlias(content)) return undefined;
  const starts: { start: number; key: string }[] = [];
  let lineStart = 0;
  while (lineStart < content.length) {
    let lineEnd = content.indexOf('\n', lineStart);
    if (lineEnd === -1) lineEnd = content.length;
    const char = content[lineStart]!;
    if (char === '-') {
      if (content.startsWith('---', lineStart)) {
        if (starts.length > 0) return undefined; // a second document
      } else if (!/^-(?:[ \t]|\r?$)/.test(content.slice(lineStart, Math.min(lineEnd, lineStart + 2)))) {
        return undefined;
      }
    } else if (char === '.' && content.startsWith('...', lineStart)) return undefined;
    else if (!' \t\r\n#'.includes(char)) {
      if ('?:%{[&*!|>@`'.includes(char)) return undefined;
      const key = /^["']?([^"':]*)/.exec(content.slice(lineStart, lineEnd))?.[1] ?? '';
      starts.push({ start: starts.length === 0 ? 0 : lineStart, key });
    }
    lineStart = lineEnd + 1;
  }
  return starts.map((entry, index) => ({
    start: entry.start,
    key: entry.key,
    text: content.slice(entry.start, starts[index + 1]?.start ?? content.length),
  }));
}

/**
 * A values file is read block by block: only the top-level entries that have an image-like key are parsed
 * (so a large section without one, or one the fast reader leaves to the full parser, costs nothing), with
 * the `global.imageRegistry` of the `global` entry applied to all. Anything else is parsed whole.
 */
function extractHelmValues(path: string, content: string): FoundReference[] {
  if (!hasImageLikeKey(content)) return [];
  const options = { kind: 'helm-values', chart: 'local' } as const;
  const whole = (): FoundReference[] =>
    parseDocuments(content).flatMap(({ doc, root }) =>
      helmImageReferences(path, content, doc, root, options),
    );
  const blocks = topLevelBlocks(content);
  if (!blocks) return whole();
  let globalRegistry: GlobalRegistry | null = null;
  const global = blocks.find((block) => block.key === 'global');
  if (global?.text.includes('imageRegistry')) {
    const [parsed] = parseDocuments(global.text);
    if (!parsed) return whole();
    globalRegistry = findGlobalRegistry(parsed.root, parsed.doc, global.text, content, global.start) ?? null;
  }
  const found: FoundReference[] = [];
  for (const block of blocks) {
    if (!hasImageLikeKey(block.text)) continue;
    const documents = parseDocuments(block.text);
    // A block that cannot be read alone (a quoted scalar running on at column 0): read the file whole.
    if (documents.length === 0) return whole();
    for (const { doc, root } of documents) {
      found.push(
        ...helmImageReferences(path, block.text, doc, root, {
          ...options,
          base: block.start,
          file: content,
          globalRegistry,
        }),
      );
    }
  }
  return found;
}

export const helmValuesExtractor: Extractor = {
  kind: 'helm-values',
  matches(path) {
    return isValuesFile(path);
  },
  extract(path, content) {
    try {
      return extractHelmValues(path, content);
    } catch {
      return [];
    }
  },
};
