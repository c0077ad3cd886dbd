/**
 * `explain`: from the text of a failed pull to the causes in the catalogue, most specific first, each with
 * its evidence and fixes that carry the names from the message. Pure and offline.
 *
 * Ordering promise: a definite answer from a server (rate limit, platform, media type, not found, denied)
 * comes before a transport failure, and a transport failure comes before the step it interrupted (e.g. a
 * `dial tcp … i/o timeout` while fetching the ECR token is `network-*` first, `auth-ecr-token` after).
 */
import { familiarName, isDockerHub, OFFICIAL_REPOSITORY_PREFIX } from '../reference/index.ts';
import { catalogue, type CauseId } from './catalogue.ts';
import { readMessage, stripWrappers, type Extracted } from './evidence.ts';
import { parseArn, parseIamPrincipalArn } from '../shared/arn.ts';
import type { S3Range } from './ip-class.ts';

export type Confidence = 'high' | 'medium' | 'low';

export type EvidenceValue = string | number | boolean | string[];

export interface Cause {
  /** A catalogue id (src/explain/catalogue.ts). */
  id: CauseId;
  /** One line naming what failed, with the names from the message. */
  summary: string;
  /** What the cause means. */
  meaning: string;
  /** How sure the reading is: `high` when the wording names the cause, lower when inferred. */
  confidence: Confidence;
  /** Why this cause is where it is in the list. */
  rationale: string;
  /** The evidence relevant to this cause. */
  evidence: Record<string, EvidenceValue>;
  /** Concrete steps, most direct first, with names from the message filled in. */
  fixes: string[];
}

export interface ExplainResult {
  /** Most specific first; `[{ id: 'unknown', … }]` when nothing matched. */
  causes: Cause[];
  /** All evidence found in the message. */
  extracted: Extracted;
  /** The core of the evidence lines: wrappers stripped, credentials redacted, whitespace collapsed. */
  message: string;
  /**
   * The input's lines that a cause was read from, redacted, at most `evidenceLineLimit` of them (the last
   * ones), each cut to `evidenceLineLength` characters; when no line matched, the input's last lines.
   */
  lines: string[];
  /** How many lines the input had. */
  inputLines: number;
}

/** Bounds on what is shown of the input: a 6 MB build log gives a few lines, not 6 MB. */
export const evidenceLineLimit = 12;
export const evidenceLineLength = 1000;

export interface ExplainOptions {
  /** Amazon S3 prefixes to classify `dial tcp` addresses with, instead of the embedded table. */
  s3Ranges?: readonly S3Range[];
}

interface Candidate extends Cause {
  rank: number;
}

interface Context {
  text: string;
  x: Extracted;
  /** The request never got an answer (timeout, refused, cancelled, SDK StatusCode 0). */
  transport: boolean;
  secrets: boolean;
  logs: boolean;
  ecrAuth: boolean;
  layers: boolean;
  /** The message is about the ECR API/registry (auth call or dkr host). */
  ecrHost: boolean;
}

/**
 * The wordings the detectors read. The same list picks the evidence lines out of a long input, so a line is
 * shown exactly when a detector could have read something from it.
 */
const wording = {
  /** The request never got an answer (timeout, refused, cancelled). */
  transport:
    /i\/o timeout|request canceled|Client\.Timeout exceeded|context deadline exceeded|context canceled|RequestCanceled|connection issue between the task and|network is unreachable|no route to host|connection refused|connection timed out|send request failed|request send failed|RequestError/i,
  rateLimit:
    /toomanyrequests|pull rate limit|429 Too Many Requests|Too Many Requests|remote response: 429|Rate exceeded/i,
  referenceInvalid: /invalid reference format/,
  platform:
    /does not contain descriptor matching platform|no matching manifest for|failed to find a descriptor for platform|no match for platform in manifest|no match for current platform|image platform .* does not match/i,
  /** The kernel refused to run the entrypoint: a binary for another CPU (or a script without `#!`). */
  execFormat: /exec format error/i,
  mediaType:
    /unsupported media ?type|prettyjws|application\/vnd\.[\w.+-]+ not supported|unexpected media type|unsupported manifest media type|number of layers and diffIDs don't match|mixed compression/i,
  diskFull:
    /no space left on device|failed to register layer|failed to extract layer|ApplyLayer exit status/i,
  logsGroupMissing: /specified log group does not exist|cannot find the Amazon CloudWatch log group/i,
  logsAction: /\blogs:(CreateLogStream|CreateLogGroup|PutLogEvents|DescribeLogStreams)\b/,
  logsNetwork:
    /cannot find the Amazon CloudWatch log group[\s\S]*connection issue|connection issue between the task and Amazon CloudWatch/i,
  secretsNotFound:
    /ResourceNotFoundException|can[’']t find the specified secret|did not contain json key|invalid parameters|InvalidParameters|ParameterNotFound|invalid ARN format|ValidationException/i,
  denied: /AccessDenied|not authorized|Access to KMS is not allowed/i,
  secretsNetwork:
    /connection issue between the task and (?:AWS Secrets Manager|AWS Systems Manager Parameter Store)/i,
  ecrAuth: /unable to retrieve ecr registry auth|registry auth from Amazon ECR|GetAuthorizationToken/i,
  credentials:
    /incorrect username or password|no basic auth credentials|authentication required|authorization token has expired|asm fetching authorization data|unmarshal secret value of authorization data|username\/password|401 Unauthorized|unauthorized: |UNAUTHORIZED/,
  credentialsWeak:
    /may require 'docker login'|may require authorization|requested access to the resource is denied/,
  notFound:
    /manifest unknown|name unknown|repository does not exist|requested access to the resource is denied|does not exist or no pull access|Tag \S+ not found|manifest for \S+ not found|not found: manifest unknown|: not found\b|repository \S+ not found|No such image|ErrorCode: 404|\b404 Not Found\b/i,
  forbidden: /\b403 Forbidden\b/,
  dns: /no such host|server misbehaving|Temporary failure in name resolution|lookup [^\s]+ on [^\s]+: (?:read udp|i\/o timeout)/i,
  tls: /x509: certificate|TLS handshake timeout|tls: failed to verify|certificate signed by unknown authority|tls: handshake failure/i,
  interrupted: /unexpected EOF|connection reset by peer|broken pipe|http2: server sent GOAWAY|stream error/i,
  pullTimeout:
    /Could not transition to pulled|inactivity time exceeded timeout|DockerTimeoutError|timeout while pulling image|pull image timeout|CannotPullContainerError: timeout|Container pull timed out/i,
  /** Lines that name the failed step without a cause: the error names and a build's base image. */
  failedStep:
    /Cannot(?:Pull|Start|Create|Inspect)\w*Error|ResourceInitializationError|BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE|Failed to pull image|ErrImagePull|Error response from daemon|^Step \d+\/\d+ : FROM |>>> FROM |(?:ERROR|>) \[[^\]]*\] load metadata for /m,
} as const;

/** A layer (blob) download, as opposed to the manifest request. */
const layerDownload =
  /failed to copy|httpRead(?:er)?Seeker|\/blobs\/sha256|GetImageBlob|starport-layer-bucket|layer/i;

/** Explains a pull error. Empty input gives `unknown` with nothing extracted. */
export function explain(text: string, options: ExplainOptions = {}): ExplainResult {
  const read = readMessage(text, options.s3Ranges);
  const x = read.extracted;
  const t = read.text;
  const ctx: Context = {
    text: t,
    x,
    transport: wording.transport.test(t) || x.sdkStatusCode === 0,
    secrets:
      /unable to retrieve secrets? from (?:asm|ssm)|secrets ?manager|secretsmanager|ssm:|parameter store|GetSecretValue|GetParameters?\b|failed to fetch secret|asm fetching/i.test(
        t,
      ),
    logs: /log group|\blogs:|logging driver|logger args|cloudwatch log/i.test(t),
    ecrAuth: wording.ecrAuth.test(t) || /api\.ecr\./i.test(t),
    layers:
      /starport-layer-bucket/.test(t) ||
      x.ipClass === 'amazon-s3' ||
      x.layerUrlRedacted === true ||
      (x.hosts ?? []).some((host) => /(?:^|\.)s3[.-]([a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?$/.test(host)),
    ecrHost: /\.dkr\.ecr\.|api\.ecr\.|ecr:/.test(t),
  };

  const candidates: Candidate[] = [];
  for (const detect of detectors) {
    for (const candidate of detect(ctx)) {
      if (!candidates.some((existing) => existing.id === candidate.id)) candidates.push(candidate);
    }
  }
  candidates.sort((a, b) => a.rank - b.rank);
  const causes: Cause[] = candidates.map(({ rank: _rank, ...cause }) => cause);
  if (!causes.length) causes.push(unknownCause(x));
  const all = t ? t.split(/\r?\n/) : [];
  const lines = evidenceLines(all);
  const message = stripWrappers(lines.join('\n')) || lines.join(' ');
  return { causes, extracted: x, message, lines, inputLines: all.length };
}

/**
 * The lines worth showing: those matching a wording the detectors read, without repeats, the last
 * `evidenceLineLimit` of them (a log ends with its failure); when none matches, the last three lines.
 */
function evidenceLines(all: string[]): string[] {
  const patterns = Object.values(wording);
  const seen = new Set<string>();
  const matching: string[] = [];
  const nonEmpty: string[] = [];
  for (const raw of all) {
    const line = raw.trim();
    if (!line) continue;
    nonEmpty.push(line);
    if (seen.has(line) || !patterns.some((pattern) => pattern.test(line))) continue;
    seen.add(line);
    matching.push(line);
  }
  const chosen = matching.length ? matching.slice(-evidenceLineLimit) : nonEmpty.slice(-3);
  return chosen.map(shorten);
}

/** A line cut to `evidenceLineLength` characters, keeping its start (the wrappers) and its end (the answer). */
function shorten(line: string): string {
  if (line.length <= evidenceLineLength) return line;
  const head = Math.floor(evidenceLineLength * 0.3);
  const tail = evidenceLineLength - head - 3;
  return `${line.slice(0, head)} … ${line.slice(-tail)}`;
}

type Detector = (ctx: Context) => Candidate[];

function make(
  id: CauseId,
  rank: number,
  confidence: Confidence,
  summary: string,
  rationale: string,
  evidence: Record<string, EvidenceValue | undefined>,
  fixes: string[],
): Candidate {
  const kept: Record<string, EvidenceValue> = {};
  for (const [key, value] of Object.entries(evidence)) {
    if (value === undefined) continue;
    if (Array.isArray(value) && !value.length) continue;
    kept[key] = value;
  }
  return { id, summary, meaning: catalogue[id].meaning, confidence, rationale, evidence: kept, fixes, rank };
}

function unknownCause(x: Extracted): Cause {
  const evidence: Record<string, EvidenceValue> = {};
  for (const [key, value] of Object.entries(x)) {
    if (value !== undefined && key !== 'wrappers') evidence[key] = value as EvidenceValue;
  }
  return {
    id: 'unknown',
    summary: catalogue.unknown.title,
    meaning: catalogue.unknown.meaning,
    confidence: 'low',
    rationale: 'no catalogue wording matched',
    evidence,
    fixes: [
      'run `pullsafe doctor --cluster <cluster> --task <task>` to check the roles, network and image of the task directly',
      'if the message is from a pull, please report it so the catalogue can learn its wording',
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Names used in fixes: what the message says, or a placeholder that says what to put there.

const roleOf = (x: Extracted): string => x.roleName ?? '<pull role>';
const regionOf = (x: Extracted): string => x.region ?? '<region>';
const accountOf = (x: Extracted): string => x.accountId ?? x.principalAccount ?? '<account id>';

function imageLabel(x: Extracted): string {
  return x.image ?? (x.repository ? `${x.registry ?? ''}/${x.repository}` : '<image>');
}

function ecrRepositoryName(x: Extracted): string | undefined {
  const fromArn = repositoryResource(x.resourceArn)?.slice('repository/'.length);
  if (fromArn) return fromArn;
  return x.registry && /\.dkr\.ecr\./.test(x.registry) ? x.repository : undefined;
}

/** The `repository/NAME` resource of an ECR repository ARN. */
function repositoryResource(arn: string | undefined): string | undefined {
  const resource = parseArn(arn)?.resource;
  return resource?.startsWith('repository/') ? resource : undefined;
}

function repositoryArn(x: Extracted): string {
  if (x.resourceArn && repositoryResource(x.resourceArn)) return x.resourceArn;
  const name = ecrRepositoryName(x) ?? '<repository>';
  return `arn:aws:ecr:${regionOf(x)}:${accountOf(x)}:repository/${name}`;
}

function policyJson(statement: Record<string, unknown>): string {
  return JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
}

function putRolePolicy(role: string, name: string, statement: Record<string, unknown>): string {
  return `aws iam put-role-policy --role-name ${role} --policy-name ${name} --policy-document '${policyJson(statement)}'`;
}

/** The IAM role ARN behind an assumed-role session, which is what policies name as principal. */
function roleArn(x: Extracted): string {
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

function isInstanceRole(x: Extracted): boolean {
  return /^i-[0-9a-f]{8,17}$/.test(x.roleSession ?? '');
}

/**
 * The tag and digest of the image as the message gave them (`:1.25`, `@sha256:…`, `:20@sha256:…`), so that a
 * suggested replacement pulls the same content; `:latest` only when the message gave neither.
 */
function referenceSuffix(x: Extracted): string {
  if (x.tag === undefined && x.digest === undefined) return ':latest';
  return `${x.tag !== undefined ? `:${x.tag}` : ''}${x.digest !== undefined ? `@${x.digest}` : ''}`;
}

/** For an official Docker Hub image: its name (`nginx`) and reference suffix (`:1.25`). */
function officialImage(x: Extracted): { name: string; suffix: string } | undefined {
  if (!x.registry || !x.repository || !isDockerHub({ registry: x.registry })) return undefined;
  if (!x.repository.startsWith(OFFICIAL_REPOSITORY_PREFIX)) return undefined;
  const name = x.repository.slice(OFFICIAL_REPOSITORY_PREFIX.length);
  if (name.includes('/')) return undefined;
  return { name, suffix: referenceSuffix(x) };
}

/** `…/docker-hub/<name>` on an ECR pull-through prefix, without `library/`: the 403 trap. */
function pullThroughLibraryTrap(x: Extracted): string | undefined {
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
type Puller =
  'ecs' | 'codebuild-environment' | 'codebuild-buildspec' | 'docker-build' | 'kubernetes' | 'docker';

function pullerOf(x: Extracted): Puller {
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
function cacheFix(x: Extracted, puller: Puller): string {
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
function loginServer(x: Extracted): string {
  return !x.registry || isDockerHub({ registry: x.registry }) ? '' : ` ${x.registry}`;
}

/** How the puller is given registry credentials (Docker Hub: an access token as the password). */
function credentialsFix(x: Extracted, puller: Puller): string {
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
function placed(x: Extracted, puller: Puller, reference: string): string {
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

function common(x: Extracted): Record<string, EvidenceValue | undefined> {
  return { image: x.image, registry: x.registry, region: x.region, retries: x.retries };
}

function iamEvidence(x: Extracted): Record<string, EvidenceValue | undefined> {
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

function networkEvidence(x: Extracted): Record<string, EvidenceValue | undefined> {
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
function deniedFixes(x: Extracted, action: string, resource: string, kind: 'ecr' | 'other'): string[] {
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

// ---------------------------------------------------------------------------------------------------------
// Detectors: each looks for its wording and returns candidates with a rank (lower = more specific).

const detectors: Detector[] = [
  function rateLimit({ text, x }) {
    if (!wording.rateLimit.test(text)) return [];
    if (/ThrottlingException|ThrottledException/.test(text) && !/toomanyrequests/i.test(text)) return [];
    const puller = pullerOf(x);
    const ecrHost = `${accountOf(x)}.dkr.ecr.${regionOf(x)}.amazonaws.com`;
    // A docker client pulling from ECR logs in itself; ECS, CodeBuild's image fetch and EKS nodes do it for it.
    const ecrLogin = ['docker-build', 'codebuild-buildspec', 'docker'].includes(puller)
      ? `log in to ECR first: \`aws ecr get-login-password --region ${regionOf(x)} | docker login --username AWS --password-stdin ${ecrHost}\``
      : undefined;
    const official = officialImage(x);
    const ecrPublic = x.registry === 'public.ecr.aws';
    const dockerHub = !x.registry || isDockerHub({ registry: x.registry });
    const fixes: string[] = [];
    if (official) {
      const copy = `public.ecr.aws/docker/library/${official.name}${official.suffix}`;
      fixes.push(
        `use the ECR Public copy of the official image: ${placed(x, puller, copy)} (no Docker Hub quota; \`pullsafe rewrite --to-ecr-public\` edits your files${x.digest ? `; the digest is kept: \`pullsafe inspect ${copy}\` checks that the copy has it` : ''})`,
      );
      fixes.push(
        `or an ECR pull-through cache rule for Docker Hub: ${placed(x, puller, `${ecrHost}/docker-hub/library/${official.name}${official.suffix}`)} (official images need the library/ segment${ecrLogin ? `; ${ecrLogin}` : ''})`,
      );
    } else if (ecrPublic) {
      fixes.push(
        'authenticate ECR Public pulls (anonymous pulls get 1 per second and 500 GB a month per IP): `aws ecr-public get-login-password --region us-east-1 | docker login --username AWS --password-stdin public.ecr.aws`',
      );
      fixes.push(
        `or an ECR pull-through cache rule with upstream public.ecr.aws: ${placed(x, puller, `${ecrHost}/ecr-public/${x.repository ?? '<repository>'}${referenceSuffix(x)}`)}${ecrLogin ? ` (${ecrLogin})` : ''}`,
      );
    } else if (x.repository && dockerHub) {
      fixes.push(
        `use an ECR pull-through cache rule for Docker Hub: ${placed(x, puller, `${ecrHost}/docker-hub/${x.repository}${referenceSuffix(x)}`)}${ecrLogin ? ` (${ecrLogin})` : ''}`,
      );
    }
    if (x.repository && x.registry) {
      const name = official?.name ?? x.repository;
      const source = familiarName({
        registry: x.registry,
        repository: x.repository,
        original: '',
        ...(x.tag !== undefined ? { tag: x.tag } : {}),
        ...(x.digest !== undefined ? { digest: x.digest } : {}),
      });
      fixes.push(
        `or copy it once into your own ECR repository and pull it from there (${placed(x, puller, `${ecrHost}/${name}${referenceSuffix(x)}`)}): \`aws ecr create-repository --repository-name ${name}\`, then \`pullsafe copy ${source} ${ecrHost}/${name}\` (the tag and digest are kept; for many images \`pullsafe sync --file mirror.yaml\`)`,
      );
    }
    if (dockerHub) fixes.push(cacheFix(x, puller));
    if (!ecrPublic) fixes.push(`or authenticate the pulls: ${credentialsFix(x, puller)}`);
    if (puller === 'codebuild-environment' || puller === 'codebuild-buildspec') {
      fixes.push(
        "CodeBuild's builds share a few egress IP addresses per region, so anonymous Docker Hub pulls reach the limit there first" +
          (puller === 'codebuild-environment'
            ? "; CodeBuild's own build images (aws/codebuild/standard:7.0, …) are not rate limited"
            : ''),
      );
    }
    fixes.push(
      'check what quota is left with `pullsafe ratelimit` (HEAD requests only: checking costs nothing)',
    );
    return [
      make(
        'rate-limit',
        10,
        'high',
        `${ecrPublic ? 'ECR Public' : dockerHub ? 'Docker Hub' : x.registry} refused to serve ${imageLabel(x)}: pull rate limit reached`,
        'the registry answered with its rate-limit error: a definite answer',
        { ...common(x), httpStatus: x.httpStatus ?? 429, dialIp: x.dialIp },
        fixes,
      ),
    ];
  },

  function referenceInvalid({ text, x }) {
    if (!wording.referenceInvalid.test(text)) return [];
    return [
      make(
        'image-reference-invalid',
        10,
        'high',
        `The image reference${x.image ? ` ${x.image}` : ''} is not valid`,
        'the runtime rejected the reference before any request',
        { ...common(x), dockerApiStatus: x.dockerApiStatus },
        [
          'write the repository in lowercase, with a valid tag (letters, digits, _ . -) or digest (sha256:<64 hex>), no spaces or URL scheme',
          'if the reference is built from variables, check that none is empty (a trailing ":" or "/" is invalid)',
        ],
      ),
    ];
  },

  function execFormat({ text, x }) {
    if (!wording.execFormat.test(text) || wording.platform.test(text)) return [];
    const executable = /exec:? "?([^\s":]+)"?: exec format error/.exec(text)?.[1];
    const image = x.image ?? '<image>';
    return [
      make(
        'image-platform-mismatch',
        10,
        'high',
        `The entrypoint${executable ? ` ${executable}` : ''} of ${imageLabel(x)} is built for another CPU architecture than the one it runs on (exec format error)`,
        'the kernel refused to run the executable: most often an arm64 image on an X86_64 task, or the reverse',
        { ...common(x), executable, platforms: x.platforms },
        [
          `run the task on the image's architecture: set the task definition's \`runtimePlatform\` to it, {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"} or "X86_64" (\`pullsafe inspect ${image}\` shows the platforms the image has)${x.source === 'kubernetes' ? '; on Kubernetes: a nodeSelector on kubernetes.io/arch' : ''}`,
          `or build the image for the task's architecture: \`docker buildx build --platform linux/amd64 -t ${image} --push .\` (or --platform linux/amd64,linux/arm64 for both); a build on Apple silicon or Graviton gives arm64 unless told otherwise`,
          `if the image was copied with \`pullsafe copy --platform\`, copy the task's platform too (--platform linux/amd64), or all of them (no --platform)`,
          'if the entrypoint is a script, its first line must be a #! line (#!/bin/sh); a binary downloaded or copied into the image must be built for the same architecture',
        ],
      ),
    ];
  },

  function platformMismatch({ text, x }) {
    if (!wording.platform.test(text)) return [];
    const platform = x.platforms?.[0];
    return [
      make(
        'image-platform-mismatch',
        10,
        'high',
        `${imageLabel(x)} has no variant for ${platform ?? 'the platform the task runs on'}`,
        'the registry answered and the runtime found no matching platform: a definite answer',
        { ...common(x), platforms: x.platforms, mediaTypes: x.mediaTypes },
        [
          `build and push the image for ${platform ?? 'the task platform'} too: \`docker buildx build --platform linux/amd64,linux/arm64 -t ${x.image ?? '<image>'} --push .\``,
          `or run the task on the image's architecture: set \`runtimePlatform.cpuArchitecture\` (X86_64 or ARM64) in the task definition${x.source === 'kubernetes' ? ' (on Kubernetes: a nodeSelector on kubernetes.io/arch)' : ''}`,
          `check which platforms the tag has: \`pullsafe inspect ${x.image ?? '<image>'}\``,
        ],
      ),
    ];
  },

  function mediaType({ text, x }) {
    if (!wording.mediaType.test(text)) return [];
    return [
      make(
        'image-media-type',
        12,
        'high',
        `The runtime does not accept the format of ${imageLabel(x)}${x.mediaTypes?.length ? ` (${x.mediaTypes.join(', ')})` : ''}`,
        'the registry answered with content the runtime refuses: a definite answer',
        { ...common(x), mediaTypes: x.mediaTypes },
        [
          'rebuild and push the image as OCI or Docker schema 2 (schema 1 `prettyjws` manifests are no longer pulled)',
          'use one layer compression for the whole image (do not mix gzip and zstd layers on ECS): e.g. buildx `--output type=image,oci-mediatypes=true,compression=gzip,force-compression=true`',
          'if an attestation or SBOM manifest is the problem, push with `--provenance=false --sbom=false`',
        ],
      ),
    ];
  },

  function diskFull({ text, x }) {
    if (!wording.diskFull.test(text)) return [];
    const certain = /no space left on device/i.test(text);
    return [
      make(
        'disk-full',
        certain ? 12 : 30,
        certain ? 'high' : 'medium',
        `Storage ran out while pulling or extracting ${imageLabel(x)}`,
        certain
          ? 'the kernel reported no space left'
          : 'layer registration failed, most often for lack of space',
        common(x),
        [
          'on Fargate: raise `ephemeralStorage.sizeInGiB` in the task definition (21 to 200 GiB)',
          'on EC2: enlarge the Docker volume or clean old images (`ECS_IMAGE_CLEANUP_INTERVAL`, `docker system prune`)',
          'shrink the image: multi-stage builds, a smaller base image',
        ],
      ),
    ];
  },

  function logsGroupMissing({ text, x }) {
    if (!wording.logsGroupMissing.test(text)) return [];
    const connection = /connection issue/i.test(text);
    const group = x.logGroup ?? '<log group>';
    return [
      make(
        'logs-group-missing',
        connection ? 47 : 15,
        connection ? 'medium' : 'high',
        `Log group ${group} does not exist${x.region ? ` in ${x.region}` : ''}`,
        connection
          ? 'the agent could not tell a missing group from an unreachable API; the network is the likelier cause'
          : 'CloudWatch Logs answered that the group does not exist',
        { logGroup: x.logGroup, region: x.region, errorCode: x.errorCode },
        [
          `create it: \`aws logs create-log-group --log-group-name ${group} --region ${regionOf(x)}\``,
          'or set `awslogs-create-group: "true"` in the container logConfiguration and allow logs:CreateLogGroup to the execution role',
          'check that `awslogs-region` is the region the group is in',
        ],
      ),
    ];
  },

  function logsAccess({ text, x }) {
    const action = wording.logsAction.exec(text);
    if (!action || !/not authorized|AccessDenied/i.test(text)) return [];
    const group = x.logGroup ?? '<log group>';
    const resource = `arn:aws:logs:${regionOf(x)}:${accountOf(x)}:log-group:${group}:*`;
    const fixes = deniedFixes(x, `logs:${action[1]}`, resource, 'other');
    if (action[1] === 'CreateLogGroup') {
      fixes.push(
        `or create ${group} once (\`aws logs create-log-group --log-group-name ${group} --region ${regionOf(x)}\`) and remove awslogs-create-group`,
      );
    }
    return [
      make(
        'logs-access',
        20,
        'high',
        `Role ${roleOf(x)} may not call logs:${action[1]}${x.logGroup ? ` on ${x.logGroup}` : ''}`,
        'CloudWatch Logs refused the action: a definite answer',
        { ...iamEvidence(x), logGroup: x.logGroup, region: x.region },
        fixes,
      ),
    ];
  },

  function logsNetwork(ctx) {
    const { text, x } = ctx;
    const explicit = wording.logsNetwork.test(text);
    if (!explicit && !(ctx.logs && ctx.transport)) return [];
    return [
      make(
        'logs-network',
        45,
        explicit ? 'high' : 'medium',
        `The task could not reach CloudWatch Logs${x.region ? ` in ${x.region}` : ''}`,
        'a transport failure while setting up the log driver',
        { ...networkEvidence(x), logGroup: x.logGroup, region: x.region },
        [
          `add an interface endpoint com.amazonaws.${regionOf(x)}.logs with private DNS on, its security group admitting 443 from the task, or a NAT gateway route`,
          'allow 443 out in the task security group',
        ],
      ),
    ];
  },

  function secretsNotFound(ctx) {
    const { text, x } = ctx;
    if (!ctx.secrets && !/did not contain json key/.test(text)) return [];
    if (!wording.secretsNotFound.test(text)) return [];
    if (/log group does not exist/i.test(text)) return [];
    const names = [...(x.secretArns ?? []), ...(x.parameterArns ?? [])];
    const target = names[0] ?? '<secret or parameter>';
    return [
      make(
        'secrets-not-found',
        15,
        'high',
        x.jsonKey
          ? `Secret ${target} has no JSON key ${x.jsonKey}`
          : `Secret or parameter ${target} does not exist${x.region ? ` in ${x.region}` : ''}`,
        'Secrets Manager or SSM answered that it does not exist',
        {
          secretArns: x.secretArns,
          parameterArns: x.parameterArns,
          jsonKey: x.jsonKey,
          region: x.region,
          errorCode: x.errorCode,
        },
        [
          x.jsonKey
            ? `add the key ${x.jsonKey} to the secret value, or fix the key in \`valueFrom\` (arn:…:secret:name:json-key:version-stage:version-id)`
            : `check the ARN or name and region: \`aws ${target.includes(':ssm:') ? `ssm get-parameters --names ${target}` : `secretsmanager describe-secret --secret-id ${target}`} --region ${regionOf(x)}\``,
          'a secret in another account must be referenced by its full ARN; a parameter by its ARN or name in the same region',
        ],
      ),
    ];
  },

  function secretsAccess(ctx) {
    const { text, x } = ctx;
    if (!ctx.secrets && !/kms:Decrypt/.test(text)) return [];
    if (!wording.denied.test(text)) return [];
    if (x.iamAction && /^(ecr|logs):/.test(x.iamAction)) return [];
    const kms = /kms:Decrypt|Access to KMS is not allowed|KMS/i.test(text);
    const ssm = /\bssm\b|parameter/i.test(text) && !x.secretArns?.length;
    const action =
      x.iamAction ?? (kms ? 'kms:Decrypt' : ssm ? 'ssm:GetParameters' : 'secretsmanager:GetSecretValue');
    const resource =
      x.resourceArn ??
      (action === 'kms:Decrypt'
        ? `arn:aws:kms:${regionOf(x)}:${accountOf(x)}:key/<key id of the secret>`
        : (x.secretArns?.[0] ?? x.parameterArns?.[0] ?? '<secret or parameter ARN>'));
    const fixes = deniedFixes(x, action, resource, 'other');
    if (kms && action !== 'kms:Decrypt') {
      fixes.push(
        `the secret uses a customer-managed KMS key: also allow kms:Decrypt on that key to role ${roleOf(x)} (and check the key policy)`,
      );
    }
    if (kms && action === 'kms:Decrypt') {
      fixes.push(
        `the key policy must also let role ${roleOf(x)} use the key: \`aws kms get-key-policy --key-id <key id> --policy-name default\``,
      );
    }
    return [
      make(
        'secrets-access',
        20,
        'high',
        `Execution role ${roleOf(x)} may not read ${x.secretArns?.[0] ?? x.parameterArns?.[0] ?? 'a secret of the task'} (${action})`,
        'Secrets Manager, SSM or KMS refused the role: a definite answer',
        {
          ...iamEvidence(x),
          iamAction: action,
          secretArns: x.secretArns,
          parameterArns: x.parameterArns,
          region: x.region,
        },
        fixes,
      ),
    ];
  },

  function secretsNetwork(ctx) {
    const { text, x } = ctx;
    const explicit = wording.secretsNetwork.test(text);
    if (!explicit && !(ctx.secrets && ctx.transport)) return [];
    if (/AccessDenied|not authorized/i.test(text)) return [];
    const ssm = /ssm|Parameter Store/i.test(text) && !/asm|secrets ?manager/i.test(text);
    const service = ssm ? 'ssm' : 'secretsmanager';
    return [
      make(
        'secrets-network',
        x.ipClass === 'private' ? 43 : 45,
        explicit || x.dialIp !== undefined ? 'high' : 'medium',
        `The task could not reach ${ssm ? 'SSM Parameter Store' : 'Secrets Manager'}${x.region ? ` in ${x.region}` : ''}`,
        'a transport failure while fetching the task secrets',
        {
          ...networkEvidence(x),
          secretArns: x.secretArns,
          parameterArns: x.parameterArns,
          retries: x.retries,
          region: x.region,
        },
        [
          x.ipClass === 'private'
            ? `the ${service} interface endpoint at ${x.dialIp} does not answer: its security group must admit 443 from the task`
            : `add an interface endpoint com.amazonaws.${regionOf(x)}.${service} with private DNS on, or a NAT gateway route (public subnets: assignPublicIp=ENABLED and an internet gateway route)`,
          'allow 443 out in the task security group and both directions in the subnet NACLs',
        ],
      ),
    ];
  },

  function ecrToken(ctx) {
    const { text, x } = ctx;
    if (!ctx.ecrAuth && x.iamAction !== 'ecr:GetAuthorizationToken') return [];
    const denied =
      x.iamAction === 'ecr:GetAuthorizationToken' ||
      (/GetAuthorizationToken/.test(text) && /AccessDenied/.test(text) && x.sdkStatusCode !== 0);
    if (denied) {
      const role = roleOf(x);
      const fixes =
        x.deniedBy && x.deniedBy !== 'identity-based'
          ? deniedFixes(x, 'ecr:GetAuthorizationToken', '*', 'ecr')
          : [
              `allow ecr:GetAuthorizationToken on "*" (it has no resource-level permissions) to role ${role}: ${putRolePolicy(role, 'pullsafe-ecr-token', { Effect: 'Allow', Action: ['ecr:GetAuthorizationToken'], Resource: '*' })}`,
            ];
      fixes.push(
        isInstanceRole(x)
          ? `role ${role} is the container instance role (session ${x.roleSession}): on EC2 it pulls; attach AmazonEC2ContainerServiceforEC2Role or AmazonEC2ContainerRegistryReadOnly`
          : `or attach the managed policy: \`aws iam attach-role-policy --role-name ${role} --policy-arn arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy\``,
      );
      return [
        make(
          'auth-ecr-token',
          20,
          'high',
          `Role ${role} may not call ecr:GetAuthorizationToken`,
          'ECR refused the token call: a definite answer',
          { ...iamEvidence(x), iamAction: 'ecr:GetAuthorizationToken', region: x.region },
          fixes,
        ),
      ];
    }
    if (!wording.ecrAuth.test(text)) return [];
    return [
      make(
        'auth-ecr-token',
        70,
        ctx.transport ? 'low' : 'medium',
        `The ECR authorization token could not be fetched${x.region ? ` in ${x.region}` : ''}`,
        ctx.transport
          ? 'the token call never got an answer: the network cause above is the real one'
          : 'the token step failed without a reason in the message',
        { ...common(x), sdkStatusCode: x.sdkStatusCode, requestId: x.requestId },
        ctx.transport
          ? [
              `fix the network path to api.ecr.${regionOf(x)}.amazonaws.com first (see the cause above); the role's permissions are not in question yet`,
            ]
          : [
              `check that the pull role has ecr:GetAuthorizationToken on "*" and that api.ecr.${regionOf(x)}.amazonaws.com is reachable`,
            ],
      ),
    ];
  },

  function ecrPermission({ text, x }) {
    const action =
      x.iamAction?.startsWith('ecr:') && x.iamAction !== 'ecr:GetAuthorizationToken'
        ? x.iamAction
        : undefined;
    const forbiddenOnEcr = x.httpStatus === 403 && /\.dkr\.ecr\./.test(text);
    if (!action && !forbiddenOnEcr) return [];
    if (/ecr:(BatchImportUpstreamImage|CreateRepository)/.test(text) && !action) return [];
    const trap = pullThroughLibraryTrap(x);
    const role = roleOf(x);
    const resource = repositoryArn(x);
    const fixes: string[] = [];
    if (action) fixes.push(...deniedFixes(x, action, resource, 'ecr'));
    else {
      fixes.push(
        `allow the pull actions to role ${role}: ${putRolePolicy(role, 'pullsafe-ecr-pull', { Effect: 'Allow', Action: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'], Resource: resource })}`,
      );
      fixes.push(
        `for a cross-account repository, its repository policy must allow the pulling role too (\`aws ecr get-repository-policy --repository-name ${ecrRepositoryName(x) ?? '<repository>'} --region ${regionOf(x)}\`)`,
      );
    }
    if (/pull-through|upstream|docker-hub|ecr-public/.test(x.repository ?? '') || trap) {
      fixes.push(
        `pull-through cache: the first pull also needs ecr:BatchImportUpstreamImage and ecr:CreateRepository for role ${role}`,
      );
    }
    if (trap)
      fixes.unshift(
        `official Docker Hub images need the library/ segment behind the pull-through prefix: use ${trap}`,
      );
    fixes.push(
      'the full set a pull needs: ecr:GetAuthorizationToken ("*"), ecr:BatchCheckLayerAvailability, ecr:GetDownloadUrlForLayer, ecr:BatchGetImage (all in AmazonECSTaskExecutionRolePolicy)',
    );
    if (isInstanceRole(x))
      fixes.push(
        `role ${role} is the container instance role (session ${x.roleSession}): on the EC2 launch type it pulls, not the execution role`,
      );
    return [
      make(
        'auth-ecr-permission',
        trap ? 25 : 20,
        action ? 'high' : 'medium',
        action
          ? `Role ${role} may not call ${action} on ${ecrRepositoryName(x) ?? resource}${x.deniedBy ? ` (denied by ${x.deniedBy.replace(/-/g, ' ')} policy)` : ''}`
          : `ECR answered 403 Forbidden for ${imageLabel(x)}`,
        action
          ? 'ECR named the denied action: a definite answer'
          : '403 from an ECR host means a policy denied the pull',
        { ...common(x), ...iamEvidence(x), repository: ecrRepositoryName(x), httpStatus: x.httpStatus },
        fixes,
      ),
    ];
  },

  function registryCredentials({ text, x }) {
    const strong = wording.credentials.test(text);
    const weak = wording.credentialsWeak.test(text) && !x.iamAction;
    if (!strong && !weak) return [];
    const ecr = x.registry ? /\.dkr\.ecr\./.test(x.registry) : false;
    const puller = pullerOf(x);
    const fixes: string[] = [];
    if (ecr) {
      const login = `\`aws ecr get-login-password --region ${regionOf(x)} | docker login --username AWS --password-stdin ${x.registry}\``;
      switch (puller) {
        case 'ecs':
          fixes.push(
            `the ECS agent logs in to ECR with the pull role (the execution role; on EC2 without one, the container instance role): check it may call ecr:GetAuthorizationToken; by hand: ${login}`,
          );
          break;
        case 'codebuild-environment':
          fixes.push(
            "set the project's `imagePullCredentialsType: SERVICE_ROLE` and allow the service role to pull from the repository (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability)",
          );
          break;
        case 'kubernetes':
          fixes.push(
            "on EKS the kubelet logs in to ECR with the node's role: attach AmazonEC2ContainerRegistryReadOnly to it; elsewhere, a pull secret refreshed every 12 hours (`imagePullSecrets`)",
          );
          break;
        default:
          fixes.push(
            `log in to ECR before pulling${puller === 'codebuild-buildspec' ? ' (a buildspec pre_build command)' : ''}: ${login}`,
          );
      }
    } else {
      fixes.push(credentialsFix(x, puller));
      if (puller === 'ecs')
        fixes.push(
          'for a customer-managed KMS key on the secret, the execution role also needs kms:Decrypt on it',
        );
    }
    if (/expired/.test(text))
      fixes.unshift('the token expired: refresh it (ECR tokens last 12 hours) and retry');
    if (/unmarshal secret value of authorization data/.test(text)) {
      const secret = x.secretArns?.[0] ?? '<secret-arn>';
      fixes.unshift(
        `the secret's value is not the JSON ECS reads: store it as \`{"username":"…","password":"…"}\` (\`aws secretsmanager put-secret-value --secret-id ${secret} --secret-string '{"username":"USER","password":"TOKEN"}'\`)`,
      );
    }
    return [
      make(
        'auth-registry-credentials',
        strong ? 25 : 35,
        strong ? 'high' : 'low',
        `${x.registry ?? 'The registry'} refused the credentials for ${imageLabel(x)}`,
        strong
          ? 'the registry answered that the credentials are missing or wrong'
          : 'a private repository answers like a missing one until you log in',
        { ...common(x), httpStatus: x.httpStatus, secretArns: x.secretArns },
        fixes,
      ),
    ];
  },

  function imageNotFound(ctx) {
    const { text, x } = ctx;
    const trap = pullThroughLibraryTrap(x);
    if (!wording.notFound.test(text) && !trap) return [];
    if (
      /no match for platform|no matching manifest|log group|ResourceNotFoundException|ParameterNotFound/i.test(
        text,
      )
    )
      return [];
    if (x.iamAction && !/requested access to the resource is denied/.test(text)) return [];
    const fixes: string[] = [];
    if (trap)
      fixes.push(
        `official Docker Hub images need the library/ segment behind the pull-through prefix: use ${trap}`,
      );
    fixes.push(
      x.registry && /\.dkr\.ecr\./.test(x.registry) && x.repository
        ? `check the repository and tag exist: \`aws ecr describe-images --repository-name ${x.repository} --image-ids ${x.digest ? `imageDigest=${x.digest}` : `imageTag=${x.tag ?? 'latest'}`} --region ${regionOf(x)}${x.accountId ? ` --registry-id ${x.accountId}` : ''}\``
        : `check the name, tag and registry of ${imageLabel(x)} (\`pullsafe inspect ${x.image ?? '<image>'}\`)`,
    );
    if (x.digest) {
      fixes.push(
        'ECS pins the digest it resolved at deployment: if the tag was pushed again or the image deleted since, redeploy the service (force new deployment) or push tags that are never overwritten',
      );
    }
    if (wording.credentialsWeak.test(text)) {
      fixes.push('a private repository answers like a missing one: if it exists, the pull needs credentials');
    }
    return [
      make(
        'image-not-found',
        trap ? 18 : 30,
        trap || /manifest unknown|not found/i.test(text) ? 'high' : 'medium',
        trap
          ? `${imageLabel(x)} misses the library/ segment of the pull-through cache`
          : `${imageLabel(x)} was not found in ${x.registry ?? 'the registry'}`,
        trap
          ? 'the pull-through prefix trap: the repository name is known to be wrong'
          : 'the registry answered that the name or tag does not exist',
        {
          ...common(x),
          repository: x.repository,
          tag: x.tag,
          digest: x.digest,
          httpStatus: x.httpStatus,
          dockerApiStatus: x.dockerApiStatus,
        },
        fixes,
      ),
    ];
  },

  function dns({ text, x }) {
    if (!wording.dns.test(text)) return [];
    const host = x.lookupHost ?? x.registry ?? '<host>';
    const aws = /\.amazonaws\.com(?:\.cn)?$/.test(host);
    const endpointService = /\.dkr\.ecr\./.test(host)
      ? 'ecr.dkr'
      : /api\.ecr\./.test(host)
        ? 'ecr.api'
        : /(?:^|\.)s3[.-]/.test(host)
          ? 's3'
          : /secretsmanager/.test(host)
            ? 'secretsmanager'
            : /^logs\./.test(host)
              ? 'logs'
              : undefined;
    const fixes: string[] = [];
    if (/\.amazon\.aws\.com|us-[a-z]+-\d[a-z]\./.test(host))
      fixes.push(`the host name ${host} looks mistyped (expected <account>.dkr.ecr.<region>.amazonaws.com)`);
    if (aws && endpointService) {
      fixes.push(
        endpointService === 's3'
          ? `if you use a com.amazonaws.${regionOf(x)}.s3 interface endpoint, turn its private DNS on; the S3 gateway endpoint needs no DNS of its own`
          : `if you use a com.amazonaws.${regionOf(x)}.${endpointService} interface endpoint, turn its private DNS on (\`aws ec2 modify-vpc-endpoint --vpc-endpoint-id <id> --private-dns-enabled\`)`,
      );
    }
    if (!aws) fixes.push(`check the spelling of ${host}`);
    fixes.push(
      'turn on enableDnsSupport and enableDnsHostnames on the VPC (`aws ec2 modify-vpc-attribute --vpc-id <vpc> --enable-dns-support`)',
    );
    fixes.push(
      aws
        ? 'custom DHCP options or resolvers must resolve (or forward) amazonaws.com names'
        : `custom DHCP options or resolvers must resolve ${host}: for a name only a private DNS knows, forward its domain there (a Route 53 Resolver outbound rule)`,
    );
    return [
      make(
        'network-dns',
        40,
        'high',
        `${host} does not resolve`,
        'name resolution failed before any connection',
        { ...networkEvidence(x), region: x.region },
        fixes,
      ),
    ];
  },

  function tls({ text, x }) {
    if (!wording.tls.test(text)) return [];
    const host = x.hosts?.[0] ?? x.registry ?? 'the registry';
    const general = [
      'if a proxy intercepts TLS, exempt the registry and S3 hosts or add its CA to the host',
      'check the registry host name: a certificate "valid for" other names means the name points elsewhere',
      'a handshake timeout often is a firewall dropping traffic: check security groups, NACLs and proxies',
    ];
    const clock = `check the clock of the host that pulls: sync it with NTP (chrony; on EC2 the Amazon Time Sync Service at 169.254.169.123)`;
    const evidence = {
      ...networkEvidence(x),
      registry: x.registry,
      clockTime: x.clockTime,
      certNotBefore: x.certNotBefore,
      certNotAfter: x.certNotAfter,
    };
    if (x.clockTime && x.certNotBefore) {
      return [
        make(
          'network-tls',
          40,
          'high',
          `The clock of the pulling host is wrong: it says ${x.clockTime}, before the certificate of ${host} became valid (${x.certNotBefore})`,
          'a certificate in use is not valid yet by this clock: the clock is behind',
          evidence,
          [`${clock}: it says ${x.clockTime}`, ...general],
        ),
      ];
    }
    if (x.clockTime && x.certNotAfter) {
      return [
        make(
          'network-tls',
          40,
          'high',
          `The certificate of ${host} expired at ${x.certNotAfter} (the pulling host's clock says ${x.clockTime})`,
          'the certificate is past its end date by this clock: an expired certificate, or a clock that is ahead',
          evidence,
          [
            `renew the certificate of ${host} (or of the proxy that intercepts TLS on the way)`,
            `if ${x.clockTime} is not the time now, ${clock}`,
            ...general,
          ],
        ),
      ];
    }
    return [
      make(
        'network-tls',
        40,
        'high',
        `TLS to ${host} failed`,
        'the connection reached something that did not complete a valid TLS handshake',
        evidence,
        general,
      ),
    ];
  },

  function s3Layers(ctx) {
    const { x } = ctx;
    if (!ctx.layers) return [];
    if (!ctx.transport && x.httpStatus !== 403 && !/EOF|reset/.test(ctx.text)) return [];
    const region = regionOf(x);
    const bucket = `prod-${region}-starport-layer-bucket`;
    const forbidden = x.httpStatus === 403;
    return [
      make(
        'network-s3-layers',
        forbidden ? 38 : 42,
        x.ipClass === 'amazon-s3' || /starport/.test(ctx.text) ? 'high' : 'medium',
        `Layers of ${imageLabel(x)} could not be downloaded from Amazon S3${x.dialIp ? ` (${x.dialIp})` : ''}`,
        x.ipClass === 'amazon-s3'
          ? `the connection went to an Amazon S3 address: the manifest was fetched, the layers were not`
          : 'the failing request is the layer download from the ECR layer bucket',
        { ...common(x), ...networkEvidence(x), layerBucket: bucket, layerUrlRedacted: x.layerUrlRedacted },
        [
          `add an S3 gateway endpoint on the task subnets' route tables: \`aws ec2 create-vpc-endpoint --vpc-id <vpc> --vpc-endpoint-type Gateway --service-name com.amazonaws.${region}.s3 --route-table-ids <route table ids>\``,
          `allow 443 out to the S3 prefix list in the task security group: \`aws ec2 authorize-security-group-egress --group-id <task sg> --ip-permissions 'IpProtocol=tcp,FromPort=443,ToPort=443,PrefixListIds=[{PrefixListId=<pl id of com.amazonaws.${region}.s3>}]'\``,
          `if the gateway endpoint has a policy, allow s3:GetObject on arn:aws:s3:::${bucket}/*`,
          'or route the subnets through a NAT gateway',
        ],
      ),
    ];
  },

  function vpcEndpoint(ctx) {
    const { x } = ctx;
    if (!ctx.transport || ctx.layers || ctx.secrets || ctx.logs) return [];
    const privateIp = x.ipClass === 'private';
    if (!privateIp && !(ctx.ecrHost && x.dialIp === undefined)) return [];
    const service = /api\.ecr\.|GetAuthorizationToken|registry auth/i.test(ctx.text) ? 'ecr.api' : 'ecr.dkr';
    const region = regionOf(x);
    return [
      make(
        'network-vpc-endpoint',
        privateIp ? 44 : 62,
        privateIp ? 'high' : 'low',
        privateIp
          ? `The interface endpoint at ${x.dialIp} did not answer on port ${x.dialPort ?? 443}`
          : `If the VPC uses ECR interface endpoints, the task cannot use them`,
        privateIp
          ? 'the name resolved to a private address (an interface endpoint) and the connection timed out'
          : 'a timeout to ECR without an address: the endpoint is one possibility among the network ones',
        { ...networkEvidence(x), region: x.region },
        [
          `the endpoint security group must admit TCP 443 from the task subnets or security group: \`aws ec2 authorize-security-group-ingress --group-id <endpoint sg> --protocol tcp --port 443 --source-group <task sg>\``,
          'the task security group must allow 443 out; NACLs must allow 443 out and the ephemeral ports back in',
          `Fargate platform 1.4+ needs both com.amazonaws.${region}.ecr.api and com.amazonaws.${region}.ecr.dkr (private DNS on), plus the S3 gateway endpoint for layers${service === 'ecr.api' ? '; this failure was on ecr.api' : ''}`,
        ],
      ),
    ];
  },

  function noRoute(ctx) {
    const { x, text } = ctx;
    if (!ctx.transport || ctx.layers || x.ipClass === 'private') return [];
    if ((ctx.secrets || ctx.logs) && !ctx.ecrHost && !x.registry) return [];
    const host = x.hosts?.find((h) => !/starport|\.s3[.-]/.test(h)) ?? x.registry ?? 'the registry';
    const explicit = /connection issue between the task and (?:the registry|Amazon ECR)/i.test(text);
    return [
      make(
        'network-no-route',
        50,
        x.ipClass === 'public' || explicit ? 'high' : 'medium',
        `No network path from the task to ${host}${x.dialIp ? ` (${x.dialIp}:${x.dialPort ?? 443})` : ''}`,
        x.ipClass === 'public'
          ? 'the connection to a public address never got an answer: no route out'
          : x.sdkStatusCode === 0
            ? 'the SDK call got no HTTP answer (StatusCode 0): transport, not permissions'
            : 'the request timed out or was cancelled before an answer',
        { ...common(x), ...networkEvidence(x) },
        [
          "private subnets: a route 0.0.0.0/0 to a NAT gateway in the subnets' route table",
          'public subnets: assignPublicIp=ENABLED in the service network configuration and a 0.0.0.0/0 route to an internet gateway',
          `or, for ECR only, VPC endpoints: com.amazonaws.${regionOf(x)}.ecr.api, com.amazonaws.${regionOf(x)}.ecr.dkr (private DNS on) and the com.amazonaws.${regionOf(x)}.s3 gateway endpoint`,
          'the task security group must allow 443 out, and the NACLs 443 out and ephemeral ports in',
        ],
      ),
    ];
  },

  function interrupted({ text, x }) {
    if (!wording.interrupted.test(text)) return [];
    return [
      make(
        'network-interrupted',
        55,
        'medium',
        `The connection to ${x.hosts?.[0] ?? x.registry ?? 'the registry'} broke during the transfer`,
        'data was flowing and the connection closed; usually transient',
        { ...common(x), ...networkEvidence(x) },
        [
          'retry the deployment; if it repeats, look at NAT gateway, proxy or firewall idle timeouts and connection limits',
          'mirror the image closer to the task (ECR in the same region) so the transfer is short',
        ],
      ),
    ];
  },

  function pullTimeout(ctx) {
    const { text, x } = ctx;
    const named = wording.pullTimeout.test(text);
    // A layer download cancelled by its caller: the manifest came, and the pull ran out of time on a layer.
    const cancelledLayer =
      /context canceled/i.test(text) &&
      !/RequestCanceled/.test(text) &&
      !ctx.secrets &&
      !ctx.logs &&
      layerDownload.test(text) &&
      !/\/manifests\//.test(text);
    if (!named && !cancelledLayer) return [];
    const fixes = [
      'on EC2: raise ECS_IMAGE_PULL_TIMEOUT (the whole pull) or ECS_IMAGE_PULL_INACTIVITY_TIMEOUT (no progress) in /etc/ecs/ecs.config, or pre-pull the image into the AMI; Fargate has no such setting, so the download must get faster',
      'pull from the same region (ECR, an ECR pull-through cache) and shrink the image',
      'check NAT gateway throughput and proxies on the way',
    ];
    if (named)
      return [
        make(
          'pull-timeout',
          60,
          'medium',
          `Pulling ${imageLabel(x)} took too long or stalled`,
          'the agent gave up waiting; the slow hop is not named in the message',
          { ...common(x), ...networkEvidence(x) },
          fixes,
        ),
      ];
    return [
      make(
        'pull-timeout',
        45,
        'medium',
        `A layer download of ${imageLabel(x)} was cancelled (context canceled): the pull ran out of time`,
        "a layer download cancelled by its caller: ECS's image pull timeout, reached by a slow or stalled layer download",
        { ...common(x), ...networkEvidence(x) },
        [
          ...fixes,
          'if not one byte of the layer arrived, the path to the layer host is the cause: see the network cause in this list',
        ],
      ),
    ];
  },
];
