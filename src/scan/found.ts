/** A found reference built from a span of the file: how the ECS, CloudFormation and Terraform extractors report. */
import type { FoundReference, ReferenceKind } from './types.ts';
import { positionOf } from './types.ts';

/** A reference at `span`, with the context and resolution an extractor gives it. */
export function build(
  path: string,
  content: string,
  kind: ReferenceKind,
  span: { offset: number; text: string; value?: string },
  extra: { context?: string; resolved?: string; unresolved?: string },
): FoundReference {
  const { line, column } = positionOf(content, span.offset);
  const found: FoundReference = { file: path, line, column, offset: span.offset, text: span.text, kind };
  const resolved = extra.resolved ?? span.value;
  if (resolved !== undefined && resolved !== span.text) found.resolved = resolved;
  if (extra.unresolved !== undefined) found.unresolved = extra.unresolved;
  if (extra.context !== undefined) found.context = extra.context;
  return found;
}
