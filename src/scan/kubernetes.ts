/**
 * Kubernetes manifests, in YAML, in JSON and in files without an extension (recognised by `apiVersion` and
 * `kind` in their first 4 KiB).
 *
 * Every object with containers (`containers`, `initContainers`, `ephemeralContainers` at any depth, which
 * covers Pods, every workload kind's pod template, CronJob job templates and custom resources that embed a
 * pod spec), across multi-document streams and `kind: List` items; the image maps of Flux HelmRelease
 * `spec.values` and Argo CD Application `helm.valuesObject` (see `helm.ts`).
 *
 * A stream is cut into its documents before anything is parsed, and a document is parsed only when it can
 * hold an image: CustomResourceDefinitions (schemas, often megabytes, that pull nothing) and documents
 * without a container list or values are skipped unread. Go-templated documents (Helm chart templates) are
 * not YAML: their lines are read instead. In a chart's `templates/` folder, images that come from values
 * (`{{ ... }}`) are reported where the values file defines them, not here; literal images are reported.
 */
import type { Document } from 'yaml';
import { helmImageReferences, templateReason } from './helm.ts';
import {
  deref,
  isMap,
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
import type { Extractor, FoundReference } from './types.ts';
import { positionOf } from './types.ts';

const CONTAINER_KEYS = new Set(['containers', 'initContainers', 'ephemeralContainers']);
const MAX_DEPTH = 64;

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Walks one Kubernetes object (or any node under it) for container lists. */
function walkObject(
  node: unknown,
  doc: Document.Parsed,
  yamlPath: string,
  label: string,
  visit: (image: unknown, context: string) => void,
  depth: number,
): void {
  if (depth > MAX_DEPTH) return;
  const current = deref(node, doc);
  if (isMap(current)) {
    for (const pair of mapPairs(current, doc)) {
      const key = keyString(pair, doc);
      if (key === undefined) continue;
      const childPath = joinPath(yamlPath, key);
      const value = deref(pair.value, doc);
      if (CONTAINER_KEYS.has(key) && isSeq(value)) {
        seqItems(value, doc).forEach((container, index) => {
          const image = mapGet(container, 'image', doc);
          if (image !== undefined) visit(image, `${label} ${joinPath(joinPath(childPath, index), 'image')}`);
        });
        continue;
      }
      walkObject(value, doc, childPath, label, visit, depth + 1);
    }
  } else if (isSeq(current)) {
    seqItems(current, doc).forEach((item, index) => {
      walkObject(item, doc, joinPath(yamlPath, index), label, visit, depth + 1);
    });
  }
}

function objectLabel(object: unknown, doc: Document.Parsed): string {
  const kind = stringValue(mapGet(object, 'kind', doc), doc) ?? 'object';
  const name = stringValue(mapGet(mapGet(object, 'metadata', doc), 'name', doc), doc);
  return name === undefined ? kind : `${kind}/${name}`;
}

/** The Helm values an object carries for a chart kept elsewhere, and their key path. */
function chartValues(object: unknown, doc: Document.Parsed): { node: unknown; path: string }[] {
  const kind = stringValue(mapGet(object, 'kind', doc), doc);
  const spec = mapGet(object, 'spec', doc);
  if (kind === 'HelmRelease') return [{ node: mapGet(spec, 'values', doc), path: 'spec.values' }];
  if (kind !== 'Application' && kind !== 'ApplicationSet') return [];
  const sources: { node: unknown; path: string }[] = [];
  const source = mapGet(spec, 'source', doc);
  if (source) sources.push({ node: source, path: 'spec.source' });
  seqItems(mapGet(spec, 'sources', doc), doc).forEach((item, index) =>
    sources.push({ node: item, path: `spec.sources[${index}]` }),
  );
  return sources.map(({ node, path }) => ({
    node: mapGet(mapGet(node, 'helm', doc), 'valuesObject', doc),
    path: `${path}.helm.valuesObject`,
  }));
}

/** One document of a stream: where it starts in the file and its text. */
interface DocumentText {
  start: number;
  text: string;
}

/**
 * The documents of a YAML stream, cut where a line starts with `---`. A marker at the start of a line always
 * ends the document before it, inside block scalars too, so cutting there never splits a value.
 */
export function splitDocuments(content: string): DocumentText[] {
  const documents: DocumentText[] = [];
  const marker = /^---(?=[ \t\r\n]|$)/gm;
  let start = 0;
  for (let match = marker.exec(content); match; match = marker.exec(content)) {
    if (match.index > start) documents.push({ start, text: content.slice(start, match.index) });
    start = match.index;
    marker.lastIndex = match.index + 3;
  }
  documents.push({ start, text: content.slice(start) });
  return documents;
}

/** A line that only a Go template has: a value or a line that starts with `{{` (YAML would read a flow map). */
const TEMPLATE_LINE = /^[ \t]*(?:- +)?\{\{|:[ \t]+\{\{/m;

/** The top-level kind of a YAML document, read without parsing it. */
function documentKind(text: string): string | undefined {
  return /^kind:[ \t]*["']?([A-Za-z0-9]+)/m.exec(text)?.[1];
}

/** One file being read: where references go, once each. */
interface Manifest {
  path: string;
  content: string;
  /**
   * In a chart's templates an image written as a template expression comes from the values file, where it
   * is reported; elsewhere it is reported here, unresolved.
   */
  chartTemplate: boolean;
  found: FoundReference[];
  seen: Set<number>;
}

function add(manifest: Manifest, reference: FoundReference): void {
  if (manifest.seen.has(reference.offset)) return;
  manifest.seen.add(reference.offset);
  manifest.found.push(reference);
}

function extractManifest(path: string, content: string): FoundReference[] {
  const manifest: Manifest = {
    path,
    content,
    chartTemplate: /(?:^|\/)templates\//.test(path),
    found: [],
    seen: new Set(),
  };
  // JSON opens with `{"` (or a list of objects); a Go template opens with `{{`.
  const json = /^\s*(?:\{\s*["}]|\[\s*[{\]])/.test(content);
  for (const { start, text } of json ? [{ start: 0, text: content }] : splitDocuments(content)) {
    if (!json) {
      const kind = documentKind(text);
      if (kind === 'CustomResourceDefinition') continue;
      const carriesValues = kind === 'HelmRelease' || kind === 'Application' || kind === 'ApplicationSet';
      if (!carriesValues && !text.includes('ontainers')) continue;
    }
    const documents = json || !TEMPLATE_LINE.test(text) ? parseDocuments(text) : [];
    if (documents.length === 0 && !json && text.includes('{{')) {
      // Go-templated: template actions where YAML cannot read them (at a line start, after a key, in quotes).
      for (const reference of templatedImages(path, content, start, text, manifest.chartTemplate)) {
        add(manifest, reference);
      }
      continue;
    }
    for (const { doc, root } of documents) {
      if (isMap(root)) documentReferences(manifest, start, text, doc, root);
    }
  }
  return manifest.found.sort((a, b) => a.offset - b.offset);
}

/** The images of one parsed document (`text`, at `start` in the file): containers and chart values. */
function documentReferences(
  manifest: Manifest,
  start: number,
  text: string,
  doc: Document.Parsed,
  root: unknown,
): void {
  const { path, content } = manifest;
  const visit = (image: unknown, context: string): void => {
    const span = scalarSpan(image, text, doc);
    if (!span || (manifest.chartTemplate && span.text.includes('{{'))) return;
    const offset = start + span.offset;
    const { line, column } = positionOf(content, offset);
    const reference: FoundReference = {
      file: path,
      line,
      column,
      offset,
      text: span.text,
      kind: 'kubernetes',
    };
    if (span.value !== undefined && span.value !== span.text) reference.resolved = span.value;
    const reason = templateReason(span.text);
    if (reason) reference.unresolved = reason;
    reference.context = context;
    add(manifest, reference);
  };
  const rootKind = stringValue(mapGet(root, 'kind', doc), doc);
  const items = mapGet(root, 'items', doc);
  const objects: { object: unknown; label: string }[] =
    rootKind !== undefined && rootKind.endsWith('List') && isSeq(items)
      ? seqItems(items, doc).map((item, index) => ({
          object: item,
          label: `${rootKind}.items[${index}] ${objectLabel(item, doc)}`,
        }))
      : [{ object: root, label: objectLabel(root, doc) }];
  for (const { object, label } of objects) {
    walkObject(object, doc, '', label, visit, 0);
    for (const values of chartValues(object, doc)) {
      if (values.node === undefined) continue;
      const references = helmImageReferences(path, text, doc, values.node, {
        kind: 'helm-values',
        chart: 'remote',
        base: start,
        file: content,
        path: values.path,
      });
      for (const reference of references) {
        reference.context = `${label} ${reference.context ?? ''}`.trim();
        add(manifest, reference);
      }
    }
  }
}

/** A block scalar's header at the end of a line (`key: |`, `- >-`): its lines are text, not keys. */
const BLOCK_HEADER = /(?:^|:|-)[ \t]+[|>][-+0-9]*[ \t]*(?:#.*)?$/;
const IMAGE_LINE = /^([ \t]*)(?:- +)?image:[ \t]*(.*)$/;

/**
 * The images in a Go-templated document: `image:` lines outside block scalars, those written as template
 * expressions only outside a chart's templates. Only the text of each line is read; nothing is parsed.
 */
function templatedImages(
  path: string,
  content: string,
  start: number,
  text: string,
  chartTemplate: boolean,
): FoundReference[] {
  const found: FoundReference[] = [];
  let blockIndent = -1;
  let lineStart = 0;
  while (lineStart <= text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd === -1) lineEnd = text.length;
    const line = text.slice(lineStart, lineEnd).replace(/\r$/, '');
    const offset = lineStart;
    lineStart = lineEnd + 1;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const indent = line.length - line.trimStart().length;
    if (blockIndent !== -1) {
      // Lines that are only a template action do not end a block scalar: they are text to YAML as well.
      if (indent > blockIndent || /^\{\{.*\}\}$/.test(trimmed)) continue;
      blockIndent = -1;
    }
    if (BLOCK_HEADER.test(line)) {
      blockIndent = indent;
      continue;
    }
    const match = IMAGE_LINE.exec(line);
    if (!match) continue;
    let value = match[2] ?? '';
    const comment = value.search(/(?:^|[ \t])#/);
    if (comment !== -1) value = value.slice(0, comment);
    value = value.trimEnd();
    let valueStart = line.length - (match[2] ?? '').length;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
      valueStart++;
    }
    if (value === '' || (chartTemplate && value.includes('{{'))) continue;
    if (!value.includes('{{') && /[\s"']/.test(value)) continue;
    const absolute = start + offset + valueStart;
    const { line: lineNumber, column } = positionOf(content, absolute);
    const reference: FoundReference = {
      file: path,
      line: lineNumber,
      column,
      offset: absolute,
      text: value,
      kind: 'kubernetes',
      context: 'image (a line of a Go template)',
    };
    const reason = templateReason(value);
    if (reason) reference.unresolved = reason;
    found.push(reference);
  }
  return found;
}

const YAML_HEAD = /^apiVersion[ \t]*:/m;
const YAML_KIND = /^kind[ \t]*:/m;
const JSON_HEAD = /"apiVersion"\s*:\s*"/;
const JSON_KIND = /"kind"\s*:\s*"/;

export const kubernetesExtractor: Extractor = {
  kind: 'kubernetes',
  matches(path, head) {
    const base = basename(path);
    const extension = /\.(ya?ml|json)$/i.exec(base)?.[1]?.toLowerCase();
    if (extension === undefined && base.includes('.')) return false;
    const yaml = YAML_HEAD.test(head) && YAML_KIND.test(head);
    const json = JSON_HEAD.test(head) && JSON_KIND.test(head);
    if (extension === 'json') return json;
    if (extension !== undefined) return yaml;
    return yaml || json;
  },
  extract(path, content) {
    try {
      return extractManifest(path, content);
    } catch {
      return [];
    }
  },
};
