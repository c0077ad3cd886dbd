/**
 * What the network checks know of one VPC, read once from the facts: the subnets' routes, security groups,
 * ACLs, endpoints and prefix lists (undefined where the lookup failed), and the questions every path asks
 * of them (which route a subnet takes, which endpoint a service name resolves to).
 */
import type { NetworkAcl, RouteTable, SecurityGroup, Subnet, Vpc, VpcEndpoint } from '@aws-sdk/client-ec2';
import type { Evidence, Facts, Lookup, NetworkFacts } from '../../types.ts';
import type { Findings } from './findings.ts';
import { describeRoute, routeOut, routeTableForSubnet, type RouteOut } from './routes.ts';
import type { AnyPrefixList } from './security-groups.ts';
import { interfaceServices, serviceName, type NetworkService, type Target } from './targets.ts';

type PublicIp = 'yes' | 'no' | 'possible';

export interface Context {
  facts: Facts;
  /** What runs in the subnets, for the findings' words. */
  who: 'task' | 'build';
  /**
   * A build that must reach the internet (Docker Hub, a source provider) needs a NAT gateway whatever
   * endpoints there are: then a missing route, not a missing endpoint, is the hop at fault.
   */
  internetFirst: boolean;
  net: NetworkFacts;
  region: string;
  vpcId: string;
  subnets: Subnet[];
  routeTables: RouteTable[] | undefined;
  taskGroups: SecurityGroup[] | undefined;
  acls: NetworkAcl[] | undefined;
  /** Endpoints in the task's VPC; undefined when they could not be listed. */
  endpoints: VpcEndpoint[] | undefined;
  /** Endpoints the lookup returned for other VPCs (not usable from this one without more plumbing). */
  foreignEndpoints: VpcEndpoint[];
  endpointGroups: SecurityGroup[] | undefined;
  prefixLists: AnyPrefixList[];
  dnsSupport: boolean | undefined;
  dnsHostnames: boolean | undefined;
  vpcCidrs: string[];
  s3PrefixListId: string | undefined;
  s3Cidrs: string[] | undefined;
  publicIp: PublicIp;
  /** The VPC already reaches AWS services through endpoints, so a missing one is the thing to add. */
  endpointMode: boolean;
  findings: Findings;
  /** NACL rule numbers proposed so far, per `acl|direction`, so that two fixes never take the same number. */
  proposedRules: Map<string, Map<string, number>>;
}

export function networkContext(
  facts: Facts,
  net: NetworkFacts,
  targets: readonly Target[],
  findings: Findings,
): Context {
  const region = net.region || facts.region;
  const allEndpoints = known(net.endpoints);
  const prefixLists = known(net.prefixLists) ?? [];
  const endpoints = allEndpoints?.filter((endpoint) => (endpoint.VpcId ?? net.vpcId) === net.vpcId);
  const routeTables = known(net.routeTables);
  const s3List = prefixLists.find((candidate) => candidate.PrefixListName === serviceName(region, 's3'));
  const s3Cidrs =
    s3List !== undefined && 'Cidrs' in s3List && s3List.Cidrs?.length ? s3List.Cidrs : undefined;
  return {
    facts,
    who: facts.launchType === 'CODEBUILD' ? 'build' : 'task',
    internetFirst: facts.launchType === 'CODEBUILD' && targets.some((target) => target.kind === 'internet'),
    net,
    region,
    vpcId: net.vpcId,
    subnets: known(net.subnets) ?? [],
    routeTables,
    taskGroups: known(net.securityGroups),
    acls: known(net.networkAcls),
    endpoints,
    foreignEndpoints: (allEndpoints ?? []).filter((endpoint) => !(endpoints ?? []).includes(endpoint)),
    endpointGroups: known(net.endpointSecurityGroups),
    prefixLists,
    dnsSupport: knownFlag(net.dnsSupport),
    dnsHostnames: knownFlag(net.dnsHostnames),
    vpcCidrs: vpcCidrsOf(net.vpc.state === 'found' ? net.vpc.value : undefined),
    s3PrefixListId: s3List?.PrefixListId ?? s3GatewayPrefixList(endpoints, routeTables, region),
    s3Cidrs,
    publicIp: publicIpOf(facts, net),
    endpointMode: (endpoints ?? []).some((endpoint) => endpointService(endpoint, region) !== undefined),
    findings,
    proposedRules: new Map(),
  };
}

function vpcCidrsOf(vpc: Vpc | undefined): string[] {
  return [
    ...new Set(
      [
        vpc?.CidrBlock,
        ...(vpc?.CidrBlockAssociationSet ?? []).map((association) => association.CidrBlock),
      ].filter((cidr): cidr is string => cidr !== undefined),
    ),
  ];
}

/** The S3 prefix list id also shows on the gateway endpoint's route, when the list itself was not fetched. */
function s3GatewayPrefixList(
  endpoints: VpcEndpoint[] | undefined,
  routeTables: RouteTable[] | undefined,
  region: string,
): string | undefined {
  const s3GatewayIds = (endpoints ?? [])
    .filter((endpoint) => isType(endpoint, 'gateway') && endpointService(endpoint, region) === 's3')
    .map((endpoint) => endpoint.VpcEndpointId);
  return (routeTables ?? [])
    .flatMap((table) => table.Routes ?? [])
    .find((route) => route.DestinationPrefixListId && s3GatewayIds.includes(route.GatewayId))
    ?.DestinationPrefixListId;
}

/** The security groups of what runs in the subnets, as a title starts with them. */
export function groupsOf(ctx: Context): string {
  return ctx.who === 'build' ? "The build's security groups" : 'Task security groups';
}

export function known<T>(lookup: Lookup<T[]>): T[] | undefined {
  if (lookup.state === 'found') return lookup.value;
  return lookup.state === 'missing' ? [] : undefined;
}

function knownFlag(lookup: Lookup<boolean>): boolean | undefined {
  return lookup.state === 'found' ? lookup.value : undefined;
}

export function endpointService(endpoint: VpcEndpoint, region: string): NetworkService | undefined {
  const name = endpoint.ServiceName ?? '';
  const services: readonly NetworkService[] = [...interfaceServices, 's3'];
  // China regions name some services `cn.com.amazonaws.<region>.<service>`.
  return services.find(
    (service) => name.endsWith(`.${region}.${service}`) && name.includes('com.amazonaws.'),
  );
}

export const isAvailable = (endpoint: VpcEndpoint): boolean => endpoint.State?.toLowerCase() === 'available';
export const isType = (endpoint: VpcEndpoint, type: 'interface' | 'gateway'): boolean =>
  endpoint.VpcEndpointType?.toLowerCase() === type;

function publicIpOf(facts: Facts, net: NetworkFacts): PublicIp {
  switch (facts.launchType) {
    case 'FARGATE':
      return net.assignPublicIp ? 'yes' : 'no';
    case 'CODEBUILD':
      // CodeBuild never gives a build in a VPC a public address.
      return 'no';
    case 'EC2':
      // awsvpc task interfaces on EC2 never get a public IP; other modes use the instance's address.
      return facts.taskDefinition?.networkMode === 'awsvpc' ? 'no' : 'possible';
    default:
      return net.assignPublicIp ? 'yes' : 'possible';
  }
}

/** A subnet's route table and where its default route goes. */
export interface SubnetRoute {
  table: RouteTable;
  out: RouteOut;
}

export function subnetFamily(subnet: Subnet): 4 | 6 {
  return subnet.Ipv6Native ? 6 : 4;
}

export function routeOf(ctx: Context, subnet: Subnet): SubnetRoute | undefined {
  if (ctx.routeTables === undefined || subnet.SubnetId === undefined) return undefined;
  const table = routeTableForSubnet(subnet.SubnetId, ctx.routeTables);
  if (table === undefined) return undefined;
  return { table, out: routeOut(table, subnetFamily(subnet)) };
}

/** Whether the default route carries traffic to the internet (or beyond the VPC) for this workload. */
export function routeWorks(ctx: Context, out: RouteOut): boolean {
  switch (out.kind) {
    case 'none':
    case 'blackhole':
      return false;
    case 'internet-gateway':
      return ctx.publicIp !== 'no';
    default:
      return true;
  }
}

export function interfaceEndpointFor(ctx: Context, service: NetworkService): VpcEndpoint | undefined {
  const candidates = (ctx.endpoints ?? []).filter(
    (endpoint) => isType(endpoint, 'interface') && endpointService(endpoint, ctx.region) === service,
  );
  return (
    candidates.find((endpoint) => isAvailable(endpoint) && endpoint.PrivateDnsEnabled) ??
    candidates.find(isAvailable) ??
    candidates[0]
  );
}

/** An interface endpoint the service's public name resolves to (DNS attributes unknown count as on). */
export function endpointCarriesTraffic(
  ctx: Context,
  endpoint: VpcEndpoint | undefined,
): endpoint is VpcEndpoint {
  return (
    endpoint !== undefined &&
    isAvailable(endpoint) &&
    endpoint.PrivateDnsEnabled === true &&
    ctx.dnsSupport !== false &&
    ctx.dnsHostnames !== false
  );
}

/** The subnets an endpoint has interfaces in, with their ranges (the VPC's for subnets doctor did not read). */
export function endpointSubnetCidrs(
  ctx: Context,
  endpoint: VpcEndpoint,
): { subnetId: string; cidr: string }[] {
  return (endpoint.SubnetIds ?? []).flatMap((subnetId) => {
    const known = ctx.subnets.find((subnet) => subnet.SubnetId === subnetId)?.CidrBlock;
    if (known !== undefined) return [{ subnetId, cidr: known }];
    // An endpoint subnet outside the task's: its range is somewhere in the VPC.
    return ctx.vpcCidrs.map((cidr) => ({ subnetId, cidr }));
  });
}

export function endpointEvidence(endpoint: VpcEndpoint): Evidence[] {
  const evidence: Evidence[] = [
    {
      label: `endpoint ${endpoint.VpcEndpointId ?? '?'}`,
      value:
        `${endpoint.ServiceName ?? '?'} (${endpoint.VpcEndpointType ?? '?'}, ${endpoint.State ?? '?'}` +
        `${isType(endpoint, 'interface') ? `, private DNS ${endpoint.PrivateDnsEnabled ? 'on' : 'off'}` : ''})`,
    },
  ];
  if (endpoint.PolicyDocument !== undefined && !isDefaultEndpointPolicy(endpoint.PolicyDocument)) {
    evidence.push({
      label: `endpoint ${endpoint.VpcEndpointId ?? '?'} policy`,
      value: 'custom endpoint policy attached (judged by the IAM check)',
    });
  }
  return evidence;
}

function isDefaultEndpointPolicy(document: string): boolean {
  try {
    const parsed = JSON.parse(document) as { Statement?: unknown };
    const statements = Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement];
    return statements.some((statement) => {
      const s = statement as Record<string, unknown>;
      return s.Effect === 'Allow' && s.Action === '*' && s.Resource === '*' && s.Principal === '*';
    });
  } catch {
    return false;
  }
}

export function routeTableEvidence(route: SubnetRoute): Evidence {
  const routes = (route.table.Routes ?? []).map(describeRoute);
  return {
    label: `route table ${route.table.RouteTableId ?? '?'}`,
    value:
      route.out.route === undefined
        ? `no default route (routes: ${routes.join('; ') || 'none'})`
        : `default route ${describeRoute(route.out.route)}`,
  };
}
