/**
 * Reading a pull error: strip the wrappers that ECS, Fargate, CodeBuild, Docker, the AWS SDK and Kubernetes
 * put around the registry's answer, and extract the evidence the text carries. Pure: no I/O.
 *
 * Evidence is read from the redacted text, so no field can carry a credential that was in the message.
 */
import { redact } from '../errors/index.ts';
import { keepArns, parseIamPrincipalArn } from '../shared/arn.ts';
import { tryParseReference } from '../reference/index.ts';
import { classifyIp, type IpClass, type S3Range } from './ip-class.ts';

/** Which kind of policy the IAM error text says denied the request. */
export type DeniedBy =
  | 'identity-based'
  | 'resource-based'
  | 'explicit-deny'
  | 'scp'
  | 'permissions-boundary'
  | 'vpc-endpoint-policy'
  | 'session-policy';

/** Everything read from the message. Each field is present only when the message carries it. */
export interface Extracted {
  /** The tool family whose wording wraps the message. */
  source?: 'ecs' | 'codebuild' | 'kubernetes' | 'docker' | 'aws-sdk';
  /** Wrappers found and stripped, in the order they appear (`CannotPullContainerError`, `ErrImagePull`, …). */
  wrappers?: string[];
  /** The ECS/Fargate `… has been retried N time(s)` count (the largest one when several). */
  retries?: number;
  /** The EC2 agent's hint sentence: `permissions`, `image` or `network`. */
  agentHint?: 'permissions' | 'image' | 'network';
  /** The image reference as written in the message. */
  image?: string;
  /** The normalised parts of `image` (or of a registry URL or ECR repository ARN). */
  registry?: string;
  repository?: string;
  tag?: string;
  digest?: string;
  /** Hosts of URLs in the message, in order of appearance. */
  hosts?: string[];
  /** HTTP status a registry answered with (`403 Forbidden`, `429 Too Many Requests`, …). */
  httpStatus?: number;
  /** Status of the Docker Engine API (`API error (500)`, CodeBuild's `ErrorCode: 404`). */
  dockerApiStatus?: number;
  /** AWS SDK error: service, operation, HTTP status (0 = no answer), request id and error code. */
  sdkService?: string;
  sdkOperation?: string;
  sdkStatusCode?: number;
  requestId?: string;
  errorCode?: string;
  /** IAM: the action refused, who was refused, on what, and which kind of policy refused it. */
  iamAction?: string;
  principalArn?: string;
  /** The role's name, from an `assumed-role/<name>/<session>` or `role/<name>` principal. */
  roleName?: string;
  /** The session of an assumed role; an EC2 instance id here means the container instance role pulled. */
  roleSession?: string;
  principalAccount?: string;
  resourceArn?: string;
  deniedBy?: DeniedBy;
  /** For explicit denies: the policy kind the message names (`identity-based`, `service control`, …). */
  explicitDenyIn?: string;
  /** The address of `dial tcp <ip>:<port>` and what kind of address it is. */
  dialIp?: string;
  dialPort?: number;
  ipClass?: IpClass;
  /** A host name whose DNS lookup failed. */
  lookupHost?: string;
  /** OS/architecture strings (`linux/arm64`). */
  platforms?: string[];
  mediaTypes?: string[];
  secretArns?: string[];
  parameterArns?: string[];
  /** A JSON key selected from a secret. */
  jsonKey?: string;
  logGroup?: string;
  /** AWS region, from hosts and ARNs. */
  region?: string;
  /** AWS account, from an ECR host or an ARN. */
  accountId?: string;
  /** The ECS agent replaced an S3 layer URL with `REDACTED ECR URL related to <image>`. */
  layerUrlRedacted?: boolean;
  /**
   * The failed pull was the base image of a `docker build` (a `FROM` step: the classic builder's
   * `Step N/M : FROM …` as the last step, or BuildKit's `load metadata for …`); `image` is that base image.
   */
  dockerBuild?: boolean;
  /** A certificate error's `current time … is before/after …`: the client's clock and the bound it broke. */
  clockTime?: string;
  certNotBefore?: string;
  certNotAfter?: string;
}

export interface ReadMessage {
  /** The core text with wrappers stripped, redacted. */
  message: string;
  /** The whole text, redacted and unescaped: what evidence and matching read. */
  text: string;
  extracted: Extracted;
}

const regionPattern = '[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\\d';

/** Removes credentials the generic `redact` does not know: pre-signed URL parameters. */
function redactMessage(text: string): string {
  // ARNs name resources, they are not credentials; the generic redaction would eat `secret:<name>`.
  return keepArns(text, redact).replace(
    /([?&]X-Amz-(?:Security-Token|Signature|Credential)=)[^&\s"']+/gi,
    '$1[redacted]',
  );
}

interface WrapperRule {
  name: string;
  pattern: RegExp;
  source?: Extracted['source'];
  /** Text left in place of the match; empty by default. */
  replaceWith?: (match: RegExpExecArray) => string;
  onMatch?: (match: RegExpExecArray, extracted: Extracted) => void;
}

const hintKinds: Record<string, Extracted['agentHint']> = {
  'Check that the role has the permissions to pull images from the registry': 'permissions',
  'Check whether the image exists': 'image',
  'Check your network configuration': 'network',
};

const wrapperRules: WrapperRule[] = [
  {
    name: 'ecs-agent-hint',
    pattern:
      /The task can[’']t pull the image\. (Check that the role has the permissions to pull images from the registry|Check whether the image exists|Check your network configuration)\.\s*/,
    source: 'ecs',
    onMatch: (match, extracted) => {
      const kind = hintKinds[match[1] ?? ''];
      if (kind) extracted.agentHint = kind;
    },
  },
  { name: 'stopped-reason', pattern: /^\s*(?:Stopped|Status) reason:?\s*/i, source: 'ecs' },
  {
    name: 'codebuild',
    pattern: /BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE:\s*/,
    source: 'codebuild',
  },
  {
    name: 'codebuild',
    pattern:
      /(?:Message\s*)?Unable to pull customer's container image\.\s*(?:ErrorCode: (\d{3}), Reason:\s*)?/,
    source: 'codebuild',
    onMatch: (match, extracted) => {
      if (match[1]) extracted.dockerApiStatus = Number(match[1]);
    },
  },
  {
    name: 'codebuild-log',
    pattern: /^\[Container\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d(?:\.\d+)?\s*/m,
    source: 'codebuild',
  },
  {
    name: 'codebuild-log',
    pattern: /\bCOMMAND_EXECUTION_ERROR(?::|\s+Message:)\s*/,
    source: 'codebuild',
  },
  {
    name: 'ResourceInitializationError',
    pattern: /ResourceInitializationError:\s*/,
    source: 'ecs',
  },
  {
    name: 'unable to pull secrets or registry auth',
    pattern: /unable to pull secrets or registry auth:\s*(?:execution resource retrieval failed:\s*)?/,
    source: 'ecs',
  },
  {
    name: 'ecs-error-name',
    pattern:
      /\b(CannotPullContainerError|CannotPullECRContainerError|CannotPullImageManifestError|CannotStartContainerError|CannotCreateContainerError|CannotInspectContainerError):\s*/,
    source: 'ecs',
  },
  {
    name: 'retried',
    pattern:
      /(?:ref pull|pull image manifest|inspect image|service call|create stream|pull image)? ?has been retried (\d+) times?(?:\(s\))?:?\s*/,
    onMatch: (match, extracted) => {
      const count = Number(match[1]);
      extracted.retries = Math.max(extracted.retries ?? 0, count);
    },
  },
  { name: 'failed to copy', pattern: /failed to copy:\s*/ },
  { name: 'httpReadSeeker', pattern: /httpRead(?:er)?Seeker: failed open:\s*/ },
  {
    name: 'aws-sdk',
    pattern:
      /operation error ([\w ]+?): (\w+), (?:exceeded maximum number of attempts, \d+, )?https response error StatusCode: (\d+), RequestID: ([\w-]*),\s*(?:api error (\w+):\s*)?/,
    source: 'aws-sdk',
    onMatch: (match, extracted) => {
      extracted.sdkService = match[1];
      extracted.sdkOperation = match[2];
      extracted.sdkStatusCode = Number(match[3]);
      if (match[4]) extracted.requestId = match[4];
      if (match[5]) extracted.errorCode = match[5];
    },
  },
  {
    name: 'aws-sdk',
    pattern: /\s*status code: (\d{3}), request id: ([\w-]+)/,
    source: 'aws-sdk',
    onMatch: (match, extracted) => {
      extracted.sdkStatusCode ??= Number(match[1]);
      extracted.requestId ??= match[2];
    },
  },
  { name: 'docker', pattern: /Error response from daemon:\s*/, source: 'docker' },
  {
    name: 'docker',
    pattern: /API error \((\d{3})\):\s*/,
    source: 'docker',
    onMatch: (match, extracted) => {
      extracted.dockerApiStatus ??= Number(match[1]);
    },
  },
  {
    name: 'kubernetes-event',
    pattern:
      /\b(?:Warning|Normal)\s+(?:Failed|BackOff)\s+\S+(?:\s+\(x\d+ over \S+\))?\s+kubelet(?:,\s*\S+)?\s+/,
    source: 'kubernetes',
  },
  {
    name: 'kubernetes',
    pattern: /(?:Error: )?\b(?:ErrImagePull|ImagePullBackOff):?\s*/,
    source: 'kubernetes',
  },
  {
    name: 'kubernetes',
    pattern: /Back-off pulling image "([^"]+)":?\s*/,
    source: 'kubernetes',
    onMatch: (match, extracted) => noteImage(extracted, match[1]),
  },
  {
    name: 'kubernetes',
    pattern: /Failed to pull image "([^"]+)":\s*/,
    source: 'kubernetes',
    onMatch: (match, extracted) => noteImage(extracted, match[1]),
  },
  { name: 'kubernetes', pattern: /rpc error: code = \w+ desc = /, source: 'kubernetes' },
  {
    name: 'containerd',
    pattern: /failed to pull and unpack image "([^"]+)":\s*/,
    onMatch: (match, extracted) => noteImage(extracted, match[1]),
  },
  {
    name: 'redacted-layer-url',
    pattern: /REDACTED ECR URL related to ([^\s"]+)/,
    source: 'ecs',
    replaceWith: (match) => `[layer URL of ${(match[1] ?? '').replace(/[:.,;]+$/, '')}]`,
    onMatch: (match, extracted) => {
      extracted.layerUrlRedacted = true;
      noteImage(extracted, match[1]);
    },
  },
];

/** The outer tool wins: Kubernetes, CodeBuild and ECS all wrap Docker and SDK messages. */
const sourcePriority: (Extracted['source'] | undefined)[] = [
  'kubernetes',
  'codebuild',
  'ecs',
  'aws-sdk',
  'docker',
  undefined,
];

function noteImage(extracted: Extracted, candidate: string | undefined): void {
  if (extracted.image !== undefined || candidate === undefined) return;
  const text = candidate.replace(/[:.,;)]+$/, '');
  const reference = tryParseReference(text);
  if (!reference) return;
  extracted.image = text;
  extracted.registry = reference.registry;
  extracted.repository = reference.repository;
  if (reference.tag !== undefined) extracted.tag = reference.tag;
  if (reference.digest !== undefined) extracted.digest = reference.digest;
}

/** Lists of evidence keep their first entries only: a long log may name thousands of hosts. */
const listLimit = 20;

function addUnique(list: string[] | undefined, value: string): string[] {
  const result = list ?? [];
  if (result.length < listLimit && !result.includes(value)) result.push(value);
  return result;
}

/** Strips wrappers, redacts, and extracts evidence. `s3Ranges` replaces the embedded S3 prefix table. */
export function readMessage(input: string, s3Ranges?: readonly S3Range[]): ReadMessage {
  const text = redactMessage(input.replace(/\\"/g, '"').replace(/\\n/g, '\n')).trim();
  const extracted: Extracted = {};
  const message = stripWrappers(text, extracted);
  extractEvidence(text, extracted, s3Ranges);
  return { message: message || text, text, extracted };
}

/**
 * The core of already redacted text: the wrappers removed and whitespace collapsed to single spaces. What
 * the wrappers carry (source, retries, statuses) is recorded in `extracted` when one is given.
 */
export function stripWrappers(text: string, extracted: Extracted = {}): string {
  let core = text;
  const wrappers: string[] = [];
  for (const rule of wrapperRules) {
    const global = new RegExp(
      rule.pattern.source,
      rule.pattern.flags.includes('g') ? rule.pattern.flags : `${rule.pattern.flags}g`,
    );
    core = core.replace(global, (...args: unknown[]) => {
      const groups = args
        .slice(0, -2)
        .filter((value): value is string | undefined => typeof value === 'string' || value === undefined);
      const match = Object.assign([...groups], { index: 0, input: core }) as unknown as RegExpExecArray;
      if (!wrappers.includes(rule.name)) wrappers.push(rule.name);
      if (rule.source && sourcePriority.indexOf(rule.source) < sourcePriority.indexOf(extracted.source)) {
        extracted.source = rule.source;
      }
      rule.onMatch?.(match, extracted);
      return rule.replaceWith ? rule.replaceWith(match) : '';
    });
  }
  if (wrappers.length) extracted.wrappers = wrappers;
  return core
    .replace(/\s+/g, ' ')
    .replace(/^[\s:;,.-]+/, '')
    .trim();
}

function extractEvidence(text: string, extracted: Extracted, s3Ranges?: readonly S3Range[]): void {
  extractImage(text, extracted);
  extractHosts(text, extracted);
  extractIam(text, extracted);
  extractNetwork(text, extracted, s3Ranges);

  const status =
    /\b([1-5]\d\d) (Too Many Requests|Forbidden|Unauthorized|Not Found|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout|Bad Request)\b/.exec(
      text,
    ) ?? /\bHTTP ([1-5]\d\d) response\b/.exec(text);
  if (status) extracted.httpStatus = Number(status[1]);

  for (const match of text.matchAll(
    /\b((?:linux|windows|darwin)\/(?:amd64|arm64|arm|386|ppc64le|s390x|riscv64)(?:\/v\d)?)\b/g,
  )) {
    extracted.platforms = addUnique(extracted.platforms, match[1] as string);
  }
  for (const match of text.matchAll(/\b(application\/vnd\.[\w.+-]*[\w+]|text\/html)/g)) {
    extracted.mediaTypes = addUnique(extracted.mediaTypes, match[1] as string);
  }
  for (const match of text.matchAll(
    /arn:aws[\w-]*:secretsmanager:[a-z0-9-]+:(?:\d{12}|\*|[\w*]+):secret:[^\s,"']+/g,
  )) {
    extracted.secretArns = addUnique(extracted.secretArns, match[0].replace(/[.:]+$/, ''));
  }
  for (const match of text.matchAll(/arn:aws[\w-]*:ssm:[a-z0-9-]+:(?:\d{12}|\*):parameter\/?[^\s,"']+/g)) {
    extracted.parameterArns = addUnique(extracted.parameterArns, match[0].replace(/[.:]+$/, ''));
  }
  const jsonKey = /did not contain json key (\S+)/.exec(text);
  if (jsonKey) extracted.jsonKey = (jsonKey[1] as string).replace(/[.,]+$/, '');

  const logGroup =
    /log-group:([^\s:,"']+)/.exec(text) ??
    /log group (?:'|")([^'"]+)(?:'|")/.exec(text) ??
    /awslogs-group[=: ]+"?([^\s,"]+)/.exec(text);
  if (logGroup) extracted.logGroup = logGroup[1];

  if (!extracted.region) {
    const region =
      new RegExp(`\\.(?:dkr\\.)?ecr\\.(${regionPattern})\\.amazonaws`).exec(text) ??
      new RegExp(`prod-(${regionPattern})-starport-layer-bucket`).exec(text) ??
      new RegExp(
        `\\b(?:s3|secretsmanager|ssm|logs|kms|sts|api\\.ecr)[.-](${regionPattern})\\.amazonaws`,
      ).exec(text) ??
      new RegExp(`arn:aws[\\w-]*:[a-z0-9-]+:(${regionPattern}):`).exec(text);
    if (region) extracted.region = region[1];
  }
  if (!extracted.accountId) {
    const account =
      /\b(\d{12})\.dkr\.ecr\./.exec(text) ??
      /arn:aws[\w-]*:(?:ecr|secretsmanager|ssm|logs):[a-z0-9-]+:(\d{12}):/.exec(text);
    if (account) extracted.accountId = account[1];
  }
}

/**
 * The base image of a `docker build` whose pull failed, as its `FROM` names it: BuildKit names the failing one
 * (`failed to resolve source metadata for …`, `ERROR [internal] load metadata for …`); the classic builder
 * stops at the failing step, so its last `Step N/M :` is the `FROM` when the pull failed (a later step's
 * failure is not a pull of the base image).
 */
function buildBaseImage(text: string): string | undefined {
  const buildkit =
    /failed to resolve source metadata for (\S+?):\s/.exec(text) ??
    /(?:ERROR|>) \[[^\]\n]*\] load metadata for (\S+?):?(?:\s|$)/.exec(text);
  if (buildkit) return buildkit[1];
  const steps = [...text.matchAll(/^Step \d+\/\d+ : (.*)$/gm)];
  const last = steps.at(-1)?.[1];
  const from = last && /^FROM\s+(?:--platform=\S+\s+)?(\S+)/i.exec(last);
  return from ? from[1] : undefined;
}

function extractImage(text: string, extracted: Extracted): void {
  const base = buildBaseImage(text);
  if (base !== undefined) {
    noteImage(extracted, base);
    if (extracted.image !== undefined) extracted.dockerBuild = true;
  }
  const patterns = [
    /(?:Failed to pull image|Back-off pulling image|[Pp]ulling image|failed to pull and unpack image|failed to resolve reference|failed to resolve ref) "([^"]+)"/,
    /failed to resolve ref (?!")(\S+?):\s/,
    /pull access denied for ([^\s,]+),/,
    /manifest for (\S+) not found/,
    /Unable to find image '([^']+)'/,
    /No such image: (\S+)/,
    /repository (\S+) not found/,
  ];
  for (const pattern of patterns) {
    noteImage(extracted, pattern.exec(text)?.[1]);
    if (extracted.image !== undefined) break;
  }
  const tagNotFound = /Tag (\S+) not found in repository (\S+?)[,.]?(?:\s|$)/.exec(text);
  if (extracted.image === undefined && tagNotFound)
    noteImage(extracted, `${tagNotFound[2]}:${tagNotFound[1]}`);

  // A registry API URL names the repository and, for manifests, the tag or digest.
  const url =
    /https?:\/\/([A-Za-z0-9.-]+(?::\d+)?)\/v2\/((?:[a-z0-9._-]+\/)*?[a-z0-9._-]+)\/(manifests|blobs)\/([^\s"':]+(?::[a-f0-9]+)?)/.exec(
      text,
    );
  if (url) {
    const [, host, repository, kind, ref] = url as unknown as [string, string, string, string, string];
    const registry = host === 'registry-1.docker.io' || host === 'index.docker.io' ? 'docker.io' : host;
    if (extracted.image === undefined) {
      const suffix = kind === 'manifests' ? (ref.includes(':') ? `@${ref}` : `:${ref}`) : '';
      noteImage(extracted, `${registry}/${repository}${suffix}`);
      if (extracted.image === undefined) noteImage(extracted, `${registry}/${repository}`);
    }
  }
  // An ECR repository ARN names the registry and repository.
  const repositoryArn = new RegExp(
    `arn:aws[\\w-]*:ecr:(${regionPattern}):(\\d{12}):repository/([a-z0-9._/-]+)`,
  ).exec(text);
  if (repositoryArn && extracted.image === undefined) {
    const [, region, account, name] = repositoryArn as unknown as [string, string, string, string];
    const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    noteImage(extracted, `${account}.dkr.ecr.${region}.${suffix}/${name}`);
  }
}

function extractHosts(text: string, extracted: Extracted): void {
  for (const match of text.matchAll(
    /https?:\/\/([A-Za-z0-9.-]+\.[A-Za-z]{2,}|[A-Za-z0-9.-]+:\d+)(?=[/"'\s:]|$)/g,
  )) {
    extracted.hosts = addUnique(extracted.hosts, (match[1] as string).toLowerCase());
  }
  if (!extracted.registry) {
    const registryHost = extracted.hosts?.find((host) =>
      /\.dkr\.ecr\.|^registry-1\.docker\.io$|^public\.ecr\.aws$/.test(host),
    );
    if (registryHost)
      extracted.registry = registryHost === 'registry-1.docker.io' ? 'docker.io' : registryHost;
  }
}

function extractIam(text: string, extracted: Extracted): void {
  const action = /not authorized to perform:? ([a-z0-9-]+:[A-Za-z0-9*]+)/i.exec(text);
  if (action) extracted.iamAction = action[1];
  const principal =
    /(?:User|Principal): (arn:aws[\w-]*:(?:sts|iam)::(\d{12}|\*+|[\w.]+):[^\s]+?)\s+is not authorized/.exec(
      text,
    );
  if (principal) {
    const arn = principal[1] as string;
    extracted.principalArn = arn;
    const parsed = parseIamPrincipalArn(arn);
    if (parsed?.account) extracted.principalAccount = parsed.account;
    if (parsed?.roleName) extracted.roleName = parsed.roleName;
    if (parsed?.session) extracted.roleSession = parsed.session;
  }
  const resource = /on resource:? (arn:[^\s]+|\*)/.exec(text);
  if (resource) extracted.resourceArn = (resource[1] as string).replace(/[.,;]+$/, '');

  const explicit = /with an explicit deny(?: in an? ([\w -]+?) polic(?:y|ies))?/i.exec(text);
  const implicit =
    /because no (identity-based|resource-based|service control|permissions boundary|session|VPC endpoint) polic(?:y|ies) allows?/i.exec(
      text,
    ) ?? /because no (permissions boundary) allows/i.exec(text);
  if (explicit) {
    extracted.deniedBy = 'explicit-deny';
    if (explicit[1]) extracted.explicitDenyIn = explicit[1].toLowerCase();
  } else if (implicit) {
    const kinds: Record<string, DeniedBy> = {
      'identity-based': 'identity-based',
      'resource-based': 'resource-based',
      'service control': 'scp',
      'permissions boundary': 'permissions-boundary',
      session: 'session-policy',
      'vpc endpoint': 'vpc-endpoint-policy',
    };
    const kind = kinds[(implicit[1] as string).toLowerCase()];
    if (kind) extracted.deniedBy = kind;
  }
}

function extractNetwork(text: string, extracted: Extracted, s3Ranges?: readonly S3Range[]): void {
  const dial = /dial tcp (\[[0-9a-fA-F:.]+\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}):(\d+)/.exec(text);
  if (dial) {
    const ip = (dial[1] as string).replace(/^\[|\]$/g, '');
    const classification = classifyIp(ip, s3Ranges);
    if (classification) {
      extracted.dialIp = ip;
      extracted.dialPort = Number(dial[2]);
      extracted.ipClass = classification.class;
      if (classification.region && !extracted.region) extracted.region = classification.region;
    }
  }
  const clock = /current time (\S+) is (before|after) (\S+?)[.,;]?(?:\s|$)/.exec(text);
  if (clock) {
    extracted.clockTime = clock[1];
    if (clock[2] === 'before') extracted.certNotBefore = clock[3];
    else extracted.certNotAfter = clock[3];
  }
  const lookup =
    /lookup ([A-Za-z0-9.-]+\.[A-Za-z]{2,})(?: on [^\s]+)?:? (?:no such host|server misbehaving|Temporary failure|i\/o timeout|read udp)/.exec(
      text,
    );
  if (lookup) extracted.lookupHost = lookup[1];
}
