import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  arnAccount,
  arnRegion,
  arnResourceName,
  formatArn,
  keepArns,
  parseArn,
  parseIamPrincipalArn,
  parseSecretArn,
  parseSecretsManagerReference,
  partitionOf,
  secretNameWithoutSuffix,
  splitArn,
} from './arn.ts';

describe('parseArn', () => {
  it('reads the six fields and the resource type and id of every resource form', () => {
    assert.deepEqual(parseArn('arn:aws:ecs:us-east-1:111122223333:task/prod/0f1e2d'), {
      partition: 'aws',
      service: 'ecs',
      region: 'us-east-1',
      account: '111122223333',
      resource: 'task/prod/0f1e2d',
      resourceType: 'task',
      resourceId: 'prod/0f1e2d',
    });
    const logGroup = parseArn('arn:aws-cn:logs:cn-north-1:111122223333:log-group:/ecs/web:*');
    assert.equal(logGroup?.partition, 'aws-cn');
    assert.equal(logGroup?.resource, 'log-group:/ecs/web:*');
    assert.equal(logGroup?.resourceType, 'log-group');
    assert.equal(logGroup?.resourceId, '/ecs/web:*');
    const bucket = parseArn('arn:aws:s3:::my-bucket');
    assert.deepEqual(
      [bucket?.region, bucket?.account, bucket?.resourceType, bucket?.resourceId],
      ['', '', '', 'my-bucket'],
    );
    const policy = parseArn('arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy');
    assert.equal(policy?.account, 'aws');
    assert.equal(policy?.resourceId, 'service-role/AmazonECSTaskExecutionRolePolicy');
  });

  it('refuses what is not an ARN', () => {
    for (const text of [
      '',
      'web',
      'prod/db',
      'arn:aws:ecs:us-east-1',
      'arn::ecs:us-east-1:111122223333:task/x',
      'arn:aws::us-east-1:111122223333:task/x',
      'urn:aws:ecs:us-east-1:111122223333:task/x',
    ]) {
      assert.equal(parseArn(text), undefined, text);
    }
    assert.equal(parseArn(undefined), undefined);
  });

  it('splits policy values with wildcards at the first five colons only', () => {
    assert.deepEqual(splitArn('arn:aws:s3:::bucket/a:b'), ['arn', 'aws', 's3', '', '', 'bucket/a:b']);
    assert.deepEqual(splitArn('arn:*:ecr:*:*:repository/*'), ['arn', '*', 'ecr', '*', '*', 'repository/*']);
    assert.equal(splitArn('*'), undefined);
    assert.equal(splitArn('arn:aws:s3::'), undefined);
  });

  it('formats what it parses back to the same text', () => {
    for (const text of [
      'arn:aws:ecs:us-east-1:111122223333:task/prod/0f1e2d',
      'arn:aws:s3:::my-bucket/*',
      'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234',
      'arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/web:*',
    ]) {
      const parsed = parseArn(text);
      assert.ok(parsed, text);
      assert.equal(formatArn(parsed), text);
    }
    assert.equal(formatArn({ partition: 'aws', service: 'iam', resource: 'role/x' }), 'arn:aws:iam:::role/x');
  });
});

describe('ARN fields', () => {
  it('gives the account only when it is an account id, and the region only when there is one', () => {
    assert.equal(arnAccount('arn:aws:ecs:us-east-1:111122223333:task/x'), '111122223333');
    assert.equal(arnAccount('arn:aws:iam::aws:policy/x'), undefined);
    assert.equal(arnAccount('arn:aws:s3:::bucket'), undefined);
    assert.equal(arnAccount('111122223333'), undefined);
    assert.equal(arnAccount(undefined), undefined);
    assert.equal(arnRegion('arn:aws:ecs:eu-west-1:111122223333:task/x'), 'eu-west-1');
    assert.equal(arnRegion('arn:aws:iam::111122223333:role/x'), undefined);
    assert.equal(arnRegion('web'), undefined);
  });

  it('names a resource by its last path segment', () => {
    assert.equal(arnResourceName('arn:aws:iam::111122223333:role/service-role/build'), 'build');
    assert.equal(arnResourceName('arn:aws:iam::111122223333:instance-profile/ecs'), 'ecs');
    assert.equal(arnResourceName('plain'), 'plain');
  });

  it('knows the partition of a region', () => {
    assert.equal(partitionOf('us-east-1'), 'aws');
    assert.equal(partitionOf('cn-northwest-1'), 'aws-cn');
    assert.equal(partitionOf('us-gov-west-1'), 'aws-us-gov');
  });
});

describe('parseIamPrincipalArn', () => {
  it('reads roles with paths, role sessions, users and the account root', () => {
    assert.deepEqual(parseIamPrincipalArn('arn:aws:iam::111122223333:role/service-role/build'), {
      partition: 'aws',
      service: 'iam',
      account: '111122223333',
      kind: 'role',
      roleName: 'build',
    });
    assert.deepEqual(parseIamPrincipalArn('arn:aws:sts::111122223333:assumed-role/exec/0f1e2d/x'), {
      partition: 'aws',
      service: 'sts',
      account: '111122223333',
      kind: 'assumed-role',
      roleName: 'exec',
      session: '0f1e2d/x',
    });
    assert.equal(parseIamPrincipalArn('arn:aws:iam::111122223333:user/ci')?.kind, 'user');
    assert.equal(parseIamPrincipalArn('arn:aws:iam::111122223333:root')?.kind, 'root');
  });

  it('keeps the role of a message whose account was masked, without an account', () => {
    const masked = parseIamPrincipalArn('arn:aws:sts::***:assumed-role/exec/abc');
    assert.equal(masked?.account, undefined);
    assert.equal(masked?.roleName, 'exec');
  });

  it('refuses ARNs of other services, regional ones and empty resources', () => {
    assert.equal(parseIamPrincipalArn('arn:aws:ecs:us-east-1:111122223333:task/x'), undefined);
    assert.equal(parseIamPrincipalArn('arn:aws:iam:us-east-1:111122223333:role/x'), undefined);
    assert.equal(parseIamPrincipalArn('arn:aws:iam::111122223333:'), undefined);
    assert.equal(parseIamPrincipalArn('ecs-tasks.amazonaws.com'), undefined);
  });
});

describe('Secrets Manager ARNs', () => {
  it('reads the secret ARN and the json-key, version-stage and version-id after it', () => {
    assert.deepEqual(
      parseSecretArn(
        'arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf:password:AWSCURRENT:',
      ),
      {
        id: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf',
        partition: 'aws',
        region: 'us-east-1',
        account: '111122223333',
        name: 'prod/db-AbCdEf',
        jsonKey: 'password',
        versionStage: 'AWSCURRENT',
      },
    );
    const partial = parseSecretArn(
      'arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db::AWSPREVIOUS:v1',
    );
    assert.equal(partial?.id, 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db');
    assert.equal(partial?.name, 'prod/db');
    assert.equal(partial?.jsonKey, undefined);
    assert.equal(partial?.versionStage, 'AWSPREVIOUS');
    assert.equal(partial?.versionId, 'v1');
  });

  it('reads a reference by name or by ARN the same way', () => {
    assert.deepEqual(parseSecretsManagerReference('ci/hub:username'), { id: 'ci/hub', jsonKey: 'username' });
    assert.deepEqual(parseSecretsManagerReference('ci/hub'), { id: 'ci/hub' });
    assert.deepEqual(parseSecretsManagerReference('ci/hub::AWSPREVIOUS'), {
      id: 'ci/hub',
      versionStage: 'AWSPREVIOUS',
    });
    const arn = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:ci/hub-AbCdEf';
    assert.deepEqual(parseSecretsManagerReference(`${arn}::`), { id: arn });
    assert.deepEqual(parseSecretsManagerReference(`${arn}:password::v2`), {
      id: arn,
      jsonKey: 'password',
      versionId: 'v2',
    });
  });

  it('refuses parameters and other services', () => {
    assert.equal(parseSecretArn('arn:aws:ssm:us-east-1:111122223333:parameter/db'), undefined);
    assert.equal(parseSecretArn('prod/db'), undefined);
  });

  it('drops only a random suffix of six characters', () => {
    assert.equal(secretNameWithoutSuffix('prod/db-AbCdEf'), 'prod/db');
    assert.equal(secretNameWithoutSuffix('prod/db'), 'prod/db');
    assert.equal(secretNameWithoutSuffix('prod/db-AbCdE'), 'prod/db-AbCdE');
    assert.equal(secretNameWithoutSuffix('dockerhub/pull-XyZ123'), 'dockerhub/pull');
  });
});

describe('keepArns', () => {
  it('leaves the ARNs in a text as they were, and changes the rest', () => {
    const text =
      'failed to fetch secret arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf, token=abc';
    const upper = keepArns(text, (shielded) => shielded.toUpperCase());
    assert.equal(
      upper,
      'FAILED TO FETCH SECRET arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf, TOKEN=ABC',
    );
    assert.equal(
      keepArns('no arn here', (shielded) => `${shielded}!`),
      'no arn here!',
    );
  });

  it('keeps several ARNs in order, and ends each at a quote, comma or space', () => {
    const text = `"arn:aws:iam::111122223333:role/a","arn:aws:s3:::b/*" arn:aws:ecr:us-east-1:111122223333:repository/c;`;
    assert.equal(
      keepArns(text, (shielded) => shielded.replaceAll('"', "'")),
      `'arn:aws:iam::111122223333:role/a','arn:aws:s3:::b/*' arn:aws:ecr:us-east-1:111122223333:repository/c;`,
    );
  });
});
