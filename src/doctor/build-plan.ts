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
 *
 * The parts are in `build-plan/`: the buildspec's YAML, shell words and variables, docker command lines,
 * the walk through the commands, Dockerfiles and compose files, and the build log.
 */
import { posix } from 'node:path';
import { readBuildspec, secretRefs, stringEntries, type Buildspec } from './build-plan/buildspec.ts';
import { addPull, sourceRoot, walkCommands, type DockerfileUse, type Walk } from './build-plan/commands.ts';
import { composeContents, dockerfilePulls } from './build-plan/files.ts';
import { logPulls } from './build-plan/log.ts';
import type { Scope } from './build-plan/shell.ts';
import { canonicalReference } from './images.ts';

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

export function planBuild(input: PlanInput): BuildPlan {
  const read = input.buildspec === undefined ? {} : readBuildspec(input.buildspec);
  const spec = read.spec;
  const scope = initialScope(spec, input);
  const walk: Walk = spec
    ? walkCommands(spec, scope)
    : { commands: [], pulls: [], logins: [], dockerfiles: [], composes: [] };
  const files = input.files ?? new Map<string, string | undefined>();
  const wanted = new Set<string>();
  const dockerfileUses = [...walk.dockerfiles, ...composePulls(walk, scope, files, wanted)];
  const pulls: BuildPull[] = [
    ...walk.pulls,
    ...dockerfileUses.flatMap((use) => dockerfileUsePulls(use, files, wanted)),
  ];
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

/**
 * The variables the first command sees: the region, the source root, the buildspec's `env.variables`
 * and the project's plain-text variables over them; secrets and parameters are known by name only.
 */
function initialScope(spec: Buildspec | undefined, input: PlanInput): Scope {
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
  return {
    values,
    secret,
    region: input.region,
    ...(input.accountId ? { accountId: input.accountId } : {}),
  };
}

/**
 * The images of the compose files the commands read (added to the walk's pulls), and the Dockerfiles of
 * the services they build; every compose file looked for is wanted.
 */
function composePulls(
  walk: Walk,
  scope: Scope,
  files: ReadonlyMap<string, string | undefined>,
  wanted: Set<string>,
): DockerfileUse[] {
  const uses: DockerfileUse[] = [];
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
      uses.push({ path: dockerfile.path, buildArgs: new Map(), command: compose.command });
    }
  }
  return uses;
}

/** The pulls of a Dockerfile a command builds, when its text was given; it is wanted either way. */
function dockerfileUsePulls(
  use: DockerfileUse,
  files: ReadonlyMap<string, string | undefined>,
  wanted: Set<string>,
): BuildPull[] {
  wanted.add(use.path);
  const text = files.get(use.path);
  if (typeof text !== 'string') return [];
  return dockerfilePulls(text, use.buildArgs).map((pull) => ({
    reference: pull.reference,
    how: pull.how,
    where: `${use.path} line ${pull.lineNumber}`,
    command: use.command,
    file: use.path,
    lineNumber: pull.lineNumber,
    line: pull.line,
  }));
}
