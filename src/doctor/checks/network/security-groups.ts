/** Security groups: whether their rules let HTTPS (or another TCP port) through, and how to show them. */
import type { IpPermission, ManagedPrefixList, PrefixList, SecurityGroup } from '@aws-sdk/client-ec2';
import { cidrCovered as covered, parseCidr } from '../../../shared/ip.ts';
import type { Evidence } from '../../types.ts';

/** Where traffic goes, as a security group rule can name it. */
export interface Destination {
  /** Every one of these ranges must be allowed (the peer may be any address in them). */
  cidrs: string[];
  /** A rule naming any of these prefix lists allows the destination. */
  prefixListIds?: string[];
  /** A rule naming any of these security groups allows the destination. */
  groupIds?: string[];
}

export type AnyPrefixList = ManagedPrefixList | PrefixList;

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

/** Whether any rule opens `port` at all, to any peer. */
export function anyRuleForPort(permissions: readonly IpPermission[], port: number): boolean {
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

/** The rules of each group in one direction, as evidence. */
export function groupRulesEvidence(
  groups: readonly SecurityGroup[],
  direction: 'egress' | 'ingress',
): Evidence[] {
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
