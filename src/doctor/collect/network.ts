/** EC2: where the workload runs (subnets, route tables, security groups, NACLs, endpoints, prefix lists). */
import type { Task, Service } from '@aws-sdk/client-ecs';
import type {
  Subnet,
  RouteTable,
  SecurityGroup,
  NetworkAcl,
  VpcEndpoint,
  PrefixList,
  Vpc,
  Instance,
} from '@aws-sdk/client-ec2';
import { paginate } from '../aws.ts';

const nextToken = { input: 'NextToken', output: 'NextToken' } as const;
import { endpointNeeds } from '../images.ts';
import type { Facts, ImageFacts, LogFacts, Lookup, NetworkFacts, Needs, SecretFacts } from '../types.ts';

import type { Collector } from './collector.ts';
import { type DoctorTarget } from './collector.ts';

export interface Placement {
  subnets: string[];
  securityGroups: Lookup<string[]>;
  assignPublicIp: boolean;
}

export function networkPlacement(
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

export async function collectNetwork(
  c: Collector,
  region: string,
  placement: Placement | undefined,
): Promise<NetworkFacts | undefined> {
  if (!placement || placement.subnets.length === 0) return undefined;
  const subnets = await c.lookup<Subnet[]>('ec2', 'DescribeSubnets', async () =>
    paginate(c.caller, 'ec2', 'DescribeSubnets', { SubnetIds: placement.subnets }, 'Subnets', nextToken),
  );
  const vpcId = subnets.state === 'found' ? (subnets.value[0]?.VpcId ?? '') : '';
  if (!vpcId) return withoutVpc(region, subnets, placement);
  const [vpc, dnsSupport, dnsHostnames, routeTables, securityGroups, networkAcls, endpoints, prefixLists] =
    await Promise.all([
      c.lookup<Vpc>(
        'ec2',
        'DescribeVpcs',
        async () => (await c.caller.call('ec2', 'DescribeVpcs', { VpcIds: [vpcId] })).Vpcs?.[0],
      ),
      vpcAttribute(c, vpcId, 'enableDnsSupport'),
      vpcAttribute(c, vpcId, 'enableDnsHostnames'),
      c.lookup<RouteTable[]>('ec2', 'DescribeRouteTables', () => routeTablesFor(c, vpcId, placement.subnets)),
      securityGroupsOf(c, placement.securityGroups),
      c.lookup<NetworkAcl[]>('ec2', 'DescribeNetworkAcls', () =>
        paginate(
          c.caller,
          'ec2',
          'DescribeNetworkAcls',
          { Filters: [{ Name: 'association.subnet-id', Values: placement.subnets }] },
          'NetworkAcls',
          nextToken,
        ),
      ),
      c.lookup<VpcEndpoint[]>('ec2', 'DescribeVpcEndpoints', () =>
        paginate(
          c.caller,
          'ec2',
          'DescribeVpcEndpoints',
          { Filters: [{ Name: 'vpc-id', Values: [vpcId] }] },
          'VpcEndpoints',
          nextToken,
        ),
      ),
      c.lookup<PrefixList[]>('ec2', 'DescribePrefixLists', () =>
        paginate(c.caller, 'ec2', 'DescribePrefixLists', {}, 'PrefixLists', nextToken),
      ),
    ]);
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
    endpointSecurityGroups: await endpointSecurityGroups(c, endpoints),
    prefixLists,
    assignPublicIp: placement.assignPublicIp,
  };
}

/** Subnets that could not be read (or were not found): nothing else about their VPC can be. */
function withoutVpc(region: string, subnets: Lookup<Subnet[]>, placement: Placement): NetworkFacts {
  const failedAll = <T>(): Lookup<T> =>
    subnets.state === 'failed'
      ? { state: 'failed', failure: subnets.failure }
      : { state: 'missing', detail: 'the subnets were not found' };
  return {
    region,
    vpcId: '',
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

function vpcAttribute(
  c: Collector,
  vpcId: string,
  attribute: 'enableDnsSupport' | 'enableDnsHostnames',
): Promise<Lookup<boolean>> {
  return c.lookup<boolean>('ec2', 'DescribeVpcAttribute', async () => {
    const answer = await c.caller.call('ec2', 'DescribeVpcAttribute', { VpcId: vpcId, Attribute: attribute });
    return Boolean(
      (attribute === 'enableDnsSupport' ? answer.EnableDnsSupport : answer.EnableDnsHostnames)?.Value,
    );
  });
}

/** The workload's security groups, when their ids are known. */
function securityGroupsOf(c: Collector, groupIds: Lookup<string[]>): Promise<Lookup<SecurityGroup[]>> {
  if (groupIds.state !== 'found') return Promise.resolve(groupIds as Lookup<SecurityGroup[]>);
  return c.lookup<SecurityGroup[]>('ec2', 'DescribeSecurityGroups', () =>
    paginate(
      c.caller,
      'ec2',
      'DescribeSecurityGroups',
      { GroupIds: groupIds.value },
      'SecurityGroups',
      nextToken,
    ),
  );
}

/** The security groups of the VPC's endpoints. */
async function endpointSecurityGroups(
  c: Collector,
  endpoints: Lookup<VpcEndpoint[]>,
): Promise<Lookup<SecurityGroup[]>> {
  if (endpoints.state === 'failed') return { state: 'failed', failure: endpoints.failure };
  const groupIds =
    endpoints.state === 'found'
      ? [
          ...new Set(
            endpoints.value.flatMap((e) => (e.Groups ?? []).map((g) => g.GroupId ?? '')).filter(Boolean),
          ),
        ]
      : [];
  if (groupIds.length === 0) return { state: 'found', value: [] };
  return c.lookup<SecurityGroup[]>('ec2', 'DescribeSecurityGroups', () =>
    paginate(c.caller, 'ec2', 'DescribeSecurityGroups', { GroupIds: groupIds }, 'SecurityGroups', nextToken),
  );
}

/** The subnets' own route tables, and the VPC's main table for subnets without one. */
async function routeTablesFor(c: Collector, vpcId: string, subnets: string[]): Promise<RouteTable[]> {
  const [explicit, main] = await Promise.all([
    paginate(
      c.caller,
      'ec2',
      'DescribeRouteTables',
      { Filters: [{ Name: 'association.subnet-id', Values: subnets }] },
      'RouteTables',
      nextToken,
    ),
    paginate(
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
      nextToken,
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

export function computeNeeds(
  images: ImageFacts[],
  secrets: SecretFacts[],
  logs: LogFacts[],
  region: string,
): Needs {
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
