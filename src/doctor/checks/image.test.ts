import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { correctedReference, imageCheck } from './image.ts';
import { classifyImage } from '../images.ts';
import type { PullThroughCacheRule } from '@aws-sdk/client-ecr';
import type { Facts, Finding, ImageFacts, Lookup } from '../types.ts';
import { baseFacts, found, missing, noNeeds } from './facts.test-support.ts';

const account = '111122223333';
const other = '444455556666';
const region = 'eu-west-1';
const host = `${account}.dkr.ecr.${region}.amazonaws.com`;
const pinned = `sha256:${'a'.repeat(64)}`;
const newer = `sha256:${'b'.repeat(64)}`;

function facts(images: ImageFacts[], overrides: Partial<Facts> = {}): Facts {
  const subject: Facts['subject'] = { kind: 'task', name: 'task-1', cluster: 'prod' };
  return baseFacts({ region, accountId: account, subject }, images, {
    needs: { ...noNeeds, ecrApi: true, ecrDkr: true, s3Layers: true },
    ...overrides,
  });
}

const failed = <T>(operation: string, code = 'AccessDeniedException'): Lookup<T> => ({
  state: 'failed',
  failure: { service: 'ecr', operation, code, message: `not authorized to perform ecr:${operation}` },
});

interface EcrOptions {
  repository?: Lookup<object>;
  image?: Lookup<{ imageDigest?: string; imageTags?: string[] }>;
  platforms?: Lookup<string[]>;
  pinnedDigest?: string;
  pullThroughRule?: PullThroughCacheRule;
}

/** A non-ECR (or not looked up) image as the collector would hand it over. */
function plain(reference: string, container = 'web'): ImageFacts {
  const { ecr: _location, ...classified } = classifyImage(reference, { region, accountId: account });
  return { ...classified, container };
}

/** An ECR image as the collector would hand it over, with healthy lookups unless overridden. */
function ecrImage(reference: string, options: EcrOptions = {}): ImageFacts {
  const { ecr: location, ...classified } = classifyImage(reference, { region, accountId: account });
  assert.ok(location, `test setup: ${reference} is not ECR`);
  const image: ImageFacts = {
    ...classified,
    container: 'web',
    ecr: {
      registryId: location.registryId,
      region: location.region,
      crossAccount: location.crossAccount,
      repository: options.repository ?? found({ repositoryName: classified.repository }),
      image:
        options.image ??
        found({ imageDigest: options.pinnedDigest ?? pinned, imageTags: [classified.tag ?? 'latest'] }),
    },
  };
  if (image.ecr && options.platforms !== undefined) image.ecr.platforms = options.platforms;
  if (image.ecr && options.pullThroughRule !== undefined) image.ecr.pullThroughRule = options.pullThroughRule;
  if (options.pinnedDigest !== undefined) image.pinnedDigest = options.pinnedDigest;
  return image;
}

function ids(findings: Finding[]): string[] {
  return findings.map((finding) => finding.id).sort();
}

function only(findings: Finding[], id: string): Finding {
  const matching = findings.filter((finding) => finding.id === id);
  assert.equal(matching.length, 1, `expected exactly one ${id}, got ${ids(findings).join(', ')}`);
  return matching[0] as Finding;
}

function evidence(finding: Finding, label: string): string | undefined {
  return finding.evidence.find((item) => item.label === label)?.value;
}

describe('imageCheck: finding ids per situation', () => {
  const cases: { name: string; images: ImageFacts[]; expected: string[]; overrides?: Partial<Facts> }[] = [
    {
      name: 'healthy ECR image',
      images: [ecrImage(`${host}/app:v1`, { pinnedDigest: pinned, platforms: found(['linux/amd64']) })],
      expected: [],
    },
    {
      name: 'Docker Hub and other registries are not looked up here',
      images: [plain('nginx', 'web'), plain('ghcr.io/o/a', 'side')],
      expected: [],
    },
    {
      name: 'invalid reference',
      images: [plain('Web/App:1', 'web')],
      expected: ['reference-invalid'],
    },
    {
      name: 'empty reference',
      images: [plain('', 'web')],
      expected: ['reference-invalid'],
    },
    {
      name: 'repository missing',
      images: [ecrImage(`${host}/app:v1`, { repository: missing(), image: missing() })],
      expected: ['repository-not-found'],
    },
    {
      name: 'tag missing',
      images: [ecrImage(`${host}/app:v1`, { image: missing() })],
      expected: ['tag-not-found'],
    },
    {
      name: 'no tag means latest, missing',
      images: [ecrImage(`${host}/app`, { image: missing() })],
      expected: ['tag-not-found'],
    },
    {
      name: 'digest in the reference missing',
      images: [ecrImage(`${host}/app@${pinned}`, { image: missing() })],
      expected: ['digest-not-found'],
    },
    {
      name: 'tag deleted after deployment',
      images: [ecrImage(`${host}/app:v1`, { image: missing(), pinnedDigest: pinned })],
      expected: ['digest-not-found'],
    },
    {
      name: 'tag moved',
      images: [
        ecrImage(`${host}/app:v1`, {
          image: found({ imageDigest: newer, imageTags: ['v1'] }),
          pinnedDigest: pinned,
        }),
      ],
      expected: ['tag-moved'],
    },
    {
      name: 'pinned digest looked up, tag gone from it',
      images: [
        ecrImage(`${host}/app:v1`, {
          image: found({ imageDigest: pinned, imageTags: ['v0'] }),
          pinnedDigest: pinned,
        }),
      ],
      expected: ['tag-moved'],
    },
    {
      name: 'arm64-only image on X86_64',
      images: [ecrImage(`${host}/app:v1`, { platforms: found(['linux/arm64', 'unknown/unknown']) })],
      expected: ['platform-mismatch'],
    },
    {
      name: 'amd64-only image on ARM64',
      images: [ecrImage(`${host}/app:v1`, { platforms: found(['linux/amd64']) })],
      expected: ['platform-mismatch'],
      overrides: { architecture: 'ARM64' },
    },
    {
      name: 'multi-arch image',
      images: [ecrImage(`${host}/app:v1`, { platforms: found(['linux/amd64', 'linux/arm64/v8']) })],
      expected: [],
      overrides: { architecture: 'ARM64' },
    },
    {
      name: 'only attestation platforms',
      images: [ecrImage(`${host}/app:v1`, { platforms: found(['unknown/unknown']) })],
      expected: [],
    },
    {
      name: 'unknown architecture is not judged',
      images: [ecrImage(`${host}/app:v1`, { platforms: found(['linux/arm64']) })],
      expected: [],
      overrides: { architecture: 'UNKNOWN' },
    },
    {
      name: 'library trap without a rule lookup',
      images: [ecrImage(`${host}/docker-hub/nginx:1.25`, { repository: missing(), image: missing() })],
      expected: ['pull-through-library-trap'],
    },
    {
      name: 'library trap with the Docker Hub rule',
      images: [
        ecrImage(`${host}/hub/nginx:1.25`, {
          repository: missing(),
          image: missing(),
          pullThroughRule: { ecrRepositoryPrefix: 'hub', upstreamRegistryUrl: 'registry-1.docker.io' },
        }),
      ],
      expected: ['pull-through-library-trap'],
    },
    {
      name: 'correct pull-through reference not yet cached',
      images: [
        ecrImage(`${host}/docker-hub/library/nginx:1.25`, {
          repository: missing(),
          image: missing(),
          pullThroughRule: { ecrRepositoryPrefix: 'docker-hub', upstreamRegistryUrl: 'registry-1.docker.io' },
        }),
      ],
      expected: [],
    },
    {
      name: 'non-Docker Hub pull-through prefix is no trap',
      images: [
        ecrImage(`${host}/quay/app:1`, {
          repository: missing(),
          image: missing(),
          pullThroughRule: { ecrRepositoryPrefix: 'quay', upstreamRegistryUrl: 'quay.io' },
        }),
      ],
      expected: [],
    },
    {
      name: 'repository lookup denied',
      images: [
        ecrImage(`${host}/app:v1`, {
          repository: failed('DescribeRepositories'),
          image: failed('DescribeImages'),
        }),
      ],
      expected: ['ecr-image-unchecked'],
    },
    {
      name: 'image lookup throttled',
      images: [ecrImage(`${host}/app:v1`, { image: failed('DescribeImages', 'ThrottlingException') })],
      expected: ['ecr-image-unchecked'],
    },
    {
      name: 'platform lookup failed, tag fine',
      images: [ecrImage(`${host}/app:v1`, { platforms: failed('BatchGetImage') })],
      expected: ['ecr-image-unchecked'],
    },
    {
      name: 'ECR image never looked up',
      images: [plain(`${host}/app:v1`, 'web')],
      expected: ['ecr-image-unchecked'],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(ids(imageCheck(facts(c.images, c.overrides))), [...c.expected].sort());
    });
  }
});

describe('imageCheck: evidence and fixes', () => {
  test('reference-invalid proposes the lowercase reference', () => {
    const finding = only(imageCheck(facts([plain('MyOrg/App:V1', 'api')])), 'reference-invalid');
    assert.equal(finding.cause, 'image-reference-invalid');
    assert.equal(finding.severity, 'error');
    assert.equal(evidence(finding, 'container'), 'api');
    assert.match(finding.detail, /lowercase/);
    const fix = finding.fixes.find((f) => f.kind === 'reference');
    assert.equal(fix?.content, 'myorg/app:V1');
  });

  test('repository-not-found names registry, region, repository and the listing command (cross-account)', () => {
    const image = ecrImage(`${other}.dkr.ecr.us-east-1.amazonaws.com/team/app:v1`, {
      repository: missing(),
      image: missing(),
    });
    const finding = only(imageCheck(facts([image])), 'repository-not-found');
    assert.equal(finding.cause, 'image-not-found');
    assert.equal(evidence(finding, 'registryId'), other);
    assert.equal(evidence(finding, 'region'), 'us-east-1');
    assert.equal(evidence(finding, 'repository'), 'team/app');
    assert.equal(evidence(finding, 'tag'), 'v1');
    assert.equal(evidence(finding, 'cross-account'), 'true');
    const cli = finding.fixes.find((f) => f.kind === 'aws-cli');
    assert.match(
      cli?.content ?? '',
      new RegExp(`aws ecr describe-repositories --registry-id ${other} --region us-east-1`),
    );
  });

  test('tag-not-found gives describe-images with registry id, repository and region', () => {
    const finding = only(
      imageCheck(facts([ecrImage(`${host}/team/app:v2`, { image: missing() })])),
      'tag-not-found',
    );
    assert.equal(evidence(finding, 'tag'), 'v2');
    const cli = finding.fixes.find((f) => f.kind === 'aws-cli');
    assert.match(
      cli?.content ?? '',
      new RegExp(
        `^aws ecr describe-images --registry-id ${account} --repository-name team/app --region ${region} `,
      ),
    );
  });

  test('digest-not-found after deployment proposes a forced redeployment of the service', () => {
    const finding = only(
      imageCheck(
        facts([ecrImage(`${host}/app:v1`, { image: missing(), pinnedDigest: pinned })], {
          subject: { kind: 'service', name: 'api', cluster: 'prod' },
        }),
      ),
      'digest-not-found',
    );
    assert.equal(finding.certainty, 'likely');
    assert.equal(evidence(finding, 'pinned digest'), pinned);
    const redeploy = finding.fixes.find((f) => f.content?.includes('update-service') === true);
    assert.equal(
      redeploy?.content,
      `aws ecs update-service --cluster prod --service api --force-new-deployment --region ${region}`,
    );
  });

  test('the service name is read from the task group when the subject is a task', () => {
    const finding = only(
      imageCheck(
        facts([ecrImage(`${host}/app:v1`, { image: found({ imageDigest: newer }), pinnedDigest: pinned })], {
          task: { group: 'service:checkout', clusterArn: 'arn:aws:ecs:eu-west-1:111122223333:cluster/prod' },
          subject: { kind: 'task', name: 't-1' },
        }),
      ),
      'tag-moved',
    );
    assert.equal(finding.severity, 'warning');
    assert.equal(evidence(finding, 'tag now points to'), newer);
    assert.match(
      finding.fixes[0]?.content ?? '',
      /--cluster arn:aws:ecs:eu-west-1:111122223333:cluster\/prod --service checkout --force-new-deployment/,
    );
    assert.ok(finding.fixes.some((f) => f.kind === 'reference' && f.content === `${host}/app@${pinned}`));
  });

  test('platform-mismatch gives the runtimePlatform patch and a multi-arch build', () => {
    const finding = only(
      imageCheck(facts([ecrImage(`${host}/app:v1`, { platforms: found(['linux/arm64']) })])),
      'platform-mismatch',
    );
    assert.equal(finding.cause, 'image-platform-mismatch');
    assert.equal(evidence(finding, 'image platforms'), 'linux/arm64');
    const patch = finding.fixes.find((f) => f.kind === 'task-definition-patch');
    assert.deepEqual(JSON.parse(patch?.content ?? '{}'), {
      runtimePlatform: { cpuArchitecture: 'ARM64', operatingSystemFamily: 'LINUX' },
    });
    const build = finding.fixes.find((f) => f.content?.startsWith('docker buildx') === true);
    assert.equal(
      build?.content,
      `docker buildx build --platform linux/amd64,linux/arm64 -t ${host}/app:v1 --push .`,
    );
  });

  test('platform-mismatch on CodeBuild suggests the environment type instead of a task patch', () => {
    const finding = only(
      imageCheck(
        facts([ecrImage(`${host}/app:v1`, { platforms: found(['linux/arm64']) })], {
          launchType: 'CODEBUILD',
        }),
      ),
      'platform-mismatch',
    );
    assert.ok(!finding.fixes.some((f) => f.kind === 'task-definition-patch'));
    assert.ok(finding.fixes.some((f) => f.summary.includes('ARM_CONTAINER')));
  });

  test('Windows task with a Linux-only image', () => {
    const finding = only(
      imageCheck(
        facts([ecrImage(`${host}/app:v1`, { platforms: found(['linux/amd64']) })], {
          os: 'WINDOWS_SERVER_2022_CORE',
        }),
      ),
      'platform-mismatch',
    );
    assert.match(finding.title, /windows\/amd64/);
    assert.ok(!finding.fixes.some((f) => f.kind === 'task-definition-patch'));
  });

  test('library trap: the corrected reference keeps host, tag and digest', () => {
    const finding = only(
      imageCheck(
        facts([
          ecrImage(`${host}/docker-hub/nginx:1.25@${pinned}`, { repository: missing(), image: missing() }),
        ]),
      ),
      'pull-through-library-trap',
    );
    assert.equal(finding.cause, 'image-not-found');
    assert.equal(finding.certainty, 'likely');
    assert.equal(finding.fixes[0]?.content, `${host}/docker-hub/library/nginx:1.25@${pinned}`);
  });

  test('library trap is certain when the rule is known to be Docker Hub', () => {
    const image = ecrImage(`${host}/hub/redis`, {
      repository: missing(),
      image: missing(),
      pullThroughRule: { ecrRepositoryPrefix: 'hub', upstreamRegistry: 'docker-hub' },
    });
    const finding = only(imageCheck(facts([image])), 'pull-through-library-trap');
    assert.equal(finding.certainty, 'certain');
    assert.equal(finding.fixes[0]?.content, `${host}/hub/library/redis`);
  });

  test('ecr-image-unchecked names the calls and codes, never passes', () => {
    const image = ecrImage(`${host}/app:v1`, {
      repository: failed('DescribeRepositories'),
      image: failed('DescribeImages'),
    });
    const finding = only(imageCheck(facts([image])), 'ecr-image-unchecked');
    assert.equal(finding.severity, 'unchecked');
    assert.equal(evidence(finding, 'ecr:DescribeRepositories')?.startsWith('AccessDeniedException'), true);
    assert.match(finding.detail, /ecr:DescribeImages \(AccessDeniedException\)/);
    const policy = finding.fixes.find((f) => f.kind === 'iam-policy');
    assert.match(policy?.content ?? '', new RegExp(`arn:aws:ecr:${region}:${account}:repository/app`));
  });

  test('one finding per image, each naming its own container', () => {
    const first = { ...ecrImage(`${host}/a:1`, { image: missing() }), container: 'first' };
    const second = { ...ecrImage(`${host}/b:1`, { image: missing() }), container: 'second' };
    const findings = imageCheck(facts([first, second]));
    assert.deepEqual(
      findings.map((f) => evidence(f, 'container')),
      ['first', 'second'],
    );
  });
});

describe('correctedReference', () => {
  const cases: { input: string; expected: string | undefined }[] = [
    { input: 'Nginx:1.25', expected: 'nginx:1.25' },
    { input: ' nginx:1.25\n', expected: 'nginx:1.25' },
    { input: `Registry.Example.com/Team/App:Tag`, expected: 'registry.example.com/team/app:Tag' },
    { input: `app@SHA256:${'a'.repeat(64)}`, expected: `app@sha256:${'a'.repeat(64)}` },
    { input: 'nginx:', expected: undefined },
    { input: '', expected: undefined },
    { input: 'a b c', expected: undefined },
    { input: 'nginx', expected: undefined },
  ];
  for (const c of cases) {
    test(JSON.stringify(c.input), () => assert.equal(correctedReference(c.input), c.expected));
  }
});
