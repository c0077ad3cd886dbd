/**
 * Secrets and parameters the task (or build) reads at start-up: they must exist, in the region it looks
 * in; registry credentials must be JSON with `username` and `password` (ECS accepts nothing else); a
 * secret a build reads by JSON key must be a JSON object with that key, and its resource policy must not
 * shut the service role out.
 */
import { combineDecisions, evaluateResource, formatStatementRef } from '../iam-eval.ts';
import { arnAccount, parseSecretArn, secretNameWithoutSuffix } from '../../shared/arn.ts';
import { sentence } from '../text.ts';
import type { Check, Facts, Finding, SecretFacts } from '../types.ts';

function where(secret: SecretFacts): string {
  return `${secret.service === 'secretsmanager' ? 'Secrets Manager secret' : 'SSM parameter'} ${secret.reference}`;
}

function uncheckedFinding(secret: SecretFacts, code: string, message: string, operation: string): Finding {
  return {
    id: 'secret-unchecked',
    // What the failed call would have confirmed or ruled out: that the secret exists.
    cause: 'secrets-not-found',
    hop: 'secrets',
    severity: 'unchecked',
    certainty: 'possible',
    title: `could not check ${where(secret)}`,
    detail: `${operation} failed (${code}), so whether it exists was not checked.`,
    evidence: [
      { label: 'container', value: secret.container },
      { label: 'reference', value: secret.reference },
      { label: 'error', value: message },
    ],
    fixes: [{ kind: 'text', summary: `allow the identity running doctor ${operation}` }],
  };
}

export const secretsCheck: Check = (facts) =>
  facts.secrets.flatMap((secret) => secretFindings(secret, facts));

function secretFindings(secret: SecretFacts, facts: Facts): Finding[] {
  const evidence = [
    { label: 'container', value: secret.container },
    { label: 'used as', value: secret.use },
    { label: 'reference', value: secret.reference },
    { label: 'region', value: secret.region },
  ];
  if (secret.metadata.state === 'failed') {
    const f = secret.metadata.failure;
    return [uncheckedFinding(secret, f.code, f.message, `${f.service}:${f.operation}`)];
  }
  if (secret.metadata.state === 'missing') return [notFound(secret, secret.metadata.detail, facts, evidence)];
  const findings = credentialsShapeFindings(secret, secret.metadata.value.arn, evidence);
  if (secret.jsonKey && secret.use === 'secret') {
    evidence.push({ label: 'json key', value: secret.jsonKey });
  }
  findings.push(...keyFindings(secret, evidence), ...policyFindings(secret, facts, evidence));
  return findings;
}

function notFound(secret: SecretFacts, detail: string, facts: Facts, evidence: Finding['evidence']): Finding {
  const workload = facts.launchType === 'CODEBUILD' ? 'build' : 'task';
  const otherRegion = secret.region !== facts.region;
  return {
    id: 'secret-not-found',
    cause: 'secrets-not-found',
    hop: 'secrets',
    severity: 'error',
    certainty: 'certain',
    title: `${where(secret)} does not exist in ${secret.region}`,
    detail: `${sentence(detail)}${otherRegion ? ` The ${workload} runs in ${facts.region}; the reference points to ${secret.region}.` : ` A name without an ARN is looked up in the ${workload}\u2019s own region.`}`,
    evidence,
    fixes: [
      {
        kind: 'aws-cli',
        summary: 'find it: list secrets or parameters with that name in the region',
        content:
          secret.service === 'secretsmanager'
            ? `aws secretsmanager list-secrets --region ${facts.region} --filters Key=name,Values=${secretName(secret.reference)}`
            : `aws ssm describe-parameters --region ${facts.region} --parameter-filters Key=Name,Option=Contains,Values=${secretName(secret.reference)}`,
      },
      {
        kind: 'text',
        summary:
          workload === 'build'
            ? `then put its name or full ARN (from ${facts.region}) in the buildspec's env or the project's environment variable`
            : 'then put its full ARN (from the same region as the task) in the task definition',
      },
    ],
  };
}

/** Registry credentials must be JSON with `username` and `password`: ECS reads nothing else. */
function credentialsShapeFindings(
  secret: SecretFacts,
  arn: string,
  evidence: Finding['evidence'],
): Finding[] {
  const shape = secret.shape;
  if (secret.use !== 'repositoryCredentials' || !shape) return [];
  if (shape.state === 'failed') {
    return [
      {
        ...uncheckedFinding(
          secret,
          shape.failure.code,
          shape.failure.message,
          'secretsmanager:GetSecretValue',
        ),
        id: 'registry-credentials-unchecked',
        cause: 'auth-registry-credentials',
        hop: 'registry-auth',
        title: `could not check the shape of the registry credentials in ${secret.reference}`,
        detail: 'Reading the value (never printed or saved) failed, so its JSON shape was not checked.',
      },
    ];
  }
  if (shape.state !== 'found' || shape.value === 'username-password') return [];
  return [
    {
      id: 'registry-credentials-malformed',
      cause: 'auth-registry-credentials',
      hop: 'registry-auth',
      severity: 'error',
      certainty: 'certain',
      title: `the registry credentials in ${secret.reference} are not {"username", "password"} JSON`,
      detail: `ECS reads repositoryCredentials as a JSON object with "username" and "password"; this secret is ${describeShape(shape.value)}.`,
      evidence: [...evidence, { label: 'shape', value: shape.value }],
      fixes: [
        {
          kind: 'aws-cli',
          summary: 'store it in the shape ECS reads (use a Docker Hub access token as the password)',
          content: `aws secretsmanager put-secret-value --secret-id ${arn} --region ${secret.region} --secret-string '{"username":"<user>","password":"<access-token>"}'`,
        },
      ],
    },
  ];
}

/** A build reads `name:key`: the value must be a JSON object that has the key. */
function keyFindings(secret: SecretFacts, evidence: Finding['evidence']): Finding[] {
  const key = secret.jsonKey;
  const keys = secret.keys;
  if (key === undefined || keys === undefined || secret.metadata.state !== 'found') return [];
  const arn = secret.metadata.value.arn;
  if (keys.state === 'failed') {
    return [
      {
        ...uncheckedFinding(secret, keys.failure.code, keys.failure.message, 'secretsmanager:GetSecretValue'),
        title: `could not check that ${where(secret)} has the key ${key}`,
        detail: 'Reading the value (never printed or saved) failed, so its keys were not checked.',
      },
    ];
  }
  if (keys.state !== 'found' || (keys.value !== null && keys.value.includes(key))) return [];
  const found = keys.value;
  return [
    {
      id: 'secret-key-missing',
      cause: 'secrets-not-found',
      hop: 'secrets',
      severity: 'error',
      certainty: 'certain',
      title:
        found === null
          ? `${where(secret)} is not JSON, so it has no key ${key}`
          : `${where(secret)} has no key ${key}`,
      detail:
        `The build reads the key ${key} of ${arn}; ` +
        (found === null
          ? 'its value is not a JSON object, so CodeBuild cannot select a key from it.'
          : `its value is a JSON object with ${found.length === 0 ? 'no keys' : `the keys ${found.join(', ')}`}.`) +
        ' The build fails before its first phase.',
      evidence: [
        ...evidence,
        { label: 'keys', value: found === null ? '(not a JSON object)' : found.join(', ') },
      ],
      fixes: [
        {
          kind: 'aws-cli',
          summary: `store the value as JSON with the key ${key} (the value is never shown here)`,
          content: `aws secretsmanager put-secret-value --secret-id ${arn} --region ${secret.region} --secret-string '{"${key}":"<value>"${found && found.length > 0 ? found.map((other) => `,"${other}":"<value>"`).join('') : ''}}'`,
        },
        ...(found !== null && found.length > 0
          ? [{ kind: 'text' as const, summary: `or read one of the keys it has: ${found.join(', ')}` }]
          : []),
      ],
    },
  ];
}

/**
 * A secret's resource policy can shut the role out whatever the role's own policies say (an explicit
 * deny), and for a secret in another account it must allow the role.
 */
function policyFindings(secret: SecretFacts, facts: Facts, evidence: Finding['evidence']): Finding[] {
  const policy = secret.resourcePolicy;
  const role = facts.pullRole?.state === 'found' ? facts.pullRole.value : undefined;
  if (policy === undefined || policy.state === 'failed' || role === undefined) return [];
  if (secret.metadata.state !== 'found') return [];
  const arn = secret.metadata.value.arn;
  const secretAccount = arnAccount(arn);
  const roleAccount = arnAccount(role.arn);
  const crossAccount =
    secretAccount !== undefined && roleAccount !== undefined && secretAccount !== roleAccount;
  if (policy.state === 'missing' && !crossAccount) return [];
  const request = {
    action: 'secretsmanager:GetSecretValue',
    resource: arn,
    principalArn: role.arn,
    ...(roleAccount ? { principalAccount: roleAccount } : {}),
  };
  const resource =
    policy.state === 'found'
      ? evaluateResource({ name: `secret:${arn}`, kind: 'resource', document: policy.value }, request)
      : undefined;
  const allowed = {
    decision: 'allowed' as const,
    allowedBy: [],
    deniedBy: [],
    undecided: [],
    missingAllowFrom: [],
  };
  const decision = combineDecisions(allowed, resource, crossAccount);
  if (decision.decision === 'allowed') return [];
  if (decision.decision === 'implicit-deny' && !crossAccount) return [];
  const undecided = decision.decision === 'implicit-deny' && decision.undecided.length > 0;
  const statements = decision.deniedBy.map(formatStatementRef);
  return [
    {
      id: 'secret-policy-denies',
      cause: 'secrets-access',
      hop: 'secrets',
      severity: undecided ? 'warning' : 'error',
      certainty: undecided ? 'possible' : 'certain',
      title:
        decision.decision === 'explicit-deny'
          ? `the resource policy of ${where(secret)} denies ${role.name}`
          : `the resource policy of ${where(secret)} (account ${secretAccount ?? '?'}) does not let ${role.name} read it`,
      detail:
        decision.decision === 'explicit-deny'
          ? `An explicit deny in the secret's own policy wins over any allow in ${role.name}'s policies, so secretsmanager:GetSecretValue on ${arn} is refused.`
          : `The secret is in another account: its resource policy must allow ${role.arn} secretsmanager:GetSecretValue, and ${policy.state === 'missing' ? 'it has no policy' : 'it does not'}.`,
      evidence: [
        ...evidence,
        { label: 'principal', value: role.arn },
        ...statements.map((statement) => ({ label: 'denied by', value: statement })),
      ],
      fixes:
        decision.decision === 'explicit-deny'
          ? [{ kind: 'text', summary: `remove or narrow the deny: ${statements.join(', ')}` }]
          : [
              {
                kind: 'aws-cli',
                summary: `allow ${role.name} in the secret's policy (merge with any existing statements; the secret's KMS key must be a customer managed key the role may use)`,
                content: `aws secretsmanager put-resource-policy --secret-id ${arn} --region ${secret.region} --resource-policy '${JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: role.arn }, Action: 'secretsmanager:GetSecretValue', Resource: '*' }] })}'`,
              },
            ],
    },
  ];
}

/** What `list-secrets` and `describe-parameters` filter by: a secret's name without its suffix. */
function secretName(reference: string): string {
  const secret = parseSecretArn(reference);
  return secret ? secretNameWithoutSuffix(secret.name) : reference;
}

function describeShape(shape: string): string {
  switch (shape) {
    case 'not-json':
      return 'not a JSON object';
    case 'missing-username':
      return 'JSON without a non-empty "username"';
    case 'missing-password':
      return 'JSON without a non-empty "password"';
    default:
      return shape;
  }
}
