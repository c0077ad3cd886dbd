/** What the workload must reach over the network: AWS services by endpoint name, and internet hosts. */
import type { Facts, Hop } from '../../types.ts';

/** The AWS services a workload may need to reach, as VPC endpoint service names end. */
export type NetworkService =
  'ecr.api' | 'ecr.dkr' | 's3' | 'logs' | 'secretsmanager' | 'ssm' | 'kms' | 'git-codecommit';
/** The services reached through interface endpoints (S3 has a gateway endpoint too). */
export const interfaceServices: readonly NetworkService[] = [
  'ecr.api',
  'ecr.dkr',
  'logs',
  'secretsmanager',
  'ssm',
  'kms',
  'git-codecommit',
];

/** Where the workload must connect: an AWS service, or a host on the internet. */
export type Target =
  | { kind: 'aws'; service: NetworkService; hop: Hop; name: string }
  | { kind: 'internet'; host: string; port: number; hop: Hop; name: string };

const serviceHop: Record<NetworkService, Hop> = {
  'ecr.api': 'registry-auth',
  'ecr.dkr': 'manifest',
  s3: 'layers',
  logs: 'logs',
  secretsmanager: 'secrets',
  ssm: 'secrets',
  kms: 'secrets',
  'git-codecommit': 'build',
};

/** Fargate platform versions before 1.4.0 fetch the ECR token outside the task's network interface. */
function fargateNeedsEcrApi(facts: Facts): boolean {
  if (facts.launchType !== 'FARGATE') return true;
  const match = /^(\d+)\.(\d+)/.exec(facts.platformVersion ?? '');
  if (match === null) return true;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > 1 || (major === 1 && minor >= 4);
}

/** Every service and host the workload needs, from what the facts say it does. */
export function targetsOf(facts: Facts): Target[] {
  const { needs } = facts;
  const wanted: [boolean, NetworkService][] = [
    [needs.ecrApi && fargateNeedsEcrApi(facts), 'ecr.api'],
    [needs.ecrDkr, 'ecr.dkr'],
    [needs.s3Layers || needs.s3Source === true, 's3'],
    [needs.logs, 'logs'],
    [needs.secretsmanager, 'secretsmanager'],
    [needs.ssm, 'ssm'],
    [needs.kms, 'kms'],
    [needs.codecommit === true, 'git-codecommit'],
  ];
  const targets: Target[] = wanted
    .filter(([needed]) => needed)
    .map(([, service]) => ({
      kind: 'aws',
      service,
      // S3 for a build's source alone is part of the build, not of a pull's layers.
      hop: service === 's3' && !needs.s3Layers ? 'build' : serviceHop[service],
      name: service,
    }));
  for (const registry of new Set(needs.internetRegistries)) {
    const match = /^(.*):(\d+)$/.exec(registry);
    const host = match?.[1] ?? registry;
    const port = match?.[2] === undefined ? 443 : Number(match[2]);
    targets.push({ kind: 'internet', host, port, hop: 'manifest', name: registry });
  }
  for (const host of new Set(needs.sourceHosts ?? [])) {
    if (!targets.some((target) => target.kind === 'internet' && target.host === host)) {
      targets.push({ kind: 'internet', host, port: 443, hop: 'build', name: host });
    }
  }
  return targets;
}

export function targetPort(target: Target): number {
  return target.kind === 'internet' ? target.port : 443;
}

/** A service's VPC endpoint name: `com.amazonaws.<region>.<service>`. */
export const serviceName = (region: string, service: NetworkService): string =>
  `com.amazonaws.${region}.${service}`;
