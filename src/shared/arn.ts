/**
 * Amazon Resource Names: `arn:partition:service:region:account:resource`. One reading of them for every
 * layer: the six fields, the resource's type and id, the role an IAM or STS ARN names, a Secrets Manager
 * secret's ARN with its random suffix and the fields ECS and CodeBuild add after it, and ARNs found in free
 * text.
 */

/** The partitions pullsafe knows regions of. */
export type AwsPartition = 'aws' | 'aws-cn' | 'aws-us-gov';

export interface Arn {
  partition: string;
  service: string;
  /** `''` for global services (IAM, S3 buckets). */
  region: string;
  /** `''` where the ARN names none (S3 buckets); `aws` for AWS managed policies. */
  account: string;
  /** Everything after the fifth colon: `role/path/name`, `secret:name-AbCdEf`, `log-group:name:*`. */
  resource: string;
  /** What precedes the resource's first `/` or `:` (`role`, `secret`, `task`); `''` when there is neither. */
  resourceType: string;
  /** What follows it (`path/name`, `name-AbCdEf`, `prod/0123…`); the whole resource when there is no type. */
  resourceId: string;
}

/**
 * An ARN's six fields, split at its first five colons (the resource keeps any further ones), or undefined
 * for fewer than six. Nothing is checked: policy values with wildcards split the same way.
 */
export function splitArn(text: string): [string, string, string, string, string, string] | undefined {
  const parts = text.split(':');
  if (parts.length < 6) return undefined;
  const [prefix, partition, service, region, account] = parts as [string, string, string, string, string];
  return [prefix, partition, service, region, account, parts.slice(5).join(':')];
}

/** An ARN's fields, or undefined for text that is not `arn:` with a partition, a service and six fields. */
export function parseArn(text: string | undefined): Arn | undefined {
  const fields = text === undefined ? undefined : splitArn(text);
  if (!fields) return undefined;
  const [prefix, partition, service, region, account, resource] = fields;
  if (prefix !== 'arn' || partition === '' || service === '') return undefined;
  const separator = /[/:]/.exec(resource);
  return {
    partition,
    service,
    region,
    account,
    resource,
    resourceType: separator ? resource.slice(0, separator.index) : '',
    resourceId: separator ? resource.slice(separator.index + 1) : resource,
  };
}

export function formatArn(fields: {
  partition: string;
  service: string;
  region?: string;
  account?: string;
  resource: string;
}): string {
  return `arn:${fields.partition}:${fields.service}:${fields.region ?? ''}:${fields.account ?? ''}:${fields.resource}`;
}

/** The AWS partition a region belongs to. */
export function partitionOf(region: string): AwsPartition {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The account an ARN names, when it is an account id (twelve digits). */
export function arnAccount(text: string | undefined): string | undefined {
  const account = parseArn(text)?.account;
  return account !== undefined && /^\d{12}$/.test(account) ? account : undefined;
}

/** The region an ARN names; undefined for global ones. */
export function arnRegion(text: string | undefined): string | undefined {
  return parseArn(text)?.region || undefined;
}

/** The last `/` segment of a resource id: a role's name without its path, an instance profile's name. */
export function arnResourceName(text: string): string {
  return text.split('/').pop() ?? text;
}

export interface IamPrincipalArn {
  partition: string;
  service: 'iam' | 'sts';
  /** Twelve digits; undefined when the ARN holds anything else there (`***` in a redacted message). */
  account?: string;
  /** The resource type: `assumed-role` (an STS role session), `role`, `user`, `root`, … */
  kind: string;
  /** For roles and role sessions: the role's name, without its path. */
  roleName?: string;
  /** For role sessions: the session's name. */
  session?: string;
}

/**
 * An IAM or STS ARN as policies and AWS's messages name principals (`iam::ACCOUNT:role/path/name`,
 * `sts::ACCOUNT:assumed-role/ROLE/SESSION`, `iam::ACCOUNT:root`); undefined for anything else.
 */
export function parseIamPrincipalArn(text: string | undefined): IamPrincipalArn | undefined {
  const arn = parseArn(text);
  const service = arn?.service;
  if (!arn || (service !== 'iam' && service !== 'sts')) return undefined;
  if (arn.region !== '' || arn.resource === '') return undefined;
  const principal: Pick<IamPrincipalArn, 'partition' | 'service' | 'account'> = {
    partition: arn.partition,
    service,
    ...(/^\d{12}$/.test(arn.account) ? { account: arn.account } : {}),
  };
  const session = /^assumed-role\/([^/]+)\/(.+)$/.exec(arn.resource);
  if (session) return { ...principal, kind: 'assumed-role', roleName: session[1], session: session[2] };
  const role = /^role\/(?:.*\/)?([^/]+)$/.exec(arn.resource);
  if (role) return { ...principal, kind: 'role', roleName: role[1] };
  return { ...principal, kind: arn.resource === 'root' ? 'root' : arn.resourceType };
}

/** Secrets Manager ends every secret's name in its ARN with `-` and six random characters. */
const secretSuffix = /-[A-Za-z0-9]{6}$/;

/** A secret's name without the random suffix of its ARN (`prod/db-AbCdEf` → `prod/db`). */
export function secretNameWithoutSuffix(name: string): string {
  return name.replace(secretSuffix, '');
}

export interface SecretReference {
  /** The secret: its name, or its ARN (the first seven fields). */
  id: string;
  jsonKey?: string;
  versionStage?: string;
  versionId?: string;
}

/**
 * A reference to a Secrets Manager secret as ECS `valueFrom` and CodeBuild `secrets-manager` take it:
 * `name:json-key:version-stage:version-id`, or the secret's ARN followed by the same three fields. The three
 * are optional; empty ones are left out.
 */
export function parseSecretsManagerReference(reference: string): SecretReference {
  const parts = reference.split(':');
  const idParts = reference.startsWith('arn:') ? 7 : 1;
  const [jsonKey, versionStage, versionId] = parts.slice(idParts);
  return {
    id: parts.slice(0, idParts).join(':'),
    ...(jsonKey ? { jsonKey } : {}),
    ...(versionStage ? { versionStage } : {}),
    ...(versionId ? { versionId } : {}),
  };
}

export interface SecretArn extends SecretReference {
  partition: string;
  region: string;
  account: string;
  /** The name as the ARN holds it: with the random suffix, or without it in a partial ARN. */
  name: string;
}

/** A Secrets Manager ARN, with the fields ECS and CodeBuild take after it; undefined for anything else. */
export function parseSecretArn(text: string | undefined): SecretArn | undefined {
  const arn = parseArn(text);
  if (!arn || !text || arn.service !== 'secretsmanager') return undefined;
  return {
    ...parseSecretsManagerReference(text),
    partition: arn.partition,
    region: arn.region,
    account: arn.account,
    name: arn.resource.split(':')[1] ?? '',
  };
}

/** An ARN inside free text (error messages, log lines): what `keepArns` shields. */
const arnInText = /arn:aws[\w-]*:[a-z0-9-]+:[a-z0-9-]*:(?:\d{12}|\*)?:[^\s"',;]+/g;

/**
 * Applies `transform` to text with its ARNs left as they were: redaction that would take `…:secret:name`
 * for a secret field must not eat the ARNs that name the resources.
 */
export function keepArns(text: string, transform: (text: string) => string): string {
  const arns: string[] = [];
  const shielded = text.replace(arnInText, (arn) => `\uE000${arns.push(arn) - 1}\uE000`);
  return transform(shielded).replace(/\uE000(\d+)\uE000/g, (_, index: string) => arns[Number(index)] ?? '');
}
