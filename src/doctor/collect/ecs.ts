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
import { collectRole, instanceOf, instanceRole } from './roles.ts';
import { collectNetwork, computeNeeds, networkPlacement } from './network.ts';

/** How many recent stopped tasks of a service are read for their stop reasons. */
const serviceTaskSample = 5;

export async function collectEcs(c: Collector, target: DoctorTarget): Promise<Facts> {
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
    const answer = await call(c, 'ecs', 'DescribeTasks', {
      ...(target.cluster ? { cluster: target.cluster } : {}),
      tasks: [target.task],
    });
    task = answer.tasks?.[0];
    if (!task) {
      const reason = answer.failures?.[0]?.reason ?? 'MISSING';
      throw new PullsafeError(
        'AWS_NOT_FOUND',
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
    const input = { ...(target.cluster ? { cluster: target.cluster } : {}), services: [serviceName] };
    // The service asked for is the subject: without it there is nothing to check. The service of a task
    // only adds its network configuration, so failing to read it is a gap, not the end of the run.
    const answer = target.service
      ? await call(c, 'ecs', 'DescribeServices', input)
      : await optional(c, 'ecs', 'DescribeServices', input);
    service = answer?.services?.[0];
    if (target.service && !service) {
      const reason = answer?.failures?.[0]?.reason;
      throw new PullsafeError(
        'AWS_NOT_FOUND',
        `ECS has no service ${target.service}${target.cluster ? ` in cluster ${target.cluster}` : ''}${reason ? ` (${reason})` : ''}`,
        { hint: 'check --cluster and --region' },
      );
    }
    if (target.service && !task) {
      const stopped = await optional(c, 'ecs', 'ListTasks', {
        ...(target.cluster ? { cluster: target.cluster } : {}),
        serviceName,
        desiredStatus: 'STOPPED',
      });
      const arns = (stopped?.taskArns ?? []).slice(0, 100);
      if (arns.length > 0) {
        const described = await optional(c, 'ecs', 'DescribeTasks', {
          ...(target.cluster ? { cluster: target.cluster } : {}),
          tasks: arns,
        });
        const recent = (described?.tasks ?? [])
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
  const definitionAnswer = await call(
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
  const taskDefinition = definitionAnswer.taskDefinition;
  if (!taskDefinition) throw new PullsafeError('AWS_NOT_FOUND', `ECS has no task definition ${definitionId}`);

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
    containers.map((container) => collectImage(c, container, task, region, accountId, pullThroughRules)),
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
