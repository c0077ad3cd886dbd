/** Secrets and parameters the task reads before it starts (`secrets-*`). */
import { wording } from '../wording.ts';
import { make, type Candidate, type Context } from './detector.ts';
import { accountOf, deniedFixes, iamEvidence, networkEvidence, regionOf, roleOf } from './fixes.ts';

export function secretsNotFound(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  if (!ctx.secrets && !/did not contain json key/.test(text)) return [];
  if (!wording.secretsNotFound.test(text)) return [];
  if (/log group does not exist/i.test(text)) return [];
  const names = [...(x.secretArns ?? []), ...(x.parameterArns ?? [])];
  const target = names[0] ?? '<secret or parameter>';
  return [
    make(
      'secrets-not-found',
      15,
      'high',
      x.jsonKey
        ? `Secret ${target} has no JSON key ${x.jsonKey}`
        : `Secret or parameter ${target} does not exist${x.region ? ` in ${x.region}` : ''}`,
      'Secrets Manager or SSM answered that it does not exist',
      {
        secretArns: x.secretArns,
        parameterArns: x.parameterArns,
        jsonKey: x.jsonKey,
        region: x.region,
        errorCode: x.errorCode,
      },
      [
        x.jsonKey
          ? `add the key ${x.jsonKey} to the secret value, or fix the key in \`valueFrom\` (arn:…:secret:name:json-key:version-stage:version-id)`
          : `check the ARN or name and region: \`aws ${target.includes(':ssm:') ? `ssm get-parameters --names ${target}` : `secretsmanager describe-secret --secret-id ${target}`} --region ${regionOf(x)}\``,
        'a secret in another account must be referenced by its full ARN; a parameter by its ARN or name in the same region',
      ],
    ),
  ];
}

export function secretsAccess(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  if (!ctx.secrets && !/kms:Decrypt/.test(text)) return [];
  if (!wording.denied.test(text)) return [];
  if (x.iamAction && /^(ecr|logs):/.test(x.iamAction)) return [];
  const kms = /kms:Decrypt|Access to KMS is not allowed|KMS/i.test(text);
  const ssm = /\bssm\b|parameter/i.test(text) && !x.secretArns?.length;
  const action =
    x.iamAction ?? (kms ? 'kms:Decrypt' : ssm ? 'ssm:GetParameters' : 'secretsmanager:GetSecretValue');
  const resource =
    x.resourceArn ??
    (action === 'kms:Decrypt'
      ? `arn:aws:kms:${regionOf(x)}:${accountOf(x)}:key/<key id of the secret>`
      : (x.secretArns?.[0] ?? x.parameterArns?.[0] ?? '<secret or parameter ARN>'));
  const fixes = deniedFixes(x, action, resource, 'other');
  if (kms && action !== 'kms:Decrypt') {
    fixes.push(
      `the secret uses a customer-managed KMS key: also allow kms:Decrypt on that key to role ${roleOf(x)} (and check the key policy)`,
    );
  }
  if (kms && action === 'kms:Decrypt') {
    fixes.push(
      `the key policy must also let role ${roleOf(x)} use the key: \`aws kms get-key-policy --key-id <key id> --policy-name default\``,
    );
  }
  return [
    make(
      'secrets-access',
      20,
      'high',
      `Execution role ${roleOf(x)} may not read ${x.secretArns?.[0] ?? x.parameterArns?.[0] ?? 'a secret of the task'} (${action})`,
      'Secrets Manager, SSM or KMS refused the role: a definite answer',
      {
        ...iamEvidence(x),
        iamAction: action,
        secretArns: x.secretArns,
        parameterArns: x.parameterArns,
        region: x.region,
      },
      fixes,
    ),
  ];
}

export function secretsNetwork(ctx: Context): Candidate[] {
  const { text, x } = ctx;
  const explicit = wording.secretsNetwork.test(text);
  if (!explicit && !(ctx.secrets && ctx.transport)) return [];
  if (/AccessDenied|not authorized/i.test(text)) return [];
  const ssm = /ssm|Parameter Store/i.test(text) && !/asm|secrets ?manager/i.test(text);
  const service = ssm ? 'ssm' : 'secretsmanager';
  return [
    make(
      'secrets-network',
      x.ipClass === 'private' ? 43 : 45,
      explicit || x.dialIp !== undefined ? 'high' : 'medium',
      `The task could not reach ${ssm ? 'SSM Parameter Store' : 'Secrets Manager'}${x.region ? ` in ${x.region}` : ''}`,
      'a transport failure while fetching the task secrets',
      {
        ...networkEvidence(x),
        secretArns: x.secretArns,
        parameterArns: x.parameterArns,
        retries: x.retries,
        region: x.region,
      },
      [
        x.ipClass === 'private'
          ? `the ${service} interface endpoint at ${x.dialIp} does not answer: its security group must admit 443 from the task`
          : `add an interface endpoint com.amazonaws.${regionOf(x)}.${service} with private DNS on, or a NAT gateway route (public subnets: assignPublicIp=ENABLED and an internet gateway route)`,
        'allow 443 out in the task security group and both directions in the subnet NACLs',
      ],
    ),
  ];
}
