/**
 * Rewriting Docker Hub references to a mirror. Promises: only the reference text changes, every other byte
 * of the file stays as it was; tags and digests are kept; a reference built from variables is refused with
 * the reason; a second run changes nothing (rewritten references no longer point at Docker Hub).
 */
import { compileRepositoryGlob } from '../shared/glob.ts';
import type { ScannedReference } from './scan.ts';

export type TargetRule =
  | { kind: 'ecr-public' }
  | { kind: 'pull-through'; host: string; prefix: string }
  | { kind: 'mirror'; host: string; prefix?: string };

/**
 * One target for every Docker Hub reference, or a list tried in order: the first whose repository glob
 * (docs/configuration.md#patterns) matches the repository wins.
 */
export type RewriteRule = TargetRule | { kind: 'rules'; rules: { match: string; target: TargetRule }[] };

export interface PlannedEdit {
  reference: ScannedReference;
  replacement: string;
}

export interface SkippedReference {
  reference: ScannedReference;
  reason: string;
}

export function planRewrites(
  references: ScannedReference[],
  rule: RewriteRule,
): { edits: PlannedEdit[]; skipped: SkippedReference[] } {
  const edits: PlannedEdit[] = [];
  const skipped: SkippedReference[] = [];
  for (const reference of references) {
    const classification = reference.classification;
    if (!classification) {
      if (reference.unresolved) skipped.push({ reference, reason: reference.unresolved });
      continue;
    }
    if (classification.registryKind !== 'docker-hub') continue;
    if (reference.resolved !== undefined && reference.resolved !== reference.text) {
      skipped.push({
        reference,
        reason: `built from variables (${reference.text}); change the default where it is defined`,
      });
      continue;
    }
    const suffix = `${classification.tag !== undefined ? `:${classification.tag}` : ''}${classification.digest !== undefined ? `@${classification.digest}` : ''}`;
    let target: TargetRule;
    if (rule.kind === 'rules') {
      const found = matchers(rule).find((candidate) => candidate.glob.test(classification.repository));
      if (!found) continue;
      target = found.target;
    } else target = rule;
    let replacement: string;
    switch (target.kind) {
      case 'ecr-public':
        if (!classification.ecrPublicEquivalent) {
          skipped.push({ reference, reason: 'not a Docker official image: ECR Public has no copy of it' });
          continue;
        }
        replacement = classification.ecrPublicEquivalent;
        break;
      case 'pull-through':
        // ECR's pull-through cache for Docker Hub needs `library/` for official images, as kept here.
        replacement = `${target.host}/${target.prefix}/${classification.repository}${suffix}`;
        break;
      case 'mirror':
        replacement = `${target.host}${target.prefix ? `/${target.prefix}` : ''}/${classification.repository}${suffix}`;
        break;
    }
    edits.push({ reference, replacement });
  }
  return { edits, skipped };
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

/** Applies edits to one file's content; throws when the content no longer holds a reference where expected. */
export function applyEdits(content: string, edits: PlannedEdit[]): string {
  let result = content;
  for (const edit of [...edits].sort((a, b) => b.reference.offset - a.reference.offset)) {
    const { offset, text } = edit.reference;
    if (result.slice(offset, offset + text.length) !== text) {
      throw new Error(`${edit.reference.file}:${edit.reference.line}: the file changed since it was scanned`);
    }
    result = result.slice(0, offset) + edit.replacement + result.slice(offset + text.length);
  }
  return result;
}

/** A unified diff of two versions with the same line structure (edits never add or remove lines). */
export function unifiedDiff(path: string, before: string, after: string, context = 3): string {
  const a = before.split('\n');
  const b = after.split('\n');
  const changed: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) changed.push(i);
  if (changed.length === 0) return '';
  const out = [`--- a/${path}`, `+++ b/${path}`];
  let index = 0;
  while (index < changed.length) {
    const start = Math.max(0, changed[index]! - context);
    let end = Math.min(a.length - 1, changed[index]! + context);
    let next = index + 1;
    while (next < changed.length && changed[next]! - context <= end + 1) {
      end = Math.min(a.length - 1, changed[next]! + context);
      next++;
    }
    const lines: string[] = [];
    for (let line = start; line <= end; line++) {
      if (a[line] === b[line]) lines.push(` ${a[line]}`);
      else lines.push(`-${a[line]}`, `+${b[line]}`);
    }
    const count = end - start + 1;
    out.push(`@@ -${start + 1},${count} +${start + 1},${count} @@`, ...lines);
    index = next;
  }
  return `${out.join('\n')}\n`;
}
