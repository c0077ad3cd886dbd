/** A fake AWS account's contents, held as the SDK's own response shapes, and the errors AWS answers with. */
import type { Service, Task, TaskDefinition } from '@aws-sdk/client-ecs';
import type {
  Instance,
  NetworkAcl,
  PrefixList,
  RouteTable,
  SecurityGroup,
  Subnet,
  Vpc,
  VpcEndpoint,
} from '@aws-sdk/client-ec2';
import type { PullThroughCacheRule } from '@aws-sdk/client-ecr';
import type { Build, Project } from '@aws-sdk/client-codebuild';

export const REGION = 'us-east-1';
export const ACCOUNT = '111122223333';
export const OTHER_ACCOUNT = '444455556666';
export const CLUSTER = 'prod';
export const TASK_ID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
export const TASK_ARN = `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${CLUSTER}/${TASK_ID}`;
export const EXECUTION_ROLE = 'ecsTaskExecutionRole';
export const EXECUTION_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/${EXECUTION_ROLE}`;
export const TASK_EXECUTION_POLICY_ARN =
  'arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy';
export const S3_PREFIX_LIST = 'pl-63a5400a';
export const IMAGE_DIGEST = `sha256:${'a1'.repeat(32)}`;
export const OTHER_DIGEST = `sha256:${'b2'.repeat(32)}`;
export const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/db-AbCdEf`;
export const REGISTRY_SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:dockerhub/pull-XyZ123`;

export interface FakeImage {
  tags: string[];
  digest: string;
  manifest: string;
  mediaType: string;
  pushedAt?: Date;
  /** For a single-platform image: its config blob's digest and platform fields. */
  config?: { digest: string; os: string; architecture: string; variant?: string };
  /** A failure ECR reports in BatchGetImage's body for this image (`KmsError`, …). */
  batchGetFailure?: { failureCode: string; failureReason: string };
}

export interface FakeRepository {
  registryId: string;
  region: string;
  name: string;
  images: FakeImage[];
  policy?: Record<string, unknown>;
}

export interface FakeRole {
  arn: string;
  inline: Record<string, Record<string, unknown>>;
  attached: string[];
  boundary?: string;
}

export interface FakeSecret {
  arn: string;
  name: string;
  region: string;
  kmsKeyId?: string;
  value: string;
  /** The secret's resource policy, when it has one. */
  policy?: Record<string, unknown>;
}

/** One CloudWatch Logs event, as GetLogEvents answers it. */
export interface FakeLogEvent {
  timestamp: number;
  message: string;
}

/** Where a build's log events are kept: `<group>|<stream>`. */
export function logStreamKey(group: string, stream: string): string {
  return `${group}|${stream}`;
}

export interface FakeAccount {
  region: string;
  accountId: string;
  tasks: Task[];
  services: Service[];
  taskDefinitions: TaskDefinition[];
  containerInstances: { arn: string; ec2InstanceId: string }[];
  instances: Instance[];
  instanceProfiles: Record<string, string>;
  vpcs: (Vpc & { dnsSupport: boolean; dnsHostnames: boolean })[];
  subnets: Subnet[];
  routeTables: RouteTable[];
  securityGroups: SecurityGroup[];
  networkAcls: NetworkAcl[];
  vpcEndpoints: VpcEndpoint[];
  prefixLists: PrefixList[];
  roles: Record<string, FakeRole>;
  managedPolicies: Record<string, Record<string, unknown>>;
  /** Answers for iam:SimulatePrincipalPolicy; absent means the caller may not simulate (AccessDenied). */
  simulator?: (
    roleArn: string,
    action: string,
    resource: string,
  ) => 'allowed' | 'implicitDeny' | 'explicitDeny' | { decision: 'implicitDeny'; missingContext: string[] };
  repositories: FakeRepository[];
  pullThroughRules: PullThroughCacheRule[];
  secrets: FakeSecret[];
  parameters: { name: string; arn: string; region: string }[];
  logGroups: { name: string; region: string }[];
  projects: Project[];
  builds: Build[];
  /** Log events by `logStreamKey(group, stream)`, oldest first. */
  logEvents: Record<string, FakeLogEvent[]>;
  /** Where presigned layer URLs point (a loopback server in the SDK tests). */
  blobBaseUrl?: string;
  /** `service:Operation` pairs the diagnosing identity may not call. */
  denied: Set<string>;
  /** `service:Operation` → how many more times to answer ThrottlingException first. */
  throttle: Map<string, number>;
}

export function awsError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: status } });
}
