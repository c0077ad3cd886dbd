/**
 * The path through an interface endpoint: its security groups must admit HTTPS from the task, the task's
 * must let it out to the endpoint, and the ACLs of both subnets must pass it both ways. And an endpoint the
 * traffic cannot take (not available, private DNS off, VPC DNS off).
 */
import type { SecurityGroup, Subnet, VpcEndpoint } from '@aws-sdk/client-ec2';
import type { Certainty, Fix } from '../../types.ts';
import { checkEndpointSubnetAcls, checkTaskSubnetAcl } from './acl-findings.ts';
import {
  endpointEvidence,
  endpointSubnetCidrs,
  groupsOf,
  isAvailable,
  routeTableEvidence,
  type Context,
  type SubnetRoute,
} from './context.ts';
import { authorizeEgress, modifyVpcAttribute } from './fixes.ts';
import { groupRulesEvidence, securityGroupsAllow, type Destination } from './security-groups.ts';
import type { Target } from './targets.ts';
import {
  endpointNotAvailable,
  endpointNotAvailableFix,
  endpointPrivateDnsOff,
  endpointSgNo443,
  sgEgressBlocksEndpoint,
  vpcDnsOff as vpcDnsOffText,
  worded,
} from './texts.ts';

export function checkEndpointPath(ctx: Context, target: Target, subnet: Subnet, endpoint: VpcEndpoint): void {
  const subnetId = subnet.SubnetId ?? '?';
  checkEndpointAdmitsTask(ctx, target, subnet, endpoint);
  const endpointPeers = endpointSubnetCidrs(ctx, endpoint);
  checkTaskReachesEndpoint(ctx, target, subnetId, endpoint, endpointPeers);
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
  checkEndpointSubnetAcls(ctx, target, subnet, remote);
}

function groupIdsOf(groups: readonly { GroupId?: string }[] | undefined): string[] {
  return (groups ?? []).flatMap((group) => group.GroupId ?? []);
}

/** The endpoint's security groups must admit 443 from the task. */
function checkEndpointAdmitsTask(ctx: Context, target: Target, subnet: Subnet, endpoint: VpcEndpoint): void {
  const endpointId = endpoint.VpcEndpointId ?? '?';
  const endpointGroupIds = groupIdsOf(endpoint.Groups);
  const taskGroupIds = groupIdsOf(ctx.taskGroups);
  const endpointGroups = (ctx.endpointGroups ?? []).filter((group) =>
    endpointGroupIds.includes(group.GroupId ?? ''),
  );
  if (endpointGroups.length === 0 || subnet.CidrBlock === undefined) return;
  const ingress = endpointGroups.flatMap((group) => group.IpPermissions ?? []);
  const from: Destination = { cidrs: [subnet.CidrBlock], groupIds: taskGroupIds };
  if (securityGroupsAllow(ingress, 443, from, ctx.prefixLists)) return;
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
      ...worded(endpointSgNo443, {
        endpointId,
        service: endpoint.ServiceName ?? '?',
        endpointGroupIds,
        taskGroupIds,
        who: ctx.who,
      }),
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
    subnet.SubnetId ?? '?',
  );
}

/** The task's security groups must let 443 out to the endpoint's addresses. */
function checkTaskReachesEndpoint(
  ctx: Context,
  target: Target,
  subnetId: string,
  endpoint: VpcEndpoint,
  endpointPeers: readonly { cidr: string }[],
): void {
  const endpointId = endpoint.VpcEndpointId ?? '?';
  const endpointGroupIds = groupIdsOf(endpoint.Groups);
  const taskGroups: SecurityGroup[] = ctx.taskGroups ?? [];
  const cidrs =
    endpointPeers.length > 0 ? [...new Set(endpointPeers.map((peer) => peer.cidr))] : ctx.vpcCidrs;
  if (taskGroups.length === 0 || (cidrs.length === 0 && endpointGroupIds.length === 0)) return;
  const egress = taskGroups.flatMap((group) => group.IpPermissionsEgress ?? []);
  if (securityGroupsAllow(egress, 443, { cidrs, groupIds: endpointGroupIds }, ctx.prefixLists)) return;
  const group = taskGroups[0]?.GroupId ?? '?';
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
      ...worded(sgEgressBlocksEndpoint, {
        groups: groupsOf(ctx),
        endpointId,
        service: endpoint.ServiceName ?? '?',
        cidrs,
        taskGroupIds: groupIdsOf(taskGroups),
        endpointGroupIds,
      }),
      evidence: [...endpointEvidence(endpoint), ...groupRulesEvidence(taskGroups, 'egress')],
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

/** The only way out is an endpoint the service's name does not resolve to, or that does not answer. */
export function endpointUnusable(
  ctx: Context,
  target: Target & { kind: 'aws' },
  subnet: Subnet,
  endpoint: VpcEndpoint,
  route: SubnetRoute,
): void {
  const subnetId = subnet.SubnetId ?? '?';
  const endpointId = endpoint.VpcEndpointId ?? '?';
  const service = endpoint.ServiceName ?? '?';
  const evidence = [...endpointEvidence(endpoint), routeTableEvidence(route)];
  if (!isAvailable(endpoint)) {
    ctx.findings.add(
      `endpoint-not-available|${endpointId}`,
      {
        id: 'endpoint-not-available',
        cause: 'network-vpc-endpoint',
        severity: 'error',
        certainty: 'certain',
        ...worded(endpointNotAvailable, {
          endpointId,
          service,
          state: endpoint.State,
          lastError: endpoint.LastError?.Message,
        }),
        evidence,
        fixes: [{ kind: 'text', summary: endpointNotAvailableFix(endpointId, ctx.region) }],
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
        ...worded(endpointPrivateDnsOff, { endpointId, service }),
        evidence,
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

export function vpcDnsOff(
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
      ...worded(vpcDnsOffText, { vpcId: ctx.vpcId, off, dnsSupportOff: ctx.dnsSupport === false }),
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
