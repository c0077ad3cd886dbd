/**
 * CodeBuild projects: the environment image must be pullable with the credentials type the project uses;
 * the build's own Docker Hub pulls (docker pull, docker run, FROM lines, compose services) must come after a
 * docker login to Docker Hub, because CodeBuild builds share a few egress addresses per region and anonymous
 * pulls meet Docker Hub's limit there first; its ECR pulls after a login to that registry.
 */
import type { BuildCommand, BuildPlan } from '../build-plan.ts';
import { evaluateResource } from '../iam-eval.ts';
import { DOCKER_HUB_SECRET_NAME, ECR_PULL_ACTIONS, ecrRepositoryArn, parseEcrHost } from '../images.ts';
import { arnResourceName, partitionOf } from '../../shared/arn.ts';
import { list, sentence } from '../text.ts';
import type { Check, Evidence, Facts, Finding, Fix, ImageFacts } from '../types.ts';

export const codebuildCheck: Check = (facts) => {
  const project = facts.project;
  if (!project) return [];
  const environment = project.environment;
  const reference = environment?.image ?? '';
  const credentialsType = environment?.imagePullCredentialsType ?? 'CODEBUILD';
  const projectEvidence = [
    { label: 'project', value: project.arn ?? project.name ?? '' },
    { label: 'image', value: reference },
    { label: 'imagePullCredentialsType', value: credentialsType },
  ];
  const findings: Finding[] = [];
  if (reference.startsWith('aws/codebuild/') && credentialsType !== 'CODEBUILD') {
    findings.push(curatedNeedsCodeBuildCredentials(facts, projectEvidence));
  }
  const image = facts.images[0];
  if (image?.kind === 'ecr' && image.ecr && credentialsType === 'CODEBUILD') {
    findings.push(...codebuildCredentialsFindings(facts, image, projectEvidence));
  }
  findings.push(...buildFindings(facts));
  return findings;
};

/** The `update-project` command that sets the environment's image pull credentials type. */
function setCredentialsType(facts: Facts, type: 'CODEBUILD' | 'SERVICE_ROLE'): string {
  const project = facts.project;
  const environment = project?.environment;
  return `aws codebuild update-project --name ${project?.name} --environment type=${environment?.type},image=${environment?.image ?? ''},computeType=${environment?.computeType},imagePullCredentialsType=${type} --region ${facts.region}`;
}

function curatedNeedsCodeBuildCredentials(facts: Facts, projectEvidence: Evidence[]): Finding {
  const environment = facts.project?.environment;
  return {
    id: 'codebuild-curated-needs-codebuild-credentials',
    cause: 'auth-ecr-permission',
    hop: 'registry-auth',
    severity: 'error',
    certainty: 'certain',
    title: 'curated CodeBuild images must be pulled with CODEBUILD credentials',
    detail: `${environment?.image ?? ''} is a CodeBuild-managed image; with imagePullCredentialsType ${environment?.imagePullCredentialsType ?? 'CODEBUILD'} the build cannot pull it.`,
    evidence: projectEvidence,
    fixes: [
      {
        kind: 'aws-cli',
        summary: 'switch the project to CODEBUILD credentials',
        content: setCredentialsType(facts, 'CODEBUILD'),
      },
    ],
  };
}

/**
 * With CODEBUILD credentials, CodeBuild pulls an ECR image as codebuild.amazonaws.com: only from its own
 * account, and only where the repository policy lets that service in.
 */
function codebuildCredentialsFindings(
  facts: Facts,
  image: ImageFacts,
  projectEvidence: Evidence[],
): Finding[] {
  const ecr = image.ecr;
  if (!ecr) return [];
  if (ecr.crossAccount) {
    return [
      {
        id: 'codebuild-cross-account-needs-service-role',
        cause: 'auth-ecr-permission',
        hop: 'registry-auth',
        severity: 'error',
        certainty: 'certain',
        title: 'an image from another account needs SERVICE_ROLE pull credentials',
        detail: `The image lives in account ${ecr.registryId}; CodeBuild's own credentials only pull curated images and repositories that trust codebuild.amazonaws.com in the same account.`,
        evidence: projectEvidence,
        fixes: [
          {
            kind: 'aws-cli',
            summary:
              'pull with the service role (it then needs the ECR pull actions, and the repository policy must allow it)',
            content: setCredentialsType(facts, 'SERVICE_ROLE'),
          },
        ],
      },
    ];
  }
  return repositoryPolicyFindings(image, ecr, projectEvidence);
}

/** The repository policy must let codebuild.amazonaws.com pull. */
function repositoryPolicyFindings(
  image: ImageFacts,
  ecr: NonNullable<ImageFacts['ecr']>,
  projectEvidence: Evidence[],
): Finding[] {
  const policy = ecr.repositoryPolicy;
  if (policy?.state === 'failed') {
    return [
      {
        id: 'repository-policy-unchecked',
        cause: 'auth-ecr-permission',
        hop: 'registry-auth',
        severity: 'unchecked',
        certainty: 'possible',
        title: `could not read the policy of ${image.repository}`,
        detail: `ecr:GetRepositoryPolicy failed (${policy.failure.code}).`,
        evidence: [...projectEvidence, { label: 'error', value: policy.failure.message }],
        fixes: [{ kind: 'text', summary: 'allow the identity running doctor ecr:GetRepositoryPolicy' }],
      },
    ];
  }
  const repositoryArn = ecrRepositoryArn(ecr.registryId, ecr.region, image.repository ?? '');
  const denied = ECR_PULL_ACTIONS.filter((action) =>
    policy?.state === 'found'
      ? evaluateResource(
          { name: `repository:${image.repository}`, kind: 'resource', document: policy.value },
          { action, resource: repositoryArn, principalArn: 'codebuild.amazonaws.com' },
        ).decision !== 'allowed'
      : true,
  );
  if (denied.length === 0) return [];
  const statement = {
    Sid: 'CodeBuildAccess',
    Effect: 'Allow',
    Principal: { Service: 'codebuild.amazonaws.com' },
    Action: ECR_PULL_ACTIONS,
  };
  return [
    {
      id: 'codebuild-repository-policy-no-codebuild',
      cause: 'auth-ecr-permission',
      hop: 'registry-auth',
      severity: 'error',
      certainty: 'certain',
      title: `the policy of ${image.repository} does not let CodeBuild pull`,
      detail: `With imagePullCredentialsType CODEBUILD, the repository policy must allow codebuild.amazonaws.com ${denied.join(', ')}.`,
      evidence: [...projectEvidence, { label: 'repository', value: repositoryArn }],
      fixes: [
        {
          kind: 'repository-policy',
          summary: `add this statement to the policy of ${image.repository}`,
          content: JSON.stringify(statement, null, 2),
        },
        {
          kind: 'text',
          summary:
            'or set imagePullCredentialsType to SERVICE_ROLE and give the service role the ECR pull actions',
        },
      ],
    },
  ];
}

function buildEvidence(facts: Facts): Evidence[] {
  const build = facts.build;
  const project = facts.project;
  const spec = build?.buildspec;
  return [
    { label: 'project', value: project?.arn ?? project?.name ?? '' },
    ...(spec
      ? [
          {
            label: 'buildspec',
            value:
              spec.origin === 'project'
                ? 'inline in the project'
                : spec.origin === 'file'
                  ? `${spec.path ?? ''} (--buildspec)`
                  : spec.origin === 'source'
                    ? `${spec.path ?? ''} in --source`
                    : `${spec.path ?? 'buildspec.yml'} in the source (not read)`,
          },
        ]
      : []),
  ];
}

function commandName(command: BuildCommand): string {
  return `${command.phase} command ${command.number}`;
}

function loginEvidence(plan: BuildPlan): Evidence[] {
  return plan.logins.map((login) => ({
    label: `docker login (${commandName(login.command)})`,
    value: `${login.written ?? '(no server)'}: ${login.target === 'docker-hub' ? 'Docker Hub' : `not Docker Hub: ${login.reason}`}`,
  }));
}

function pullEvidence(images: ImageFacts[]): Evidence[] {
  return images.flatMap((image) =>
    image.build
      ? [{ label: image.build.pull.how, value: `${image.reference} (${image.build.pull.where})` }]
      : [],
  );
}

/** The AWS-documented way to authenticate a build's Docker Hub pulls, as the fixes to apply. */
export function dockerHubLoginFixes(facts: Facts, phase: string): Fix[] {
  const region = facts.region;
  const account = facts.accountId ?? '<account-id>';
  const serviceRole = facts.project?.serviceRole;
  const role = serviceRole === undefined ? undefined : arnResourceName(serviceRole);
  const buildspec = [
    'env:',
    '  secrets-manager:',
    `    DOCKERHUB_USER: ${DOCKER_HUB_SECRET_NAME}:username`,
    `    DOCKERHUB_TOKEN: ${DOCKER_HUB_SECRET_NAME}:password`,
    'phases:',
    `  ${phase}:`,
    '    commands:',
    '      - echo "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USER" --password-stdin',
  ].join('\n');
  return [
    {
      kind: 'buildspec',
      summary: `Log in to Docker Hub before the first pull: merge into the buildspec (the login goes first in ${phase})`,
      content: buildspec,
    },
    {
      kind: 'aws-cli',
      summary: 'Store a Docker Hub access token in Secrets Manager (the secret the buildspec reads)',
      content:
        `aws secretsmanager create-secret --name ${DOCKER_HUB_SECRET_NAME} ` +
        `--secret-string '{"username":"<docker-hub-user>","password":"<access-token>"}' --region ${region}`,
    },
    {
      kind: 'iam-policy',
      summary: `Allow the CodeBuild service role${role ? ` ${role}` : ''} to read it (the ARN ends in a random suffix, hence the -*)`,
      content: JSON.stringify(
        {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'ReadDockerHubCredentials',
              Effect: 'Allow',
              Action: 'secretsmanager:GetSecretValue',
              Resource: `arn:${partitionOf(region)}:secretsmanager:${region}:${account}:secret:${DOCKER_HUB_SECRET_NAME}-*`,
            },
          ],
        },
        null,
        2,
      ),
    },
  ];
}

/** The phase a login fragment goes in: before the first pull it must cover. */
function loginPhase(commands: (BuildCommand | undefined)[]): string {
  return commands.some((command) => command?.phase === 'install') ? 'install' : 'pre_build';
}

function buildFindings(facts: Facts): Finding[] {
  const build = facts.build;
  if (!build) return [];
  const evidence = buildEvidence(facts);
  const buildImages = facts.images.filter((image) => image.build !== undefined);
  return [
    ...unreadBuildFindings(facts, build),
    ...buildspecFindings(facts, build, evidence),
    ...anonymousDockerHubFindings(facts, build.plan, buildImages, evidence),
    ...ecrLoginFindings(facts, build.plan, buildImages, evidence),
  ];
}

/** The builds, or the failed build's log, that doctor could not read. */
function unreadBuildFindings(facts: Facts, build: NonNullable<Facts['build']>): Finding[] {
  const findings: Finding[] = [];
  if (build.failure) {
    const call = `${build.failure.service}:${build.failure.operation}`;
    findings.push({
      id: 'codebuild-builds-unchecked',
      cause: 'unknown',
      hop: 'stop-reason',
      severity: 'unchecked',
      certainty: 'certain',
      title: `could not read the builds of project ${facts.project?.name ?? ''}`,
      detail: `${call} failed (${build.failure.code}), so the last failed build was not read; the checks below ran on the project's configuration alone.`,
      evidence: [{ label: call, value: `${build.failure.code}: ${build.failure.message}` }],
      fixes: [
        {
          kind: 'text',
          summary: `allow the identity running doctor ${call} (docs/doctor.md lists the read-only policy), or give the build with --build-id`,
        },
      ],
    });
  }
  const log = build.log;
  if (log?.lines.state === 'failed') {
    const failure = log.lines.failure;
    findings.push({
      id: 'codebuild-log-unchecked',
      cause: 'unknown',
      hop: 'stop-reason',
      severity: 'unchecked',
      certainty: 'certain',
      title: `could not read the log of build ${build.build?.id ?? ''}`,
      detail: `logs:GetLogEvents failed (${failure.code}), so only the build's phase messages were read; the log names the image and the registry's answer.`,
      evidence: [
        { label: 'log group', value: log.group },
        { label: 'log stream', value: log.stream },
        { label: 'error', value: failure.message },
      ],
      fixes: [
        { kind: 'text', summary: 'allow the identity running doctor logs:GetLogEvents on the log group' },
      ],
    });
  }
  return findings;
}

/** A buildspec doctor did not read (kept in the source), or one that does not parse. */
function buildspecFindings(
  facts: Facts,
  build: NonNullable<Facts['build']>,
  evidence: Evidence[],
): Finding[] {
  const findings: Finding[] = [];
  const spec = build.buildspec;
  if (spec.origin === 'unavailable' && build.build) {
    findings.push({
      id: 'codebuild-buildspec-in-source',
      cause: 'rate-limit',
      hop: 'build',
      severity: 'info',
      certainty: 'possible',
      title: `the buildspec is a file in the source (${spec.path ?? 'buildspec.yml'}), not read`,
      detail:
        'Which images the build pulls and where it logs in come from the buildspec; without it only the log was read. Give it with --buildspec FILE, or the whole checkout with --source DIR (Dockerfiles and compose files too).',
      evidence,
      fixes: [
        {
          kind: 'text',
          summary: `pullsafe doctor --codebuild-project ${facts.project?.name ?? ''} --source .`,
        },
        {
          kind: 'text',
          summary: 'or find every Docker Hub pull in the repository: pullsafe scan . --fail-on docker-hub',
        },
      ],
    });
  }
  const error = build.plan.buildspecError;
  if (error) {
    findings.push({
      id: 'codebuild-buildspec-invalid',
      cause: 'unknown',
      hop: 'build',
      severity: 'warning',
      certainty: 'likely',
      title: 'the buildspec does not parse',
      detail: `${sentence(error)} CodeBuild fails such a build with YAML_FILE_ERROR before running any command.`,
      evidence,
      fixes: [{ kind: 'text', summary: 'fix the YAML (version: 0.2, then phases with lists of commands)' }],
    });
  }
  return findings;
}

/** Where the build's logins that are not to Docker Hub go, as the anonymous-pull finding names them. */
function otherLogins(plan: BuildPlan): string {
  const others = plan.logins.filter((login) => login.target !== 'docker-hub');
  if (others.length === 0) return '';
  const where = (login: BuildPlan['logins'][number]): string =>
    login.target === 'unresolved'
      ? 'a registry doctor could not resolve'
      : login.target === 'ecr'
        ? 'ECR'
        : login.target === 'ecr-public'
          ? 'ECR Public'
          : (login.registry ?? 'another registry');
  return ` Its docker login${others.length === 1 ? ' goes' : 's go'} elsewhere: ${others
    .map((login) => `${login.written ?? '(no server)'} in ${commandName(login.command)} (${where(login)})`)
    .join(', ')}.`;
}

/** Docker Hub pulls before any login to Docker Hub: anonymous, on egress addresses many builds share. */
function anonymousDockerHubFindings(
  facts: Facts,
  plan: BuildPlan,
  buildImages: ImageFacts[],
  evidence: Evidence[],
): Finding[] {
  const anonymous = buildImages.filter(
    (image) => image.kind === 'docker-hub' && image.build?.dockerHubLogin === false,
  );
  if (anonymous.length === 0) return [];
  const names = anonymous.map((image) => image.reference);
  const firstPull = anonymous[0]?.build?.pull.command;
  const late = plan.logins.find((login) => login.target === 'docker-hub');
  const fixes: Fix[] = [];
  if (late && firstPull) {
    fixes.push({
      kind: 'text',
      summary: `move the Docker Hub login of ${commandName(late.command)} before ${commandName(firstPull)}, the first Docker Hub pull`,
    });
  }
  fixes.push(...dockerHubLoginFixes(facts, loginPhase(anonymous.map((image) => image.build?.pull.command))));
  return [
    {
      id: 'codebuild-anonymous-docker-hub',
      cause: 'rate-limit',
      hop: 'build',
      severity: 'warning',
      certainty: 'likely',
      title: late
        ? `the build's Docker Hub login comes after it pulls ${list(names)}`
        : `the build pulls ${list(names)} from Docker Hub without logging in to Docker Hub`,
      detail:
        `CodeBuild builds in ${facts.region} share a few egress addresses, so anonymous Docker Hub pulls meet the rate limit (toomanyrequests) first.` +
        (late
          ? ` The login to Docker Hub is in ${commandName(late.command)}, after the first pull.`
          : ' No docker login in the buildspec targets Docker Hub.') +
        otherLogins(plan),
      evidence: [...evidence, ...pullEvidence(anonymous), ...loginEvidence(plan)],
      fixes,
    },
  ];
}

/** ECR pulls with no `docker login` to that registry before them. */
function ecrLoginFindings(
  facts: Facts,
  plan: BuildPlan,
  buildImages: ImageFacts[],
  evidence: Evidence[],
): Finding[] {
  const unauthenticatedEcr = buildImages.filter(
    (image) => image.kind === 'ecr' && image.build?.ecrLogin === false,
  );
  if (unauthenticatedEcr.length === 0) return [];
  const registries = [...new Set(unauthenticatedEcr.map((image) => image.registry ?? ''))];
  const first = unauthenticatedEcr[0]?.build?.pull.command;
  return [
    {
      id: 'codebuild-ecr-login-missing',
      cause: 'auth-registry-credentials',
      hop: 'registry-auth',
      severity: 'error',
      certainty: 'likely',
      title: `the build pulls ${list(unauthenticatedEcr.map((image) => image.reference))} from ECR without logging in to ${list(registries)}`,
      detail:
        'Docker does not log in to ECR by itself: without `aws ecr get-login-password | docker login` before it, the pull fails with "no basic auth credentials".' +
        (first ? ` The first pull is in ${commandName(first)}.` : ''),
      evidence: [...evidence, ...pullEvidence(unauthenticatedEcr), ...loginEvidence(plan)],
      fixes: [
        {
          kind: 'buildspec',
          summary:
            'Log in to ECR before the pull: merge into the buildspec (the service role needs ecr:GetAuthorizationToken)',
          content: [
            'phases:',
            `  ${loginPhase([first])}:`,
            '    commands:',
            ...registries.map(
              (registry) =>
                `      - aws ecr get-login-password --region ${parseEcrHost(registry)?.region ?? facts.region} | docker login --username AWS --password-stdin ${registry}`,
            ),
          ].join('\n'),
        },
      ],
    },
  ];
}
