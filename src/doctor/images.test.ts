import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyImage,
  dockerHubPullThroughCommands,
  endpointNeeds,
  matchPullThroughPrefix,
  parseEcrHost,
  pullRequirements,
  type ImageClassification,
} from './images.ts';

const account = '111122223333';
const other = '444455556666';
const digest = `sha256:${'a'.repeat(64)}`;
const context = { region: 'eu-west-1', accountId: account };

describe('classifyImage: registry kinds and normalisation', () => {
  const cases: {
    reference: string;
    kind: ImageClassification['kind'];
    registry?: string;
    repository?: string;
    tag?: string;
    digest?: string;
    official?: boolean;
  }[] = [
    {
      reference: 'nginx',
      kind: 'docker-hub',
      registry: 'docker.io',
      repository: 'library/nginx',
      official: true,
    },
    { reference: 'nginx:1.25', kind: 'docker-hub', repository: 'library/nginx', tag: '1.25', official: true },
    {
      reference: 'docker.io/library/redis:7',
      kind: 'docker-hub',
      repository: 'library/redis',
      tag: '7',
      official: true,
    },
    {
      reference: 'index.docker.io/bitnami/redis',
      kind: 'docker-hub',
      registry: 'docker.io',
      repository: 'bitnami/redis',
      official: false,
    },
    {
      reference: 'grafana/grafana:10.0.0',
      kind: 'docker-hub',
      repository: 'grafana/grafana',
      official: false,
    },
    { reference: `nginx@${digest}`, kind: 'docker-hub', repository: 'library/nginx', digest, official: true },
    {
      reference: 'public.ecr.aws/docker/library/nginx:1.25',
      kind: 'ecr-public',
      registry: 'public.ecr.aws',
      repository: 'docker/library/nginx',
    },
    { reference: 'ghcr.io/org/app:1', kind: 'other', registry: 'ghcr.io', repository: 'org/app', tag: '1' },
    { reference: 'localhost:5000/app', kind: 'other', registry: 'localhost:5000' },
    {
      reference: `${account}.dkr.ecr.eu-west-1.amazonaws.com/app:v1`,
      kind: 'ecr',
      repository: 'app',
      tag: 'v1',
    },
    {
      reference: `${account}.DKR.ECR.EU-WEST-1.AMAZONAWS.COM/app`,
      kind: 'ecr',
      registry: `${account}.dkr.ecr.eu-west-1.amazonaws.com`,
    },
    // Not ECR: wrong account-id length, a non-China region on a .cn host, a made-up suffix.
    { reference: '12345.dkr.ecr.eu-west-1.amazonaws.com/app', kind: 'other' },
    { reference: `${account}.dkr.ecr.eu-west-1.amazonaws.com.cn/app`, kind: 'other' },
    { reference: `${account}.dkr.ecr.cn-north-1.amazonaws.com/app`, kind: 'other' },
    { reference: `${account}.dkr.ecr.eu-west-1.amazonaws.com.evil.example/app`, kind: 'other' },
  ];
  for (const c of cases) {
    test(c.reference, () => {
      const result = classifyImage(c.reference, context);
      assert.equal(result.kind, c.kind);
      assert.equal(result.reference, c.reference);
      for (const key of ['registry', 'repository', 'tag', 'digest', 'official'] as const) {
        if (c[key] !== undefined) assert.equal(result[key], c[key], key);
      }
      if (c.kind !== 'ecr') assert.equal(result.ecr, undefined);
      if (c.kind !== 'docker-hub') assert.equal(result.official, undefined);
    });
  }
});

describe('classifyImage: invalid references never throw', () => {
  const cases: { reference: string; reason: RegExp }[] = [
    { reference: '', reason: /empty/ },
    { reference: 'Nginx:1.25', reason: /lowercase/ },
    { reference: 'myorg/MyApp', reason: /lowercase/ },
    { reference: 'nginx:', reason: /tag/ },
    { reference: 'nginx@sha256:abc', reason: /digest/ },
    { reference: `nginx@sha256:${'A'.repeat(64)}`, reason: /uppercase hex/ },
    { reference: 'nginx:1.25 ', reason: /whitespace/ },
    { reference: 'https://registry.example.com/app', reason: /scheme/ },
    { reference: `${account}.dkr.ecr.eu-west-1.amazonaws.com//app`, reason: /empty component/ },
  ];
  for (const c of cases) {
    test(JSON.stringify(c.reference), () => {
      const result = classifyImage(c.reference, context);
      assert.equal(result.kind, 'invalid');
      assert.match(result.invalidReason ?? '', c.reason);
      assert.equal(result.registry, undefined);
      assert.equal(result.ecr, undefined);
    });
  }
});

describe('classifyImage: ECR locations', () => {
  const cases: {
    reference: string;
    registryId: string;
    region: string;
    partition: string;
    crossAccount: boolean;
    crossRegion: boolean;
    dualStack: boolean;
    fips: boolean;
  }[] = [
    {
      reference: `${account}.dkr.ecr.eu-west-1.amazonaws.com/app:v1`,
      registryId: account,
      region: 'eu-west-1',
      partition: 'aws',
      crossAccount: false,
      crossRegion: false,
      dualStack: false,
      fips: false,
    },
    {
      reference: `${other}.dkr.ecr.us-east-1.amazonaws.com/team/app@${digest}`,
      registryId: other,
      region: 'us-east-1',
      partition: 'aws',
      crossAccount: true,
      crossRegion: true,
      dualStack: false,
      fips: false,
    },
    {
      reference: `${account}.dkr.ecr.cn-north-1.amazonaws.com.cn/app`,
      registryId: account,
      region: 'cn-north-1',
      partition: 'aws-cn',
      crossAccount: false,
      crossRegion: true,
      dualStack: false,
      fips: false,
    },
    {
      reference: `${account}.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app`,
      registryId: account,
      region: 'us-gov-west-1',
      partition: 'aws-us-gov',
      crossAccount: false,
      crossRegion: true,
      dualStack: false,
      fips: true,
    },
    {
      reference: `${account}.dkr-ecr.eu-west-1.on.aws/app`,
      registryId: account,
      region: 'eu-west-1',
      partition: 'aws',
      crossAccount: false,
      crossRegion: false,
      dualStack: true,
      fips: false,
    },
    {
      reference: `${account}.dkr-ecr-fips.us-east-2.on.aws/app`,
      registryId: account,
      region: 'us-east-2',
      partition: 'aws',
      crossAccount: false,
      crossRegion: true,
      dualStack: true,
      fips: true,
    },
  ];
  for (const c of cases) {
    test(c.reference, () => {
      const { ecr } = classifyImage(c.reference, context);
      assert.ok(ecr);
      assert.equal(ecr.registryId, c.registryId);
      assert.equal(ecr.region, c.region);
      assert.equal(ecr.partition, c.partition);
      assert.equal(ecr.crossAccount, c.crossAccount);
      assert.equal(ecr.crossRegion, c.crossRegion);
      assert.equal(ecr.dualStack, c.dualStack);
      assert.equal(ecr.fips, c.fips);
      assert.equal(ecr.pullThroughPrefix, undefined);
    });
  }

  test('an unknown workload account is never reported as cross-account', () => {
    const { ecr } = classifyImage(`${other}.dkr.ecr.eu-west-1.amazonaws.com/app`, { region: 'eu-west-1' });
    assert.equal(ecr?.crossAccount, false);
  });

  test('dual-stack hosts in China are not invented', () => {
    assert.equal(parseEcrHost(`${account}.dkr-ecr.cn-north-1.on.aws`), undefined);
  });
});

describe('pull-through prefixes', () => {
  const host = `${account}.dkr.ecr.eu-west-1.amazonaws.com`;
  const cases: {
    repository: string;
    prefixes?: string[];
    prefix?: string;
    upstream?: string;
    upstreamRegistry?: string;
  }[] = [
    {
      repository: 'docker-hub/library/nginx',
      prefix: 'docker-hub',
      upstream: 'library/nginx',
      upstreamRegistry: 'registry-1.docker.io',
    },
    {
      repository: 'docker-hub/nginx',
      prefix: 'docker-hub',
      upstream: 'nginx',
      upstreamRegistry: 'registry-1.docker.io',
    },
    {
      repository: 'ecr-public/docker/library/redis',
      prefix: 'ecr-public',
      upstream: 'docker/library/redis',
      upstreamRegistry: 'public.ecr.aws',
    },
    { repository: 'quay/prometheus/node-exporter', prefix: 'quay', upstreamRegistry: 'quay.io' },
    { repository: 'kubernetes/pause', prefix: 'kubernetes', upstreamRegistry: 'registry.k8s.io' },
    { repository: 'github/org/app', prefix: 'github', upstreamRegistry: 'ghcr.io' },
    { repository: 'gitlab/group/app', prefix: 'gitlab', upstreamRegistry: 'registry.gitlab.com' },
    { repository: 'azure/team/app', prefix: 'azure' },
    // Only a whole first segment counts, and the prefix alone is not an image.
    { repository: 'docker-hubby/nginx' },
    { repository: 'docker-hub' },
    { repository: 'app/docker-hub/nginx' },
    // Custom prefixes replace the defaults; the longest matching prefix wins.
    { repository: 'docker-hub/library/nginx', prefixes: ['mirror'] },
    {
      repository: 'mirror/hub/library/nginx',
      prefixes: ['mirror', 'mirror/hub'],
      prefix: 'mirror/hub',
      upstream: 'library/nginx',
    },
    {
      repository: 'mirror/library/nginx',
      prefixes: ['mirror/'],
      prefix: 'mirror',
      upstream: 'library/nginx',
    },
  ];
  for (const c of cases) {
    test(`${c.repository} with ${c.prefixes?.join(',') ?? 'default prefixes'}`, () => {
      const ctx = c.prefixes === undefined ? context : { ...context, pullThroughPrefixes: c.prefixes };
      const { ecr } = classifyImage(`${host}/${c.repository}:1`, ctx);
      assert.ok(ecr);
      assert.equal(ecr.pullThroughPrefix, c.prefix);
      if (c.upstream !== undefined) assert.equal(ecr.upstreamRepository, c.upstream);
      if (c.prefix === undefined) assert.equal(ecr.upstreamRepository, undefined);
      assert.equal(ecr.upstreamRegistry, c.upstreamRegistry);
    });
  }

  test('matchPullThroughPrefix ignores empty prefixes', () => {
    assert.equal(matchPullThroughPrefix('x/y', ['', '/']), undefined);
  });
});

describe('pullRequirements', () => {
  test('ECR private: token on *, pull actions on the repository ARN', () => {
    const image = classifyImage(`${other}.dkr.ecr.us-east-1.amazonaws.com/team/app:v1`, context);
    const requirements = pullRequirements(image);
    const arn = `arn:aws:ecr:us-east-1:${other}:repository/team/app`;
    assert.deepEqual(
      requirements.map((r) => `${r.action} ${r.resource}`),
      [
        'ecr:GetAuthorizationToken *',
        `ecr:BatchCheckLayerAvailability ${arn}`,
        `ecr:GetDownloadUrlForLayer ${arn}`,
        `ecr:BatchGetImage ${arn}`,
      ],
    );
  });

  test('China uses the aws-cn partition', () => {
    const image = classifyImage(`${account}.dkr.ecr.cn-northwest-1.amazonaws.com.cn/app`, {
      region: 'cn-northwest-1',
    });
    const resources = pullRequirements(image).map((r) => r.resource);
    assert.ok(resources.includes(`arn:aws-cn:ecr:cn-northwest-1:${account}:repository/app`));
    assert.ok(!resources.some((r) => r.startsWith('arn:aws:')));
  });

  test('pull-through adds the import actions on the cached repository', () => {
    const image = classifyImage(
      `${account}.dkr.ecr.eu-west-1.amazonaws.com/docker-hub/library/nginx:1`,
      context,
    );
    const arn = `arn:aws:ecr:eu-west-1:${account}:repository/docker-hub/library/nginx`;
    const actions = pullRequirements(image)
      .filter((r) => r.resource === arn)
      .map((r) => r.action);
    assert.ok(actions.includes('ecr:BatchImportUpstreamImage'));
    assert.ok(actions.includes('ecr:CreateRepository'));
  });

  test("pull-through detected from the collector's rule as well", () => {
    const requirements = pullRequirements({
      kind: 'ecr',
      registry: `${account}.dkr.ecr.eu-west-1.amazonaws.com`,
      repository: 'cache/app',
      ecr: { pullThroughRule: { ecrRepositoryPrefix: 'cache' } },
    });
    assert.ok(requirements.some((r) => r.action === 'ecr:BatchImportUpstreamImage'));
  });

  test('public registries need no IAM; repositoryCredentials ARN needs GetSecretValue', () => {
    assert.deepEqual(pullRequirements(classifyImage('nginx', context)), []);
    assert.deepEqual(pullRequirements(classifyImage('public.ecr.aws/docker/library/nginx', context)), []);
    assert.deepEqual(pullRequirements(classifyImage('Bad:Ref', context)), []);
    const secret = `arn:aws:secretsmanager:eu-west-1:${account}:secret:dockerhub/pull-AbCdEf`;
    const requirements = pullRequirements({
      ...classifyImage('grafana/grafana', context),
      credentialsParameter: secret,
    });
    assert.deepEqual(
      requirements.map((r) => [r.action, r.resource]),
      [['secretsmanager:GetSecretValue', secret]],
    );
  });
});

describe('endpointNeeds', () => {
  const needsOf = (references: string[]) =>
    endpointNeeds(
      references.map((r) => classifyImage(r, context)),
      'eu-west-1',
    );

  test('same-region ECR needs ecr.api, ecr.dkr and S3, no internet', () => {
    assert.deepEqual(needsOf([`${account}.dkr.ecr.eu-west-1.amazonaws.com/app`]), {
      ecrApi: true,
      ecrDkr: true,
      s3Layers: true,
      internetRegistries: [],
    });
  });

  test('public registries and other regions need the internet', () => {
    const needs = needsOf([
      'nginx',
      'redis:7',
      'public.ecr.aws/docker/library/nginx',
      'ghcr.io/org/app',
      `${other}.dkr.ecr.us-east-1.amazonaws.com/app`,
    ]);
    assert.equal(needs.ecrDkr, false);
    assert.equal(needs.s3Layers, false);
    assert.deepEqual(needs.internetRegistries, [
      `${other}.dkr.ecr.us-east-1.amazonaws.com`,
      'api.ecr.us-east-1.amazonaws.com',
      'ghcr.io',
      'public.ecr.aws',
      'registry-1.docker.io',
    ]);
  });

  test('dual-stack ECR cannot use PrivateLink', () => {
    const needs = needsOf([`${account}.dkr-ecr.eu-west-1.on.aws/app`]);
    assert.equal(needs.ecrDkr, false);
    assert.deepEqual(needs.internetRegistries, [`${account}.dkr-ecr.eu-west-1.on.aws`]);
  });

  test('invalid references and an empty list need nothing', () => {
    assert.deepEqual(needsOf(['UPPER/Case', '']), {
      ecrApi: false,
      ecrDkr: false,
      s3Layers: false,
      internetRegistries: [],
    });
    assert.deepEqual(needsOf([]), { ecrApi: false, ecrDkr: false, s3Layers: false, internetRegistries: [] });
  });
});

describe('helpers', () => {
  test('the Docker Hub pull-through commands use the required secret name and the created ARN', () => {
    const commands = dockerHubPullThroughCommands('eu-west-1');
    assert.match(commands, /--name ecr-pullthroughcache\/docker-hub/);
    assert.match(commands, /"accessToken"/);
    assert.match(
      commands,
      /--upstream-registry-url registry-1\.docker\.io --credential-arn "\$SECRET_ARN" --region eu-west-1/,
    );
  });
});
