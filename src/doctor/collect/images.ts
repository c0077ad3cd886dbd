/** ECR lookups for each image: repository, image, repository policy, platforms, pull-through rules. */
import type { Task, ContainerDefinition } from '@aws-sdk/client-ecs';
import type { Repository, ImageDetail, PullThroughCacheRule } from '@aws-sdk/client-ecr';
import { AwsCallError, paginate } from '../aws.ts';
import { parsePolicyDocument } from '../iam-eval.ts';
import { classifyImage } from '../images.ts';
import type { ImageFacts, Lookup, PolicyDocument } from '../types.ts';

import type { Collector } from './collector.ts';

/** The registry's pull-through cache rules; `failed` when they could not be read (then no prefix is known). */
export async function pullThroughRulesFor(
  c: Collector,
  region: string,
  accountId: string | undefined,
): Promise<Lookup<PullThroughCacheRule[]>> {
  return c.lookup<PullThroughCacheRule[]>('ecr', 'DescribePullThroughCacheRules', () =>
    paginate(
      c.caller,
      'ecr',
      'DescribePullThroughCacheRules',
      accountId ? { registryId: accountId } : {},
      'pullThroughCacheRules',
      { input: 'nextToken', output: 'nextToken' },
      region,
    ),
  );
}

const manifestMediaTypes = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

export async function collectImage(
  c: Collector,
  container: ContainerDefinition,
  task: Task | undefined,
  taskRegion: string,
  accountId: string | undefined,
  pullThroughRules: Lookup<PullThroughCacheRule[]>,
): Promise<ImageFacts> {
  const rules = pullThroughRules.state === 'found' ? pullThroughRules.value : [];
  const name = container.name ?? '(unnamed)';
  const reference = container.image ?? '';
  const classified = classifyImage(reference, {
    region: taskRegion,
    ...(accountId ? { accountId } : {}),
    pullThroughPrefixes: rules.map((rule) => rule.ecrRepositoryPrefix ?? '').filter(Boolean),
  });
  const pinnedDigest = task?.containers?.find((entry) => entry.name === container.name)?.imageDigest;
  const credentialsParameter = container.repositoryCredentials?.credentialsParameter;
  const { ecr: location, ...described } = classified;
  const facts: ImageFacts = {
    ...described,
    container: name,
    reference,
    ...(pinnedDigest ? { pinnedDigest } : {}),
    ...(credentialsParameter ? { credentialsParameter } : {}),
  };
  if (classified.kind !== 'ecr' || !location || !classified.repository) return facts;
  const image: EcrImage = {
    registryId: location.registryId,
    region: location.region,
    repositoryName: classified.repository,
    imageId: classified.digest
      ? { imageDigest: classified.digest }
      : { imageTag: classified.tag ?? 'latest' },
  };
  const [repository, imageDetail, repositoryPolicy, platforms] = await Promise.all([
    describeRepository(c, image),
    describeImage(c, image),
    repositoryPolicyOf(c, image),
    platformsOf(c, image),
  ]);
  const ecr: NonNullable<ImageFacts['ecr']> = {
    registryId: image.registryId,
    region: image.region,
    crossAccount: location.crossAccount,
    repository,
    image: imageDetail,
    repositoryPolicy,
    ...(platforms.state === 'found' && platforms.value.length === 0 ? {} : { platforms }),
  };
  const rule = rules.find(
    (r) => r.ecrRepositoryPrefix && image.repositoryName.startsWith(`${r.ecrRepositoryPrefix}/`),
  );
  if (rule) ecr.pullThroughRule = rule;
  if (pullThroughRules.state === 'failed') ecr.pullThroughRulesFailure = pullThroughRules.failure;
  return { ...facts, ecr };
}

/** An image in an ECR private repository, as ECR's image calls name it. */
interface EcrImage {
  registryId: string;
  region: string;
  repositoryName: string;
  imageId: { imageDigest: string } | { imageTag: string };
}

function describeRepository(c: Collector, image: EcrImage): Promise<Lookup<Repository>> {
  const { registryId, repositoryName, region } = image;
  return c.lookup<Repository>(
    'ecr',
    'DescribeRepositories',
    async () =>
      (
        await c.caller.call(
          'ecr',
          'DescribeRepositories',
          { registryId, repositoryNames: [repositoryName] },
          region,
        )
      ).repositories?.[0],
    ['RepositoryNotFoundException'],
  );
}

function describeImage(c: Collector, image: EcrImage): Promise<Lookup<ImageDetail>> {
  const { registryId, repositoryName, imageId, region } = image;
  return c.lookup<ImageDetail>(
    'ecr',
    'DescribeImages',
    async () =>
      (
        await c.caller.call(
          'ecr',
          'DescribeImages',
          { registryId, repositoryName, imageIds: [imageId] },
          region,
        )
      ).imageDetails?.[0],
    ['ImageNotFoundException', 'RepositoryNotFoundException'],
  );
}

function repositoryPolicyOf(c: Collector, image: EcrImage): Promise<Lookup<PolicyDocument>> {
  const { registryId, repositoryName, region } = image;
  return c.lookup<PolicyDocument>(
    'ecr',
    'GetRepositoryPolicy',
    async () => {
      const answer = await c.caller.call(
        'ecr',
        'GetRepositoryPolicy',
        { registryId, repositoryName },
        region,
      );
      return answer.policyText ? parsePolicyDocument(answer.policyText) : undefined;
    },
    ['RepositoryPolicyNotFoundException', 'RepositoryNotFoundException'],
    'the repository has no policy',
  );
}

/** The platforms the image offers: from its index, or from its config blob for a single-platform image. */
function platformsOf(c: Collector, image: EcrImage): Promise<Lookup<string[]>> {
  const { registryId, repositoryName, imageId, region } = image;
  return c.lookup<string[]>(
    'ecr',
    'BatchGetImage',
    async () => {
      const answer = await c.caller.call(
        'ecr',
        'BatchGetImage',
        { registryId, repositoryName, imageIds: [imageId], acceptedMediaTypes: manifestMediaTypes },
        region,
      );
      const manifest = answer.images?.[0]?.imageManifest;
      const refused = answer.failures?.find((failure) => failure.failureCode !== 'ImageNotFound');
      if (!manifest && refused) {
        // ECR answers some failures in the body (KmsError, UpstreamAccessDenied, …): not an absent image.
        throw new AwsCallError(
          'ecr',
          'BatchGetImage',
          refused.failureCode ?? 'Failure',
          refused.failureReason ?? 'ECR gave no manifest',
        );
      }
      if (!manifest) return undefined;
      const listed = platformsOfManifest(manifest);
      if (listed.length > 0) return listed;
      // A single-platform image names its platform only in its config blob.
      const configDigest = configDigestOf(manifest);
      if (!configDigest) return [];
      const config = await c.caller.call(
        'ecr',
        'GetImageConfigPlatform',
        { registryId, repositoryName, configDigest },
        region,
      );
      return config.architecture
        ? [[config.os ?? 'linux', config.architecture, config.variant].filter(Boolean).join('/')]
        : [];
    },
    ['RepositoryNotFoundException', 'ImageNotFoundException'],
  );
}

/** The config digest of a single-platform manifest, or undefined. */
export function configDigestOf(text: string): string | undefined {
  try {
    const digest = (JSON.parse(text) as { config?: { digest?: unknown } }).config?.digest;
    return typeof digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(digest) ? digest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Platforms an image offers, as listed by an index (an empty list for a single manifest, whose platform
 * lives in its config blob).
 */
export function platformsOfManifest(text: string): string[] {
  let parsed: { manifests?: { platform?: { os?: string; architecture?: string; variant?: string } }[] };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return [];
  }
  if (!Array.isArray(parsed.manifests)) return [];
  const platforms = new Set<string>();
  for (const entry of parsed.manifests) {
    const p = entry.platform;
    if (!p?.os || !p.architecture || p.os === 'unknown') continue;
    platforms.add([p.os, p.architecture, p.variant].filter(Boolean).join('/'));
  }
  return [...platforms];
}
