/**
 * Image references as doctor sees them: which registry kind serves them, where an ECR registry lives, which
 * pull-through cache prefix they use, what the pulling principal must be allowed to do for them and which
 * network paths the pull needs. Pure: no lookups, no environment.
 *
 * ECR private registry hosts recognised (AWS General Reference, "Amazon ECR endpoints and quotas"):
 * `<id>.dkr.ecr.<region>.amazonaws.com`, `<id>.dkr.ecr-fips.<region>.amazonaws.com`, the China partition's
 * `<id>.dkr.ecr.<cn-region>.amazonaws.com.cn`, and the dual-stack `<id>.dkr-ecr.<region>.on.aws` and
 * `<id>.dkr-ecr-fips.<region>.on.aws`.
 */
import {
  DOCKER_HUB_API_HOST,
  OFFICIAL_REPOSITORY_PREFIX,
  formatReference,
  isDockerHub,
  isInvalidReferenceError,
  parseReference,
  tryParseReference,
  type ImageReference,
} from '../reference/index.ts';
import { formatArn, parseSecretArn, partitionOf, type AwsPartition } from '../shared/arn.ts';
import type { ImageFacts, Needs, RegistryKind } from './types.ts';

/** Repository prefixes ECR suggests for pull-through cache rules (see pull-errors.md). */
export const DEFAULT_PULL_THROUGH_PREFIXES: readonly string[] = [
  'docker-hub',
  'ecr-public',
  'quay',
  'kubernetes',
  'github',
  'azure',
  'gitlab',
];

/** The upstream registry host behind each default prefix; Azure's depends on the registry name. */
const upstreamOfDefaultPrefix: Readonly<Record<string, string>> = {
  'docker-hub': DOCKER_HUB_API_HOST,
  'ecr-public': 'public.ecr.aws',
  quay: 'quay.io',
  kubernetes: 'registry.k8s.io',
  github: 'ghcr.io',
  gitlab: 'registry.gitlab.com',
};

export const ECR_PUBLIC_REGISTRY = 'public.ecr.aws';

/** Where an ECR private image lives, read from the reference alone. */
export interface EcrLocation {
  /** The 12-digit account id of the registry. */
  registryId: string;
  region: string;
  partition: AwsPartition;
  /** The registry belongs to another account than the workload's (false when the account is unknown). */
  crossAccount: boolean;
  /** The registry is in another region than the workload (VPC endpoints serve only their own region). */
  crossRegion: boolean;
  /** `<id>.dkr-ecr.<region>.on.aws`: IPv4 and IPv6, not reachable through PrivateLink. */
  dualStack: boolean;
  fips: boolean;
  /** Set when the repository path starts with a pull-through cache prefix. */
  pullThroughPrefix?: string;
  /** The repository path after the prefix, as the upstream registry names it. */
  upstreamRepository?: string;
  /** The upstream registry host, when the prefix is one of the defaults whose upstream is fixed. */
  upstreamRegistry?: string;
}

export interface ClassifyContext {
  /** The workload's region. */
  region: string;
  /** The workload's account id, when known. */
  accountId?: string;
  /** Pull-through cache prefixes in use; defaults to `DEFAULT_PULL_THROUGH_PREFIXES`. */
  pullThroughPrefixes?: readonly string[];
}

/** `ImageFacts` without the container name and without the lookups the collector adds. */
export interface ImageClassification {
  reference: string;
  kind: RegistryKind;
  invalidReason?: string;
  registry?: string;
  repository?: string;
  tag?: string;
  digest?: string;
  /** Docker Hub only: `docker.io/library/<name>` (Docker's definition of an official image). */
  official?: boolean;
  ecr?: EcrLocation;
}

const regionPattern = '([a-z]{2}(?:-[a-z]+)+-[0-9]+)';
const ecrIpv4Host = new RegExp(
  `^([0-9]{12})\\.dkr\\.ecr(-fips)?\\.${regionPattern}\\.amazonaws\\.com(\\.cn)?$`,
);
const ecrDualStackHost = new RegExp(`^([0-9]{12})\\.dkr-ecr(-fips)?\\.${regionPattern}\\.on\\.aws$`);

/** The DNS suffix of a region's regional endpoints. */
export function dnsSuffixOf(region: string): string {
  return partitionOf(region) === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
}

/** The IPv4 ECR private registry host of an account in a region. */
export function ecrRegistryHost(registryId: string, region: string): string {
  return `${registryId}.dkr.ecr.${region}.${dnsSuffixOf(region)}`;
}

/** The ARN of an ECR private repository. */
export function ecrRepositoryArn(registryId: string, region: string, repository: string): string {
  return formatArn({
    partition: partitionOf(region),
    service: 'ecr',
    region,
    account: registryId,
    resource: `repository/${repository}`,
  });
}

/**
 * Reads an ECR private registry host. Undefined for anything else, including a `.amazonaws.com.cn` host
 * with a region outside China (or the reverse), which no ECR endpoint serves.
 */
export function parseEcrHost(
  host: string,
): { registryId: string; region: string; dualStack: boolean; fips: boolean } | undefined {
  const lower = host.toLowerCase();
  const ipv4 = ecrIpv4Host.exec(lower);
  if (ipv4) {
    const [, registryId = '', fips, region = '', china] = ipv4;
    if ((china !== undefined) !== region.startsWith('cn-')) return undefined;
    return { registryId, region, dualStack: false, fips: fips !== undefined };
  }
  const dual = ecrDualStackHost.exec(lower);
  if (dual) {
    const [, registryId = '', fips, region = ''] = dual;
    if (region.startsWith('cn-')) return undefined;
    return { registryId, region, dualStack: true, fips: fips !== undefined };
  }
  return undefined;
}

/** The registry kind of a normalised registry host. */
export function registryKindOf(registry: string): Exclude<RegistryKind, 'invalid'> {
  if (isDockerHub({ registry })) return 'docker-hub';
  if (registry === ECR_PUBLIC_REGISTRY) return 'ecr-public';
  if (parseEcrHost(registry) !== undefined) return 'ecr';
  return 'other';
}

/** The longest prefix that `repository` starts with, followed by `/` and at least one more component. */
export function matchPullThroughPrefix(
  repository: string,
  prefixes: readonly string[] = DEFAULT_PULL_THROUGH_PREFIXES,
): { prefix: string; upstreamRepository: string } | undefined {
  let best: string | undefined;
  for (const raw of prefixes) {
    const prefix = raw.replace(/\/+$/, '');
    if (prefix === '' || !repository.startsWith(`${prefix}/`)) continue;
    if (best === undefined || prefix.length > best.length) best = prefix;
  }
  if (best === undefined) return undefined;
  return { prefix: best, upstreamRepository: repository.slice(best.length + 1) };
}

/**
 * Classifies one image reference as written in a task definition. Never throws: a malformed reference
 * gives `kind: 'invalid'` with the parser's reason and hint.
 */
export function classifyImage(reference: string, context: ClassifyContext): ImageClassification {
  let parsed: ImageReference;
  try {
    parsed = parseReference(reference);
  } catch (error) {
    if (!isInvalidReferenceError(error)) throw error;
    return { reference, kind: 'invalid', invalidReason: `${error.message}; ${error.hint}` };
  }
  const kind = registryKindOf(parsed.registry);
  const result: ImageClassification = {
    reference,
    kind,
    registry: parsed.registry,
    repository: parsed.repository,
  };
  if (parsed.tag !== undefined) result.tag = parsed.tag;
  if (parsed.digest !== undefined) result.digest = parsed.digest;
  if (kind === 'docker-hub') result.official = officialName(parsed.repository) !== undefined;
  if (kind === 'ecr') {
    const host = parseEcrHost(parsed.registry);
    if (host !== undefined) result.ecr = ecrLocation(host, parsed.repository, context);
  }
  return result;
}

/** `nginx` for `library/nginx`; undefined for any other Docker Hub repository. */
export function officialName(repository: string): string | undefined {
  if (!repository.startsWith(OFFICIAL_REPOSITORY_PREFIX)) return undefined;
  const name = repository.slice(OFFICIAL_REPOSITORY_PREFIX.length);
  return name !== '' && !name.includes('/') ? name : undefined;
}

function ecrLocation(
  host: { registryId: string; region: string; dualStack: boolean; fips: boolean },
  repository: string,
  context: ClassifyContext,
): EcrLocation {
  const location: EcrLocation = {
    ...host,
    partition: partitionOf(host.region),
    crossAccount: context.accountId !== undefined && context.accountId !== host.registryId,
    crossRegion: context.region !== host.region,
  };
  const match = matchPullThroughPrefix(repository, context.pullThroughPrefixes);
  if (match !== undefined) {
    location.pullThroughPrefix = match.prefix;
    location.upstreamRepository = match.upstreamRepository;
    const upstream = upstreamOfDefaultPrefix[match.prefix];
    if (upstream !== undefined) location.upstreamRegistry = upstream;
  }
  return location;
}

/** One IAM permission a pull needs: the action, the resource ARN, and why. */
export interface PullRequirement {
  action: string;
  resource: string;
  reason: string;
}

/** What `pullRequirements` reads: an `ImageFacts` or an `ImageClassification`. */
export interface PullTarget {
  kind: RegistryKind;
  registry?: string;
  repository?: string;
  credentialsParameter?: string;
  ecr?: {
    pullThroughPrefix?: string;
    pullThroughRule?: { ecrRepositoryPrefix?: string };
  };
}

export const ECR_PULL_ACTIONS: readonly string[] = [
  'ecr:BatchCheckLayerAvailability',
  'ecr:GetDownloadUrlForLayer',
  'ecr:BatchGetImage',
];

export const ECR_PULL_THROUGH_ACTIONS: readonly string[] = [
  'ecr:BatchImportUpstreamImage',
  'ecr:CreateRepository',
];

/**
 * The IAM permissions the pulling principal needs for one image: ECR's token on `*` and the pull actions
 * on the repository; for pull-through cache repositories also the import actions (used on the first pull
 * of an upstream image); for `repositoryCredentials` given as an ARN, reading that secret. Public
 * registries pulled anonymously need nothing.
 */
export function pullRequirements(image: PullTarget): PullRequirement[] {
  const requirements: PullRequirement[] = [];
  if (image.kind === 'ecr' && image.registry !== undefined && image.repository !== undefined) {
    const host = parseEcrHost(image.registry);
    if (host !== undefined) {
      const arn = ecrRepositoryArn(host.registryId, host.region, image.repository);
      requirements.push({
        action: 'ecr:GetAuthorizationToken',
        resource: '*',
        reason: 'get a registry token (the action takes no resource)',
      });
      for (const action of ECR_PULL_ACTIONS) {
        requirements.push({ action, resource: arn, reason: 'pull the manifest and layers' });
      }
      const prefix = image.ecr?.pullThroughPrefix ?? image.ecr?.pullThroughRule?.ecrRepositoryPrefix;
      if (prefix !== undefined) {
        for (const action of ECR_PULL_THROUGH_ACTIONS) {
          requirements.push({
            action,
            resource: arn,
            reason: `import the upstream image into the pull-through cache (prefix "${prefix}")`,
          });
        }
      }
    }
  }
  const secret = image.credentialsParameter;
  if (secret !== undefined && parseSecretArn(secret)) {
    requirements.push({
      action: 'secretsmanager:GetSecretValue',
      resource: secret,
      reason: 'read the registry credentials of repositoryCredentials',
    });
  }
  return requirements;
}

/** The Secrets Manager secret the fixes create for Docker Hub credentials (not a pull-through rule's). */
export const DOCKER_HUB_SECRET_NAME = 'dockerhub/pull';

/** The Secrets Manager secret name ECR requires for a Docker Hub pull-through cache rule's credentials. */
export const DOCKER_HUB_PULL_THROUGH_SECRET = 'ecr-pullthroughcache/docker-hub';

/**
 * Shell commands that create the Docker Hub credentials secret (its name must start with
 * `ecr-pullthroughcache/`, keys `username` and `accessToken`) and the `docker-hub` pull-through cache rule
 * using it. The secret's ARN ends in a random suffix, so the rule takes it from the first command's output.
 */
export function dockerHubPullThroughCommands(region: string): string {
  return [
    `SECRET_ARN=$(aws secretsmanager create-secret --name ${DOCKER_HUB_PULL_THROUGH_SECRET} \\`,
    `  --secret-string '{"username":"<docker-hub-user>","accessToken":"<docker-hub-access-token>"}' \\`,
    `  --region ${region} --query ARN --output text)`,
    `aws ecr create-pull-through-cache-rule --ecr-repository-prefix docker-hub \\`,
    `  --upstream-registry-url registry-1.docker.io --credential-arn "$SECRET_ARN" --region ${region}`,
  ].join('\n');
}

/** What `endpointNeeds` reads of each image. */
export type EndpointTarget = Pick<ImageFacts, 'kind' | 'registry'>;

/**
 * The network paths pulling these images needs from a workload in `region`: ECR in the same region
 * through `ecr.api`, `ecr.dkr` and S3 (its layers), which VPC endpoints can serve; every other registry,
 * ECR in another region (registry and API host) and ECR's dual-stack hosts (no PrivateLink) over the
 * internet, by host name.
 * Invalid references need nothing: they fail before any connection.
 */
export function endpointNeeds(
  images: readonly EndpointTarget[],
  region: string,
): Pick<Needs, 'ecrApi' | 'ecrDkr' | 's3Layers' | 'internetRegistries'> {
  const needs = { ecrApi: false, ecrDkr: false, s3Layers: false, internetRegistries: [] as string[] };
  const internet = new Set<string>();
  for (const image of images) {
    if (image.kind === 'invalid' || image.registry === undefined) continue;
    const host = image.kind === 'ecr' ? parseEcrHost(image.registry) : undefined;
    if (host !== undefined && host.region === region && !host.dualStack) {
      needs.ecrApi = true;
      needs.ecrDkr = true;
      needs.s3Layers = true;
      continue;
    }
    if (host !== undefined && host.region === region) {
      // Dual-stack registry hosts have no PrivateLink; the token still comes from the regional API.
      needs.ecrApi = true;
      internet.add(image.registry);
      continue;
    }
    if (host !== undefined) {
      // The agent asks the registry's own region for the token: the local endpoints cannot answer.
      internet.add(`api.ecr.${host.region}.${dnsSuffixOf(host.region)}`);
      internet.add(image.registry);
      continue;
    }
    internet.add(image.kind === 'docker-hub' ? DOCKER_HUB_API_HOST : image.registry);
  }
  needs.internetRegistries = [...internet].sort();
  return needs;
}

/** A reference in its full form, so the same image written two ways is one image. */
export function canonicalReference(reference: string): string {
  const parsed = tryParseReference(reference);
  return parsed ? formatReference(parsed) : reference;
}
