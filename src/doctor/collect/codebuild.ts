/** CodeBuild: a project's environment image, credentials, service role, VPC and logs, into facts. */
import type { ContainerDefinition } from '@aws-sdk/client-ecs';
import type { Project } from '@aws-sdk/client-codebuild';
import { PullsafeError } from '../../errors/index.ts';
import { executionRequirements, pullRoleRequirements } from '../requirements.ts';
import type { PullThroughCacheRule } from '@aws-sdk/client-ecr';
import type { Facts, ImageFacts, LogFacts, Lookup } from '../types.ts';

import type { Collector } from './collector.ts';
import { arnAccount, arnRegion, call } from './collector.ts';
import { collectImage, pullThroughRulesFor } from './images.ts';
import { collectLogs, collectSecrets } from './secrets.ts';
import { collectRole } from './roles.ts';
import { collectNetwork, computeNeeds } from './network.ts';

export async function collectCodeBuild(c: Collector, projectName: string): Promise<Facts> {
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
  const pullThroughRules: Lookup<PullThroughCacheRule[]> = curated
    ? { state: 'found', value: [] }
    : await pullThroughRulesFor(c, region, accountId);
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
        pullThroughRules,
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
