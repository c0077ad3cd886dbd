/**
 * CloudFormation templates in YAML or JSON: `AWS::ECS::TaskDefinition` container images,
 * `AWS::CodeBuild::Project` `Environment.Image` (marked as run by CodeBuild, so that its curated images are
 * classified as CodeBuild's own), `AWS::Batch::JobDefinition` container images and `AWS::Lambda::Function`
 * / `AWS::Serverless::Function` image URIs, with `!Ref`, `!Sub` and the other intrinsics explained rather
 * than guessed.
 */
import type { Document } from 'yaml';
import {
  deref,
  isMap,
  isScalar,
  isSeq,
  keyString,
  mapGet,
  mapPairs,
  parseDocuments,
  scalarSpan,
  seqItems,
  stringValue,
  tagOf,
} from './json-util.ts';
import { build } from './found.ts';
import type { Extractor, FoundReference } from './types.ts';

const PSEUDO_PARAMETER = /^AWS::/;

interface CfnState {
  path: string;
  content: string;
  doc: Document.Parsed;
  /** Parameter name → its Default (undefined when declared without one). */
  parameters: Map<string, string | undefined>;
  found: FoundReference[];
  seen: Set<number>;
  /** Set while a CodeBuild project's image is reported. */
  codebuild?: boolean;
}

/** The intrinsic function of a node: short form tag (`!Ref`) or long form single-key map (`Ref`, `Fn::Sub`). */
function intrinsicOf(node: unknown, doc: Document.Parsed): { name: string; argument: unknown } | undefined {
  const tag = tagOf(node);
  if (tag !== undefined && tag.startsWith('!')) {
    const short = tag.slice(1);
    return { name: short === 'Ref' || short === 'Condition' ? short : `Fn::${short}`, argument: node };
  }
  if (isMap(node)) {
    const pairs = mapPairs(node, doc);
    const key = pairs.length === 1 && pairs[0] ? keyString(pairs[0], doc) : undefined;
    if (key !== undefined && (key === 'Ref' || key.startsWith('Fn::'))) {
      return { name: key, argument: deref(pairs[0]?.value, doc) };
    }
  }
  return undefined;
}

/** The source of a node for reporting when it is not a single scalar (`[M, K, V]`, `{"Fn::Join": ...}`). */
function nodeSpan(node: unknown, content: string): { offset: number; text: string } | undefined {
  if (!(isScalar(node) || isMap(node) || isSeq(node)) || !node.range) return undefined;
  const [start, end] = node.range;
  const text = content.slice(start, end).trimEnd();
  return text.length > 0 ? { offset: start, text } : undefined;
}

function pushOnce(state: CfnState, reference: FoundReference): void {
  if (state.seen.has(reference.offset)) return;
  state.seen.add(reference.offset);
  if (state.codebuild) reference.codebuild = true;
  state.found.push(reference);
}

function substitute(
  template: string,
  state: CfnState,
  locals: Map<string, string | undefined>,
): { resolved?: string; unresolved?: string; hasVariables: boolean } {
  const problems: string[] = [];
  let hasVariables = false;
  const resolved = template.replace(/\$\{(!?)([^}]*)\}/g, (whole, bang: string, name: string) => {
    if (bang === '!') return `\${${name}}`;
    hasVariables = true;
    const variable = name.trim();
    if (locals.has(variable)) {
      const value = locals.get(variable);
      if (value !== undefined) return value;
      problems.push(`\${${variable}} (a Sub variable computed at deploy time)`);
      return whole;
    }
    if (PSEUDO_PARAMETER.test(variable)) {
      problems.push(`\${${variable}} (pseudo parameter, known only at deploy time)`);
      return whole;
    }
    if (state.parameters.has(variable)) {
      const value = state.parameters.get(variable);
      if (value !== undefined) return value;
      problems.push(`\${${variable}} (parameter ${variable}, which has no Default)`);
      return whole;
    }
    problems.push(
      variable.includes('.')
        ? `\${${variable}} (attribute of resource ${variable.split('.')[0] ?? variable})`
        : `\${${variable}} (resource ${variable})`,
    );
    return whole;
  });
  if (problems.length > 0) return { unresolved: `uses ${problems.join(', ')}`, hasVariables };
  return { resolved, hasVariables };
}

function reportImage(state: CfnState, node: unknown, context: string, depth = 0): void {
  const { doc, content, path } = state;
  const current = deref(node, doc);
  if (current === undefined || depth > 4) return;
  const intrinsic = intrinsicOf(current, doc);
  if (!intrinsic) {
    if (!isScalar(current)) return;
    const span = scalarSpan(current, content, doc);
    if (span) pushOnce(state, build(path, content, 'cloudformation', span, { context }));
    return;
  }
  const argument = deref(intrinsic.argument, doc);
  switch (intrinsic.name) {
    case 'Ref':
      reportRef(state, argument, context);
      return;
    case 'Fn::Sub':
      reportSub(state, argument, context);
      return;
    case 'Fn::If': {
      // Both branches are candidate images.
      const [, whenTrue, whenFalse] = seqItems(argument, doc);
      reportImage(state, whenTrue, `${context} (Fn::If, true branch)`, depth + 1);
      reportImage(state, whenFalse, `${context} (Fn::If, false branch)`, depth + 1);
      return;
    }
    default:
      reportComputed(state, intrinsic.name, argument, context);
  }
}

/** `Ref` to a parameter resolves to its Default; to anything else (resource, pseudo parameter) it stays unresolved. */
function reportRef(state: CfnState, argument: unknown, context: string): void {
  const { doc, content, path } = state;
  const span = scalarSpan(argument, content, doc);
  const name = stringValue(argument, doc);
  if (!span || name === undefined) return;
  if (state.parameters.has(name)) {
    const fallback = state.parameters.get(name);
    if (fallback !== undefined) {
      pushOnce(
        state,
        build(path, content, 'cloudformation', span, {
          context: `${context}: comes from parameter ${name} (its Default is ${fallback})`,
          resolved: fallback,
        }),
      );
    } else {
      pushOnce(
        state,
        build(path, content, 'cloudformation', span, {
          context,
          unresolved: `comes from parameter ${name}, which has no Default`,
        }),
      );
    }
  } else {
    pushOnce(
      state,
      build(path, content, 'cloudformation', span, {
        context,
        unresolved: PSEUDO_PARAMETER.test(name)
          ? `refers to pseudo parameter ${name}`
          : `refers to resource ${name}`,
      }),
    );
  }
}

/** `Fn::Sub`, short (`template`) or long (`[template, variables]`) form, substituted as far as is known. */
function reportSub(state: CfnState, argument: unknown, context: string): void {
  const { doc, content, path } = state;
  let templateNode: unknown = argument;
  let locals = new Map<string, string | undefined>();
  if (isSeq(argument)) {
    const [first, variables] = seqItems(argument, doc);
    templateNode = first;
    locals = subVariables(variables, doc);
  }
  const span = scalarSpan(templateNode, content, doc);
  const template = stringValue(templateNode, doc);
  if (!span || template === undefined) return;
  const result = substitute(template, state, locals);
  const extra: { context: string; resolved?: string; unresolved?: string } = {
    context: result.hasVariables ? `${context} (Fn::Sub)` : context,
  };
  if (result.unresolved !== undefined) extra.unresolved = result.unresolved;
  if (result.resolved !== undefined) extra.resolved = result.resolved;
  pushOnce(state, build(path, content, 'cloudformation', span, extra));
}

/** The variable map of a long-form `Fn::Sub`: name → literal value, or undefined when it is itself an intrinsic. */
function subVariables(variables: unknown, doc: Document.Parsed): Map<string, string | undefined> {
  const locals = new Map<string, string | undefined>();
  if (!isMap(variables)) return locals;
  for (const pair of mapPairs(variables, doc)) {
    const key = keyString(pair, doc);
    if (key === undefined) continue;
    const value = deref(pair.value, doc);
    locals.set(key, intrinsicOf(value, doc) ? undefined : stringValue(value, doc));
  }
  return locals;
}

const COMPUTED_REASONS: Record<string, string> = {
  'Fn::GetAtt': 'comes from a resource attribute (Fn::GetAtt)',
  'Fn::FindInMap': 'comes from a Mappings lookup (Fn::FindInMap)',
  'Fn::ImportValue': 'comes from another stack’s export (Fn::ImportValue)',
  'Fn::Join': 'is built with Fn::Join at deploy time',
  'Fn::Select': 'is chosen with Fn::Select at deploy time',
};

/** Any other intrinsic: the image is known only at deploy time; reported unresolved with the reason. */
function reportComputed(state: CfnState, name: string, argument: unknown, context: string): void {
  const { doc, content, path } = state;
  const span = isScalar(argument) ? scalarSpan(argument, content, doc) : nodeSpan(argument, content);
  if (!span) return;
  pushOnce(
    state,
    build(path, content, 'cloudformation', span, {
      context,
      unresolved: COMPUTED_REASONS[name] ?? `is computed by ${name} at deploy time`,
    }),
  );
}

/** Parameter name → its Default, for every parameter the template declares. */
function readParameters(root: unknown, doc: Document.Parsed): Map<string, string | undefined> {
  const parameters = new Map<string, string | undefined>();
  const parametersNode = mapGet(root, 'Parameters', doc);
  if (isMap(parametersNode)) {
    for (const pair of mapPairs(parametersNode, doc)) {
      const name = keyString(pair, doc);
      if (name !== undefined) parameters.set(name, stringValue(mapGet(pair.value, 'Default', doc), doc));
    }
  }
  return parameters;
}

function extractCloudFormation(path: string, content: string): FoundReference[] {
  const found: FoundReference[] = [];
  const seen = new Set<number>();
  for (const { doc, root } of parseDocuments(content, { fast: false })) {
    if (!isMap(root)) continue;
    const parameters = readParameters(root, doc);
    const state: CfnState = { path, content, doc, parameters, found, seen };
    const resources = mapGet(root, 'Resources', doc);
    if (!isMap(resources)) continue;
    for (const pair of mapPairs(resources, doc)) {
      const logicalId = keyString(pair, doc);
      if (logicalId === undefined) continue;
      const type = stringValue(mapGet(pair.value, 'Type', doc), doc);
      const properties = mapGet(pair.value, 'Properties', doc);
      if (type === undefined || !isMap(properties)) continue;
      reportResourceImages(state, type, properties, `Resources.${logicalId} (${type}) Properties`);
    }
  }
  return found;
}

/** The image fields of one resource of a known type; other types have none. */
function reportResourceImages(state: CfnState, type: string, properties: unknown, base: string): void {
  const { doc } = state;
  switch (type) {
    case 'AWS::ECS::TaskDefinition':
      seqItems(mapGet(properties, 'ContainerDefinitions', doc), doc).forEach((container, index) => {
        const name = stringValue(mapGet(container, 'Name', doc), doc);
        const suffix = name === undefined ? '' : ` (container ${name})`;
        reportImage(
          state,
          mapGet(container, 'Image', doc),
          `${base}.ContainerDefinitions[${index}].Image${suffix}`,
        );
      });
      break;
    case 'AWS::CodeBuild::Project':
      state.codebuild = true;
      reportImage(
        state,
        mapGet(mapGet(properties, 'Environment', doc), 'Image', doc),
        `${base}.Environment.Image`,
      );
      state.codebuild = false;
      break;
    case 'AWS::Batch::JobDefinition':
      reportBatchImages(state, properties, base);
      break;
    case 'AWS::Lambda::Function':
      reportImage(state, mapGet(mapGet(properties, 'Code', doc), 'ImageUri', doc), `${base}.Code.ImageUri`);
      break;
    case 'AWS::Serverless::Function':
      reportImage(state, mapGet(properties, 'ImageUri', doc), `${base}.ImageUri`);
      break;
    default:
      break;
  }
}

/** A Batch job's images: single container, multi-node ranges, and ECS task containers. */
function reportBatchImages(state: CfnState, properties: unknown, base: string): void {
  const { doc } = state;
  reportImage(
    state,
    mapGet(mapGet(properties, 'ContainerProperties', doc), 'Image', doc),
    `${base}.ContainerProperties.Image`,
  );
  const ranges = mapGet(mapGet(properties, 'NodeProperties', doc), 'NodeRangeProperties', doc);
  seqItems(ranges, doc).forEach((range, index) => {
    reportImage(
      state,
      mapGet(mapGet(range, 'Container', doc), 'Image', doc),
      `${base}.NodeProperties.NodeRangeProperties[${index}].Container.Image`,
    );
  });
  const tasks = mapGet(mapGet(properties, 'EcsProperties', doc), 'TaskProperties', doc);
  seqItems(tasks, doc).forEach((task, taskIndex) => {
    seqItems(mapGet(task, 'Containers', doc), doc).forEach((container, index) => {
      reportImage(
        state,
        mapGet(container, 'Image', doc),
        `${base}.EcsProperties.TaskProperties[${taskIndex}].Containers[${index}].Image`,
      );
    });
  });
}

export const cloudFormationExtractor: Extractor = {
  kind: 'cloudformation',
  matches(path, head) {
    if (!/\.(ya?ml|json|template)$/i.test(path)) return false;
    if (head.includes('AWSTemplateFormatVersion')) return true;
    return /(^|["\s])Resources"?\s*:/m.test(head) && /AWS::[A-Za-z0-9]+::[A-Za-z0-9]+/.test(head);
  },
  extract(path, content) {
    try {
      return extractCloudFormation(path, content);
    } catch {
      return [];
    }
  },
};
