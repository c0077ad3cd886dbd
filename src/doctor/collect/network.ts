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
        async () => (await c.caller.call('ec2', 'DescribeVpcs', { VpcIds: [vpcId] })).Vpcs?.[0],
      ),
      c.lookup<boolean>('ec2', 'DescribeVpcAttribute', async () =>
        Boolean(
          (
            await c.caller.call('ec2', 'DescribeVpcAttribute', {
              VpcId: vpcId,
              Attribute: 'enableDnsSupport',
            })
          ).EnableDnsSupport?.Value,
        ),
      ),
      c.lookup<boolean>('ec2', 'DescribeVpcAttribute', async () =>
        Boolean(
          (
            await c.caller.call('ec2', 'DescribeVpcAttribute', {
              VpcId: vpcId,
              Attribute: 'enableDnsHostnames',
            })
          ).EnableDnsHostnames?.Value,
        ),
      ),
      c.lookup<RouteTable[]>('ec2', 'DescribeRouteTables', () => routeTablesFor(c, vpcId, placement.subnets)),
      groupIds.state === 'found'
        ? c.lookup<SecurityGroup[]>('ec2', 'DescribeSecurityGroups', () =>
            paginate(
              c.caller,
              'ec2',
              'DescribeSecurityGroups',
              { GroupIds: groupIds.value },
              'SecurityGroups',
              nextToken,
            ),
          )
        : Promise.resolve(groupIds as Lookup<SecurityGroup[]>),
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
            paginate(
              c.caller,
              'ec2',
              'DescribeSecurityGroups',
              { GroupIds: endpointGroupIds },
              'SecurityGroups',
              nextToken,
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
