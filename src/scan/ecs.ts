/**
 * ECS task definition JSON (`containerDefinitions[].image`), including the `{"taskDefinition": {...}}`
 * output of `aws ecs describe-task-definition`. Task definitions written in CloudFormation are read by
 * `cloudformation.ts`, in Terraform by `terraform.ts`.
 */
import type { Document } from 'yaml';
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
import { build } from './found.ts';
import type { Extractor, FoundReference } from './types.ts';

const MAX_DEPTH = 64;

function extractTaskDefinitionJson(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<number>();
  const walk = (node: unknown, doc: Document.Parsed, jsonPath: string, depth: number): void => {
    if (depth > MAX_DEPTH) return;
    const current = deref(node, doc);
    if (isSeq(current)) {
      seqItems(current, doc).forEach((item, index) => walk(item, doc, joinPath(jsonPath, index), depth + 1));
      return;
    }
    if (!isMap(current)) return;
    for (const pair of mapPairs(current, doc)) {
      const key = keyString(pair, doc);
      if (key === undefined) continue;
      const childPath = joinPath(jsonPath, key);
      if (key === 'containerDefinitions') {
        seqItems(pair.value, doc).forEach((container, index) => {
          const span = scalarSpan(mapGet(container, 'image', doc), content, doc);
          if (!span || seen.has(span.offset)) return;
          seen.add(span.offset);
          const name = stringValue(mapGet(container, 'name', doc), doc);
          let context = joinPath(joinPath(childPath, index), 'image');
          if (name !== undefined) context += ` (container ${name})`;
          const unresolved = placeholderReason(span.text);
          found.push(
            build(
              path,
              content,
              'ecs-task-definition',
              span,
              unresolved ? { context, unresolved } : { context },
            ),
          );
        });
        continue;
      }
      walk(pair.value, doc, childPath, depth + 1);
    }
  };
  for (const { doc, root } of parseDocuments(content)) walk(root, doc, '', 0);
  return found;
}

/** Task definition JSON files are often templates (`${IMAGE}`, `<IMAGE>`, `{{image}}`) filled in by CI. */
function placeholderReason(text: string): string | undefined {
  const variable = /\$\{?([A-Za-z_][\w.:-]*)\}?/.exec(text);
  if (variable) return `uses \${${variable[1] ?? ''}}, substituted before the task definition is registered`;
  if (/\{\{.*\}\}/.test(text)) return `uses a template placeholder (${text}), filled in before registration`;
  if (/<[^>]+>/.test(text)) return `uses a placeholder (${text}), filled in before registration`;
  return undefined;
}

export const ecsTaskDefinitionExtractor: Extractor = {
  kind: 'ecs-task-definition',
  matches(path, head) {
    return /\.json$/i.test(path) && head.includes('"containerDefinitions"');
  },
  extract(path, content) {
    try {
      return extractTaskDefinitionJson(path, content);
    } catch {
      return [];
    }
  },
};
