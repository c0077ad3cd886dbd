/**
 * No path at all: no default route and no endpoint, a blackhole route, or an internet gateway route for a
 * workload without a public address.
 */
import type { Route, Subnet } from '@aws-sdk/client-ec2';
import type { Certainty, Fix, Severity } from '../../types.ts';
import {
  endpointEvidence,
  endpointService,
  routeTableEvidence,
  type Context,
  type SubnetRoute,
} from './context.ts';
import { createEndpointFix, natFix } from './fixes.ts';
import { describeRoute } from './routes.ts';
import { serviceName, type Target } from './targets.ts';
import {
  assignPublicIpOrNat,
  blackholeRoute as blackholeRouteText,
  endpointMissing,
  internetRegistryUnreachable,
  noRouteOut,
  publicIpMissing as publicIpMissingText,
  serveFromEcrInstead,
  whyNoPublicIp,
  worded,
} from './texts.ts';

export function noPath(ctx: Context, target: Target, subnet: Subnet, route: SubnetRoute): void {
  if (route.out.kind === 'blackhole' && route.out.route !== undefined) {
    blackholeRoute(ctx, target, subnet, route, route.out.route);
    return;
  }
  if (route.out.kind === 'internet-gateway') {
    publicIpMissing(ctx, target, subnet, route, 'error', 'certain');
    return;
  }
  if (target.kind === 'internet') {
    registryUnreachable(ctx, target, subnet, route);
    return;
  }
  if (ctx.endpointMode && !ctx.internetFirst) {
    missingEndpoint(ctx, target, subnet, route);
    return;
  }
  const tableId = route.table.RouteTableId ?? '?';
  ctx.findings.add(
    `no-route-out|${target.name}`,
    {
      id: 'no-route-out',
      cause: 'network-no-route',
      severity: 'error',
      certainty: 'certain',
      ...worded(noRouteOut, { tableId, vpcId: ctx.vpcId, who: ctx.who }),
      evidence: [routeTableEvidence(route)],
      fixes: [natFix(ctx, route, 'create'), createEndpointFix(ctx, target.service)],
    },
    target,
    subnet.SubnetId ?? '?',
  );
}

/** An internet registry: VPC endpoints cannot reach it, only a route out can. */
function registryUnreachable(
  ctx: Context,
  target: Target & { kind: 'internet' },
  subnet: Subnet,
  route: SubnetRoute,
): void {
  ctx.findings.add(
    `internet-registry-unreachable|${target.name}`,
    {
      id: 'internet-registry-unreachable',
      cause: 'network-no-route',
      severity: 'error',
      certainty: 'certain',
      ...worded(internetRegistryUnreachable, {
        target: target.name,
        host: target.host,
        tableId: route.table.RouteTableId ?? '?',
        who: ctx.who,
      }),
      evidence: [routeTableEvidence(route)],
      fixes: [natFix(ctx, route, 'create'), { kind: 'text', summary: serveFromEcrInstead }],
    },
    target,
    subnet.SubnetId ?? '?',
  );
}

/** A VPC that reaches AWS through endpoints lacks the one for this service. */
function missingEndpoint(
  ctx: Context,
  target: Target & { kind: 'aws' },
  subnet: Subnet,
  route: SubnetRoute,
): void {
  const service = target.service;
  const id = service === 's3' ? 's3-gateway-missing' : 'endpoint-missing';
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
      ...worded(endpointMissing, {
        service,
        endpointName: serviceName(ctx.region, service),
        vpcId: ctx.vpcId,
        tableId: route.table.RouteTableId ?? '?',
        present: [...new Set(present)],
        elsewhere: elsewhere.map(
          (endpoint) => `${endpoint.VpcEndpointId ?? '?'} in ${endpoint.VpcId ?? '?'}`,
        ),
      }),
      evidence: [routeTableEvidence(route), ...elsewhere.flatMap(endpointEvidence)],
      fixes: [createEndpointFix(ctx, service), natFix(ctx, route, 'create')],
    },
    target,
    subnet.SubnetId ?? '?',
  );
}

export function blackholeRoute(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  dead: Route,
): void {
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
      ...worded(blackholeRouteText, { route: describeRoute(dead), tableId }),
      evidence: [routeTableEvidence(route), { label: `route ${tableId}`, value: describeRoute(dead) }],
      fixes,
    },
    target,
    subnet.SubnetId,
  );
}

export function publicIpMissing(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  route: SubnetRoute,
  severity: Severity,
  certainty: Certainty,
): void {
  const facts = ctx.facts;
  ctx.findings.add(
    `public-ip-missing|${route.table.RouteTableId ?? '?'}`,
    {
      id: 'public-ip-missing',
      cause: 'network-no-route',
      severity,
      certainty,
      ...worded(publicIpMissingText, {
        gateway: route.out.target ?? 'an internet gateway',
        tableId: route.table.RouteTableId ?? '?',
        why: whyNoPublicIp(facts.launchType, facts.taskDefinition?.networkMode === 'awsvpc'),
      }),
      evidence: [
        routeTableEvidence(route),
        { label: 'assignPublicIp', value: ctx.net.assignPublicIp ? 'ENABLED' : 'DISABLED' },
      ],
      fixes: [...publicIpFixes(ctx), natFix(ctx, route, 'replace')],
    },
    target,
    subnet.SubnetId,
  );
}

/** For Fargate: give the tasks a public address (by command when the service is known). */
function publicIpFixes(ctx: Context): Fix[] {
  const facts = ctx.facts;
  if (facts.launchType !== 'FARGATE') return [];
  const clusterName = facts.subject.cluster ?? facts.service?.clusterArn;
  if (facts.service?.serviceName === undefined || clusterName === undefined) {
    return [{ kind: 'text', summary: assignPublicIpOrNat }];
  }
  const subnets = ctx.subnets.flatMap((s) => s.SubnetId ?? []).join(',');
  const groups = (ctx.taskGroups ?? []).flatMap((g) => g.GroupId ?? []).join(',');
  return [
    {
      kind: 'aws-cli',
      summary: "Give the service's tasks a public IP",
      content:
        `aws ecs update-service --region ${ctx.region} --cluster ${clusterName} --service ${facts.service.serviceName} ` +
        `--network-configuration 'awsvpcConfiguration={subnets=[${subnets}],securityGroups=[${groups}],assignPublicIp=ENABLED}'`,
    },
  ];
}
