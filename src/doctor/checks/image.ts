/**
 * Image checks: the reference parses, the ECR repository and tag (or digest) exist where it points, the
 * digest ECS pinned is still what the tag names, the image has a manifest for the workload's platform, and
 * a pull-through cache reference to a Docker Hub official image carries `library/`.
 *
 * What the collector's lookups mean here: `ecr.repository` answers DescribeRepositories for the reference's
 * repository; `ecr.image` answers DescribeImages for the reference's digest when it has one, else for its
 * tag (`latest` when none) — or, when the collector chose to, for the pinned digest, in which case the
 * detail's `imageTags` tells whether the tag still names it. Lookups that failed become
 * `ecr-image-unchecked`, never a pass.
 */
import {
  DEFAULT_TAG,
  isInvalidReferenceError,
  parseReference,
  tryParseReference,
} from '../../reference/index.ts';
import {
  dockerHubPullThroughCommands,
  ecrRepositoryArn,
  matchPullThroughPrefix,
  parseEcrHost,
} from '../images.ts';
import { sentence } from '../text.ts';
import type { CallFailure, Check, Evidence, Facts, Finding, Fix, ImageFacts } from '../types.ts';

type EcrFacts = NonNullable<ImageFacts['ecr']>;

export const imageCheck: Check = (facts) => facts.images.flatMap((image) => checkImage(image, facts));

function checkImage(image: ImageFacts, facts: Facts): Finding[] {
  if (image.kind === 'invalid') return [referenceInvalid(image)];
  const findings: Finding[] = [];
  const trap = image.kind === 'ecr' ? libraryTrap(image) : undefined;
  if (trap !== undefined) findings.push(trap);
  if (image.kind !== 'ecr') return findings;
  if (image.ecr === undefined) {
    findings.push(
      unchecked(
        image,
        [],
        ['the repository', 'the image'],
        'The ECR repository and image were not looked up.',
      ),
    );
    return findings;
  }
  const ecr = image.ecr;
  const notChecked = uncheckedParts(image, ecr);
  if (notChecked !== undefined) findings.push(unchecked(image, notChecked.failures, notChecked.parts));
  // A pull-through cache creates the repository and image on the first pull, so their absence is expected;
  // the library trap already explains why this reference would not be found.
  const expectAbsent = ecr.pullThroughRule !== undefined || trap !== undefined;
  if (ecr.repository.state === 'missing') {
    if (!expectAbsent) findings.push(unlessPullThrough(repositoryNotFound(image, ecr, facts), image, ecr));
    return findings;
  }
  if (ecr.image.state === 'missing' && !expectAbsent)
    findings.push(unlessPullThrough(imageNotFound(image, ecr, facts), image, ecr));
  if (ecr.image.state === 'found') {
    const moved = tagMoved(image, ecr, ecr.image.value, facts);
    if (moved !== undefined) findings.push(moved);
  }
  if (ecr.platforms?.state === 'found') {
    const mismatch = platformMismatch(image, ecr.platforms.value, facts);
    if (mismatch !== undefined) findings.push(mismatch);
  }
  return findings;
}

/**
 * When the pull-through cache rules could not be read, a repository under a prefix (`x/…`) may be one the
 * cache creates on the first pull: ECR's "does not exist" is then true today but not a verdict on the pull.
 */
function unlessPullThrough(finding: Finding, image: ImageFacts, ecr: EcrFacts): Finding {
  const failure = ecr.pullThroughRulesFailure;
  const prefix = image.repository?.includes('/') === true ? image.repository.split('/')[0] : undefined;
  if (failure === undefined || prefix === undefined) return finding;
  return {
    ...finding,
    severity: 'warning',
    certainty: 'possible',
    detail:
      `${finding.detail} The pull-through cache rules of registry ${ecr.registryId} could not be read ` +
      `(${failure.service}:${failure.operation}: ${failure.code}); if "${prefix}" is a rule's prefix, ECR ` +
      'creates the repository and image on the first pull and the pull works.',
    evidence: [
      ...finding.evidence,
      { label: `${failure.service}:${failure.operation}`, value: `${failure.code}: ${failure.message}` },
    ],
  };
}

function referenceInvalid(image: ImageFacts): Finding {
  let reason = image.invalidReason ?? 'the reference does not parse';
  try {
    parseReference(image.reference);
  } catch (error) {
    if (isInvalidReferenceError(error)) reason = `${error.message}; ${error.hint}`;
  }
  const fixes: Fix[] = [];
  const corrected = correctedReference(image.reference);
  if (corrected !== undefined) {
    fixes.push({
      kind: 'reference',
      summary: `Use the corrected reference in container "${image.container}"`,
      content: corrected,
    });
  } else {
    fixes.push({
      kind: 'text',
      summary: `Rewrite the image of container "${image.container}" as [registry/]repository[:tag][@digest] with a lowercase repository`,
    });
  }
  return {
    id: 'reference-invalid',
    cause: 'image-reference-invalid',
    hop: 'image',
    severity: 'error',
    certainty: 'certain',
    title: `Container "${image.container}" has an invalid image reference`,
    detail: `${sentence(reason)} The container runtime rejects it with "invalid reference format" before contacting any registry.`,
    evidence: [
      { label: 'container', value: image.container },
      { label: 'image', value: JSON.stringify(image.reference) },
    ],
    fixes,
  };
}

/** A valid reference one obvious edit away (surrounding whitespace, uppercase name), if there is one. */
export function correctedReference(text: string): string | undefined {
  const trimmed = text.trim();
  const at = trimmed.indexOf('@');
  const nameAndTag = at === -1 ? trimmed : trimmed.slice(0, at);
  const digest = at === -1 ? '' : trimmed.slice(at);
  const colon = nameAndTag.indexOf(':', nameAndTag.lastIndexOf('/') + 1);
  const name = colon === -1 ? nameAndTag : nameAndTag.slice(0, colon);
  const tag = colon === -1 ? '' : nameAndTag.slice(colon);
  for (const candidate of [trimmed, `${name.toLowerCase()}${tag}${digest.toLowerCase()}`]) {
    if (candidate !== text && candidate !== '' && tryParseReference(candidate) !== undefined)
      return candidate;
  }
  return undefined;
}

/**
 * `<acct>.dkr.ecr.<region>.amazonaws.com/docker-hub/nginx`: Docker Hub serves official images as
 * `library/nginx`, so the cache asks upstream for `nginx`, which does not exist, and the pull fails.
 */
function libraryTrap(image: ImageFacts): Finding | undefined {
  if (image.registry === undefined || image.repository === undefined) return undefined;
  const rule = image.ecr?.pullThroughRule;
  const ruleIsDockerHub =
    rule !== undefined &&
    (rule.upstreamRegistry === 'docker-hub' ||
      /^(registry-1\.docker\.io|docker\.io|index\.docker\.io)$/i.test(rule.upstreamRegistryUrl ?? ''));
  if (rule !== undefined && !ruleIsDockerHub) return undefined;
  const prefixes = rule?.ecrRepositoryPrefix !== undefined ? [rule.ecrRepositoryPrefix] : ['docker-hub'];
  const match = matchPullThroughPrefix(image.repository, prefixes);
  if (match === undefined || match.upstreamRepository.includes('/')) return undefined;
  const suffix = `${image.tag !== undefined ? `:${image.tag}` : ''}${image.digest !== undefined ? `@${image.digest}` : ''}`;
  const corrected = `${image.registry}/${match.prefix}/library/${match.upstreamRepository}${suffix}`;
  const evidence: Evidence[] = [
    { label: 'container', value: image.container },
    { label: 'image', value: image.reference },
    { label: 'pull-through prefix', value: match.prefix },
    { label: 'upstream repository requested', value: `docker.io/${match.upstreamRepository}` },
  ];
  if (rule?.upstreamRegistryUrl !== undefined) {
    evidence.push({ label: 'pull-through rule upstream', value: rule.upstreamRegistryUrl });
  }
  return {
    id: 'pull-through-library-trap',
    cause: 'image-not-found',
    hop: 'image',
    severity: 'error',
    certainty: ruleIsDockerHub ? 'certain' : 'likely',
    title: `Pull-through cache reference for "${match.upstreamRepository}" lacks "library/"`,
    detail:
      `Docker Hub names its official images "library/<name>". Through an ECR pull-through cache the short ` +
      `form is not expanded: "${match.prefix}/${match.upstreamRepository}" asks Docker Hub for ` +
      `"${match.upstreamRepository}", which does not exist, and the pull fails (often as 403 or "not found").`,
    evidence,
    fixes: [
      {
        kind: 'reference',
        summary: `Use the reference with "library/" in container "${image.container}"`,
        content: corrected,
      },
    ],
  };
}

function ecrEvidence(image: ImageFacts, ecr: EcrFacts): Evidence[] {
  const evidence: Evidence[] = [
    { label: 'container', value: image.container },
    { label: 'image', value: image.reference },
    { label: 'registryId', value: ecr.registryId },
    { label: 'region', value: ecr.region },
    { label: 'repository', value: image.repository ?? '' },
  ];
  if (image.tag !== undefined || image.digest === undefined) {
    evidence.push({ label: 'tag', value: image.tag ?? DEFAULT_TAG });
  }
  if (image.digest !== undefined) evidence.push({ label: 'digest', value: image.digest });
  if (image.pinnedDigest !== undefined) evidence.push({ label: 'pinned digest', value: image.pinnedDigest });
  if (ecr.crossAccount) evidence.push({ label: 'cross-account', value: 'true' });
  return evidence;
}

function describeImagesCommand(image: ImageFacts, ecr: EcrFacts): string {
  return (
    `aws ecr describe-images --registry-id ${ecr.registryId} --repository-name ${image.repository ?? ''} ` +
    `--region ${ecr.region} --query 'sort_by(imageDetails,&imagePushedAt)[-20:].[imagePushedAt,imageDigest,join(\`,\`,imageTags||\`[]\`)]' --output table`
  );
}

function repositoryNotFound(image: ImageFacts, ecr: EcrFacts, facts: Facts): Finding {
  const repository = image.repository ?? '';
  const defaultPrefix = matchPullThroughPrefix(repository);
  const prefixNote =
    defaultPrefix !== undefined && ecr.pullThroughRulesFailure === undefined
      ? ` "${defaultPrefix.prefix}/" looks like a pull-through cache prefix, but no pull-through cache rule with that prefix was found in registry ${ecr.registryId} (${ecr.region}).`
      : '';
  const fixes: Fix[] = [
    {
      kind: 'aws-cli',
      summary: `List the repositories of registry ${ecr.registryId} in ${ecr.region} to find the intended name`,
      content: `aws ecr describe-repositories --registry-id ${ecr.registryId} --region ${ecr.region} --query 'repositories[].repositoryName' --output text`,
    },
    {
      kind: 'text',
      summary: `Correct the image of container "${image.container}", or create the repository and push the image to ${image.registry ?? ''}/${repository}`,
    },
  ];
  if (defaultPrefix?.prefix === 'docker-hub') {
    fixes.push({
      kind: 'aws-cli',
      summary: 'Or create the Docker Hub pull-through cache rule the prefix implies',
      content: dockerHubPullThroughCommands(ecr.region),
    });
  }
  return {
    id: 'repository-not-found',
    cause: 'image-not-found',
    hop: 'manifest',
    severity: 'error',
    certainty: 'certain',
    title: `Repository "${repository}" does not exist in registry ${ecr.registryId} (${ecr.region})`,
    detail:
      `ECR answered that repository "${repository}" does not exist in registry ${ecr.registryId} in ${ecr.region}` +
      `${ecr.crossAccount ? ' (another account than the workload’s)' : ''}; the pull fails with "not found" ` +
      `or "repository does not exist".${prefixNote}${facts.subject.kind === 'task-definition' ? ' Tasks from this definition will not start.' : ''}`,
    evidence: ecrEvidence(image, ecr),
    fixes,
  };
}

function imageNotFound(image: ImageFacts, ecr: EcrFacts, facts: Facts): Finding {
  const repository = image.repository ?? '';
  const listTags: Fix = {
    kind: 'aws-cli',
    summary: `List the most recent images of ${repository} to pick an existing tag`,
    content: describeImagesCommand(image, ecr),
  };
  if (image.digest !== undefined) {
    return {
      id: 'digest-not-found',
      cause: 'image-not-found',
      hop: 'manifest',
      severity: 'error',
      certainty: 'certain',
      title: `Digest ${shortDigest(image.digest)} does not exist in ${repository}`,
      detail: `The reference names digest ${image.digest}, and repository "${repository}" in registry ${ecr.registryId} (${ecr.region}) has no image with it (deleted, or pushed elsewhere).`,
      evidence: ecrEvidence(image, ecr),
      fixes: [
        listTags,
        { kind: 'text', summary: `Point container "${image.container}" at an existing digest or tag` },
      ],
    };
  }
  const tag = image.tag ?? DEFAULT_TAG;
  if (image.pinnedDigest !== undefined) {
    return {
      id: 'digest-not-found',
      cause: 'image-not-found',
      hop: 'manifest',
      severity: 'error',
      certainty: 'likely',
      title: `Tag "${tag}" is gone from ${repository}, and with it most likely the digest ECS pinned`,
      detail:
        `ECS resolved "${tag}" to ${image.pinnedDigest} when the deployment started and pulls that digest for every ` +
        `new task (version consistency). The tag no longer exists; deleting the only tag of an image deletes the ` +
        `image, so new tasks of this deployment fail with "not found" even though the task definition is unchanged.`,
      evidence: ecrEvidence(image, ecr),
      fixes: [
        listTags,
        {
          kind: 'text',
          summary: `Push the image as ${repository}:${tag} again, or change the task definition to an existing tag`,
        },
        redeployFix(facts),
      ],
    };
  }
  return {
    id: 'tag-not-found',
    cause: 'image-not-found',
    hop: 'manifest',
    severity: 'error',
    certainty: 'certain',
    title: `Tag "${tag}" does not exist in ${repository}`,
    detail:
      `Repository "${repository}" exists in registry ${ecr.registryId} (${ecr.region}) but has no image tagged "${tag}"` +
      `${image.tag === undefined ? ' (no tag was written, so "latest" is pulled)' : ''}; the pull fails with "manifest unknown" / "not found".`,
    evidence: ecrEvidence(image, ecr),
    fixes: [
      listTags,
      {
        kind: 'text',
        summary: `Push ${repository}:${tag}, or point container "${image.container}" at an existing tag`,
      },
    ],
  };
}

function tagMoved(
  image: ImageFacts,
  ecr: EcrFacts,
  detail: { imageDigest?: string; imageTags?: string[] },
  facts: Facts,
): Finding | undefined {
  const pinned = image.pinnedDigest;
  if (pinned === undefined || image.digest !== undefined || detail.imageDigest === undefined)
    return undefined;
  const tag = image.tag ?? DEFAULT_TAG;
  let current: string | undefined;
  if (detail.imageDigest !== pinned) {
    current = detail.imageDigest;
  } else if (detail.imageTags !== undefined && !detail.imageTags.includes(tag)) {
    current = undefined;
  } else {
    return undefined;
  }
  const evidence = ecrEvidence(image, ecr);
  if (current !== undefined) evidence.push({ label: 'tag now points to', value: current });
  const pinnedReference = `${image.registry ?? ''}/${image.repository ?? ''}@${pinned}`;
  return {
    id: 'tag-moved',
    cause: 'image-not-found',
    hop: 'manifest',
    severity: 'warning',
    certainty: current !== undefined ? 'certain' : 'likely',
    title: `Tag "${tag}" no longer names the digest this task pinned`,
    detail:
      `ECS pinned ${pinned} for "${tag}" when the deployment started; the tag ${current !== undefined ? `now points to ${current}` : 'has been moved off that image'}. ` +
      `New tasks of this deployment keep pulling the pinned digest: they fail with "not found" once it is deleted ` +
      `(lifecycle policy, manual cleanup), and they do not run the image the tag names today.`,
    evidence,
    fixes: [
      redeployFix(facts),
      {
        kind: 'reference',
        summary: 'Or pin the running image by digest in the task definition',
        content: pinnedReference,
      },
    ],
  };
}

function redeployFix(facts: Facts): Fix {
  const cluster = facts.subject.cluster ?? facts.service?.clusterArn ?? facts.task?.clusterArn;
  const service =
    facts.service?.serviceName ??
    (facts.subject.kind === 'service' ? facts.subject.name : undefined) ??
    (facts.task?.group?.startsWith('service:') === true
      ? facts.task.group.slice('service:'.length)
      : undefined);
  if (cluster === undefined || service === undefined) {
    return {
      kind: 'text',
      summary: 'Start a new deployment of the service (ECS resolves the tag again when a deployment starts)',
    };
  }
  return {
    kind: 'aws-cli',
    summary: `Start a new deployment of service ${service} so ECS resolves the tag again`,
    content: `aws ecs update-service --cluster ${cluster} --service ${service} --force-new-deployment --region ${facts.region}`,
  };
}

const architectureOfTask: Readonly<Record<string, string>> = { X86_64: 'amd64', ARM64: 'arm64' };
const taskArchitectureOf: Readonly<Record<string, string>> = { amd64: 'X86_64', arm64: 'ARM64' };

function platformMismatch(image: ImageFacts, platforms: string[], facts: Facts): Finding | undefined {
  const architecture = architectureOfTask[facts.architecture.toUpperCase()];
  if (architecture === undefined) return undefined;
  const os = /^WINDOWS/i.test(facts.os) ? 'windows' : 'linux';
  const offered = platforms
    .map((platform) => platform.toLowerCase().split('/'))
    .filter(
      ([platformOs, platformArch]) =>
        platformOs !== 'unknown' && platformArch !== undefined && platformArch !== 'unknown',
    );
  if (offered.length === 0) return undefined;
  if (offered.some(([platformOs, platformArch]) => platformOs === os && platformArch === architecture))
    return undefined;
  const wanted = `${os}/${architecture}`;
  const shown = offered.map((parts) => parts.join('/'));
  const fixes: Fix[] = [];
  const alternative = offered.find(
    ([platformOs, platformArch]) => platformOs === os && taskArchitectureOf[platformArch ?? ''] !== undefined,
  );
  const alternativeArch = alternative !== undefined ? taskArchitectureOf[alternative[1] ?? ''] : undefined;
  if (alternativeArch !== undefined && facts.launchType === 'CODEBUILD') {
    fixes.push({
      kind: 'text',
      summary: `Use a CodeBuild environment of type ${alternativeArch === 'ARM64' ? 'ARM_CONTAINER' : 'LINUX_CONTAINER'} for this image`,
    });
  } else if (alternativeArch !== undefined && os === 'linux') {
    fixes.push({
      kind: 'task-definition-patch',
      summary:
        `Run the task on ${alternativeArch}` +
        (facts.launchType === 'EC2'
          ? ` (on EC2 the cluster needs ${alternativeArch === 'ARM64' ? 'Graviton' : 'x86_64'} container instances)`
          : ''),
      content: JSON.stringify({
        runtimePlatform: { cpuArchitecture: alternativeArch, operatingSystemFamily: 'LINUX' },
      }),
    });
  }
  const target = tryParseReference(image.reference);
  const tagged =
    target !== undefined && target.digest === undefined
      ? image.reference
      : `${image.registry ?? ''}/${image.repository ?? ''}:${image.tag ?? DEFAULT_TAG}`;
  fixes.push({
    kind: 'shell',
    summary: `Or rebuild the image for both architectures and push it (docker buildx)`,
    content: `docker buildx build --platform ${os}/amd64,${os}/arm64 -t ${tagged} --push .`,
  });
  return {
    id: 'platform-mismatch',
    cause: 'image-platform-mismatch',
    hop: 'manifest',
    severity: 'error',
    certainty: 'certain',
    title: `Image has no ${wanted} variant; it offers ${shown.join(', ')}`,
    detail:
      `The workload runs ${wanted} (${facts.architecture}), and the image's manifest lists only ${shown.join(', ')}: ` +
      `the pull fails with "no matching manifest" / "does not contain descriptor matching platform", or the ` +
      `container exits with "exec format error".`,
    evidence: [
      { label: 'container', value: image.container },
      { label: 'image', value: image.reference },
      { label: 'image platforms', value: shown.join(', ') },
      { label: 'workload platform', value: `${wanted} (${facts.architecture}, ${facts.launchType})` },
    ],
    fixes,
  };
}

/**
 * What the failed lookups left open, given what the others answered: a tag ECR says is missing has no
 * platforms to read, and an image that was found shows its repository exists.
 */
function uncheckedParts(
  image: ImageFacts,
  ecr: EcrFacts,
): { parts: string[]; failures: CallFailure[] } | undefined {
  const parts: string[] = [];
  const failures: CallFailure[] = [];
  if (ecr.repository.state === 'failed' && ecr.image.state === 'failed') {
    parts.push('whether the repository exists');
    failures.push(ecr.repository.failure);
  }
  if (ecr.image.state === 'failed') {
    parts.push(`whether the ${image.digest !== undefined ? 'digest' : 'tag'} exists`);
    failures.push(ecr.image.failure);
  }
  if (ecr.platforms?.state === 'failed' && ecr.image.state !== 'missing') {
    parts.push('which platforms the image offers');
    failures.push(ecr.platforms.failure);
  }
  return parts.length > 0 ? { parts, failures } : undefined;
}

function unchecked(image: ImageFacts, failures: CallFailure[], parts: string[], reason?: string): Finding {
  const platformsOnly = parts.length === 1 && parts[0] === 'which platforms the image offers';
  const evidence: Evidence[] = [
    { label: 'container', value: image.container },
    { label: 'image', value: image.reference },
  ];
  for (const failure of failures) {
    evidence.push({
      label: `${failure.service}:${failure.operation}`,
      value: `${failure.code}: ${failure.message}`,
    });
  }
  const calls = failures.map((failure) => `${failure.service}:${failure.operation} (${failure.code})`);
  const denied = failures.some((failure) => /AccessDenied|Unauthorized|NotAuthorized/i.test(failure.code));
  const fixes: Fix[] = [];
  if (denied) {
    fixes.push({
      kind: 'iam-policy',
      summary: 'Allow the identity running pullsafe doctor to read this repository (read-only)',
      content: JSON.stringify(
        {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'PullsafeDoctorReadEcr',
              Effect: 'Allow',
              Action: [
                'ecr:DescribeRepositories',
                'ecr:DescribeImages',
                'ecr:BatchGetImage',
                'ecr:GetRepositoryPolicy',
              ],
              Resource: repositoryArnOf(image) ?? '*',
            },
          ],
        },
        null,
        2,
      ),
    });
  }
  fixes.push({ kind: 'text', summary: 'Run pullsafe doctor again once the calls can be made' });
  return {
    id: 'ecr-image-unchecked',
    cause: platformsOnly ? 'image-platform-mismatch' : 'image-not-found',
    hop: 'manifest',
    severity: 'unchecked',
    certainty: 'certain',
    title: platformsOnly
      ? `Could not read the platforms of ${image.reference}`
      : `Could not check ${image.repository ?? image.reference} in ECR`,
    detail:
      reason ??
      `${calls.length === 1 ? 'This call' : 'These calls'} failed, so ${joinWords(parts)} ${parts.length === 1 ? 'was' : 'were'} not checked: ${calls.join(', ')}.`,
    evidence,
    fixes,
  };
}

function repositoryArnOf(image: ImageFacts): string | undefined {
  const host = image.registry !== undefined ? parseEcrHost(image.registry) : undefined;
  if (host === undefined || image.repository === undefined) return undefined;
  return ecrRepositoryArn(host.registryId, host.region, image.repository);
}

function shortDigest(digest: string): string {
  const sep = digest.indexOf(':');
  return sep === -1 ? digest : `${digest.slice(0, sep + 13)}…`;
}

function joinWords(parts: string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1) ?? ''}`;
}
