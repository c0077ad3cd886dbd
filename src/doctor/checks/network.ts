/**
 * Network checks: for every service the workload must reach (ECR API, ECR registry, the S3 layer bucket,
 * CloudWatch Logs, Secrets Manager, SSM, KMS, internet registries) and from every subnet it may run in,
 * decide which path the traffic takes and what on that path stops it.
 *
 * The path is the one the VPC actually chooses: an interface endpoint when one is available with private
 * DNS on (the service's public name then resolves to the endpoint's addresses), the S3 gateway endpoint
 * when the subnet's route table carries it (its prefix-list route is more specific than any default
 * route), otherwise the default route. On that path the checks look at the route, the task's security
 * group egress, the endpoint's security group ingress, and the network ACLs of both ends (stateless: the
 * request out and the answer back on an ephemeral port).
 *
 * A lookup that failed becomes `network-unchecked` and every conclusion that needed it is withheld: a
 * failed lookup is never a pass, and never a fabricated failure either.
 *
 * The parts live in `network/`: what is needed (`targets.ts`), the VPC as read (`context.ts`), routes,
 * security groups and ACLs as AWS evaluates them, each path's checks, the fix commands, and the findings'
 * words (`texts.ts`).
 */
import { hopOrder } from '../types.ts';
import type { Check, Lookup, NetworkFacts } from '../types.ts';
import { networkContext } from './network/context.ts';
import { vpcDnsOff } from './network/endpoint-path.ts';
import { Findings } from './network/findings.ts';
import { checkTarget } from './network/paths.ts';
import { targetsOf } from './network/targets.ts';
import { networkUnchecked, worded } from './network/texts.ts';

const lookupNames: { field: keyof NetworkFacts; what: string; service: string; operation: string }[] = [
  { field: 'vpc', what: 'the VPC', service: 'ec2', operation: 'DescribeVpcs' },
  {
    field: 'dnsSupport',
    what: 'the VPC DNS support attribute',
    service: 'ec2',
    operation: 'DescribeVpcAttribute',
  },
  {
    field: 'dnsHostnames',
    what: 'the VPC DNS hostnames attribute',
    service: 'ec2',
    operation: 'DescribeVpcAttribute',
  },
  { field: 'subnets', what: 'the subnets', service: 'ec2', operation: 'DescribeSubnets' },
  { field: 'routeTables', what: 'the route tables', service: 'ec2', operation: 'DescribeRouteTables' },
  {
    field: 'securityGroups',
    what: "the task's security groups",
    service: 'ec2',
    operation: 'DescribeSecurityGroups',
  },
  { field: 'networkAcls', what: 'the network ACLs', service: 'ec2', operation: 'DescribeNetworkAcls' },
  { field: 'endpoints', what: 'the VPC endpoints', service: 'ec2', operation: 'DescribeVpcEndpoints' },
  {
    field: 'endpointSecurityGroups',
    what: "the VPC endpoints' security groups",
    service: 'ec2',
    operation: 'DescribeSecurityGroups',
  },
  { field: 'prefixLists', what: 'the prefix lists', service: 'ec2', operation: 'DescribePrefixLists' },
];

export const networkCheck: Check = (facts) => {
  const net = facts.network;
  if (net === undefined) return [];
  const targets = targetsOf(facts);
  const fallbackHop = hopOrder.find((hop) => targets.some((target) => target.hop === hop)) ?? 'manifest';
  const findings = new Findings();
  uncheckedLookups(net, findings);
  if (targets.length === 0) return findings.result(fallbackHop);

  const ctx = networkContext(facts, net, targets, findings);
  if (ctx.dnsSupport === false) vpcDnsOff(ctx, undefined, undefined, 'likely');
  for (const subnet of ctx.subnets) {
    for (const target of targets) checkTarget(ctx, target, subnet);
  }
  return findings.result(fallbackHop);
};

/** Every network lookup that failed, as `network-unchecked`. */
function uncheckedLookups(net: NetworkFacts, findings: Findings): void {
  for (const { field, what, service, operation } of lookupNames) {
    const lookup = net[field] as Lookup<unknown>;
    if (lookup.state !== 'failed') continue;
    const failure = lookup.failure;
    const call = `${failure.service || service}:${failure.operation || operation}`;
    findings.add(
      `network-unchecked|${field}`,
      {
        id: 'network-unchecked',
        cause: 'network-no-route',
        severity: 'unchecked',
        certainty: 'certain',
        ...worded(networkUnchecked, { what, call, code: failure.code, message: failure.message }),
        evidence: [{ label: 'failed call', value: `${call} ${failure.code}` }],
        fixes: [],
      },
      undefined,
      undefined,
    );
  }
}
