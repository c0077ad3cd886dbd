/**
 * What each role must be allowed to do for this workload: the exact actions on the exact resources. The
 * collector asks the IAM simulator about these, and the IAM check judges the same list, so both always
 * speak of the same requirements.
 */
import { formatArn, partitionOf } from '../shared/arn.ts';
import { pullRequirements } from './images.ts';
import type { ImageFacts, LogFacts, SecretFacts } from './types.ts';

export interface Requirement {
  action: string;
  resource: string;
  /** Who needs it, for the report: `image app (…)`, `secret DB_PASSWORD of app`, `log group /ecs/app`. */
  reason: string;
}

/** Actions the role that pulls images needs (execution role on Fargate, instance role on EC2). */
export function pullRoleRequirements(images: ImageFacts[]): Requirement[] {
  const requirements: Requirement[] = [];
  for (const image of images) {
    for (const need of pullRequirements(image)) {
      requirements.push({
        action: need.action,
        resource: need.resource,
        reason: `image ${image.reference} (${image.container})`,
      });
    }
  }
  return dedupe(requirements);
}

/** Actions the execution role needs for secrets (and their KMS keys) and awslogs. */
export function executionRequirements(
  secrets: SecretFacts[],
  logs: LogFacts[],
  accountId?: string,
): Requirement[] {
  const requirements: Requirement[] = [];
  for (const secret of secrets) {
    const what =
      secret.use === 'repositoryCredentials'
        ? `registry credentials of ${secret.container}`
        : `${secret.use === 'log-option' ? 'log option' : 'secret'} ${secret.reference} of ${secret.container}`;
    const resource = secretResource(secret);
    requirements.push({
      action: secret.service === 'secretsmanager' ? 'secretsmanager:GetSecretValue' : 'ssm:GetParameters',
      resource,
      reason: what,
    });
    const key = secret.metadata.state === 'found' ? secret.metadata.value.kmsKeyId : undefined;
    if (key && !isAwsManagedKey(key)) {
      requirements.push({
        action: 'kms:Decrypt',
        resource: kmsKeyArn(key, secret.region, accountId),
        reason: `${what} (customer managed key)`,
      });
    }
  }
  for (const log of logs) {
    const stream = formatArn({
      partition: partitionOf(log.region),
      service: 'logs',
      region: log.region,
      account: accountId ?? '*',
      resource: `log-group:${log.group}:*`,
    });
    const reason = `awslogs of ${log.container} (${log.group})`;
    requirements.push({ action: 'logs:CreateLogStream', resource: stream, reason });
    requirements.push({ action: 'logs:PutLogEvents', resource: stream, reason });
    if (log.createGroup) {
      requirements.push({
        action: 'logs:CreateLogGroup',
        resource: stream,
        reason: `${reason}, awslogs-create-group=true`,
      });
    }
  }
  return dedupe(requirements);
}

export function secretResource(secret: SecretFacts): string {
  if (secret.metadata.state === 'found') return secret.metadata.value.arn;
  return secret.arn ?? '*';
}

function isAwsManagedKey(key: string): boolean {
  return key.startsWith('alias/aws/') || key.includes(':alias/aws/');
}

function kmsKeyArn(key: string, region: string, accountId: string | undefined): string {
  if (key.startsWith('arn:')) return key;
  return formatArn({
    partition: partitionOf(region),
    service: 'kms',
    region,
    account: accountId ?? '*',
    resource: key.startsWith('alias/') ? key : `key/${key}`,
  });
}

function dedupe(requirements: Requirement[]): Requirement[] {
  const seen = new Set<string>();
  return requirements.filter((r) => {
    const key = `${r.action} ${r.resource}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
