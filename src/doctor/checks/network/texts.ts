/**
 * The words of every network finding: its title and detail, from the values its check found and the
 * targets, subnets and peer ranges it ends up covering once merged. Fix commands are built beside their
 * checks; the fixes that are advice in words are here.
 */
import { list } from '../../text.ts';
import type { Wording } from './findings.ts';

/** A finding's title and detail as templates over the values its check found. */
export interface FindingText<Values> {
  title(values: Values, targets: string, peers: string): string;
  detail(values: Values, targets: string, subnets: string, peers: string): string;
}

/** Binds a finding's text to the values of one occurrence. */
export function worded<Values>(text: FindingText<Values>, values: Values): Wording {
  return {
    title: (targets, peers) => text.title(values, targets, peers),
    detail: (targets, subnets, peers) => text.detail(values, targets, subnets, peers),
  };
}

/** What runs in the subnets, in the findings' words. */
type Who = 'task' | 'build';

export const networkUnchecked: FindingText<{ what: string; call: string; code: string; message: string }> = {
  title: (v) => `Could not check ${v.what}: ${v.call} failed (${v.code})`,
  detail: (v) =>
    `${v.call} failed with ${v.code}: ${v.message}. Every network conclusion that depends on ` +
    `${v.what} was skipped; allow ${v.call} to the ` +
    'caller (it is read-only) and run doctor again.',
};

export const sgEgressBlocksInternet: FindingText<{
  groups: string;
  port: number;
  route: string;
  groupIds: string[];
  anywhere: string;
  who: Who;
}> = {
  title: (v, names) => `${v.groups} do not allow TCP ${v.port} out to the internet (${names})`,
  detail: (v, names, subnets) =>
    `From ${subnets} the default route (${v.route}) leads out, but no ` +
    `egress rule of ${list(v.groupIds)} allows TCP ${v.port} to ${v.anywhere}, so connections to ${names} are ` +
    `dropped before they leave the ${v.who}. Security groups are stateful: egress is all they need here.`,
};

export const endpointSgNo443: FindingText<{
  endpointId: string;
  service: string;
  endpointGroupIds: string[];
  taskGroupIds: string[];
  who: Who;
}> = {
  title: (v) => `Endpoint ${v.endpointId} (${v.service}) does not admit HTTPS from the ${v.who}`,
  detail: (v, names, subnets) =>
    `The name of ${names} resolves to ${v.endpointId}, but no inbound rule of its security groups ` +
    `${list(v.endpointGroupIds)} allows TCP 443 from the ${v.who} (subnet ${subnets}, security groups ` +
    `${list(v.taskGroupIds)}), so connections time out (dial tcp <private ip>:443: i/o timeout).`,
};

export const sgEgressBlocksEndpoint: FindingText<{
  groups: string;
  endpointId: string;
  service: string;
  cidrs: string[];
  taskGroupIds: string[];
  endpointGroupIds: string[];
}> = {
  title: (v) => `${v.groups} do not allow HTTPS out to endpoint ${v.endpointId} (${v.service})`,
  detail: (v, names) =>
    `${names} is reached through ${v.endpointId}, whose addresses are in ${list(v.cidrs)}; no egress rule ` +
    `of ${list(v.taskGroupIds)} allows TCP 443 there (by range, or by the endpoint's security groups ` +
    `${list(v.endpointGroupIds)}).`,
};

export const endpointNotAvailable: FindingText<{
  endpointId: string;
  service: string;
  state: string | undefined;
  lastError: string | undefined;
}> = {
  title: (v) => `Endpoint ${v.endpointId} (${v.service}) is ${v.state ?? 'not available'}`,
  detail: (v, names, subnets) =>
    `${names} can only be reached from ${subnets} through ${v.endpointId} (there is no working default ` +
    `route), and the endpoint is in state ${v.state ?? '?'}` +
    `${v.lastError ? ` (${v.lastError})` : ''}, not available.`,
};

export function endpointNotAvailableFix(endpointId: string, region: string): string {
  return (
    `Wait for ${endpointId} to become available, or delete and recreate it: ` +
    `aws ec2 describe-vpc-endpoints --region ${region} --vpc-endpoint-ids ${endpointId} shows its LastError.`
  );
}

export const endpointPrivateDnsOff: FindingText<{ endpointId: string; service: string }> = {
  title: (v) => `Private DNS is off on endpoint ${v.endpointId} (${v.service})`,
  detail: (v, names, subnets) =>
    `With private DNS off, the public name of ${names} still resolves to public addresses, and ${subnets} ` +
    `has no working route to them; the endpoint ${v.endpointId} is never used.`,
};

export const vpcDnsOff: FindingText<{ vpcId: string; off: string[]; dnsSupportOff: boolean }> = {
  title: (v) => `VPC ${v.vpcId} has ${list(v.off)} turned off`,
  detail: (v, names) =>
    (v.dnsSupportOff
      ? 'With enableDnsSupport off the Amazon-provided resolver does not answer, so registry and AWS names ' +
        'do not resolve (no such host) unless the DHCP options point at another DNS server. '
      : '') +
    'Private DNS of interface endpoints needs both enableDnsSupport and enableDnsHostnames; without them ' +
    `the service names resolve to public addresses${names ? `, so ${names} cannot be reached` : ''}.`,
};

export const sgEgressNoS3PrefixList: FindingText<{
  groups: string;
  prefixList: string;
  layers: boolean;
  region: string;
  gatewayId: string;
  tableId: string;
  groupIds: string[];
}> = {
  title: (v) => `${v.groups} do not allow HTTPS out to the S3 prefix list ${v.prefixList}`,
  detail: (v, _names, subnets) =>
    (v.layers
      ? `Layers are downloaded from S3 (prod-${v.region}-starport-layer-bucket)`
      : "The build's source is downloaded from S3") +
    `, which ${subnets} reaches ` +
    `through the S3 gateway endpoint ${v.gatewayId} on ${v.tableId}. ` +
    `S3's addresses are public ranges outside the VPC, and no egress rule of ${list(v.groupIds)} allows TCP 443 ` +
    `to the prefix list ${v.prefixList} or to 0.0.0.0/0, so ` +
    (v.layers
      ? "the manifest is fetched and the layers time out. AWS's troubleshooting runbook does not check this."
      : 'the download times out.'),
};

export const s3GatewayNotOnRouteTable: FindingText<{
  gatewayId: string;
  routeTableIds: string[];
  who: Who;
}> = {
  title: (v) => `S3 gateway endpoint ${v.gatewayId} is not on the ${v.who}'s route table`,
  detail: (v, _names, subnets) =>
    `${v.gatewayId} is associated with ${list(v.routeTableIds) || 'no route table'}, not with the ` +
    `route table of ${subnets}, which has no working default route either: the manifest comes from the ` +
    'ECR endpoints, the layers from S3 never arrive.',
};

export const internetRegistryUnreachable: FindingText<{
  target: string;
  host: string;
  tableId: string;
  who: Who;
}> = {
  title: (v) => `${v.target} is on the internet, and the ${v.who} has no route there`,
  detail: (v, _names, subnets) =>
    `${subnets} has no NAT gateway, internet gateway or transit route (route table ${v.tableId}); VPC ` +
    `endpoints only reach AWS services, so pulls from ${v.host} time out.`,
};

export const serveFromEcrInstead =
  'Or serve the image from ECR, which the endpoints reach: an ECR pull-through cache rule for the ' +
  'registry (Docker Hub official images need the /library/ path), or a copy in a private repository.';

export const endpointMissing: FindingText<{
  service: string;
  endpointName: string;
  vpcId: string;
  tableId: string;
  present: string[];
  elsewhere: string[];
}> = {
  title: (v) =>
    v.service === 's3'
      ? `No S3 gateway endpoint: layers cannot be downloaded`
      : `No ${v.endpointName} endpoint in ${v.vpcId}`,
  detail: (v, _names, subnets) =>
    `${v.vpcId} reaches AWS through endpoints (${list(v.present)}) and ${subnets} has no ` +
    `working default route (route table ${v.tableId}), but there is no ${v.endpointName} ` +
    `${v.service === 's3' ? 'gateway ' : ''}endpoint` +
    (v.service === 'ecr.api'
      ? '; Fargate platform 1.4.0 and later fetch the ECR token through the task network, so ecr.dkr alone is not enough'
      : '') +
    (v.service === 's3' ? '; the manifest is fetched, then the layers (from S3) time out' : '') +
    (v.elsewhere.length > 0 ? `; ${list(v.elsewhere)} ` + 'is in another VPC' : '') +
    '.',
};

export const noRouteOut: FindingText<{ tableId: string; vpcId: string; who: Who }> = {
  title: (v, names) => `No route from the ${v.who} to ${names}`,
  detail: (v, names, subnets) =>
    `${subnets} has no NAT gateway, internet gateway or transit route (route table ${v.tableId}) and ` +
    `${v.vpcId} has no VPC endpoint for ${names}, so the connection times out.`,
};

export const blackholeRoute: FindingText<{ route: string; tableId: string }> = {
  title: (v) => `Route ${v.route} in ${v.tableId} is a blackhole`,
  detail: (v, names, subnets) =>
    `The route ${v.route} of ${subnets} points at a target that no longer exists (deleted NAT ` +
    `gateway, instance or endpoint), so traffic to ${names} is dropped.`,
};

/** Why a workload behind an internet gateway route has no public address, by how it runs. */
export function whyNoPublicIp(launchType: string, awsvpc: boolean): string {
  return launchType === 'CODEBUILD'
    ? 'CodeBuild never gives a build in a VPC a public IP, so it needs a private subnet with a NAT gateway.'
    : launchType === 'EC2' && awsvpc
      ? 'Tasks in awsvpc mode on EC2 never get a public IP, so they need a private subnet with a NAT gateway.'
      : launchType === 'FARGATE'
        ? 'The task was started with assignPublicIp DISABLED, so its traffic reaches the internet gateway without a public address and is dropped.'
        : 'The instance needs a public IP for this to work, and the subnet does not assign one on launch.';
}

export const publicIpMissing: FindingText<{ gateway: string; tableId: string; why: string }> = {
  title: (_v, names) => `Internet gateway route but no public IP: ${names} unreachable`,
  detail: (v, names, subnets) =>
    `${subnets} routes 0.0.0.0/0 to ${v.gateway} (${v.tableId}). ` + `${v.why} Affected: ${names}.`,
};

export const assignPublicIpOrNat =
  'Run the task with assignPublicIp=ENABLED in its awsvpcConfiguration, or move it to a private subnet with a NAT gateway.';

export const naclBlocks: FindingText<{
  aclId: string;
  direction: 'egress' | 'ingress';
  ports: string;
  whose: string;
  rules: string[];
}> = {
  title: (v, names, peers) =>
    `Network ACL ${v.aclId} denies ${v.direction === 'egress' ? 'outbound' : 'inbound'} ${v.ports} ` +
    `${v.direction === 'egress' ? 'to' : 'from'} ${peers} (${names})`,
  detail: (v, names, _subnets, peers) =>
    `Network ACLs are stateless: the request leaves on a TCP service port and the answer returns to an ` +
    `ephemeral port. ${v.aclId} (on ${v.whose}) denies ${v.ports} ` +
    `${v.direction === 'egress' ? 'outbound to' : 'inbound from'} ${peers} ` +
    `by rule ${list(v.rules)}, the first rule that matches; traffic for ${names} is dropped. ` +
    'AWS recommends allowing 1024-65535 for return traffic.',
};
