/**
 * Rewriting Docker Hub references to a mirror. Promises: only image references change, every other byte of
 * the file stays as it was; tags and digests are kept; a reference built from variables is refused with
 * the reason; a second run changes nothing (rewritten references no longer point at Docker Hub).
 *
 * A reference composed from several values (a Helm image map, a `helm_release`'s `set` values) is edited in
 * its parts: the registry value, and the repository value; a `registry:` line is added to a map that has
 * none when its chart reads one, and the repository takes the whole name when the chart reads no registry.
 * When the chart cannot be read, the reference is left with the values to set. Names a build produces
 * (kind `built`) and CodeBuild's curated images are never rewritten.
 */
import { compileRepositoryGlob } from '../shared/glob.ts';
import { chartReadsRegistry, type RegistryUse } from './helm-chart.ts';
import type { ScannedReference } from './scan.ts';
import type { ReferenceParts } from './types.ts';

export type TargetRule =
  | { kind: 'ecr-public' }
  | { kind: 'pull-through'; host: string; prefix: string }
  | { kind: 'mirror'; host: string; prefix?: string }
  /**
   * pullsafe's pull-through cache: `HOST/<registry>/<repository>` (its host-named route), for Docker Hub and
   * for each other registry in `registries` that the cache proxies.
   */
  | { kind: 'cache'; host: string; registries: string[] };

/**
 * One target for every Docker Hub reference, or a list tried in order: the first whose repository glob
 * (docs/configuration.md#patterns) matches the repository wins.
 */
export type RewriteRule = TargetRule | { kind: 'rules'; rules: { match: string; target: TargetRule }[] };

/** One change to a file's text: `text` at `offset` becomes `replacement` (an empty `text` inserts). */
export interface TextChange {
  offset: number;
  text: string;
  replacement: string;
}

export interface PlannedEdit {
  reference: ScannedReference;
  /** The whole reference after the edit. */
  replacement: string;
  changes: TextChange[];
}

export interface SkippedReference {
  reference: ScannedReference;
  reason: string;
}

export interface PlanOptions {
  /** Whether the chart reading a values file builds the image of a map with a registry (default: its templates say). */
  chartReadsRegistry?: (valuesFile: string, mapPath: string) => RegistryUse;
}

/** Where a Docker Hub image goes: its new registry and repository (tag and digest are kept apart). */
interface Destination {
  registry: string;
  repository: string;
}

export function planRewrites(
  references: ScannedReference[],
  rule: RewriteRule,
  options: PlanOptions = {},
): { edits: PlannedEdit[]; skipped: SkippedReference[] } {
  const readsRegistry = options.chartReadsRegistry ?? chartReadsRegistry;
  const edits: PlannedEdit[] = [];
  const skipped: SkippedReference[] = [];
  for (const reference of references) {
    if (reference.kind === 'built') continue;
    const classification = reference.classification;
    if (!classification) {
      if (reference.unresolved) skipped.push({ reference, reason: reference.unresolved });
      continue;
    }
    const toCache =
      rule.kind === 'cache' &&
      classification.registryKind !== 'docker-hub' &&
      rule.registries.includes(classification.registry);
    if (classification.registryKind !== 'docker-hub' && !toCache) continue;
    let target: TargetRule;
    if (rule.kind === 'rules') {
      const found = matchers(rule).find((candidate) => candidate.glob.test(classification.repository));
      if (!found) continue;
      target = found.target;
    } else target = rule;
    let destination: Destination;
    switch (target.kind) {
      case 'ecr-public': {
        if (!classification.ecrPublicEquivalent) {
          skipped.push({ reference, reason: 'not a Docker official image: ECR Public has no copy of it' });
          continue;
        }
        destination = { registry: 'public.ecr.aws', repository: `docker/${classification.repository}` };
        break;
      }
      case 'pull-through':
        // ECR's pull-through cache for Docker Hub needs `library/` for official images, as kept here.
        destination = { registry: target.host, repository: `${target.prefix}/${classification.repository}` };
        break;
      case 'cache':
        destination = {
          registry: target.host,
          repository: `${classification.registry.replace(':', '-')}/${classification.repository}`,
        };
        break;
      case 'mirror':
        destination = {
          registry: target.host,
          repository: `${target.prefix ? `${target.prefix}/` : ''}${classification.repository}`,
        };
        break;
    }
    const suffix = `${classification.tag !== undefined ? `:${classification.tag}` : ''}${classification.digest !== undefined ? `@${classification.digest}` : ''}`;
    const replacement = `${destination.registry}/${destination.repository}${suffix}`;
    if (reference.parts) {
      const planned = planParts(reference, reference.parts, destination, readsRegistry);
      if ('reason' in planned) skipped.push({ reference, reason: planned.reason });
      else edits.push({ reference, replacement, changes: planned.changes });
      continue;
    }
    if (reference.resolved !== undefined && reference.resolved !== reference.text) {
      skipped.push({
        reference,
        reason: `built from variables (${reference.text}); change the default where it is defined`,
      });
      continue;
    }
    edits.push({
      reference,
      replacement,
      changes: [{ offset: reference.offset, text: reference.text, replacement }],
    });
  }
  return { edits, skipped };
}

/** The changes that point an image map (or `set` values) at `destination`, or why it is left. */
function planParts(
  reference: ScannedReference,
  parts: ReferenceParts,
  destination: Destination,
  readsRegistry: NonNullable<PlanOptions['chartReadsRegistry']>,
): { changes: TextChange[] } | { reason: string } {
  const key = (name: string): string => (parts.path === '' ? name : `${parts.path}.${name}`);
  const whole = `${destination.registry}/${destination.repository}`;
  const repository = parts.repository;
  const setBoth = `set ${key('registry')} to ${destination.registry} and ${key('repository')} to ${destination.repository}`;
  if (parts.globalRegistry) {
    return {
      reason: `global.imageRegistry (line ${parts.globalRegistry.line}) sets the registry of every image here: ${setBoth}, or point global.imageRegistry at ${destination.registry} for all of them`,
    };
  }
  if (parts.registry) {
    return {
      changes: [
        { offset: parts.registry.offset, text: parts.registry.text, replacement: destination.registry },
        { offset: repository.offset, text: repository.text, replacement: destination.repository },
      ],
    };
  }
  if (parts.registryUnwritable) return { reason: `${key('registry')} cannot be edited in place: ${setBoth}` };
  const use = parts.chart === 'local' ? readsRegistry(reference.path, parts.path) : 'unknown';
  if (use === 'no')
    return { changes: [{ offset: repository.offset, text: repository.text, replacement: whole }] };
  if (use === 'yes' && parts.registryLine) {
    return {
      changes: [
        {
          offset: parts.registryLine.offset,
          text: '',
          replacement: `\n${parts.registryLine.indent}registry: ${destination.registry}`,
        },
        { offset: repository.offset, text: repository.text, replacement: destination.repository },
      ],
    };
  }
  if (use === 'yes')
    return { reason: `the chart reads ${key('registry')}, which this map has not: ${setBoth}` };
  const where = parts.chart === 'local' ? 'no chart next to this file says' : 'the chart is not here to say';
  return {
    reason: `${where} whether it reads ${key('registry')}: ${setBoth} if it does, else ${key('repository')} to ${whole}`,
  };
}

const compiled = new WeakMap<object, { glob: RegExp; target: TargetRule }[]>();

function matchers(rule: Extract<RewriteRule, { kind: 'rules' }>): { glob: RegExp; target: TargetRule }[] {
  let list = compiled.get(rule);
  if (!list) {
    list = rule.rules.map((entry) => ({ glob: compileRepositoryGlob(entry.match), target: entry.target }));
    compiled.set(rule, list);
  }
  return list;
}

/** Every change of the edits, last first; throws when the content no longer holds a reference where expected. */
function changesOf(content: string, edits: PlannedEdit[]): TextChange[] {
  const changes = edits.flatMap((edit) =>
    edit.changes.map((change) => ({ change, reference: edit.reference })),
  );
  changes.sort((a, b) => b.change.offset - a.change.offset);
  for (const { change, reference } of changes) {
    if (content.slice(change.offset, change.offset + change.text.length) !== change.text) {
      throw new Error(`${reference.file}:${reference.line}: the file changed since it was scanned`);
    }
  }
  return changes.map(({ change }) => change);
}

/** Applies edits to one file's content; throws when the content no longer holds a reference where expected. */
export function applyEdits(content: string, edits: PlannedEdit[]): string {
  let result = content;
  for (const change of changesOf(content, edits)) {
    result =
      result.slice(0, change.offset) + change.replacement + result.slice(change.offset + change.text.length);
  }
  return result;
}

/**
 * A unified diff of the edits to one file's content: each changed run of lines with `context` lines around
 * it, numbered for the file before and after (an added `registry:` line shifts what follows).
 */
export function unifiedDiff(path: string, content: string, edits: PlannedEdit[], context = 3): string {
  const changes = changesOf(content, edits).reverse();
  if (changes.length === 0) return '';
  const lines = content.split('\n');
  const lineCount = content.endsWith('\n') ? lines.length - 1 : lines.length;
  const starts: number[] = [];
  for (let offset = 0, index = 0; index < lines.length; index++) {
    starts.push(offset);
    offset += lines[index]!.length + 1;
  }
  const lineOf = (offset: number): number => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (starts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  };
  // Runs of changed lines: the lines each change touches, merged when they share or touch a line.
  const runs: { first: number; last: number; after: string[] }[] = [];
  let pending: { first: number; last: number; changes: TextChange[] } | undefined;
  const close = (): void => {
    if (!pending) return;
    const start = starts[pending.first]!;
    const end = starts[pending.last]! + lines[pending.last]!.length;
    let text = content.slice(start, end);
    for (const change of [...pending.changes].reverse()) {
      const at = change.offset - start;
      text = text.slice(0, at) + change.replacement + text.slice(at + change.text.length);
    }
    runs.push({ first: pending.first, last: pending.last, after: text.split('\n') });
    pending = undefined;
  };
  for (const change of changes) {
    const first = lineOf(change.offset);
    const last = lineOf(change.offset + change.text.length);
    if (pending && first <= pending.last + 1) {
      pending.last = Math.max(pending.last, last);
      pending.changes.push(change);
    } else {
      close();
      pending = { first, last, changes: [change] };
    }
  }
  close();
  const out = [`--- a/${path}`, `+++ b/${path}`];
  let shift = 0;
  let index = 0;
  while (index < runs.length) {
    let end = index;
    while (end + 1 < runs.length && runs[end + 1]!.first - runs[end]!.last - 1 <= 2 * context) end++;
    const from = Math.max(0, runs[index]!.first - context);
    const to = Math.min(lineCount - 1, runs[end]!.last + context);
    const body: string[] = [];
    let added = 0;
    let line = from;
    for (let run = index; run <= end; run++) {
      const current = runs[run]!;
      for (; line < current.first; line++) body.push(` ${lines[line]}`);
      for (; line <= current.last; line++) body.push(`-${lines[line]}`);
      for (const text of current.after) body.push(`+${text}`);
      added += current.after.length - (current.last - current.first + 1);
    }
    for (; line <= to; line++) body.push(` ${lines[line]}`);
    const count = to - from + 1;
    out.push(`@@ -${from + 1},${count} +${from + 1 + shift},${count + added} @@`, ...body);
    shift += added;
    index = end + 1;
  }
  return `${out.join('\n')}\n`;
}
