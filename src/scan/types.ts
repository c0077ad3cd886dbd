/**
 * What every extractor returns: each image reference as written, where it stands, and why it cannot be
 * resolved when it cannot (a variable without a default). Positions let `rewrite` edit only the reference
 * text and leave every other byte of the file as it was.
 */

export type ReferenceKind =
  | 'dockerfile'
  | 'compose'
  | 'kubernetes'
  | 'helm-values'
  | 'ecs-task-definition'
  | 'cloudformation'
  | 'terraform'
  | 'buildspec'
  | 'github-actions'
  | 'gitlab-ci'
  | 'bitbucket-pipelines'
  | 'circleci';

export interface FoundReference {
  /** Path as given to the extractor (the walker passes paths relative to the scanned root). */
  file: string;
  /** 1-based line and column of the first character of `text`. */
  line: number;
  column: number;
  /** 0-based UTF-16 offset of `text` in the file content, and its length: `content.slice(offset, offset + text.length) === text`. */
  offset: number;
  /** The reference exactly as written in the file (without surrounding quotes). */
  text: string;
  /** The reference with variables substituted (Dockerfile ARG defaults, `${VAR:-default}`), when that differs from `text`. */
  resolved?: string;
  kind: ReferenceKind;
  /** Set when the reference cannot be resolved to an image name: why (e.g. "uses $BASE, which has no default"). */
  unresolved?: string;
  /** Extra context: the stage name, the YAML path (`spec.template.spec.containers[0].image`), … */
  context?: string;
}

export interface Extractor {
  kind: ReferenceKind;
  /** Whether this extractor reads the file, from its path (relative, `/`-separated) and its first 4 KiB. */
  matches(path: string, head: string): boolean;
  extract(path: string, content: string): FoundReference[];
}

/** 1-based line and column of a UTF-16 offset. */
export function positionOf(content: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (
    let index = content.indexOf('\n');
    index !== -1 && index < offset;
    index = content.indexOf('\n', index + 1)
  ) {
    line++;
    lineStart = index + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
