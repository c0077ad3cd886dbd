/** ECS: a task, a service (its recent stopped tasks) or a task definition, into facts. */
import type { Task, TaskDefinition, Service } from '@aws-sdk/client-ecs';
import type { Instance } from '@aws-sdk/client-ec2';
import { PullsafeError } from '../../errors/index.ts';
import { executionRequirements, pullRoleRequirements } from '../requirements.ts';
import type { Facts, Lookup, RoleFacts, Subject } from '../types.ts';
import type { Collector } from './collector.ts';
import { arnAccount, arnRegion } from '../../shared/arn.ts';
import { call, optional, type DoctorTarget } from './collector.ts';
import { collectImage, pullThroughRulesFor } from './images.ts';
import { collectLogs, collectSecrets } from './secrets.ts';
import { collectRole, instanceOf, instanceRole, type RoleRequest } from './roles.ts';
import { collectNetwork, computeNeeds, networkPlacement } from './network.ts';

/** How many recent stopped tasks of a service are read for their stop reasons. */
const serviceTaskSample = 5;

export async function collectEcs(c: Collector, target: DoctorTarget): Promise<Facts> {
  const subject = subjectOf(target);
  const { task, service, tasks } = await readWorkload(c, target);
  const taskDefinition = await describeTaskDefinition(
    c,
    target.taskDefinition ?? task?.taskDefinitionArn ?? service?.taskDefinition,
  );
  const accountId =
    arnAccount(task?.taskArn) ??
    arnAccount(taskDefinition.taskDefinitionArn) ??
    arnAccount(service?.serviceArn);
  const region = arnRegion(taskDefinition.taskDefinitionArn) ?? c.region;
  const launchType = launchTypeOf(task, service, taskDefinition);
  const platformVersion = task?.platformVersion ?? service?.platformVersion;

  const pullThroughRules = await pullThroughRulesFor(c, region, accountId);
  const containers = taskDefinition.containerDefinitions ?? [];
  const images = await Promise.all(
    containers.map((container) => collectImage(c, container, task, region, accountId, pullThroughRules)),
  );
  const secrets = await collectSecrets(c, containers, region, accountId);
  const logs = await collectLogs(c, containers, region);
  const roles = await collectRoles(c, target, task, taskDefinition, launchType, {
    pull: pullRoleRequirements(images),
    execution: executionRequirements(secrets, logs, accountId),
  });
  const needs = computeNeeds(images, secrets, logs, region);
  const network = await collectNetwork(
    c,
    region,
    networkPlacement(task, service, target, roles.instance, launchType),
  );

  return {
    region,
    ...(accountId ? { accountId } : {}),
    subject,
    stopReasons: stopReasonsOf(tasks),
    ...(task ? { task } : {}),
    ...(service ? { service } : {}),
    taskDefinition,
    launchType,
    ...(platformVersion ? { platformVersion } : {}),
    architecture: architectureOf(task, taskDefinition),
    os: taskDefinition.runtimePlatform?.operatingSystemFamily?.startsWith('WINDOWS') ? 'windows' : 'linux',
    images,
    ...(roles.pull ? { pullRole: roles.pull } : {}),
    ...(roles.execution ? { executionRole: roles.execution } : {}),
    secrets,
    logs,
    ...(network ? { network } : {}),
    needs,
    failures: c.failures,
  };
}

function subjectOf(target: DoctorTarget): Subject {
  if (!target.task && !target.service && !target.taskDefinition) {
    throw new PullsafeError(
      'USAGE',
      'doctor needs --task, --service, --task-definition or --codebuild-project',
    );
  }
  const cluster = target.cluster ? { cluster: target.cluster } : {};
  if (target.task) return { kind: 'task', name: target.task, ...cluster };
  if (target.service) return { kind: 'service', name: target.service, ...cluster };
  return { kind: 'task-definition', name: target.taskDefinition ?? '' };
}

interface Workload {
  /** The task given, or the service's most recent stopped task. */
  task?: Task;
  service?: Service;
  /** Every task whose stop reasons are read. */
  tasks: Task[];
}

/** The task and service named (or the service of the task named), and the tasks whose stop reasons count. */
async function readWorkload(c: Collector, target: DoctorTarget): Promise<Workload> {
  const cluster = target.cluster ? { cluster: target.cluster } : {};
  const task = target.task ? await describeSubjectTask(c, target.task, target.cluster) : undefined;
  const tasks = task ? [task] : [];
  const serviceName = target.service ?? groupService(task?.group);
  if (!serviceName) return { ...(task ? { task } : {}), tasks };
  const input = { ...cluster, services: [serviceName] };
  // The service asked for is the subject: without it there is nothing to check. The service of a task
  // only adds its network configuration, so failing to read it is a gap, not the end of the run.
  const answer = target.service
    ? await call(c, 'ecs', 'DescribeServices', input)
    : await optional(c, 'ecs', 'DescribeServices', input);
  const service = answer?.services?.[0];
  if (target.service && !service) {
    const reason = answer?.failures?.[0]?.reason;
    throw new PullsafeError(
      'AWS_NOT_FOUND',
      `ECS has no service ${target.service}${target.cluster ? ` in cluster ${target.cluster}` : ''}${reason ? ` (${reason})` : ''}`,
      { hint: 'check --cluster and --region' },
    );
  }
  if (!target.service || task) return { ...(task ? { task } : {}), ...(service ? { service } : {}), tasks };
  const recent = await recentStoppedTasks(c, serviceName, target.cluster);
  return {
    ...(recent[0] ? { task: recent[0] } : {}),
    ...(service ? { service } : {}),
    tasks: recent,
  };
}

async function describeSubjectTask(c: Collector, taskId: string, cluster: string | undefined): Promise<Task> {
  const answer = await call(c, 'ecs', 'DescribeTasks', {
    ...(cluster ? { cluster } : {}),
    tasks: [taskId],
  });
  const task = answer.tasks?.[0];
  if (!task) {
    const reason = answer.failures?.[0]?.reason ?? 'MISSING';
    throw new PullsafeError(
      'AWS_NOT_FOUND',
      `ECS has no task ${taskId}${cluster ? ` in cluster ${cluster}` : ''} (${reason})`,
      {
        hint: 'ECS forgets stopped tasks after about an hour: check the cluster and region, or run doctor on the task definition (--task-definition) or the service (--service)',
      },
    );
  }
  return task;
}

/** The service's most recent stopped tasks that say why they stopped, newest first. */
async function recentStoppedTasks(
  c: Collector,
  serviceName: string,
  cluster: string | undefined,
): Promise<Task[]> {
  const stopped = await optional(c, 'ecs', 'ListTasks', {
    ...(cluster ? { cluster } : {}),
    serviceName,
    desiredStatus: 'STOPPED',
  });
  const arns = (stopped?.taskArns ?? []).slice(0, 100);
  if (arns.length === 0) return [];
  const described = await optional(c, 'ecs', 'DescribeTasks', {
    ...(cluster ? { cluster } : {}),
    tasks: arns,
  });
  return (described?.tasks ?? [])
    .filter((t) => t.stoppedReason || t.containers?.some((container) => container.reason))
    .sort((a, b) => time(b.stoppedAt ?? b.createdAt) - time(a.stoppedAt ?? a.createdAt))
    .slice(0, serviceTaskSample);
}

function stopReasonsOf(tasks: readonly Task[]): Facts['stopReasons'] {
  const stopReasons: Facts['stopReasons'] = [];
  for (const t of tasks) {
    const id = t.taskArn ?? 'task';
    const texts = new Set<string>();
    if (t.stoppedReason) texts.add(t.stoppedReason);
    for (const container of t.containers ?? []) if (container.reason) texts.add(container.reason);
    for (const text of texts) stopReasons.push({ task: id, text });
  }
  return stopReasons;
}

async function describeTaskDefinition(
  c: Collector,
  definitionId: string | undefined,
): Promise<TaskDefinition> {
  if (!definitionId) throw new PullsafeError('USAGE', 'no task definition to check');
  const answer = await call(
    c,
    'ecs',
    'DescribeTaskDefinition',
    { taskDefinition: definitionId },
    undefined,
    // ECS says "not found" for a task definition only in a ClientException's words.
    (failure) =>
      failure.awsName === 'ClientException' && /unable to describe task definition/i.test(failure.detail)
        ? new PullsafeError(
            'AWS_NOT_FOUND',
            `ECS has no task definition ${definitionId} (${failure.detail.replace(/\.$/, '')})`,
            {
              hint: 'check family:revision and --region (aws ecs list-task-definitions --family-prefix FAMILY)',
            },
          )
        : undefined,
  );
  const taskDefinition = answer.taskDefinition;
  if (!taskDefinition) throw new PullsafeError('AWS_NOT_FOUND', `ECS has no task definition ${definitionId}`);
  return taskDefinition;
}

interface Roles {
  /** The role that pulls the images: the execution role on Fargate, the instance role on EC2. */
  pull?: Lookup<RoleFacts>;
  execution?: Lookup<RoleFacts>;
  instance?: Instance;
}

/**
 * The execution role, judged for what it reads (and for the pulls on Fargate), and on EC2 the instance
 * role, which pulls the images there.
 */
async function collectRoles(
  c: Collector,
  target: DoctorTarget,
  task: Task | undefined,
  taskDefinition: TaskDefinition,
  launchType: Facts['launchType'],
  needs: { pull: RoleRequest[]; execution: RoleRequest[] },
): Promise<Roles> {
  const executionRoleArn = taskDefinition.executionRoleArn;
  const execution = executionRoleArn
    ? await collectRole(
        c,
        executionRoleArn,
        'execution',
        launchType === 'EC2' ? needs.execution : [...needs.execution, ...needs.pull],
      )
    : undefined;
  if (launchType !== 'EC2') return { ...(execution ? { pull: execution, execution } : {}) };
  const found = await instanceOf(c, task, target.cluster);
  const pull: Lookup<RoleFacts> | undefined = found.profileArn
    ? await instanceRole(c, found.profileArn, needs.pull)
    : found.failure
      ? { state: 'failed', failure: found.failure }
      : execution;
  return {
    ...(pull ? { pull } : {}),
    ...(execution ? { execution } : {}),
    ...(found.instance ? { instance: found.instance } : {}),
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
