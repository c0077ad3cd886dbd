import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { egressOf, rateLimitCheck } from './ratelimit.ts';
import { classifyImage } from '../images.ts';
import type { Facts, Finding, Fix, ImageFacts, Lookup, NetworkFacts, RoleFacts } from '../types.ts';
import { baseFacts } from './facts.test-support.ts';

const account = '111122223333';
const region = 'eu-west-1';
const digest = `sha256:${'c'.repeat(64)}`;

function image(reference: string, container = 'web', credentialsParameter?: string): ImageFacts {
  const { ecr: _location, ...classified } = classifyImage(reference, { region, accountId: account });
  const result: ImageFacts = { ...classified, container };
  if (credentialsParameter !== undefined) result.credentialsParameter = credentialsParameter;
  return result;
}

function facts(images: ImageFacts[], overrides: Partial<Facts> = {}): Facts {
  const subject: Facts['subject'] = { kind: 'task-definition', name: 'web:3' };
  return baseFacts({ region, accountId: account, subject }, images, overrides);
}

const notChecked: Lookup<never> = { state: 'missing', detail: 'not collected' };

function network(routes: object[], assignPublicIp: boolean): NetworkFacts {
  return {
    region,
    vpcId: 'vpc-1',
    vpc: notChecked,
    dnsSupport: notChecked,
    dnsHostnames: notChecked,
    subnets: notChecked,
    routeTables: { state: 'found', value: [{ RouteTableId: 'rtb-1', Routes: routes }] },
    securityGroups: notChecked,
    networkAcls: notChecked,
    endpoints: notChecked,
    endpointSecurityGroups: notChecked,
    prefixLists: notChecked,
    assignPublicIp,
  };
}

const natRoute = { DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: 'nat-0abc', State: 'active' };
const igwRoute = { DestinationCidrBlock: '0.0.0.0/0', GatewayId: 'igw-0def', State: 'active' };

function role(name: string, purpose: RoleFacts['purpose']): Lookup<RoleFacts> {
  return {
    state: 'found',
    value: {
      arn: `arn:aws:iam::${account}:role/${name}`,
      name,
      purpose,
      policies: { state: 'found', value: [] },
    },
  };
}

function single(findings: Finding[]): Finding {
  assert.equal(findings.length, 1);
  return findings[0] as Finding;
}

function fixesOf(finding: Finding, kind: Fix['kind']): Fix[] {
  return finding.fixes.filter((fix) => fix.kind === kind);
}

/** The part of an IAM policy document these tests read. */
interface PolicyDocument {
  Statement: { Action: string | string[]; Resource: string | string[] }[];
}

describe('rateLimitCheck: which images and how sure', () => {
  const secret = `arn:aws:secretsmanager:${region}:${account}:secret:dockerhub/pull-AbCdEf`;
  const cases: { name: string; images: ImageFacts[]; overrides?: Partial<Facts>; expected: string[] }[] = [
    { name: 'no images', images: [], expected: [] },
    {
      name: 'ECR, ECR Public, other and invalid images',
      images: [
        image(`${account}.dkr.ecr.${region}.amazonaws.com/app`),
        image('public.ecr.aws/docker/library/nginx'),
        image('ghcr.io/o/a'),
        image('NGINX'),
      ],
      expected: [],
    },
    {
      name: 'anonymous on Fargate in private subnets (network unknown)',
      images: [image('nginx:1.25')],
      expected: ['likely'],
    },
    {
      name: 'anonymous behind a NAT gateway',
      images: [image('nginx')],
      overrides: { network: network([natRoute], false) },
      expected: ['likely'],
    },
    {
      name: 'anonymous behind a transit gateway',
      images: [image('nginx')],
      overrides: {
        network: network([{ DestinationCidrBlock: '0.0.0.0/0', TransitGatewayId: 'tgw-1' }], false),
      },
      expected: ['likely'],
    },
    {
      name: 'anonymous Fargate with its own public IP',
      images: [image('nginx')],
      overrides: { network: network([igwRoute], true) },
      expected: ['possible'],
    },
    {
      name: 'anonymous on EC2 (instances share their address)',
      images: [image('nginx')],
      overrides: { launchType: 'EC2' },
      expected: ['likely'],
    },
    {
      name: 'anonymous on CodeBuild',
      images: [image('node:20')],
      overrides: { launchType: 'CODEBUILD' },
      expected: ['likely'],
    },
    {
      name: 'authenticated behind NAT',
      images: [image('grafana/grafana', 'web', secret)],
      overrides: { network: network([natRoute], false) },
      expected: ['possible'],
    },
    {
      name: 'two Docker Hub images',
      images: [image('nginx', 'a'), image('docker.io/bitnami/redis:7', 'b')],
      expected: ['likely', 'likely'],
    },
    { name: 'pinned by digest only', images: [image(`redis@${digest}`)], expected: ['likely'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const findings = rateLimitCheck(facts(c.images, c.overrides));
      assert.deepEqual(
        findings.map((f) => f.certainty),
        c.expected,
      );
      for (const finding of findings) {
        assert.equal(finding.id, 'docker-hub-rate-limit');
        assert.equal(finding.cause, 'rate-limit');
        assert.equal(finding.hop, 'rate-limit');
        assert.equal(finding.severity, 'warning');
      }
    });
  }
});

describe('rateLimitCheck: remediation artefacts', () => {
  test('official image: ECR Public, pull-through (with library/), repositoryCredentials, a copy into ECR', () => {
    const finding = single(
      rateLimitCheck(
        facts([image('nginx:1.25', 'proxy')], {
          pullRole: role('ecsTaskExecutionRole', 'execution'),
          executionRole: role('ecsTaskExecutionRole', 'execution'),
        }),
      ),
    );
    const references = fixesOf(finding, 'reference').map((fix) => fix.content);
    assert.deepEqual(references, [
      'public.ecr.aws/docker/library/nginx:1.25',
      `${account}.dkr.ecr.${region}.amazonaws.com/docker-hub/library/nginx:1.25`,
      `${account}.dkr.ecr.${region}.amazonaws.com/mirror/library/nginx:1.25`,
      'CACHE:5000/docker.io/library/nginx:1.25',
    ]);
    const [pullThrough, secret] = fixesOf(finding, 'aws-cli');
    assert.match(
      pullThrough?.content ?? '',
      /aws ecr create-pull-through-cache-rule --ecr-repository-prefix docker-hub/,
    );
    assert.match(pullThrough?.content ?? '', /--name ecr-pullthroughcache\/docker-hub/);
    assert.equal(
      secret?.content,
      `aws secretsmanager create-secret --name dockerhub/pull --secret-string '{"username":"<docker-hub-user>","password":"<access-token>"}' --region ${region}`,
    );
    const [pullPolicy, secretPolicy, kmsPolicy] = fixesOf(finding, 'iam-policy').map(
      (fix) => JSON.parse(fix.content ?? '{}') as PolicyDocument,
    );
    const pullThroughStatement = pullPolicy?.Statement[1];
    assert.deepEqual(
      pullThroughStatement?.Resource,
      `arn:aws:ecr:${region}:${account}:repository/docker-hub/*`,
    );
    assert.ok(pullThroughStatement?.Action.includes('ecr:BatchImportUpstreamImage'));
    assert.ok(pullThroughStatement.Action.includes('ecr:CreateRepository'));
    assert.deepEqual(secretPolicy?.Statement[0]?.Action, 'secretsmanager:GetSecretValue');
    assert.equal(
      secretPolicy.Statement[0].Resource,
      `arn:aws:secretsmanager:${region}:${account}:secret:dockerhub/pull-*`,
    );
    assert.equal(kmsPolicy?.Statement[0]?.Action, 'kms:Decrypt');
    assert.ok(
      fixesOf(finding, 'iam-policy').every((fix) => fix.summary.includes('role ecsTaskExecutionRole')),
    );
    const [patch] = fixesOf(finding, 'task-definition-patch');
    assert.deepEqual(JSON.parse(patch?.content ?? '{}'), {
      containerDefinitions: [
        { name: 'proxy', repositoryCredentials: { credentialsParameter: 'dockerhub/pull' } },
      ],
    });
    assert.deepEqual(fixesOf(finding, 'shell')[0]?.content?.split('\n'), [
      `aws ecr create-repository --repository-name mirror/library/nginx --region ${region}`,
      `pullsafe copy docker.io/library/nginx:1.25 ${account}.dkr.ecr.${region}.amazonaws.com/mirror/library/nginx:1.25`,
    ]);
    assert.deepEqual(fixesOf(finding, 'shell')[1]?.content?.split('\n'), [
      'pullsafe serve --proxy docker.io --listen 0.0.0.0:5000 --storage /var/lib/pullsafe',
      'pullsafe rewrite --to-cache http://CACHE:5000',
    ]);
    assert.equal(fixesOf(finding, 'buildspec').length, 0);
  });

  test('non-official image: no ECR Public copy, pull-through reference keeps the namespace', () => {
    const finding = single(rateLimitCheck(facts([image('bitnami/redis:7')])));
    assert.equal(
      fixesOf(finding, 'reference')[0]?.content,
      `${account}.dkr.ecr.${region}.amazonaws.com/docker-hub/bitnami/redis:7`,
    );
    assert.ok(
      finding.fixes.some((fix) => fix.kind === 'text' && /no copy of bitnami\/redis/.test(fix.summary)),
    );
  });

  test('no tag means latest; a digest is kept', () => {
    const [latest, pinned] = rateLimitCheck(facts([image('nginx', 'a'), image(`nginx@${digest}`, 'b')]));
    assert.equal(
      fixesOf(latest as Finding, 'reference')[0]?.content,
      'public.ecr.aws/docker/library/nginx:latest',
    );
    assert.equal(
      fixesOf(pinned as Finding, 'reference')[0]?.content,
      `public.ecr.aws/docker/library/nginx@${digest}`,
    );
    assert.match(
      fixesOf(pinned as Finding, 'shell')[0]?.content ?? '',
      new RegExp(`pullsafe copy docker\\.io/library/nginx@${digest} \\S+/mirror/library/nginx@${digest}$`),
    );
  });

  test('a private Docker Hub image is copied with its repositoryCredentials secret', () => {
    const finding = single(rateLimitCheck(facts([image('acme/api:2', 'api', 'dockerhub/acme')])));
    assert.match(
      fixesOf(finding, 'shell')[0]?.content ?? '',
      /pullsafe copy --src-secret dockerhub\/acme --region eu-west-1 docker\.io\/acme\/api:2 \S+\/mirror\/acme\/api:2/,
    );
  });

  test('unknown account and China region: placeholders and the aws-cn partition', () => {
    const finding = single(
      rateLimitCheck(facts([image('alpine:3')], { region: 'cn-north-1', accountId: undefined })),
    );
    assert.equal(
      fixesOf(finding, 'reference')[1]?.content,
      '<account-id>.dkr.ecr.cn-north-1.amazonaws.com.cn/docker-hub/library/alpine:3',
    );
    const policies = fixesOf(finding, 'iam-policy').map((fix) => fix.content ?? '');
    assert.ok(policies.every((policy) => policy.includes('arn:aws-cn:') && !policy.includes('arn:aws:')));
  });

  test('already authenticated: no repositoryCredentials fixes again', () => {
    const finding = single(rateLimitCheck(facts([image('nginx', 'web', 'dockerhub/pull')])));
    assert.equal(fixesOf(finding, 'task-definition-patch').length, 0);
    assert.match(evidence(finding, 'credentials') ?? '', /repositoryCredentials dockerhub\/pull/);
  });

  test('CodeBuild: buildspec login with env.secrets-manager and the project registry credential', () => {
    const finding = single(
      rateLimitCheck(
        facts([image('node:20', 'build')], {
          launchType: 'CODEBUILD',
          subject: { kind: 'codebuild-project', name: 'site' },
          project: {
            name: 'site',
            serviceRole: `arn:aws:iam::${account}:role/codebuild-site`,
            environment: {
              type: 'LINUX_CONTAINER',
              image: 'node:20',
              computeType: 'BUILD_GENERAL1_SMALL',
              imagePullCredentialsType: 'CODEBUILD',
              environmentVariables: [{ name: 'API_KEY', value: 'do-not-print', type: 'PLAINTEXT' }],
            },
          },
        }),
      ),
    );
    const [buildspec] = fixesOf(finding, 'buildspec');
    const content = buildspec?.content ?? '';
    assert.match(
      content,
      /secrets-manager:\n\s+DOCKERHUB_USER: dockerhub\/pull:username\n\s+DOCKERHUB_TOKEN: dockerhub\/pull:password/,
    );
    assert.match(
      content,
      /pre_build:\n\s+commands:\n\s+- echo "\$DOCKERHUB_TOKEN" \| docker login --username "\$DOCKERHUB_USER" --password-stdin/,
    );
    assert.equal(fixesOf(finding, 'task-definition-patch').length, 0);
    const update = fixesOf(finding, 'aws-cli').find(
      (fix) => fix.content?.startsWith('aws codebuild update-project') === true,
    );
    assert.ok(update);
    assert.match(update.content ?? '', /"imagePullCredentialsType":"SERVICE_ROLE"/);
    assert.match(
      update.content ?? '',
      /"registryCredential":\{"credential":"dockerhub\/pull","credentialProvider":"SECRETS_MANAGER"\}/,
    );
    assert.ok(!JSON.stringify(finding).includes('do-not-print'));
    assert.ok(fixesOf(finding, 'iam-policy').some((fix) => fix.summary.includes('codebuild-site')));
  });

  test('detail never quotes a fixed limit', () => {
    const finding = single(rateLimitCheck(facts([image('nginx')])));
    assert.doesNotMatch(finding.detail, /\b(100|200)\b/);
    assert.match(finding.detail, /RateLimit-Limit/);
  });
});

describe('egressOf', () => {
  test('NAT gateway is named', () => {
    const egress = egressOf(facts([], { network: network([natRoute], false) }));
    assert.equal(egress.shared, true);
    assert.match(egress.description, /nat-0abc/);
  });

  test('a blackhole default route is not egress', () => {
    const egress = egressOf(
      facts([], { network: network([{ ...natRoute, State: 'blackhole' }, igwRoute], true) }),
    );
    assert.equal(egress.shared, false);
  });
});

function evidence(finding: Finding, label: string): string | undefined {
  return finding.evidence.find((item) => item.label === label)?.value;
}
