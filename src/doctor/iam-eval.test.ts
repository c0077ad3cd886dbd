import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parsePolicyDocument,
  evaluateIdentity,
  evaluateResource,
  combineDecisions,
  formatStatementRef,
  type AccessRequest,
  type AccessDecision,
  type Decision,
} from './iam-eval.ts';
import type { NamedPolicy, PolicyDocument, PolicyStatement } from './types.ts';
import { ecsTaskExecutionRolePolicyDocument } from './managed-policies.test-support.ts';

const account = '111122223333';
const otherAccount = '444455556666';
const repoArn = `arn:aws:ecr:us-east-1:${otherAccount}:repository/team/app`;
const roleArn = `arn:aws:iam::${account}:role/ecsTaskExecutionRole`;
const sessionArn = `arn:aws:sts::${account}:assumed-role/ecsTaskExecutionRole/1a2b3c`;

const ecsTaskExecutionRolePolicy: NamedPolicy = {
  name: 'arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy',
  kind: 'managed',
  document: ecsTaskExecutionRolePolicyDocument,
};

function policy(
  name: string,
  statements: PolicyStatement | PolicyStatement[],
  kind: NamedPolicy['kind'] = 'inline',
  version = '2012-10-17',
): NamedPolicy {
  return { name, kind, document: { Version: version, Statement: statements } };
}

function request(action: string, resource = '*', extra: Partial<AccessRequest> = {}): AccessRequest {
  return { action, resource, ...extra };
}

function refs(decision: AccessDecision, list: 'allowedBy' | 'deniedBy' | 'undecided'): string[] {
  return decision[list].map(formatStatementRef);
}

describe('parsePolicyDocument', () => {
  const plain = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*"}}';
  const cases: { name: string; text: string; statements: number }[] = [
    { name: 'plain JSON with one statement object', text: plain, statements: 1 },
    { name: 'URL-encoded JSON as IAM returns it', text: encodeURIComponent(plain), statements: 1 },
    { name: 'surrounding whitespace', text: `\n  ${plain}  \n`, statements: 1 },
    {
      name: 'statement array',
      text: JSON.stringify({
        Statement: [
          { Effect: 'Allow', Action: 'a:b', Resource: '*' },
          { Effect: 'Deny', NotAction: ['a:c'], NotResource: 'x' },
        ],
      }),
      statements: 2,
    },
    {
      name: 'encoded with a percent sign inside a value',
      text: encodeURIComponent(
        JSON.stringify({ Statement: { Sid: '100%', Effect: 'Allow', Action: 'a:b', Resource: '*' } }),
      ),
      statements: 1,
    },
  ];
  for (const { name, text, statements } of cases) {
    test(`parses ${name}`, () => {
      const document = parsePolicyDocument(text);
      const list = Array.isArray(document.Statement) ? document.Statement : [document.Statement];
      assert.equal(list.length, statements);
    });
  }

  test('decoded document keeps its values', () => {
    const document = parsePolicyDocument(encodeURIComponent(plain));
    assert.deepEqual(document.Statement, { Effect: 'Allow', Action: 'ecr:*', Resource: '*' });
  });

  const bad: { name: string; text: string; message: RegExp }[] = [
    { name: 'empty text', text: '   ', message: /empty/ },
    { name: 'truncated JSON', text: '{"Statement": [', message: /not valid JSON/ },
    { name: 'junk', text: 'hello world', message: /not valid JSON/ },
    { name: 'broken percent encoding', text: '%7B%E0%A4%A', message: /URL-encoded/ },
    { name: 'an array', text: '[]', message: /JSON object/ },
    { name: 'no Statement', text: '{"Version":"2012-10-17"}', message: /no Statement/ },
    {
      name: 'a bad Effect',
      text: '{"Statement":{"Effect":"Maybe","Action":"a:b","Resource":"*"}}',
      message: /Effect/,
    },
    { name: 'no Action', text: '{"Statement":{"Effect":"Allow","Resource":"*"}}', message: /Action/ },
    {
      name: 'Action and NotAction',
      text: '{"Statement":{"Effect":"Allow","Action":"a:b","NotAction":"a:c","Resource":"*"}}',
      message: /exactly one of Action or NotAction/,
    },
    {
      name: 'a numeric Action',
      text: '{"Statement":{"Effect":"Allow","Action":5,"Resource":"*"}}',
      message: /Action must be/,
    },
    {
      name: 'a bad Principal',
      text: '{"Statement":{"Effect":"Allow","Action":"a:b","Principal":"me"}}',
      message: /Principal/,
    },
    {
      name: 'a Condition that is not a map of maps',
      text: '{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Bool":true}}}',
      message: /Condition/,
    },
  ];
  for (const { name, text, message } of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(() => parsePolicyDocument(text), message);
    });
  }
});

describe('evaluateIdentity: AmazonECSTaskExecutionRolePolicy', () => {
  const cases: { action: string; resource?: string; decision: Decision }[] = [
    { action: 'ecr:GetAuthorizationToken', decision: 'allowed' },
    { action: 'ecr:BatchGetImage', resource: repoArn, decision: 'allowed' },
    { action: 'ecr:GetDownloadUrlForLayer', resource: repoArn, decision: 'allowed' },
    { action: 'ECR:batchgetimage', resource: repoArn, decision: 'allowed' },
    { action: 'logs:PutLogEvents', decision: 'allowed' },
    { action: 'logs:CreateLogGroup', decision: 'implicit-deny' },
    { action: 'secretsmanager:GetSecretValue', decision: 'implicit-deny' },
    { action: 'ecr:BatchImportUpstreamImage', resource: repoArn, decision: 'implicit-deny' },
  ];
  for (const { action, resource, decision } of cases) {
    test(`${action} is ${decision}`, () => {
      const result = evaluateIdentity([ecsTaskExecutionRolePolicy], request(action, resource));
      assert.equal(result.decision, decision);
      if (decision === 'allowed') {
        assert.deepEqual(refs(result, 'allowedBy'), [`${ecsTaskExecutionRolePolicy.name}#0`]);
      } else {
        assert.deepEqual(result.allowedBy, []);
        assert.deepEqual(result.missingAllowFrom, ['identity']);
      }
    });
  }

  test('no policies at all is an implicit deny', () => {
    const result = evaluateIdentity([], request('ecr:BatchGetImage'));
    assert.equal(result.decision, 'implicit-deny');
  });
});

describe('evaluateIdentity: actions, resources, wildcards and denies', () => {
  const denyEcr = policy('inline:ecsTaskExecutionRole/guard', {
    Sid: 'NoPulls',
    Effect: 'Deny',
    Action: 'ecr:BatchGetImage',
    Resource: '*',
  });
  const cases: {
    name: string;
    policies: NamedPolicy[];
    req: AccessRequest;
    decision: Decision;
    allowedBy?: string[];
    deniedBy?: string[];
  }[] = [
    {
      name: 'explicit deny wins over the managed allow',
      policies: [ecsTaskExecutionRolePolicy, denyEcr],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'explicit-deny',
      deniedBy: ['inline:ecsTaskExecutionRole/guard#NoPulls'],
    },
    {
      name: 'a deny on another action leaves the allow',
      policies: [ecsTaskExecutionRolePolicy, denyEcr],
      req: request('ecr:GetDownloadUrlForLayer', repoArn),
      decision: 'allowed',
    },
    {
      name: 'NotAction deny denies everything not listed',
      policies: [
        ecsTaskExecutionRolePolicy,
        policy('inline:r/only-logs', { Effect: 'Deny', NotAction: ['logs:*'], Resource: '*' }),
      ],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'explicit-deny',
      deniedBy: ['inline:r/only-logs#0'],
    },
    {
      name: 'NotAction deny leaves listed actions alone',
      policies: [
        ecsTaskExecutionRolePolicy,
        policy('inline:r/only-logs', { Effect: 'Deny', NotAction: ['logs:*'], Resource: '*' }),
      ],
      req: request('logs:PutLogEvents'),
      decision: 'allowed',
    },
    {
      name: 'NotAction allow grants unlisted actions',
      policies: [policy('inline:r/broad', { Effect: 'Allow', NotAction: 'iam:*', Resource: '*' })],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'allowed',
    },
    {
      name: 'service wildcard ecr:*',
      policies: [policy('inline:r/ecr', { Effect: 'Allow', Action: 'ecr:*', Resource: '*' })],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'allowed',
    },
    {
      name: 'prefix wildcard ecr:Get* matches GetDownloadUrlForLayer',
      policies: [policy('inline:r/get', { Effect: 'Allow', Action: 'ecr:Get*', Resource: '*' })],
      req: request('ecr:GetDownloadUrlForLayer', repoArn),
      decision: 'allowed',
    },
    {
      name: 'prefix wildcard ecr:Get* does not match BatchGetImage',
      policies: [policy('inline:r/get', { Effect: 'Allow', Action: 'ecr:Get*', Resource: '*' })],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'implicit-deny',
    },
    {
      name: 'the * action',
      policies: [policy('inline:r/admin', { Effect: 'Allow', Action: '*', Resource: '*' })],
      req: request('kms:Decrypt', 'arn:aws:kms:us-east-1:111122223333:key/abc'),
      decision: 'allowed',
    },
    {
      name: '? matches exactly one character',
      policies: [policy('inline:r/q', { Effect: 'Allow', Action: 'ssm:GetParameter?', Resource: '*' })],
      req: request('ssm:GetParameters'),
      decision: 'allowed',
    },
    {
      name: '? does not match two characters',
      policies: [policy('inline:r/q', { Effect: 'Allow', Action: 'ssm:GetParameter?', Resource: '*' })],
      req: request('ssm:GetParametersByPath'),
      decision: 'implicit-deny',
    },
    {
      name: 'resource wildcard spans : and / segments',
      policies: [
        policy('inline:r/repo', {
          Effect: 'Allow',
          Action: 'ecr:BatchGetImage',
          Resource: 'arn:aws:ecr:*:444455556666:repository/*',
        }),
      ],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'allowed',
    },
    {
      name: 'resource matching is case-sensitive',
      policies: [
        policy('inline:r/repo', {
          Effect: 'Allow',
          Action: 'ecr:BatchGetImage',
          Resource: 'arn:aws:ecr:us-east-1:444455556666:repository/Team/*',
        }),
      ],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'implicit-deny',
    },
    {
      name: 'a repository ARN does not cover actions needing Resource *',
      policies: [policy('inline:r/repo', { Effect: 'Allow', Action: 'ecr:*', Resource: repoArn })],
      req: request('ecr:GetAuthorizationToken'),
      decision: 'implicit-deny',
    },
    {
      name: 'NotResource deny spares the listed resource',
      policies: [
        ecsTaskExecutionRolePolicy,
        policy('inline:r/fence', { Effect: 'Deny', Action: 'ecr:*', NotResource: [repoArn, '*'] }),
      ],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'allowed',
    },
    {
      name: 'NotResource deny hits other resources',
      policies: [
        ecsTaskExecutionRolePolicy,
        policy('inline:r/fence', {
          Effect: 'Deny',
          Action: 'ecr:BatchGetImage',
          NotResource: 'arn:aws:ecr:us-east-1:444455556666:repository/other',
        }),
      ],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'explicit-deny',
      deniedBy: ['inline:r/fence#0'],
    },
    {
      name: 'a lone statement object is evaluated',
      policies: [policy('inline:r/one', { Effect: 'Allow', Action: 'logs:CreateLogGroup', Resource: '*' })],
      req: request('logs:CreateLogGroup'),
      decision: 'allowed',
      allowedBy: ['inline:r/one#0'],
    },
    {
      name: 'every matching allow is named',
      policies: [
        ecsTaskExecutionRolePolicy,
        policy('inline:r/pull', [
          { Sid: 'Other', Effect: 'Allow', Action: 's3:GetObject', Resource: '*' },
          { Sid: 'AllowEcr', Effect: 'Allow', Action: 'ecr:BatchGetImage', Resource: repoArn },
        ]),
      ],
      req: request('ecr:BatchGetImage', repoArn),
      decision: 'allowed',
      allowedBy: [`${ecsTaskExecutionRolePolicy.name}#0`, 'inline:r/pull#AllowEcr'],
    },
  ];
  for (const item of cases) {
    test(item.name, () => {
      const result = evaluateIdentity(item.policies, item.req);
      assert.equal(result.decision, item.decision);
      if (item.allowedBy) assert.deepEqual(refs(result, 'allowedBy'), item.allowedBy);
      if (item.deniedBy) assert.deepEqual(refs(result, 'deniedBy'), item.deniedBy);
      if (item.decision !== 'explicit-deny') assert.deepEqual(result.deniedBy, []);
    });
  }
});

describe('evaluateIdentity: conditions', () => {
  const conditioned = (condition: PolicyStatement['Condition'], effect: 'Allow' | 'Deny' = 'Allow') =>
    policy('inline:r/cond', [
      { Sid: 'Cond', Effect: effect, Action: 'ecr:BatchGetImage', Resource: '*', Condition: condition },
    ]);
  const cases: {
    name: string;
    condition: PolicyStatement['Condition'];
    context?: Record<string, string | string[]>;
    extra?: Partial<AccessRequest>;
    decision: Decision;
    undecided?: boolean;
  }[] = [
    {
      name: 'StringEquals decided true',
      condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': 'vpce-1' },
      decision: 'allowed',
    },
    {
      name: 'StringEquals decided false',
      condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': 'vpce-2' },
      decision: 'implicit-deny',
    },
    {
      name: 'StringEquals with several values is an OR',
      condition: { StringEquals: { 'aws:SourceVpce': ['vpce-1', 'vpce-2'] } },
      context: { 'aws:SourceVpce': 'vpce-2' },
      decision: 'allowed',
    },
    {
      name: 'condition keys are case-insensitive',
      condition: { StringEquals: { 'AWS:SOURCEVPCE': 'vpce-1' } },
      context: { 'aws:sourcevpce': 'vpce-1' },
      decision: 'allowed',
    },
    {
      name: 'StringEquals values are case-sensitive',
      condition: { StringEquals: { 'aws:SourceVpce': 'VPCE-1' } },
      context: { 'aws:SourceVpce': 'vpce-1' },
      decision: 'implicit-deny',
    },
    {
      name: 'StringEqualsIgnoreCase',
      condition: { StringEqualsIgnoreCase: { 'aws:SourceVpce': 'VPCE-1' } },
      context: { 'aws:SourceVpce': 'vpce-1' },
      decision: 'allowed',
    },
    {
      name: 'StringNotEquals with several values is a NOR',
      condition: { StringNotEquals: { 'aws:SourceVpce': ['vpce-1', 'vpce-2'] } },
      context: { 'aws:SourceVpce': 'vpce-2' },
      decision: 'implicit-deny',
    },
    {
      name: 'StringNotEquals holds for another value',
      condition: { StringNotEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': 'vpce-9' },
      decision: 'allowed',
    },
    {
      name: 'StringNotEquals holds when the key is known absent',
      condition: { StringNotEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': [] },
      decision: 'allowed',
    },
    {
      name: 'StringEquals fails when the key is known absent',
      condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': [] },
      decision: 'implicit-deny',
    },
    {
      name: 'StringEqualsIfExists holds when the key is known absent',
      condition: { StringEqualsIfExists: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': [] },
      decision: 'allowed',
    },
    {
      name: 'StringEqualsIfExists is checked when present',
      condition: { StringEqualsIfExists: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': 'vpce-3' },
      decision: 'implicit-deny',
    },
    {
      name: 'StringLike with wildcards',
      condition: { StringLike: { 'ecr:ResourceTag/team': 'pay*' } },
      context: { 'ecr:ResourceTag/team': 'payments' },
      decision: 'allowed',
    },
    {
      name: 'StringNotLike excludes matches',
      condition: { StringNotLike: { 'ecr:ResourceTag/team': 'pay*' } },
      context: { 'ecr:ResourceTag/team': 'payments' },
      decision: 'implicit-deny',
    },
    {
      name: 'ArnLike does not let * cross ARN segments',
      condition: { ArnLike: { 'aws:SourceArn': 'arn:aws:ecs:*:111122223333:*' } },
      context: { 'aws:SourceArn': 'arn:aws:ecs:us-east-1:999999999999:cluster/x:111122223333:y' },
      decision: 'implicit-deny',
    },
    {
      name: 'ArnLike matches within segments',
      condition: { ArnLike: { 'aws:SourceArn': 'arn:aws:ecs:*:111122223333:task/*' } },
      context: { 'aws:SourceArn': 'arn:aws:ecs:us-east-1:111122223333:task/prod/abc' },
      decision: 'allowed',
    },
    {
      name: 'ArnEquals exact',
      condition: { ArnEquals: { 'aws:PrincipalArn': roleArn } },
      extra: { principalArn: roleArn },
      decision: 'allowed',
    },
    {
      name: 'ArnNotEquals excludes the role',
      condition: { ArnNotEquals: { 'aws:PrincipalArn': roleArn } },
      extra: { principalArn: roleArn },
      decision: 'implicit-deny',
    },
    {
      name: 'ArnNotLike holds for other ARNs',
      condition: { ArnNotLike: { 'aws:PrincipalArn': 'arn:aws:iam::*:role/admin-*' } },
      extra: { principalArn: roleArn },
      decision: 'allowed',
    },
    {
      name: 'Bool matches case-insensitively and accepts a JSON boolean',
      condition: { Bool: { 'aws:SecureTransport': true } },
      context: { 'aws:SecureTransport': 'TRUE' },
      decision: 'allowed',
    },
    {
      name: 'Bool false does not match true',
      condition: { Bool: { 'aws:SecureTransport': 'false' } },
      context: { 'aws:SecureTransport': 'true' },
      decision: 'implicit-deny',
    },
    {
      name: 'Null true holds when the key is known absent',
      condition: { Null: { 'aws:SourceVpce': 'true' } },
      context: { 'aws:SourceVpce': [] },
      decision: 'allowed',
    },
    {
      name: 'Null true fails when the key is present',
      condition: { Null: { 'aws:SourceVpce': 'true' } },
      context: { 'aws:SourceVpce': 'vpce-1' },
      decision: 'implicit-deny',
    },
    {
      name: 'ForAnyValue:StringEquals with one matching value',
      condition: { 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['team', 'env'] } },
      context: { 'aws:TagKeys': ['owner', 'env'] },
      decision: 'allowed',
    },
    {
      name: 'ForAnyValue on an empty set is false',
      condition: { 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['team'] } },
      context: { 'aws:TagKeys': [] },
      decision: 'implicit-deny',
    },
    {
      name: 'ForAllValues:StringEquals needs every value listed',
      condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['team', 'env'] } },
      context: { 'aws:TagKeys': ['team', 'owner'] },
      decision: 'implicit-deny',
    },
    {
      name: 'ForAllValues:StringEquals with all values listed',
      condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['team', 'env'] } },
      context: { 'aws:TagKeys': ['env', 'team'] },
      decision: 'allowed',
    },
    {
      name: 'ForAllValues on an empty set is true',
      condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['team'] } },
      context: { 'aws:TagKeys': [] },
      decision: 'allowed',
    },
    {
      name: 'a multi-valued key under a negated operator needs every value to differ',
      condition: { StringNotEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': ['vpce-9', 'vpce-1'] },
      decision: 'implicit-deny',
    },
    {
      name: 'a multi-valued key under a positive operator needs one value to match',
      condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1' } },
      context: { 'aws:SourceVpce': ['vpce-9', 'vpce-1'] },
      decision: 'allowed',
    },
    {
      name: 'operators are ANDed',
      condition: {
        StringEquals: { 'aws:SourceVpce': 'vpce-1' },
        Bool: { 'aws:SecureTransport': 'true' },
      },
      context: { 'aws:SourceVpce': 'vpce-1', 'aws:SecureTransport': 'false' },
      decision: 'implicit-deny',
    },
    {
      name: 'aws:PrincipalAccount is derived from the principal',
      condition: { StringEquals: { 'aws:PrincipalAccount': account } },
      extra: { principalArn: sessionArn },
      decision: 'allowed',
    },
    {
      name: 'IpAddress within an IPv4 range',
      condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/16' } },
      context: { 'aws:SourceIp': '10.0.42.7' },
      decision: 'allowed',
    },
    {
      name: 'NotIpAddress for an address inside the range',
      condition: { NotIpAddress: { 'aws:SourceIp': ['10.0.0.0/16', '192.168.1.1'] } },
      context: { 'aws:SourceIp': '192.168.1.1' },
      decision: 'implicit-deny',
    },
    {
      name: 'NumericLessThan',
      condition: { NumericLessThan: { 'aws:MultiFactorAuthAge': '3600' } },
      context: { 'aws:MultiFactorAuthAge': '60' },
      decision: 'allowed',
    },
    {
      name: 'an unknown key leaves the statement undecided',
      condition: { StringEquals: { 'aws:SourceVpce': 'vpce-1' } },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'an unknown key under IfExists is undecided too',
      condition: { StringEqualsIfExists: { 'aws:SourceVpce': 'vpce-1' } },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'an unsupported operator is undecided',
      condition: { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } },
      context: { 'aws:CurrentTime': '2025-01-01T00:00:00Z' },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'IpAddress within an IPv6 range',
      condition: { IpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
      context: { 'aws:SourceIp': '2001:db8:ffff::1' },
      decision: 'allowed',
    },
    {
      name: 'IpAddress outside an IPv6 range',
      condition: { IpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
      context: { 'aws:SourceIp': '2001:db9::1' },
      decision: 'implicit-deny',
    },
    {
      name: 'IpAddress with ranges of both families, an IPv6 source',
      condition: { IpAddress: { 'aws:SourceIp': ['203.0.113.0/24', '2600:1f18:4000::/36'] } },
      context: { 'aws:SourceIp': '2600:1F18:4abc:0:0:0:0:7' },
      decision: 'allowed',
    },
    {
      name: 'an IPv4 source is in no IPv6 range',
      condition: { IpAddress: { 'aws:SourceIp': '::/0' } },
      context: { 'aws:SourceIp': '10.0.0.1' },
      decision: 'implicit-deny',
    },
    {
      name: 'NotIpAddress for an IPv6 address inside the range',
      condition: { NotIpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
      context: { 'aws:SourceIp': '2001:db8::1' },
      decision: 'implicit-deny',
    },
    {
      name: 'NotIpAddress for an IPv6 address outside the range',
      condition: { NotIpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
      context: { 'aws:SourceIp': '2600::1' },
      decision: 'allowed',
    },
    {
      name: 'a source that is not an address is undecided',
      condition: { IpAddress: { 'aws:SourceIp': '2001:db8::/32' } },
      context: { 'aws:SourceIp': 'not-an-ip' },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'a malformed range is undecided',
      condition: { IpAddress: { 'aws:SourceIp': '2001:db8::/129' } },
      context: { 'aws:SourceIp': '2001:db8::1' },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'a policy variable resolved from the context',
      condition: { StringEquals: { 'ecr:ResourceTag/owner': '${aws:PrincipalTag/team}' } },
      context: { 'ecr:ResourceTag/owner': 'payments', 'aws:PrincipalTag/team': 'payments' },
      decision: 'allowed',
    },
    {
      name: 'an unresolvable policy variable is undecided',
      condition: { StringEquals: { 'ecr:ResourceTag/owner': '${aws:PrincipalTag/team}' } },
      context: { 'ecr:ResourceTag/owner': 'payments' },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'a decided false beats an undecided part',
      condition: {
        StringEquals: { 'aws:SourceVpce': 'vpce-1', 'aws:SourceVpc': 'vpc-1' },
      },
      context: { 'aws:SourceVpce': 'vpce-2' },
      decision: 'implicit-deny',
    },
  ];
  for (const item of cases) {
    test(item.name, () => {
      const req = request('ecr:BatchGetImage', repoArn, {
        ...item.extra,
        ...(item.context ? { context: item.context } : {}),
      });
      const result = evaluateIdentity([conditioned(item.condition)], req);
      assert.equal(result.decision, item.decision);
      assert.deepEqual(refs(result, 'undecided'), item.undecided === true ? ['inline:r/cond#Cond'] : []);
    });
  }

  test('an undecided deny is reported next to a decided allow', () => {
    const result = evaluateIdentity(
      [ecsTaskExecutionRolePolicy, conditioned({ StringNotEquals: { 'aws:SourceVpce': 'vpce-1' } }, 'Deny')],
      request('ecr:BatchGetImage', repoArn),
    );
    assert.equal(result.decision, 'allowed');
    assert.deepEqual(refs(result, 'undecided'), ['inline:r/cond#Cond']);
    assert.equal(result.undecided[0]?.effect, 'Deny');
  });

  test('a decided deny makes undecided statements irrelevant', () => {
    const result = evaluateIdentity(
      [
        conditioned({ StringEquals: { 'aws:SourceVpce': 'vpce-1' } }),
        policy('inline:r/deny', { Effect: 'Deny', Action: 'ecr:*', Resource: '*' }),
      ],
      request('ecr:BatchGetImage', repoArn),
    );
    assert.equal(result.decision, 'explicit-deny');
    assert.deepEqual(result.undecided, []);
  });

  test('a deny with a condition that holds denies', () => {
    const result = evaluateIdentity(
      [ecsTaskExecutionRolePolicy, conditioned({ StringNotEquals: { 'aws:SourceVpce': 'vpce-1' } }, 'Deny')],
      request('ecr:BatchGetImage', repoArn, { context: { 'aws:SourceVpce': 'vpce-2' } }),
    );
    assert.equal(result.decision, 'explicit-deny');
    assert.deepEqual(refs(result, 'deniedBy'), ['inline:r/cond#Cond']);
  });
});

describe('evaluateIdentity: policy variables in resources', () => {
  const perUser = (version: string) =>
    policy(
      'inline:u/home',
      { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::bucket/${aws:username}/*' },
      'inline',
      version,
    );
  const target = 'arn:aws:s3:::bucket/alice/file';
  test('resolved from the context', () => {
    const result = evaluateIdentity(
      [perUser('2012-10-17')],
      request('s3:GetObject', target, { context: { 'aws:username': 'alice' } }),
    );
    assert.equal(result.decision, 'allowed');
  });
  test('resolved to another user does not match', () => {
    const result = evaluateIdentity(
      [perUser('2012-10-17')],
      request('s3:GetObject', target, { context: { 'aws:username': 'bob' } }),
    );
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.undecided, []);
  });
  test('unresolvable: undecided', () => {
    const result = evaluateIdentity([perUser('2012-10-17')], request('s3:GetObject', target));
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(refs(result, 'undecided'), ['inline:u/home#0']);
  });
  test('a 2008 document takes ${…} literally', () => {
    const result = evaluateIdentity(
      [perUser('2008-10-17')],
      request('s3:GetObject', 'arn:aws:s3:::bucket/${aws:username}/file'),
    );
    assert.equal(result.decision, 'allowed');
  });
  test('${*} stands for a literal asterisk', () => {
    const literal = policy('inline:u/star', {
      Effect: 'Allow',
      Action: 's3:GetObject',
      Resource: 'arn:aws:s3:::bucket/${*}',
    });
    assert.equal(
      evaluateIdentity([literal], request('s3:GetObject', 'arn:aws:s3:::bucket/*')).decision,
      'allowed',
    );
    assert.equal(
      evaluateIdentity([literal], request('s3:GetObject', 'arn:aws:s3:::bucket/x')).decision,
      'implicit-deny',
    );
  });
});

describe('evaluateIdentity: permissions boundary', () => {
  const boundary = (actions: string[]): NamedPolicy =>
    policy(
      'arn:aws:iam::111122223333:policy/boundary',
      { Sid: 'Bound', Effect: 'Allow', Action: actions, Resource: '*' },
      'boundary',
    );
  test('a boundary that covers the action keeps the allow', () => {
    const result = evaluateIdentity(
      [ecsTaskExecutionRolePolicy],
      request('ecr:BatchGetImage', repoArn),
      boundary(['ecr:*']),
    );
    assert.equal(result.decision, 'allowed');
    assert.deepEqual(refs(result, 'allowedBy'), [
      `${ecsTaskExecutionRolePolicy.name}#0`,
      'arn:aws:iam::111122223333:policy/boundary#Bound',
    ]);
  });
  test('a boundary that lacks the action denies, and says so', () => {
    const result = evaluateIdentity(
      [ecsTaskExecutionRolePolicy],
      request('ecr:BatchGetImage', repoArn),
      boundary(['logs:*']),
    );
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.missingAllowFrom, ['boundary']);
    assert.deepEqual(refs(result, 'allowedBy'), [`${ecsTaskExecutionRolePolicy.name}#0`]);
  });
  test('a boundary alone grants nothing', () => {
    const result = evaluateIdentity([], request('logs:CreateLogGroup'), boundary(['logs:*']));
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.missingAllowFrom, ['identity']);
  });
  test('a deny in the boundary is an explicit deny', () => {
    const denying = policy('boundary:b', { Effect: 'Deny', Action: 'ecr:*', Resource: '*' }, 'boundary');
    const result = evaluateIdentity([ecsTaskExecutionRolePolicy], request('ecr:BatchGetImage'), denying);
    assert.equal(result.decision, 'explicit-deny');
    assert.equal(result.deniedBy[0]?.kind, 'boundary');
  });
});

describe('evaluateResource: repository policies and principals', () => {
  const repositoryPolicy = (principal: PolicyStatement['Principal'], sid = 'CrossAccountPull'): NamedPolicy =>
    policy(
      'repository:team/app',
      {
        Sid: sid,
        Effect: 'Allow',
        Principal: principal,
        Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
      },
      'resource',
    );
  const cases: {
    name: string;
    principal: PolicyStatement['Principal'];
    req: Partial<AccessRequest>;
    decision: Decision;
    undecided?: boolean;
  }[] = [
    {
      name: 'account root principal admits a role of that account',
      principal: { AWS: `arn:aws:iam::${account}:root` },
      req: { principalArn: roleArn },
      decision: 'allowed',
    },
    {
      name: 'bare account id admits an assumed-role session of that account',
      principal: { AWS: account },
      req: { principalArn: sessionArn },
      decision: 'allowed',
    },
    {
      name: 'account root principal of another account does not admit',
      principal: { AWS: `arn:aws:iam::${otherAccount}:root` },
      req: { principalArn: roleArn },
      decision: 'implicit-deny',
    },
    {
      name: 'role ARN exact match',
      principal: { AWS: [roleArn] },
      req: { principalArn: roleArn },
      decision: 'allowed',
    },
    {
      name: 'role ARN matches an assumed-role session of that role',
      principal: { AWS: roleArn },
      req: { principalArn: sessionArn },
      decision: 'allowed',
    },
    {
      name: 'role ARN with a path matches an assumed-role session',
      principal: { AWS: `arn:aws:iam::${account}:role/service-role/ecsTaskExecutionRole` },
      req: { principalArn: sessionArn },
      decision: 'allowed',
    },
    {
      name: 'a different role of the same account does not match',
      principal: { AWS: `arn:aws:iam::${account}:role/deployer` },
      req: { principalArn: sessionArn },
      decision: 'implicit-deny',
    },
    {
      name: 'same role name in another account does not match',
      principal: { AWS: `arn:aws:iam::${otherAccount}:role/ecsTaskExecutionRole` },
      req: { principalArn: sessionArn },
      decision: 'implicit-deny',
    },
    {
      name: 'a role unique id (deleted role) matches nothing',
      principal: { AWS: 'AROAEXAMPLEID12345678' },
      req: { principalArn: roleArn },
      decision: 'implicit-deny',
    },
    {
      name: 'Principal "*" admits anyone',
      principal: '*',
      req: { principalArn: sessionArn },
      decision: 'allowed',
    },
    {
      name: 'AWS "*" admits anyone',
      principal: { AWS: '*' },
      req: { principalArn: 'codebuild.amazonaws.com' },
      decision: 'allowed',
    },
    {
      name: 'Service principal admits CodeBuild',
      principal: { Service: 'codebuild.amazonaws.com' },
      req: { principalArn: 'codebuild.amazonaws.com' },
      decision: 'allowed',
    },
    {
      name: 'Service principal does not admit a role',
      principal: { Service: 'codebuild.amazonaws.com' },
      req: { principalArn: roleArn },
      decision: 'implicit-deny',
    },
    {
      name: 'account principal does not admit a service',
      principal: { AWS: account },
      req: { principalArn: 'codebuild.amazonaws.com' },
      decision: 'implicit-deny',
    },
    {
      name: 'only the account known: role principal of that account is undecided',
      principal: { AWS: roleArn },
      req: { principalAccount: account },
      decision: 'implicit-deny',
      undecided: true,
    },
    {
      name: 'only the account known: role principal of another account is decided',
      principal: { AWS: `arn:aws:iam::${otherAccount}:role/x` },
      req: { principalAccount: account },
      decision: 'implicit-deny',
    },
    {
      name: 'only the account known: account principal is decided',
      principal: { AWS: account },
      req: { principalAccount: account },
      decision: 'allowed',
    },
  ];
  for (const item of cases) {
    test(item.name, () => {
      const result = evaluateResource(
        repositoryPolicy(item.principal),
        request('ecr:BatchGetImage', repoArn, item.req),
      );
      assert.equal(result.decision, item.decision);
      if (item.decision === 'allowed') {
        assert.deepEqual(refs(result, 'allowedBy'), ['repository:team/app#CrossAccountPull']);
      } else {
        assert.deepEqual(result.missingAllowFrom, ['resource']);
      }
      assert.equal(result.undecided.length, item.undecided === true ? 1 : 0);
    });
  }

  test('an action the repository policy does not list is not allowed', () => {
    const result = evaluateResource(
      repositoryPolicy({ AWS: account }),
      request('ecr:PutImage', repoArn, { principalArn: roleArn }),
    );
    assert.equal(result.decision, 'implicit-deny');
  });

  test('a resource statement without Principal grants nothing', () => {
    const result = evaluateResource(
      policy('repository:x', { Effect: 'Allow', Action: 'ecr:*' }, 'resource'),
      request('ecr:BatchGetImage', repoArn, { principalArn: roleArn }),
    );
    assert.equal(result.decision, 'implicit-deny');
  });

  test('a resource policy deny wins over its allow', () => {
    const result = evaluateResource(
      policy(
        'repository:team/app',
        [
          { Sid: 'All', Effect: 'Allow', Principal: '*', Action: 'ecr:*' },
          { Sid: 'NoThem', Effect: 'Deny', Principal: { AWS: roleArn }, Action: 'ecr:BatchGetImage' },
        ],
        'resource',
      ),
      request('ecr:BatchGetImage', repoArn, { principalArn: sessionArn }),
    );
    assert.equal(result.decision, 'explicit-deny');
    assert.deepEqual(refs(result, 'deniedBy'), ['repository:team/app#NoThem']);
  });

  test('resource policy with a PrincipalOrgID condition is undecided without the context', () => {
    const result = evaluateResource(
      policy(
        'repository:team/app',
        {
          Sid: 'Org',
          Effect: 'Allow',
          Principal: '*',
          Action: 'ecr:BatchGetImage',
          Condition: { StringEquals: { 'aws:PrincipalOrgID': 'o-abc' } },
        },
        'resource',
      ),
      request('ecr:BatchGetImage', repoArn, { principalArn: sessionArn }),
    );
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(refs(result, 'undecided'), ['repository:team/app#Org']);
  });
});

describe('evaluateResource: NotPrincipal', () => {
  const denyAllBut = (names: string[]): NamedPolicy =>
    policy(
      'repository:team/app',
      [
        { Sid: 'Anyone', Effect: 'Allow', Principal: '*', Action: 'ecr:*' },
        { Sid: 'OnlyThem', Effect: 'Deny', NotPrincipal: { AWS: names }, Action: 'ecr:*' },
      ],
      'resource',
    );
  const cases: { name: string; listed: string[]; principalArn: string; decision: Decision }[] = [
    {
      name: 'exempts a role listed with its account',
      listed: [roleArn, `arn:aws:iam::${account}:root`],
      principalArn: roleArn,
      decision: 'allowed',
    },
    {
      name: 'denies a role listed without its account',
      listed: [roleArn],
      principalArn: roleArn,
      decision: 'explicit-deny',
    },
    {
      name: 'denies a session when only the role ARN is listed',
      listed: [roleArn, account],
      principalArn: sessionArn,
      decision: 'explicit-deny',
    },
    {
      name: 'exempts a session listed by its session ARN and account',
      listed: [sessionArn, account],
      principalArn: sessionArn,
      decision: 'allowed',
    },
    {
      name: 'denies a principal not listed',
      listed: [`arn:aws:iam::${otherAccount}:role/x`, otherAccount],
      principalArn: roleArn,
      decision: 'explicit-deny',
    },
  ];
  test('an unknown principal leaves the NotPrincipal deny undecided', () => {
    const result = evaluateResource(denyAllBut([roleArn, account]), request('ecr:BatchGetImage', repoArn));
    assert.equal(result.decision, 'allowed');
    assert.deepEqual(refs(result, 'undecided'), ['repository:team/app#OnlyThem']);
  });
  for (const item of cases) {
    test(item.name, () => {
      const result = evaluateResource(
        denyAllBut(item.listed),
        request('ecr:BatchGetImage', repoArn, { principalArn: item.principalArn }),
      );
      assert.equal(result.decision, item.decision);
      if (item.decision === 'explicit-deny') {
        assert.deepEqual(refs(result, 'deniedBy'), ['repository:team/app#OnlyThem']);
      }
    });
  }
});

describe('evaluateResource: VPC endpoint policies', () => {
  const layerBucket = 'arn:aws:s3:::prod-us-east-1-starport-layer-bucket/*';
  const endpointPolicy = policy(
    'vpc-endpoint:vpce-0abc',
    {
      Sid: 'LayerBucket',
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:GetObject',
      Resource: ['arn:aws:s3:::prod-us-east-1-starport-layer-bucket/*'],
    },
    'endpoint',
  );
  test('allows the layer bucket', () => {
    const result = evaluateResource(
      endpointPolicy,
      request('s3:GetObject', layerBucket.replace('*', 'sha256/abc'), { principalArn: sessionArn }),
    );
    assert.equal(result.decision, 'allowed');
    assert.equal(result.allowedBy[0]?.kind, 'endpoint');
  });
  test('does not allow another bucket', () => {
    const result = evaluateResource(
      endpointPolicy,
      request('s3:GetObject', 'arn:aws:s3:::my-bucket/x', { principalArn: sessionArn }),
    );
    assert.equal(result.decision, 'implicit-deny');
  });
});

describe('combineDecisions', () => {
  const crossAccountRepo = policy(
    'repository:team/app',
    { Sid: 'Pull', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'ecr:*' },
    'resource',
  );
  const otherRepo = policy(
    'repository:team/app',
    { Sid: 'Pull', Effect: 'Allow', Principal: { AWS: otherAccount }, Action: 'ecr:*' },
    'resource',
  );
  const pull = request('ecr:BatchGetImage', repoArn, { principalArn: sessionArn });
  const identityAllows = evaluateIdentity([ecsTaskExecutionRolePolicy], pull);
  const identityLacks = evaluateIdentity([], pull);

  test('cross-account: both allow', () => {
    const result = combineDecisions(identityAllows, evaluateResource(crossAccountRepo, pull), true);
    assert.equal(result.decision, 'allowed');
    assert.equal(result.allowedBy.length, 2);
  });
  test('cross-account: repository policy lacks the principal', () => {
    const result = combineDecisions(identityAllows, evaluateResource(otherRepo, pull), true);
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.missingAllowFrom, ['resource']);
  });
  test('cross-account: no repository policy at all', () => {
    const result = combineDecisions(identityAllows, undefined, true);
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.missingAllowFrom, ['resource']);
  });
  test('cross-account: repository allows but the role does not', () => {
    const result = combineDecisions(identityLacks, evaluateResource(crossAccountRepo, pull), true);
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.missingAllowFrom, ['identity']);
  });
  test('same account: the repository policy alone is enough', () => {
    const result = combineDecisions(identityLacks, evaluateResource(crossAccountRepo, pull), false);
    assert.equal(result.decision, 'allowed');
  });
  test('same account: the identity policy alone is enough', () => {
    const result = combineDecisions(identityAllows, evaluateResource(otherRepo, pull), false);
    assert.equal(result.decision, 'allowed');
  });
  test('same account: no repository policy keeps the identity decision', () => {
    assert.deepEqual(combineDecisions(identityLacks, undefined, false), identityLacks);
  });
  test('same account: neither allows', () => {
    const result = combineDecisions(identityLacks, evaluateResource(otherRepo, pull), false);
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(result.missingAllowFrom, ['identity', 'resource']);
  });
  test('an explicit deny in the repository policy wins over both allows', () => {
    const denying = policy(
      'repository:team/app',
      [
        { Sid: 'Pull', Effect: 'Allow', Principal: { AWS: account }, Action: 'ecr:*' },
        { Sid: 'Block', Effect: 'Deny', Principal: '*', Action: 'ecr:BatchGetImage' },
      ],
      'resource',
    );
    for (const crossAccount of [true, false]) {
      const result = combineDecisions(identityAllows, evaluateResource(denying, pull), crossAccount);
      assert.equal(result.decision, 'explicit-deny');
      assert.deepEqual(refs(result, 'deniedBy'), ['repository:team/app#Block']);
    }
  });
  test('cross-account: undecided allows only from the layer that did not allow', () => {
    const conditional = policy(
      'repository:team/app',
      {
        Sid: 'Org',
        Effect: 'Allow',
        Principal: '*',
        Action: 'ecr:*',
        Condition: { StringEquals: { 'aws:PrincipalOrgID': 'o-1' } },
      },
      'resource',
    );
    const result = combineDecisions(identityAllows, evaluateResource(conditional, pull), true);
    assert.equal(result.decision, 'implicit-deny');
    assert.deepEqual(refs(result, 'undecided'), ['repository:team/app#Org']);
  });
});

describe('formatStatementRef', () => {
  const cases: { ref: Parameters<typeof formatStatementRef>[0]; text: string }[] = [
    {
      ref: {
        policy: 'inline:ecsTaskExecutionRole/pull',
        kind: 'inline',
        sid: 'AllowEcr',
        index: 0,
        effect: 'Allow',
      },
      text: 'inline:ecsTaskExecutionRole/pull#AllowEcr',
    },
    {
      ref: { policy: 'arn:aws:iam::aws:policy/X', kind: 'managed', index: 2, effect: 'Deny' },
      text: 'arn:aws:iam::aws:policy/X#2',
    },
    {
      ref: { policy: 'repository:r', kind: 'resource', sid: '', index: 1, effect: 'Allow' },
      text: 'repository:r#1',
    },
  ];
  for (const { ref, text } of cases) {
    test(text, () => assert.equal(formatStatementRef(ref), text));
  }
  test('refs from evaluation carry the statement position', () => {
    const document: PolicyDocument = parsePolicyDocument(
      encodeURIComponent(
        JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 's3:*', Resource: '*' },
            { Effect: 'Allow', Action: 'ecr:*', Resource: '*' },
          ],
        }),
      ),
    );
    const result = evaluateIdentity(
      [{ name: 'arn:aws:iam::aws:policy/X', kind: 'managed', document }],
      request('ecr:BatchGetImage'),
    );
    assert.deepEqual(refs(result, 'allowedBy'), ['arn:aws:iam::aws:policy/X#1']);
  });
});
