/** The buildspec's commands as one shell runs them: pulls, logins, builds and compose files, in order. */
import { posix } from 'node:path';
import { tryParseReference } from '../../reference/index.ts';
import type { BuildCommand, BuildLogin, BuildPull } from '../build-plan.ts';
import { ecrRegistryHost } from '../images.ts';
import { commandList, type Buildspec } from './buildspec.ts';
import { classifyLogin, flagOptions, option, parseArguments } from './docker-command.ts';
import { expand, isAssignment, splitCommand, type Scope } from './shell.ts';

/** The phases of a build, in the order CodeBuild runs them. */
const buildPhases = ['install', 'pre_build', 'build', 'post_build'] as const;

/** Where CodeBuild checks the source out; paths under it are paths of the source. */
export const sourceRoot = '/codebuild/output/src/src';

/** A path relative to the source root, or undefined for one outside the source. */
export function normalizePath(cwd: string, path: string): string | undefined {
  const absolute = posix.resolve(sourceRoot, cwd, path);
  if (absolute === sourceRoot) return '.';
  return absolute.startsWith(`${sourceRoot}/`) ? absolute.slice(sourceRoot.length + 1) : undefined;
}

/** The compose files `docker compose` reads when given none, in its order. */
const composeFiles = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

/** A Dockerfile a command builds, with the `--build-arg` values it is given. */
export interface DockerfileUse {
  path: string;
  buildArgs: Map<string, string>;
  command: BuildCommand;
}

/** The compose files a command reads. */
export interface ComposeUse {
  files: string[];
  /** `--project-directory`; else paths in a compose file are relative to the file's own folder. */
  directory?: string;
  command: BuildCommand;
}

/** What the build's commands do, in order. */
export interface Walk {
  commands: BuildCommand[];
  pulls: BuildPull[];
  logins: BuildLogin[];
  dockerfiles: DockerfileUse[];
  composes: ComposeUse[];
  /** The first `docker build` (or compose build) command: FROM lines of the log belong to it by default. */
  firstBuild?: BuildCommand;
}

/**
 * Runs through the buildspec's commands, phase after phase as CodeBuild runs them in one shell, and notes
 * every pull, login, build and compose file on the way.
 */
export function walkCommands(spec: Buildspec, scope: Scope): Walk {
  const walk: Walk = { commands: [], pulls: [], logins: [], dockerfiles: [], composes: [] };
  let cwd = '.';
  let order = 0;
  for (const phase of buildPhases) {
    const entry = spec.phases?.[phase];
    if (!entry) continue;
    const texts = [...commandList(entry.commands), ...commandList(entry.finally)];
    texts.forEach((text, index) => {
      const command: BuildCommand = { phase, number: index + 1, text, order: order++ };
      walk.commands.push(command);
      const segments = splitCommand(text);
      segments.forEach((segment, position) => {
        const pipedFrom = segment.after === '|' ? segments[position - 1]?.words : undefined;
        // `docker pull x || true` (a cache warm-up): the build goes on when that pull fails.
        const tolerated = segments[position + 1]?.after === '||';
        cwd = readSegment(segment.words, { pipedFrom, tolerated }, command, scope, walk, cwd);
      });
    });
  }
  return walk;
}

/** Reads one simple command; returns the working directory after it. */
function readSegment(
  all: string[],
  context: SegmentContext,
  command: BuildCommand,
  scope: Scope,
  walk: Walk,
  cwd: string,
): string {
  let words = all[0] === 'sudo' ? all.slice(1) : all;
  if (words[0] === 'export' || words[0] === 'declare' || words[0] === 'readonly') words = words.slice(1);
  const assignments = words.filter(isAssignment);
  if (assignments.length === words.length) {
    assign(assignments, scope);
    return cwd;
  }
  while (words.length > 0 && isAssignment(words[0]!)) words = words.slice(1);
  if (words[0] === 'cd' && words[1] !== undefined) {
    const target = expand(words[1], scope);
    return target.unresolved.length === 0 ? (normalizePath(cwd, target.text) ?? cwd) : cwd;
  }
  if (words[0] === 'eval' || (words[0]?.startsWith('$(aws ecr get-login') ?? false)) {
    readLegacyEcrLogin(words, command, scope, walk);
  } else if (words[0] === 'docker-compose') {
    readCompose(words.slice(1), command, scope, walk, cwd);
  } else if (words[0] === 'docker') {
    readDocker(words, context, command, scope, walk, cwd);
  }
  return cwd;
}

/** Where a simple command sits in its line. */
interface SegmentContext {
  /** The words of the command piped into it. */
  pipedFrom: string[] | undefined;
  /** Followed by `||`: the build goes on when it fails. */
  tolerated: boolean;
}

function assign(assignments: readonly string[], scope: Scope): void {
  for (const assignment of assignments) {
    const equals = assignment.indexOf('=');
    const name = assignment.slice(0, equals);
    // Kept even when part of it is unknown: `$AWS_ACCOUNT_ID.dkr.ecr.…` still reads as an ECR host.
    scope.values.set(name, expand(assignment.slice(equals + 1), scope).text);
    scope.secret.delete(name);
  }
}

/** `eval $(aws ecr get-login …)`: the AWS CLI v1 way of logging in to ECR. */
function readLegacyEcrLogin(words: string[], command: BuildCommand, scope: Scope, walk: Walk): void {
  const inner = words[0] === 'eval' ? words.slice(1).join(' ') : words.join(' ');
  const legacy = /\$\(\s*aws\s+ecr\s+get-login\b([^)]*)\)/.exec(inner);
  if (!legacy) return;
  const region = /--region\s+(\S+)/.exec(legacy[1] ?? '')?.[1];
  const registryIds = /--registry-ids\s+([0-9]{12})/.exec(legacy[1] ?? '')?.[1];
  const account = registryIds ?? scope.accountId;
  const where = region ? expand(region, scope).text : scope.region;
  walk.logins.push({
    command,
    ...(account ? { registry: ecrRegistryHost(account, where.startsWith('$') ? scope.region : where) } : {}),
    target: 'ecr',
    reason: 'aws ecr get-login prints an ECR docker login',
  });
}

/** The verb of a docker command line and the words after it (`docker image pull` is `pull`). */
function dockerVerb(words: readonly string[]): { verb: string | undefined; rest: string[] } {
  // Global options before the verb (`docker --config dir login`) take a value.
  let index = 1;
  while (words[index]?.startsWith('-')) index += words[index]!.includes('=') ? 1 : 2;
  let verb = words[index];
  let rest = words.slice(index + 1);
  if ((verb === 'image' || verb === 'container') && rest[0]) {
    verb = rest[0];
    rest = rest.slice(1);
  }
  if (verb === 'buildx' && (rest[0] === 'build' || rest[0] === 'b')) {
    verb = 'build';
    rest = rest.slice(1);
  }
  return { verb, rest };
}

function readDocker(
  words: readonly string[],
  { pipedFrom, tolerated }: SegmentContext,
  command: BuildCommand,
  scope: Scope,
  walk: Walk,
  cwd: string,
): void {
  const { verb, rest } = dockerVerb(words);
  switch (verb) {
    case 'login': {
      const { options, positional } = parseArguments(rest, flagOptions.login!);
      const username = option(options, '-u', '--username')[0];
      const login = classifyLogin(
        positional[0],
        username === undefined ? undefined : expand(username, scope).text,
        pipedFrom,
        scope,
      );
      walk.logins.push({ command, ...(positional[0] ? { written: positional[0] } : {}), ...login });
      break;
    }
    case 'pull':
    case 'run':
    case 'create': {
      const { positional } = parseArguments(rest, flagOptions[verb === 'pull' ? 'pull' : 'run']!);
      const image = positional[0];
      if (image === undefined || tolerated) break;
      addPull(walk, scope, image, {
        how: verb === 'pull' ? 'docker pull' : 'docker run',
        where: `${command.phase} command ${command.number}`,
        command,
      });
      break;
    }
    case 'build':
      readDockerBuild(rest, command, scope, walk, cwd);
      break;
    case 'compose':
      readCompose(rest, command, scope, walk, cwd);
      break;
    default:
      break;
  }
}

/** `docker build`: the Dockerfile it builds (when its path resolves) and the build arguments it gives. */
function readDockerBuild(
  words: string[],
  command: BuildCommand,
  scope: Scope,
  walk: Walk,
  cwd: string,
): void {
  const { options, positional } = parseArguments(words, flagOptions.build!);
  walk.firstBuild ??= command;
  const context = positional[0];
  const file = option(options, '-f', '--file')[0];
  if (file === '-' || context === undefined || /^[a-z]+:\/\/|^git@/.test(context) || context === '-') return;
  const contextPath = expand(context, scope);
  const filePath = file === undefined ? undefined : expand(file, scope);
  if (contextPath.unresolved.length > 0 || (filePath?.unresolved.length ?? 0) > 0) return;
  const path =
    filePath === undefined
      ? normalizePath(cwd, posix.join(contextPath.text, 'Dockerfile'))
      : normalizePath(cwd, filePath.text);
  if (path === undefined) return;
  const buildArgs = new Map<string, string>();
  for (const value of option(options, '--build-arg')) {
    const expanded = expand(value, scope).text;
    const equals = expanded.indexOf('=');
    if (equals > 0) buildArgs.set(expanded.slice(0, equals), expanded.slice(equals + 1));
    else if (scope.values.has(expanded)) buildArgs.set(expanded, scope.values.get(expanded)!);
  }
  walk.dockerfiles.push({ path, buildArgs, command });
}

function readCompose(words: string[], command: BuildCommand, scope: Scope, walk: Walk, cwd: string): void {
  const { options, positional } = parseArguments(words, flagOptions.compose!);
  const sub = positional[0];
  if (!sub || !['up', 'pull', 'build', 'run', 'create'].includes(sub)) return;
  if (sub === 'build' || sub === 'up') walk.firstBuild ??= command;
  const directory = option(options, '--project-directory')[0];
  const base = directory ? (normalizePath(cwd, expand(directory, scope).text) ?? cwd) : cwd;
  const files = option(options, '-f', '--file')
    .map((file) => normalizePath(cwd, expand(file, scope).text))
    .filter((file): file is string => file !== undefined);
  walk.composes.push({
    files: files.length > 0 ? files : composeFiles.map((file) => normalizePath(base, file) ?? file),
    ...(directory ? { directory: base } : {}),
    command,
  });
}

/** A pull whose reference resolves to an image; one that stays unresolved is left out. */
export function addPull(walk: Walk, scope: Scope, written: string, pull: Omit<BuildPull, 'reference'>): void {
  const { text, unresolved } = expand(written, scope);
  if (unresolved.length > 0 || tryParseReference(text) === undefined) return;
  walk.pulls.push({ reference: text, ...pull });
}
