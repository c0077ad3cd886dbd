/**
 * A fake AWS account for doctor's tests: resources held as the SDK's own response shapes, answered by
 * operation with the filters, pagination and error names AWS uses. `fakeCaller` plugs it in as an
 * `AwsCaller`; `installSdkMocks` plugs it behind the real SDK v3 clients (aws-sdk-client-mock), so the
 * collectors, and the CLI's own `--save-snapshot`, run through the clients users run.
 */
import type { ContainerDefinition, Service, Task, TaskDefinition } from '@aws-sdk/client-ecs';
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
import type { AwsCaller } from '../../src/doctor/aws.ts';
import {
  allowedOperations,
  awsClients,
  commandOf,
  type AwsService,
} from '../../src/doctor/aws-operations.ts';
import { ecsTaskExecutionRolePolicyDocument } from '../../src/doctor/managed-policies.test-support.ts';

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

const dockerManifestList = 'application/vnd.docker.distribution.manifest.list.v2+json';

/** A single-platform image: a Docker schema 2 manifest whose config names the platform. */
export function singlePlatformImage(tags: string[], platform: string): FakeImage {
  const [os, architecture, variant] = platform.split('/') as [string, string, string | undefined];
  const config = { digest: `sha256:${'d4'.repeat(32)}`, os, architecture, ...(variant ? { variant } : {}) };
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: {
      mediaType: 'application/vnd.docker.container.image.v1+json',
      digest: config.digest,
      size: 1469,
    },
    layers: [
      {
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        digest: `sha256:${'e5'.repeat(32)}`,
        size: 3_000_000,
      },
    ],
  });
  return {
    tags,
    digest: `sha256:${'f6'.repeat(32)}`,
    manifest,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config,
  };
}

export function indexManifest(platforms: string[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: dockerManifestList,
    manifests: platforms.map((platform, index) => {
      const [os, architecture, variant] = platform.split('/');
      return {
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        digest: `sha256:${String(index).repeat(64).slice(0, 64)}`,
        size: 1000 + index,
        platform: { os, architecture, ...(variant ? { variant } : {}) },
      };
    }),
  });
}

export const executionRolePolicyDocument: Record<string, unknown> = { ...ecsTaskExecutionRolePolicyDocument };

export function webContainer(overrides: Partial<ContainerDefinition> = {}): ContainerDefinition {
  return {
    name: 'web',
    image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/web:1.4.2`,
    essential: true,
    secrets: [{ name: 'DB_PASSWORD', valueFrom: SECRET_ARN }],
    logConfiguration: {
      logDriver: 'awslogs',
      options: { 'awslogs-group': '/ecs/web', 'awslogs-region': REGION, 'awslogs-stream-prefix': 'web' },
    },
    ...overrides,
  };
}

/** A Fargate service whose task pulls from ECR through a NAT gateway, with a secret and awslogs: all fine. */
export function healthyAccount(): FakeAccount {
  const taskDefinitionArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/web:3`;
  return {
    region: REGION,
    accountId: ACCOUNT,
    tasks: [
      {
        taskArn: TASK_ARN,
        clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${CLUSTER}`,
        taskDefinitionArn,
        group: 'service:web',
        launchType: 'FARGATE',
        platformVersion: '1.4.0',
        lastStatus: 'RUNNING',
        desiredStatus: 'RUNNING',
        createdAt: new Date('2026-11-28T10:00:00Z'),
        attachments: [
          {
            id: 'att-1',
            type: 'ElasticNetworkInterface',
            status: 'ATTACHED',
            details: [
              { name: 'subnetId', value: 'subnet-0a1' },
              { name: 'networkInterfaceId', value: 'eni-0abc' },
              { name: 'privateIPv4Address', value: '10.0.1.25' },
            ],
          },
        ],
        containers: [
          {
            name: 'web',
            image: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/web:1.4.2`,
            imageDigest: IMAGE_DIGEST,
            lastStatus: 'RUNNING',
          },
        ],
        attributes: [{ name: 'ecs.cpu-architecture', value: 'x86_64' }],
      },
    ],
    services: [
      {
        serviceName: 'web',
        serviceArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${CLUSTER}/web`,
        clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${CLUSTER}`,
        taskDefinition: taskDefinitionArn,
        launchType: 'FARGATE',
        platformVersion: 'LATEST',
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: ['subnet-0a1'],
            securityGroups: ['sg-0task'],
            assignPublicIp: 'DISABLED',
          },
        },
      },
    ],
    taskDefinitions: [
      {
        taskDefinitionArn,
        family: 'web',
        revision: 3,
        executionRoleArn: EXECUTION_ROLE_ARN,
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        runtimePlatform: { cpuArchitecture: 'X86_64', operatingSystemFamily: 'LINUX' },
        containerDefinitions: [webContainer()],
      },
    ],
    containerInstances: [],
    instances: [],
    instanceProfiles: {},
    vpcs: [
      {
        VpcId: 'vpc-0main',
        CidrBlock: '10.0.0.0/16',
        State: 'available',
        dnsSupport: true,
        dnsHostnames: true,
      },
    ],
    subnets: [
      {
        SubnetId: 'subnet-0a1',
        VpcId: 'vpc-0main',
        CidrBlock: '10.0.1.0/24',
        AvailabilityZone: `${REGION}a`,
        MapPublicIpOnLaunch: false,
      },
      {
        SubnetId: 'subnet-0pub',
        VpcId: 'vpc-0main',
        CidrBlock: '10.0.0.0/24',
        AvailabilityZone: `${REGION}a`,
        MapPublicIpOnLaunch: true,
      },
    ],
    routeTables: [
      {
        RouteTableId: 'rtb-0priv',
        VpcId: 'vpc-0main',
        Associations: [
          {
            RouteTableAssociationId: 'rtbassoc-1',
            RouteTableId: 'rtb-0priv',
            SubnetId: 'subnet-0a1',
            Main: false,
          },
        ],
        Routes: [
          {
            DestinationCidrBlock: '10.0.0.0/16',
            GatewayId: 'local',
            State: 'active',
            Origin: 'CreateRouteTable',
          },
          {
            DestinationCidrBlock: '0.0.0.0/0',
            NatGatewayId: 'nat-0abc',
            State: 'active',
            Origin: 'CreateRoute',
          },
        ],
      },
      {
        RouteTableId: 'rtb-0main',
        VpcId: 'vpc-0main',
        Associations: [{ RouteTableAssociationId: 'rtbassoc-main', RouteTableId: 'rtb-0main', Main: true }],
        Routes: [
          {
            DestinationCidrBlock: '10.0.0.0/16',
            GatewayId: 'local',
            State: 'active',
            Origin: 'CreateRouteTable',
          },
          {
            DestinationCidrBlock: '0.0.0.0/0',
            GatewayId: 'igw-0abc',
            State: 'active',
            Origin: 'CreateRoute',
          },
        ],
      },
    ],
    securityGroups: [
      {
        GroupId: 'sg-0task',
        GroupName: 'web-task',
        VpcId: 'vpc-0main',
        IpPermissions: [],
        IpPermissionsEgress: [
          {
            IpProtocol: '-1',
            IpRanges: [{ CidrIp: '0.0.0.0/0' }],
            Ipv6Ranges: [],
            PrefixListIds: [],
            UserIdGroupPairs: [],
          },
        ],
      },
      {
        GroupId: 'sg-0vpce',
        GroupName: 'endpoints',
        VpcId: 'vpc-0main',
        IpPermissions: [
          {
            IpProtocol: 'tcp',
            FromPort: 443,
            ToPort: 443,
            IpRanges: [{ CidrIp: '10.0.0.0/16' }],
            Ipv6Ranges: [],
            PrefixListIds: [],
            UserIdGroupPairs: [],
          },
        ],
        IpPermissionsEgress: [
          {
            IpProtocol: '-1',
            IpRanges: [{ CidrIp: '0.0.0.0/0' }],
            Ipv6Ranges: [],
            PrefixListIds: [],
            UserIdGroupPairs: [],
          },
        ],
      },
    ],
    networkAcls: [
      {
        NetworkAclId: 'acl-0default',
        VpcId: 'vpc-0main',
        IsDefault: true,
        Associations: [
          { NetworkAclAssociationId: 'aclassoc-1', NetworkAclId: 'acl-0default', SubnetId: 'subnet-0a1' },
          { NetworkAclAssociationId: 'aclassoc-2', NetworkAclId: 'acl-0default', SubnetId: 'subnet-0pub' },
        ],
        Entries: [
          { RuleNumber: 100, Protocol: '-1', RuleAction: 'allow', Egress: true, CidrBlock: '0.0.0.0/0' },
          { RuleNumber: 32767, Protocol: '-1', RuleAction: 'deny', Egress: true, CidrBlock: '0.0.0.0/0' },
          { RuleNumber: 100, Protocol: '-1', RuleAction: 'allow', Egress: false, CidrBlock: '0.0.0.0/0' },
          { RuleNumber: 32767, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '0.0.0.0/0' },
        ],
      },
    ],
    vpcEndpoints: [],
    prefixLists: [
      {
        PrefixListId: S3_PREFIX_LIST,
        PrefixListName: `com.amazonaws.${REGION}.s3`,
        Cidrs: ['3.5.0.0/19', '52.216.0.0/15', '54.231.0.0/16'],
      },
      {
        PrefixListId: 'pl-02cd2c6b',
        PrefixListName: `com.amazonaws.${REGION}.dynamodb`,
        Cidrs: ['3.218.180.0/22'],
      },
    ],
    roles: {
      [EXECUTION_ROLE]: {
        arn: EXECUTION_ROLE_ARN,
        attached: [TASK_EXECUTION_POLICY_ARN],
        inline: {
          'read-db-secret': {
            Version: '2012-10-17',
            Statement: [
              {
                Sid: 'ReadDbSecret',
                Effect: 'Allow',
                Action: 'secretsmanager:GetSecretValue',
                Resource: SECRET_ARN,
              },
            ],
          },
        },
      },
    },
    managedPolicies: { [TASK_EXECUTION_POLICY_ARN]: executionRolePolicyDocument },
    repositories: [
      {
        registryId: ACCOUNT,
        region: REGION,
        name: 'web',
        images: [
          {
            tags: ['1.4.2'],
            digest: IMAGE_DIGEST,
            manifest: indexManifest(['linux/amd64', 'linux/arm64']),
            mediaType: dockerManifestList,
            pushedAt: new Date('2026-11-20T09:00:00Z'),
          },
        ],
      },
    ],
    pullThroughRules: [],
    secrets: [{ arn: SECRET_ARN, name: 'prod/db', region: REGION, value: 's3cr3t-db-password' }],
    parameters: [],
    logGroups: [{ name: '/ecs/web', region: REGION }],
    projects: [],
    builds: [],
    logEvents: {},
    denied: new Set(),
    throttle: new Map(),
  };
}

/** Replaces the NAT route with interface endpoints and an S3 gateway, all configured right. */
export function useEndpoints(account: FakeAccount): void {
  const table = account.routeTables.find((t) => t.RouteTableId === 'rtb-0priv');
  if (table) {
    table.Routes = (table.Routes ?? []).filter((r) => r.DestinationCidrBlock !== '0.0.0.0/0');
    table.Routes.push({
      DestinationPrefixListId: S3_PREFIX_LIST,
      GatewayId: 'vpce-0s3',
      State: 'active',
      Origin: 'CreateRoute',
    });
  }
  const task = account.securityGroups.find((g) => g.GroupId === 'sg-0task');
  if (task) {
    task.IpPermissionsEgress = [
      {
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        IpRanges: [{ CidrIp: '10.0.0.0/16' }],
        Ipv6Ranges: [],
        PrefixListIds: [],
        UserIdGroupPairs: [],
      },
      {
        IpProtocol: 'tcp',
        FromPort: 443,
        ToPort: 443,
        IpRanges: [],
        Ipv6Ranges: [],
        PrefixListIds: [{ PrefixListId: S3_PREFIX_LIST }],
        UserIdGroupPairs: [],
      },
    ];
  }
  const interfaceEndpoint = (service: string, id: string): VpcEndpoint => ({
    VpcEndpointId: id,
    VpcEndpointType: 'Interface',
    VpcId: 'vpc-0main',
    ServiceName: `com.amazonaws.${REGION}.${service}`,
    // The API answers in lower case; the SDK's enum spells it `Available`.
    State: 'available' as never,
    PrivateDnsEnabled: true,
    SubnetIds: ['subnet-0a1'],
    Groups: [{ GroupId: 'sg-0vpce', GroupName: 'endpoints' }],
    NetworkInterfaceIds: [`eni-${id}`],
    RouteTableIds: [],
  });
  account.vpcEndpoints = [
    interfaceEndpoint('ecr.api', 'vpce-0api'),
    interfaceEndpoint('ecr.dkr', 'vpce-0dkr'),
    interfaceEndpoint('logs', 'vpce-0logs'),
    interfaceEndpoint('secretsmanager', 'vpce-0sm'),
    {
      VpcEndpointId: 'vpce-0s3',
      VpcEndpointType: 'Gateway',
      VpcId: 'vpc-0main',
      ServiceName: `com.amazonaws.${REGION}.s3`,
      State: 'available' as never,
      RouteTableIds: ['rtb-0priv'],
      PolicyDocument: JSON.stringify({
        Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }],
      }),
    },
  ];
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

/**
 * The account behind the shipped example (`examples/doctor-service-web.json`): service `web` runs
 * `nginx:1.27` from Docker Hub behind a NAT gateway, and its execution role lost the statement that let it
 * read the database secret. Its two most recent tasks stopped, one on Docker Hub's rate limit, the next on
 * the secret.
 */
export function exampleServiceAccount(): FakeAccount {
  const account = healthyAccount();
  const image = 'nginx:1.27';
  account.taskDefinitions[0]!.containerDefinitions = [webContainer({ image })];
  delete account.roles[EXECUTION_ROLE]!.inline['read-db-secret'];
  const template = account.tasks[0]!;
  const stopped = (id: string, stoppedAt: string, reason: string): Task => ({
    ...structuredClone(template),
    taskArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task/${CLUSTER}/${id}`,
    lastStatus: 'STOPPED',
    desiredStatus: 'STOPPED',
    stopCode: 'TaskFailedToStart',
    createdAt: new Date(new Date(stoppedAt).getTime() - 60_000),
    stoppedAt: new Date(stoppedAt),
    stoppedReason: reason,
    containers: [{ name: 'web', image, lastStatus: 'STOPPED' }],
  });
  account.tasks = [
    stopped(
      '5c4b3a2918f7e6d5c4b3a2918f7e6d5c',
      '2026-11-28T10:05:00Z',
      'CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref docker.io/library/nginx:1.27: unexpected status from HEAD request to https://registry-1.docker.io/v2/library/nginx/manifests/1.27: 429 Too Many Requests - Server message: toomanyrequests: You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit',
    ),
    stopped(
      '9a8b7c6d5e4f30211203f4e5d6c7b8a9',
      '2026-11-28T10:12:00Z',
      `ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret ${SECRET_ARN} from secrets manager: AccessDeniedException: User: arn:aws:sts::${ACCOUNT}:assumed-role/${EXECUTION_ROLE}/9a8b7c6d5e4f30211203f4e5d6c7b8a9 is not authorized to perform: secretsmanager:GetSecretValue on resource: ${SECRET_ARN} because no identity-based policy allows the secretsmanager:GetSecretValue action status code: 400, request id: 0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a`,
    ),
  ];
  return account;
}

export const PROJECT = 'app';
export const CODEBUILD_ROLE = 'codebuild-app-service-role';
export const CODEBUILD_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/service-role/${CODEBUILD_ROLE}`;
export const CODEBUILD_LOG_GROUP = `/aws/codebuild/${PROJECT}`;

/**
 * CodeBuild project `app` as the console creates it: CodePipeline source, a curated image, CloudWatch Logs
 * on, and a service role with the console's base policy (its log group, the pipeline's artifact bucket).
 */
export function withCodeBuildProject(account: FakeAccount, overrides: Partial<Project> = {}): Project {
  const base = `CodeBuildBasePolicy-${PROJECT}-${REGION}`;
  account.roles[CODEBUILD_ROLE] = {
    arn: CODEBUILD_ROLE_ARN,
    attached: [],
    inline: {
      [base]: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Resource: [
              `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${CODEBUILD_LOG_GROUP}`,
              `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${CODEBUILD_LOG_GROUP}:*`,
            ],
            Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
          },
          {
            Effect: 'Allow',
            Resource: ['arn:aws:s3:::codepipeline-us-east-1-*'],
            Action: [
              's3:PutObject',
              's3:GetObject',
              's3:GetObjectVersion',
              's3:GetBucketAcl',
              's3:GetBucketLocation',
            ],
          },
        ],
      },
    },
  };
  account.logGroups.push({ name: CODEBUILD_LOG_GROUP, region: REGION });
  const project: Project = {
    name: PROJECT,
    arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/${PROJECT}`,
    serviceRole: CODEBUILD_ROLE_ARN,
    source: {
      type: 'CODEPIPELINE',
      buildspec: 'version: 0.2\nphases:\n  build:\n    commands:\n      - make\n',
    },
    artifacts: { type: 'CODEPIPELINE', name: PROJECT, packaging: 'NONE', encryptionDisabled: false },
    environment: {
      type: 'LINUX_CONTAINER',
      image: 'aws/codebuild/standard:7.0',
      computeType: 'BUILD_GENERAL1_SMALL',
      environmentVariables: [],
      privilegedMode: true,
      imagePullCredentialsType: 'CODEBUILD',
    },
    timeoutInMinutes: 60,
    queuedTimeoutInMinutes: 480,
    encryptionKey: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/s3`,
    created: new Date('2026-09-01T08:00:00Z'),
    lastModified: new Date('2026-11-20T08:00:00Z'),
    logsConfig: {
      cloudWatchLogs: { status: 'ENABLED' },
      s3Logs: { status: 'DISABLED', encryptionDisabled: false },
    },
    ...overrides,
  };
  account.projects.push(project);
  return project;
}

const buildPhases = [
  'SUBMITTED',
  'QUEUED',
  'PROVISIONING',
  'DOWNLOAD_SOURCE',
  'INSTALL',
  'PRE_BUILD',
  'BUILD',
  'POST_BUILD',
  'UPLOAD_ARTIFACTS',
  'FINALIZING',
  'COMPLETED',
] as const;

export interface FakeBuildOptions {
  number: number;
  /** The build's uuid (its id is `app:<uuid>`, its log stream the uuid). */
  uuid: string;
  startedAt: string;
  /** The phase that failed, with the context CodeBuild wrote; absent for a build that succeeded. */
  failed?: { phase: (typeof buildPhases)[number]; statusCode: string; message: string };
  /** Log lines by phase (what the build wrote while in it), without CodeBuild's `[Container]` framing. */
  log?: Partial<Record<(typeof buildPhases)[number], string[]>>;
}

/**
 * A build of `project` as BatchGetBuilds answers it: every phase with its times (ten seconds each), the
 * failed one with its context and the later ones skipped as CodeBuild does (POST_BUILD, UPLOAD_ARTIFACTS
 * and FINALIZING still run), and its CloudWatch log lines timed inside their phases.
 */
export function addBuild(account: FakeAccount, project: Project, options: FakeBuildOptions): Build {
  const start = new Date(options.startedAt).getTime();
  const id = `${project.name}:${options.uuid}`;
  const failedAt = options.failed ? buildPhases.indexOf(options.failed.phase) : -1;
  const stamp = (ms: number) =>
    new Date(ms).toISOString().replace('T', ' ').replace('Z', '').replaceAll('-', '/');
  const events: FakeLogEvent[] = [];
  const phases = buildPhases.flatMap((phaseType, index) => {
    const skipped =
      failedAt >= 0 && index > failedAt && ['INSTALL', 'PRE_BUILD', 'BUILD'].includes(phaseType);
    if (skipped) return [];
    const from = start + index * 10_000;
    const to = from + 10_000;
    const failed = index === failedAt;
    const lines = options.log?.[phaseType] ?? [];
    lines.forEach((line, n) => {
      const at = from + 100 + n * 10;
      // CodeBuild's own lines carry the time they were written.
      const message = line.replace(/^\[Container\] \S+ \S+ /, `[Container] ${stamp(at)} `);
      events.push({ timestamp: at, message: `${message}\n` });
    });
    if (phaseType !== 'SUBMITTED' && phaseType !== 'COMPLETED') {
      events.push({
        timestamp: to - 5,
        message: `[Container] ${stamp(to - 5)} Phase complete: ${phaseType} State: ${failed ? 'FAILED' : 'SUCCEEDED'}\n`,
      });
      events.push({
        timestamp: to - 4,
        message: `[Container] ${stamp(to - 4)} Phase context status code: ${failed ? options.failed!.statusCode : ''} Message: ${failed ? options.failed!.message : ''}\n`,
      });
    }
    return [
      {
        phaseType,
        phaseStatus: failed ? 'FAILED' : 'SUCCEEDED',
        startTime: new Date(from),
        ...(phaseType === 'COMPLETED' ? {} : { endTime: new Date(to), durationInSeconds: 10 }),
        ...(phaseType === 'SUBMITTED' || phaseType === 'COMPLETED'
          ? {}
          : {
              contexts: [
                failed
                  ? { statusCode: options.failed!.statusCode, message: options.failed!.message }
                  : { statusCode: '', message: '' },
              ],
            }),
      },
    ];
  }) as Build['phases'];
  account.logEvents[logStreamKey(CODEBUILD_LOG_GROUP, options.uuid)] = events.sort(
    (a, b) => a.timestamp - b.timestamp,
  );
  const build: Build = {
    id,
    arn: `arn:aws:codebuild:${REGION}:${ACCOUNT}:build/${id}`,
    buildNumber: options.number,
    startTime: new Date(start),
    endTime: new Date(start + buildPhases.length * 10_000),
    currentPhase: 'COMPLETED',
    buildStatus: options.failed ? 'FAILED' : 'SUCCEEDED',
    projectName: project.name,
    phases,
    source: project.source,
    environment: project.environment,
    serviceRole: project.serviceRole,
    logs: {
      groupName: CODEBUILD_LOG_GROUP,
      streamName: options.uuid,
      deepLink: `https://console.aws.amazon.com/cloudwatch/home?region=${REGION}#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252F${project.name}/log-events/${options.uuid}`,
      cloudWatchLogsArn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${CODEBUILD_LOG_GROUP}:log-stream:${options.uuid}`,
      cloudWatchLogs: { status: 'ENABLED' },
      s3Logs: { status: 'DISABLED', encryptionDisabled: false },
    },
    timeoutInMinutes: 60,
    queuedTimeoutInMinutes: 480,
    buildComplete: true,
    initiator: `codepipeline/${project.name}-pipeline`,
    ...(project.vpcConfig ? { vpcConfig: project.vpcConfig } : {}),
    encryptionKey: project.encryptionKey,
  };
  account.builds.push(build);
  return build;
}

/** CodeBuild's framing of a command it runs, as its log shows it. */
export function running(command: string): string {
  return `[Container] 2026/11/28 10:00:00.000000 Running command ${command}`;
}

/**
 * The account behind the shipped CodeBuild example (`examples/doctor-codebuild-app.json`): project `app`
 * builds its image with `docker build` from a Dockerfile whose base image is `node:20` from Docker Hub. Its
 * buildspec logs in with `docker login -u AWS --password-stdin $ECR_REGISTRY` (ECR, where it pushes), never
 * to Docker Hub, and its last build failed on Docker Hub's rate limit; the build before it succeeded.
 */
export function exampleCodeBuildAccount(): FakeAccount {
  const account = healthyAccount();
  const buildspec = [
    'version: 0.2',
    'env:',
    '  variables:',
    '    IMAGE_REPO_NAME: app',
    'phases:',
    '  pre_build:',
    '    commands:',
    '      - ECR_REGISTRY=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com',
    '      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login -u AWS --password-stdin $ECR_REGISTRY',
    '  build:',
    '    commands:',
    '      - docker build -t $ECR_REGISTRY/$IMAGE_REPO_NAME:$CODEBUILD_RESOLVED_SOURCE_VERSION .',
    '  post_build:',
    '    commands:',
    '      - docker push $ECR_REGISTRY/$IMAGE_REPO_NAME:$CODEBUILD_RESOLVED_SOURCE_VERSION',
    '',
  ].join('\n');
  const project = withCodeBuildProject(account, {
    source: { type: 'CODEPIPELINE', buildspec },
  });
  project.environment!.environmentVariables = [{ name: 'AWS_ACCOUNT_ID', value: ACCOUNT, type: 'PLAINTEXT' }];
  const build = 'docker build -t $ECR_REGISTRY/$IMAGE_REPO_NAME:$CODEBUILD_RESOLVED_SOURCE_VERSION .';
  const tooMany = `failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/node/manifests/sha256:${'c3'.repeat(32)}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit`;
  addBuild(account, project, {
    number: 41,
    uuid: '0b9e4c1d-7a52-4f0e-9c3b-5d8e2f1a6b70',
    startedAt: '2026-11-28T09:00:00Z',
  });
  addBuild(account, project, {
    number: 42,
    uuid: '7f3c2a91-4d6e-4b8a-a1c5-2e9d0b7f4c36',
    startedAt: '2026-11-28T10:00:00Z',
    failed: {
      phase: 'BUILD',
      statusCode: 'COMMAND_EXECUTION_ERROR',
      message: `Error while executing command: ${build}. Reason: exit status 1`,
    },
    log: {
      PRE_BUILD: [
        running('ECR_REGISTRY=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com'),
        running(
          'aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login -u AWS --password-stdin $ECR_REGISTRY',
        ),
        'Login Succeeded',
      ],
      BUILD: [
        running(build),
        '#0 building with "default" instance using docker driver',
        '#1 [internal] load build definition from Dockerfile',
        '#1 transferring dockerfile: 212B done',
        '#2 [internal] load metadata for docker.io/library/node:20',
        `#2 ERROR: ${tooMany}`,
        '------',
        ' > [internal] load metadata for docker.io/library/node:20:',
        '------',
        'Dockerfile:1',
        '--------------------',
        '   1 | >>> FROM node:20',
        '   2 |     WORKDIR /app',
        '   3 |     COPY package*.json ./',
        '--------------------',
        `ERROR: failed to solve: node:20: failed to resolve source metadata for docker.io/library/node:20: ${tooMany}`,
        `[Container] 2026/11/28 10:01:04.512873 Command did not exit successfully ${build} exit status 1`,
      ],
    },
  });
  return account;
}

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
  switch (key) {
    case 'ecs:DescribeTasks': {
      const wanted = (input.tasks as string[]) ?? [];
      const tasks = wanted
        .map((id) => account.tasks.find((t) => idMatches(id, t.taskArn)))
        .filter((t): t is Task => Boolean(t));
      const failures = wanted
        .filter((id) => !account.tasks.some((t) => idMatches(id, t.taskArn)))
        .map((arn) => ({ arn, reason: 'MISSING' }));
      return { tasks, failures };
    }
    case 'ecs:DescribeServices': {
      const wanted = (input.services as string[]) ?? [];
      const known = (w: string) => account.services.some((s) => w === s.serviceName || w === s.serviceArn);
      return {
        services: account.services.filter((s) =>
          wanted.some((w) => w === s.serviceName || w === s.serviceArn),
        ),
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
    }
    case 'ecs:ListTasks':
      return {
        taskArns: account.tasks
          .filter(
            (t) =>
              t.group === `service:${String(input.serviceName)}` &&
              (input.desiredStatus !== 'STOPPED' || t.desiredStatus === 'STOPPED'),
          )
          .map((t) => t.taskArn),
      };
    case 'ecs:DescribeTaskDefinition': {
      const wanted = String(input.taskDefinition);
      const found = account.taskDefinitions.find(
        (d) =>
          d.taskDefinitionArn === wanted || `${d.family}:${d.revision}` === wanted || d.family === wanted,
      );
      if (!found) throw awsError('ClientException', 'Unable to describe task definition.');
      return { taskDefinition: found, tags: [] };
    }
    case 'ecs:DescribeContainerInstances':
      return {
        containerInstances: account.containerInstances
          .filter((c) => (input.containerInstances as string[]).includes(c.arn))
          .map((c) => ({ containerInstanceArn: c.arn, ec2InstanceId: c.ec2InstanceId })),
      };
    case 'ec2:DescribeInstances':
      return {
        Reservations: [
          {
            Instances: account.instances.filter((i) =>
              (input.InstanceIds as string[]).includes(i.InstanceId ?? ''),
            ),
          },
        ],
      };
    case 'ec2:DescribeSubnets': {
      const ids = input.SubnetIds as string[];
      const missing = ids.find((id) => !account.subnets.some((s) => s.SubnetId === id));
      if (missing) throw awsError('InvalidSubnetID.NotFound', `The subnet ID '${missing}' does not exist`);
      return { Subnets: account.subnets.filter((s) => ids.includes(s.SubnetId ?? '')) };
    }
    case 'ec2:DescribeVpcs':
      return {
        Vpcs: account.vpcs
          .filter((v) => (input.VpcIds as string[]).includes(v.VpcId ?? ''))
          .map(({ dnsSupport: _s, dnsHostnames: _h, ...vpc }) => vpc),
      };
    case 'ec2:DescribeVpcAttribute': {
      const vpc = account.vpcs.find((v) => v.VpcId === input.VpcId);
      if (!vpc) throw awsError('InvalidVpcID.NotFound', `The vpc ID '${String(input.VpcId)}' does not exist`);
      return input.Attribute === 'enableDnsSupport'
        ? { VpcId: vpc.VpcId, EnableDnsSupport: { Value: vpc.dnsSupport } }
        : { VpcId: vpc.VpcId, EnableDnsHostnames: { Value: vpc.dnsHostnames } };
    }
    case 'ec2:DescribeRouteTables': {
      const subnets = filterValues(input, 'association.subnet-id');
      const vpc = filterValues(input, 'vpc-id');
      const main = filterValues(input, 'association.main');
      return {
        RouteTables: account.routeTables.filter((t) => {
          if (subnets && !(t.Associations ?? []).some((a) => subnets.includes(a.SubnetId ?? '')))
            return false;
          if (vpc && !vpc.includes(t.VpcId ?? '')) return false;
          if (main && !(t.Associations ?? []).some((a) => a.Main === true)) return false;
          return true;
        }),
      };
    }
    case 'ec2:DescribeSecurityGroups': {
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
    }
    case 'ec2:DescribeNetworkAcls': {
      const subnets = filterValues(input, 'association.subnet-id') ?? [];
      return {
        NetworkAcls: account.networkAcls.filter((a) =>
          (a.Associations ?? []).some((x) => subnets.includes(x.SubnetId ?? '')),
        ),
      };
    }
    case 'ec2:DescribeVpcEndpoints': {
      const vpc = filterValues(input, 'vpc-id') ?? [];
      return page(
        account.vpcEndpoints.filter((e) => vpc.includes(e.VpcId ?? '')),
        input,
        2,
        'VpcEndpoints',
        { input: 'NextToken', output: 'NextToken' },
      );
    }
    case 'ec2:DescribePrefixLists':
      return { PrefixLists: account.prefixLists };
    case 'iam:GetRole': {
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
    }
    case 'iam:ListRolePolicies':
      return page(Object.keys(account.roles[String(input.RoleName)]?.inline ?? {}), input, 1, 'PolicyNames', {
        input: 'Marker',
        output: 'Marker',
        truncated: true,
      });
    case 'iam:GetRolePolicy': {
      const document = account.roles[String(input.RoleName)]?.inline[String(input.PolicyName)];
      if (!document) throw awsError('NoSuchEntity', 'The role policy cannot be found.', 404);
      return {
        RoleName: input.RoleName,
        PolicyName: input.PolicyName,
        PolicyDocument: encodeURIComponent(JSON.stringify(document)),
      };
    }
    case 'iam:ListAttachedRolePolicies':
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
    case 'iam:GetPolicy':
      if (!account.managedPolicies[String(input.PolicyArn)])
        throw awsError('NoSuchEntity', 'Policy not found', 404);
      return { Policy: { Arn: input.PolicyArn, DefaultVersionId: 'v3' } };
    case 'iam:GetPolicyVersion':
      return {
        PolicyVersion: {
          VersionId: input.VersionId,
          IsDefaultVersion: true,
          Document: encodeURIComponent(JSON.stringify(account.managedPolicies[String(input.PolicyArn)])),
        },
      };
    case 'iam:GetInstanceProfile': {
      const roleName = account.instanceProfiles[String(input.InstanceProfileName)];
      if (!roleName) throw awsError('NoSuchEntity', 'Instance profile not found', 404);
      return {
        InstanceProfile: {
          InstanceProfileName: input.InstanceProfileName,
          Roles: [{ RoleName: roleName, Arn: account.roles[roleName]?.arn }],
        },
      };
    }
    case 'iam:SimulatePrincipalPolicy': {
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
    }
    case 'ecr:DescribeRepositories': {
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
    }
    case 'ecr:DescribeImages': {
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
    }
    case 'ecr:BatchGetImage': {
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
    }
    case 'ecr:GetRepositoryPolicy': {
      const repository = ecrRepository(account, input, region);
      if (!repository.policy)
        throw awsError('RepositoryPolicyNotFoundException', 'Repository policy does not exist');
      return {
        registryId: repository.registryId,
        repositoryName: repository.name,
        policyText: JSON.stringify(repository.policy),
      };
    }
    case 'ecr:GetImageConfigPlatform':
    case 'ecr:GetDownloadUrlForLayer': {
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
    }
    case 'ecr:DescribePullThroughCacheRules':
      return { pullThroughCacheRules: account.pullThroughRules };
    case 'secretsmanager:DescribeSecret':
    case 'secretsmanager:GetSecretValue':
    case 'secretsmanager:GetResourcePolicy': {
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
    }
    case 'ssm:DescribeParameters': {
      // SSM filters each page after reading it: with a filter, the first page often comes back empty
      // with a NextToken, and the match is on a later page.
      if (input.NextToken === undefined) return { Parameters: [], NextToken: 'page-2' };
      const names = (input.ParameterFilters as { Values?: string[] }[])[0]?.Values ?? [];
      return {
        Parameters: account.parameters
          .filter((p) => p.region === region && names.includes(p.name))
          .map((p) => ({ Name: p.name, ARN: p.arn, Type: 'SecureString' })),
      };
    }
    case 'logs:DescribeLogGroups': {
      const prefix = String(input.logGroupNamePrefix ?? '');
      const groups = account.logGroups
        .filter((g) => g.region === region && g.name.startsWith(prefix))
        .map((g) => ({
          logGroupName: g.name,
          arn: `arn:aws:logs:${region}:${account.accountId}:log-group:${g.name}:*`,
        }));
      return page(groups, input, 1, 'logGroups', { input: 'nextToken', output: 'nextToken' });
    }
    case 'codebuild:BatchGetProjects': {
      const names = input.names as string[];
      return {
        projects: account.projects.filter((p) => names.includes(p.name ?? '')),
        projectsNotFound: names.filter((n) => !account.projects.some((p) => p.name === n)),
      };
    }
    case 'codebuild:ListBuildsForProject': {
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
    }
    case 'codebuild:BatchGetBuilds': {
      const ids = input.ids as string[];
      if (ids.length > 100)
        throw awsError('InvalidInputException', 'Member must have length less than or equal to 100');
      return {
        builds: ids.flatMap((id) => account.builds.find((b) => b.id === id || b.arn === id) ?? []),
        buildsNotFound: ids.filter((id) => !account.builds.some((b) => b.id === id || b.arn === id)),
      };
    }
    case 'logs:GetLogEvents': {
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
    }
    case 'sts:GetCallerIdentity':
      return { Account: account.accountId, Arn: `arn:aws:iam::${account.accountId}:user/diagnose` };
    default:
      throw new Error(`fake AWS does not implement ${key}`);
  }
}

/** The account as an `AwsCaller`, with a log of the calls made. */
export function fakeCaller(account: FakeAccount): AwsCaller & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async call(service, operation, input, region) {
      calls.push(`${service}:${operation}`);
      // The fake reads requests by field name, as AWS reads their JSON. A structured clone: collectors
      // must not be able to change the account between calls.
      const request = input as Record<string, unknown>;
      return structuredClone(answer(account, service, operation, request, region ?? account.region)) as never;
    },
  };
}

/** Loosely typed: one loop installs the same fake behind every client. */
interface LooseStub {
  on(command: unknown): {
    callsFake(fn: (input: Record<string, unknown>, getClient: () => unknown) => unknown): unknown;
  };
  restore(): void;
}

/**
 * Puts `current()` behind the real SDK v3 clients of this process (aws-sdk-client-mock): every command doctor
 * may send is answered by the fake account, in the region the client was built for. `sent` logs
 * `service:Operation` per command; `restore` puts the clients back.
 */
export async function installSdkMocks(
  current: () => FakeAccount,
): Promise<{ sent: string[]; restore(): void }> {
  const { mockClient } = await import('aws-sdk-client-mock');
  const sent: string[] = [];
  const stubs: LooseStub[] = [];
  for (const service of Object.keys(allowedOperations) as AwsService[]) {
    const stub = mockClient((await awsClients[service]()) as never) as unknown as LooseStub;
    for (const listed of allowedOperations[service]) {
      // The composite operation is made of GetDownloadUrlForLayer and a plain HTTP GET of its URL.
      const operation = listed === 'GetImageConfigPlatform' ? 'GetDownloadUrlForLayer' : listed;
      const Command = await commandOf(service, listed);
      stub.on(Command).callsFake(async (input, getClient) => {
        sent.push(`${service}:${operation}`);
        const region = await (getClient() as { config: { region: () => Promise<string> } }).config.region();
        return structuredClone(answer(current(), service, operation, input, region));
      });
    }
    stubs.push(stub);
  }
  return {
    sent,
    restore: () => {
      for (const stub of stubs) stub.restore();
    },
  };
}
