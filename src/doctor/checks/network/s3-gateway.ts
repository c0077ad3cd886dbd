/**
 * The path to S3 through its gateway endpoint: the task's security groups must let HTTPS out to S3's
 * prefix list, the subnet's ACL must pass S3's ranges, and the gateway must be on the subnet's route table.
 */
import type { Subnet, VpcEndpoint } from '@aws-sdk/client-ec2';
import { checkTaskSubnetAcl } from './acl-findings.ts';
import { endpointEvidence, groupsOf, routeTableEvidence, type Context, type SubnetRoute } from './context.ts';
import { authorizeEgress } from './fixes.ts';
import {
  anyRuleForPort,
  groupRulesEvidence,
  securityGroupsAllow,
  type Destination,
} from './security-groups.ts';
import { serviceName, type Target } from './targets.ts';
import { s3GatewayNotOnRouteTable, sgEgressNoS3PrefixList, worded } from './texts.ts';

export function checkS3GatewayPath(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  gateway: VpcEndpoint | undefined,
): void {
  const cidrs = ctx.s3Cidrs ?? ['0.0.0.0/0'];
  checkEgressToS3(ctx, target, subnet, route, gateway, cidrs);
  checkTaskSubnetAcl(ctx, target, subnet, cidrs, 443, 's3-gateway', ctx.s3Cidrs === undefined);
}

function checkEgressToS3(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  gateway: VpcEndpoint | undefined,
  cidrs: string[],
): void {
  if (ctx.taskGroups === undefined || ctx.taskGroups.length === 0) return;
  const prefixListId = ctx.s3PrefixListId;
  const egress = ctx.taskGroups.flatMap((group) => group.IpPermissionsEgress ?? []);
  const peer: Destination = { cidrs, prefixListIds: prefixListId === undefined ? [] : [prefixListId] };
  if (securityGroupsAllow(egress, 443, peer, ctx.prefixLists)) return;
  const group = ctx.taskGroups[0]?.GroupId ?? '?';
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
      ...worded(sgEgressNoS3PrefixList, {
        groups: groupsOf(ctx),
        prefixList: prefixListId ?? listName,
        layers: ctx.facts.needs.s3Layers,
        region: ctx.region,
        gatewayId: gateway?.VpcEndpointId ?? '',
        tableId: route.table.RouteTableId ?? '?',
        groupIds: ctx.taskGroups.map((g) => g.GroupId ?? '?'),
      }),
      evidence: [
        ...groupRulesEvidence(ctx.taskGroups, 'egress'),
        ...(prefixListId === undefined
          ? []
          : [{ label: 'S3 prefix list', value: `${prefixListId} (${listName})` }]),
        ...(gateway === undefined ? [] : endpointEvidence(gateway)),
      ],
      fixes: [{ kind: 'aws-cli', summary: `Allow TCP 443 out from ${group} to the S3 prefix list`, content }],
    },
    target,
    subnet.SubnetId ?? '?',
  );
}

export function s3GatewayNotOnTable(
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
      ...worded(s3GatewayNotOnRouteTable, {
        gatewayId,
        routeTableIds: gateway.RouteTableIds ?? [],
        who: ctx.who,
      }),
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
