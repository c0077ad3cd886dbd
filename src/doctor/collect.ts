/**
 * Collectors: read-only AWS calls that turn a task, service, task definition or CodeBuild project into
 * `Facts`. Independent lookups run in parallel; a call that fails is kept as a `failed` lookup (and in
 * `facts.failures`), so checks report "could not check" instead of passing.
 */
import type {
  Task,
  TaskDefinition,
  Service,
  ContainerDefinition,
  DescribeTasksResponse,
  DescribeServicesResponse,
  DescribeTaskDefinitionResponse,
} from '@aws-sdk/client-ecs';
import type {
  Subnet,
  RouteTable,
  SecurityGroup,
  NetworkAcl,
  VpcEndpoint,
  PrefixList,
  Vpc,
  Instance,
  Reservation,
} from '@aws-sdk/client-ec2';
import type {
  Repository,
  ImageDetail,
  PullThroughCacheRule,
  BatchGetImageResponse,
  GetRepositoryPolicyResponse,
} from '@aws-sdk/client-ecr';
import type { Project } from '@aws-sdk/client-codebuild';
import { PullsafeError } from '../errors/index.ts';
import { paginate, toCallError, type AwsCaller, type AwsService, type ImageConfigPlatform } from './aws.ts';
import { parsePolicyDocument } from './iam-eval.ts';
import { classifyImage, endpointNeeds } from './images.ts';
import {
  executionRequirements,
  partitionOf,
  pullRoleRequirements,
  type Requirement,
} from './requirements.ts';
import type {
  CallFailure,
  Facts,
  ImageFacts,
  LogFacts,
  Lookup,
  NamedPolicy,
  NetworkFacts,
  Needs,
  PolicyDocument,
  RoleFacts,
  SecretFacts,
  SimulatedDecision,
  Subject,
} from './types.ts';

export interface DoctorTarget {
  cluster?: string;
  task?: string;
  service?: string;
  taskDefinition?: string;
  codebuildProject?: string;
  /** For a task definition checked before deploying: where it would run. */
  subnets?: string[];
  securityGroups?: string[];
  assignPublicIp?: boolean;
}

/** How many recent stopped tasks of a service are read for their stop reasons. */
const serviceTaskSample = 5;

/** Per-run state: the caller, region and failures seen. */
class Collector {
  readonly failures: CallFailure[] = [];
  readonly caller: AwsCaller;
  readonly region: string;

  constructor(caller: AwsCaller, region: string) {
    this.caller = caller;
    this.region = region;
  }

  fail(error: unknown, service: AwsService, operation: string): CallFailure {
    const callError = toCallError(service, operation, error);
    const failure: CallFailure = {
      service: callError.service,
      operation: callError.operation,
      code: callError.awsName,
      message: callError.detail,
    };
    this.failures.push(failure);
    return failure;
  }

  /** Runs a lookup; errors named in `missing` mean "does not exist", anything else is a failure. */
  async lookup<T>(
    service: AwsService,
    operation: string,
    run: () => Promise<T | undefined>,
    missing: readonly string[] = [],
    missingDetail = 'does not exist',
  ): Promise<Lookup<T>> {
    try {
      const value = await run();
      return value === undefined ? { state: 'missing', detail: missingDetail } : { state: 'found', value };
    } catch (error) {
      const callError = toCallError(service, operation, error);
      if (missing.includes(callError.awsName)) {
        return { state: 'missing', detail: `${callError.awsName}: ${callError.detail}` };
      }
      return { state: 'failed', failure: this.fail(callError, service, operation) };
    }
  }
}

export async function collect(caller: AwsCaller, target: DoctorTarget, region: string): Promise<Facts> {
  const collector = new Collector(caller, region);
  if (target.codebuildProject) return collectCodeBuild(collector, target.codebuildProject);
  return collectEcs(collector, target);
}

// ---------------------------------------------------------------------------------------------------------
// ECS

async function collectEcs(c: Collector, target: DoctorTarget): Promise<Facts> {
  const subject: Subject = target.task
    ? { kind: 'task', name: target.task, ...(target.cluster ? { cluster: target.cluster } : {}) }
    : target.service
      ? { kind: 'service', name: target.service, ...(target.cluster ? { cluster: target.cluster } : {}) }
      : { kind: 'task-definition', name: target.taskDefinition ?? '' };
  if (!target.task && !target.service && !target.taskDefinition) {
    throw new PullsafeError(
      'USAGE',
      'doctor needs --task, --service, --task-definition or --codebuild-project',
    );
  }

  let task: Task | undefined;
  let service: Service | undefined;
  const stopReasons: Facts['stopReasons'] = [];
  const tasks: Task[] = [];

  if (target.task) {
    const answer = await call<DescribeTasksResponse>(c, 'ecs', 'DescribeTasks', {
      ...(target.cluster ? { cluster: target.cluster } : {}),
      tasks: [target.task],
    });
    task = answer.tasks?.[0];
    if (!task) {
      const reason = answer.failures?.[0]?.reason ?? 'MISSING';
      throw new PullsafeError(
        'REGISTRY_NOT_FOUND',
        `ECS has no task ${target.task}${target.cluster ? ` in cluster ${target.cluster}` : ''} (${reason})`,
        {
          hint: 'ECS forgets stopped tasks after about an hour: check the cluster and region, or run doctor on the task definition (--task-definition) or the service (--service)',
        },
      );
    }
    tasks.push(task);
  }

  const serviceName = target.service ?? groupService(task?.group);
  if (serviceName) {
    const answer = await optional(c, 'ecs', 'DescribeServices', {
      ...(target.cluster ? { cluster: target.cluster } : {}),
      services: [serviceName],
    });
    service = (answer as DescribeServicesResponse | undefined)?.services?.[0];
    if (target.service && !service) {
      throw new PullsafeError('REGISTRY_NOT_FOUND', `ECS has no service ${target.service}`, {
        hint: 'check --cluster and --region',
      });
    }
    if (target.service && !task) {
      const stopped = await optional(c, 'ecs', 'ListTasks', {
        ...(target.cluster ? { cluster: target.cluster } : {}),
        serviceName,
        desiredStatus: 'STOPPED',
      });
      const arns = ((stopped?.taskArns as string[] | undefined) ?? []).slice(0, 100);
      if (arns.length > 0) {
        const described = await optional(c, 'ecs', 'DescribeTasks', {
          ...(target.cluster ? { cluster: target.cluster } : {}),
          tasks: arns,
        });
        const recent = ((described as DescribeTasksResponse | undefined)?.tasks ?? [])
          .filter((t) => t.stoppedReason || t.containers?.some((container) => container.reason))
          .sort((a, b) => time(b.stoppedAt ?? b.createdAt) - time(a.stoppedAt ?? a.createdAt))
          .slice(0, serviceTaskSample);
        tasks.push(...recent);
        task = recent[0];
      }
    }
  }

  for (const t of tasks) {
    const id = t.taskArn ?? 'task';
    const texts = new Set<string>();
    if (t.stoppedReason) texts.add(t.stoppedReason);
    for (const container of t.containers ?? []) if (container.reason) texts.add(container.reason);
    for (const text of texts) stopReasons.push({ task: id, text });
  }

  const definitionId = target.taskDefinition ?? task?.taskDefinitionArn ?? service?.taskDefinition;
  if (!definitionId) throw new PullsafeError('USAGE', 'no task definition to check');
  const definitionAnswer = await call<DescribeTaskDefinitionResponse>(c, 'ecs', 'DescribeTaskDefinition', {
    taskDefinition: definitionId,
  });
  const taskDefinition = definitionAnswer.taskDefinition;
  if (!taskDefinition)
    throw new PullsafeError('REGISTRY_NOT_FOUND', `ECS has no task definition ${definitionId}`);

  const accountId =
    arnAccount(task?.taskArn) ??
    arnAccount(taskDefinition.taskDefinitionArn) ??
    arnAccount(service?.serviceArn);
  const region = arnRegion(taskDefinition.taskDefinitionArn) ?? c.region;

  const launchType = launchTypeOf(task, service, taskDefinition);
  const architecture = architectureOf(task, taskDefinition);
  const os = taskDefinition.runtimePlatform?.operatingSystemFamily?.startsWith('WINDOWS')
    ? 'windows'
    : 'linux';
  const platformVersion = task?.platformVersion ?? service?.platformVersion;

  const pullThroughRules = await pullThroughRulesFor(c, region, accountId);
  const containers = taskDefinition.containerDefinitions ?? [];
  const images = await Promise.all(
    containers.map((container) =>
      collectImage(c, container, task, region, accountId, pullThroughRules.rules),
    ),
  );

  const secrets = await collectSecrets(c, containers, region, accountId);
  const logs = await collectLogs(c, containers, region);

  const executionRoleArn = taskDefinition.executionRoleArn;
  const pullNeeds = pullRoleRequirements(images);
  const executionNeeds = executionRequirements(secrets, logs, accountId);
  const executionRole = executionRoleArn
    ? await collectRole(
        c,
        executionRoleArn,
        'execution',
        launchType === 'EC2' ? executionNeeds : [...executionNeeds, ...pullNeeds],
      )
    : undefined;
  let pullRole: Lookup<RoleFacts> | undefined = executionRole;
  let instance: Instance | undefined;
  if (launchType === 'EC2') {
    const found = await instanceOf(c, task, target.cluster);
    instance = found.instance;
    pullRole = found.profileArn
      ? await instanceRole(c, found.profileArn, pullNeeds)
      : found.failure
        ? { state: 'failed', failure: found.failure }
        : pullRole;
  }

  const needs = computeNeeds(images, secrets, logs, region);
  const network = await collectNetwork(
    c,
    region,
    networkPlacement(task, service, target, instance, launchType),
  );

  return {
    region,
    ...(accountId ? { accountId } : {}),
    subject,
    stopReasons,
    ...(task ? { task } : {}),
    ...(service ? { service } : {}),
    taskDefinition,
    launchType,
    ...(platformVersion ? { platformVersion } : {}),
    architecture,
    os,
    images,
    ...(pullRole ? { pullRole } : {}),
    ...(executionRole ? { executionRole } : {}),
    secrets,
    logs,
    ...(network ? { network } : {}),
    needs,
    failures: c.failures,
  };
}

function groupService(group: string | undefined): string | undefined {
  return group?.startsWith('service:') ? group.slice('service:'.length) : undefined;
}

function time(value: Date | string | undefined): number {
  if (value === undefined) return 0;
  return new Date(value).getTime() || 0;
}

function launchTypeOf(
  task: Task | undefined,
  service: Service | undefined,
  definition: TaskDefinition,
): Facts['launchType'] {
  const explicit = task?.launchType ?? service?.launchType;
  if (explicit === 'FARGATE' || explicit === 'EC2' || explicit === 'EXTERNAL') return explicit;
  const provider = task?.capacityProviderName ?? service?.capacityProviderStrategy?.[0]?.capacityProvider;
  if (provider?.startsWith('FARGATE')) return 'FARGATE';
  if (provider) return 'EC2';
  if (task?.containerInstanceArn) return 'EC2';
  const compat = definition.requiresCompatibilities ?? [];
  if (compat.includes('FARGATE') && !compat.includes('EC2')) return 'FARGATE';
  if (compat.includes('EC2') && !compat.includes('FARGATE')) return 'EC2';
  return compat.includes('FARGATE') ? 'FARGATE' : 'UNKNOWN';
}

function architectureOf(task: Task | undefined, definition: TaskDefinition): string {
  const attribute = task?.attributes?.find((a) => a.name === 'ecs.cpu-architecture')?.value;
  if (attribute) return /arm|aarch/i.test(attribute) ? 'ARM64' : 'X86_64';
  return definition.runtimePlatform?.cpuArchitecture ?? 'X86_64';
}

export function arnAccount(arn: string | undefined): string | undefined {
  const account = arn?.split(':')[4];
  return account && /^\d{12}$/.test(account) ? account : undefined;
}

export function arnRegion(arn: string | undefined): string | undefined {
  const region = arn?.split(':')[3];
  return region ? region : undefined;
}

const arnPartition = partitionOf;

async function call<T>(
  c: Collector,
  service: AwsService,
  operation: string,
  input: Record<string, unknown>,
  region?: string,
): Promise<T> {
  try {
    return await c.caller.call<T>(service, operation, input, region);
  } catch (error) {
    const failure = toCallError(service, operation, error);
    if (failure.awsName === 'ClusterNotFoundException') {
      throw new PullsafeError(
        'REGISTRY_NOT_FOUND',
        `ECS has no cluster ${String(input.cluster ?? 'default')}`,
        {
          hint: 'check --cluster and --region',
        },
      );
    }
    throw new PullsafeError(
      'REGISTRY_UNAVAILABLE',
      `cannot read ${service}:${operation}: ${failure.awsName}: ${failure.detail}`,
      {
        hint:
          failure.awsName === 'AccessDeniedException' || failure.awsName === 'UnauthorizedOperation'
            ? `doctor needs read access to ${service}:${operation} (see docs/doctor.md for the read-only policy)`
            : 'check your AWS credentials (--profile), --region and the network path to AWS',
        cause: error,
      },
    );
  }
}

async function optional(
  c: Collector,
  service: AwsService,
  operation: string,
  input: Record<string, unknown>,
  region?: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    return await c.caller.call(service, operation, input, region);
  } catch (error) {
    c.fail(error, service, operation);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Images

async function pullThroughRulesFor(
  c: Collector,
  region: string,
  accountId: string | undefined,
): Promise<{ rules: PullThroughCacheRule[] }> {
  try {
    const rules = await paginate<PullThroughCacheRule>(
      c.caller,
      'ecr',
      'DescribePullThroughCacheRules',
      accountId ? { registryId: accountId } : {},
      'pullThroughCacheRules',
      { input: 'nextToken', output: 'nextToken' },
      region,
    );
    return { rules };
  } catch (error) {
    c.fail(error, 'ecr', 'DescribePullThroughCacheRules');
    return { rules: [] };
  }
}

const manifestMediaTypes = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

async function collectImage(
  c: Collector,
  container: ContainerDefinition,
  task: Task | undefined,
  taskRegion: string,
  accountId: string | undefined,
  rules: PullThroughCacheRule[],
): Promise<ImageFacts> {
  const name = container.name ?? '(unnamed)';
  const reference = container.image ?? '';
  const classified = classifyImage(reference, {
    region: taskRegion,
    ...(accountId ? { accountId } : {}),
    pullThroughPrefixes: rules.map((rule) => rule.ecrRepositoryPrefix ?? '').filter(Boolean),
  });
  const pinnedDigest = task?.containers?.find((entry) => entry.name === container.name)?.imageDigest;
  const credentialsParameter = container.repositoryCredentials?.credentialsParameter;
  const { ecr: location, ...described } = classified;
  const facts: ImageFacts = {
    ...described,
    container: name,
    reference,
    ...(pinnedDigest ? { pinnedDigest } : {}),
    ...(credentialsParameter ? { credentialsParameter } : {}),
  };
  if (classified.kind !== 'ecr' || !location || !classified.repository) return facts;

  const registryId = location.registryId;
  const region = location.region;
  const repositoryName = classified.repository;
  const imageId = classified.digest
    ? { imageDigest: classified.digest }
    : { imageTag: classified.tag ?? 'latest' };
  const [repository, image, repositoryPolicy, platforms] = await Promise.all([
    c.lookup<Repository>(
      'ecr',
      'DescribeRepositories',
      async () =>
        (
          await c.caller.call<{ repositories?: Repository[] }>(
            'ecr',
            'DescribeRepositories',
            { registryId, repositoryNames: [repositoryName] },
            region,
          )
        ).repositories?.[0],
      ['RepositoryNotFoundException'],
    ),
    c.lookup<ImageDetail>(
      'ecr',
      'DescribeImages',
      async () =>
        (
          await c.caller.call<{ imageDetails?: ImageDetail[] }>(
            'ecr',
            'DescribeImages',
            { registryId, repositoryName, imageIds: [imageId] },
            region,
          )
        ).imageDetails?.[0],
      ['ImageNotFoundException', 'RepositoryNotFoundException'],
    ),
    c.lookup<PolicyDocument>(
      'ecr',
      'GetRepositoryPolicy',
      async () => {
        const answer = await c.caller.call<GetRepositoryPolicyResponse>(
          'ecr',
          'GetRepositoryPolicy',
          { registryId, repositoryName },
          region,
        );
        return answer.policyText ? parsePolicyDocument(answer.policyText) : undefined;
      },
      ['RepositoryPolicyNotFoundException', 'RepositoryNotFoundException'],
      'the repository has no policy',
    ),
    c.lookup<string[]>(
      'ecr',
      'BatchGetImage',
      async () => {
        const answer = await c.caller.call<BatchGetImageResponse>(
          'ecr',
          'BatchGetImage',
          { registryId, repositoryName, imageIds: [imageId], acceptedMediaTypes: manifestMediaTypes },
          region,
        );
        const manifest = answer.images?.[0]?.imageManifest;
        if (!manifest) return undefined;
        const listed = platformsOfManifest(manifest);
        if (listed.length > 0) return listed;
        // A single-platform image names its platform only in its config blob.
        const configDigest = configDigestOf(manifest);
        if (!configDigest) return [];
        const config = await c.caller.call<ImageConfigPlatform>(
          'ecr',
          'GetImageConfigPlatform',
          { registryId, repositoryName, configDigest },
          region,
        );
        return config.architecture
          ? [[config.os ?? 'linux', config.architecture, config.variant].filter(Boolean).join('/')]
          : [];
      },
      ['RepositoryNotFoundException', 'ImageNotFoundException'],
    ),
  ]);
  const ecr: NonNullable<ImageFacts['ecr']> = {
    registryId,
    region,
    crossAccount: location.crossAccount,
    repository,
    image,
    repositoryPolicy,
    ...(platforms.state === 'found' && platforms.value.length === 0 ? {} : { platforms }),
  };
  const rule = rules.find(
    (r) => r.ecrRepositoryPrefix && repositoryName.startsWith(`${r.ecrRepositoryPrefix}/`),
  );
  if (rule) ecr.pullThroughRule = rule;
  return { ...facts, ecr };
}

/** The config digest of a single-platform manifest, or undefined. */
export function configDigestOf(text: string): string | undefined {
  try {
    const digest = (JSON.parse(text) as { config?: { digest?: unknown } }).config?.digest;
    return typeof digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(digest) ? digest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Platforms an image offers, as listed by an index (an empty list for a single manifest, whose platform
 * lives in its config blob).
 */
export function platformsOfManifest(text: string): string[] {
  let parsed: { manifests?: { platform?: { os?: string; architecture?: string; variant?: string } }[] };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return [];
  }
  if (!Array.isArray(parsed.manifests)) return [];
  const platforms = new Set<string>();
  for (const entry of parsed.manifests) {
    const p = entry.platform;
    if (!p?.os || !p.architecture || p.os === 'unknown') continue;
    platforms.add([p.os, p.architecture, p.variant].filter(Boolean).join('/'));
  }
  return [...platforms];
}

// ---------------------------------------------------------------------------------------------------------
// Secrets and logs

interface SecretUse {
  container: string;
  use: SecretFacts['use'];
  reference: string;
}

export function secretUses(containers: ContainerDefinition[]): SecretUse[] {
  const uses: SecretUse[] = [];
  for (const container of containers) {
    const name = container.name ?? '(unnamed)';
    for (const secret of container.secrets ?? []) {
      if (secret.valueFrom) uses.push({ container: name, use: 'secret', reference: secret.valueFrom });
    }
    const credentials = container.repositoryCredentials?.credentialsParameter;
    if (credentials) uses.push({ container: name, use: 'repositoryCredentials', reference: credentials });
    for (const option of container.logConfiguration?.secretOptions ?? []) {
      if (option.valueFrom) uses.push({ container: name, use: 'log-option', reference: option.valueFrom });
    }
  }
  return uses;
}

/**
 * Where a `valueFrom` points. Secrets Manager ARNs may end in `:json-key:version-stage:version-id`; anything
 * that is not a Secrets Manager ARN is an SSM parameter (name or ARN). `repositoryCredentials` takes a
 * secret ARN or name.
 */
export function parseSecretReference(
  reference: string,
  use: SecretFacts['use'],
  region: string,
  accountId: string | undefined,
): Pick<SecretFacts, 'service' | 'arn' | 'region' | 'jsonKey'> & { id: string } {
  const parts = reference.split(':');
  if (reference.startsWith('arn:') && parts[2] === 'secretsmanager') {
    const secretRegion = parts[3] || region;
    const base = parts.slice(0, 7).join(':');
    const jsonKey = parts[7] || undefined;
    return {
      service: 'secretsmanager',
      arn: base,
      id: base,
      region: secretRegion,
      ...(jsonKey ? { jsonKey } : {}),
    };
  }
  if (reference.startsWith('arn:') && parts[2] === 'ssm') {
    const name = reference.slice(reference.indexOf(':parameter') + ':parameter'.length);
    return {
      service: 'ssm',
      arn: reference,
      id: name.startsWith('/') ? name : `/${name}`,
      region: parts[3] || region,
    };
  }
  if (use === 'repositoryCredentials') return { service: 'secretsmanager', id: reference, region };
  const name = reference;
  const arn = accountId
    ? `arn:${arnPartition(region)}:ssm:${region}:${accountId}:parameter${name.startsWith('/') ? '' : '/'}${name}`
    : undefined;
  return { service: 'ssm', id: name, region, ...(arn ? { arn } : {}) };
}

async function collectSecrets(
  c: Collector,
  containers: ContainerDefinition[],
  region: string,
  accountId: string | undefined,
): Promise<SecretFacts[]> {
  return Promise.all(
    secretUses(containers).map(async (use) => {
      const where = parseSecretReference(use.reference, use.use, region, accountId);
      const base = {
        container: use.container,
        use: use.use,
        reference: use.reference,
        service: where.service,
        region: where.region,
        ...(where.arn ? { arn: where.arn } : {}),
        ...(where.jsonKey ? { jsonKey: where.jsonKey } : {}),
      };
      if (where.service === 'secretsmanager') {
        const metadata = await c.lookup(
          'secretsmanager',
          'DescribeSecret',
          async () => {
            const answer = await c.caller.call<{ ARN?: string; Name?: string; KmsKeyId?: string }>(
              'secretsmanager',
              'DescribeSecret',
              { SecretId: where.id },
              where.region,
            );
            return {
              arn: answer.ARN ?? where.id,
              name: answer.Name ?? where.id,
              ...(answer.KmsKeyId ? { kmsKeyId: answer.KmsKeyId } : {}),
            };
          },
          ['ResourceNotFoundException'],
        );
        const facts: SecretFacts = { ...base, metadata };
        if (use.use === 'repositoryCredentials' && metadata.state === 'found') {
          facts.shape = await c.lookup(
            'secretsmanager',
            'GetSecretValue',
            async () => {
              const answer = await c.caller.call<{ SecretString?: string }>(
                'secretsmanager',
                'GetSecretValue',
                { SecretId: where.id },
                where.region,
              );
              return credentialShape(answer.SecretString);
            },
            ['ResourceNotFoundException'],
          );
        }
        return facts;
      }
      const metadata = await c.lookup(
        'ssm',
        'DescribeParameters',
        async () => {
          const answer = await c.caller.call<{
            Parameters?: { ARN?: string; Name?: string; KeyId?: string }[];
          }>(
            'ssm',
            'DescribeParameters',
            { ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [where.id] }] },
            where.region,
          );
          const parameter = answer.Parameters?.[0];
          if (!parameter) return undefined;
          return {
            arn: parameter.ARN ?? where.arn ?? where.id,
            name: parameter.Name ?? where.id,
            ...(parameter.KeyId ? { kmsKeyId: parameter.KeyId } : {}),
          };
        },
        ['ParameterNotFound'],
        `no SSM parameter named ${where.id} in ${where.region}`,
      );
      return { ...base, metadata };
    }),
  );
}

/** Judges a registry credential without keeping it: the value itself is dropped here. */
export function credentialShape(
  secret: string | undefined,
): NonNullable<SecretFacts['shape']> extends Lookup<infer S> ? S : never {
  if (secret === undefined) return 'not-json';
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    return 'not-json';
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return 'not-json';
  const record = parsed as Record<string, unknown>;
  if (typeof record.username !== 'string' || record.username === '') return 'missing-username';
  if (typeof record.password !== 'string' || record.password === '') return 'missing-password';
  return 'username-password';
}

async function collectLogs(
  c: Collector,
  containers: ContainerDefinition[],
  region: string,
): Promise<LogFacts[]> {
  const logs: LogFacts[] = [];
  const seen = new Map<string, Promise<Lookup<true>>>();
  for (const container of containers) {
    const configuration = container.logConfiguration;
    if (configuration?.logDriver !== 'awslogs') continue;
    const group = configuration.options?.['awslogs-group'];
    if (!group) continue;
    const groupRegion = configuration.options?.['awslogs-region'] ?? region;
    const createGroup = configuration.options?.['awslogs-create-group'] === 'true';
    const key = `${groupRegion}/${group}`;
    let exists = seen.get(key);
    if (!exists) {
      exists = c.lookup<true>(
        'logs',
        'DescribeLogGroups',
        async () => {
          const groups = await paginate<{ logGroupName?: string }>(
            c.caller,
            'logs',
            'DescribeLogGroups',
            { logGroupNamePrefix: group },
            'logGroups',
            { input: 'nextToken', output: 'nextToken' },
            groupRegion,
            5,
          );
          return groups.some((g) => g.logGroupName === group) ? true : undefined;
        },
        [],
        `no log group ${group} in ${groupRegion}`,
      );
      seen.set(key, exists);
    }
    logs.push({
      container: container.name ?? '(unnamed)',
      group,
      region: groupRegion,
      createGroup,
      exists: await exists,
    });
  }
  return logs;
}

// ---------------------------------------------------------------------------------------------------------
// Roles

type RoleRequest = Pick<Requirement, 'action' | 'resource'>;

export async function collectRole(
  c: Collector,
  roleArn: string,
  purpose: RoleFacts['purpose'],
  requests: RoleRequest[],
): Promise<Lookup<RoleFacts>> {
  const name = roleArn.split('/').pop() ?? roleArn;
  const role = await c.lookup<{ PermissionsBoundary?: { PermissionsBoundaryArn?: string } }>(
    'iam',
    'GetRole',
    async () =>
      (
        await c.caller.call<{ Role?: { PermissionsBoundary?: { PermissionsBoundaryArn?: string } } }>(
          'iam',
          'GetRole',
          { RoleName: name },
        )
      ).Role,
    ['NoSuchEntity', 'NoSuchEntityException'],
    `IAM has no role ${name}`,
  );
  if (role.state === 'missing') return role;
  const [policies, simulation] = await Promise.all([
    c.lookup<NamedPolicy[]>('iam', 'ListRolePolicies', () => rolePolicies(c, name)),
    simulate(c, roleArn, requests),
  ]);
  const boundaryArn =
    role.state === 'found' ? role.value.PermissionsBoundary?.PermissionsBoundaryArn : undefined;
  const facts: RoleFacts = { arn: roleArn, name, purpose, policies, simulation };
  if (boundaryArn) {
    facts.permissionsBoundary = await c.lookup<NamedPolicy>('iam', 'GetPolicy', async () => ({
      name: boundaryArn,
      kind: 'boundary',
      document: await managedPolicyDocument(c, boundaryArn),
    }));
  }
  return { state: 'found', value: facts };
}

async function rolePolicies(c: Collector, roleName: string): Promise<NamedPolicy[]> {
  const marker = { input: 'Marker', output: 'Marker' };
  const [inlineNames, attached] = await Promise.all([
    paginate<string>(c.caller, 'iam', 'ListRolePolicies', { RoleName: roleName }, 'PolicyNames', marker),
    paginate<{ PolicyArn?: string }>(
      c.caller,
      'iam',
      'ListAttachedRolePolicies',
      { RoleName: roleName },
      'AttachedPolicies',
      marker,
    ),
  ]);
  const inline = await Promise.all(
    inlineNames.map(async (policyName): Promise<NamedPolicy> => {
      const answer = await c.caller.call<{ PolicyDocument?: string }>('iam', 'GetRolePolicy', {
        RoleName: roleName,
        PolicyName: policyName,
      });
      return {
        name: `inline:${roleName}/${policyName}`,
        kind: 'inline',
        document: parsePolicyDocument(answer.PolicyDocument ?? '{"Statement":[]}'),
      };
    }),
  );
  const managed = await Promise.all(
    attached
      .map((policy) => policy.PolicyArn)
      .filter((arn): arn is string => Boolean(arn))
      .map(async (arn): Promise<NamedPolicy> => ({
        name: arn,
        kind: 'managed',
        document: await managedPolicyDocument(c, arn),
      })),
  );
  return [...inline, ...managed];
}

async function managedPolicyDocument(c: Collector, policyArn: string): Promise<PolicyDocument> {
  const policy = await c.caller.call<{ Policy?: { DefaultVersionId?: string } }>('iam', 'GetPolicy', {
    PolicyArn: policyArn,
  });
  const versionId = policy.Policy?.DefaultVersionId ?? 'v1';
  const version = await c.caller.call<{ PolicyVersion?: { Document?: string } }>('iam', 'GetPolicyVersion', {
    PolicyArn: policyArn,
    VersionId: versionId,
  });
  return parsePolicyDocument(version.PolicyVersion?.Document ?? '{"Statement":[]}');
}

async function simulate(
  c: Collector,
  roleArn: string,
  requests: RoleRequest[],
): Promise<Lookup<SimulatedDecision[]>> {
  if (requests.length === 0) return { state: 'found', value: [] };
  // A simulator doctor may not call is not a gap: the policy documents are judged instead.
  const quiet = new Collector(c.caller, c.region);
  return quiet.lookup<SimulatedDecision[]>('iam', 'SimulatePrincipalPolicy', async () => {
    const byResource = new Map<string, string[]>();
    for (const request of requests) {
      const actions = byResource.get(request.resource) ?? [];
      actions.push(request.action);
      byResource.set(request.resource, actions);
    }
    const decisions: SimulatedDecision[] = [];
    for (const [resource, actions] of byResource) {
      const results = await paginate<{
        EvalActionName?: string;
        EvalResourceName?: string;
        EvalDecision?: string;
        MatchedStatements?: {
          SourcePolicyId?: string;
          SourcePolicyType?: string;
          StartPosition?: { Line?: number };
        }[];
      }>(
        c.caller,
        'iam',
        'SimulatePrincipalPolicy',
        { PolicySourceArn: roleArn, ActionNames: actions, ResourceArns: [resource] },
        'EvaluationResults',
        { input: 'Marker', output: 'Marker' },
      );
      for (const result of results) {
        decisions.push({
          action: result.EvalActionName ?? '',
          resource: result.EvalResourceName ?? resource,
          decision:
            result.EvalDecision === 'allowed'
              ? 'allowed'
              : result.EvalDecision === 'explicitDeny'
                ? 'explicitDeny'
                : 'implicitDeny',
          matchedStatements: (result.MatchedStatements ?? []).map(
            (statement) =>
              `${statement.SourcePolicyId ?? 'policy'}@line${statement.StartPosition?.Line ?? '?'}`,
          ),
        });
      }
    }
    return decisions;
  });
}

async function instanceOf(
  c: Collector,
  task: Task | undefined,
  cluster: string | undefined,
): Promise<{ instance?: Instance; profileArn?: string; failure?: CallFailure }> {
  if (!task?.containerInstanceArn) return {};
  try {
    const containerInstances = await c.caller.call<{ containerInstances?: { ec2InstanceId?: string }[] }>(
      'ecs',
      'DescribeContainerInstances',
      { ...(cluster ? { cluster } : {}), containerInstances: [task.containerInstanceArn] },
    );
    const instanceId = containerInstances.containerInstances?.[0]?.ec2InstanceId;
    if (!instanceId) return {};
    const reservations = await c.caller.call<{ Reservations?: Reservation[] }>('ec2', 'DescribeInstances', {
      InstanceIds: [instanceId],
    });
    const instance = reservations.Reservations?.[0]?.Instances?.[0];
    return {
      ...(instance ? { instance } : {}),
      ...(instance?.IamInstanceProfile?.Arn ? { profileArn: instance.IamInstanceProfile.Arn } : {}),
    };
  } catch (error) {
    const failure = c.fail(error, 'ec2', 'DescribeInstances');
    return { failure };
  }
}

async function instanceRole(
  c: Collector,
  profileArn: string,
  requests: RoleRequest[],
): Promise<Lookup<RoleFacts>> {
  const profileName = profileArn.split('/').pop() ?? profileArn;
  let roleArn: string | undefined;
  try {
    const profile = await c.caller.call<{ InstanceProfile?: { Roles?: { Arn?: string }[] } }>(
      'iam',
      'GetInstanceProfile',
      {
        InstanceProfileName: profileName,
      },
    );
    roleArn = profile.InstanceProfile?.Roles?.[0]?.Arn;
  } catch (error) {
    return { state: 'failed', failure: c.fail(error, 'iam', 'GetInstanceProfile') };
  }
  if (!roleArn) return { state: 'missing', detail: `instance profile ${profileName} has no role` };
  return collectRole(c, roleArn, 'instance', requests);
}

// ---------------------------------------------------------------------------------------------------------
// Network

interface Placement {
  subnets: string[];
  securityGroups: Lookup<string[]>;
  assignPublicIp: boolean;
}

function networkPlacement(
  task: Task | undefined,
  service: Service | undefined,
  target: DoctorTarget,
  instance: Instance | undefined,
  launchType: Facts['launchType'],
): Placement | undefined {
  const serviceConfig = service?.networkConfiguration?.awsvpcConfiguration;
  const attachment = task?.attachments?.find((a) => a.type === 'ElasticNetworkInterface');
  const subnetFromTask = attachment?.details?.find((d) => d.name === 'subnetId')?.value;
  if (attachment || serviceConfig || target.subnets) {
    const subnets = target.subnets ?? (subnetFromTask ? [subnetFromTask] : (serviceConfig?.subnets ?? []));
    const groups = target.securityGroups ?? serviceConfig?.securityGroups;
    return {
      subnets,
      securityGroups: groups
        ? { state: 'found', value: groups }
        : {
            state: 'failed',
            failure: {
              service: 'ecs',
              operation: 'DescribeTasks',
              code: 'NotRecorded',
              message:
                'ECS does not keep the security groups of a stopped standalone task; give them with --security-groups',
            },
          },
      assignPublicIp: target.assignPublicIp ?? serviceConfig?.assignPublicIp === 'ENABLED',
    };
  }
  if (launchType === 'EC2' && instance?.SubnetId) {
    return {
      subnets: [instance.SubnetId],
      securityGroups: {
        state: 'found',
        value: (instance.SecurityGroups ?? []).map((g) => g.GroupId ?? '').filter(Boolean),
      },
      assignPublicIp: Boolean(instance.PublicIpAddress),
    };
  }
  return undefined;
}

async function collectNetwork(
  c: Collector,
  region: string,
  placement: Placement | undefined,
): Promise<NetworkFacts | undefined> {
  if (!placement || placement.subnets.length === 0) return undefined;
  const subnets = await c.lookup<Subnet[]>('ec2', 'DescribeSubnets', async () =>
    paginate<Subnet>(c.caller, 'ec2', 'DescribeSubnets', { SubnetIds: placement.subnets }, 'Subnets'),
  );
  const vpcId = subnets.state === 'found' ? (subnets.value[0]?.VpcId ?? '') : '';
  const failedAll = <T>(): Lookup<T> =>
    subnets.state === 'failed'
      ? { state: 'failed', failure: subnets.failure }
      : { state: 'missing', detail: 'the subnets were not found' };
  if (!vpcId) {
    return {
      region,
      vpcId,
      vpc: failedAll(),
      dnsSupport: failedAll(),
      dnsHostnames: failedAll(),
      subnets,
      routeTables: failedAll(),
      securityGroups: failedAll(),
      networkAcls: failedAll(),
      endpoints: failedAll(),
      endpointSecurityGroups: failedAll(),
      prefixLists: failedAll(),
      assignPublicIp: placement.assignPublicIp,
    };
  }
  const groupIds = placement.securityGroups;
  const [vpc, dnsSupport, dnsHostnames, routeTables, securityGroups, networkAcls, endpoints, prefixLists] =
    await Promise.all([
      c.lookup<Vpc>(
        'ec2',
        'DescribeVpcs',
        async () =>
          (await c.caller.call<{ Vpcs?: Vpc[] }>('ec2', 'DescribeVpcs', { VpcIds: [vpcId] })).Vpcs?.[0],
      ),
      c.lookup<boolean>('ec2', 'DescribeVpcAttribute', async () =>
        Boolean(
          (
            await c.caller.call<{ EnableDnsSupport?: { Value?: boolean } }>('ec2', 'DescribeVpcAttribute', {
              VpcId: vpcId,
              Attribute: 'enableDnsSupport',
            })
          ).EnableDnsSupport?.Value,
        ),
      ),
      c.lookup<boolean>('ec2', 'DescribeVpcAttribute', async () =>
        Boolean(
          (
            await c.caller.call<{ EnableDnsHostnames?: { Value?: boolean } }>('ec2', 'DescribeVpcAttribute', {
              VpcId: vpcId,
              Attribute: 'enableDnsHostnames',
            })
          ).EnableDnsHostnames?.Value,
        ),
      ),
      c.lookup<RouteTable[]>('ec2', 'DescribeRouteTables', () => routeTablesFor(c, vpcId, placement.subnets)),
      groupIds.state === 'found'
        ? c.lookup<SecurityGroup[]>('ec2', 'DescribeSecurityGroups', () =>
            paginate<SecurityGroup>(
              c.caller,
              'ec2',
              'DescribeSecurityGroups',
              { GroupIds: groupIds.value },
              'SecurityGroups',
            ),
          )
        : Promise.resolve(groupIds as Lookup<SecurityGroup[]>),
      c.lookup<NetworkAcl[]>('ec2', 'DescribeNetworkAcls', () =>
        paginate<NetworkAcl>(
          c.caller,
          'ec2',
          'DescribeNetworkAcls',
          { Filters: [{ Name: 'association.subnet-id', Values: placement.subnets }] },
          'NetworkAcls',
        ),
      ),
      c.lookup<VpcEndpoint[]>('ec2', 'DescribeVpcEndpoints', () =>
        paginate<VpcEndpoint>(
          c.caller,
          'ec2',
          'DescribeVpcEndpoints',
          { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
          'VpcEndpoints',
        ),
      ),
      c.lookup<PrefixList[]>('ec2', 'DescribePrefixLists', () =>
        paginate<PrefixList>(c.caller, 'ec2', 'DescribePrefixLists', {}, 'PrefixLists'),
      ),
    ]);
  const endpointGroupIds =
    endpoints.state === 'found'
      ? [
          ...new Set(
            endpoints.value.flatMap((e) => (e.Groups ?? []).map((g) => g.GroupId ?? '')).filter(Boolean),
          ),
        ]
      : [];
  const endpointSecurityGroups: Lookup<SecurityGroup[]> =
    endpoints.state === 'failed'
      ? { state: 'failed', failure: endpoints.failure }
      : endpointGroupIds.length === 0
        ? { state: 'found', value: [] }
        : await c.lookup<SecurityGroup[]>('ec2', 'DescribeSecurityGroups', () =>
            paginate<SecurityGroup>(
              c.caller,
              'ec2',
              'DescribeSecurityGroups',
              { GroupIds: endpointGroupIds },
              'SecurityGroups',
            ),
          );
  return {
    region,
    vpcId,
    vpc,
    dnsSupport,
    dnsHostnames,
    subnets,
    routeTables,
    securityGroups,
    networkAcls,
    endpoints,
    endpointSecurityGroups,
    prefixLists,
    assignPublicIp: placement.assignPublicIp,
  };
}

/** The subnets' own route tables, and the VPC's main table for subnets without one. */
async function routeTablesFor(c: Collector, vpcId: string, subnets: string[]): Promise<RouteTable[]> {
  const [explicit, main] = await Promise.all([
    paginate<RouteTable>(
      c.caller,
      'ec2',
      'DescribeRouteTables',
      { Filters: [{ Name: 'association.subnet-id', Values: subnets }] },
      'RouteTables',
    ),
    paginate<RouteTable>(
      c.caller,
      'ec2',
      'DescribeRouteTables',
      {
        Filters: [
          { Name: 'vpc-id', Values: [vpcId] },
          { Name: 'association.main', Values: ['true'] },
        ],
      },
      'RouteTables',
    ),
  ]);
  const covered = new Set(explicit.flatMap((t) => (t.Associations ?? []).map((a) => a.SubnetId)));
  const needMain = subnets.some((s) => !covered.has(s));
  const tables = [...explicit];
  if (needMain)
    for (const table of main)
      if (!tables.some((t) => t.RouteTableId === table.RouteTableId)) tables.push(table);
  return tables;
}

function computeNeeds(images: ImageFacts[], secrets: SecretFacts[], logs: LogFacts[], region: string): Needs {
  const fromImages = endpointNeeds(images, region);
  const customerKey = secrets.some((s) => {
    const key = s.metadata.state === 'found' ? s.metadata.value.kmsKeyId : undefined;
    return key !== undefined && !key.includes('alias/aws/');
  });
  return {
    ecrApi: fromImages.ecrApi,
    ecrDkr: fromImages.ecrDkr,
    s3Layers: fromImages.s3Layers,
    logs: logs.length > 0,
    secretsmanager: secrets.some((s) => s.service === 'secretsmanager'),
    ssm: secrets.some((s) => s.service === 'ssm'),
    kms: customerKey,
    internetRegistries: fromImages.internetRegistries,
  };
}

// ---------------------------------------------------------------------------------------------------------
// CodeBuild

async function collectCodeBuild(c: Collector, projectName: string): Promise<Facts> {
  const answer = await call<{ projects?: Project[]; projectsNotFound?: string[] }>(
    c,
    'codebuild',
    'BatchGetProjects',
    {
      names: [projectName],
    },
  );
  const project = answer.projects?.[0];
  if (!project) {
    throw new PullsafeError('REGISTRY_NOT_FOUND', `CodeBuild has no project ${projectName}`, {
      hint: 'check the project name and --region',
    });
  }
  const region = arnRegion(project.arn) ?? c.region;
  const accountId = arnAccount(project.arn) ?? arnAccount(project.serviceRole);
  const environment = project.environment;
  const reference = environment?.image ?? '';
  const architecture = environment?.type?.startsWith('ARM') ? 'ARM64' : 'X86_64';
  const curated = reference.startsWith('aws/codebuild/');
  const pullThroughRules = curated ? { rules: [] } : await pullThroughRulesFor(c, region, accountId);
  const image = curated
    ? ({ container: 'build environment', reference, kind: 'other' } satisfies ImageFacts)
    : await collectImage(
        c,
        {
          name: 'build environment',
          image: reference,
          ...(environment?.registryCredential?.credential
            ? { repositoryCredentials: { credentialsParameter: environment.registryCredential.credential } }
            : {}),
        },
        undefined,
        region,
        accountId,
        pullThroughRules.rules,
      );
  const containers: ContainerDefinition[] = environment?.registryCredential?.credential
    ? [
        {
          name: 'build environment',
          repositoryCredentials: { credentialsParameter: environment.registryCredential.credential },
        },
      ]
    : [];
  const secrets = await collectSecrets(c, containers, region, accountId);
  const logs: LogFacts[] = [];
  // CloudWatch Logs are on unless disabled; CodeBuild creates its group (`/aws/codebuild/<project>` by default).
  const cloudWatch = project.logsConfig?.cloudWatchLogs;
  if (cloudWatch?.status !== 'DISABLED') {
    const options = {
      'awslogs-group': cloudWatch?.groupName ?? `/aws/codebuild/${project.name ?? projectName}`,
      'awslogs-create-group': 'true',
    };
    logs.push(
      ...(await collectLogs(
        c,
        [{ name: 'build', logConfiguration: { logDriver: 'awslogs', options } }],
        region,
      )),
    );
  }
  const requests = [
    ...(curated ? [] : pullRoleRequirements([image])),
    ...executionRequirements(secrets, logs, accountId),
  ];
  const pullRole = project.serviceRole
    ? await collectRole(c, project.serviceRole, 'codebuild-service', requests)
    : undefined;
  const vpc = project.vpcConfig;
  const network =
    vpc?.vpcId && vpc.subnets?.length
      ? await collectNetwork(c, region, {
          subnets: vpc.subnets,
          securityGroups: { state: 'found', value: vpc.securityGroupIds ?? [] },
          assignPublicIp: false,
        })
      : undefined;
  const needs = computeNeeds(curated ? [] : [image], secrets, logs, region);
  return {
    region,
    ...(accountId ? { accountId } : {}),
    subject: { kind: 'codebuild-project', name: projectName },
    stopReasons: [],
    project,
    launchType: 'CODEBUILD',
    architecture,
    os: environment?.type?.startsWith('WINDOWS') ? 'windows' : 'linux',
    images: [image],
    ...(pullRole ? { pullRole } : {}),
    secrets,
    logs,
    ...(network ? { network } : {}),
    needs,
    failures: c.failures,
  };
}
