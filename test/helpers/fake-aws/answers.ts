/**
 * How the fake account answers each operation doctor may call: the filters, pagination and error names
 * AWS uses, one answer per `service:Operation`.
 */
import type { Task } from '@aws-sdk/client-ecs';
import type { AwsService } from '../../../src/doctor/aws-operations.ts';
import {
  CLUSTER,
  awsError,
  logStreamKey,
  type FakeAccount,
  type FakeImage,
  type FakeRepository,
} from './account.ts';

interface Request {
  account: FakeAccount;
  operation: string;
  input: Record<string, unknown>;
  region: string;
}

type Answer = (request: Request) => Record<string, unknown>;

/** Answers an operation the way AWS would for this account. */
export function answer(
  account: FakeAccount,
  service: AwsService,
  operation: string,
  input: Record<string, unknown>,
  region: string,
): Record<string, unknown> {
  const key = `${service}:${operation}`;
  if (account.denied.has(key)) {
    // EC2 words its denial as a sentence, with a full stop; the other services do not.
    throw awsError(
      service === 'ec2' ? 'UnauthorizedOperation' : 'AccessDeniedException',
      service === 'ec2'
        ? 'You are not authorized to perform this operation.'
        : `User: arn:aws:iam::${account.accountId}:user/diagnose is not authorized to perform: ${service}:${operation}`,
      403,
    );
  }
  const throttles = account.throttle.get(key) ?? 0;
  if (throttles > 0) {
    account.throttle.set(key, throttles - 1);
    throw awsError('ThrottlingException', 'Rate exceeded', 400);
  }
  const respond = answers[key];
  if (respond === undefined) throw new Error(`fake AWS does not implement ${key}`);
  return respond({ account, operation, input, region });
}

function filterValues(input: Record<string, unknown>, name: string): string[] | undefined {
  const filters = (input.Filters as { Name?: string; Values?: string[] }[] | undefined) ?? [];
  return filters.find((f) => f.Name === name)?.Values;
}

/** Answers one page of `items` with a token, so collectors must follow pagination. */
function page<T>(
  items: T[],
  input: Record<string, unknown>,
  size: number,
  key: string,
  tokens: { input: string; output: string; truncated?: boolean },
): Record<string, unknown> {
  const start = Number(input[tokens.input] ?? 0);
  const slice = items.slice(start, start + size);
  const next = start + size < items.length ? String(start + size) : undefined;
  return {
    [key]: slice,
    ...(next ? { [tokens.output]: next } : {}),
    ...(tokens.truncated ? { IsTruncated: next !== undefined } : {}),
  };
}

function idMatches(value: string, arn: string | undefined): boolean {
  return arn !== undefined && (arn === value || arn.endsWith(`/${value}`));
}

function ecrRepository(account: FakeAccount, input: Record<string, unknown>, region: string): FakeRepository {
  const registryId = (input.registryId as string | undefined) ?? account.accountId;
  const name =
    (input.repositoryName as string | undefined) ?? (input.repositoryNames as string[] | undefined)?.[0];
  const repository = account.repositories.find(
    (r) => r.registryId === registryId && r.region === region && r.name === name,
  );
  if (!repository) {
    throw awsError(
      'RepositoryNotFoundException',
      `The repository with name '${name}' does not exist in the registry with id '${registryId}'`,
    );
  }
  return repository;
}

function findImage(
  repository: FakeRepository,
  imageId: { imageTag?: string; imageDigest?: string } | undefined,
): FakeImage | undefined {
  return repository.images.find((image) =>
    imageId?.imageDigest
      ? image.digest === imageId.imageDigest
      : image.tags.includes(imageId?.imageTag ?? 'latest'),
  );
}

/** The composite config-platform answer, and the presigned URL of a config blob, for the same image. */
const ecrLayer: Answer = ({ account, operation, input, region }) => {
  const repository = ecrRepository(account, input, region);
  const digest = String(input.configDigest ?? input.layerDigest);
  const image = repository.images.find((candidate) => candidate.config?.digest === digest);
  if (!image?.config) throw awsError('LayersNotFoundException', `The layer ${digest} does not exist`);
  if (operation === 'GetDownloadUrlForLayer') {
    return {
      layerDigest: digest,
      downloadUrl: `${account.blobBaseUrl ?? 'http://127.0.0.1:9'}/${digest}`,
    };
  }
  const { os, architecture, variant } = image.config;
  return { os, architecture, ...(variant ? { variant } : {}) };
};

/** Secrets Manager finds a secret by ARN, name, or partial ARN (without the random suffix). */
const secret: Answer = ({ account, operation, input, region }) => {
  const id = String(input.SecretId);
  // A partial ARN (without the random suffix) names the secret too.
  const secret = account.secrets.find(
    (s) => s.region === region && (s.arn === id || s.name === id || s.arn.startsWith(`${id}-`)),
  );
  if (!secret)
    throw awsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
  if (operation === 'GetResourcePolicy') {
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(secret.policy ? { ResourcePolicy: JSON.stringify(secret.policy) } : {}),
    };
  }
  return operation === 'DescribeSecret'
    ? { ARN: secret.arn, Name: secret.name, ...(secret.kmsKeyId ? { KmsKeyId: secret.kmsKeyId } : {}) }
    : { ARN: secret.arn, Name: secret.name, SecretString: secret.value, VersionId: 'v1' };
};

const answers: Record<string, Answer> = {
  'ecs:DescribeTasks': ({ account, input }) => {
    const wanted = (input.tasks as string[]) ?? [];
    const tasks = wanted
      .map((id) => account.tasks.find((t) => idMatches(id, t.taskArn)))
      .filter((t): t is Task => Boolean(t));
    const failures = wanted
      .filter((id) => !account.tasks.some((t) => idMatches(id, t.taskArn)))
      .map((arn) => ({ arn, reason: 'MISSING' }));
    return { tasks, failures };
  },
  'ecs:DescribeServices': ({ account, input, region }) => {
    const wanted = (input.services as string[]) ?? [];
    const known = (w: string) => account.services.some((s) => w === s.serviceName || w === s.serviceArn);
    return {
      services: account.services.filter((s) => wanted.some((w) => w === s.serviceName || w === s.serviceArn)),
      // ECS answers an unknown service in `failures`, not with an error.
      failures: wanted
        .filter((w) => !known(w))
        .map((w) => ({
          arn: w.startsWith('arn:')
            ? w
            : `arn:aws:ecs:${region}:${account.accountId}:service/${CLUSTER}/${w}`,
          reason: 'MISSING',
        })),
    };
  },
  'ecs:ListTasks': ({ account, input }) => {
    return {
      taskArns: account.tasks
        .filter(
          (t) =>
            t.group === `service:${String(input.serviceName)}` &&
            (input.desiredStatus !== 'STOPPED' || t.desiredStatus === 'STOPPED'),
        )
        .map((t) => t.taskArn),
    };
  },
  'ecs:DescribeTaskDefinition': ({ account, input }) => {
    const wanted = String(input.taskDefinition);
    const found = account.taskDefinitions.find(
      (d) => d.taskDefinitionArn === wanted || `${d.family}:${d.revision}` === wanted || d.family === wanted,
    );
    if (!found) throw awsError('ClientException', 'Unable to describe task definition.');
    return { taskDefinition: found, tags: [] };
  },
  'ecs:DescribeContainerInstances': ({ account, input }) => {
    return {
      containerInstances: account.containerInstances
        .filter((c) => (input.containerInstances as string[]).includes(c.arn))
        .map((c) => ({ containerInstanceArn: c.arn, ec2InstanceId: c.ec2InstanceId })),
    };
  },
  'ec2:DescribeInstances': ({ account, input }) => {
    return {
      Reservations: [
        {
          Instances: account.instances.filter((i) =>
            (input.InstanceIds as string[]).includes(i.InstanceId ?? ''),
          ),
        },
      ],
    };
  },
  'ec2:DescribeSubnets': ({ account, input }) => {
    const ids = input.SubnetIds as string[];
    const missing = ids.find((id) => !account.subnets.some((s) => s.SubnetId === id));
    if (missing) throw awsError('InvalidSubnetID.NotFound', `The subnet ID '${missing}' does not exist`);
    return { Subnets: account.subnets.filter((s) => ids.includes(s.SubnetId ?? '')) };
  },
  'ec2:DescribeVpcs': ({ account, input }) => {
    return {
      Vpcs: account.vpcs
        .filter((v) => (input.VpcIds as string[]).includes(v.VpcId ?? ''))
        .map(({ dnsSupport: _s, dnsHostnames: _h, ...vpc }) => vpc),
    };
  },
  'ec2:DescribeVpcAttribute': ({ account, input }) => {
    const vpc = account.vpcs.find((v) => v.VpcId === input.VpcId);
    if (!vpc) throw awsError('InvalidVpcID.NotFound', `The vpc ID '${String(input.VpcId)}' does not exist`);
    return input.Attribute === 'enableDnsSupport'
      ? { VpcId: vpc.VpcId, EnableDnsSupport: { Value: vpc.dnsSupport } }
      : { VpcId: vpc.VpcId, EnableDnsHostnames: { Value: vpc.dnsHostnames } };
  },
  'ec2:DescribeRouteTables': ({ account, input }) => {
    const subnets = filterValues(input, 'association.subnet-id');
    const vpc = filterValues(input, 'vpc-id');
    const main = filterValues(input, 'association.main');
    return {
      RouteTables: account.routeTables.filter((t) => {
        if (subnets && !(t.Associations ?? []).some((a) => subnets.includes(a.SubnetId ?? ''))) return false;
        if (vpc && !vpc.includes(t.VpcId ?? '')) return false;
        if (main && !(t.Associations ?? []).some((a) => a.Main === true)) return false;
        return true;
      }),
    };
  },
  'ec2:DescribeSecurityGroups': ({ account, input }) => {
    const ids = input.GroupIds as string[];
    const missing = ids.find((id) => !account.securityGroups.some((g) => g.GroupId === id));
    if (missing) throw awsError('InvalidGroup.NotFound', `The security group '${missing}' does not exist`);
    return page(
      account.securityGroups.filter((g) => ids.includes(g.GroupId ?? '')),
      input,
      1,
      'SecurityGroups',
      { input: 'NextToken', output: 'NextToken' },
    );
  },
  'ec2:DescribeNetworkAcls': ({ account, input }) => {
    const subnets = filterValues(input, 'association.subnet-id') ?? [];
    return {
      NetworkAcls: account.networkAcls.filter((a) =>
        (a.Associations ?? []).some((x) => subnets.includes(x.SubnetId ?? '')),
      ),
    };
  },
  'ec2:DescribeVpcEndpoints': ({ account, input }) => {
    const vpc = filterValues(input, 'vpc-id') ?? [];
    return page(
      account.vpcEndpoints.filter((e) => vpc.includes(e.VpcId ?? '')),
      input,
      2,
      'VpcEndpoints',
      { input: 'NextToken', output: 'NextToken' },
    );
  },
  'ec2:DescribePrefixLists': ({ account }) => {
    return { PrefixLists: account.prefixLists };
  },
  'iam:GetRole': ({ account, input }) => {
    const role = Object.entries(account.roles).find(([name]) => name === input.RoleName);
    if (!role)
      throw awsError('NoSuchEntity', `The role with name ${String(input.RoleName)} cannot be found.`, 404);
    return {
      Role: {
        RoleName: role[0],
        Arn: role[1].arn,
        ...(role[1].boundary
          ? {
              PermissionsBoundary: {
                PermissionsBoundaryType: 'Policy',
                PermissionsBoundaryArn: role[1].boundary,
              },
            }
          : {}),
      },
    };
  },
  'iam:ListRolePolicies': ({ account, input }) => {
    return page(Object.keys(account.roles[String(input.RoleName)]?.inline ?? {}), input, 1, 'PolicyNames', {
      input: 'Marker',
      output: 'Marker',
      truncated: true,
    });
  },
  'iam:GetRolePolicy': ({ account, input }) => {
    const document = account.roles[String(input.RoleName)]?.inline[String(input.PolicyName)];
    if (!document) throw awsError('NoSuchEntity', 'The role policy cannot be found.', 404);
    return {
      RoleName: input.RoleName,
      PolicyName: input.PolicyName,
      PolicyDocument: encodeURIComponent(JSON.stringify(document)),
    };
  },
  'iam:ListAttachedRolePolicies': ({ account, input }) => {
    return page(
      (account.roles[String(input.RoleName)]?.attached ?? []).map((arn) => ({
        PolicyArn: arn,
        PolicyName: arn.split('/').pop(),
      })),
      input,
      1,
      'AttachedPolicies',
      { input: 'Marker', output: 'Marker', truncated: true },
    );
  },
  'iam:GetPolicy': ({ account, input }) => {
    if (!account.managedPolicies[String(input.PolicyArn)])
      throw awsError('NoSuchEntity', 'Policy not found', 404);
    return { Policy: { Arn: input.PolicyArn, DefaultVersionId: 'v3' } };
  },
  'iam:GetPolicyVersion': ({ account, input }) => {
    return {
      PolicyVersion: {
        VersionId: input.VersionId,
        IsDefaultVersion: true,
        Document: encodeURIComponent(JSON.stringify(account.managedPolicies[String(input.PolicyArn)])),
      },
    };
  },
  'iam:GetInstanceProfile': ({ account, input }) => {
    const roleName = account.instanceProfiles[String(input.InstanceProfileName)];
    if (!roleName) throw awsError('NoSuchEntity', 'Instance profile not found', 404);
    return {
      InstanceProfile: {
        InstanceProfileName: input.InstanceProfileName,
        Roles: [{ RoleName: roleName, Arn: account.roles[roleName]?.arn }],
      },
    };
  },
  'iam:SimulatePrincipalPolicy': ({ account, input }) => {
    const simulator = account.simulator;
    if (!simulator)
      throw awsError('AccessDenied', 'not authorized to perform: iam:SimulatePrincipalPolicy', 403);
    const resource = (input.ResourceArns as string[])[0] ?? '*';
    return {
      EvaluationResults: (input.ActionNames as string[]).map((action) => {
        const verdict = simulator(String(input.PolicySourceArn), action, resource);
        return typeof verdict === 'string'
          ? {
              EvalActionName: action,
              EvalResourceName: resource,
              EvalDecision: verdict,
              MatchedStatements: [],
            }
          : {
              EvalActionName: action,
              EvalResourceName: resource,
              EvalDecision: verdict.decision,
              MatchedStatements: [],
              MissingContextValues: verdict.missingContext,
            };
      }),
      IsTruncated: false,
    };
  },
  'ecr:DescribeRepositories': ({ account, input, region }) => {
    const repository = ecrRepository(account, input, region);
    return {
      repositories: [
        {
          repositoryName: repository.name,
          registryId: repository.registryId,
          repositoryArn: `arn:aws:ecr:${region}:${repository.registryId}:repository/${repository.name}`,
          repositoryUri: `${repository.registryId}.dkr.ecr.${region}.amazonaws.com/${repository.name}`,
        },
      ],
    };
  },
  'ecr:DescribeImages': ({ account, input, region }) => {
    const repository = ecrRepository(account, input, region);
    const imageId = (input.imageIds as { imageTag?: string; imageDigest?: string }[] | undefined)?.[0];
    const image = findImage(repository, imageId);
    if (!image) {
      throw awsError(
        'ImageNotFoundException',
        `The image with imageId {imageDigest:'${imageId?.imageDigest ?? 'null'}', imageTag:'${imageId?.imageTag ?? 'null'}'} does not exist within the repository with name '${repository.name}' in the registry with id '${repository.registryId}'`,
      );
    }
    return {
      imageDetails: [
        {
          registryId: repository.registryId,
          repositoryName: repository.name,
          imageDigest: image.digest,
          imageTags: image.tags,
          imageManifestMediaType: image.mediaType,
          imagePushedAt: image.pushedAt,
        },
      ],
    };
  },
  'ecr:BatchGetImage': ({ account, input, region }) => {
    const repository = ecrRepository(account, input, region);
    const imageId = (input.imageIds as { imageTag?: string; imageDigest?: string }[] | undefined)?.[0];
    const image = findImage(repository, imageId);
    if (image?.batchGetFailure) return { images: [], failures: [{ imageId, ...image.batchGetFailure }] };
    return image
      ? {
          images: [
            {
              registryId: repository.registryId,
              repositoryName: repository.name,
              imageId: { imageDigest: image.digest },
              imageManifest: image.manifest,
              imageManifestMediaType: image.mediaType,
            },
          ],
          failures: [],
        }
      : {
          images: [],
          failures: [{ imageId, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' }],
        };
  },
  'ecr:GetRepositoryPolicy': ({ account, input, region }) => {
    const repository = ecrRepository(account, input, region);
    if (!repository.policy)
      throw awsError('RepositoryPolicyNotFoundException', 'Repository policy does not exist');
    return {
      registryId: repository.registryId,
      repositoryName: repository.name,
      policyText: JSON.stringify(repository.policy),
    };
  },
  'ecr:GetImageConfigPlatform': ecrLayer,
  'ecr:GetDownloadUrlForLayer': ecrLayer,
  'ecr:DescribePullThroughCacheRules': ({ account }) => {
    return { pullThroughCacheRules: account.pullThroughRules };
  },
  'secretsmanager:DescribeSecret': secret,
  'secretsmanager:GetSecretValue': secret,
  'secretsmanager:GetResourcePolicy': secret,
  'ssm:DescribeParameters': ({ account, input, region }) => {
    // SSM filters each page after reading it: with a filter, the first page often comes back empty
    // with a NextToken, and the match is on a later page.
    if (input.NextToken === undefined) return { Parameters: [], NextToken: 'page-2' };
    const names = (input.ParameterFilters as { Values?: string[] }[])[0]?.Values ?? [];
    return {
      Parameters: account.parameters
        .filter((p) => p.region === region && names.includes(p.name))
        .map((p) => ({ Name: p.name, ARN: p.arn, Type: 'SecureString' })),
    };
  },
  'logs:DescribeLogGroups': ({ account, input, region }) => {
    const prefix = String(input.logGroupNamePrefix ?? '');
    const groups = account.logGroups
      .filter((g) => g.region === region && g.name.startsWith(prefix))
      .map((g) => ({
        logGroupName: g.name,
        arn: `arn:aws:logs:${region}:${account.accountId}:log-group:${g.name}:*`,
      }));
    return page(groups, input, 1, 'logGroups', { input: 'nextToken', output: 'nextToken' });
  },
  'codebuild:BatchGetProjects': ({ account, input }) => {
    const names = input.names as string[];
    return {
      projects: account.projects.filter((p) => names.includes(p.name ?? '')),
      projectsNotFound: names.filter((n) => !account.projects.some((p) => p.name === n)),
    };
  },
  'codebuild:ListBuildsForProject': ({ account, input }) => {
    const name = String(input.projectName);
    if (!account.projects.some((p) => p.name === name)) {
      throw awsError('ResourceNotFoundException', 'The provided project name does not exist');
    }
    const ids = account.builds
      .filter((b) => b.projectName === name)
      .sort((a, b) => (b.buildNumber ?? 0) - (a.buildNumber ?? 0))
      .map((b) => b.id ?? '');
    if (input.sortOrder === 'ASCENDING') ids.reverse();
    return page(ids, input, 100, 'ids', { input: 'nextToken', output: 'nextToken' });
  },
  'codebuild:BatchGetBuilds': ({ account, input }) => {
    const ids = input.ids as string[];
    if (ids.length > 100)
      throw awsError('InvalidInputException', 'Member must have length less than or equal to 100');
    return {
      builds: ids.flatMap((id) => account.builds.find((b) => b.id === id || b.arn === id) ?? []),
      buildsNotFound: ids.filter((id) => !account.builds.some((b) => b.id === id || b.arn === id)),
    };
  },
  'logs:GetLogEvents': ({ account, input }) => {
    const events = account.logEvents[logStreamKey(String(input.logGroupName), String(input.logStreamName))];
    if (!events) throw awsError('ResourceNotFoundException', 'The specified log stream does not exist.');
    const from = typeof input.startTime === 'number' ? input.startTime : -Infinity;
    const to = typeof input.endTime === 'number' ? input.endTime : Infinity;
    const window = events
      .filter((e) => e.timestamp >= from && e.timestamp < to)
      .map((e) => ({ ...e, ingestionTime: e.timestamp + 200 }));
    const limit = typeof input.limit === 'number' ? input.limit : 10_000;
    const token = input.nextToken as string | undefined;
    const fromHead = token === undefined ? input.startFromHead === true : token.startsWith('f/');
    // Tokens hold the index the next page starts (forward) or ends (backward) at; the last page of
    // either direction gives back the token it was asked with.
    if (fromHead) {
      const start = token === undefined ? 0 : Number(token.slice(2));
      const end = Math.min(window.length, start + limit);
      return {
        events: window.slice(start, end),
        nextForwardToken: `f/${end}`,
        nextBackwardToken: `b/${start}`,
      };
    }
    const end = token === undefined ? window.length : Number(token.slice(2));
    const start = Math.max(0, end - limit);
    return {
      events: window.slice(start, end),
      nextForwardToken: `f/${end}`,
      nextBackwardToken: `b/${start}`,
    };
  },
  'sts:GetCallerIdentity': ({ account }) => {
    return { Account: account.accountId, Arn: `arn:aws:iam::${account.accountId}:user/diagnose` };
  },
};
