/** The commands network fixes run: security group and NACL rules, endpoints, NAT gateways, VPC DNS. */
import type { Fix } from '../../types.ts';
import { isType, routeOf, type Context, type SubnetRoute } from './context.ts';
import { routeTableForSubnet } from './routes.ts';
import { serviceName, type NetworkService } from './targets.ts';

export function authorizeEgress(ctx: Context, groupId: string, port: number, destination: string): string {
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

export function createEndpointFix(ctx: Context, service: NetworkService): Fix {
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
export function natFix(ctx: Context, route: SubnetRoute, mode: 'create' | 'replace'): Fix {
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

export function modifyVpcAttribute(ctx: Context, which: 'support' | 'hostnames'): Fix {
  // The API changes one attribute per call.
  const flag = which === 'support' ? '--enable-dns-support' : '--enable-dns-hostnames';
  return {
    kind: 'aws-cli',
    summary: `Turn on DNS ${which} for ${ctx.vpcId}`,
    content: `aws ec2 modify-vpc-attribute --region ${ctx.region} --vpc-id ${ctx.vpcId} ${flag} '{"Value":true}'`,
  };
}
