/**
 * Docker Hub rate limits: every Docker Hub image gets a `docker-hub-rate-limit` warning carrying each
 * remediation AWS recommends as its own fix, with the artefact to apply it: the ECR Public copy, an ECR
 * pull-through cache rule (and the `library/` form of the new reference), `repositoryCredentials` with a
 * Secrets Manager secret and the execution role's statement, the CodeBuild `docker login` step, and a
 * copy into the account's own ECR with `pullsafe copy` (or `pullsafe sync` for many images), and pullsafe's
 * own pull-through cache (`pullsafe serve --proxy docker.io`, references moved with `rewrite --to-cache`).
 *
 * The limit itself is never quoted: Docker has changed it several times; the current one is in the
 * `RateLimit-Limit` header of a manifest response.
 */
import { DEFAULT_TAG } from '../../reference/index.ts';
import { ecrLoginBefore, type BuildPull } from '../build-plan.ts';
import {
  DOCKER_HUB_SECRET_NAME,
  ECR_PULL_ACTIONS,
  ECR_PULL_THROUGH_ACTIONS,
  dockerHubPullThroughCommands,
  ecrRegistryHost,
  officialName,
} from '../images.ts';
import { partitionOf } from '../../shared/arn.ts';
import { dockerHubLoginFixes } from './codebuild.ts';
import type { Check, Evidence, Facts, Finding, Fix, ImageFacts, RoleFacts } from '../types.ts';

/**
 * Every Docker Hub image, except those a CodeBuild build pulls after logging in to Docker Hub: that login
 * is the remedy AWS documents for builds.
 */
export const rateLimitCheck: Check = (facts) =>
  facts.images
    .filter((image) => image.kind === 'docker-hub' && image.build?.dockerHubLogin !== true)
    .map((image) => rateLimitFinding(image, facts));

/** How the workload reaches the internet, as far as the facts tell; `shared` means many pullers per IP. */
export function egressOf(facts: Facts): { shared: boolean; description: string } {
  const network = facts.network;
  if (facts.launchType === 'CODEBUILD') {
    const nat =
      network?.routeTables.state === 'found'
        ? network.routeTables.value
            .flatMap((table) => table.Routes ?? [])
            .find(
              (route) =>
                route.DestinationCidrBlock === '0.0.0.0/0' &&
                route.NatGatewayId !== undefined &&
                route.State !== 'blackhole',
            )
        : undefined;
    return {
      shared: true,
      description: nat?.NatGatewayId
        ? `NAT gateway ${nat.NatGatewayId}: every build behind it shares its address`
        : 'CodeBuild: builds share a few egress addresses per region',
    };
  }
  if (network?.routeTables.state === 'found') {
    const defaults = network.routeTables.value.flatMap((table) =>
      (table.Routes ?? []).filter(
        (route) => route.DestinationCidrBlock === '0.0.0.0/0' && route.State !== 'blackhole',
      ),
    );
    const nat = defaults.find((route) => route.NatGatewayId !== undefined);
    if (nat?.NatGatewayId !== undefined) {
      return {
        shared: true,
        description: `NAT gateway ${nat.NatGatewayId}: every task behind it shares its address`,
      };
    }
    const transit = defaults.find((route) => route.TransitGatewayId !== undefined);
    if (transit?.TransitGatewayId !== undefined) {
      return {
        shared: true,
        description: `transit gateway ${transit.TransitGatewayId}: egress through a central NAT is shared`,
      };
    }
    const igw = defaults.find((route) => route.GatewayId?.startsWith('igw-') === true);
    if (igw?.GatewayId !== undefined && network.assignPublicIp && facts.launchType === 'FARGATE') {
      return { shared: false, description: `public IP per task through internet gateway ${igw.GatewayId}` };
    }
  }
  if (facts.launchType === 'FARGATE' && network?.assignPublicIp === true) {
    return { shared: false, description: 'public IP per task' };
  }
  if (facts.launchType === 'EC2' || facts.launchType === 'EXTERNAL') {
    return { shared: true, description: 'all tasks on a container instance share its address' };
  }
  return { shared: true, description: 'private subnets reach Docker Hub through a shared NAT address' };
}

function rateLimitFinding(image: ImageFacts, facts: Facts): Finding {
  const authenticated = image.credentialsParameter !== undefined;
  const egress = egressOf(facts);
  const repository = image.repository ?? '';
  const name = officialName(repository);
  const pull = image.build?.pull;
  const evidence: Evidence[] = [
    pull
      ? { label: 'pulled by', value: `${pull.how} (${pull.where})` }
      : { label: 'container', value: image.container },
    { label: 'image', value: image.reference },
    { label: 'registry', value: 'docker.io (Docker Hub)' },
    {
      label: 'credentials',
      value: authenticated
        ? `repositoryCredentials ${image.credentialsParameter ?? ''}`
        : pull && image.build?.dockerHubLogin === undefined
          ? 'unknown: the buildspec was not read'
          : 'none: anonymous pulls',
    },
    { label: 'egress', value: egress.description },
    { label: 'launch type', value: facts.launchType },
  ];
  const detail =
    (authenticated
      ? 'Pulls are authenticated, so they count against the Docker Hub account; free accounts have a pull limit too. '
      : 'Pulls are anonymous, so Docker Hub counts them per source IP address. ') +
    (egress.shared && !authenticated
      ? `Here that address is shared (${egress.description}), so scaling out, redeploying or parallel builds use the quota up and pulls fail with "toomanyrequests". `
      : '') +
    'The current limit and window are in the RateLimit-Limit header of a manifest response.';
  return {
    id: 'docker-hub-rate-limit',
    cause: 'rate-limit',
    hop: 'rate-limit',
    severity: 'warning',
    certainty: !authenticated && egress.shared ? 'likely' : 'possible',
    title: `Docker Hub image ${name ?? repository} can hit Docker Hub's pull rate limit`,
    detail,
    evidence,
    fixes: [
      ...ecrPublicFixes(image, name),
      ...pullThroughFixes(image, facts),
      ...(facts.launchType === 'CODEBUILD'
        ? codeBuildFixes(image, facts)
        : repositoryCredentialsFixes(image, facts)),
      ...copyFixes(image, facts),
      ...cacheFixes(image),
    ],
  };
}

/**
 * pullsafe's pull-through cache: every task and build pulls through one endpoint, which fetches each image
 * version from Docker Hub once and keeps serving what it holds when the limit is reached. ECS and CodeBuild
 * have no mirror setting, so their references point at it (`pullsafe rewrite --to-cache`).
 */
function cacheFixes(image: ImageFacts): Fix[] {
  const source = `docker.io/${image.repository ?? ''}${tagSuffix(image)}`;
  return [
    {
      kind: 'shell',
      summary:
        'Or run a pull-through cache of Docker Hub with `pullsafe serve --proxy docker.io` where the tasks and builds reach it (several tasks behind a load balancer with a health check on /readyz; see docs/cache.md), and point the references at it',
      content: [
        'pullsafe serve --proxy docker.io --listen 0.0.0.0:5000 --storage /var/lib/pullsafe',
        'pullsafe rewrite --to-cache http://CACHE:5000',
      ].join('\n'),
    },
    replacement(
      image,
      image.build
        ? 'Then pull through the cache'
        : `Then pull through the cache in container "${image.container}"`,
      `CACHE:5000/${source}`,
    ),
  ];
}

/** The pull's line (FROM, COPY --from) with another image in it, for a pull from a Dockerfile or the log. */
function rewrittenLine(pull: BuildPull | undefined, reference: string): string | undefined {
  if (pull?.line === undefined) return undefined;
  if (pull.how === 'COPY --from') return pull.line.replace(/--from=\S+/, `--from=${reference}`);
  return pull.line.replace(/^(\s*FROM\s+(?:--\S+\s+)*)\S+/i, `$1${reference}`);
}

/**
 * A replacement reference, put where the image is named: the Dockerfile line of a build's FROM, the
 * buildspec command of a `docker pull`, the task definition otherwise.
 */
function replacement(image: ImageFacts, summary: string, reference: string): Fix {
  const pull = image.build?.pull;
  const line = rewrittenLine(pull, reference);
  if (pull && line !== undefined) {
    const where = pull.file ? `${pull.file} line ${pull.lineNumber ?? '?'}` : 'the Dockerfile the build uses';
    return { kind: 'dockerfile', summary: `${summary}: in ${where}`, content: line };
  }
  if (pull)
    return { kind: 'reference', summary: `${summary}: in ${pull.where} (${pull.how})`, content: reference };
  return { kind: 'reference', summary, content: reference };
}

function tagSuffix(image: ImageFacts): string {
  const tag = image.tag ?? (image.digest === undefined ? DEFAULT_TAG : undefined);
  return `${tag !== undefined ? `:${tag}` : ''}${image.digest !== undefined ? `@${image.digest}` : ''}`;
}

function ecrPublicFixes(image: ImageFacts, name: string | undefined): Fix[] {
  if (name === undefined) {
    return [
      {
        kind: 'text',
        summary:
          `ECR Public has no copy of ${image.repository ?? image.reference}: only Docker official images are mirrored ` +
          'there (public.ecr.aws/docker/library/<name>); use it only if the publisher has its own ECR Public repository',
      },
    ];
  }
  const digestNote =
    image.digest !== undefined ? ' (check the digest exists there: copies may be re-pushed)' : '';
  return [
    replacement(
      image,
      `Pull the official image from ECR Public instead (no Docker Hub quota)${digestNote}`,
      `public.ecr.aws/docker/library/${name}${tagSuffix(image)}`,
    ),
  ];
}

function pullThroughFixes(image: ImageFacts, facts: Facts): Fix[] {
  const region = facts.region;
  const account = facts.accountId ?? '<account-id>';
  const repositoryArnPattern = `arn:${partitionOf(region)}:ecr:${region}:${account}:repository/docker-hub/*`;
  const role = roleName(facts.pullRole?.state === 'found' ? facts.pullRole.value : undefined);
  const policy = {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'EcrAuthorizationToken', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
      {
        Sid: 'PullThroughCacheDockerHub',
        Effect: 'Allow',
        Action: [...ECR_PULL_ACTIONS, ...ECR_PULL_THROUGH_ACTIONS],
        Resource: repositoryArnPattern,
      },
    ],
  };
  const cached = `${ecrRegistryHost(account, region)}/docker-hub/${image.repository ?? ''}${tagSuffix(image)}`;
  const libraryNote =
    image.official === true
      ? ' (keep "library/": without it the cache asks Docker Hub for a repository that does not exist)'
      : '';
  const registry = ecrRegistryHost(account, region);
  // A build's docker client pulls from the cache, so it must log in to the registry first.
  const plan = facts.build?.plan;
  const pull = image.build?.pull;
  const buildLogin: Fix[] =
    plan !== undefined && pull !== undefined && ecrLoginBefore(plan, pull, registry) !== true
      ? [
          {
            kind: 'buildspec',
            summary: 'Log in to ECR before the build pulls from the cache (merge into the buildspec)',
            content: [
              'phases:',
              '  pre_build:',
              '    commands:',
              `      - aws ecr get-login-password --region ${region} | docker login --username AWS --password-stdin ${registry}`,
            ].join('\n'),
          },
        ]
      : [];
  return [
    {
      kind: 'aws-cli',
      summary:
        'Cache Docker Hub in ECR: store Docker Hub credentials (required for Docker Hub rules) and create a pull-through cache rule',
      content: dockerHubPullThroughCommands(region),
    },
    replacement(image, `Then pull through the cache${libraryNote}`, cached),
    ...buildLogin,
    {
      kind: 'iam-policy',
      summary: `Allow ${role ?? 'the pulling role'} to pull through the cache (the first pull of an image imports it and creates its repository)`,
      content: JSON.stringify(policy, null, 2),
    },
  ];
}

function repositoryCredentialsFixes(image: ImageFacts, facts: Facts): Fix[] {
  if (image.credentialsParameter !== undefined) return [];
  const region = facts.region;
  const account = facts.accountId ?? '<account-id>';
  const partition = partitionOf(region);
  const role = roleName(facts.executionRole?.state === 'found' ? facts.executionRole.value : undefined);
  const patch = {
    containerDefinitions: [
      { name: image.container, repositoryCredentials: { credentialsParameter: DOCKER_HUB_SECRET_NAME } },
    ],
  };
  const secretPolicy = {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ReadDockerHubCredentials',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: `arn:${partition}:secretsmanager:${region}:${account}:secret:${DOCKER_HUB_SECRET_NAME}-*`,
      },
    ],
  };
  const kmsPolicy = {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'DecryptDockerHubCredentials',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: `arn:${partition}:kms:${region}:${account}:key/<key-id>`,
        Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      },
    ],
  };
  return [
    {
      kind: 'aws-cli',
      summary: 'Or authenticate the pulls: store a Docker Hub access token in Secrets Manager',
      content:
        `aws secretsmanager create-secret --name ${DOCKER_HUB_SECRET_NAME} ` +
        `--secret-string '{"username":"<docker-hub-user>","password":"<access-token>"}' --region ${region}`,
    },
    {
      kind: 'task-definition-patch',
      summary: `Give container "${image.container}" the secret as repositoryCredentials (a name works in the task's region)`,
      content: JSON.stringify(patch, null, 2),
    },
    {
      kind: 'iam-policy',
      summary: `Allow ${role ?? 'the task execution role'} to read the secret`,
      content: JSON.stringify(secretPolicy, null, 2),
    },
    {
      kind: 'iam-policy',
      summary: `Only if the secret is encrypted with a customer managed KMS key: allow ${role ?? 'the task execution role'} to decrypt it`,
      content: JSON.stringify(kmsPolicy, null, 2),
    },
  ];
}

function codeBuildFixes(image: ImageFacts, facts: Facts): Fix[] {
  const region = facts.region;
  if (image.build?.dockerHubLogin === false) {
    // codebuild-anonymous-docker-hub carries the login, with the buildspec it goes in.
    return [
      {
        kind: 'text',
        summary: 'Or log in to Docker Hub before the first pull (see codebuild-anonymous-docker-hub)',
      },
    ];
  }
  const fixes: Fix[] = dockerHubLoginFixes(facts, 'pre_build');
  const environment = facts.project?.environment;
  const projectName = facts.project?.name;
  if (image.build === undefined && environment?.image === image.reference && projectName !== undefined) {
    // The build environment image is pulled before the buildspec runs, so only the project's registry
    // credential authenticates that pull.
    // Environment variables stay out of the output (plaintext ones may hold secrets).
    const { environmentVariables, ...kept } = environment;
    const updated = {
      ...kept,
      imagePullCredentialsType: 'SERVICE_ROLE',
      registryCredential: { credential: DOCKER_HUB_SECRET_NAME, credentialProvider: 'SECRETS_MANAGER' },
    };
    fixes.push({
      kind: 'aws-cli',
      summary:
        'Authenticate the pull of the build environment image itself with the project’s registry credential' +
        (environmentVariables !== undefined && environmentVariables.length > 0
          ? ' (update-project replaces the whole environment: add its environmentVariables back to this JSON)'
          : ''),
      content: `aws codebuild update-project --name ${projectName} --environment '${JSON.stringify(updated)}' --region ${region}`,
    });
  }
  return fixes;
}

/**
 * Copy the image once into the account's own ECR and pull it from there: one Docker Hub pull per image,
 * none per task. Digests are preserved, so a digest-pinned reference stays valid.
 */
function copyFixes(image: ImageFacts, facts: Facts): Fix[] {
  const region = facts.region;
  const account = facts.accountId ?? '<account-id>';
  const repository = `mirror/${image.repository ?? ''}`;
  const source = `docker.io/${image.repository ?? ''}${tagSuffix(image)}`;
  const target = `${ecrRegistryHost(account, region)}/${repository}`;
  const targetTag = image.tag ?? (image.digest === undefined ? DEFAULT_TAG : undefined);
  const credentials =
    image.credentialsParameter !== undefined ? ` --src-secret ${image.credentialsParameter}` : '';
  return [
    {
      kind: 'shell',
      summary:
        'Or copy the image into your own ECR once (digests kept; for many images and tag filters, list them in a mirror file and run `pullsafe sync -f mirror.yaml` on a schedule, see docs/copy.md)',
      content: [
        `aws ecr create-repository --repository-name ${repository} --region ${region}`,
        `pullsafe copy${credentials}${credentials ? ` --region ${region}` : ''} ${source} ${target}${targetTag !== undefined ? `:${targetTag}` : `@${image.digest ?? ''}`}`,
      ].join('\n'),
    },
    replacement(
      image,
      image.build ? 'Then pull the copy' : `Then pull the copy in container "${image.container}"`,
      `${target}${tagSuffix(image)}`,
    ),
  ];
}

function roleName(role: RoleFacts | undefined): string | undefined {
  return role === undefined ? undefined : `role ${role.name}`;
}
