/** `pullsafe scan` and `pullsafe rewrite`. */
import { randomBytes } from 'node:crypto';
import { readFile, rename, stat, writeFile, chmod } from 'node:fs/promises';
import { PullsafeError } from '../errors/index.ts';
import { allExtractors } from '../scan/extractors.ts';
import {
  applyEdits,
  planRewrites,
  unifiedDiff,
  type PlannedEdit,
  type RewriteRule,
  type SkippedReference,
  type TargetRule,
} from '../scan/rewrite.ts';
import { hasRisk, scanPaths, type RiskClass, type ScannedReference } from '../scan/scan.ts';
import { exitCodes, writeJson, writeLines, type CommandIo, type OutputStream } from './output.ts';

const riskClasses: RiskClass[] = ['docker-hub', 'floating', 'unpinned', 'unresolved', 'any'];

export interface ScanFlags {
  json?: boolean;
  sarif?: boolean;
  failOn?: string[];
}

function referenceJson(reference: ScannedReference): Record<string, unknown> {
  const c = reference.classification;
  return {
    file: reference.file,
    line: reference.line,
    column: reference.column,
    text: reference.text,
    ...(reference.resolved !== undefined ? { resolved: reference.resolved } : {}),
    kind: reference.kind,
    ...(reference.context ? { context: reference.context } : {}),
    registry: c?.registry ?? null,
    repository: c?.repository ?? null,
    tag: c?.tag ?? null,
    digest: c?.digest ?? null,
    registryKind: c?.registryKind ?? null,
    implicitRegistry: c?.implicitRegistry ?? null,
    official: c?.official ?? null,
    pinned: c?.pinned ?? null,
    floating: c?.floating ?? null,
    ecrPublicEquivalent: c?.ecrPublicEquivalent ?? null,
    ...(reference.unresolved ? { unresolved: reference.unresolved } : {}),
  };
}

/** What `scan` found; `exitCode` is 1 when a reference is of a `--fail-on` class. */
export interface ScanOutcome {
  references: ScannedReference[];
  filesScanned: number;
  filesRead: number;
  exitCode: number;
}

export async function runScan(paths: string[], flags: ScanFlags, io: CommandIo): Promise<number> {
  const outcome = await scan(paths, flags);
  printScan(outcome, flags, io.stdout);
  return outcome.exitCode;
}

export async function scan(paths: string[], flags: ScanFlags): Promise<ScanOutcome> {
  const failOn = (flags.failOn ?? []).map((value) => {
    if (!riskClasses.includes(value as RiskClass)) {
      throw new PullsafeError('USAGE', `--fail-on ${value}: not a class`, {
        hint: `one of ${riskClasses.join(', ')}`,
      });
    }
    return value as RiskClass;
  });
  const roots = paths.length ? paths : ['.'];
  for (const root of roots) {
    if (!(await stat(root).catch(() => undefined)))
      throw new PullsafeError('USAGE', `no such file or folder: ${root}`);
  }
  const { references, filesScanned, filesRead } = await scanPaths(roots, allExtractors, { workers: 'auto' });
  const failing = failOn.some((risk) => references.some((reference) => hasRisk(reference, risk)));
  return { references, filesScanned, filesRead, exitCode: failing ? exitCodes.findings : exitCodes.ok };
}

export function printScan(outcome: ScanOutcome, flags: ScanFlags, out: OutputStream): void {
  const { references } = outcome;
  if (flags.sarif) writeJson(out, toSarif(references));
  else if (flags.json) {
    writeJson(out, {
      references: references.map(referenceJson),
      summary: {
        references: references.length,
        dockerHub: references.filter((reference) => hasRisk(reference, 'docker-hub')).length,
        unresolved: references.filter((reference) => hasRisk(reference, 'unresolved')).length,
        built: references.filter((reference) => reference.kind === 'built').length,
        filesScanned: outcome.filesScanned,
        filesRead: outcome.filesRead,
      },
    });
  } else writeLines(out, renderScan(references, outcome.filesScanned));
}

function where(reference: ScannedReference): string {
  return `${reference.file}:${reference.line}:${reference.column}`;
}

function renderScan(references: ScannedReference[], filesScanned: number): string[] {
  const groups: [string, ScannedReference[]][] = [
    [
      "Docker Hub: every pull counts against Docker Hub's rate limit (per IP when unauthenticated, shared behind NAT)",
      references.filter((reference) => hasRisk(reference, 'docker-hub')),
    ],
    [
      'Unresolved: built from variables pullsafe cannot resolve',
      references.filter((reference) => hasRisk(reference, 'unresolved')),
    ],
    [
      'Other registries',
      references.filter(
        (reference) =>
          reference.kind !== 'built' &&
          reference.classification &&
          reference.classification.registryKind !== 'docker-hub',
      ),
    ],
    [
      'Built here: names that compose builds (not pulled, never rewritten)',
      references.filter((reference) => reference.kind === 'built'),
    ],
  ];
  const lines: string[] = [];
  for (const [title, members] of groups) {
    if (members.length === 0) continue;
    lines.push(`${title} (${members.length})`);
    for (const reference of members) {
      // What a build produces is not pulled: pull notes (floating tags, ECR Public copies) say nothing of it.
      const c = reference.kind === 'built' ? undefined : reference.classification;
      const notes: string[] = [];
      if (reference.parts && reference.resolved) notes.push(`composed: ${reference.resolved}`);
      if (c?.registryKind === 'codebuild') notes.push('provided by CodeBuild');
      if (c?.official) notes.push('official image');
      if (c?.floating) notes.push('floating tag');
      if (c?.pinned) notes.push('pinned');
      if (c?.ecrPublicEquivalent) notes.push(`ECR Public: ${c.ecrPublicEquivalent}`);
      if (reference.unresolved) notes.push(reference.unresolved);
      lines.push(
        `  ${where(reference)}  ${reference.text}  [${reference.kind}]${notes.length ? `  (${notes.join('; ')})` : ''}`,
      );
    }
  }
  const files = new Set(references.map((reference) => `${reference.root}\0${reference.file}`)).size;
  lines.push(`${references.length} image references in ${files} files (${filesScanned} files scanned)`);
  return lines;
}

function toSarif(references: ScannedReference[]): unknown {
  const rules = [
    {
      id: 'docker-hub',
      shortDescription: { text: 'Image pulled from Docker Hub (subject to its pull rate limit)' },
    },
    {
      id: 'floating-tag',
      shortDescription: { text: 'Image reference with no tag or :latest, and no digest' },
    },
    {
      id: 'unresolved',
      shortDescription: { text: 'Image reference built from variables that cannot be resolved' },
    },
  ];
  const results: unknown[] = [];
  for (const reference of references) {
    const location = {
      physicalLocation: {
        artifactLocation: { uri: reference.file },
        region: {
          startLine: reference.line,
          startColumn: reference.column,
          endColumn: reference.column + reference.text.length,
        },
      },
    };
    // A name a build produces is not pulled: nothing to say about it.
    if (reference.kind === 'built') continue;
    const c = reference.classification;
    if (c?.registryKind === 'docker-hub') {
      const fix = c.ecrPublicEquivalent
        ? ` Use ${c.ecrPublicEquivalent} (ECR Public) or a mirror.`
        : ' Copy it to a registry you control.';
      results.push({
        ruleId: 'docker-hub',
        level: 'warning',
        message: { text: `${reference.text} is pulled from Docker Hub.${fix}` },
        locations: [location],
      });
    }
    if (c?.floating) {
      results.push({
        ruleId: 'floating-tag',
        level: 'note',
        message: { text: `${reference.text} floats: pin a tag or digest.` },
        locations: [location],
      });
    }
    if (!c && reference.unresolved) {
      results.push({
        ruleId: 'unresolved',
        level: 'note',
        message: { text: `${reference.text}: ${reference.unresolved}` },
        locations: [location],
      });
    }
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'pullsafe', informationUri: 'https://github.com/pullsafe/pullsafe', rules } },
        results,
      },
    ],
  };
}

export interface RewriteFlags {
  toEcrPublic?: boolean;
  toPullThrough?: string;
  prefix?: string;
  toMirror?: string;
  /** pullsafe's pull-through cache at this URL or HOST[:PORT]. */
  toCache?: string;
  /** With toCache: registries besides Docker Hub that the cache proxies. */
  cacheRegistry?: string[];
  /** A rules file: repository globs to targets, first match wins. */
  rules?: string;
  dryRun?: boolean;
}

function mirrorTarget(text: string): TargetRule {
  const [host, ...rest] = text.replace(/\/+$/, '').split('/');
  return rest.length
    ? { kind: 'mirror', host: host!, prefix: rest.join('/') }
    : { kind: 'mirror', host: host! };
}

/** `http://cache.internal:5000`, `cache.internal:5000` → the host images name (no scheme, no path). */
function cacheTarget(endpoint: string, registries: string[]): TargetRule {
  let host: string;
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`);
    if (url.pathname !== '/' || url.search || url.username || url.password)
      throw new Error('not a bare host');
    host = url.host;
  } catch {
    throw new PullsafeError('USAGE', `--to-cache ${endpoint}: expected the cache's URL or HOST[:PORT]`, {
      hint: 'for example --to-cache http://cache.internal:5000 (what pullsafe serve --proxy listens on)',
    });
  }
  return { kind: 'cache', host, registries };
}

function pullThroughTarget(host: string, prefix: string | undefined): TargetRule {
  return {
    kind: 'pull-through',
    host: host.replace(/\/+$/, ''),
    prefix: (prefix ?? 'docker-hub').replace(/^\/+|\/+$/g, ''),
  };
}

async function ruleFrom(flags: RewriteFlags): Promise<RewriteRule> {
  const chosen = [flags.toEcrPublic, flags.toPullThrough, flags.toMirror, flags.toCache, flags.rules].filter(
    Boolean,
  ).length;
  if (chosen !== 1) {
    throw new PullsafeError(
      'USAGE',
      'choose exactly one of --to-ecr-public, --to-pull-through HOST, --to-mirror HOST[/PREFIX], --to-cache URL, --rules FILE',
    );
  }
  if (flags.cacheRegistry?.length && !flags.toCache) {
    throw new PullsafeError('USAGE', '--cache-registry goes with --to-cache');
  }
  if (flags.toCache) return cacheTarget(flags.toCache, flags.cacheRegistry ?? []);
  if (flags.rules) {
    // The rules schema (zod) loads only for --rules: scans never pay for it.
    const { loadRewriteRules } = await import('../config/rewrite-rules.ts');
    const file = await loadRewriteRules(flags.rules);
    return {
      kind: 'rules',
      rules: file.rules.map((entry) => ({
        match: entry.match,
        target: entry['to-ecr-public']
          ? { kind: 'ecr-public' }
          : entry['to-pull-through']
            ? pullThroughTarget(entry['to-pull-through'], entry.prefix)
            : mirrorTarget(entry['to-mirror']!),
      })),
    };
  }
  if (flags.toEcrPublic) return { kind: 'ecr-public' };
  if (flags.toPullThrough) return pullThroughTarget(flags.toPullThrough, flags.prefix);
  return mirrorTarget(flags.toMirror!);
}

/** What `rewrite` changed (or, with --dry-run, would change); `exitCode` is 1 when references were left. */
export interface RewriteOutcome {
  dryRun: boolean;
  /** With --dry-run: a unified diff per file. */
  diffs: string[];
  references: number;
  files: number;
  skipped: SkippedReference[];
  exitCode: number;
}

export async function runRewrite(paths: string[], flags: RewriteFlags, io: CommandIo): Promise<number> {
  const outcome = await rewrite(paths, flags);
  printRewrite(outcome, io);
  return outcome.exitCode;
}

export async function rewrite(paths: string[], flags: RewriteFlags): Promise<RewriteOutcome> {
  const rule = await ruleFrom(flags);
  const roots = paths.length ? paths : ['.'];
  const result = await scanPaths(roots, allExtractors, { workers: 'auto' });
  const { edits, skipped } = planRewrites(result.references, rule);
  const byFile = new Map<string, PlannedEdit[]>();
  for (const edit of edits) {
    const key = edit.reference.path;
    byFile.set(key, [...(byFile.get(key) ?? []), edit]);
  }
  const diffs: string[] = [];
  for (const [path, fileEdits] of byFile) {
    const before = await readFile(path, 'utf8');
    const after = applyEdits(before, fileEdits);
    if (flags.dryRun) {
      diffs.push(unifiedDiff(fileEdits[0]!.reference.file, before, fileEdits));
      continue;
    }
    const temp = `${path}.pullsafe-${randomBytes(4).toString('hex')}`;
    const mode = (await stat(path)).mode;
    await writeFile(temp, after);
    await chmod(temp, mode & 0o7777);
    await rename(temp, path);
  }
  return {
    dryRun: !!flags.dryRun,
    diffs,
    references: edits.length,
    files: byFile.size,
    skipped,
    exitCode: skipped.length ? exitCodes.findings : exitCodes.ok,
  };
}

/** The diffs on stdout; the summary on stdout, or with --dry-run on stderr so that stdout is a patch. */
export function printRewrite(outcome: RewriteOutcome, io: Pick<CommandIo, 'stdout' | 'stderr'>): void {
  for (const diff of outcome.diffs) io.stdout.write(diff);
  const verb = outcome.dryRun ? 'would rewrite' : 'rewrote';
  const lines = [`${verb} ${outcome.references} references in ${outcome.files} files`];
  for (const skip of outcome.skipped)
    lines.push(`left ${where(skip.reference)}  ${skip.reference.text}: ${skip.reason}`);
  writeLines(outcome.dryRun ? io.stderr : io.stdout, lines);
}
