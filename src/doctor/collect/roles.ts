/** IAM: a role's inline, managed and boundary policies, the simulator's answers, EC2 instance roles. */
import type { Task } from '@aws-sdk/client-ecs';
import type { Instance } from '@aws-sdk/client-ec2';
import { arnResourceName } from '../../shared/arn.ts';
import { AwsCallError, paginate } from '../aws.ts';
import { parsePolicyDocument } from '../iam-eval.ts';
import { type Requirement } from '../requirements.ts';
import type {
  CallFailure,
  Lookup,
  NamedPolicy,
  PolicyDocument,
  RoleFacts,
  SimulatedDecision,
} from '../types.ts';

import { Collector } from './collector.ts';

export type RoleRequest = Pick<Requirement, 'action' | 'resource'>;

export async function collectRole(
  c: Collector,
  roleArn: string,
  purpose: RoleFacts['purpose'],
  requests: RoleRequest[],
): Promise<Lookup<RoleFacts>> {
  const name = arnResourceName(roleArn);
  const role = await c.lookup<{ PermissionsBoundary?: { PermissionsBoundaryArn?: string } }>(
    'iam',
    'GetRole',
    async () => (await c.caller.call('iam', 'GetRole', { RoleName: name })).Role,
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
  const marker = { input: 'Marker', output: 'Marker' } as const;
  const [inlineNames, attached] = await Promise.all([
    paginate(c.caller, 'iam', 'ListRolePolicies', { RoleName: roleName }, 'PolicyNames', marker),
    paginate(c.caller, 'iam', 'ListAttachedRolePolicies', { RoleName: roleName }, 'AttachedPolicies', marker),
  ]);
  const inline = await Promise.all(
    inlineNames.map(async (policyName): Promise<NamedPolicy> => {
      const answer = await c.caller.call('iam', 'GetRolePolicy', {
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
  const policy = await c.caller.call('iam', 'GetPolicy', {
    PolicyArn: policyArn,
  });
  const versionId = policy.Policy?.DefaultVersionId ?? 'v1';
  const version = await c.caller.call('iam', 'GetPolicyVersion', {
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
      const results = await paginate(
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
          ...(result.MissingContextValues?.length ? { missingContext: result.MissingContextValues } : {}),
        });
      }
    }
    return decisions;
  });
}

/**
 * The EC2 instance a task ran on, and its instance profile: on EC2 the instance role pulls the images.
 * A container instance ECS no longer knows is a failure to check that role, never a reason to judge
 * another one.
 */
export async function instanceOf(
  c: Collector,
  task: Task | undefined,
  cluster: string | undefined,
): Promise<{ instance?: Instance; profileArn?: string; failure?: CallFailure }> {
  const containerInstanceArn = task?.containerInstanceArn;
  if (!containerInstanceArn) return {};
  let instanceId: string | undefined;
  try {
    const answer = await c.caller.call('ecs', 'DescribeContainerInstances', {
      ...(cluster ? { cluster } : {}),
      containerInstances: [containerInstanceArn],
    });
    instanceId = answer.containerInstances?.[0]?.ec2InstanceId;
    if (!instanceId) {
      const reason = answer.failures?.[0]?.reason ?? 'MISSING';
      const gone = new AwsCallError(
        'ecs',
        'DescribeContainerInstances',
        reason,
        `ECS no longer knows container instance ${containerInstanceArn}, so its instance role was not found`,
      );
      return { failure: c.fail(gone, 'ecs', 'DescribeContainerInstances') };
    }
  } catch (error) {
    return { failure: c.fail(error, 'ecs', 'DescribeContainerInstances') };
  }
  try {
    const reservations = await c.caller.call('ec2', 'DescribeInstances', {
      InstanceIds: [instanceId],
    });
    const instance = reservations.Reservations?.[0]?.Instances?.[0];
    return {
      ...(instance ? { instance } : {}),
      ...(instance?.IamInstanceProfile?.Arn ? { profileArn: instance.IamInstanceProfile.Arn } : {}),
    };
  } catch (error) {
    return { failure: c.fail(error, 'ec2', 'DescribeInstances') };
  }
}

export async function instanceRole(
  c: Collector,
  profileArn: string,
  requests: RoleRequest[],
): Promise<Lookup<RoleFacts>> {
  const profileName = arnResourceName(profileArn);
  let roleArn: string | undefined;
  try {
    const profile = await c.caller.call('iam', 'GetInstanceProfile', {
      InstanceProfileName: profileName,
    });
    roleArn = profile.InstanceProfile?.Roles?.[0]?.Arn;
  } catch (error) {
    return { state: 'failed', failure: c.fail(error, 'iam', 'GetInstanceProfile') };
  }
  if (!roleArn) return { state: 'missing', detail: `instance profile ${profileName} has no role` };
  return collectRole(c, roleArn, 'instance', requests);
}
