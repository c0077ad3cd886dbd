/**
 * CodeBuild projects: the environment image must be pullable with the credentials type the project uses,
 * and Docker Hub pulls in the buildspec must be authenticated, because CodeBuild builds share a few egress
 * addresses per region and anonymous pulls meet Docker Hub's limit there first.
 */
import { parse as parseYaml } from 'yaml';
import { isDockerHub, tryParseReference } from '../../reference/index.ts';
import { evaluateResource } from '../iam-eval.ts';
import { ECR_PULL_ACTIONS, ecrRepositoryArn } from '../images.ts';
import type { Check, Finding } from '../types.ts';

export const codebuildCheck: Check = (facts) => {
  const project = facts.project;
  if (!project) return [];
  const findings: Finding[] = [];
  const environment = project.environment;
  const credentialsType = environment?.imagePullCredentialsType ?? 'CODEBUILD';
  const image = facts.images[0];
  const reference = environment?.image ?? '';
  const curated = reference.startsWith('aws/codebuild/');
  const projectEvidence = [
    { label: 'project', value: project.arn ?? project.name ?? '' },
    { label: 'image', value: reference },
    { label: 'imagePullCredentialsType', value: credentialsType },
  ];

  if (curated && credentialsType !== 'CODEBUILD') {
    findings.push({
      id: 'codebuild-curated-needs-codebuild-credentials',
      cause: 'auth-ecr-permission',
      hop: 'registry-auth',
      severity: 'error',
      certainty: 'certain',
      title: 'curated CodeBuild images must be pulled with CODEBUILD credentials',
      detail: `${reference} is a CodeBuild-managed image; with imagePullCredentialsType ${credentialsType} the build cannot pull it.`,
      evidence: projectEvidence,
      fixes: [
        {
          kind: 'aws-cli',
          summary: 'switch the project to CODEBUILD credentials',
          content: `aws codebuild update-project --name ${project.name} --environment type=${environment?.type},image=${reference},computeType=${environment?.computeType},imagePullCredentialsType=CODEBUILD --region ${facts.region}`,
        },
      ],
    });
  }

  if (image?.kind === 'ecr' && image.ecr && credentialsType === 'CODEBUILD') {
    const repositoryArn = ecrRepositoryArn(image.ecr.registryId, image.ecr.region, image.repository ?? '');
    if (image.ecr.crossAccount) {
      findings.push({
        id: 'codebuild-cross-account-needs-service-role',
        cause: 'auth-ecr-permission',
        hop: 'registry-auth',
        severity: 'error',
        certainty: 'certain',
        title: 'an image from another account needs SERVICE_ROLE pull credentials',
        detail: `The image lives in account ${image.ecr.registryId}; CodeBuild's own credentials only pull curated images and repositories that trust codebuild.amazonaws.com in the same account.`,
        evidence: projectEvidence,
        fixes: [
          {
            kind: 'aws-cli',
            summary:
              'pull with the service role (it then needs the ECR pull actions, and the repository policy must allow it)',
            content: `aws codebuild update-project --name ${project.name} --environment type=${environment?.type},image=${reference},computeType=${environment?.computeType},imagePullCredentialsType=SERVICE_ROLE --region ${facts.region}`,
          },
        ],
      });
    } else {
      const policy = image.ecr.repositoryPolicy;
      if (policy?.state === 'failed') {
        findings.push({
          id: 'repository-policy-unchecked',
          cause: 'auth-ecr-permission',
          hop: 'registry-auth',
          severity: 'unchecked',
          certainty: 'possible',
          title: `could not read the policy of ${image.repository}`,
          detail: `ecr:GetRepositoryPolicy failed (${policy.failure.code}).`,
          evidence: [...projectEvidence, { label: 'error', value: policy.failure.message }],
          fixes: [{ kind: 'text', summary: 'allow the identity running doctor ecr:GetRepositoryPolicy' }],
        });
      } else {
        const denied = ECR_PULL_ACTIONS.filter((action) =>
          policy?.state === 'found'
            ? evaluateResource(
                { name: `repository:${image.repository}`, kind: 'resource', document: policy.value },
                { action, resource: repositoryArn, principalArn: 'codebuild.amazonaws.com' },
              ).decision !== 'allowed'
            : true,
        );
        if (denied.length > 0) {
          const statement = {
            Sid: 'CodeBuildAccess',
            Effect: 'Allow',
            Principal: { Service: 'codebuild.amazonaws.com' },
            Action: ECR_PULL_ACTIONS,
          };
          findings.push({
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
          });
        }
      }
    }
  }

  findings.push(...buildspecFindings(facts.project?.source?.buildspec, facts.region, projectEvidence));
  return findings;
};

/** Docker Hub images a buildspec pulls before any `docker login` to Docker Hub (anonymous pulls). */
export function buildspecDockerPulls(buildspec: string): {
  images: string[];
  loggedIn: boolean;
  builds: boolean;
} {
  let parsed: unknown;
  try {
    parsed = parseYaml(buildspec);
  } catch {
    return { images: [], loggedIn: false, builds: false };
  }
  const commands: string[] = [];
  const phases = (parsed as { phases?: Record<string, { commands?: unknown }> } | null)?.phases ?? {};
  for (const phase of ['install', 'pre_build', 'build', 'post_build']) {
    const list = phases[phase]?.commands;
    if (Array.isArray(list)) for (const entry of list) if (typeof entry === 'string') commands.push(entry);
  }
  const images: string[] = [];
  let loggedIn = false;
  let builds = false;
  for (const command of commands) {
    for (const part of command.split(/&&|;|\|/)) {
      const words = part.trim().split(/\s+/);
      if (words[0] !== 'docker') continue;
      const verb = words[1];
      if (verb === 'login') {
        const target = words
          .slice(2)
          .find((w) => !w.startsWith('-') && !w.startsWith('$') && w.includes('.'));
        if (!target || /docker\.io|index\.docker\.io|registry-1\.docker\.io/.test(target)) loggedIn = true;
      }
      if (verb === 'build' || verb === 'buildx' || verb === 'compose') builds = true;
      if (verb === 'pull' || verb === 'run') {
        const candidate = words
          .slice(2)
          .find(
            (w, i, all) =>
              !w.startsWith('-') &&
              !(all[i - 1] ?? '').match(
                /^-(e|v|p|w|u|-name|-env|-volume|-publish|-workdir|-user|-entrypoint|-network)$/,
              ),
          );
        if (candidate && !candidate.includes('$')) {
          const ref = tryParseReference(candidate);
          if (ref && isDockerHub(ref) && !loggedIn) images.push(candidate);
        }
      }
    }
  }
  return { images: [...new Set(images)], loggedIn, builds };
}

function buildspecFindings(
  buildspec: string | undefined,
  region: string,
  evidence: Finding['evidence'],
): Finding[] {
  if (!buildspec) return [];
  if (!buildspec.includes('\n') && /\.ya?ml$/.test(buildspec.trim())) {
    return [
      {
        id: 'codebuild-buildspec-in-source',
        cause: 'rate-limit',
        hop: 'build',
        severity: 'info',
        certainty: 'possible',
        title: `the buildspec is a file in the source (${buildspec.trim()}), not checked here`,
        detail:
          'Run `pullsafe scan` on the repository to find Docker Hub pulls in the buildspec and Dockerfiles.',
        evidence,
        fixes: [{ kind: 'text', summary: 'pullsafe scan . --fail-on docker-hub' }],
      },
    ];
  }
  const found = buildspecDockerPulls(buildspec);
  if (found.images.length === 0) return [];
  const fragment = [
    'env:',
    '  secrets-manager:',
    '    DOCKERHUB_USER: dockerhub/pull:username',
    '    DOCKERHUB_TOKEN: dockerhub/pull:password',
    'phases:',
    '  pre_build:',
    '    commands:',
    '      - echo "$DOCKERHUB_TOKEN" | docker login --username "$DOCKERHUB_USER" --password-stdin',
  ].join('\n');
  return [
    {
      id: 'codebuild-anonymous-docker-hub',
      cause: 'rate-limit',
      hop: 'build',
      severity: 'warning',
      certainty: 'likely',
      title: 'the buildspec pulls from Docker Hub without logging in',
      detail: `CodeBuild builds in ${region} share a few egress addresses, so anonymous Docker Hub pulls meet the rate limit (toomanyrequests) first.`,
      evidence: [...evidence, ...found.images.map((image) => ({ label: 'docker pull', value: image }))],
      fixes: [
        {
          kind: 'buildspec',
          summary: 'log in to Docker Hub with a secret read through env.secrets-manager before pulling',
          content: fragment,
        },
        {
          kind: 'text',
          summary: 'the service role then needs secretsmanager:GetSecretValue on the dockerhub/pull secret',
        },
      ],
    },
  ];
}
