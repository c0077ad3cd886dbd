/** Secrets, parameters and awslogs groups a task definition refers to: metadata only, never values kept. */
import { formatArn, parseArn, parseSecretArn, partitionOf } from '../../shared/arn.ts';
import type { ContainerDefinition } from '@aws-sdk/client-ecs';
import { paginate } from '../aws.ts';
import type { AwsInput } from '../aws-operations.ts';
import type { LogFacts, Lookup, SecretFacts } from '../types.ts';

import type { Collector } from './collector.ts';

export interface SecretUse {
  container: string;
  use: SecretFacts['use'];
  reference: string;
}

export function secretUses(containers: ContainerDefinition[]): SecretUse[] {
  const uses: SecretUse[] = [];
  for (const container of containers) {
    const name = container.name ?? '(unnamed)';
    for (const secret of container.secrets ?? []) {
      if (secret.valueFrom) uses.push({ container: name, use: 'secret', reference: secret.valueFrom });
    }
    const credentials = container.repositoryCredentials?.credentialsParameter;
    if (credentials) uses.push({ container: name, use: 'repositoryCredentials', reference: credentials });
    for (const option of container.logConfiguration?.secretOptions ?? []) {
      if (option.valueFrom) uses.push({ container: name, use: 'log-option', reference: option.valueFrom });
    }
  }
  return uses;
}

/**
 * Where a `valueFrom` points. Secrets Manager ARNs may end in `:json-key:version-stage:version-id`; anything
 * that is not a Secrets Manager ARN is an SSM parameter (name or ARN). `repositoryCredentials` takes a
 * secret ARN or name.
 */
export function parseSecretReference(
  reference: string,
  use: SecretFacts['use'],
  region: string,
  accountId: string | undefined,
): Pick<SecretFacts, 'service' | 'arn' | 'region' | 'jsonKey'> & { id: string } {
  const secret = parseSecretArn(reference);
  if (secret) {
    return {
      service: 'secretsmanager',
      arn: secret.id,
      id: secret.id,
      region: secret.region || region,
      ...(secret.jsonKey ? { jsonKey: secret.jsonKey } : {}),
    };
  }
  const parameter = parseArn(reference);
  if (parameter?.service === 'ssm') {
    const name = parameter.resource.replace(/^parameter/, '');
    return {
      service: 'ssm',
      arn: reference,
      id: name.startsWith('/') ? name : `/${name}`,
      region: parameter.region || region,
    };
  }
  if (use === 'repositoryCredentials') return { service: 'secretsmanager', id: reference, region };
  const name = reference;
  const arn = accountId
    ? formatArn({
        partition: partitionOf(region),
        service: 'ssm',
        region,
        account: accountId,
        resource: `parameter${name.startsWith('/') ? '' : '/'}${name}`,
      })
    : undefined;
  return { service: 'ssm', id: name, region, ...(arn ? { arn } : {}) };
}

export async function collectSecrets(
  c: Collector,
  containers: ContainerDefinition[],
  region: string,
  accountId: string | undefined,
): Promise<SecretFacts[]> {
  return Promise.all(
    secretUses(containers).map(async (use) => {
      const where = parseSecretReference(use.reference, use.use, region, accountId);
      const base = {
        container: use.container,
        use: use.use,
        reference: use.reference,
        service: where.service,
        region: where.region,
        ...(where.arn ? { arn: where.arn } : {}),
        ...(where.jsonKey ? { jsonKey: where.jsonKey } : {}),
      };
      if (where.service === 'secretsmanager') {
        const metadata = await describeSecret(c, where.id, where.region);
        const facts: SecretFacts = { ...base, metadata };
        if (use.use === 'repositoryCredentials' && metadata.state === 'found') {
          facts.shape = await c.lookup(
            'secretsmanager',
            'GetSecretValue',
            async () => credentialShape(await secretString(c, { SecretId: where.id }, where.region)),
            ['ResourceNotFoundException'],
          );
        }
        return facts;
      }
      return { ...base, metadata: await describeParameter(c, where.id, where.region, where.arn) };
    }),
  );
}

export type SecretMetadata = SecretFacts['metadata'];

/** DescribeSecret: the secret's full ARN (with its random suffix), name and KMS key; never its value. */
export function describeSecret(c: Collector, id: string, region: string): Promise<SecretMetadata> {
  return c.lookup(
    'secretsmanager',
    'DescribeSecret',
    async () => {
      const answer = await c.caller.call('secretsmanager', 'DescribeSecret', { SecretId: id }, region);
      return {
        arn: answer.ARN ?? id,
        name: answer.Name ?? id,
        ...(answer.KmsKeyId ? { kmsKeyId: answer.KmsKeyId } : {}),
      };
    },
    ['ResourceNotFoundException'],
  );
}

/** A secret's value, to be judged and dropped by the caller: never stored in facts. */
export async function secretString(
  c: Collector,
  input: AwsInput<'secretsmanager', 'GetSecretValue'>,
  region: string,
): Promise<string | undefined> {
  const answer = await c.caller.call('secretsmanager', 'GetSecretValue', input, region);
  return answer.SecretString;
}

/** DescribeParameters by exact name: the parameter's ARN and KMS key; never its value. */
export function describeParameter(
  c: Collector,
  id: string,
  region: string,
  arn: string | undefined,
): Promise<SecretMetadata> {
  return c.lookup(
    'ssm',
    'DescribeParameters',
    async () => {
      // With a filter, a page may come back empty with a NextToken: only the last page says "none".
      const parameters = await paginate(
        c.caller,
        'ssm',
        'DescribeParameters',
        { ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [id] }], MaxResults: 50 },
        'Parameters',
        { input: 'NextToken', output: 'NextToken' },
        region,
      );
      const parameter = parameters[0];
      if (!parameter) return undefined;
      return {
        arn: parameter.ARN ?? arn ?? id,
        name: parameter.Name ?? id,
        ...(parameter.KeyId ? { kmsKeyId: parameter.KeyId } : {}),
      };
    },
    ['ParameterNotFound'],
    `no SSM parameter named ${id} in ${region}`,
  );
}

/** Judges a registry credential without keeping it: the value itself is dropped here. */
export function credentialShape(
  secret: string | undefined,
): NonNullable<SecretFacts['shape']> extends Lookup<infer S> ? S : never {
  if (secret === undefined) return 'not-json';
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    return 'not-json';
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return 'not-json';
  const record = parsed as Record<string, unknown>;
  if (typeof record.username !== 'string' || record.username === '') return 'missing-username';
  if (typeof record.password !== 'string' || record.password === '') return 'missing-password';
  return 'username-password';
}

export async function collectLogs(
  c: Collector,
  containers: ContainerDefinition[],
  region: string,
): Promise<LogFacts[]> {
  const logs: LogFacts[] = [];
  const seen = new Map<string, Promise<Lookup<true>>>();
  for (const container of containers) {
    const configuration = container.logConfiguration;
    if (configuration?.logDriver !== 'awslogs') continue;
    const group = configuration.options?.['awslogs-group'];
    if (!group) continue;
    const groupRegion = configuration.options?.['awslogs-region'] ?? region;
    const createGroup = configuration.options?.['awslogs-create-group'] === 'true';
    const key = `${groupRegion}/${group}`;
    let exists = seen.get(key);
    if (!exists) {
      exists = c.lookup<true>(
        'logs',
        'DescribeLogGroups',
        async () => {
          const groups = await paginate(
            c.caller,
            'logs',
            'DescribeLogGroups',
            { logGroupNamePrefix: group },
            'logGroups',
            { input: 'nextToken', output: 'nextToken' },
            groupRegion,
          );
          return groups.some((g) => g.logGroupName === group) ? true : undefined;
        },
        [],
        `no log group ${group} in ${groupRegion}`,
      );
      seen.set(key, exists);
    }
    logs.push({
      container: container.name ?? '(unnamed)',
      group,
      region: groupRegion,
      createGroup,
      exists: await exists,
    });
  }
  return logs;
}
