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
  | 'circleci'
  | 'cdk'
  /** The name a build produces (compose `image:` next to `build:`): not pulled, never rewritten. */
  | 'built';

/**
 * Where the parts of a reference composed from several values are written (a Helm image map, a
 * `helm_release`'s `set` values), so that `rewrite` can edit the parts instead of the composed text.
 */
export interface ReferenceParts {
  /** The key path of the map or the `set` prefix, for messages: `metrics.image`. */
  path: string;
  /** The repository value as written; the reference's own `offset` and `text` are these. */
  repository: TextSpan;
  /** The registry value as written (possibly empty, between quotes), when the map has a registry key. */
  registry?: TextSpan;
  /** The map has a registry key whose value cannot be edited in place (null, a block scalar): set it by hand. */
  registryUnwritable?: boolean;
  /**
   * Where a `registry:` line can go in a block map that has none: the start of the repository's line, and
   * the indentation of its keys. Absent for flow maps and `set` values.
   */
  registryLine?: { offset: number; indent: string };
  /** A non-empty `global.imageRegistry` replaces every image map's registry: where it is set. */
  globalRegistry?: { line: number; value: string };
  /**
   * `local`: a values file, whose chart may be in a folder above it (rewrite reads the chart's templates to
   * learn whether it reads a registry); `remote`: values given to a chart kept elsewhere (a `helm_release`,
   * a Flux HelmRelease), whose templates cannot be read.
   */
  chart: 'local' | 'remote';
}

export interface TextSpan {
  offset: number;
  text: string;
}

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
  /** Set for references composed from several values: where each part is written. */
  parts?: ReferenceParts;
  /** The image is run by CodeBuild: its curated images (`aws/codebuild/...`) are CodeBuild's own. */
  codebuild?: boolean;
}

export interface Extractor {
  kind: ReferenceKind;
  /**
   * Whether this extractor reads the file, from its path (relative, `/`-separated) and its first 4 KiB.
   * It must be cheap: it runs on every file that may be read, before anything is parsed.
   */
  matches(path: string, head: string): boolean;
  extract(path: string, content: string): FoundReference[];
}

/** The line starts of the file positions were last asked of: extractors ask many times of one file. */
let lines: { content: string; starts: number[] } | undefined;

/** 1-based line and column of a UTF-16 offset. */
export function positionOf(content: string, offset: number): { line: number; column: number } {
  if (lines?.content !== content) {
    const starts = [0];
    for (let index = content.indexOf('\n'); index !== -1; index = content.indexOf('\n', index + 1)) {
      starts.push(index + 1);
    }
    lines = { content, starts };
  }
  const starts = lines.starts;
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (starts[middle]! <= offset) low = middle;
    else high = middle - 1;
  }
  return { line: low + 1, column: offset - starts[low]! + 1 };
}
