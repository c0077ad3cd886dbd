/**
 * Secrets and parameters the task reads at start-up: they must exist, in the region the task looks in,
 * and registry credentials must be JSON with `username` and `password` (ECS accepts nothing else).
 */
import { sentence } from '../text.ts';
import type { Check, Finding, SecretFacts } from '../types.ts';

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

export const secretsCheck: Check = (facts) => {
  const findings: Finding[] = [];
  for (const secret of facts.secrets) {
    const evidence = [
      { label: 'container', value: secret.container },
      { label: 'used as', value: secret.use },
      { label: 'reference', value: secret.reference },
      { label: 'region', value: secret.region },
    ];
    if (secret.metadata.state === 'failed') {
      const f = secret.metadata.failure;
      findings.push(uncheckedFinding(secret, f.code, f.message, `${f.service}:${f.operation}`));
      continue;
    }
    if (secret.metadata.state === 'missing') {
      const otherRegion = secret.region !== facts.region;
      findings.push({
        id: 'secret-not-found',
        cause: 'secrets-not-found',
        hop: 'secrets',
        severity: 'error',
        certainty: 'certain',
        title: `${where(secret)} does not exist in ${secret.region}`,
        detail: `${sentence(secret.metadata.detail)}${otherRegion ? ` The task runs in ${facts.region}; the reference points to ${secret.region}.` : ' A name without an ARN is looked up in the task\u2019s own region.'}`,
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
            summary: 'then put its full ARN (from the same region as the task) in the task definition',
          },
        ],
      });
      continue;
    }
    if (secret.use === 'repositoryCredentials' && secret.shape) {
      if (secret.shape.state === 'failed') {
        findings.push({
          ...uncheckedFinding(
            secret,
            secret.shape.failure.code,
            secret.shape.failure.message,
            'secretsmanager:GetSecretValue',
          ),
          id: 'registry-credentials-unchecked',
          cause: 'auth-registry-credentials',
          hop: 'registry-auth',
          title: `could not check the shape of the registry credentials in ${secret.reference}`,
          detail: 'Reading the value (never printed or saved) failed, so its JSON shape was not checked.',
        });
      } else if (secret.shape.state === 'found' && secret.shape.value !== 'username-password') {
        findings.push({
          id: 'registry-credentials-malformed',
          cause: 'auth-registry-credentials',
          hop: 'registry-auth',
          severity: 'error',
          certainty: 'certain',
          title: `the registry credentials in ${secret.reference} are not {"username", "password"} JSON`,
          detail: `ECS reads repositoryCredentials as a JSON object with "username" and "password"; this secret is ${describeShape(secret.shape.value)}.`,
          evidence: [...evidence, { label: 'shape', value: secret.shape.value }],
          fixes: [
            {
              kind: 'aws-cli',
              summary: 'store it in the shape ECS reads (use a Docker Hub access token as the password)',
              content: `aws secretsmanager put-secret-value --secret-id ${secret.metadata.value.arn} --region ${secret.region} --secret-string '{"username":"<user>","password":"<access-token>"}'`,
            },
          ],
        });
      }
    }
    if (secret.jsonKey && secret.use === 'secret') {
      evidence.push({ label: 'json key', value: secret.jsonKey });
    }
  }
  return findings;
};

function secretName(reference: string): string {
  if (reference.startsWith('arn:')) {
    const parts = reference.split(':');
    const name = parts[6] ?? reference;
    return parts[2] === 'secretsmanager'
      ? name.replace(/-[A-Za-z0-9]{6}$/, '')
      : name.replace(/^parameter/, '');
  }
  return reference;
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
