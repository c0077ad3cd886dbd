/** Route tables: which one governs a subnet, and where its default route sends traffic. */
import type { Route, RouteTable } from '@aws-sdk/client-ec2';

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

/** A route as `destination -> target`, marked when it is a blackhole. */
export function describeRoute(route: Route): string {
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
