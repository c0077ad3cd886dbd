/**
 * Network ACLs: what one denies of a peer range and port range, evaluated as AWS does, and the numbers a
 * new rule can take.
 */
import type { NetworkAcl, NetworkAclEntry } from '@aws-sdk/client-ec2';
import {
  cidrContains as contains,
  cidrHalves as halves,
  cidrOverlaps as overlaps,
  formatCidr,
  parseCidr,
  type Cidr,
} from '../../../shared/ip.ts';
import type { Facts } from '../../types.ts';

/** Private, shared and reserved IPv4/IPv6 space: never where an internet registry or AWS endpoint lives. */
export const nonPublic = [
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

export interface NaclDenial {
  /** The addresses the decision applies to (a part of the peer range when a narrower rule decided). */
  cidr: string;
  from: number;
  to: number;
  /** The rule that denied; `*` for the implicit default deny. */
  ruleNumber: number | '*';
}

export type PortInterval = [number, number];

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

/** The ports a client's connection comes back to: Linux uses 32768-60999, Windows 49152-65535. */
export function ephemeralRange(facts: Facts): PortInterval {
  return facts.os.toUpperCase().includes('WINDOWS') ? [49152, 65535] : [32768, 60999];
}

/** A rule number not in use, below `before` (so it is evaluated first), counting down. */
export function freeRuleNumber(used: ReadonlySet<number | undefined>, before: number): number {
  let candidate = Math.min(before, 32767) - 1;
  while (candidate > 1 && used.has(candidate)) candidate--;
  return candidate;
}
