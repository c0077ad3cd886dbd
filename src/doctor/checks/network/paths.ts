/**
 * Which path a subnet's traffic to one target takes, as the VPC chooses it: an interface endpoint its name
 * resolves to, the S3 gateway on its route table, else the default route; and the internet path itself
 * (NAT, internet gateway, transit gateway, …).
 */
import type { Subnet } from '@aws-sdk/client-ec2';
import { checkTaskSubnetAcl } from './acl-findings.ts';
import {
  endpointCarriesTraffic,
  endpointService,
  groupsOf,
  interfaceEndpointFor,
  isType,
  routeOf,
  routeWorks,
  subnetFamily,
  type Context,
  type SubnetRoute,
} from './context.ts';
import { checkEndpointPath, endpointUnusable } from './endpoint-path.ts';
import { authorizeEgress } from './fixes.ts';
import { blackholeRoute, noPath, publicIpMissing } from './no-path.ts';
import { describeRoute } from './routes.ts';
import { checkS3GatewayPath, s3GatewayNotOnTable } from './s3-gateway.ts';
import {
  anyRuleForPort,
  groupRulesEvidence,
  securityGroupsAllow,
  type Destination,
} from './security-groups.ts';
import { targetPort, type Target } from './targets.ts';
import { sgEgressBlocksInternet, worded } from './texts.ts';

export function checkTarget(ctx: Context, target: Target, subnet: Subnet): void {
  if (target.kind === 'internet') checkInternetTarget(ctx, target, subnet);
  else if (target.service === 's3') checkS3(ctx, target, subnet);
  else checkInterfaceService(ctx, target, subnet);
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

function checkInternetPath(ctx: Context, target: Target, subnet: Subnet, route: SubnetRoute): void {
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
  checkEgressToInternet(ctx, target, subnet, route, port, peer, family);
  // Through NAT or IGW every destination is "the internet", S3 included.
  checkTaskSubnetAcl(ctx, target, subnet, [anywhere], port, 'internet', true);
}

/** The task's security groups must let `port` out to anywhere (security groups are stateful). */
function checkEgressToInternet(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  port: number,
  peer: Destination,
  family: 4 | 6,
): void {
  if (ctx.taskGroups === undefined || ctx.taskGroups.length === 0) return;
  const egress = ctx.taskGroups.flatMap((group) => group.IpPermissionsEgress ?? []);
  if (securityGroupsAllow(egress, port, peer, ctx.prefixLists)) return;
  const anywhere = family === 4 ? '0.0.0.0/0' : '::/0';
  const group = ctx.taskGroups[0]?.GroupId ?? '?';
  ctx.findings.add(
    `sg-egress-blocks|internet|${port}`,
    {
      id: 'sg-egress-blocks',
      cause: 'network-no-route',
      severity: 'error',
      certainty: anyRuleForPort(egress, port) ? 'likely' : 'certain',
      ...worded(sgEgressBlocksInternet, {
        groups: groupsOf(ctx),
        port,
        route: describeRoute(route.out.route ?? {}),
        groupIds: ctx.taskGroups.map((g) => g.GroupId ?? '?'),
        anywhere,
        who: ctx.who,
      }),
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
    subnet.SubnetId ?? '?',
  );
}
