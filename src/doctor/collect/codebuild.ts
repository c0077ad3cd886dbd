/**
 * CodeBuild: a project's environment image and credentials, its last failed build (phases, log), what its
 * buildspec pulls, logs in to and reads, its service role, VPC and logs, into facts.
 */
import type { ContainerDefinition } from '@aws-sdk/client-ecs';
import type { Build, Project } from '@aws-sdk/client-codebuild';
import type { PullThroughCacheRule } from '@aws-sdk/client-ecr';
import { PullsafeError } from '../../errors/index.ts';
import {
  dockerHubLoginBefore,
  ecrLoginBefore,
  planBuild,
  type BuildPlan,
  type PlanInput,
} from '../build-plan.ts';
import { canonicalReference, classifyImage, parseEcrHost } from '../images.ts';
import { executionRequirements, pullRoleRequirements } from '../requirements.ts';
import type {
  BuildFacts,
  Facts,
  ImageFacts,
  LogFacts,
  Lookup,
  NetworkFacts,
  Needs,
  SecretFacts,
} from '../types.ts';
import {
  buildFailureText,
  checkSourceDir,
  collectBuildSecrets,
  failedPhase,
  readBuild,
  readBuildLog,
  readBuildspecFile,
  readSourceFiles,
} from './build.ts';
import type { Collector, DoctorTarget } from './collector.ts';
import { arnAccount, arnRegion } from '../../shared/arn.ts';
import { call } from './collector.ts';
import { collectImage, pullThroughRulesFor } from './images.ts';
import { collectLogs, collectSecrets } from './secrets.ts';
import { collectRole } from './roles.ts';
import { collectNetwork, computeNeeds } from './network.ts';

export async function collectCodeBuild(c: Collector, target: DoctorTarget): Promise<Facts> {
  const projectName = target.codebuildProject ?? '';
  // Local files first: a wrong path is a usage error, found before any AWS call.
  const buildspecFile =
    target.buildspecFile === undefined ? undefined : await readBuildspecFile(target.buildspecFile);
  if (target.sourceDir !== undefined) await checkSourceDir(target.sourceDir);

  const project = await describeProject(c, projectName);
  const region = arnRegion(project.arn) ?? c.region;
  const accountId = arnAccount(project.arn) ?? arnAccount(project.serviceRole);
  const environment = project.environment;
  const curated = (environment?.image ?? '').startsWith('aws/codebuild/');

  const read = await readBuild(c, project, region, target.buildId);
  const log = read.build ? await readBuildLog(c, read.build, region) : undefined;
  const buildspec = await buildspecOf(project, target, buildspecFile);
  const plan = await planWithSource(
    {
      ...(buildspec.text !== undefined ? { buildspec: buildspec.text } : {}),
      projectVariables: environment?.environmentVariables ?? [],
      region,
      ...(accountId ? { accountId } : {}),
      ...(log?.lines.state === 'found' ? { logLines: log.lines.value } : {}),
    },
    target.sourceDir,
  );

  const buildPullsEcr = plan.pulls.some((pull) => classifyImage(pull.reference, { region }).kind === 'ecr');
  const pullThroughRules: Lookup<PullThroughCacheRule[]> =
    curated && !buildPullsEcr
      ? { state: 'found', value: [] }
      : await pullThroughRulesFor(c, region, accountId);
  const image = await environmentImage(c, project, region, accountId, pullThroughRules);
  const buildImages = await collectBuildImages(c, plan, region, accountId, pullThroughRules);
  const secrets = await projectSecrets(c, project, plan, region, accountId);
  const logs = await projectLogs(c, project, projectName, region);
  const requests = [
    ...(curated ? [] : pullRoleRequirements([image])),
    ...pullRoleRequirements(buildImages),
    ...executionRequirements(secrets, logs, accountId),
  ];
  const pullRole = project.serviceRole
    ? await collectRole(c, project.serviceRole, 'codebuild-service', requests)
    : undefined;
  const network = await projectNetwork(c, project, region);
  const needs: Needs = {
    ...computeNeeds([...(curated ? [] : [image]), ...buildImages], secrets, logs, region),
    ...sourceNeeds(project),
  };
  // `aws ecr get-login-password` asks the regional ECR API, whatever the build then does with the token.
  if (plan.logins.some((login) => login.target === 'ecr' && ecrInRegion(login.registry, region))) {
    needs.ecrApi = true;
  }

  const build = read.build;
  const buildFacts: BuildFacts = {
    ...(build ? { build } : {}),
    ...(read.failure ? { failure: read.failure } : {}),
    ...(log ? { log } : {}),
    buildspec,
    plan,
  };
  return {
    region,
    ...(accountId ? { accountId } : {}),
    subject: { kind: 'codebuild-project', name: projectName, ...(build?.id ? { build: build.id } : {}) },
    stopReasons: build ? buildStopReasons(build, log) : [],
    project,
    build: buildFacts,
    launchType: 'CODEBUILD',
    architecture: environment?.type?.startsWith('ARM') ? 'ARM64' : 'X86_64',
    os: environment?.type?.startsWith('WINDOWS') ? 'windows' : 'linux',
    images: [image, ...buildImages],
    ...(pullRole ? { pullRole } : {}),
    secrets,
    logs,
    ...(network ? { network } : {}),
    needs,
    failures: c.failures,
  };
}

async function describeProject(c: Collector, projectName: string): Promise<Project> {
  const answer = await call(c, 'codebuild', 'BatchGetProjects', { names: [projectName] });
  const project = answer.projects?.[0];
  if (!project) {
    throw new PullsafeError('AWS_NOT_FOUND', `CodeBuild has no project ${projectName}`, {
      hint: 'check the project name and --region',
    });
  }
  return project;
}

/** The build environment's image: a curated CodeBuild image is AWS's own, anything else is pulled. */
async function environmentImage(
  c: Collector,
  project: Project,
  region: string,
  accountId: string | undefined,
  pullThroughRules: Lookup<PullThroughCacheRule[]>,
): Promise<ImageFacts> {
  const environment = project.environment;
  const reference = environment?.image ?? '';
  if (reference.startsWith('aws/codebuild/')) {
    return { container: 'build environment', reference, kind: 'other' } satisfies ImageFacts;
  }
  const credential = environment?.registryCredential?.credential;
  return collectImage(
    c,
    {
      name: 'build environment',
      image: reference,
      ...(credential ? { repositoryCredentials: { credentialsParameter: credential } } : {}),
    },
    undefined,
    region,
    accountId,
    pullThroughRules,
  );
}

/** The environment image's registry credential, and the secrets and parameters the buildspec reads. */
async function projectSecrets(
  c: Collector,
  project: Project,
  plan: BuildPlan,
  region: string,
  accountId: string | undefined,
): Promise<SecretFacts[]> {
  const credential = project.environment?.registryCredential?.credential;
  const containers: ContainerDefinition[] = credential
    ? [{ name: 'build environment', repositoryCredentials: { credentialsParameter: credential } }]
    : [];
  return [
    ...(await collectSecrets(c, containers, region, accountId)),
    ...(await collectBuildSecrets(c, plan.secrets, region, accountId)),
  ];
}

/** CloudWatch Logs are on unless disabled; CodeBuild creates its group (`/aws/codebuild/<project>` by default). */
async function projectLogs(
  c: Collector,
  project: Project,
  projectName: string,
  region: string,
): Promise<LogFacts[]> {
  const cloudWatch = project.logsConfig?.cloudWatchLogs;
  if (cloudWatch?.status === 'DISABLED') return [];
  const options = {
    'awslogs-group': cloudWatch?.groupName ?? `/aws/codebuild/${project.name ?? projectName}`,
    'awslogs-create-group': 'true',
  };
  return collectLogs(c, [{ name: 'build', logConfiguration: { logDriver: 'awslogs', options } }], region);
}

/** A build in a VPC: its subnets and security groups (CodeBuild never gives it a public address). */
async function projectNetwork(
  c: Collector,
  project: Project,
  region: string,
): Promise<NetworkFacts | undefined> {
  const vpc = project.vpcConfig;
  if (!vpc?.vpcId || !vpc.subnets?.length) return undefined;
  return collectNetwork(c, region, {
    subnets: vpc.subnets,
    securityGroups: { state: 'found', value: vpc.securityGroupIds ?? [] },
    assignPublicIp: false,
  });
}

/** What the failed phase and its log say, as explain reads a stop reason. */
function buildStopReasons(build: Build, log: BuildFacts['log']): Facts['stopReasons'] {
  const failureText = buildFailureText(build, log);
  if (failureText === '') return [];
  const phase = failedPhase(build);
  const statusCode = phase?.contexts?.find((context) => context.statusCode)?.statusCode;
  return [
    {
      task: build.id ?? build.arn ?? 'build',
      text: failureText,
      build: {
        ...(phase?.phaseType ? { phase: phase.phaseType } : {}),
        ...(statusCode ? { statusCode } : {}),
      },
    },
  ];
}

function ecrInRegion(registry: string | undefined, region: string): boolean {
  if (registry === undefined) return true;
  return parseEcrHost(registry)?.region === region;
}

/**
 * Where the buildspec is: `--buildspec FILE`, inline in the project, or a path in the source (read from
 * `--source DIR` when given; `buildspec.yml` when the project names none).
 */
async function buildspecOf(
  project: Project,
  target: DoctorTarget,
  file: string | undefined,
): Promise<BuildFacts['buildspec']> {
  if (target.buildspecFile !== undefined && file !== undefined) {
    return { origin: 'file', path: target.buildspecFile, text: file };
  }
  const written = project.source?.buildspec ?? '';
  if (written.includes('\n') || /^\s*version\s*:/.test(written)) return { origin: 'project', text: written };
  const path = written.trim() === '' ? 'buildspec.yml' : written.trim();
  if (target.sourceDir === undefined || path.startsWith('arn:')) return { origin: 'unavailable', path };
  const text = (await readSourceFiles(target.sourceDir, [path])).get(path);
  return text === undefined ? { origin: 'unavailable', path } : { origin: 'source', path, text };
}

/**
 * The plan, with the Dockerfiles and compose files it names read from the source when there is one. A
 * compose file names Dockerfiles in turn, so reading goes on while new files are wanted (bounded).
 */
async function planWithSource(input: PlanInput, sourceDir: string | undefined): Promise<BuildPlan> {
  let plan = planBuild(input);
  if (sourceDir === undefined) return plan;
  const files = new Map<string, string | undefined>();
  for (let round = 0; round < 3; round++) {
    const wanted = plan.wantedFiles.filter((path) => !files.has(path));
    if (wanted.length === 0) break;
    for (const [path, text] of await readSourceFiles(sourceDir, wanted)) files.set(path, text);
    plan = planBuild({ ...input, files });
  }
  return plan;
}

/**
 * The images the build pulls itself, one entry per image (its first pull), each looked up like a task's
 * image, with whether a Docker Hub (or ECR) login comes before that pull.
 */
async function collectBuildImages(
  c: Collector,
  plan: BuildPlan,
  region: string,
  accountId: string | undefined,
  pullThroughRules: Lookup<PullThroughCacheRule[]>,
): Promise<ImageFacts[]> {
  const position = (order: number | undefined) => order ?? Number.MAX_SAFE_INTEGER;
  const ordered = plan.pulls
    .map((pull, index) => ({ pull, index }))
    .sort((a, b) => position(a.pull.command?.order) - position(b.pull.command?.order) || a.index - b.index);
  const seen = new Set<string>();
  const first = ordered.filter(({ pull }) => {
    const key = canonicalReference(pull.reference);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return Promise.all(
    first.map(async ({ pull }) => {
      const image = await collectImage(
        c,
        { name: `build: ${pull.how} (${pull.where})`, image: pull.reference },
        undefined,
        region,
        accountId,
        pullThroughRules,
      );
      const dockerHubLogin = dockerHubLoginBefore(plan, pull);
      const ecrLogin =
        image.kind === 'ecr' && image.registry ? ecrLoginBefore(plan, pull, image.registry) : undefined;
      image.build = {
        pull,
        ...(dockerHubLogin !== undefined ? { dockerHubLogin } : {}),
        ...(ecrLogin !== undefined ? { ecrLogin } : {}),
      };
      return image;
    }),
  );
}

const sourceProviderHosts: Record<string, string> = {
  GITHUB: 'github.com',
  BITBUCKET: 'bitbucket.org',
  GITLAB: 'gitlab.com',
};

/** What fetching the source needs from inside the VPC. */
function sourceNeeds(project: Project): Pick<Needs, 's3Source' | 'codecommit' | 'sourceHosts'> {
  const type = project.source?.type ?? '';
  if (type === 'S3' || type === 'CODEPIPELINE') return { s3Source: true };
  if (type === 'CODECOMMIT') return { codecommit: true };
  const fixed = sourceProviderHosts[type];
  if (fixed !== undefined) return { sourceHosts: [fixed] };
  if (type === 'GITHUB_ENTERPRISE' || type === 'GITLAB_SELF_MANAGED') {
    try {
      return { sourceHosts: [new URL(project.source?.location ?? '').host] };
    } catch {
      return {};
    }
  }
  return {};
}
