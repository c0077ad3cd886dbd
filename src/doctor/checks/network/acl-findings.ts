/**
 * Network ACL findings on a path: the task subnet's ACL both ways (the request out on the service port, the
 * answer back on an ephemeral port), and the endpoint subnets' ACLs, with the rules that would let it
 * through.
 */
import type { NetworkAcl, Subnet } from '@aws-sdk/client-ec2';
import {
  cidrContains as contains,
  cidrCovered as covered,
  parseCidr,
  type Cidr,
} from '../../../shared/ip.ts';
import type { Fix } from '../../types.ts';
import type { Context } from './context.ts';
import {
  ephemeralRange,
  freeRuleNumber,
  naclDenials,
  naclForSubnet,
  nonPublic,
  type NaclDenial,
  type PortInterval,
} from './nacl.ts';
import type { Target } from './targets.ts';
import { naclBlocks, worded } from './texts.ts';

/** Which way the traffic goes: to the internet, to an interface endpoint, or to S3 through its gateway. */
export type PathKind = 'internet' | 'endpoint' | 's3-gateway';

interface AclCheck {
  peer: string;
  ports: PortInterval;
  path: PathKind;
  /** Whether part of the peer range may be all the path uses (S3 ranges not known: a warning, not an error). */
  partialIsPossible: boolean;
  /** Whose subnet the ACL is on, as the detail names it. */
  whose: string;
}

export function checkTaskSubnetAcl(
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

/** The ACL of each endpoint subnet must let HTTPS in from the task's subnet, and the answer back out. */
export function checkEndpointSubnetAcls(
  ctx: Context,
  target: Target,
  subnet: Subnet,
  endpointSubnets: readonly { subnetId: string }[],
): void {
  if (ctx.acls === undefined || subnet.CidrBlock === undefined) return;
  for (const peer of endpointSubnets) {
    const acl = naclForSubnet(peer.subnetId, ctx.acls);
    if (acl === undefined) continue;
    const ephemeral = ephemeralRange(ctx.facts);
    const options = {
      peer: subnet.CidrBlock,
      path: 'endpoint',
      partialIsPossible: false,
      whose: `the endpoint subnet ${peer.subnetId}`,
    } as const;
    aclFinding(ctx, target, subnet, acl, 'ingress', naclDenials(acl, 'ingress', subnet.CidrBlock, 443, 443), {
      ...options,
      ports: [443, 443],
    });
    aclFinding(
      ctx,
      target,
      subnet,
      acl,
      'egress',
      naclDenials(acl, 'egress', subnet.CidrBlock, ephemeral[0], ephemeral[1]),
      { ...options, ports: ephemeral },
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
  options: AclCheck,
): void {
  const peer = parseCidr(options.peer);
  if (peer === undefined) return;
  const denials = relevantDenials(allDenials, peer, options.path);
  if (denials.length === 0) return;
  const aclId = acl.NetworkAclId ?? '?';
  // "Whole" when every address that matters is denied (for the internet: all public space).
  const deniedCidrs = denials
    .map((denial) => parseCidr(denial.cidr))
    .filter((c): c is Cidr => c !== undefined);
  const whole = covered(peer, options.path === 'internet' ? [...deniedCidrs, ...nonPublic] : deniedCidrs);
  const rules = [...new Set(denials.map((denial) => denial.ruleNumber))];
  const [from, to] = options.ports;
  const portText = from === to ? `TCP ${from}` : `TCP ${from}-${to}`;
  const deniedRanges = whole ? [options.peer] : [...new Set(denials.map((denial) => denial.cidr))];
  const firstDeny = Math.min(...rules.map((rule) => (rule === '*' ? 32767 : rule)));
  ctx.findings.add(
    `nacl-blocks|${aclId}|${direction}|${options.path}|${from}-${to}`,
    {
      id: 'nacl-blocks',
      peers: deniedRanges.slice(0, 5),
      cause: causeOf(options.path),
      severity: whole || !options.partialIsPossible ? 'error' : 'warning',
      certainty: whole ? 'certain' : options.partialIsPossible ? 'possible' : 'likely',
      ...worded(naclBlocks, {
        aclId,
        direction,
        ports: portText,
        whose: options.whose,
        rules: rules.map(ruleText),
      }),
      evidence: rules.map((rule) => ({
        label: `network ACL ${aclId}`,
        value: entryText(acl, direction, rule),
      })),
      fixes: allowRules(ctx, acl, direction, deniedRanges.slice(0, 8), options.ports, firstDeny),
    },
    target,
    subnet.SubnetId,
  );
}

/** Toward the internet, denials of private and reserved space are beside the point. */
function relevantDenials(denials: NaclDenial[], peer: Cidr, path: PathKind): NaclDenial[] {
  if (path !== 'internet' || peer.prefix !== 0) return denials;
  return denials.filter((denial) => {
    const range = parseCidr(denial.cidr);
    return range !== undefined && !nonPublic.some((reserved) => contains(reserved, range));
  });
}

function causeOf(path: PathKind): string {
  return path === 's3-gateway'
    ? 'network-s3-layers'
    : path === 'endpoint'
      ? 'network-vpc-endpoint'
      : 'network-no-route';
}

function ruleText(rule: number | '*'): string {
  return rule === '*' || rule >= 32767 ? '* (default deny)' : String(rule);
}

function entryText(acl: NetworkAcl, direction: 'egress' | 'ingress', rule: number | '*'): string {
  const entry = (acl.Entries ?? []).find(
    (candidate) => candidate.RuleNumber === rule && (candidate.Egress ?? false) === (direction === 'egress'),
  );
  if (entry === undefined) return `${direction} rule ${ruleText(rule)}`;
  const ports =
    entry.PortRange === undefined ? 'all ports' : `ports ${entry.PortRange.From}-${entry.PortRange.To}`;
  return (
    `${direction} rule ${ruleText(rule)}: ${entry.RuleAction ?? '?'} protocol ${entry.Protocol ?? '?'} ${ports} ` +
    `${direction === 'egress' ? 'to' : 'from'} ${entry.CidrBlock ?? entry.Ipv6CidrBlock ?? '?'}`
  );
}

/**
 * An allow rule per denied range, numbered before the first rule that denied (so it is evaluated first),
 * never on a number in use or already proposed for the same ACL and direction.
 */
function allowRules(
  ctx: Context,
  acl: NetworkAcl,
  direction: 'egress' | 'ingress',
  ranges: readonly string[],
  [from, to]: PortInterval,
  firstDeny: number,
): Fix[] {
  const aclId = acl.NetworkAclId ?? '?';
  const portText = from === to ? `TCP ${from}` : `TCP ${from}-${to}`;
  const proposedKey = `${aclId}|${direction}`;
  const proposed = ctx.proposedRules.get(proposedKey) ?? new Map<string, number>();
  ctx.proposedRules.set(proposedKey, proposed);
  return ranges.map((cidr): Fix => {
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
}
