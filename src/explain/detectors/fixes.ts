/**
 * What the detectors' fixes are made of: names from the message (or a placeholder saying what to put
 * there), who pulled and how that puller is given credentials, an image or a cache, the evidence each kind
 * of cause shows, and the fixes for a denied IAM action.
 */
import { isDockerHub, OFFICIAL_REPOSITORY_PREFIX } from '../../reference/index.ts';
import { parseArn, parseIamPrincipalArn } from '../../shared/arn.ts';
import type { EvidenceValue } from '../cause.ts';
import type { Extracted } from '../evidence.ts';

export const roleOf = (x: Extracted): string => x.roleName ?? '<pull role>';
export const regionOf = (x: Extracted): string => x.region ?? '<region>';
export const accountOf = (x: Extracted): string => x.accountId ?? x.principalAccount ?? '<account id>';

export function imageLabel(x: Extracted): string {
  return x.image ?? (x.repository ? `${x.registry ?? ''}/${x.repository}` : '<image>');
}

export function ecrRepositoryName(x: Extracted): string | undefined {
  const fromArn = repositoryResource(x.resourceArn)?.slice('repository/'.length);
  if (fromArn) return fromArn;
  return x.registry && /\.dkr\.ecr\./.test(x.registry) ? x.repository : undefined;
}

/** The `repository/NAME` resource of an ECR repository ARN. */
export function repositoryResource(arn: string | undefined): string | undefined {
  const resource = parseArn(arn)?.resource;
  return resource?.startsWith('repository/') ? resource : undefined;
}

export function repositoryArn(x: Extracted): string {
  if (x.resourceArn && repositoryResource(x.resourceArn)) return x.resourceArn;
  const name = ecrRepositoryName(x) ?? '<repository>';
  return `arn:aws:ecr:${regionOf(x)}:${accountOf(x)}:repository/${name}`;
}

export function policyJson(statement: Record<string, unknown>): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
}

export function putRolePolicy(role: string, name: string, statement: Record<string, unknown>): string {
  return `aws iam put-role-policy --role-name ${role} --policy-name ${name} --policy-document '${policyJson(statement)}'`;
}

/** The IAM role ARN behind an assumed-role session, which is what policies name as principal. */
export function roleArn(x: Extracted): string {
  const principal = parseIamPrincipalArn(x.principalArn);
  if (
    x.principalArn &&
    principal?.service === 'iam' &&
    principal.account &&
    (principal.kind === 'role' || principal.kind === 'user')
  ) {
    return x.principalArn;
  }
  const partition = principal?.partition ?? 'aws';
  return `arn:${partition}:iam::${x.principalAccount ?? '<account id>'}:role/${roleOf(x)}`;
}

export function isInstanceRole(x: Extracted): boolean {
  return /^i-[0-9a-f]{8,17}$/.test(x.roleSession ?? '');
}

/**
 * The tag and digest of the image as the message gave them (`:1.25`, `@sha256:…`, `:20@sha256:…`), so that a
 * suggested replacement pulls the same content; `:latest` only when the message gave neither.
 */
export function referenceSuffix(x: Extracted): string {
  if (x.tag === undefined && x.digest === undefined) return ':latest';
  return `${x.tag !== undefined ? `:${x.tag}` : ''}${x.digest !== undefined ? `@${x.digest}` : ''}`;
}

/** For an official Docker Hub image: its name (`nginx`) and reference suffix (`:1.25`). */
export function officialImage(x: Extracted): { name: string; suffix: string } | undefined {
  if (!x.registry || !x.repository || !isDockerHub({ registry: x.registry })) return undefined;
  if (!x.repository.startsWith(OFFICIAL_REPOSITORY_PREFIX)) return undefined;
  const name = x.repository.slice(OFFICIAL_REPOSITORY_PREFIX.length);
  if (name.includes('/')) return undefined;
  return { name, suffix: referenceSuffix(x) };
}

/** `…/docker-hub/<name>` on an ECR pull-through prefix, without `library/`: the 403 trap. */
export function pullThroughLibraryTrap(x: Extracted): string | undefined {
  if (!x.registry || !/\.dkr\.ecr\./.test(x.registry) || !x.repository) return undefined;
  const match = /^(docker-hub|dockerhub|docker)\/([a-z0-9._-]+)$/.exec(x.repository);
  if (!match) return undefined;
  return `${x.registry}/${match[1]}/library/${match[2]}${referenceSuffix(x)}`;
}

/**
 * Who pulled, which decides where credentials and image names are configured: the ECS agent (task
 * definition), CodeBuild fetching the project's build image (project environment), a buildspec command such
 * as `docker build` in CodeBuild (buildspec), a `docker build` elsewhere (its FROM line and `docker login`),
 * the kubelet (pod spec), or a plain Docker client.
 */
export type Puller =
  'ecs' | 'codebuild-environment' | 'codebuild-buildspec' | 'docker-build' | 'kubernetes' | 'docker';

export function pullerOf(x: Extracted): Puller {
  if (x.wrappers?.includes('codebuild')) return 'codebuild-environment';
  if (x.source === 'codebuild') return 'codebuild-buildspec';
  if (x.dockerBuild) return 'docker-build';
  if (x.source === 'kubernetes') return 'kubernetes';
  if (x.source === 'docker') return 'docker';
  return 'ecs';
}

/**
 * pullsafe's pull-through cache as a rate-limit fix: each image version is fetched from Docker Hub once for
 * every machine behind it, and what it holds keeps pulling when the limit is reached. How a puller is
 * pointed at it depends on whether it has a mirror setting (containerd, Docker) or not (ECS, CodeBuild).
 */
export function cacheFix(x: Extracted, puller: Puller): string {
  const start =
    'or run `pullsafe serve --proxy docker.io --listen 0.0.0.0:5000` on a host the pullers reach: a pull-through cache that fetches each image from Docker Hub once for all of them, and keeps serving cached images under the limit';
  const image = x.repository
    ? `docker.io/${x.repository}${referenceSuffix(x)}`
    : 'docker.io/<repository>:<tag>';
  switch (puller) {
    case 'kubernetes':
    case 'docker':
      return `${start}; \`pullsafe client-config --endpoint http://CACHE:5000\` prints the containerd hosts.toml (EKS nodes) and Docker's registry-mirrors`;
    default:
      return `${start}; ${puller === 'ecs' ? 'ECS' : 'CodeBuild'} has no mirror setting, so point the references at it: \`pullsafe rewrite --to-cache http://CACHE:5000\` turns ${image} into CACHE:5000/${image}`;
  }
}

/** `docker login`'s server argument: none for Docker Hub, the host otherwise. */
export function loginServer(x: Extracted): string {
  return !x.registry || isDockerHub({ registry: x.registry }) ? '' : ` ${x.registry}`;
}

/** How the puller is given registry credentials (Docker Hub: an access token as the password). */
export function credentialsFix(x: Extracted, puller: Puller): string {
  const login = `docker login${loginServer(x)} --username <user> --password-stdin`;
  switch (puller) {
    case 'codebuild-environment':
      return 'give the project credentials for its build image: `environment.registryCredential` {"credential": "<Secrets Manager secret ARN holding {username, password}>", "credentialProvider": "SECRETS_MANAGER"} with `imagePullCredentialsType: SERVICE_ROLE`, and secretsmanager:GetSecretValue on the secret for the service role';
    case 'codebuild-buildspec':
      return `log in before the build, in the buildspec: \`env: secrets-manager: {REGISTRY_USER: "<secret>:username", REGISTRY_TOKEN: "<secret>:password"}\` and a pre_build command \`echo "$REGISTRY_TOKEN" | docker login${loginServer(x)} --username "$REGISTRY_USER" --password-stdin\` (the service role needs secretsmanager:GetSecretValue on the secret)`;
    case 'docker-build':
      return `\`${login}\` before the build; in CodeBuild, as a buildspec pre_build command with the password from \`env.secrets-manager\``;
    case 'kubernetes': {
      const server =
        x.registry && !isDockerHub({ registry: x.registry }) ? x.registry : 'https://index.docker.io/v1/';
      return `create a pull secret, \`kubectl create secret docker-registry regcred --docker-server=${server} --docker-username=<user> --docker-password=<token>\`, and name it in the pod spec's \`imagePullSecrets\` (or the service account's)`;
    }
    case 'docker':
      return `\`${login}\` on the host that pulls (on ECS, the task definition's \`repositoryCredentials\` does it)`;
    case 'ecs':
      return 'set `repositoryCredentials.credentialsParameter` to a Secrets Manager secret whose value is JSON {"username": "…", "password": "…"}, and allow secretsmanager:GetSecretValue on it to the execution role';
  }
}

/** A replacement reference where the puller reads it: a build's FROM line, the pod spec, the task definition. */
export function placed(x: Extracted, puller: Puller, reference: string): string {
  switch (puller) {
    case 'codebuild-buildspec':
    case 'docker-build':
      return x.dockerBuild ? `\`FROM ${reference}\` in the Dockerfile` : reference;
    case 'codebuild-environment':
      return `${reference} as the project's build image`;
    case 'kubernetes':
      return `\`image: ${reference}\` in the pod spec`;
    case 'docker':
      return reference;
    case 'ecs':
      return `${reference} as the container's image in the task definition`;
  }
}

export function common(x: Extracted): Record<string, EvidenceValue | undefined> {
  return { image: x.image, registry: x.registry, region: x.region, retries: x.retries };
}

export function iamEvidence(x: Extracted): Record<string, EvidenceValue | undefined> {
  return {
    iamAction: x.iamAction,
    principalArn: x.principalArn,
    roleName: x.roleName,
    resourceArn: x.resourceArn,
    deniedBy: x.deniedBy,
    explicitDenyIn: x.explicitDenyIn,
    errorCode: x.errorCode,
    sdkStatusCode: x.sdkStatusCode,
    requestId: x.requestId,
  };
}

export function networkEvidence(x: Extracted): Record<string, EvidenceValue | undefined> {
  return {
    dialIp: x.dialIp,
    dialPort: x.dialPort,
    ipClass: x.ipClass,
    lookupHost: x.lookupHost,
    hosts: x.hosts,
    sdkStatusCode: x.sdkStatusCode,
  };
}

/** Fixes for a denied IAM action, by the kind of policy that denied it. */
export function deniedFixes(x: Extracted, action: string, resource: string, kind: 'ecr' | 'other'): string[] {
  const role = roleOf(x);
  const fixes: string[] = [];
  const statement = { Effect: 'Allow', Action: [action], Resource: resource };
  switch (x.deniedBy) {
    case 'resource-based': {
      const repository = ecrRepositoryName(x) ?? '<repository>';
      const crossAccount = x.principalAccount && x.accountId && x.principalAccount !== x.accountId;
      fixes.push(
        `add a statement to the repository policy of ${repository} (account ${accountOf(x)}) allowing ${roleArn(x)}: ` +
          JSON.stringify({
            Sid: `AllowPull${role.replace(/[^A-Za-z0-9]/g, '')}`,
            Effect: 'Allow',
            Principal: { AWS: roleArn(x) },
            Action: [action],
          }) +
          ` (read it with \`aws ecr get-repository-policy --repository-name ${repository} --region ${regionOf(x)}\`, merge, then \`aws ecr set-repository-policy\`: it replaces the whole policy)`,
      );
      if (crossAccount) {
        fixes.push(
          `cross-account pull: the role's own policy in account ${x.principalAccount} must allow ${action} on ${resource} too: ${putRolePolicy(role, 'pullsafe-ecr-pull', statement)}`,
        );
      }
      break;
    }
    case 'explicit-deny':
      fixes.push(
        `find the Deny statement matching ${action} on ${resource}${x.explicitDenyIn ? ` in the ${x.explicitDenyIn} policies` : ''}: the role's policies (\`aws iam list-role-policies --role-name ${role}\`, \`aws iam list-attached-role-policies --role-name ${role}\`), its permissions boundary, the account's service control policies${kind === 'ecr' ? ', the repository policy, the ECR VPC endpoint policy' : ''}; an Allow cannot override it`,
      );
      break;
    case 'scp':
      fixes.push(
        `a service control policy of the organization does not allow ${action}: allow it in the SCP attached to account ${x.principalAccount ?? accountOf(x)} or its OU (\`aws organizations list-policies-for-target --target-id ${x.principalAccount ?? '<account id>'} --filter SERVICE_CONTROL_POLICY\`)`,
      );
      break;
    case 'permissions-boundary':
      fixes.push(
        `the permissions boundary of role ${role} does not allow ${action}: add it to the boundary policy (\`aws iam get-role --role-name ${role} --query Role.PermissionsBoundary\`)`,
      );
      break;
    case 'vpc-endpoint-policy':
      fixes.push(
        `the VPC endpoint policy does not allow ${action}: add ${JSON.stringify({ ...statement, Principal: '*' })} to the endpoint's policy (\`aws ec2 describe-vpc-endpoints --filters Name=service-name,Values=com.amazonaws.${regionOf(x)}.${kind === 'ecr' ? 'ecr.dkr' : '<service>'}\`)`,
      );
      break;
    default: {
      const user = /:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(x.principalArn ?? '')?.[1];
      const policyName = kind === 'ecr' ? 'pullsafe-ecr-pull' : 'pullsafe-access';
      fixes.push(
        user
          ? `allow ${action} on ${resource} to user ${user}: aws iam put-user-policy --user-name ${user} --policy-name ${policyName} --policy-document '${policyJson(statement)}'`
          : `allow ${action} on ${resource} to role ${role}: ${putRolePolicy(role, policyName, statement)}`,
      );
    }
  }
  return fixes;
}
