/**
 * What doctor collects and what its checks return. Collectors fill `Facts` from read-only AWS calls (or a
 * snapshot); every check is a pure function `(facts) => Finding[]`, so scenario tests build `Facts` (or a
 * snapshot) and assert finding ids without any network.
 *
 * AWS shapes are the SDK's own output types, kept as returned: a snapshot recorded from a real account
 * replays into the same `Facts`.
 */
import type { Task, TaskDefinition, Service } from '@aws-sdk/client-ecs';
import type {
  Vpc,
  Subnet,
  RouteTable,
  SecurityGroup,
  NetworkAcl,
  VpcEndpoint,
  ManagedPrefixList,
  PrefixList,
} from '@aws-sdk/client-ec2';
import type { ImageDetail, Repository, PullThroughCacheRule } from '@aws-sdk/client-ecr';
import type { Build, Project } from '@aws-sdk/client-codebuild';
import type { BuildPlan, BuildPull } from './build-plan.ts';

/** A call that could not be made or answered: reported as "could not check", never as a pass. */
export interface CallFailure {
  service: string;
  operation: string;
  /** The AWS error name (`AccessDeniedException`, `ThrottlingException`, …) or `NetworkError`. */
  code: string;
  /** AWS's message without its closing full stop, so that findings can quote it inside a sentence. */
  message: string;
}

/** The result of one lookup: the value, "does not exist" (a definite answer), or a failure to ask. */
export type Lookup<T> =
  | { state: 'found'; value: T }
  | { state: 'missing'; detail: string }
  | { state: 'failed'; failure: CallFailure };

/** Which part of a pull a finding is about; the report groups by it, in this order. */
export type Hop =
  | 'stop-reason'
  | 'image'
  | 'registry-auth'
  | 'manifest'
  | 'layers'
  | 'secrets'
  | 'logs'
  | 'build'
  | 'rate-limit';

export const hopOrder: readonly Hop[] = [
  'stop-reason',
  'image',
  'registry-auth',
  'manifest',
  'layers',
  'secrets',
  'logs',
  'build',
  'rate-limit',
];

/**
 * `error`: the pull fails (or will) because of this. `warning`: it may fail, or fails under load (rate
 * limits). `unchecked`: a diagnostic call failed, so this part was not checked. `info`: context only.
 */
export type Severity = 'error' | 'warning' | 'unchecked' | 'info';

/** How sure the finding is: evaluated from the account's own configuration, or inferred. */
export type Certainty = 'certain' | 'likely' | 'possible';

export type FixKind =
  | 'iam-policy' // an IAM policy document (JSON) to attach or merge
  | 'repository-policy' // an ECR repository policy statement (JSON)
  | 'aws-cli' // one or more `aws` CLI commands
  | 'shell' // other shell commands: `pullsafe`, `docker`
  | 'task-definition-patch' // a JSON fragment to merge into the task definition
  | 'buildspec' // a buildspec YAML fragment
  | 'dockerfile' // a Dockerfile line (FROM, COPY --from) to put in place of the one named
  | 'reference' // a replacement image reference
  | 'text'; // an instruction in words

export interface Fix {
  kind: FixKind;
  summary: string;
  /** Applicable as is: JSON, YAML, a shell command or a reference. Absent for `text` fixes. */
  content?: string;
}

export interface Evidence {
  /** What was looked at: a resource id or ARN, a rule, a statement id, a header. */
  label: string;
  value: string;
}

export interface Finding {
  /** Stable id of this check's finding, e.g. `sg-egress-no-s3-prefix-list`; tests and users match on it. */
  id: string;
  /** The catalogue cause this finding explains (`network-s3-layers`, …), see src/explain/catalogue.ts. */
  cause: string;
  hop: Hop;
  severity: Severity;
  certainty: Certainty;
  title: string;
  detail: string;
  evidence: Evidence[];
  fixes: Fix[];
  /** Set by doctor when the task's own stop reason names the same cause: the finding explains that error. */
  matchesStopReason?: boolean;
}

/** An IAM policy document as fetched (URL-decoded and parsed). */
export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Principal?: '*' | Record<string, string | string[]>;
  NotPrincipal?: '*' | Record<string, string | string[]>;
  Condition?: Record<string, Record<string, string | string[] | boolean | number>>;
}

export interface NamedPolicy {
  /** `inline:<role>/<name>`, a managed policy ARN, `repository:<name>`, `vpc-endpoint:<id>`, … */
  name: string;
  kind: 'inline' | 'managed' | 'boundary' | 'resource' | 'endpoint';
  document: PolicyDocument;
}

/** A role that pulls images or reads secrets for the task, with everything attached to it. */
export interface RoleFacts {
  arn: string;
  name: string;
  purpose: 'execution' | 'instance' | 'codebuild-service';
  /** Identity policies (inline and managed, documents fetched); `failed` when they could not be listed. */
  policies: Lookup<NamedPolicy[]>;
  permissionsBoundary?: Lookup<NamedPolicy>;
  /** `iam:SimulatePrincipalPolicy` answers for the actions this task needs, when the call was allowed. */
  simulation?: Lookup<SimulatedDecision[]>;
}

export interface SimulatedDecision {
  action: string;
  resource: string;
  decision: 'allowed' | 'implicitDeny' | 'explicitDeny';
  /** Statements the simulator named, as `policy-name#sid-or-index`. */
  matchedStatements: string[];
  /**
   * Condition keys the simulator needed and was not given (`aws:SourceVpce`, …): a deny with these is a
   * "could not decide", not a verdict.
   */
  missingContext?: string[];
}

export type RegistryKind = 'ecr' | 'ecr-public' | 'docker-hub' | 'other' | 'invalid';

/** One container image of the task (or the CodeBuild environment), classified and looked up. */
export interface ImageFacts {
  container: string;
  reference: string;
  kind: RegistryKind;
  /** Why the reference does not parse, when `kind` is `invalid`. */
  invalidReason?: string;
  /** Normalised registry host, repository path, tag and digest. */
  registry?: string;
  repository?: string;
  tag?: string;
  digest?: string;
  /** For ECR references: the registry's account, region and whether it is another account's. */
  ecr?: {
    registryId: string;
    region: string;
    crossAccount: boolean;
    /** Set when the repository path starts with a pull-through cache rule's prefix. */
    pullThroughRule?: PullThroughCacheRule;
    /**
     * Set when the pull-through cache rules could not be read: then a missing repository or image may
     * still be one the cache creates on the first pull.
     */
    pullThroughRulesFailure?: CallFailure;
    repository: Lookup<Repository>;
    image: Lookup<ImageDetail>;
    /** The repository policy, when it has one (`missing` when it has none). */
    repositoryPolicy?: Lookup<PolicyDocument>;
    /** Platforms of the image, read from its manifest (an index lists several). */
    platforms?: Lookup<string[]>;
  };
  /** `repositoryCredentials.credentialsParameter` of the container, for private registries. */
  credentialsParameter?: string;
  /** The digest ECS resolved when the task started (`task.containers[].imageDigest`). */
  pinnedDigest?: string;
  /** For Docker Hub images: whether it is an official image (`library/…`). */
  official?: boolean;
  /**
   * For images a CodeBuild build pulls itself (its buildspec, Dockerfiles, compose files, log): how, and
   * whether a Docker Hub login comes before (undefined when that cannot be told).
   */
  build?: { pull: BuildPull; dockerHubLogin?: boolean; ecrLogin?: boolean };
}

export interface SecretFacts {
  /** Container and the environment variable (or `repositoryCredentials`) it feeds. */
  container: string;
  use: 'secret' | 'repositoryCredentials' | 'log-option' | 'build-env';
  /** As written in the task definition: an ARN or a name. */
  reference: string;
  service: 'secretsmanager' | 'ssm';
  /** Full ARN when it could be derived, else undefined (names resolve in the task's region). */
  arn?: string;
  region: string;
  /** JSON key selected with `arn:…:secret:name:key::`, if any. */
  jsonKey?: string;
  /** Metadata only (never the value): DescribeSecret / GetParameters-without-decryption answer. */
  metadata: Lookup<{ arn: string; kmsKeyId?: string; name: string }>;
  /**
   * For `repositoryCredentials` only: the shape of the secret value, checked without keeping it
   * (`username-password` or what is wrong). Absent when the value could not be read.
   */
  shape?: Lookup<'username-password' | 'not-json' | 'missing-username' | 'missing-password'>;
  /**
   * For a CodeBuild secret read by JSON key: the keys of the secret's value (`null` when it is not a JSON
   * object), read without keeping the value.
   */
  keys?: Lookup<string[] | null>;
  /** For a CodeBuild secret: its resource policy (`missing` when it has none). */
  resourcePolicy?: Lookup<PolicyDocument>;
}

export interface LogFacts {
  container: string;
  group: string;
  region: string;
  createGroup: boolean;
  exists: Lookup<true>;
}

/** The network a task runs in, gathered from EC2. */
export interface NetworkFacts {
  region: string;
  vpcId: string;
  vpc: Lookup<Vpc>;
  dnsSupport: Lookup<boolean>;
  dnsHostnames: Lookup<boolean>;
  subnets: Lookup<Subnet[]>;
  /** Route tables of the subnets (explicit association, else the VPC's main table). */
  routeTables: Lookup<RouteTable[]>;
  /** The task's (or build's) security groups. */
  securityGroups: Lookup<SecurityGroup[]>;
  networkAcls: Lookup<NetworkAcl[]>;
  endpoints: Lookup<VpcEndpoint[]>;
  /** Security groups of the interface endpoints, by id. */
  endpointSecurityGroups: Lookup<SecurityGroup[]>;
  /** The region's AWS-managed prefix lists (`com.amazonaws.<region>.s3`, …) and any referenced by rules. */
  prefixLists: Lookup<(ManagedPrefixList | PrefixList)[]>;
  /** `ENABLED` gives the task a public IP (only meaningful with an internet gateway route). */
  assignPublicIp: boolean;
}

/** What the workload needs to reach, derived from the task definition (or CodeBuild project). */
export interface Needs {
  ecrApi: boolean;
  ecrDkr: boolean;
  s3Layers: boolean;
  logs: boolean;
  secretsmanager: boolean;
  ssm: boolean;
  kms: boolean;
  /** Registries other than ECR reached over the internet (Docker Hub, …): need NAT or IGW. */
  internetRegistries: string[];
  /** CodeBuild: the source comes from S3 (an S3 source or CodePipeline's artifacts). */
  s3Source?: boolean;
  /** CodeBuild: the source comes from CodeCommit (an interface endpoint or NAT). */
  codecommit?: boolean;
  /** CodeBuild: source providers on the internet (github.com, …): need NAT. */
  sourceHosts?: string[];
}

export interface Subject {
  kind: 'task' | 'task-definition' | 'service' | 'codebuild-project';
  /** The id the user gave (task ARN or id, family:revision, service name, project name). */
  name: string;
  cluster?: string;
  /** For a CodeBuild project: the build read, the last failed one or the one given. */
  build?: string;
}

/** A CodeBuild project's build and buildspec, as doctor read them. */
export interface BuildFacts {
  /**
   * The build read: the one given, or the most recent failed build when none succeeded after it; absent
   * when there is none, or the builds could not be read.
   */
  build?: Build;
  /** Set when the builds could not be listed or read. */
  failure?: CallFailure;
  /** The lines the failed phase wrote to CloudWatch Logs, bounded; absent when the build logged nothing there. */
  log?: { group: string; stream: string; lines: Lookup<string[]> };
  /** Where the buildspec came from, and its text when doctor had it. */
  buildspec: {
    origin: 'project' | 'file' | 'source' | 'unavailable';
    /** The file or path named (`--buildspec FILE`, the project's path in its source). */
    path?: string;
    text?: string;
  };
  /** What the build pulls, where it logs in and which secrets it reads. */
  plan: BuildPlan;
}

export interface Facts {
  region: string;
  accountId?: string;
  subject: Subject;
  /**
   * Stop reasons and container reasons of the task(s) looked at, fed to explain; for a CodeBuild project,
   * the failed build's phase messages and log lines (`build` names it).
   */
  stopReasons: { task: string; text: string; build?: { phase?: string; statusCode?: string } }[];
  task?: Task;
  service?: Service;
  taskDefinition?: TaskDefinition;
  project?: Project;
  build?: BuildFacts;
  launchType: 'FARGATE' | 'EC2' | 'EXTERNAL' | 'CODEBUILD' | 'UNKNOWN';
  /** Fargate platform version, when known (`1.4.0`, `LATEST`). */
  platformVersion?: string;
  /** CPU architecture the workload runs on: `X86_64`, `ARM64`. */
  architecture: string;
  os: string;
  images: ImageFacts[];
  /** The principal that pulls images (execution role on Fargate, instance role on EC2). */
  pullRole?: Lookup<RoleFacts>;
  /** The task execution role (secrets, logs; pulls on Fargate). Same object as pullRole on Fargate. */
  executionRole?: Lookup<RoleFacts>;
  secrets: SecretFacts[];
  logs: LogFacts[];
  network?: NetworkFacts;
  needs: Needs;
  /** Every diagnostic call that failed, for the report's "could not check" list. */
  failures: CallFailure[];
}

export type Check = (facts: Facts) => Finding[];
