/**
 * Kubernetes manifests and Helm values files.
 *
 * Manifests: every object with containers (`containers`, `initContainers`, `ephemeralContainers` at any depth,
 * which covers Pods, every workload kind's pod template, CronJob job templates and custom resources that
 * embed a pod spec), across multi-document streams and `kind: List` items.
 *
 * Helm values: `image: {registry?, repository, tag?, digest?}` at any depth (reported at the repository
 * scalar, with the composed reference as `resolved`) and plain `image: "nginx:1.25"` strings.
 */
import type { Document } from 'yaml';
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
import type { Extractor, FoundReference, ReferenceKind } from './types.ts';
import { positionOf } from './types.ts';

const CONTAINER_KEYS = new Set(['containers', 'initContainers', 'ephemeralContainers']);
const MAX_DEPTH = 64;

function isYamlPath(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Why a reference cannot be resolved, when it is a template or variable rather than an image name. */
export function templateReason(text: string): string | undefined {
  if (text.includes('{{')) return `uses a Helm/Go template expression (${text})`;
  const variable = /\$\{?([A-Za-z_][A-Za-z0-9_]*)/.exec(text);
  if (variable) return `uses $${variable[1] ?? ''}, substituted when the manifest is rendered`;
  return undefined;
}

function reference(
  path: string,
  content: string,
  kind: ReferenceKind,
  span: { offset: number; text: string; value?: string },
  context: string,
  resolved: string | undefined = span.value,
): FoundReference {
  const { line, column } = positionOf(content, span.offset);
  const found: FoundReference = {
    file: path,
    line,
    column,
    offset: span.offset,
    text: span.text,
    kind,
    context,
  };
  if (resolved !== undefined && resolved !== span.text) found.resolved = resolved;
  const reason = templateReason(span.text);
  if (reason) found.unresolved = reason;
  return found;
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

function extractManifest(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<number>();
  const visit =
    (doc: Document.Parsed) =>
    (image: unknown, context: string): void => {
      const span = scalarSpan(image, content, doc);
      if (!span || seen.has(span.offset)) return;
      seen.add(span.offset);
      found.push(reference(path, content, 'kubernetes', span, context));
    };
  for (const { doc, root } of parseDocuments(content)) {
    if (!isMap(root)) continue;
    const kind = stringValue(mapGet(root, 'kind', doc), doc);
    const items = mapGet(root, 'items', doc);
    if (kind !== undefined && kind.endsWith('List') && isSeq(items)) {
      seqItems(items, doc).forEach((item, index) => {
        const label = `${kind}.items[${index}] ${objectLabel(item, doc)}`;
        walkObject(item, doc, '', label, visit(doc), 0);
      });
      continue;
    }
    walkObject(root, doc, '', objectLabel(root, doc), visit(doc), 0);
  }
  return found;
}

export const kubernetesExtractor: Extractor = {
  kind: 'kubernetes',
  matches(path, head) {
    return isYamlPath(path) && /^apiVersion\s*:/m.test(head) && /^kind\s*:/m.test(head);
  },
  extract(path, content) {
    try {
      return extractManifest(path, content);
    } catch {
      return [];
    }
  },
};

function extractHelmValues(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<number>();
  const push = (reference: FoundReference): void => {
    if (seen.has(reference.offset)) return;
    seen.add(reference.offset);
    found.push(reference);
  };

  const walk = (node: unknown, doc: Document.Parsed, yamlPath: string, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    const current = deref(node, doc);
    if (isSeq(current)) {
      seqItems(current, doc).forEach((item, index) => walk(item, doc, joinPath(yamlPath, index), depth + 1));
      return;
    }
    if (!isMap(current)) return;
    for (const pair of mapPairs(current, doc)) {
      const key = keyString(pair, doc);
      if (key === undefined) continue;
      const childPath = joinPath(yamlPath, key);
      const value = deref(pair.value, doc);
      if (key === 'image' && isScalar(value)) {
        const span = scalarSpan(value, content, doc);
        if (span) push(reference(path, content, 'helm-values', span, childPath));
        continue;
      }
      if (key === 'image' && isMap(value)) {
        const repositoryNode = mapGet(value, 'repository', doc) ?? mapGet(value, 'name', doc);
        const repositoryKey = mapGet(value, 'repository', doc) ? 'repository' : 'name';
        const span = scalarSpan(repositoryNode, content, doc);
        if (span) {
          const repository = stringValue(repositoryNode, doc) ?? span.text;
          const registry = stringValue(mapGet(value, 'registry', doc), doc);
          const tag = stringValue(mapGet(value, 'tag', doc), doc);
          const digest = stringValue(mapGet(value, 'digest', doc), doc);
          const parts = [joinPath(childPath, repositoryKey)];
          let composed = registry ? `${registry}/${repository}` : repository;
          if (registry) parts.push(joinPath(childPath, 'registry'));
          if (tag) {
            composed += `:${tag}`;
            parts.push(joinPath(childPath, 'tag'));
          }
          if (digest) {
            composed += `@${digest}`;
            parts.push(joinPath(childPath, 'digest'));
          }
          let context = `${joinPath(childPath, repositoryKey)}: composed reference (${parts.join(' + ')})`;
          if (!tag && !digest) context += '; no tag set, the chart usually defaults it to its appVersion';
          push(reference(path, content, 'helm-values', span, context, composed));
          continue;
        }
      }
      walk(value, doc, childPath, depth + 1);
    }
  };

  for (const { doc, root } of parseDocuments(content)) walk(root, doc, '', 0);
  return found;
}

export const helmValuesExtractor: Extractor = {
  kind: 'helm-values',
  matches(path) {
    return /^values[\w.-]*\.ya?ml$/i.test(basename(path));
  },
  extract(path, content) {
    try {
      return extractHelmValues(path, content);
    } catch {
      return [];
    }
  },
};
