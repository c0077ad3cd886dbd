/**
 * A healthy account to break in tests (a Fargate service pulling from ECR through a NAT gateway, with a
 * secret and awslogs), images and containers to put in it, and the account behind the shipped service
 * example.
 */
import type { ContainerDefinition, Task } from '@aws-sdk/client-ecs';
import type { VpcEndpoint } from '@aws-sdk/client-ec2';
import { ecsTaskExecutionRolePolicyDocument } from '../../../src/doctor/managed-policies.test-support.ts';
import {
  ACCOUNT,
  CLUSTER,
  EXECUTION_ROLE,
  EXECUTION_ROLE_ARN,
  IMAGE_DIGEST,
  REGION,
  S3_PREFIX_LIST,
  SECRET_ARN,
  TASK_ARN,
  TASK_EXECUTION_POLICY_ARN,
  type FakeAccount,
  type FakeImage,
} from './account.ts';

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
  return {
    region: REGION,
    accountId: ACCOUNT,
    ...healthyEcs(),
    ...healthyRouting(),
    ...healthyFiltering(),
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

/** Service `web` in cluster `prod`, its running task and task definition `web:3`. */
function healthyEcs(): Pick<
  FakeAccount,
  'tasks' | 'services' | 'taskDefinitions' | 'containerInstances' | 'instances' | 'instanceProfiles'
> {
  const taskDefinitionArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/web:3`;
  return {
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
  };
}

/** The VPC, its public and private subnets, and their route tables (the private one through a NAT gateway). */
function healthyRouting(): Pick<FakeAccount, 'vpcs' | 'subnets' | 'routeTables'> {
  return {
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
  };
}

/** Security groups, network ACLs, endpoints and prefix lists that let the task's traffic through. */
function healthyFiltering(): Pick<
  FakeAccount,
  'securityGroups' | 'networkAcls' | 'vpcEndpoints' | 'prefixLists'
> {
  return {
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
