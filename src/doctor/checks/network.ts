/**
 * Network checks: for every service the workload must reach (ECR API, ECR registry, the S3 layer bucket,
 * CloudWatch Logs, Secrets Manager, SSM, KMS, internet registries) and from every subnet it may run in,
 * decide which path the traffic takes and what on that path stops it.
 *
 * The path is the one the VPC actually chooses: an interface endpoint when one is available with private
 * DNS on (the service's public name then resolves to the endpoint's addresses), the S3 gateway endpoint
 * when the subnet's route table carries it (its prefix-list route is more specific than any default
 * route), otherwise the default route. On that path the checks look at the route, the task's security
 * group egress, the endpoint's security group ingress, and the network ACLs of both ends (stateless: the
 * request out and the answer back on an ephemeral port).
 *
 * A lookup that failed becomes `network-unchecked` and every conclusion that needed it is withheld: a
 * failed lookup is never a pass, and never a fabricated failure either.
 */
import type {
  IpPermission,
  ManagedPrefixList,
  NetworkAcl,
  NetworkAclEntry,
  PrefixList,
  Route,
  RouteTable,
  SecurityGroup,
  Subnet,
  VpcEndpoint,
} from '@aws-sdk/client-ec2';
import {
  cidrContains as contains,
  cidrCovered as covered,
  cidrHalves as halves,
  cidrOverlaps as overlaps,
  formatCidr,
  parseCidr,
  type Cidr,
} from '../../shared/ip.ts';
import { hopOrder } from '../types.ts';
import type {
  Certainty,
  Check,
  Evidence,
  Facts,
  Finding,
  Fix,
  Hop,
  Lookup,
  NetworkFacts,
  Severity,
} from '../types.ts';

// ---------------------------------------------------------------------------------------------------------
// Addresses

/** Private, shared and reserved IPv4/IPv6 space: never where an internet registry or AWS endpoint lives. */
const nonPublic = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/3',
  'fc00::/7',
  'fe80::/10',
].flatMap((text) => parseCidr(text) ?? []);

// ---------------------------------------------------------------------------------------------------------
// Routes

export type RouteOutKind =
  | 'nat-gateway'
  | 'internet-gateway'
  | 'egress-only-internet-gateway'
  | 'transit-gateway'
  | 'peering'
  | 'nat-instance'
  | 'virtual-private-gateway'
  | 'other'
  | 'blackhole'
  | 'none';

export interface RouteOut {
  kind: RouteOutKind;
  /** The default route that decided, absent for `none`. */
  route?: Route;
  /** Where it points: `nat-…`, `igw-…`, `tgw-…`, … */
  target?: string;
}

/**
 * The route table that governs a subnet: its explicit association, else the VPC's main table. Undefined
 * when neither is among `tables`.
 */
export function routeTableForSubnet(subnetId: string, tables: readonly RouteTable[]): RouteTable | undefined {
  const explicit = tables.find((table) =>
    (table.Associations ?? []).some(
      (association) => association.SubnetId === subnetId && association.AssociationState?.State !== 'failed',
    ),
  );
  return (
    explicit ?? tables.find((table) => (table.Associations ?? []).some((association) => association.Main))
  );
}

/** Where the default route (`0.0.0.0/0`, or `::/0` for IPv6) of a route table sends traffic. */
export function routeOut(table: RouteTable, family: 4 | 6 = 4): RouteOut {
  const destination = family === 4 ? '0.0.0.0/0' : '::/0';
  const route = (table.Routes ?? []).find((candidate) =>
    family === 4
      ? candidate.DestinationCidrBlock === destination
      : candidate.DestinationIpv6CidrBlock === destination,
  );
  if (route === undefined) return { kind: 'none' };
  const target =
    route.NatGatewayId ??
    route.TransitGatewayId ??
    route.VpcPeeringConnectionId ??
    route.EgressOnlyInternetGatewayId ??
    route.NetworkInterfaceId ??
    route.InstanceId ??
    route.GatewayId ??
    route.LocalGatewayId ??
    route.CarrierGatewayId ??
    route.CoreNetworkArn;
  const base = target === undefined ? { route } : { route, target };
  if (route.State === 'blackhole') return { kind: 'blackhole', ...base };
  if (route.NatGatewayId !== undefined) return { kind: 'nat-gateway', ...base };
  if (route.TransitGatewayId !== undefined) return { kind: 'transit-gateway', ...base };
  if (route.VpcPeeringConnectionId !== undefined) return { kind: 'peering', ...base };
  if (route.EgressOnlyInternetGatewayId !== undefined)
    return { kind: 'egress-only-internet-gateway', ...base };
  if (route.NetworkInterfaceId !== undefined || route.InstanceId !== undefined) {
    return { kind: 'nat-instance', ...base };
  }
  if (route.GatewayId?.startsWith('igw-')) return { kind: 'internet-gateway', ...base };
  if (route.GatewayId?.startsWith('vgw-')) return { kind: 'virtual-private-gateway', ...base };
  return { kind: 'other', ...base };
}

function describeRoute(route: Route): string {
  const destination =
    route.DestinationCidrBlock ?? route.DestinationIpv6CidrBlock ?? route.DestinationPrefixListId;
  const target =
    route.NatGatewayId ??
    route.TransitGatewayId ??
    route.VpcPeeringConnectionId ??
    route.EgressOnlyInternetGatewayId ??
    route.NetworkInterfaceId ??
    route.InstanceId ??
    route.GatewayId ??
    route.LocalGatewayId ??
    route.CarrierGatewayId ??
    route.CoreNetworkArn ??
    '?';
  return `${destination ?? '?'} -> ${target}${route.State === 'blackhole' ? ' (blackhole)' : ''}`;
}

// ---------------------------------------------------------------------------------------------------------
// Security groups

/** Where traffic goes, as a security group rule can name it. */
export interface Destination {
  /** Every one of these ranges must be allowed (the peer may be any address in them). */
  cidrs: string[];
  /** A rule naming any of these prefix lists allows the destination. */
  prefixListIds?: string[];
  /** A rule naming any of these security groups allows the destination. */
  groupIds?: string[];
}

type AnyPrefixList = ManagedPrefixList | PrefixList;

function prefixListCidrs(id: string, lists: readonly AnyPrefixList[]): string[] {
  const list = lists.find((candidate) => candidate.PrefixListId === id);
  return list !== undefined && 'Cidrs' in list ? (list.Cidrs ?? []) : [];
}

function permitsTcpPort(permission: IpPermission, port: number): boolean {
  const protocol = permission.IpProtocol?.toLowerCase();
  if (protocol === '-1' || protocol === 'all') return true;
  if (protocol !== 'tcp' && protocol !== '6') return false;
  const from = permission.FromPort ?? 0;
  const to = permission.ToPort ?? 65535;
  // -1 in FromPort/ToPort means all ports.
  return (from === -1 && to === -1) || (from <= port && port <= to);
}

/**
 * Whether the union of `permissions` (one direction, from all the groups that apply) lets TCP `port`
 * through to (or from) `peer`. Protocol `-1` means all traffic; prefix lists count by id, or by their
 * CIDRs when `prefixLists` carries them.
 */
export function securityGroupsAllow(
  permissions: readonly IpPermission[],
  port: number,
  peer: Destination,
  prefixLists: readonly AnyPrefixList[] = [],
): boolean {
  const ranges: string[] = [];
  for (const permission of permissions) {
    if (!permitsTcpPort(permission, port)) continue;
    if ((permission.UserIdGroupPairs ?? []).some((pair) => peer.groupIds?.includes(pair.GroupId ?? ''))) {
      return true;
    }
    for (const entry of permission.PrefixListIds ?? []) {
      if (entry.PrefixListId === undefined) continue;
      if (peer.prefixListIds?.includes(entry.PrefixListId)) return true;
      ranges.push(...prefixListCidrs(entry.PrefixListId, prefixLists));
    }
    for (const range of permission.IpRanges ?? []) if (range.CidrIp) ranges.push(range.CidrIp);
    for (const range of permission.Ipv6Ranges ?? []) if (range.CidrIpv6) ranges.push(range.CidrIpv6);
  }
  const parsed = ranges.flatMap((range) => parseCidr(range) ?? []);
  return (
    peer.cidrs.length > 0 &&
    peer.cidrs.every((text) => {
      const target = parseCidr(text);
      return target !== undefined && covered(target, parsed);
    })
  );
}

function anyRuleForPort(permissions: readonly IpPermission[], port: number): boolean {
  return permissions.some((permission) => permitsTcpPort(permission, port));
}

/** A rule as the console would show it: `tcp 443 to 10.0.0.0/16, pl-63a5400a`. */
export function describePermission(permission: IpPermission, direction: 'to' | 'from'): string {
  const protocol = permission.IpProtocol === '-1' ? 'all traffic' : (permission.IpProtocol ?? '?');
  const from = permission.FromPort;
  const to = permission.ToPort;
  const ports =
    permission.IpProtocol === '-1' || from === undefined || from === -1
      ? ''
      : from === to
        ? ` ${from}`
        : ` ${from}-${to ?? from}`;
  const peers = [
    ...(permission.IpRanges ?? []).map((range) => range.CidrIp),
    ...(permission.Ipv6Ranges ?? []).map((range) => range.CidrIpv6),
    ...(permission.PrefixListIds ?? []).map((entry) => entry.PrefixListId),
    ...(permission.UserIdGroupPairs ?? []).map((pair) => pair.GroupId),
  ].filter((peer): peer is string => peer !== undefined);
  return `${protocol}${ports} ${direction} ${peers.length > 0 ? peers.join(', ') : '(nothing)'}`;
}

function groupRulesEvidence(groups: readonly SecurityGroup[], direction: 'egress' | 'ingress'): Evidence[] {
  return groups.map((group) => {
    const permissions = (direction === 'egress' ? group.IpPermissionsEgress : group.IpPermissions) ?? [];
    return {
      label: `security group ${group.GroupId ?? '?'} ${direction}`,
      value:
        permissions.length === 0
          ? 'no rules'
          : permissions.map((p) => describePermission(p, direction === 'egress' ? 'to' : 'from')).join('; '),
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Network ACLs

export interface NaclDenial {
  /** The addresses the decision applies to (a part of the peer range when a narrower rule decided). */
  cidr: string;
  from: number;
  to: number;
  /** The rule that denied; `*` for the implicit default deny. */
  ruleNumber: number | '*';
}

type PortInterval = [number, number];

function subtractPorts(ports: readonly PortInterval[], [from, to]: PortInterval): PortInterval[] {
  return ports.flatMap(([a, b]): PortInterval[] => {
    if (to < a || from > b) return [[a, b]];
    const out: PortInterval[] = [];
    if (a < from) out.push([a, from - 1]);
    if (to < b) out.push([to + 1, b]);
    return out;
  });
}

function intersectPorts(ports: readonly PortInterval[], [from, to]: PortInterval): PortInterval[] {
  return ports.flatMap(([a, b]): PortInterval[] => {
    const low = Math.max(a, from);
    const high = Math.min(b, to);
    return low <= high ? [[low, high]] : [];
  });
}

function naclEntryProtocolMatches(entry: NetworkAclEntry, protocol: 'tcp' | 'udp'): boolean {
  const value = entry.Protocol?.toLowerCase();
  if (value === '-1' || value === 'all') return true;
  return protocol === 'tcp' ? value === '6' || value === 'tcp' : value === '17' || value === 'udp';
}

/**
 * The parts of (`peer`, TCP/UDP ports `from`-`to`) that a network ACL denies in one direction, evaluated
 * as AWS does: rules in ascending rule number, the first rule matching a packet decides, and what no rule
 * matches is denied. An empty answer means everything passes.
 */
export function naclDenials(
  acl: NetworkAcl,
  direction: 'egress' | 'ingress',
  peer: string,
  from: number,
  to: number,
  protocol: 'tcp' | 'udp' = 'tcp',
): NaclDenial[] {
  const target = parseCidr(peer);
  if (target === undefined) return [];
  const entries = (acl.Entries ?? [])
    .filter((entry) => (entry.Egress ?? false) === (direction === 'egress'))
    .filter((entry) => naclEntryProtocolMatches(entry, protocol))
    .flatMap((entry) => {
      const range = parseCidr((target.family === 4 ? entry.CidrBlock : entry.Ipv6CidrBlock) ?? '');
      return range === undefined ? [] : [{ entry, range }];
    })
    .sort((a, b) => (a.entry.RuleNumber ?? 0) - (b.entry.RuleNumber ?? 0));
  const denials: NaclDenial[] = [];
  const walk = (cidr: Cidr, ports: PortInterval[], start: number): void => {
    let remaining = ports;
    for (let index = start; index < entries.length; index++) {
      const { entry, range } = entries[index]!;
      if (!overlaps(range, cidr)) continue;
      const rulePorts: PortInterval =
        entry.Protocol === '-1' || entry.PortRange === undefined
          ? [0, 65535]
          : [entry.PortRange.From ?? 0, entry.PortRange.To ?? 65535];
      const hit = intersectPorts(remaining, rulePorts);
      if (hit.length === 0) continue;
      if (!contains(range, cidr)) {
        // The rule matches only part of the range: decide each half on its own from this rule on.
        const [low, high] = halves(cidr);
        walk(low, remaining, index);
        walk(high, remaining, index);
        return;
      }
      if (entry.RuleAction === 'deny') {
        const ruleNumber = entry.RuleNumber ?? '*';
        for (const [a, b] of hit) denials.push({ cidr: formatCidr(cidr), from: a, to: b, ruleNumber });
      }
      remaining = subtractPorts(remaining, rulePorts);
      if (remaining.length === 0) return;
    }
    for (const [a, b] of remaining) denials.push({ cidr: formatCidr(cidr), from: a, to: b, ruleNumber: '*' });
  };
  walk(target, [[from, to]], 0);
  return denials;
}

export function naclForSubnet(subnetId: string, acls: readonly NetworkAcl[]): NetworkAcl | undefined {
  return acls.find((acl) =>
    (acl.Associations ?? []).some((association) => association.SubnetId === subnetId),
  );
}

// ---------------------------------------------------------------------------------------------------------
// What is needed

type AwsService = 'ecr.api' | 'ecr.dkr' | 's3' | 'logs' | 'secretsmanager' | 'ssm' | 'kms' | 'git-codecommit';
const interfaceServices: readonly AwsService[] = [
  'ecr.api',
  'ecr.dkr',
  'logs',
  'secretsmanager',
  'ssm',
  'kms',
  'git-codecommit',
];

type Target =
  | { kind: 'aws'; service: AwsService; hop: Hop; name: string }
  | { kind: 'internet'; host: string; port: number; hop: Hop; name: string };

const serviceHop: Record<AwsService, Hop> = {
  'ecr.api': 'registry-auth',
  'ecr.dkr': 'manifest',
  s3: 'layers',
  logs: 'logs',
  secretsmanager: 'secrets',
  ssm: 'secrets',
  kms: 'secrets',
  'git-codecommit': 'build',
};

/** Fargate platform versions before 1.4.0 fetch the ECR token outside the task's network interface. */
function fargateNeedsEcrApi(facts: Facts): boolean {
  if (facts.launchType !== 'FARGATE') return true;
  const match = /^(\d+)\.(\d+)/.exec(facts.platformVersion ?? '');
  if (match === null) return true;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > 1 || (major === 1 && minor >= 4);
}

function targetsOf(facts: Facts): Target[] {
  const { needs } = facts;
  const wanted: [boolean, AwsService][] = [
    [needs.ecrApi && fargateNeedsEcrApi(facts), 'ecr.api'],
    [needs.ecrDkr, 'ecr.dkr'],
    [needs.s3Layers || needs.s3Source === true, 's3'],
    [needs.logs, 'logs'],
    [needs.secretsmanager, 'secretsmanager'],
    [needs.ssm, 'ssm'],
    [needs.kms, 'kms'],
    [needs.codecommit === true, 'git-codecommit'],
  ];
  const targets: Target[] = wanted
    .filter(([needed]) => needed)
    .map(([, service]) => ({
      kind: 'aws',
      service,
      // S3 for a build's source alone is part of the build, not of a pull's layers.
      hop: service === 's3' && !needs.s3Layers ? 'build' : serviceHop[service],
      name: service,
    }));
  for (const registry of new Set(needs.internetRegistries)) {
    const match = /^(.*):(\d+)$/.exec(registry);
    const host = match?.[1] ?? registry;
    const port = match?.[2] === undefined ? 443 : Number(match[2]);
    targets.push({ kind: 'internet', host, port, hop: 'manifest', name: registry });
  }
  for (const host of new Set(needs.sourceHosts ?? [])) {
    if (!targets.some((target) => target.kind === 'internet' && target.host === host)) {
      targets.push({ kind: 'internet', host, port: 443, hop: 'build', name: host });
    }
  }
  return targets;
}

function targetPort(target: Target): number {
  return target.kind === 'internet' ? target.port : 443;
}

// ---------------------------------------------------------------------------------------------------------
// Findings, merged across subnets and services

type PathKind = 'internet' | 'endpoint' | 's3-gateway';

interface Draft {
  id: string;
  cause: string;
  severity: Severity;
  certainty: Certainty;
  hops: Set<Hop>;
  targets: string[];
  subnets: string[];
  /** Address ranges the finding is about, gathered across merges (NACL findings). */
  peers: string[];
  title: (targets: string, peers: string) => string;
  detail: (targets: string, subnets: string, peers: string) => string;
  evidence: Evidence[];
  fixes: Fix[];
}

type DraftSpec = Omit<Draft, 'hops' | 'targets' | 'subnets' | 'peers'> & { peers?: string[] };

const severityRank: Record<Severity, number> = { error: 0, warning: 1, unchecked: 2, info: 3 };
const certaintyRank: Record<Certainty, number> = { certain: 0, likely: 1, possible: 2 };

function list(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

class Findings {
  readonly drafts = new Map<string, Draft>();

  add(key: string, spec: DraftSpec, target: Target | undefined, subnetId: string | undefined): void {
    let draft = this.drafts.get(key);
    if (draft === undefined) {
      draft = { ...spec, hops: new Set(), targets: [], subnets: [], peers: [], evidence: [], fixes: [] };
      this.drafts.set(key, draft);
    } else {
      if (severityRank[spec.severity] < severityRank[draft.severity]) draft.severity = spec.severity;
      if (certaintyRank[spec.certainty] < certaintyRank[draft.certainty]) draft.certainty = spec.certainty;
    }
    if (target !== undefined) {
      draft.hops.add(target.hop);
      if (!draft.targets.includes(target.name)) draft.targets.push(target.name);
    }
    if (subnetId !== undefined && !draft.subnets.includes(subnetId)) draft.subnets.push(subnetId);
    for (const peer of spec.peers ?? []) if (!draft.peers.includes(peer)) draft.peers.push(peer);
    for (const item of spec.evidence) {
      if (!draft.evidence.some((seen) => seen.label === item.label && seen.value === item.value)) {
        draft.evidence.push(item);
      }
    }
    for (const fix of spec.fixes) {
      if (!draft.fixes.some((seen) => seen.summary === fix.summary && seen.content === fix.content)) {
        draft.fixes.push(fix);
      }
    }
  }

  result(fallbackHop: Hop): Finding[] {
    return [...this.drafts.values()].map((draft) => {
      const targets = list(draft.targets);
      const subnets = list(draft.subnets);
      const peers = list(draft.peers);
      return {
        id: draft.id,
        cause: draft.cause,
        hop: hopOrder.find((hop) => draft.hops.has(hop)) ?? fallbackHop,
        severity: draft.severity,
        certainty: draft.certainty,
        title: draft.title(targets, peers),
        detail: draft.detail(targets, subnets, peers),
        evidence: [...draft.subnets.map((value) => ({ label: 'subnet', value })), ...draft.evidence],
        fixes: draft.fixes,
      };
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The check

type PublicIp = 'yes' | 'no' | 'possible';

interface Context {
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

/** The security groups of what runs in the subnets, as a title starts with them. */
function groupsOf(ctx: Context): string {
  return ctx.who === 'build' ? "The build's security groups" : 'Task security groups';
}

function known<T>(lookup: Lookup<T[]>): T[] | undefined {
  if (lookup.state === 'found') return lookup.value;
  return lookup.state === 'missing' ? [] : undefined;
}

function knownFlag(lookup: Lookup<boolean>): boolean | undefined {
  return lookup.state === 'found' ? lookup.value : undefined;
}

const serviceName = (region: string, service: AwsService): string => `com.amazonaws.${region}.${service}`;

function endpointService(endpoint: VpcEndpoint, region: string): AwsService | undefined {
  const name = endpoint.ServiceName ?? '';
  const services: readonly AwsService[] = [...interfaceServices, 's3'];
  // China regions name some services `cn.com.amazonaws.<region>.<service>`.
  return services.find(
    (service) => name.endsWith(`.${region}.${service}`) && name.includes('com.amazonaws.'),
  );
}

const isAvailable = (endpoint: VpcEndpoint): boolean => endpoint.State?.toLowerCase() === 'available';
const isType = (endpoint: VpcEndpoint, type: 'interface' | 'gateway'): boolean =>
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

const lookupNames: { field: keyof NetworkFacts; what: string; service: string; operation: string }[] = [
  { field: 'vpc', what: 'the VPC', service: 'ec2', operation: 'DescribeVpcs' },
  {
    field: 'dnsSupport',
    what: 'the VPC DNS support attribute',
    service: 'ec2',
    operation: 'DescribeVpcAttribute',
  },
  {
    field: 'dnsHostnames',
    what: 'the VPC DNS hostnames attribute',
    service: 'ec2',
    operation: 'DescribeVpcAttribute',
  },
  { field: 'subnets', what: 'the subnets', service: 'ec2', operation: 'DescribeSubnets' },
  { field: 'routeTables', what: 'the route tables', service: 'ec2', operation: 'DescribeRouteTables' },
  {
    field: 'securityGroups',
    what: "the task's security groups",
    service: 'ec2',
    operation: 'DescribeSecurityGroups',
  },
  { field: 'networkAcls', what: 'the network ACLs', service: 'ec2', operation: 'DescribeNetworkAcls' },
  { field: 'endpoints', what: 'the VPC endpoints', service: 'ec2', operation: 'DescribeVpcEndpoints' },
  {
    field: 'endpointSecurityGroups',
    what: "the VPC endpoints' security groups",
    service: 'ec2',
    operation: 'DescribeSecurityGroups',
  },
  { field: 'prefixLists', what: 'the prefix lists', service: 'ec2', operation: 'DescribePrefixLists' },
];

export const networkCheck: Check = (facts) => {
  const net = facts.network;
  if (net === undefined) return [];
  const targets = targetsOf(facts);
  const fallbackHop = hopOrder.find((hop) => targets.some((target) => target.hop === hop)) ?? 'manifest';
  const findings = new Findings();

  for (const { field, what, service, operation } of lookupNames) {
    const lookup = net[field] as Lookup<unknown>;
    if (lookup.state !== 'failed') continue;
    const failure = lookup.failure;
    const call = `${failure.service || service}:${failure.operation || operation}`;
    findings.add(
      `network-unchecked|${field}`,
      {
        id: 'network-unchecked',
        cause: 'network-no-route',
        severity: 'unchecked',
        certainty: 'certain',
        title: () => `Could not check ${what}: ${call} failed (${failure.code})`,
        detail: () =>
          `${call} failed with ${failure.code}: ${failure.message}. Every network conclusion that depends on ` +
          `${what} was skipped; allow ${failure.service || service}:${failure.operation || operation} to the ` +
          'caller (it is read-only) and run doctor again.',
        evidence: [{ label: 'failed call', value: `${call} ${failure.code}` }],
        fixes: [],
      },
      undefined,
      undefined,
    );
  }
  if (targets.length === 0) return findings.result(fallbackHop);

  const region = net.region || facts.region;
  const allEndpoints = known(net.endpoints);
  const prefixLists = known(net.prefixLists) ?? [];
  const vpc = net.vpc.state === 'found' ? net.vpc.value : undefined;
  const vpcCidrs = [
    ...new Set(
      [
        vpc?.CidrBlock,
        ...(vpc?.CidrBlockAssociationSet ?? []).map((association) => association.CidrBlock),
      ].filter((cidr): cidr is string => cidr !== undefined),
    ),
  ];
  const s3List = prefixLists.find((candidate) => candidate.PrefixListName === serviceName(region, 's3'));
  const endpoints = allEndpoints?.filter((endpoint) => (endpoint.VpcId ?? net.vpcId) === net.vpcId);
  const s3GatewayIds = (endpoints ?? [])
    .filter((endpoint) => isType(endpoint, 'gateway') && endpointService(endpoint, region) === 's3')
    .map((endpoint) => endpoint.VpcEndpointId);
  const routeTables = known(net.routeTables);
  // The S3 prefix list id also shows on the gateway endpoint's route, when the list itself was not fetched.
  const s3RoutePrefixList = (routeTables ?? [])
    .flatMap((table) => table.Routes ?? [])
    .find(
      (route) => route.DestinationPrefixListId && s3GatewayIds.includes(route.GatewayId),
    )?.DestinationPrefixListId;
  const s3Cidrs =
    s3List !== undefined && 'Cidrs' in s3List && s3List.Cidrs?.length ? s3List.Cidrs : undefined;

  const ctx: Context = {
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
    vpcCidrs,
    s3PrefixListId: s3List?.PrefixListId ?? s3RoutePrefixList,
    s3Cidrs,
    publicIp: publicIpOf(facts, net),
    endpointMode: (endpoints ?? []).some((endpoint) => endpointService(endpoint, region) !== undefined),
    findings,
    proposedRules: new Map(),
  };

  if (ctx.dnsSupport === false) vpcDnsOff(ctx, undefined, undefined, 'likely');

  for (const subnet of ctx.subnets) {
    for (const target of targets) {
      if (target.kind === 'internet') checkInternetTarget(ctx, target, subnet);
      else if (target.service === 's3') checkS3(ctx, target, subnet);
      else checkInterfaceService(ctx, target, subnet);
    }
  }
  return findings.result(fallbackHop);
};

// ---------------------------------------------------------------------------------------------------------
// Paths

interface SubnetRoute {
  table: RouteTable;
  out: RouteOut;
}

function subnetFamily(subnet: Subnet): 4 | 6 {
  return subnet.Ipv6Native ? 6 : 4;
}

function routeOf(ctx: Context, subnet: Subnet): SubnetRoute | undefined {
  if (ctx.routeTables === undefined || subnet.SubnetId === undefined) return undefined;
  const table = routeTableForSubnet(subnet.SubnetId, ctx.routeTables);
  if (table === undefined) return undefined;
  return { table, out: routeOut(table, subnetFamily(subnet)) };
}

/** Whether the default route carries traffic to the internet (or beyond the VPC) for this workload. */
function routeWorks(ctx: Context, out: RouteOut): boolean {
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

function interfaceEndpointFor(ctx: Context, service: AwsService): VpcEndpoint | undefined {
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
function endpointCarriesTraffic(ctx: Context, endpoint: VpcEndpoint | undefined): endpoint is VpcEndpoint {
  return (
    endpoint !== undefined &&
    isAvailable(endpoint) &&
    endpoint.PrivateDnsEnabled === true &&
    ctx.dnsSupport !== false &&
    ctx.dnsHostnames !== false
  );
}

function checkInterfaceService(ctx: Context, target: Target & { kind: 'aws' }, subnet: Subnet): void {
  if (ctx.endpoints === undefined) return;
  const endpoint = interfaceEndpointFor(ctx, target.service);
  if (endpointCarriesTraffic(ctx, endpoint)) {
    checkEndpointPath(ctx, target, subnet, endpoint);
    return;
  }
  const route = routeOf(ctx, subnet);
  if (route === undefined) return;
  if (routeWorks(ctx, route.out)) {
    checkInternetPath(ctx, target, subnet, route);
    return;
  }
  if (endpoint !== undefined) {
    endpointUnusable(ctx, target, subnet, endpoint, route);
    return;
  }
  noPath(ctx, target, subnet, route);
}

function checkS3(ctx: Context, target: Target & { kind: 'aws' }, subnet: Subnet): void {
  const route = routeOf(ctx, subnet);
  const gateways = (ctx.endpoints ?? []).filter(
    (endpoint) => isType(endpoint, 'gateway') && endpointService(endpoint, ctx.region) === 's3',
  );
  if (route !== undefined) {
    const tableId = route.table.RouteTableId ?? '';
    const onTable = gateways.find((gateway) => gateway.RouteTableIds?.includes(tableId));
    const gatewayRoute = (route.table.Routes ?? []).find(
      (candidate) =>
        candidate.DestinationPrefixListId !== undefined &&
        candidate.GatewayId?.startsWith('vpce-') &&
        (candidate.DestinationPrefixListId === ctx.s3PrefixListId ||
          gateways.some((gateway) => gateway.VpcEndpointId === candidate.GatewayId)),
    );
    if (gatewayRoute?.State === 'blackhole' && onTable === undefined) {
      blackholeRoute(ctx, target, subnet, route, gatewayRoute);
      return;
    }
    if (onTable !== undefined || gatewayRoute !== undefined) {
      checkS3GatewayPath(ctx, target, subnet, route, onTable);
      return;
    }
  }
  if (ctx.endpoints === undefined) return;
  const endpoint = interfaceEndpointFor(ctx, 's3');
  if (endpointCarriesTraffic(ctx, endpoint)) {
    checkEndpointPath(ctx, target, subnet, endpoint);
    return;
  }
  if (route === undefined) return;
  if (routeWorks(ctx, route.out)) {
    checkInternetPath(ctx, target, subnet, route);
    return;
  }
  const gateway = gateways[0];
  if (gateway !== undefined) {
    s3GatewayNotOnTable(ctx, target, subnet, route, gateway);
    return;
  }
  noPath(ctx, target, subnet, route);
}

function checkInternetTarget(ctx: Context, target: Target & { kind: 'internet' }, subnet: Subnet): void {
  const route = routeOf(ctx, subnet);
  if (route === undefined) return;
  if (routeWorks(ctx, route.out)) checkInternetPath(ctx, target, subnet, route);
  else noPath(ctx, target, subnet, route);
}

// --- the internet path (NAT, IGW, TGW, …)

function checkInternetPath(ctx: Context, target: Target, subnet: Subnet, route: SubnetRoute): void {
  const subnetId = subnet.SubnetId ?? '?';
  const family = subnetFamily(subnet);
  const anywhere = family === 4 ? '0.0.0.0/0' : '::/0';
  const isS3 = target.kind === 'aws' && target.service === 's3';
  if (route.out.kind === 'internet-gateway' && ctx.publicIp === 'possible' && !subnet.MapPublicIpOnLaunch) {
    publicIpMissing(ctx, target, subnet, route, 'warning', 'possible');
  }
  const port = targetPort(target);
  // S3 through NAT: the S3 prefix list (or its ranges) is as good as "anywhere".
  const peer: Destination = isS3
    ? {
        cidrs: ctx.s3Cidrs ?? [anywhere],
        prefixListIds: ctx.s3PrefixListId === undefined ? [] : [ctx.s3PrefixListId],
      }
    : { cidrs: [anywhere] };
  if (ctx.taskGroups !== undefined && ctx.taskGroups.length > 0) {
    const egress = ctx.taskGroups.flatMap((group) => group.IpPermissionsEgress ?? []);
    if (!securityGroupsAllow(egress, port, peer, ctx.prefixLists)) {
      const group = ctx.taskGroups[0]?.GroupId ?? '?';
      const ids = ctx.taskGroups.map((g) => g.GroupId ?? '?');
      ctx.findings.add(
        `sg-egress-blocks|internet|${port}`,
        {
          id: 'sg-egress-blocks',
          cause: 'network-no-route',
          severity: 'error',
          certainty: anyRuleForPort(egress, port) ? 'likely' : 'certain',
          title: (names) => `${groupsOf(ctx)} do not allow TCP ${port} out to the internet (${names})`,
          detail: (names, subnets) =>
            `From ${subnets} the default route (${describeRoute(route.out.route ?? {})}) leads out, but no ` +
            `egress rule of ${list(ids)} allows TCP ${port} to ${anywhere}, so connections to ${names} are ` +
            `dropped before they leave the ${ctx.who}. Security groups are stateful: egress is all they need here.`,
          evidence: groupRulesEvidence(ctx.taskGroups, 'egress'),
          fixes: [
            {
              kind: 'aws-cli',
              summary: `Allow TCP ${port} out from ${group} to anywhere`,
              content: authorizeEgress(
                ctx,
                group,
                port,
                family === 4 ? `IpRanges=[{CidrIp=${anywhere}}]` : `Ipv6Ranges=[{CidrIpv6=${anywhere}}]`,
              ),
            },
          ],
        },
        target,
        subnetId,
      );
    }
  }
  // Through NAT or IGW every destination is "the internet", S3 included.
  checkTaskSubnetAcl(ctx, target, subnet, [anywhere], port, 'internet', true);
}

// --- interface endpoints

function endpointSubnetCidrs(ctx: Context, endpoint: VpcEndpoint): { subnetId: string; cidr: string }[] {
  return (endpoint.SubnetIds ?? []).flatMap((subnetId) => {
    const known = ctx.subnets.find((subnet) => subnet.SubnetId === subnetId)?.CidrBlock;
    if (known !== undefined) return [{ subnetId, cidr: known }];
    // An endpoint subnet outside the task's: its range is somewhere in the VPC.
    return ctx.vpcCidrs.map((cidr) => ({ subnetId, cidr }));
  });
}

function endpointEvidence(endpoint: VpcEndpoint): Evidence[] {
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

function checkEndpointPath(ctx: Context, target: Target, subnet: Subnet, endpoint: VpcEndpoint): void {
  const subnetId = subnet.SubnetId ?? '?';
  const endpointId = endpoint.VpcEndpointId ?? '?';
  const endpointGroupIds = (endpoint.Groups ?? []).flatMap((group) => group.GroupId ?? []);
  const taskGroupIds = (ctx.taskGroups ?? []).flatMap((group) => group.GroupId ?? []);

  // The endpoint's security groups must admit 443 from the task.
  const endpointGroups = (ctx.endpointGroups ?? []).filter((group) =>
    endpointGroupIds.includes(group.GroupId ?? ''),
  );
  if (endpointGroups.length > 0 && subnet.CidrBlock !== undefined) {
    const ingress = endpointGroups.flatMap((group) => group.IpPermissions ?? []);
    const from: Destination = { cidrs: [subnet.CidrBlock], groupIds: taskGroupIds };
    if (!securityGroupsAllow(ingress, 443, from, ctx.prefixLists)) {
      const group = endpointGroups[0]?.GroupId ?? '?';
      const source =
        taskGroupIds.length > 0
          ? `UserIdGroupPairs=[${taskGroupIds.map((id) => `{GroupId=${id}}`).join(',')}]`
          : `IpRanges=[{CidrIp=${subnet.CidrBlock}}]`;
      ctx.findings.add(
        `endpoint-sg-no-443|${endpointId}`,
        {
          id: 'endpoint-sg-no-443',
          cause: 'network-vpc-endpoint',
          severity: 'error',
          certainty: 'certain',
          title: () =>
            `Endpoint ${endpointId} (${endpointServiceLabel(endpoint)}) does not admit HTTPS from the ${ctx.who}`,
          detail: (names, subnets) =>
            `The name of ${names} resolves to ${endpointId}, but no inbound rule of its security groups ` +
            `${list(endpointGroupIds)} allows TCP 443 from the ${ctx.who} (subnet ${subnets}, security groups ` +
            `${list(taskGroupIds)}), so connections time out (dial tcp <private ip>:443: i/o timeout).`,
          evidence: [...endpointEvidence(endpoint), ...groupRulesEvidence(endpointGroups, 'ingress')],
          fixes: [
            {
              kind: 'aws-cli',
              summary: `Allow TCP 443 into ${group} from the ${ctx.who}`,
              content:
                `aws ec2 authorize-security-group-ingress --region ${ctx.region} --group-id ${group} ` +
                `--ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,${source}'`,
            },
          ],
        },
        target,
        subnetId,
      );
    }
  }

  // The task's security groups must let 443 out to the endpoint's addresses.
  const endpointPeers = endpointSubnetCidrs(ctx, endpoint);
  const cidrs =
    endpointPeers.length > 0 ? [...new Set(endpointPeers.map((peer) => peer.cidr))] : ctx.vpcCidrs;
  if (
    ctx.taskGroups !== undefined &&
    ctx.taskGroups.length > 0 &&
    (cidrs.length > 0 || endpointGroupIds.length > 0)
  ) {
    const egress = ctx.taskGroups.flatMap((group) => group.IpPermissionsEgress ?? []);
    if (!securityGroupsAllow(egress, 443, { cidrs, groupIds: endpointGroupIds }, ctx.prefixLists)) {
      const group = ctx.taskGroups[0]?.GroupId ?? '?';
      const destination =
        endpointGroupIds.length > 0
          ? `UserIdGroupPairs=[${endpointGroupIds.map((id) => `{GroupId=${id}}`).join(',')}]`
          : `IpRanges=[${cidrs.map((cidr) => `{CidrIp=${cidr}}`).join(',')}]`;
      ctx.findings.add(
        `sg-egress-blocks|endpoint|${endpointId}`,
        {
          id: 'sg-egress-blocks',
          cause: 'network-vpc-endpoint',
          severity: 'error',
          certainty: cidrs.length > 0 && endpointPeers.length > 0 ? 'certain' : 'likely',
          title: () =>
            `${groupsOf(ctx)} do not allow HTTPS out to endpoint ${endpointId} (${endpointServiceLabel(endpoint)})`,
          detail: (names) =>
            `${names} is reached through ${endpointId}, whose addresses are in ${list(cidrs)}; no egress rule ` +
            `of ${list(taskGroupIds)} allows TCP 443 there (by range, or by the endpoint's security groups ` +
            `${list(endpointGroupIds)}).`,
          evidence: [...endpointEvidence(endpoint), ...groupRulesEvidence(ctx.taskGroups, 'egress')],
          fixes: [
            {
              kind: 'aws-cli',
              summary: `Allow TCP 443 out from ${group} to the endpoint`,
              content: authorizeEgress(ctx, group, 443, destination),
            },
          ],
        },
        target,
        subnetId,
      );
    }
  }

  // NACLs on both sides, for endpoint interfaces in other subnets (traffic inside a subnet skips its NACL).
  const remote = endpointPeers.filter((peer) => peer.subnetId !== subnetId);
  if (remote.length > 0) {
    checkTaskSubnetAcl(
      ctx,
      target,
      subnet,
      [...new Set(remote.map((peer) => peer.cidr))],
      443,
      'endpoint',
      false,
    );
  }
  if (ctx.acls !== undefined && subnet.CidrBlock !== undefined) {
    for (const peer of remote) {
      const acl = naclForSubnet(peer.subnetId, ctx.acls);
      if (acl === undefined) continue;
      const ephemeral = ephemeralRange(ctx.facts);
      aclFinding(
        ctx,
        target,
        subnet,
        acl,
        'ingress',
        naclDenials(acl, 'ingress', subnet.CidrBlock, 443, 443),
        {
          peer: subnet.CidrBlock,
          ports: [443, 443],
          path: 'endpoint',
          partialIsPossible: false,
          whose: `the endpoint subnet ${peer.subnetId}`,
        },
      );
      aclFinding(
        ctx,
        target,
        subnet,
        acl,
        'egress',
        naclDenials(acl, 'egress', subnet.CidrBlock, ephemeral[0], ephemeral[1]),
        {
          peer: subnet.CidrBlock,
          ports: ephemeral,
          path: 'endpoint',
          partialIsPossible: false,
          whose: `the endpoint subnet ${peer.subnetId}`,
        },
      );
    }
  }
}

function endpointServiceLabel(endpoint: VpcEndpoint): string {
  return endpoint.ServiceName ?? '?';
}

function endpointUnusable(
  ctx: Context,
  target: Target & { kind: 'aws' },
  subnet: Subnet,
  endpoint: VpcEndpoint,
  route: SubnetRoute,
): void {
  const subnetId = subnet.SubnetId ?? '?';
  const endpointId = endpoint.VpcEndpointId ?? '?';
  const routeEvidence = routeTableEvidence(route);
  if (!isAvailable(endpoint)) {
    ctx.findings.add(
      `endpoint-not-available|${endpointId}`,
      {
        id: 'endpoint-not-available',
        cause: 'network-vpc-endpoint',
        severity: 'error',
        certainty: 'certain',
        title: () =>
          `Endpoint ${endpointId} (${endpoint.ServiceName ?? '?'}) is ${endpoint.State ?? 'not available'}`,
        detail: (names, subnets) =>
          `${names} can only be reached from ${subnets} through ${endpointId} (there is no working default ` +
          `route), and the endpoint is in state ${endpoint.State ?? '?'}` +
          `${endpoint.LastError?.Message ? ` (${endpoint.LastError.Message})` : ''}, not available.`,
        evidence: [...endpointEvidence(endpoint), routeEvidence],
        fixes: [
          {
            kind: 'text',
            summary:
              `Wait for ${endpointId} to become available, or delete and recreate it: ` +
              `aws ec2 describe-vpc-endpoints --region ${ctx.region} --vpc-endpoint-ids ${endpointId} shows its LastError.`,
          },
        ],
      },
      target,
      subnetId,
    );
  }
  if (!endpoint.PrivateDnsEnabled) {
    ctx.findings.add(
      `endpoint-private-dns-off|${endpointId}`,
      {
        id: 'endpoint-private-dns-off',
        cause: 'network-vpc-endpoint',
        severity: 'error',
        certainty: 'certain',
        title: () => `Private DNS is off on endpoint ${endpointId} (${endpoint.ServiceName ?? '?'})`,
        detail: (names, subnets) =>
          `With private DNS off, the public name of ${names} still resolves to public addresses, and ${subnets} ` +
          `has no working route to them; the endpoint ${endpointId} is never used.`,
        evidence: [...endpointEvidence(endpoint), routeEvidence],
        fixes: [
          {
            kind: 'aws-cli',
            summary: `Turn on private DNS for ${endpointId}`,
            content: `aws ec2 modify-vpc-endpoint --region ${ctx.region} --vpc-endpoint-id ${endpointId} --private-dns-enabled`,
          },
        ],
      },
      target,
      subnetId,
    );
  }
  if (ctx.dnsSupport === false || ctx.dnsHostnames === false) {
    vpcDnsOff(ctx, target, subnetId, 'certain', endpoint);
  }
}

function vpcDnsOff(
  ctx: Context,
  target: Target | undefined,
  subnetId: string | undefined,
  certainty: Certainty,
  endpoint?: VpcEndpoint,
): void {
  const off = [
    ...(ctx.dnsSupport === false ? ['enableDnsSupport'] : []),
    ...(ctx.dnsHostnames === false ? ['enableDnsHostnames'] : []),
  ];
  const fixes: Fix[] = [];
  if (ctx.dnsSupport === false) fixes.push(modifyVpcAttribute(ctx, 'support'));
  if (ctx.dnsHostnames === false) fixes.push(modifyVpcAttribute(ctx, 'hostnames'));
  ctx.findings.add(
    'vpc-dns-off',
    {
      id: 'vpc-dns-off',
      cause: 'network-dns',
      severity: 'error',
      certainty,
      title: () => `VPC ${ctx.vpcId} has ${list(off)} turned off`,
      detail: (names) =>
        (ctx.dnsSupport === false
          ? 'With enableDnsSupport off the Amazon-provided resolver does not answer, so registry and AWS names ' +
            'do not resolve (no such host) unless the DHCP options point at another DNS server. '
          : '') +
        'Private DNS of interface endpoints needs both enableDnsSupport and enableDnsHostnames; without them ' +
        `the service names resolve to public addresses${names ? `, so ${names} cannot be reached` : ''}.`,
      evidence: [
        { label: `vpc ${ctx.vpcId} enableDnsSupport`, value: String(ctx.dnsSupport ?? 'unknown') },
        { label: `vpc ${ctx.vpcId} enableDnsHostnames`, value: String(ctx.dnsHostnames ?? 'unknown') },
        ...(endpoint === undefined ? [] : endpointEvidence(endpoint)),
      ],
      fixes,
    },
    target,
    subnetId,
  );
}

function modifyVpcAttribute(ctx: Context, which: 'support' | 'hostnames'): Fix {
  // The API changes one attribute per call.
  const flag = which === 'support' ? '--enable-dns-support' : '--enable-dns-hostnames';
  return {
    kind: 'aws-cli',
    summary: `Turn on DNS ${which} for ${ctx.vpcId}`,
    content: `aws ec2 modify-vpc-attribute --region ${ctx.region} --vpc-id ${ctx.vpcId} ${flag} '{"Value":true}'`,
  };
}

// --- S3 gateway endpoint

function checkS3GatewayPath(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  gateway: VpcEndpoint | undefined,
): void {
  const subnetId = subnet.SubnetId ?? '?';
  const prefixListId = ctx.s3PrefixListId;
  const cidrs = ctx.s3Cidrs ?? ['0.0.0.0/0'];
  if (ctx.taskGroups !== undefined && ctx.taskGroups.length > 0) {
    const egress = ctx.taskGroups.flatMap((group) => group.IpPermissionsEgress ?? []);
    const peer: Destination = { cidrs, prefixListIds: prefixListId === undefined ? [] : [prefixListId] };
    if (!securityGroupsAllow(egress, 443, peer, ctx.prefixLists)) {
      const group = ctx.taskGroups[0]?.GroupId ?? '?';
      const ids = ctx.taskGroups.map((g) => g.GroupId ?? '?');
      const listName = serviceName(ctx.region, 's3');
      const content =
        prefixListId !== undefined
          ? authorizeEgress(ctx, group, 443, `PrefixListIds=[{PrefixListId=${prefixListId}}]`)
          : `PL=$(aws ec2 describe-managed-prefix-lists --region ${ctx.region} --filters Name=prefix-list-name,Values=${listName} ` +
            `--query 'PrefixLists[0].PrefixListId' --output text)\n` +
            authorizeEgress(ctx, group, 443, 'PrefixListIds=[{PrefixListId=$PL}]').replace(/'/g, '"');
      ctx.findings.add(
        'sg-egress-no-s3-prefix-list',
        {
          id: 'sg-egress-no-s3-prefix-list',
          cause: 'network-s3-layers',
          severity: 'error',
          certainty: ctx.s3Cidrs !== undefined || !anyRuleForPort(egress, 443) ? 'certain' : 'likely',
          title: () =>
            `${groupsOf(ctx)} do not allow HTTPS out to the S3 prefix list ${prefixListId ?? listName}`,
          detail: (_names, subnets) =>
            (ctx.facts.needs.s3Layers
              ? `Layers are downloaded from S3 (prod-${ctx.region}-starport-layer-bucket)`
              : "The build's source is downloaded from S3") +
            `, which ${subnets} reaches ` +
            `through the S3 gateway endpoint ${gateway?.VpcEndpointId ?? ''} on ${route.table.RouteTableId ?? '?'}. ` +
            `S3's addresses are public ranges outside the VPC, and no egress rule of ${list(ids)} allows TCP 443 ` +
            `to the prefix list ${prefixListId ?? listName} or to 0.0.0.0/0, so ` +
            (ctx.facts.needs.s3Layers
              ? "the manifest is fetched and the layers time out. AWS's troubleshooting runbook does not check this."
              : 'the download times out.'),
          evidence: [
            ...groupRulesEvidence(ctx.taskGroups, 'egress'),
            ...(prefixListId === undefined
              ? []
              : [{ label: 'S3 prefix list', value: `${prefixListId} (${listName})` }]),
            ...(gateway === undefined ? [] : endpointEvidence(gateway)),
          ],
          fixes: [
            { kind: 'aws-cli', summary: `Allow TCP 443 out from ${group} to the S3 prefix list`, content },
          ],
        },
        target,
        subnetId,
      );
    }
  }
  checkTaskSubnetAcl(ctx, target, subnet, cidrs, 443, 's3-gateway', ctx.s3Cidrs === undefined);
}

function s3GatewayNotOnTable(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  gateway: VpcEndpoint,
): void {
  const gatewayId = gateway.VpcEndpointId ?? '?';
  const tableId = route.table.RouteTableId ?? '?';
  ctx.findings.add(
    `s3-gateway-not-on-route-table|${gatewayId}`,
    {
      id: 's3-gateway-not-on-route-table',
      cause: 'network-s3-layers',
      severity: 'error',
      certainty: 'certain',
      title: () => `S3 gateway endpoint ${gatewayId} is not on the ${ctx.who}'s route table`,
      detail: (_names, subnets) =>
        `${gatewayId} is associated with ${list(gateway.RouteTableIds ?? []) || 'no route table'}, not with the ` +
        `route table of ${subnets}, which has no working default route either: the manifest comes from the ` +
        'ECR endpoints, the layers from S3 never arrive.',
      evidence: [...endpointEvidence(gateway), routeTableEvidence(route)],
      fixes: [
        {
          kind: 'aws-cli',
          summary: `Associate ${gatewayId} with ${tableId}`,
          content: `aws ec2 modify-vpc-endpoint --region ${ctx.region} --vpc-endpoint-id ${gatewayId} --add-route-table-ids ${tableId}`,
        },
      ],
    },
    target,
    subnet.SubnetId,
  );
}

// --- no path at all

function routeTableEvidence(route: SubnetRoute): Evidence {
  const routes = (route.table.Routes ?? []).map(describeRoute);
  return {
    label: `route table ${route.table.RouteTableId ?? '?'}`,
    value:
      route.out.route === undefined
        ? `no default route (routes: ${routes.join('; ') || 'none'})`
        : `default route ${describeRoute(route.out.route)}`,
  };
}

function noPath(ctx: Context, target: Target, subnet: Subnet, route: SubnetRoute): void {
  if (route.out.kind === 'blackhole' && route.out.route !== undefined) {
    blackholeRoute(ctx, target, subnet, route, route.out.route);
    return;
  }
  if (route.out.kind === 'internet-gateway') {
    publicIpMissing(ctx, target, subnet, route, 'error', 'certain');
    return;
  }
  const subnetId = subnet.SubnetId ?? '?';
  const tableId = route.table.RouteTableId ?? '?';
  const nat = natFix(ctx, route, 'create');
  if (target.kind === 'internet') {
    ctx.findings.add(
      `internet-registry-unreachable|${target.name}`,
      {
        id: 'internet-registry-unreachable',
        cause: 'network-no-route',
        severity: 'error',
        certainty: 'certain',
        title: () => `${target.name} is on the internet, and the ${ctx.who} has no route there`,
        detail: (_names, subnets) =>
          `${subnets} has no NAT gateway, internet gateway or transit route (route table ${tableId}); VPC ` +
          `endpoints only reach AWS services, so pulls from ${target.host} time out.`,
        evidence: [routeTableEvidence(route)],
        fixes: [
          nat,
          {
            kind: 'text',
            summary:
              'Or serve the image from ECR, which the endpoints reach: an ECR pull-through cache rule for the ' +
              'registry (Docker Hub official images need the /library/ path), or a copy in a private repository.',
          },
        ],
      },
      target,
      subnetId,
    );
    return;
  }
  const service = target.kind === 'aws' ? target.service : 'ecr.dkr';
  const endpointFix = createEndpointFix(ctx, service);
  if (ctx.endpointMode && !ctx.internetFirst) {
    const id = service === 's3' ? 's3-gateway-missing' : 'endpoint-missing';
    const name = serviceName(ctx.region, service);
    const elsewhere = ctx.foreignEndpoints.filter(
      (endpoint) => endpointService(endpoint, ctx.region) === service,
    );
    const present = (ctx.endpoints ?? [])
      .filter((endpoint) => endpointService(endpoint, ctx.region) !== undefined)
      .map((endpoint) => endpoint.ServiceName ?? '?');
    ctx.findings.add(
      `${id}|${service}`,
      {
        id,
        cause: service === 's3' ? 'network-s3-layers' : 'network-vpc-endpoint',
        severity: 'error',
        certainty: 'certain',
        title: () =>
          service === 's3'
            ? `No S3 gateway endpoint: layers cannot be downloaded`
            : `No ${name} endpoint in ${ctx.vpcId}`,
        detail: (_names, subnets) =>
          `${ctx.vpcId} reaches AWS through endpoints (${list([...new Set(present)])}) and ${subnets} has no ` +
          `working default route (route table ${tableId}), but there is no ${name} ` +
          `${service === 's3' ? 'gateway ' : ''}endpoint` +
          (service === 'ecr.api'
            ? '; Fargate platform 1.4.0 and later fetch the ECR token through the task network, so ecr.dkr alone is not enough'
            : '') +
          (service === 's3' ? '; the manifest is fetched, then the layers (from S3) time out' : '') +
          (elsewhere.length > 0
            ? `; ${list(elsewhere.map((endpoint) => `${endpoint.VpcEndpointId ?? '?'} in ${endpoint.VpcId ?? '?'}`))} ` +
              'is in another VPC'
            : '') +
          '.',
        evidence: [routeTableEvidence(route), ...elsewhere.flatMap(endpointEvidence)],
        fixes: [endpointFix, nat],
      },
      target,
      subnetId,
    );
    return;
  }
  ctx.findings.add(
    `no-route-out|${target.name}`,
    {
      id: 'no-route-out',
      cause: 'network-no-route',
      severity: 'error',
      certainty: 'certain',
      title: (names) => `No route from the ${ctx.who} to ${names}`,
      detail: (names, subnets) =>
        `${subnets} has no NAT gateway, internet gateway or transit route (route table ${tableId}) and ` +
        `${ctx.vpcId} has no VPC endpoint for ${names}, so the connection times out.`,
      evidence: [routeTableEvidence(route)],
      fixes: [nat, endpointFix],
    },
    target,
    subnetId,
  );
}

function blackholeRoute(ctx: Context, target: Target, subnet: Subnet, route: SubnetRoute, dead: Route): void {
  const tableId = route.table.RouteTableId ?? '?';
  const isDefault = dead.DestinationCidrBlock !== undefined || dead.DestinationIpv6CidrBlock !== undefined;
  const fixes: Fix[] = isDefault
    ? [natFix(ctx, route, 'replace')]
    : [
        {
          kind: 'aws-cli',
          summary: `Remove the dead route and attach a working S3 gateway endpoint to ${tableId}`,
          content:
            `aws ec2 delete-route --region ${ctx.region} --route-table-id ${tableId} --destination-prefix-list-id ${dead.DestinationPrefixListId ?? '?'}\n` +
            createEndpointFix(ctx, 's3').content,
        },
      ];
  ctx.findings.add(
    `blackhole-route|${tableId}|${describeRoute(dead)}`,
    {
      id: 'blackhole-route',
      cause: isDefault ? 'network-no-route' : 'network-s3-layers',
      severity: 'error',
      certainty: 'certain',
      title: () => `Route ${describeRoute(dead)} in ${tableId} is a blackhole`,
      detail: (names, subnets) =>
        `The route ${describeRoute(dead)} of ${subnets} points at a target that no longer exists (deleted NAT ` +
        `gateway, instance or endpoint), so traffic to ${names} is dropped.`,
      evidence: [routeTableEvidence(route), { label: `route ${tableId}`, value: describeRoute(dead) }],
      fixes,
    },
    target,
    subnet.SubnetId,
  );
}

function publicIpMissing(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  severity: Severity,
  certainty: Certainty,
): void {
  const facts = ctx.facts;
  const why =
    facts.launchType === 'CODEBUILD'
      ? 'CodeBuild never gives a build in a VPC a public IP, so it needs a private subnet with a NAT gateway.'
      : facts.launchType === 'EC2' && facts.taskDefinition?.networkMode === 'awsvpc'
        ? 'Tasks in awsvpc mode on EC2 never get a public IP, so they need a private subnet with a NAT gateway.'
        : facts.launchType === 'FARGATE'
          ? 'The task was started with assignPublicIp DISABLED, so its traffic reaches the internet gateway without a public address and is dropped.'
          : 'The instance needs a public IP for this to work, and the subnet does not assign one on launch.';
  const fixes: Fix[] = [natFix(ctx, route, 'replace')];
  const clusterName = facts.subject.cluster ?? facts.service?.clusterArn;
  if (
    facts.launchType === 'FARGATE' &&
    facts.service?.serviceName !== undefined &&
    clusterName !== undefined
  ) {
    const subnets = ctx.subnets.flatMap((s) => s.SubnetId ?? []).join(',');
    const groups = (ctx.taskGroups ?? []).flatMap((g) => g.GroupId ?? []).join(',');
    fixes.unshift({
      kind: 'aws-cli',
      summary: "Give the service's tasks a public IP",
      content:
        `aws ecs update-service --region ${ctx.region} --cluster ${clusterName} --service ${facts.service.serviceName} ` +
        `--network-configuration 'awsvpcConfiguration={subnets=[${subnets}],securityGroups=[${groups}],assignPublicIp=ENABLED}'`,
    });
  } else if (facts.launchType === 'FARGATE') {
    fixes.unshift({
      kind: 'text',
      summary:
        'Run the task with assignPublicIp=ENABLED in its awsvpcConfiguration, or move it to a private subnet with a NAT gateway.',
    });
  }
  ctx.findings.add(
    `public-ip-missing|${route.table.RouteTableId ?? '?'}`,
    {
      id: 'public-ip-missing',
      cause: 'network-no-route',
      severity,
      certainty,
      title: (names) => `Internet gateway route but no public IP: ${names} unreachable`,
      detail: (names, subnets) =>
        `${subnets} routes 0.0.0.0/0 to ${route.out.target ?? 'an internet gateway'} (${route.table.RouteTableId ?? '?'}). ` +
        `${why} Affected: ${names}.`,
      evidence: [
        routeTableEvidence(route),
        { label: 'assignPublicIp', value: ctx.net.assignPublicIp ? 'ENABLED' : 'DISABLED' },
      ],
      fixes,
    },
    target,
    subnet.SubnetId,
  );
}

// --- network ACLs

function ephemeralRange(facts: Facts): PortInterval {
  // The ports a client's connection comes back to: Linux uses 32768-60999, Windows 49152-65535.
  return facts.os.toUpperCase().includes('WINDOWS') ? [49152, 65535] : [32768, 60999];
}

function checkTaskSubnetAcl(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  peers: readonly string[],
  port: number,
  path: PathKind,
  partialIsPossible: boolean,
): void {
  if (ctx.acls === undefined || subnet.SubnetId === undefined) return;
  const acl = naclForSubnet(subnet.SubnetId, ctx.acls);
  if (acl === undefined) return;
  const ephemeral = ephemeralRange(ctx.facts);
  for (const peer of peers) {
    const options = { peer, path, partialIsPossible, whose: `the ${ctx.who} subnet ${subnet.SubnetId}` };
    aclFinding(ctx, target, subnet, acl, 'egress', naclDenials(acl, 'egress', peer, port, port), {
      ...options,
      ports: [port, port],
    });
    aclFinding(
      ctx,
      target,
      subnet,
      acl,
      'ingress',
      naclDenials(acl, 'ingress', peer, ephemeral[0], ephemeral[1]),
      {
        ...options,
        ports: ephemeral,
      },
    );
  }
}

function aclFinding(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  acl: NetworkAcl,
  direction: 'egress' | 'ingress',
  allDenials: NaclDenial[],
  options: { peer: string; ports: PortInterval; path: PathKind; partialIsPossible: boolean; whose: string },
): void {
  const peer = parseCidr(options.peer);
  if (peer === undefined) return;
  // Toward the internet, denials of private and reserved space are beside the point.
  const denials =
    options.path === 'internet' && peer.prefix === 0
      ? allDenials.filter((denial) => {
          const range = parseCidr(denial.cidr);
          return range !== undefined && !nonPublic.some((reserved) => contains(reserved, range));
        })
      : allDenials;
  if (denials.length === 0) return;
  const aclId = acl.NetworkAclId ?? '?';
  // "Whole" when every address that matters is denied (for the internet: all public space).
  const deniedCidrs = denials
    .map((denial) => parseCidr(denial.cidr))
    .filter((c): c is Cidr => c !== undefined);
  const whole = covered(peer, options.path === 'internet' ? [...deniedCidrs, ...nonPublic] : deniedCidrs);
  const rules = [...new Set(denials.map((denial) => denial.ruleNumber))];
  const ruleText = (rule: number | '*'): string =>
    rule === '*' || rule >= 32767 ? '* (default deny)' : String(rule);
  const entryText = (rule: number | '*'): string => {
    const entry = (acl.Entries ?? []).find(
      (candidate) =>
        candidate.RuleNumber === rule && (candidate.Egress ?? false) === (direction === 'egress'),
    );
    if (entry === undefined) return `${direction} rule ${ruleText(rule)}`;
    const ports =
      entry.PortRange === undefined ? 'all ports' : `ports ${entry.PortRange.From}-${entry.PortRange.To}`;
    return (
      `${direction} rule ${ruleText(rule)}: ${entry.RuleAction ?? '?'} protocol ${entry.Protocol ?? '?'} ${ports} ` +
      `${direction === 'egress' ? 'to' : 'from'} ${entry.CidrBlock ?? entry.Ipv6CidrBlock ?? '?'}`
    );
  };
  const [from, to] = options.ports;
  const portText = from === to ? `TCP ${from}` : `TCP ${from}-${to}`;
  const cause =
    options.path === 's3-gateway'
      ? 'network-s3-layers'
      : options.path === 'endpoint'
        ? 'network-vpc-endpoint'
        : 'network-no-route';
  const firstDeny = Math.min(...rules.map((rule) => (rule === '*' ? 32767 : rule)));
  const proposedKey = `${aclId}|${direction}`;
  const proposed = ctx.proposedRules.get(proposedKey) ?? new Map<string, number>();
  ctx.proposedRules.set(proposedKey, proposed);
  const deniedRanges = whole ? [options.peer] : [...new Set(denials.map((denial) => denial.cidr))];
  const fixes = deniedRanges.slice(0, 8).map((cidr): Fix => {
    const fixKey = `${cidr}|${from}-${to}`;
    let number = proposed.get(fixKey);
    if (number === undefined) {
      const used = new Set([
        ...(acl.Entries ?? [])
          .filter((entry) => (entry.Egress ?? false) === (direction === 'egress'))
          .map((entry) => entry.RuleNumber),
        ...proposed.values(),
      ]);
      number = freeRuleNumber(used, firstDeny);
      proposed.set(fixKey, number);
    }
    const family = cidr.includes(':') ? '--ipv6-cidr-block' : '--cidr-block';
    return {
      kind: 'aws-cli',
      summary: `Allow ${portText} ${direction === 'egress' ? 'out to' : 'in from'} ${cidr} in ${aclId}`,
      content:
        `aws ec2 create-network-acl-entry --region ${ctx.region} --network-acl-id ${aclId} --${direction} ` +
        `--rule-number ${number} --protocol tcp --port-range From=${from},To=${to} ${family} ${cidr} --rule-action allow`,
    };
  });
  ctx.findings.add(
    `nacl-blocks|${aclId}|${direction}|${options.path}|${from}-${to}`,
    {
      id: 'nacl-blocks',
      peers: deniedRanges.slice(0, 5),
      cause,
      severity: whole || !options.partialIsPossible ? 'error' : 'warning',
      certainty: whole ? 'certain' : options.partialIsPossible ? 'possible' : 'likely',
      title: (names, peers) =>
        `Network ACL ${aclId} denies ${direction === 'egress' ? 'outbound' : 'inbound'} ${portText} ` +
        `${direction === 'egress' ? 'to' : 'from'} ${peers} (${names})`,
      detail: (names, _subnets, peers) =>
        `Network ACLs are stateless: the request leaves on a TCP service port and the answer returns to an ` +
        `ephemeral port. ${aclId} (on ${options.whose}) denies ${portText} ` +
        `${direction === 'egress' ? 'outbound to' : 'inbound from'} ${peers} ` +
        `by rule ${list(rules.map(ruleText))}, the first rule that matches; traffic for ${names} is dropped. ` +
        'AWS recommends allowing 1024-65535 for return traffic.',
      evidence: rules.map((rule) => ({ label: `network ACL ${aclId}`, value: entryText(rule) })),
      fixes,
    },
    target,
    subnet.SubnetId,
  );
}

/** A rule number not in use, below `before` (so it is evaluated first), counting down. */
function freeRuleNumber(used: ReadonlySet<number | undefined>, before: number): number {
  let candidate = Math.min(before, 32767) - 1;
  while (candidate > 1 && used.has(candidate)) candidate--;
  return candidate;
}

// ---------------------------------------------------------------------------------------------------------
// Fix commands

function authorizeEgress(ctx: Context, groupId: string, port: number, destination: string): string {
  return (
    `aws ec2 authorize-security-group-egress --region ${ctx.region} --group-id ${groupId} ` +
    `--ip-permissions 'IpProtocol=tcp,FromPort=${port},ToPort=${port},${destination}'`
  );
}

const endpointGroupName = 'vpc-endpoints-https';

/** One subnet per availability zone: an interface endpoint takes at most one subnet in each. */
function endpointSubnets(ctx: Context): string[] {
  const byZone = new Map<string, string>();
  for (const subnet of ctx.subnets) {
    const zone = subnet.AvailabilityZone ?? subnet.SubnetId ?? '';
    if (subnet.SubnetId !== undefined && !byZone.has(zone)) byZone.set(zone, subnet.SubnetId);
  }
  return [...byZone.values()];
}

function createEndpointFix(ctx: Context, service: AwsService): Fix {
  const name = serviceName(ctx.region, service);
  if (service === 's3') {
    const tables = [
      ...new Set(
        ctx.subnets.flatMap((subnet) => {
          const table =
            subnet.SubnetId && ctx.routeTables
              ? routeTableForSubnet(subnet.SubnetId, ctx.routeTables)
              : undefined;
          return table?.RouteTableId ?? [];
        }),
      ),
    ];
    return {
      kind: 'aws-cli',
      summary: `Create an S3 gateway endpoint on the ${ctx.who}'s route tables`,
      content:
        `aws ec2 create-vpc-endpoint --region ${ctx.region} --vpc-id ${ctx.vpcId} --vpc-endpoint-type Gateway ` +
        `--service-name ${name} --route-table-ids ${tables.join(' ')}`,
    };
  }
  const subnets = endpointSubnets(ctx).join(' ');
  const taskGroups = (ctx.taskGroups ?? []).flatMap((group) => group.GroupId ?? []);
  // Reuse the security groups of the endpoints already there, when there are some.
  const existing = [
    ...new Set(
      (ctx.endpoints ?? [])
        .filter((endpoint) => isType(endpoint, 'interface'))
        .flatMap((endpoint) => (endpoint.Groups ?? []).flatMap((group) => group.GroupId ?? [])),
    ),
  ];
  const create =
    `aws ec2 create-vpc-endpoint --region ${ctx.region} --vpc-id ${ctx.vpcId} --vpc-endpoint-type Interface ` +
    `--service-name ${name} --subnet-ids ${subnets} --private-dns-enabled`;
  if (existing.length > 0) {
    return {
      kind: 'aws-cli',
      summary: `Create the ${name} interface endpoint`,
      content: `${create} --security-group-ids ${existing.join(' ')}`,
    };
  }
  const source =
    taskGroups.length > 0
      ? `UserIdGroupPairs=[${taskGroups.map((id) => `{GroupId=${id}}`).join(',')}]`
      : `IpRanges=[${ctx.vpcCidrs.map((cidr) => `{CidrIp=${cidr}}`).join(',')}]`;
  return {
    kind: 'aws-cli',
    summary: `Create the ${name} interface endpoint, with a security group admitting HTTPS from the ${ctx.who}`,
    // Idempotent, so that the fixes for several missing endpoints can be run one after another.
    content: [
      `SG=$(aws ec2 describe-security-groups --region ${ctx.region} --filters Name=vpc-id,Values=${ctx.vpcId} ` +
        `Name=group-name,Values=${endpointGroupName} --query 'SecurityGroups[0].GroupId' --output text)`,
      `if [ "$SG" = None ]; then`,
      `  SG=$(aws ec2 create-security-group --region ${ctx.region} --vpc-id ${ctx.vpcId} --group-name ${endpointGroupName} ` +
        `--description "HTTPS from tasks to VPC endpoints" --query GroupId --output text)`,
      `  aws ec2 authorize-security-group-ingress --region ${ctx.region} --group-id "$SG" ` +
        `--ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,${source}'`,
      'fi',
      `${create} --security-group-ids "$SG"`,
    ].join('\n'),
  };
}

/**
 * A default route through a NAT gateway: to one a sibling subnet's route table already uses, else a new
 * one in a public subnet of the task when there is one.
 */
function natFix(ctx: Context, route: SubnetRoute, mode: 'create' | 'replace'): Fix {
  const tableId = route.table.RouteTableId ?? '?';
  const verb = mode === 'replace' && route.out.route !== undefined ? 'replace-route' : 'create-route';
  const working = (ctx.routeTables ?? [])
    .flatMap((table) => table.Routes ?? [])
    .find(
      (candidate) => candidate.NatGatewayId !== undefined && candidate.State !== 'blackhole',
    )?.NatGatewayId;
  if (working !== undefined) {
    return {
      kind: 'aws-cli',
      summary: `Route 0.0.0.0/0 from ${tableId} through the NAT gateway ${working}`,
      content: `aws ec2 ${verb} --region ${ctx.region} --route-table-id ${tableId} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id ${working}`,
    };
  }
  const publicSubnet = ctx.subnets.find((subnet) => {
    const own = routeOf(ctx, subnet);
    return own?.out.kind === 'internet-gateway';
  })?.SubnetId;
  const subnetLine =
    publicSubnet !== undefined
      ? `PUBLIC_SUBNET=${publicSubnet}`
      : `PUBLIC_SUBNET="\${PUBLIC_SUBNET:?set PUBLIC_SUBNET to a subnet of ${ctx.vpcId} whose route table sends 0.0.0.0/0 to an internet gateway}"`;
  return {
    kind: 'aws-cli',
    summary: `Create a NAT gateway and route 0.0.0.0/0 from ${tableId} through it (once: it serves every service)`,
    content: [
      subnetLine,
      `EIP=$(aws ec2 allocate-address --region ${ctx.region} --domain vpc --query AllocationId --output text)`,
      `NAT=$(aws ec2 create-nat-gateway --region ${ctx.region} --subnet-id "$PUBLIC_SUBNET" --allocation-id "$EIP" --query NatGateway.NatGatewayId --output text)`,
      `aws ec2 wait nat-gateway-available --region ${ctx.region} --nat-gateway-ids "$NAT"`,
      `aws ec2 ${verb} --region ${ctx.region} --route-table-id ${tableId} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id "$NAT"`,
    ].join('\n'),
  };
}
