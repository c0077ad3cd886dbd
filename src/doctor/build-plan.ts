/**
 * What a CodeBuild build pulls and where it logs in, read from its buildspec, from the Dockerfiles and
 * compose files of its source (when doctor was given them) and from the FROM lines of its log. Pure: the
 * collector reads the files and the log, this module only reads text.
 *
 * The buildspec's commands run in one shell, phase after phase (install, pre_build, build, post_build, each
 * followed by its `finally` block), so a `docker login` counts for every pull after it and `cd` and
 * `export` carry over. Variables resolve as CodeBuild sets them: the project's environment variables over
 * the buildspec's `env.variables`, then `AWS_DEFAULT_REGION`/`AWS_REGION`, then assignments made by earlier
 * commands. A login whose registry stays unresolved is never taken for a Docker Hub login: only a login
 * without a server, or to a Docker Hub host, is one.
 */
import { posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { formatReference, tryParseReference } from '../reference/index.ts';
import { parseSecretsManagerReference } from '../shared/arn.ts';
import { ECR_PUBLIC_REGISTRY, ecrRegistryHost, parseEcrHost } from './images.ts';

export const buildPhases = ['install', 'pre_build', 'build', 'post_build'] as const;

/** One entry of a phase's `commands` (or `finally`) list. */
export interface BuildCommand {
  phase: string;
  /** 1-based position in its phase's list, `finally` entries after the commands. */
  number: number;
  text: string;
  /** Position among all the build's commands: pulls and logins are ordered by it. */
  order: number;
}

export type PullHow = 'docker pull' | 'docker run' | 'FROM' | 'COPY --from' | 'docker compose';

export interface BuildPull {
  /** The image reference, the build's variables substituted. */
  reference: string;
  how: PullHow;
  /** Where it is written: `pre_build command 2`, `Dockerfile line 3`, `the build log`. */
  where: string;
  /** The buildspec command that makes the pull, when known. */
  command?: BuildCommand;
  /** For FROM and COPY --from: the Dockerfile and the line as written (for a rewrite of that line). */
  file?: string;
  lineNumber?: number;
  line?: string;
}

export type LoginTarget = 'docker-hub' | 'ecr' | 'ecr-public' | 'other' | 'unresolved';

export interface BuildLogin {
  command: BuildCommand;
  /** The server argument as written; absent for a login without one (that logs in to Docker Hub). */
  written?: string;
  /** The registry host it targets once variables are resolved, when known. */
  registry?: string;
  target: LoginTarget;
  /** How the target was decided, in words for the report. */
  reason: string;
}

export interface BuildSecretRef {
  /** The environment variable the value fills. */
  variable: string;
  declaredIn:
    'buildspec env.secrets-manager' | 'buildspec env.parameter-store' | 'project environment variable';
  service: 'secretsmanager' | 'ssm';
  /** As written: `dockerhub/pull:password`, an ARN with a key, a parameter name. */
  reference: string;
  /** The secret (name or ARN, without the key) or the parameter name. */
  id: string;
  jsonKey?: string;
  versionStage?: string;
  versionId?: string;
}

export interface BuildPlan {
  /** Set when the buildspec is not YAML CodeBuild could run. */
  buildspecError?: string;
  commands: BuildCommand[];
  pulls: BuildPull[];
  logins: BuildLogin[];
  secrets: BuildSecretRef[];
  /** Source files the analysis reads when given (Dockerfiles, compose files), relative to the source root. */
  wantedFiles: string[];
}

export interface PlanInput {
  /** The buildspec's YAML text; absent when it was not available. */
  buildspec?: string;
  /** The project's environment variables (`PLAINTEXT`, `PARAMETER_STORE`, `SECRETS_MANAGER`). */
  projectVariables?: readonly { name?: string; value?: string; type?: string }[];
  region: string;
  accountId?: string;
  /** Source files by path: a string is the content, `undefined` means looked for and absent. */
  files?: ReadonlyMap<string, string | undefined>;
  /** The build's log lines, for the FROM lines `docker build` printed. */
  logLines?: readonly string[];
}

/** A reference in its full form, so the same image written two ways is one image. */
export function canonicalReference(reference: string): string {
  const parsed = tryParseReference(reference);
  return parsed ? formatReference(parsed) : reference;
}

/**
 * Whether a Docker Hub login comes before a pull: `true` when one does, `false` when none does, undefined
 * when that cannot be told (no buildspec, or a pull seen in the log that no command can be tied to while
 * a login exists).
 */
export function dockerHubLoginBefore(plan: BuildPlan, pull: BuildPull): boolean | undefined {
  const logins = plan.logins.filter((login) => login.target === 'docker-hub');
  if (plan.commands.length === 0) return undefined;
  if (pull.command === undefined) return logins.length === 0 ? false : undefined;
  const at = pull.command.order;
  return logins.some((login) => login.command.order < at);
}

/**
 * Whether a login to this ECR registry comes before a pull from it (docker does not log in to ECR by
 * itself). A login to a registry doctor could not resolve counts: it may be this one.
 */
export function ecrLoginBefore(plan: BuildPlan, pull: BuildPull, registry: string): boolean | undefined {
  if (plan.commands.length === 0) return undefined;
  const logins = plan.logins.filter(
    (login) =>
      (login.target === 'ecr' && (login.registry === undefined || login.registry === registry)) ||
      login.target === 'unresolved',
  );
  if (pull.command === undefined) return logins.length === 0 ? false : undefined;
  const at = pull.command.order;
  return logins.some((login) => login.command.order < at);
}

// ---------------------------------------------------------------------------------------------------------
// The buildspec

interface Buildspec {
  env?: {
    variables?: Record<string, unknown>;
    'parameter-store'?: Record<string, unknown>;
    'secrets-manager'?: Record<string, unknown>;
  };
  phases?: Record<string, { commands?: unknown; finally?: unknown } | null>;
}

function readBuildspec(text: string): { spec?: Buildspec; error?: string } {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    return { error: `the buildspec is not YAML: ${(error as Error).message.split('\n')[0] ?? ''}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { error: 'the buildspec is not a YAML mapping with version and phases' };
  }
  return { spec: parsed as Buildspec };
}

function stringEntries(value: unknown): [string, string][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, entry]) =>
    typeof entry === 'string' || typeof entry === 'number' ? [[key, String(entry)] as [string, string]] : [],
  );
}

function commandList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry) => (typeof entry === 'string' ? [entry] : []));
}

function secretRefs(spec: Buildspec | undefined, input: PlanInput): BuildSecretRef[] {
  const refs: BuildSecretRef[] = [];
  for (const [variable, reference] of stringEntries(spec?.env?.['secrets-manager'])) {
    refs.push({
      variable,
      declaredIn: 'buildspec env.secrets-manager',
      service: 'secretsmanager',
      reference,
      ...parseSecretsManagerReference(reference),
    });
  }
  for (const [variable, reference] of stringEntries(spec?.env?.['parameter-store'])) {
    refs.push({
      variable,
      declaredIn: 'buildspec env.parameter-store',
      service: 'ssm',
      reference,
      id: reference,
    });
  }
  for (const variable of input.projectVariables ?? []) {
    if (!variable.name || !variable.value) continue;
    if (variable.type === 'SECRETS_MANAGER') {
      refs.push({
        variable: variable.name,
        declaredIn: 'project environment variable',
        service: 'secretsmanager',
        reference: variable.value,
        ...parseSecretsManagerReference(variable.value),
      });
    } else if (variable.type === 'PARAMETER_STORE') {
      refs.push({
        variable: variable.name,
        declaredIn: 'project environment variable',
        service: 'ssm',
        reference: variable.value,
        id: variable.value,
      });
    }
  }
  return refs;
}

// ---------------------------------------------------------------------------------------------------------
// Shell words

type Separator = 'start' | '|' | '&&' | '||' | ';';

interface Segment {
  words: string[];
  /** How this segment is joined to the one before it. */
  after: Separator;
}

/**
 * Splits a command into simple commands and words, as a POSIX shell would for what doctor needs: quotes
 * removed, `$(…)` and backquotes kept whole, line continuations joined, comments dropped. Variables stay
 * as written (`expand` resolves them).
 */
export function splitCommand(text: string): Segment[] {
  const segments: Segment[] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  let depth = 0;
  let after: Separator = 'start';
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endSegment = (next: Separator) => {
    endWord();
    if (words.length > 0) segments.push({ words, after });
    words = [];
    after = next;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
      continue;
    }
    if (ch === '\\' && next === '\n') {
      i++;
      continue;
    }
    if (ch === '\\' && next !== undefined) {
      word += quote === '"' && !'"\\$`'.includes(next) ? `\\${next}` : next;
      inWord = true;
      i++;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = undefined;
      else word += ch;
      continue;
    }
    if (depth > 0) {
      word += ch;
      if (ch === '(') depth++;
      else if (ch === ')') depth--;
      continue;
    }
    if (ch === '$' && next === '(') {
      word += '$(';
      inWord = true;
      depth = 1;
      i++;
      continue;
    }
    if (ch === '`') {
      const end = text.indexOf('`', i + 1);
      const body = end === -1 ? text.slice(i + 1) : text.slice(i + 1, end);
      word += `$(${body})`;
      inWord = true;
      i = end === -1 ? text.length : end;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
      continue;
    }
    if (ch === '#' && !inWord) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end - 1;
      continue;
    }
    if (ch === '&' && next === '&') {
      endSegment('&&');
      i++;
      continue;
    }
    if (ch === '|' && next === '|') {
      endSegment('||');
      i++;
      continue;
    }
    if (ch === '|') {
      endSegment('|');
      continue;
    }
    if (ch === ';' || ch === '\n') {
      endSegment(';');
      continue;
    }
    if (ch === '&') {
      endSegment(';');
      continue;
    }
    if (/\s/.test(ch)) {
      endWord();
      continue;
    }
    word += ch;
    inWord = true;
  }
  endSegment(';');
  return segments;
}

interface Scope {
  /** Known values. */
  values: Map<string, string>;
  /** Variables whose value is a secret or parameter: set at run time, unknown here. */
  secret: Set<string>;
  region: string;
  accountId?: string;
}

/** The caller's account, as commands commonly compute it. */
const accountCommand = /^\$\(\s*aws\s+sts\s+get-caller-identity\b[^)]*Account[^)]*\)$/;

/**
 * Resolves `$NAME`, `${NAME}`, `${NAME:-default}` (and `:=`) and the account id command substitution;
 * what stays unknown is left as written and named in `unresolved`.
 */
function expand(word: string, scope: Scope, depth = 0): { text: string; unresolved: string[] } {
  const unresolved: string[] = [];
  if (accountCommand.test(word.trim()) && scope.accountId) return { text: scope.accountId, unresolved };
  const text = word.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced: string | undefined, fallback: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? '';
      const value = scope.values.get(name);
      if (value !== undefined) {
        if (depth < 4 && value.includes('$')) {
          const inner = expand(value, scope, depth + 1);
          unresolved.push(...inner.unresolved);
          return inner.text;
        }
        return value;
      }
      if (fallback !== undefined) return fallback;
      unresolved.push(name);
      return whole;
    },
  );
  if (/\$\(/.test(text)) unresolved.push(text.slice(text.indexOf('$(')));
  return { text, unresolved: [...new Set(unresolved)] };
}

function isAssignment(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(word);
}

// ---------------------------------------------------------------------------------------------------------
// docker command lines

/** Options of each docker verb that take no value; every other option takes one (unless written `--o=v`). */
const flagOptions: Record<string, ReadonlySet<string>> = {
  login: new Set(['--password-stdin']),
  pull: new Set(['-a', '--all-tags', '-q', '--quiet', '--disable-content-trust']),
  run: new Set([
    '--rm',
    '-d',
    '--detach',
    '-i',
    '--interactive',
    '-t',
    '--tty',
    '--privileged',
    '--init',
    '-P',
    '--publish-all',
    '--read-only',
    '-q',
    '--quiet',
    '--no-healthcheck',
    '--oom-kill-disable',
    '--disable-content-trust',
  ]),
  build: new Set([
    '--pull',
    '--no-cache',
    '-q',
    '--quiet',
    '--rm',
    '--force-rm',
    '--push',
    '--load',
    '--squash',
    '--compress',
    '--disable-content-trust',
  ]),
  compose: new Set(['--compatibility', '--dry-run', '--verbose', '--no-ansi']),
};

/** Options and positional arguments of a docker command line, after its verb. */
function parseArguments(
  words: readonly string[],
  flags: ReadonlySet<string>,
): { options: Map<string, string[]>; positional: string[] } {
  const options = new Map<string, string[]>();
  const positional: string[] = [];
  const add = (name: string, value: string) => options.set(name, [...(options.get(name) ?? []), value]);
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (positional.length > 0) {
      positional.push(word);
      continue;
    }
    if (word === '--') {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      positional.push(word);
      continue;
    }
    const equals = word.indexOf('=');
    if (equals > 0) {
      add(word.slice(0, equals), word.slice(equals + 1));
      continue;
    }
    // Combined short flags (`-it`, `-dit`) take no value.
    if (flags.has(word) || /^-[ditPq]{2,}$/.test(word)) {
      add(word, '');
      continue;
    }
    add(word, words[i + 1] ?? '');
    i++;
  }
  return { options, positional };
}

function option(options: Map<string, string[]>, ...names: string[]): string[] {
  return names.flatMap((name) => options.get(name) ?? []);
}

/** A registry host from a `docker login` server argument: `https://host/v1/` gives `host`. */
function hostOf(server: string): string {
  const host = server.replace(/^[a-z]+:\/\//i, '').split('/')[0]!;
  // Host names are case-insensitive; variable names are not.
  return host.replace(
    /(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)|([^$]+)/g,
    (_, name: string | undefined, rest: string) => (name === undefined ? rest.toLowerCase() : name),
  );
}

const dockerHubHosts = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
  'hub.docker.com',
]);

/** `<account>.dkr.ecr.<region>.amazonaws.com` with either part still a variable. */
const ecrShape =
  /^([0-9]{12}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)\.dkr\.ecr(-fips)?\.([a-z0-9-]+|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)\.amazonaws\.com(\.cn)?$/;

function classifyLogin(
  written: string | undefined,
  username: string | undefined,
  pipedFrom: readonly string[] | undefined,
  scope: Scope,
): Pick<BuildLogin, 'registry' | 'target' | 'reason'> {
  const fromEcr = pipedFrom?.[0] === 'aws' && pipedFrom[1] === 'ecr';
  const fromEcrPublic = pipedFrom?.[0] === 'aws' && pipedFrom[1] === 'ecr-public';
  if (written === undefined) {
    return { registry: 'docker.io', target: 'docker-hub', reason: 'no server given: Docker Hub' };
  }
  const { text, unresolved } = expand(written, scope);
  const host = hostOf(text);
  if (unresolved.length === 0) {
    if (dockerHubHosts.has(host))
      return { registry: 'docker.io', target: 'docker-hub', reason: 'Docker Hub' };
    if (host === ECR_PUBLIC_REGISTRY) return { registry: host, target: 'ecr-public', reason: 'ECR Public' };
    if (parseEcrHost(host)) return { registry: host, target: 'ecr', reason: resolvedFrom(written, host) };
    return { registry: host, target: 'other', reason: resolvedFrom(written, host) };
  }
  const shape = ecrShape.exec(host);
  if (shape) {
    const account = /^[0-9]{12}$/.test(shape[1] ?? '') ? shape[1]! : scope.accountId;
    const region = shape[3]?.startsWith('$') ? scope.region : (shape[3] ?? scope.region);
    const assumed = [
      ...(shape[1]?.startsWith('$') ? [`${shape[1]} taken as this account`] : []),
      ...(shape[3]?.startsWith('$') ? [`${shape[3]} as ${scope.region}`] : []),
    ];
    return {
      ...(account ? { registry: ecrRegistryHost(account, region) } : {}),
      target: 'ecr',
      reason:
        `${written === host ? host : `${written} is ${host}`}, an ECR registry` +
        (assumed.length > 0 ? ` (${assumed.join(', ')}: not set in the buildspec or the project)` : ''),
    };
  }
  const why = `${unresolved.map((name) => (name.startsWith('$(') ? name : `$${name}`)).join(', ')} ${unresolved.length === 1 ? 'is' : 'are'} not set in the buildspec's env.variables, the project's environment variables or an earlier command${unresolved.some((name) => scope.secret.has(name)) ? ' (a secret or parameter, read at run time)' : ''}`;
  if (fromEcrPublic) {
    return {
      target: 'ecr-public',
      reason: `the password comes from aws ecr-public get-login-password; ${why}`,
    };
  }
  if (fromEcr || username === 'AWS') {
    return {
      target: 'ecr',
      reason: `${fromEcr ? 'the password comes from aws ecr get-login-password' : 'user AWS is how ECR logins are made'}; ${why}`,
    };
  }
  return { target: 'unresolved', reason: why };
}

function resolvedFrom(written: string, host: string): string {
  return written === host ? host : `${written} is ${host}`;
}

/** Where CodeBuild checks the source out; paths under it are paths of the source. */
const sourceRoot = '/codebuild/output/src/src';

/** A path relative to the source root, or undefined for one outside the source. */
function normalizePath(cwd: string, path: string): string | undefined {
  const absolute = posix.resolve(sourceRoot, cwd, path);
  if (absolute === sourceRoot) return '.';
  return absolute.startsWith(`${sourceRoot}/`) ? absolute.slice(sourceRoot.length + 1) : undefined;
}

const composeFiles = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

interface DockerfileUse {
  path: string;
  buildArgs: Map<string, string>;
  command: BuildCommand;
}

interface ComposeUse {
  files: string[];
  /** `--project-directory`; else paths in a compose file are relative to the file's own folder. */
  directory?: string;
  command: BuildCommand;
}

interface Walk {
  commands: BuildCommand[];
  pulls: BuildPull[];
  logins: BuildLogin[];
  dockerfiles: DockerfileUse[];
  composes: ComposeUse[];
  /** The first `docker build` (or compose build) command: FROM lines of the log belong to it by default. */
  firstBuild?: BuildCommand;
}

function walkCommands(spec: Buildspec, scope: Scope): Walk {
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
  { pipedFrom, tolerated }: { pipedFrom: string[] | undefined; tolerated: boolean },
  command: BuildCommand,
  scope: Scope,
  walk: Walk,
  cwd: string,
): string {
  let words = all[0] === 'sudo' ? all.slice(1) : all;
  if (words[0] === 'export' || words[0] === 'declare' || words[0] === 'readonly') words = words.slice(1);
  const assignments = words.filter(isAssignment);
  if (assignments.length === words.length) {
    for (const assignment of assignments) {
      const equals = assignment.indexOf('=');
      const name = assignment.slice(0, equals);
      // Kept even when part of it is unknown: `$AWS_ACCOUNT_ID.dkr.ecr.…` still reads as an ECR host.
      scope.values.set(name, expand(assignment.slice(equals + 1), scope).text);
      scope.secret.delete(name);
    }
    return cwd;
  }
  while (words.length > 0 && isAssignment(words[0]!)) words = words.slice(1);
  if (words[0] === 'cd' && words[1] !== undefined) {
    const target = expand(words[1], scope);
    return target.unresolved.length === 0 ? (normalizePath(cwd, target.text) ?? cwd) : cwd;
  }
  if (words[0] === 'eval' || (words[0]?.startsWith('$(aws ecr get-login') ?? false)) {
    const inner = words[0] === 'eval' ? words.slice(1).join(' ') : words.join(' ');
    const legacy = /\$\(\s*aws\s+ecr\s+get-login\b([^)]*)\)/.exec(inner);
    if (legacy) {
      const region = /--region\s+(\S+)/.exec(legacy[1] ?? '')?.[1];
      const registryIds = /--registry-ids\s+([0-9]{12})/.exec(legacy[1] ?? '')?.[1];
      const account = registryIds ?? scope.accountId;
      const where = region ? expand(region, scope).text : scope.region;
      walk.logins.push({
        command,
        ...(account
          ? { registry: ecrRegistryHost(account, where.startsWith('$') ? scope.region : where) }
          : {}),
        target: 'ecr',
        reason: 'aws ecr get-login prints an ECR docker login',
      });
    }
    return cwd;
  }
  if (words[0] === 'docker-compose') {
    readCompose(words.slice(1), command, scope, walk, cwd);
    return cwd;
  }
  if (words[0] !== 'docker') return cwd;
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
    case 'build': {
      const { options, positional } = parseArguments(rest, flagOptions.build!);
      walk.firstBuild ??= command;
      const context = positional[0];
      const file = option(options, '-f', '--file')[0];
      if (file === '-' || context === undefined || /^[a-z]+:\/\/|^git@/.test(context) || context === '-')
        break;
      const contextPath = expand(context, scope);
      const filePath = file === undefined ? undefined : expand(file, scope);
      if (contextPath.unresolved.length > 0 || (filePath?.unresolved.length ?? 0) > 0) break;
      const path =
        filePath === undefined
          ? normalizePath(cwd, posix.join(contextPath.text, 'Dockerfile'))
          : normalizePath(cwd, filePath.text);
      if (path === undefined) break;
      const buildArgs = new Map<string, string>();
      for (const value of option(options, '--build-arg')) {
        const expanded = expand(value, scope).text;
        const equals = expanded.indexOf('=');
        if (equals > 0) buildArgs.set(expanded.slice(0, equals), expanded.slice(equals + 1));
        else if (scope.values.has(expanded)) buildArgs.set(expanded, scope.values.get(expanded)!);
      }
      walk.dockerfiles.push({ path, buildArgs, command });
      break;
    }
    case 'compose':
      readCompose(rest, command, scope, walk, cwd);
      break;
    default:
      break;
  }
  return cwd;
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

function addPull(walk: Walk, scope: Scope, written: string, pull: Omit<BuildPull, 'reference'>): void {
  const { text, unresolved } = expand(written, scope);
  if (unresolved.length > 0 || tryParseReference(text) === undefined) return;
  walk.pulls.push({ reference: text, ...pull });
}

// ---------------------------------------------------------------------------------------------------------
// Dockerfiles and compose files

export interface DockerfilePull {
  reference: string;
  how: 'FROM' | 'COPY --from';
  lineNumber: number;
  line: string;
}

/**
 * The images a Dockerfile pulls: each FROM that is not an earlier stage (or `scratch`), and each
 * `COPY --from=<image>`. `ARG` defaults before the first FROM, and `--build-arg` values over them,
 * resolve variables in FROM lines; a reference that stays unresolved is left out.
 */
export function dockerfilePulls(
  text: string,
  buildArgs: ReadonlyMap<string, string> = new Map(),
): DockerfilePull[] {
  const pulls: DockerfilePull[] = [];
  const stages = new Set<string>();
  const args = new Map<string, string>();
  let seenFrom = false;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = i + 1;
    let line = lines[i]!;
    if (/^\s*#/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = `${line.replace(/\\\s*$/, ' ')}${next}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const instruction = match[1]!.toUpperCase();
    const words = match[2]!.trim().split(/\s+/);
    const scope: Scope = { values: new Map([...args, ...buildArgs]), secret: new Set(), region: '' };
    if (instruction === 'ARG' && !seenFrom) {
      for (const word of words) {
        const equals = word.indexOf('=');
        const name = equals > 0 ? word.slice(0, equals) : word;
        const value = equals > 0 ? word.slice(equals + 1).replace(/^["']|["']$/g, '') : undefined;
        if (value !== undefined) args.set(name, value);
      }
      continue;
    }
    if (instruction === 'FROM') {
      seenFrom = true;
      const operands = words.filter((word) => !word.startsWith('--'));
      const alias = operands[1]?.toUpperCase() === 'AS' ? operands[2]?.toLowerCase() : undefined;
      const image = operands[0];
      if (image !== undefined) {
        const { text: reference, unresolved } = expand(image, scope);
        const pulled =
          unresolved.length === 0 &&
          reference !== 'scratch' &&
          !stages.has(reference.toLowerCase()) &&
          tryParseReference(reference) !== undefined;
        if (pulled) pulls.push({ reference, how: 'FROM', lineNumber, line: line.trim() });
      }
      if (alias !== undefined) stages.add(alias);
      continue;
    }
    if (instruction === 'COPY' || instruction === 'ADD') {
      for (const word of words) {
        const from = /^--from=(.+)$/.exec(word)?.[1];
        if (from === undefined || /^\d+$/.test(from) || stages.has(from.toLowerCase())) continue;
        const { text: reference, unresolved } = expand(from, scope);
        if (unresolved.length > 0 || tryParseReference(reference) === undefined) continue;
        pulls.push({ reference, how: 'COPY --from', lineNumber, line: line.trim() });
      }
    }
  }
  return pulls;
}

interface ComposeService {
  image?: unknown;
  build?: unknown;
}

/** Images a compose file pulls, and the Dockerfiles of the services it builds. */
function composeContents(
  text: string,
  directory: string,
): { images: { reference: string; service: string }[]; dockerfiles: { path: string; service: string }[] } {
  const images: { reference: string; service: string }[] = [];
  const dockerfiles: { path: string; service: string }[] = [];
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    return { images, dockerfiles };
  }
  const services = (parsed as { services?: Record<string, ComposeService | null> } | null)?.services;
  if (!services || typeof services !== 'object') return { images, dockerfiles };
  for (const [service, definition] of Object.entries(services)) {
    if (!definition || typeof definition !== 'object') continue;
    const build = definition.build;
    if (typeof build === 'string' || (build && typeof build === 'object')) {
      const context =
        typeof build === 'string' ? build : String((build as { context?: unknown }).context ?? '.');
      const file = typeof build === 'object' ? (build as { dockerfile?: unknown }).dockerfile : undefined;
      const path = normalizePath(
        directory,
        posix.join(context, typeof file === 'string' ? file : 'Dockerfile'),
      );
      if (path !== undefined) dockerfiles.push({ path, service });
      continue;
    }
    if (typeof definition.image === 'string') images.push({ reference: definition.image, service });
  }
  return { images, dockerfiles };
}

// ---------------------------------------------------------------------------------------------------------
// The build log

const runningCommand = /Running command (.+)$/;
const classicFrom = /Step \d+\/\d+ : FROM\s+(.+?)\s*$/i;
const buildkitFrom = /\[internal\] load metadata for (\S+)/;
/** BuildKit quotes the failing Dockerfile line: `Dockerfile:3`, then `   3 | >>> FROM node:20`. */
const buildkitFile = /^([^\s:]*Dockerfile[^\s:]*):\d+$/;
const buildkitQuote = /^\s*(\d+) \|\s*>>> (FROM\s+.+?)\s*$/i;

/**
 * FROM lines `docker build` printed, each tied to the buildspec command the log says was running; the
 * line BuildKit quotes from the Dockerfile when a FROM fails names the file and line number too.
 */
function logPulls(lines: readonly string[], walk: Walk): BuildPull[] {
  const pulls: BuildPull[] = [];
  const stages = new Set<string>();
  let running: BuildCommand | undefined;
  let quotedFile: string | undefined;
  for (const line of lines) {
    const file = buildkitFile.exec(line.trim())?.[1];
    if (file !== undefined) {
      quotedFile = file;
      continue;
    }
    const quote = buildkitQuote.exec(line);
    if (quote && quotedFile !== undefined) {
      const written = quote[2]!;
      const image = written.split(/\s+/).filter((word) => !word.startsWith('--'))[1];
      const seen = pulls.find(
        (pull) => image !== undefined && canonicalReference(pull.reference) === canonicalReference(image),
      );
      if (seen && image !== undefined) {
        seen.reference = image;
        seen.file = quotedFile;
        seen.lineNumber = Number(quote[1]);
        seen.line = written;
        seen.where = `${quotedFile} line ${quote[1]}, as the build log quotes it`;
      }
      continue;
    }
    const started = runningCommand.exec(line)?.[1]?.trim();
    if (started !== undefined) {
      running = walk.commands.find((command) => {
        const first = command.text.trim().split('\n')[0]?.trim();
        return command.text.trim() === started || (first !== undefined && started.startsWith(first));
      });
      continue;
    }
    const classic = classicFrom.exec(line)?.[1];
    let reference: string | undefined;
    if (classic !== undefined) {
      const operands = classic.split(/\s+/).filter((word) => !word.startsWith('--'));
      reference = operands[0];
      const isStage = reference !== undefined && stages.has(reference.toLowerCase());
      if (operands[1]?.toUpperCase() === 'AS' && operands[2]) stages.add(operands[2].toLowerCase());
      if (isStage) continue;
    } else {
      reference = buildkitFrom.exec(line)?.[1];
    }
    if (reference === undefined || reference.includes('$') || reference === 'scratch') continue;
    if (tryParseReference(reference) === undefined) continue;
    const command = running ?? walk.firstBuild;
    pulls.push({
      reference,
      how: 'FROM',
      where: 'the build log',
      ...(command ? { command } : {}),
      line: classic !== undefined ? `FROM ${classic}` : `FROM ${reference}`,
    });
  }
  return pulls;
}

// ---------------------------------------------------------------------------------------------------------
// The plan

export function planBuild(input: PlanInput): BuildPlan {
  const read = input.buildspec === undefined ? {} : readBuildspec(input.buildspec);
  const spec = read.spec;
  const values = new Map<string, string>([
    ['AWS_DEFAULT_REGION', input.region],
    ['AWS_REGION', input.region],
  ]);
  // Commands start in the source root, which `$CODEBUILD_SRC_DIR` names.
  values.set('CODEBUILD_SRC_DIR', sourceRoot);
  const secret = new Set<string>();
  for (const [name, value] of stringEntries(spec?.env?.variables)) values.set(name, value);
  for (const [name] of [
    ...stringEntries(spec?.env?.['secrets-manager']),
    ...stringEntries(spec?.env?.['parameter-store']),
  ]) {
    secret.add(name);
    values.delete(name);
  }
  for (const variable of input.projectVariables ?? []) {
    if (!variable.name) continue;
    if (variable.type === undefined || variable.type === 'PLAINTEXT') {
      if (variable.value !== undefined) values.set(variable.name, variable.value);
    } else {
      secret.add(variable.name);
      values.delete(variable.name);
    }
  }
  const scope: Scope = {
    values,
    secret,
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
  const walk: Walk = spec
    ? walkCommands(spec, scope)
    : { commands: [], pulls: [], logins: [], dockerfiles: [], composes: [] };
  const files = input.files ?? new Map<string, string | undefined>();
  const wanted = new Set<string>();
  const dockerfileUses: DockerfileUse[] = [...walk.dockerfiles];
  for (const compose of walk.composes) {
    for (const file of compose.files) wanted.add(file);
    const present = compose.files.find((file) => typeof files.get(file) === 'string');
    if (present === undefined) continue;
    const contents = composeContents(files.get(present)!, compose.directory ?? posix.dirname(present));
    for (const image of contents.images) {
      addPull(walk, scope, image.reference, {
        how: 'docker compose',
        where: `${present} service ${image.service}`,
        command: compose.command,
      });
    }
    for (const dockerfile of contents.dockerfiles) {
      dockerfileUses.push({ path: dockerfile.path, buildArgs: new Map(), command: compose.command });
    }
  }
  const pulls: BuildPull[] = [...walk.pulls];
  for (const use of dockerfileUses) {
    wanted.add(use.path);
    const text = files.get(use.path);
    if (typeof text !== 'string') continue;
    for (const pull of dockerfilePulls(text, use.buildArgs)) {
      pulls.push({
        reference: pull.reference,
        how: pull.how,
        where: `${use.path} line ${pull.lineNumber}`,
        command: use.command,
        file: use.path,
        lineNumber: pull.lineNumber,
        line: pull.line,
      });
    }
  }

  const known = new Set(pulls.map((pull) => canonicalReference(pull.reference)));
  for (const pull of logPulls(input.logLines ?? [], walk)) {
    const key = canonicalReference(pull.reference);
    if (known.has(key)) continue;
    known.add(key);
    pulls.push(pull);
  }

  return {
    ...(read.error ? { buildspecError: read.error } : {}),
    commands: walk.commands,
    pulls,
    logins: walk.logins,
    secrets: secretRefs(spec, input),
    wantedFiles: [...wanted],
  };
}
